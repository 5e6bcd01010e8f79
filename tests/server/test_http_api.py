"""The HTTP API over a real socket against the embedded broker, error paths included."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import aiohttp
import pytest

from jackalope import Broker
from tests.conftest import GUEST_AUTH

GUEST = {"Authorization": GUEST_AUTH}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/health"),
        ("GET", "/overview"),
        ("GET", "/kafka/topics"),
        ("PUT", "/kafka/topics/x"),
        ("DELETE", "/kafka/topics/x"),
        ("POST", "/kafka/topics/x/records"),
        ("GET", "/kafka/groups"),
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
            http.get(broker.http_url + "/api/kafka/topics", headers=headers) as r,
        ):
            assert r.status == 401


async def test_only_topics_and_streams_are_topics(tmp_path: Path) -> None:
    """The logs behind classic queues and the consumer groups are no topics: the Kafka API
    neither shows nor changes them; a stream is its topic."""
    import pika

    async with Broker(tmp_path) as broker, aiohttp.ClientSession(headers=GUEST) as http:
        conn = await asyncio.to_thread(pika.BlockingConnection, pika.URLParameters(broker.amqp_url))
        ch = await asyncio.to_thread(conn.channel)
        await asyncio.to_thread(ch.queue_declare, "jobs", durable=True)
        await asyncio.to_thread(ch.queue_declare, "feed", durable=True, arguments={"x-queue-type": "stream"})
        await asyncio.to_thread(conn.close)
        url = broker.http_url + "/api/kafka/topics"
        async with http.get(url) as r:
            assert [t["name"] for t in await r.json()] == ["feed"]
        for name in ("jobs", "__consumer_offsets"):
            for method, path, body in [
                ("GET", "", None),
                ("PATCH", "", {"partitions": 2}),
                ("DELETE", "", None),
                ("POST", "/records", {"records": [{"value": "x"}]}),
            ]:
                async with http.request(method, f"{url}/{name}{path}", json=body) as r:
                    assert r.status == 404, (method, name)
                    assert (await r.json())["error"] == "not_found"
        async with http.put(f"{url}/feed", json={}) as r:
            assert r.status == 409  # the stream's topic


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
