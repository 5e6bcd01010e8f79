"""Bad input the HTTP API once answered with a 500 (found while checking the handlers against
the OpenAPI document): each is a 400 naming the problem, and nothing is taken or lost; and a
method a path does not have is a JSON 405 that names the methods it has."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from jackalope import Broker

GUEST = {"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()}


class Api:
    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http, self.url = http, url

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, self.url + path, json=body, headers=GUEST) as r:
            text = await r.text()
            return r.status, (await r.json()) if text else None


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with Broker(tmp_path / "data") as broker, aiohttp.ClientSession() as http:
        api = Api(http, broker.http_url + "/api")
        assert (await api.call("PUT", "/queues/%2F/q", {"durable": True}))[0] == 201
        published = {"routing_key": "q", "payload": "m", "payload_encoding": "string", "properties": {}}
        assert await api.call("POST", "/exchanges/%2F/amq.default/publish", published) == (
            200,
            {"routed": True},
        )
        yield api


async def _depth(api: Api) -> int:
    status, queue = await api.call("GET", "/queues/%2F/q")
    assert status == 200
    depth: int = queue["messages"]
    return depth


@pytest.mark.parametrize("count", ["²", "--5", "٣x"])
async def test_get_with_a_count_that_is_no_decimal(api: Api, count: str) -> None:
    status, body = await api.call(
        "POST", "/queues/%2F/q/get", {"count": count, "ackmode": "ack_requeue_false"}
    )
    assert (status, body["reason"]) == (400, "count must be an integer")
    assert await _depth(api) == 1  # nothing taken


@pytest.mark.parametrize(
    ("properties", "reason"),
    [
        ({"timestamp": 10**20}, "timestamp is out of range"),
        ({"timestamp": -(10**12)}, "timestamp is out of range"),
        ({"expiration": "²"}, "expiration must be a non-negative integer"),
        ({"headers": {"big": 1.5e308}}, "invalid message properties"),
    ],
)
async def test_publish_with_properties_out_of_range(
    api: Api, properties: dict[str, Any], reason: str
) -> None:
    body = {"routing_key": "q", "payload": "x", "properties": properties}
    status, answer = await api.call("POST", "/exchanges/%2F/amq.default/publish", body)
    assert status == 400
    assert answer["error"] == "bad_request"
    assert answer["reason"].startswith(reason)
    assert await _depth(api) == 1  # nothing published


async def test_publish_a_base64_payload_that_is_not_ascii(api: Api) -> None:
    body = {"routing_key": "q", "payload": "héllo", "payload_encoding": "base64"}
    status, answer = await api.call("POST", "/exchanges/%2F/amq.default/publish", body)
    assert (status, answer["reason"]) == (400, "payload is not valid base64")
    assert await _depth(api) == 1


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"key": "héllo", "value": "aGk="}, "records[0].key is not valid base64"),
        (
            {"value": "aGk=", "timestamp": 2**63},
            "records[0].timestamp must be a non-negative integer (ms since the epoch)",
        ),
    ],
)
async def test_produce_bad_records_to_a_topic(api: Api, record: dict[str, Any], reason: str) -> None:
    assert (await api.call("PUT", "/kafka/topics/t", {"partitions": 1}))[0] == 201
    status, answer = await api.call("POST", "/kafka/topics/t/records?encoding=base64", {"records": [record]})
    assert (status, answer["reason"]) == (400, reason)
    assert (await api.call("GET", "/kafka/topics/t"))[1]["partitions"][0]["high_watermark"] == 0


@pytest.mark.parametrize(
    ("definitions", "reason"),
    [
        (
            {"exchanges": [{"name": "dx", "vhost": "/", "type": "direct", "arguments": [1]}]},
            "exchange 'dx': arguments must be an object",
        ),
        (
            {
                "exchanges": [{"name": "dx", "vhost": "/", "type": "direct"}],
                "bindings": [
                    {
                        "source": "dx",
                        "vhost": "/",
                        "destination": "q",
                        "destination_type": "queue",
                        "arguments": [1],
                    }
                ],
            },
            "binding 'dx' -> 'q': arguments must be an object",
        ),
    ],
)
async def test_definitions_with_arguments_that_are_no_object(
    api: Api, definitions: dict[str, Any], reason: str
) -> None:
    status, answer = await api.call("POST", "/definitions", definitions)
    assert (status, answer["reason"]) == (400, reason)
    assert (await api.call("GET", "/exchanges/%2F/dx"))[0] == 404  # nothing taken


async def test_a_method_the_path_has_not(api: Api) -> None:
    async with api.http.request("PATCH", api.url + "/queues/%2F/q", headers=GUEST) as r:
        assert r.status == 405
        assert set(r.headers["Allow"].split(",")) == {"GET", "HEAD", "PUT", "DELETE"}
        assert (await r.json())["error"] == "method_not_allowed"
