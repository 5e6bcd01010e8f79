"""Definitions round-trip: a file exported from RabbitMQ 3.10.8 (``rabbitmqctl
export_definitions``, with exchanges, classic and quorum queues, queue and exchange bindings)
imports as it is and works; Jackalope's own export imports into a fresh broker unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp

from jackalope import Broker
from tests.server.http_client import Api

EXPORT = json.loads((Path(__file__).parent / "data" / "rabbitmq-3.10.8-definitions.json").read_text())


def topology(definitions: dict[str, Any]) -> dict[str, Any]:
    def key(item: dict[str, Any]) -> str:
        return json.dumps(item, sort_keys=True)

    return {
        k: sorted(definitions[k], key=key) for k in ("queues", "exchanges", "bindings", "vhosts", "policies")
    }


async def test_a_rabbitmq_export_imports_as_it_is_and_routes(tmp_path: Path) -> None:
    async with Broker(tmp_path / "a") as broker, aiohttp.ClientSession() as http:
        api = Api(http, broker.http_url + "/api", broker.amqp_url)
        assert (await api.call("POST", "/definitions", EXPORT))[0] == 204
        _, queues = await api.call("GET", "/queues/jk-export")
        assert {q["name"]: q["type"] for q in queues} == {
            "orders.q": "quorum",
            "orders.eu": "classic",
            "orders.dead": "classic",
        }
        eu = next(q for q in queues if q["name"] == "orders.eu")
        assert eu["arguments"] == {"x-dead-letter-exchange": "orders.dlx", "x-max-length": 1000}
        # the imported user logs in with its RabbitMQ password hash (RabbitMQ's guest/"guest")
        assert (await api.call("GET", "/whoami", who=("jk-admin", "guest")))[0] == 200
        url = broker.amqp_url.replace("guest:guest@", "jk-admin:guest@").rstrip("/") + "/jk-export"
        async with await aio_pika.connect(url) as conn:  # the imported user and its permissions
            channel = await conn.channel()
            orders = await channel.get_exchange("orders")
            await orders.publish(aio_pika.Message(b"to eu"), "eu.paris")
            await orders.publish(aio_pika.Message(b"to dlx"), "dead.letter")  # exchange-to-exchange
            got = await (await channel.get_queue("orders.eu")).get(timeout=5)
            assert got.body == b"to eu"
            await got.reject(requeue=False)  # dead-lettered through orders.dlx
            dead = await channel.get_queue("orders.dead")
            bodies = sorted([(await dead.get(timeout=5)).body, (await dead.get(timeout=5)).body])
            assert bodies == [b"to dlx", b"to eu"]


async def test_an_export_round_trips_into_a_fresh_broker(tmp_path: Path) -> None:
    async with Broker(tmp_path / "a") as first, aiohttp.ClientSession() as http:
        api = Api(http, first.http_url + "/api", first.amqp_url)
        assert (await api.call("POST", "/definitions", EXPORT))[0] == 204
        policy = {"pattern": "^orders", "apply-to": "queues", "definition": {"max-length": 10}}
        assert (await api.call("PUT", "/policies/jk-export/cap", policy))[0] == 201
        _, exported = await api.call("GET", "/definitions")
    async with Broker(tmp_path / "b") as second, aiohttp.ClientSession() as http:
        api = Api(http, second.http_url + "/api", second.amqp_url)
        assert (await api.call("POST", "/definitions", exported))[0] == 204
        _, again = await api.call("GET", "/definitions")
    assert topology(again) == topology(exported)
    assert {q["name"] for q in exported["queues"]} == {"orders.q", "orders.eu", "orders.dead"}
    assert len(exported["bindings"]) == 4


async def test_what_cannot_be_imported_is_refused_before_anything_is_taken(tmp_path: Path) -> None:
    async with Broker(tmp_path / "a") as broker, aiohttp.ClientSession() as http:
        api = Api(http, broker.http_url + "/api", broker.amqp_url)
        for change, reason in (
            ({"exchanges": [{**EXPORT["exchanges"][0], "type": "x-nope"}]}, "unknown exchange type 'x-nope'"),
            ({"global_parameters": [{"name": "mqtt_port", "value": 1}]}, "global parameter 'mqtt_port'"),
            (
                {"queues": [{**EXPORT["queues"][0], "vhost": "elsewhere"}]},
                "a vhost that is defined or exists",
            ),
            ({"topic_permissions": [{"user": "guest", "vhost": "/"}]}, "topic_permissions is not supported"),
        ):
            status, answer = await api.call("POST", "/definitions", {**EXPORT, **change})
            assert status == 400 and reason in answer["reason"], answer
        assert (await api.call("GET", "/vhosts/jk-export"))[0] == 404  # nothing taken
        cluster = {"global_parameters": [{"name": "cluster_name", "value": "rabbit@elsewhere"}]}
        assert (await api.call("POST", "/definitions", {**EXPORT, **cluster}))[0] == 204
