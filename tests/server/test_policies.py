"""Policies and operator policies through the HTTP API (RabbitMQ's management shape), acting
live on queues and exchanges that pika uses, and kept across a restart."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pika
import pytest

from jackalope import Broker
from tests.conftest import GUEST_AUTH

GUEST = {"Authorization": GUEST_AUTH}


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    async with Broker(tmp_path) as running:
        yield running


async def put(broker: Broker, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(headers=GUEST) as http,
        http.put(broker.http_url + path, json=body) as r,
    ):
        return r.status, (await r.json() if r.content_type == "application/json" else None)


async def get(broker: Broker, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession(headers=GUEST) as http, http.get(broker.http_url + path) as r:
        return r.status, await r.json()


def pika_run(broker: Broker, work: Any) -> Any:
    """Run blocking pika ``work(channel)`` off the loop (the broker runs on it)."""

    def run() -> Any:
        conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        try:
            return work(conn.channel())
        finally:
            conn.close()

    return asyncio.get_running_loop().run_in_executor(None, run)


def counts(ch: Any, queue: str) -> int:
    return int(ch.queue_declare(queue, passive=True).method.message_count)


async def test_a_policy_caps_existing_and_new_queues_live(broker: Broker) -> None:
    def fill(ch: Any) -> int:
        ch.queue_declare("orders.eu")
        ch.confirm_delivery()
        for i in range(10):
            ch.basic_publish("", "orders.eu", b"%d" % i)
        return counts(ch, "orders.eu")

    assert await pika_run(broker, fill) == 10
    status, _ = await put(
        broker,
        "/api/policies/%2F/cap",
        {"pattern": "^orders\\.", "definition": {"max-length": 3}, "apply-to": "queues"},
    )
    assert status == 201

    def after(ch: Any) -> tuple[int, list[bytes]]:
        left = counts(ch, "orders.eu")
        bodies = []
        while (got := ch.basic_get("orders.eu", auto_ack=True))[0] is not None:
            bodies.append(got[2])
        return left, bodies

    assert await pika_run(broker, after) == (3, [b"7", b"8", b"9"])  # drop-head
    status, listed = await get(broker, "/api/policies/%2F")
    assert status == 200 and listed == [
        {
            "vhost": "/",
            "name": "cap",
            "pattern": "^orders\\.",
            "apply-to": "queues",
            "definition": {"max-length": 3},
            "priority": 0,
        }
    ]
    assert (
        await put(broker, "/api/policies/%2F/cap", {"pattern": "^orders\\.", "definition": {"max-length": 4}})
    )[0] == 204


async def test_dead_lettering_and_ttl_by_policy(broker: Broker) -> None:
    body = {
        "pattern": "^work$",
        "definition": {"message-ttl": 50, "dead-letter-exchange": "dlx"},
        "apply-to": "queues",
    }
    assert (await put(broker, "/api/policies/%2F/retry", body))[0] == 201

    def flow(ch: Any) -> bytes:
        ch.exchange_declare("dlx", "fanout")
        ch.queue_declare("dead")
        ch.queue_bind("dead", "dlx")
        ch.queue_declare("work")
        ch.confirm_delivery()
        ch.basic_publish("", "work", b"later")
        for method, _, got in ch.consume("dead", auto_ack=True, inactivity_timeout=10):
            assert method is not None, "the expired message never reached the dead-letter queue"
            ch.cancel()
            return bytes(got)
        raise AssertionError("unreachable")

    assert await pika_run(broker, flow) == b"later"


async def test_an_operator_policy_caps_what_users_ask(broker: Broker) -> None:
    op = {"pattern": ".*", "definition": {"max-length": 2}, "apply-to": "queues"}
    assert (await put(broker, "/api/operator-policies/%2F/limit", op))[0] == 201

    def flow(ch: Any) -> int:
        ch.queue_declare("big", arguments={"x-max-length": 1000})
        ch.confirm_delivery()
        for i in range(5):
            ch.basic_publish("", "big", b"%d" % i)
        return counts(ch, "big")

    assert await pika_run(broker, flow) == 2


async def test_alternate_exchange_by_policy(broker: Broker) -> None:
    body = {"pattern": "^main$", "definition": {"alternate-exchange": "ae"}, "apply-to": "exchanges"}
    assert (await put(broker, "/api/policies/%2F/ae", body))[0] == 201

    def flow(ch: Any) -> int:
        ch.exchange_declare("main", "direct")
        ch.exchange_declare("ae", "fanout")
        ch.queue_declare("unrouted")
        ch.queue_bind("unrouted", "ae")
        ch.confirm_delivery()
        ch.basic_publish("main", "nowhere", b"x")
        return counts(ch, "unrouted")

    assert await pika_run(broker, flow) == 1


@pytest.mark.parametrize(
    ("definition", "reason"),
    [({"ha-mode": "all"}, "mirrored"), ({"colour": "blue"}, "are not recognised policy settings")],
)
async def test_bad_definitions_are_400(broker: Broker, definition: dict[str, Any], reason: str) -> None:
    status, error = await put(broker, "/api/policies/%2F/bad", {"pattern": ".", "definition": definition})
    assert status == 400 and reason in error["reason"]
    assert (await get(broker, "/api/policies"))[1] == []


async def test_policies_survive_a_restart(tmp_path: Path) -> None:
    body = {"pattern": "^kept", "definition": {"max-length": 1}, "apply-to": "queues", "priority": 3}
    async with Broker(tmp_path) as broker:
        assert (await put(broker, "/api/policies/%2F/kept", body))[0] == 201
        assert (await put(broker, "/api/operator-policies/%2F/op", {**body, "priority": 0}))[0] == 201
    async with Broker(tmp_path) as again:
        assert (await get(again, "/api/policies/%2F/kept"))[1]["priority"] == 3
        assert (await get(again, "/api/operator-policies"))[1][0]["name"] == "op"

        def flow(ch: Any) -> int:
            ch.queue_declare("kept.q")
            ch.confirm_delivery()
            ch.basic_publish("", "kept.q", b"1")
            ch.basic_publish("", "kept.q", b"2")
            return counts(ch, "kept.q")

        assert await pika_run(again, flow) == 1


async def test_policies_are_for_policymakers_and_operator_policies_for_administrators(broker: Broker) -> None:
    for user, tags in (("mgmt", "management"), ("maker", "policymaker")):
        assert (await put(broker, f"/api/users/{user}", {"password": "pw", "tags": tags}))[0] == 201
        perms = {"configure": ".*", "write": ".*", "read": ".*"}
        assert (await put(broker, f"/api/permissions/%2F/{user}", perms))[0] == 201
    body = {"pattern": ".", "definition": {"max-length": 1}, "apply-to": "queues"}

    async def put_as(user: str, path: str) -> int:
        auth = {"Authorization": "Basic " + base64.b64encode(f"{user}:pw".encode()).decode()}
        async with (
            aiohttp.ClientSession(headers=auth) as http,
            http.put(broker.http_url + path, json=body) as r,
        ):
            return r.status

    assert await put_as("mgmt", "/api/policies/%2F/p") == 401
    assert await put_as("maker", "/api/policies/%2F/p") == 201
    assert await put_as("maker", "/api/operator-policies/%2F/op") == 401
