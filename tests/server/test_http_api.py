"""The HTTP API over a real socket against the embedded broker, error paths included."""

from __future__ import annotations

import asyncio
import base64
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from jackalope import Broker
from tests.conftest import GUEST_AUTH

GUEST = {"Authorization": GUEST_AUTH}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    async with Broker(tmp_path, segment_bytes=4096) as broker, aiohttp.ClientSession(headers=GUEST) as http:
        yield http, broker.http_url + "/api"


async def test_log_lifecycle(api: tuple[aiohttp.ClientSession, str]) -> None:
    http, url = api
    async with http.put(url + "/logs/orders", json={"config": {"retention_ms": 1000}}) as r:
        assert r.status == 201
        assert (await r.json())["config"]["retention_ms"] == 1000
    async with http.put(url + "/logs/orders") as r:
        assert r.status == 200  # idempotent
    records = [{"value": f"order-{i}", "key": f"k{i % 3}", "headers": {"n": str(i)}} for i in range(50)]
    async with http.post(url + "/logs/orders/records", json={"records": records}) as r:
        assert await r.json() == {"base_offset": 0, "last_offset": 49}
    async with http.get(url + "/logs/orders/records", params={"offset": "10", "max_bytes": "1"}) as r:
        body = await r.json()
        first = body["records"][0]
        assert first["offset"] == 10
        assert first["value"] == "order-10"
        assert first["key"] == "k1"
        assert first["headers"] == {"n": "10"}
        assert body["next_offset"] == body["records"][-1]["offset"] + 1
    async with http.get(url + "/logs") as r:
        assert [entry["name"] for entry in await r.json()] == ["orders"]
    async with http.post(url + "/logs/orders/truncate", json={"before": 20}) as r:
        assert (await r.json())["start_offset"] == 20
    async with http.get(url + "/logs/orders/records", params={"offset": "5"}) as r:
        assert r.status == 416
        body = await r.json()
        assert body["error"] == "offset_out_of_range"
        assert body["start_offset"] == 20
    async with http.delete(url + "/logs/orders") as r:
        assert r.status == 204
    async with http.get(url + "/logs/orders") as r:
        assert r.status == 404
        assert (await r.json())["error"] == "not_found"


async def test_binary_values_with_base64(api: tuple[aiohttp.ClientSession, str]) -> None:
    http, url = api
    await (await http.put(url + "/logs/bin")).release()
    blob = bytes(range(256))
    payload = {"records": [{"value": base64.b64encode(blob).decode(), "key": None, "timestamp": 1234}]}
    async with http.post(url + "/logs/bin/records?encoding=base64", json=payload) as r:
        assert r.status == 200
    async with http.get(url + "/logs/bin/records?offset=0&encoding=base64") as r:
        record = (await r.json())["records"][0]
    assert base64.b64decode(record["value"]) == blob
    assert record["key"] is None
    assert record["timestamp"] == 1234


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"records": []}', "at least one"),
        (b'{"records": [1]}', "must be an object"),
        (b'{"records": [{"value": 5}]}', "value must be a string"),
        (b'{"records": [{"value": "x", "timestamp": "now"}]}', "timestamp must be an integer"),
        (b'{"records": [{"value": "x", "headers": []}]}', "headers must be an object"),
    ],
)
async def test_bad_appends_are_400_and_write_nothing(
    api: tuple[aiohttp.ClientSession, str], body: bytes, reason: str
) -> None:
    http, url = api
    await (await http.put(url + "/logs/strict")).release()
    async with http.post(url + "/logs/strict/records", data=body) as r:
        assert r.status == 400
        assert reason in (await r.json())["reason"]
    async with http.get(url + "/logs/strict") as r:
        assert (await r.json())["end_offset"] == 0


async def test_append_to_missing_log_is_404(api: tuple[aiohttp.ClientSession, str]) -> None:
    http, url = api
    async with http.post(url + "/logs/ghost/records", json={"records": [{"value": "x"}]}) as r:
        assert r.status == 404


async def test_bad_parameters(api: tuple[aiohttp.ClientSession, str]) -> None:
    http, url = api
    await (await http.put(url + "/logs/p")).release()
    async with http.get(url + "/logs/p/records?offset=abc") as r:
        assert r.status == 400
    async with http.get(url + "/logs/p/records?encoding=rot13") as r:
        assert r.status == 400
    async with http.put(url + "/logs/bad", json={"config": {"segment_bytes": 1}}) as r:
        assert r.status == 400
    async with http.put(url + "/logs/bad2", json={"config": {"no_such_setting": 1}}) as r:
        assert r.status == 400
    async with http.post(url + "/logs/p/truncate", json={"before": "x"}) as r:
        assert r.status == 400


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/health"),
        ("GET", "/overview"),
        ("GET", "/logs"),
        ("PUT", "/logs/x"),
        ("DELETE", "/logs/x"),
        ("POST", "/logs/x/records"),
        ("GET", "/health/checks/alarms"),
        ("GET", "/no/such/endpoint"),
    ],
)
@pytest.mark.parametrize("auth", [None, "guest:wrong", "nobody:x", "no colon"])
async def test_every_endpoint_authenticates(tmp_path: Path, method: str, path: str, auth: str | None) -> None:
    headers = {} if auth is None else {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
    async with Broker(tmp_path) as broker:
        async with (
            aiohttp.ClientSession(headers=headers) as http,
            http.request(method, broker.http_url + "/api" + path, json={}) as r,
        ):
            assert r.status == 401
            assert r.headers["WWW-Authenticate"] == 'Basic realm="Jackalope"'
            assert await r.json() == {"error": "not_authorized", "reason": "Not_Authorized"}
        headers = {"Authorization": "Basic !!!"}
        async with (
            aiohttp.ClientSession() as http,
            http.get(broker.http_url + "/api/logs", headers=headers) as r,
        ):
            assert r.status == 401


async def test_the_logs_of_queues_topics_and_groups_are_read_only(tmp_path: Path) -> None:
    import pika

    async with Broker(tmp_path) as broker, aiohttp.ClientSession(headers=GUEST) as http:
        conn = await asyncio.to_thread(pika.BlockingConnection, pika.URLParameters(broker.amqp_url))
        ch = await asyncio.to_thread(conn.channel)
        await asyncio.to_thread(ch.queue_declare, "jobs", durable=True)
        await asyncio.to_thread(ch.queue_declare, "feed", durable=True, arguments={"x-queue-type": "stream"})
        await asyncio.to_thread(conn.close)
        url = broker.http_url + "/api/logs/"
        async with http.get(url.rstrip("/")) as r:
            names = {entry["name"] for entry in await r.json()}
        assert {"queue///jobs", "topic/feed/0"} <= names
        for name in ("queue///jobs", "topic/feed/0", "topic/not-yet/0", "__consumer_offsets"):
            quoted = urllib.parse.quote(name, safe="")
            for method, path, body in [
                ("PUT", "", {}),
                ("DELETE", "", None),
                ("POST", "/records", {"records": [{"value": "x"}]}),
                ("POST", "/truncate", {"before": 1}),
            ]:
                async with http.request(method, url + quoted + path, json=body) as r:
                    assert r.status == 403, (method, name)
                    assert (await r.json())["error"] == "access_refused"
        async with http.get(url + urllib.parse.quote("queue///jobs", safe="")) as r:
            assert r.status == 200  # reading is fine


async def test_alarms_show_in_health_checks_and_the_overview(tmp_path: Path) -> None:
    async with (
        Broker(tmp_path, memory_high_watermark="1MiB") as broker,
        aiohttp.ClientSession(headers=GUEST) as http,
    ):
        for path in ("/api/health/checks/alarms", "/api/health/checks/local-alarms"):
            async with http.get(broker.http_url + path) as r:
                assert r.status == 503
                body = await r.json()
                assert body["status"] == "failed"
                assert [a["resource"] for a in body["alarms"]] == ["memory"]
        async with http.get(broker.http_url + "/api/overview") as r:
            assert [a["resource"] for a in (await r.json())["alarms"]] == ["memory"]
    async with (
        Broker(tmp_path) as broker,
        aiohttp.ClientSession(headers=GUEST) as http,
        http.get(broker.http_url + "/api/health/checks/alarms") as r,
    ):
        assert r.status == 200 and await r.json() == {"status": "ok"}
