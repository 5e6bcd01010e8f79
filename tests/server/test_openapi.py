"""The OpenAPI document at ``/api/openapi.json``: it names every route the app serves and no
other, it is valid OpenAPI, and the broker answers as it says (schemathesis, property-based,
against a real broker over HTTP with basic auth).

The schemathesis run is deterministic and short for CI; ``JACKALOPE_OPENAPI_EXAMPLES`` (examples
per operation) and ``JACKALOPE_OPENAPI_SEED`` make a longer or different one locally."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from typing import Any

import pika
import pytest
import requests
import schemathesis
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis.config import SchemathesisConfig

import kafka
from jackalope import Broker
from jackalope.http.api import make_app
from jackalope.http.openapi import document

GUEST = ("guest", "guest")
METHODS = ("get", "put", "post", "delete", "patch")
_GROUP = re.compile(r"\(\?P<(\w+)>([^()]*)\)")
_ANY = "[^{}/]+"


def _app() -> web.Application:
    return make_app(None, {})  # type: ignore[arg-type]  # routing needs no core


def _route_urls(app: web.Application) -> Iterator[tuple[str, str]]:
    """Every route under /api/ as (method, a URL it serves): a placeholder for each free path part, and
    each alternative of a ``{kind:a|b}`` part."""
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        if route.method == "HEAD" or not info.get("path", info.get("formatter", "")).startswith("/api/"):
            continue  # aiohttp's HEAD beside each GET; the UI, its static files and /metrics
        if "path" in info:
            yield route.method.lower(), info["path"]
            continue
        groups = _GROUP.findall(info["pattern"].pattern)
        choices = [["x"] if body == _ANY else body.split("|") for _, body in groups]
        for values in itertools.product(*choices):
            yield (
                route.method.lower(),
                info["formatter"].format(**dict(zip([n for n, _ in groups], values, strict=True))),
            )


def _documented() -> Iterator[tuple[str, str]]:
    for path, item in document()["paths"].items():
        for method in item:
            if method in METHODS:
                yield method, path


def _matcher(path: str) -> re.Pattern[str]:
    parts = re.split(r"{\w+}", path)
    return re.compile("^" + "[^/]+".join(re.escape(p) for p in parts) + "$")


def test_every_route_is_documented() -> None:
    documented = [(m, _matcher(p)) for m, p in _documented()]
    missing = [
        (method, url)
        for method, url in _route_urls(_app())
        if not any(m == method and rx.match(url) for m, rx in documented)
    ]
    assert not missing, f"routes without a path in the OpenAPI document: {missing}"


async def test_every_documented_path_is_served() -> None:
    app = _app()
    unserved = []
    for method, path in _documented():
        url = re.sub(r"{\w+}", "x", path)
        match = await app.router.resolve(make_mocked_request(method.upper(), url, app=app))
        if match.http_exception is not None or match.route.method.lower() != method:
            unserved.append((method, path))
    assert not unserved, f"paths in the OpenAPI document that no route serves: {unserved}"


def test_the_check_catches_drift() -> None:
    """The coverage check fails for a route missing from the document."""
    app = _app()
    extra = web.RouteTableDef()

    @extra.get("/api/undocumented/{vhost}")
    async def undocumented(request: web.Request) -> web.Response:
        return web.json_response({})

    app.add_routes(extra)
    documented = [(m, _matcher(p)) for m, p in _documented()]
    missing = [u for m, u in _route_urls(app) if not any(m == dm and rx.match(u) for dm, rx in documented)]
    assert missing == ["/api/undocumented/x"]


def test_the_document_is_valid_openapi() -> None:
    validate(document())  # type: ignore[arg-type]
    loaded = schemathesis.openapi.from_dict(document())
    assert len(list(loaded.get_all_operations())) == sum(1 for _ in _documented())


# -- schemathesis against a running broker ---------------------------------------------------

QUEUE, EXCHANGE, TOPIC, GROUP = "jk-oa-q", "jk-oa-x", "jk-oa-t", "jk-oa-g"
CONFIG: dict[str, Any] = {
    "seed": int(os.environ.get("JACKALOPE_OPENAPI_SEED", "11")),
    "generation": {
        "max-examples": int(os.environ.get("JACKALOPE_OPENAPI_EXAMPLES", "10")),
        "deterministic": "JACKALOPE_OPENAPI_SEED" not in os.environ,
        "mode": "all",
    },
    "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    "checks": {
        "enabled": False,
        "not_a_server_error": {"enabled": True},
        "status_code_conformance": {"enabled": True},
        "content_type_conformance": {"enabled": True},
        "response_schema_conformance": {"enabled": True},
        "ignored_auth": {"enabled": True},  # without credentials: 401
        "unsupported_method": {"enabled": True},  # a method the path has not: 405 with Allow
    },
    # The 5xx answers the API documents on purpose: topic permissions are not implemented
    # (501); a failed health check is 503, as RabbitMQ's.  Any other 5xx fails.
    "operations": [
        {"include-path-regex": regex, "checks": {"not_a_server_error": {"expected-statuses": statuses}}}
        for regex, statuses in (
            ("^/api/topic-permissions/", ["2XX", "4XX", 501]),
            ("^/api/(health/checks|aliveness-test)/", ["2XX", "4XX", 503]),
        )
    ],
    "auth": {"basic": {"username": GUEST[0], "password": GUEST[1]}},
    # Mostly the vhost and the objects the broker has, so that handlers do more than 404.
    "dictionaries": {
        "vhosts": {"values": ["/"]},
        "names": {"values": [QUEUE, EXCHANGE, "amq.direct", "amq.topic"]},
        "topics": {"values": [TOPIC]},
        "groups": {"values": [GROUP]},
        "numbers": {"values": [0, 1]},
    },
    "parameters": {
        "path.vhost": {"dictionary": "vhosts", "probability": 0.8},
        "path.name": {"dictionary": "names", "probability": 0.5},
        "path.source": {"dictionary": "names", "probability": 0.5},
        "path.destination": {"dictionary": "names", "probability": 0.5},
        "path.topic": {"dictionary": "topics", "probability": 0.7},
        "path.group": {"dictionary": "groups", "probability": 0.7},
        "path.partition": {"dictionary": "numbers", "probability": 0.7},
        "path.offset": {"dictionary": "numbers", "probability": 0.7},
    },
}


def _protected(case: Any) -> bool:
    """What would take the test's own access away, or the vhost it works in."""
    path, method, params = case.operation.path, case.method.upper(), case.path_parameters or {}
    if method == "GET":
        return False
    if path.startswith("/api/users/"):
        return bool(params.get("name") == GUEST[0])
    if path.startswith("/api/permissions/"):
        return bool(params.get("user") == GUEST[0])
    return bool(path == "/api/vhosts/{name}" and method == "DELETE" and params.get("name") == "/")


def _path_keys(case: Any) -> dict[str, str]:
    """The body keys that repeat the path (as rabbitmqadmin sends them), with the path's values."""
    params = case.path_parameters or {}
    name = params.get("name")
    keys = {"vhost": params.get("vhost"), "name": name, "queue": name, "exchange": name}
    keys |= {"source": params.get("source"), "destination": params.get("destination")}
    if "/e/{source}/" in case.operation.path:
        keys["destination_type"] = "queue" if "/q/{destination}" in case.operation.path else "exchange"
    return {k: v for k, v in keys.items() if isinstance(v, str)}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    with Broker(tmp_path_factory.mktemp("openapi") / "data") as broker:
        yield broker


@pytest.fixture(scope="module")
def broker_state(broker: Broker) -> Iterator[None]:
    """Something to list and show: a queue with messages, an exchange bound to it, a consumer
    (pika); a topic with records and a consumer group with committed offsets (kafka-python)."""
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url + "?heartbeat=0"))
    channel = connection.channel()
    channel.queue_declare(QUEUE, durable=True)
    channel.exchange_declare(EXCHANGE, "topic", durable=True)
    channel.queue_bind(QUEUE, EXCHANGE, "a.#")
    for i in range(5):
        channel.basic_publish(EXCHANGE, "a.b", f"m{i}".encode())
    channel.queue_declare("jk-oa-consumed", exclusive=True)
    channel.basic_consume("jk-oa-consumed", lambda *a: None)
    connection.process_data_events(0)
    producer = kafka.KafkaProducer(bootstrap_servers=broker.kafka_bootstrap)
    for i in range(3):
        producer.send(TOPIC, key=b"k", value=f"r{i}".encode(), headers=[("h", b"v")], partition=0)
    producer.flush()
    producer.close()
    consumer = kafka.KafkaConsumer(bootstrap_servers=broker.kafka_bootstrap, group_id=GROUP)
    consumer.commit({kafka.TopicPartition(TOPIC, 0): kafka.OffsetAndMetadata(1, "", -1)})
    consumer.close()  # the group stays, Empty, with its offsets (reset-offsets may act on it)
    yield
    connection.close()


schema = schemathesis.openapi.from_dict(document(), config=SchemathesisConfig.from_dict(CONFIG))


@schema.hook
def filter_case(context: Any, case: Any) -> bool:
    return not _protected(case)


@schema.hook
def flatmap_case(context: Any, case: Any) -> Any:
    """Half the bodies that repeat the path agree with it (the others are refused, 400)."""
    if not isinstance(case.body, dict) or not set(case.body) & set(_path_keys(case)):
        return st.just(case)

    def agree(yes: bool) -> Any:
        if yes:
            case.body.update({k: v for k, v in _path_keys(case).items() if k in case.body})
        return case

    return st.booleans().map(agree)


@schema.parametrize()
def test_the_api_answers_as_documented(case: Any, broker: Broker, broker_state: None) -> None:
    case.call_and_validate(base_url=broker.http_url)


def test_openapi_json_needs_credentials(broker: Broker) -> None:
    url = broker.http_url + "/api/openapi.json"
    refused = requests.get(url, timeout=10)
    assert refused.status_code == 401
    assert refused.json() == {"error": "not_authorized", "reason": "Not_Authorized"}
    served = requests.get(url, auth=GUEST, timeout=10)
    assert served.status_code == 200
    assert served.headers["Content-Type"].startswith("application/json")
    assert served.json() == document()
