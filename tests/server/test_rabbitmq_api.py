"""The management API's queues, exchanges, bindings, connections, channels, consumers, nodes
and health checks, in RabbitMQ's shapes, with the state made by real AMQP clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest

from jackalope import Broker
from tests.server.http_client import Api, auth


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with Broker(tmp_path / "data") as broker, aiohttp.ClientSession() as http:
        yield Api(http, broker.http_url + "/api", broker.amqp_url)


async def until(check: Any, what: str) -> Any:
    """Poll an API condition (state the broker changes on its own loop) without a fixed sleep."""
    for _ in range(500):
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def test_queue_depths_consumers_and_counts_follow_the_clients(api: Api) -> None:
    async with await aio_pika.connect(api.amqp_url) as conn:
        channel = await conn.channel()
        queue = await channel.declare_queue("work", durable=True)
        for i in range(5):
            await channel.default_exchange.publish(
                aio_pika.Message(b"job %d" % i, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), "work"
            )
        status, q = await api.call("GET", "/queues/%2F/work")
        assert status == 200
        assert (q["messages"], q["messages_ready"], q["messages_unacknowledged"]) == (5, 5, 0)
        assert (q["type"], q["durable"], q["vhost"], q["consumers"]) == ("classic", True, "/", 0)
        assert q["message_stats"]["publish"] == 5
        await channel.set_qos(prefetch_count=2)
        taken: list[aio_pika.abc.AbstractIncomingMessage] = []

        async def hold(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            taken.append(message)

        await queue.consume(hold)

        async def two_unacked() -> bool:
            q = (await api.call("GET", "/queues/%2F/work"))[1]
            return bool(q["messages_unacknowledged"] == 2 and q["consumers"] == 1)

        await until(two_unacked, "two deliveries held by the consumer")
        q = (await api.call("GET", "/queues/%2F/work"))[1]
        assert q["messages_ready"] == 3
        [detail] = q["consumer_details"]
        assert detail["queue"] == {"name": "work", "vhost": "/"} and detail["prefetch_count"] == 2
        assert detail["ack_required"] is True
        await taken[0].ack()

        async def one_acked() -> bool:
            stats = (await api.call("GET", "/queues/%2F/work"))[1]["message_stats"]
            return bool(stats.get("ack") == 1)

        await until(one_acked, "the ack counted")
        status, overview = await api.call("GET", "/overview")
        assert overview["object_totals"]["queues"] == 1 and overview["object_totals"]["consumers"] == 1
        assert overview["queue_totals"]["messages"] == 4
        assert overview["message_stats"]["publish"] == 5 and overview["message_stats"]["ack"] == 1


async def test_declare_delete_and_purge_queues(api: Api) -> None:
    body = {"durable": True, "auto_delete": False, "arguments": {"x-max-length": 10}}
    assert (await api.call("PUT", "/queues/%2F/made", body))[0] == 201
    assert (await api.call("PUT", "/queues/%2F/made", body))[0] == 204  # the same again
    status, answer = await api.call("PUT", "/queues/%2F/made", {**body, "durable": False})
    assert status == 400 and "inequivalent arg" in answer["reason"]
    status, answer = await api.call("PUT", "/queues/%2F/made", {**body, "exclusive": True})
    assert (status, answer["reason"]) == (400, "unsupported field(s): exclusive")
    status, _ = await api.call(
        "PUT", "/queues/%2F/qq", {"durable": True, "arguments": {"x-queue-type": "quorum"}}
    )
    assert status == 201
    assert (await api.call("GET", "/queues/%2F/qq"))[1]["type"] == "quorum"
    async with await aio_pika.connect(api.amqp_url) as conn:
        channel = await conn.channel()
        for _ in range(3):
            await channel.default_exchange.publish(aio_pika.Message(b"x"), "made")
    assert (await api.call("GET", "/queues/%2F/made"))[1]["messages"] == 3
    assert (await api.call("DELETE", "/queues/%2F/made/contents"))[0] == 204
    assert (await api.call("GET", "/queues/%2F/made"))[1]["messages"] == 0
    assert (await api.call("DELETE", "/queues/%2F/made"))[0] == 204
    assert await api.call("GET", "/queues/%2F/made") == (
        404,
        {"error": "Object Not Found", "reason": "Not Found"},
    )
    assert (await api.call("DELETE", "/queues/%2F/made"))[0] == 404
    assert (await api.call("GET", "/queues/nowhere"))[0] == 404


async def test_get_messages_with_each_ackmode(api: Api) -> None:
    assert (await api.call("PUT", "/queues/%2F/dead", {"durable": True}))[0] == 201
    assert (await api.call("PUT", "/exchanges/%2F/dlx", {"type": "fanout"}))[0] == 201
    assert (await api.call("POST", "/bindings/%2F/e/dlx/q/dead", {}))[0] == 201
    args = {"x-dead-letter-exchange": "dlx"}
    assert (await api.call("PUT", "/queues/%2F/src", {"durable": True, "arguments": args}))[0] == 201
    async with await aio_pika.connect(api.amqp_url) as conn:
        channel = await conn.channel()
        for i in range(4):
            message = aio_pika.Message(
                b"m%d" % i, headers={"n": i}, content_type="text/plain", correlation_id=f"c{i}"
            )
            await channel.default_exchange.publish(message, "src")
        await channel.default_exchange.publish(aio_pika.Message(b"\xff\xfe"), "src")
    get = {"count": 2, "ackmode": "ack_requeue_true", "encoding": "auto"}
    status, got = await api.call("POST", "/queues/%2F/src/get", get)
    assert status == 200 and [m["payload"] for m in got] == ["m0", "m1"]
    first = got[0]
    assert first["properties"]["headers"] == {"n": 0}
    assert first["properties"]["content_type"] == "text/plain"
    assert (first["exchange"], first["routing_key"], first["payload_encoding"]) == ("", "src", "string")
    assert [m["message_count"] for m in got] == [4, 3]  # what was left as each was taken
    status, again = await api.call("POST", "/queues/%2F/src/get", get)
    assert [m["payload"] for m in again] == ["m0", "m1"] and again[0]["redelivered"] is True
    got = (await api.call("POST", "/queues/%2F/src/get", {"count": 1, "ackmode": "ack_requeue_false"}))[1]
    assert got[0]["payload"] == "m0"
    got = (await api.call("POST", "/queues/%2F/src/get", {"count": 1, "ackmode": "reject_requeue_false"}))[1]
    assert got[0]["payload"] == "m1"
    assert (await api.call("GET", "/queues/%2F/dead"))[1]["messages"] == 1  # dead-lettered
    got = (await api.call("POST", "/queues/%2F/src/get", {"count": 5, "ackmode": "ack_requeue_false"}))[1]
    assert [m["payload_encoding"] for m in got] == ["string", "string", "base64"]
    assert got[2]["payload"] == "//4=" and got[2]["payload_bytes"] == 2
    assert (await api.call("POST", "/queues/%2F/src/get", get))[1] == []
    for bad, reason in (
        ({"count": 1, "ackmode": "nope"}, "ackmode must be one of"),
        ({"count": 0, "ackmode": "ack_requeue_true"}, "count must be a positive integer"),
        ({"count": 1, "ackmode": "ack_requeue_true", "encoding": "hex"}, "encoding must be auto or base64"),
        ({"count": 1, "ackmode": "ack_requeue_true", "colour": "red"}, "unsupported field(s): colour"),
    ):
        status, answer = await api.call("POST", "/queues/%2F/src/get", bad)
        assert status == 400 and answer["reason"].startswith(reason), answer


async def test_exchanges_publish_and_bindings(api: Api) -> None:
    assert (await api.call("PUT", "/exchanges/%2F/orders", {"type": "topic", "durable": True}))[0] == 201
    assert (await api.call("PUT", "/exchanges/%2F/orders", {"type": "topic", "durable": True}))[0] == 204
    status, answer = await api.call("PUT", "/exchanges/%2F/orders", {"type": "fanout"})
    assert status == 400 and "inequivalent arg" in answer["reason"]
    status, answer = await api.call("PUT", "/exchanges/%2F/odd", {"type": "x-unknown"})
    assert status == 400 and "x-unknown" in answer["reason"], answer
    assert (await api.call("PUT", "/queues/%2F/eu", {"durable": True}))[0] == 201
    status, _ = await api.call(
        "POST", "/bindings/%2F/e/orders/q/eu", {"routing_key": "eu.*", "arguments": {}}
    )
    assert status == 201
    status, between = await api.call("GET", "/bindings/%2F/e/orders/q/eu")
    assert [(b["routing_key"], b["properties_key"]) for b in between] == [("eu.*", "eu.*")]
    status, source = await api.call("GET", "/exchanges/%2F/orders/bindings/source")
    assert [b["destination"] for b in source] == ["eu"]
    status, of_queue = await api.call("GET", "/queues/%2F/eu/bindings")
    assert {b["source"] for b in of_queue} == {"", "orders"}  # the default exchange's too
    async with await aio_pika.connect(api.amqp_url) as conn:
        channel = await conn.channel()
        queue = await channel.get_queue("eu")
        publish = {
            "routing_key": "eu.paris",
            "payload": "bonjour",
            "payload_encoding": "string",
            "properties": {"delivery_mode": 2, "headers": {"from": "http"}, "message_id": "m-1"},
        }
        assert await api.call("POST", "/exchanges/%2F/orders/publish", publish) == (200, {"routed": True})
        received = await queue.get(timeout=5)
        assert received.body == b"bonjour" and received.headers == {"from": "http"}
        assert received.message_id == "m-1" and received.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        await received.ack()
        miss = {**publish, "routing_key": "us.nyc"}
        assert await api.call("POST", "/exchanges/%2F/orders/publish", miss) == (200, {"routed": False})
        to_default = {"routing_key": "eu", "payload": "aGk=", "payload_encoding": "base64", "properties": {}}
        assert (await api.call("POST", "/exchanges/%2F/amq.default/publish", to_default))[1] == {
            "routed": True
        }
        assert (await queue.get(timeout=5)).body == b"hi"
    status, answer = await api.call(
        "POST", "/exchanges/%2F/orders/publish", {**publish, "properties": {"colour": "red"}}
    )
    assert (status, answer["reason"]) == (400, "unknown message property 'colour'")
    status, exchange = await api.call("GET", "/exchanges/%2F/orders")
    assert exchange["message_stats"]["publish_in"] == 2 and exchange["message_stats"]["publish_out"] == 1
    assert (await api.call("DELETE", "/bindings/%2F/e/orders/q/eu/eu.*"))[0] == 204
    assert (await api.call("GET", "/bindings/%2F/e/orders/q/eu"))[1] == []
    assert (await api.call("DELETE", "/bindings/%2F/e/orders/q/eu/eu.*"))[0] == 404
    assert (await api.call("DELETE", "/exchanges/%2F/orders"))[0] == 204
    assert (await api.call("GET", "/exchanges/%2F/orders"))[0] == 404
    status, default = await api.call("GET", "/exchanges/%2F/amq.default")
    assert status == 200 and (default["name"], default["type"]) == ("", "direct")
    assert default["message_stats"]["publish_in"] == 1  # to_default, above
    status, implicit = await api.call("GET", "/exchanges/%2F/amq.default/bindings/source")
    assert [(b["destination"], b["routing_key"]) for b in implicit] == [("eu", "eu")]
    names = [e["name"] for e in (await api.call("GET", "/exchanges/%2F"))[1]]
    assert names[:2] == ["", "amq.direct"]  # the default exchange is listed, as RabbitMQ lists it


async def test_connections_channels_and_consumers(api: Api) -> None:
    async with await aio_pika.connect(api.amqp_url, client_properties={"connection_name": "billing"}) as conn:
        channel = await conn.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=7)
        queue = await channel.declare_queue("inbox")

        async def ignore(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            pass

        await queue.consume(ignore, consumer_tag="ctag-1")
        status, [c] = await api.call("GET", "/connections")
        assert (c["protocol"], c["user"], c["vhost"], c["state"]) == ("AMQP 0-9-1", "guest", "/", "running")
        assert c["client_properties"]["connection_name"] == "billing" and c["channels"] == 1
        assert c["peer_host"] == "127.0.0.1" and c["recv_oct"] > 0 and c["send_oct"] > 0
        status, one = await api.call("GET", "/connections/" + c["name"].replace(" ", "%20"))
        assert status == 200 and one["name"] == c["name"]
        status, [ch] = await api.call("GET", "/channels")
        assert (ch["number"], ch["prefetch_count"], ch["confirm"], ch["consumer_count"]) == (1, 7, True, 1)
        assert ch["connection_details"]["name"] == c["name"]
        status, [consumer] = await api.call("GET", "/consumers/%2F")
        assert consumer["consumer_tag"] == "ctag-1" and consumer["queue"] == {"name": "inbox", "vhost": "/"}
        closed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def on_close(_: Any, exc: Any) -> None:
            if not closed.done():
                closed.set_result(exc)

        conn.close_callbacks.add(on_close)
        status, _ = await api.call("DELETE", "/connections/" + c["name"].replace(" ", "%20"))
        assert status == 204
        exc = await asyncio.wait_for(closed, 10)
        assert "320" in str(exc) or "CONNECTION_FORCED" in str(exc)
    assert (await api.call("GET", "/connections"))[1] == []


async def test_who_sees_which_connections_and_may_change_what(api: Api) -> None:
    assert (await api.call("PUT", "/users/mia", {"password": "pw", "tags": "management"}))[0] == 201
    assert (
        await api.call("PUT", "/permissions/%2F/mia", {"configure": "^mia", "write": ".*", "read": ".*"})
    )[0] == 201
    async with await aio_pika.connect(api.amqp_url):
        assert (await api.call("GET", "/connections", who=("mia", "pw")))[1] == []  # guest's is not hers
        assert len((await api.call("GET", "/connections"))[1]) == 1
    assert (await api.call("PUT", "/queues/%2F/mia.q", {}, who=("mia", "pw")))[0] == 201
    status, answer = await api.call("PUT", "/queues/%2F/other", {}, who=("mia", "pw"))
    assert status == 403 and answer["error"] == "access_refused"
    assert answer["reason"] == "access to queue 'other' in vhost '/' refused for user 'mia'"
    assert (await api.call("GET", "/nodes", who=("mia", "pw")))[0] == 401  # monitoring and up
    assert (await api.call("GET", "/queues", who=("mia", "nope")))[0] == 401


async def test_list_parameters_as_rabbitmq_takes_them(api: Api) -> None:
    for name in ("a1", "b2", "a3", "c4"):
        assert (await api.call("PUT", f"/queues/%2F/{name}", {}))[0] == 201
    status, page = await api.call("GET", "/queues?page=1&page_size=3&name=a&sort=name&sort_reverse=true")
    assert status == 200
    assert (page["total_count"], page["filtered_count"], page["item_count"], page["page_count"]) == (
        4,
        2,
        2,
        1,
    )
    assert [q["name"] for q in page["items"]] == ["a3", "a1"]
    status, trimmed = await api.call("GET", "/queues?columns=name,message_stats.publish")
    assert trimmed == [{"name": n} for n in ("a1", "a3", "b2", "c4")]
    status, regex = await api.call("GET", "/queues?name=^[bc]&use_regex=true")
    assert [q["name"] for q in regex] == ["b2", "c4"]
    assert (await api.call("GET", "/queues?page=3&page_size=3"))[1]["reason"] == "page_out_of_range"
    assert (await api.call("GET", "/queues?page=1&page_size=501"))[0] == 400


async def test_health_checks_nodes_and_aliveness(api: Api) -> None:
    status, overview = await api.call("GET", "/overview")
    amqp = next(x for x in overview["listeners"] if x["protocol"] == "amqp")
    assert await api.call("GET", f"/health/checks/port-listener/{amqp['port']}") == (
        200,
        {"status": "ok", "port": amqp["port"]},
    )
    status, answer = await api.call("GET", "/health/checks/port-listener/1")
    assert status == 503 and answer["status"] == "failed"
    assert await api.call("GET", "/health/checks/virtual-hosts") == (200, {"status": "ok"})
    assert await api.call("GET", "/aliveness-test/%2F") == (200, {"status": "ok"})
    status, [node] = await api.call("GET", "/nodes")
    assert node["name"] == overview["node"] and node["running"] is True and node["mem_limit"] > 0
    assert (await api.call("GET", "/nodes/" + node["name"]))[1]["name"] == node["name"]
    assert (await api.call("GET", "/nodes/rabbit@elsewhere"))[0] == 404


async def test_errors_are_json_everywhere(api: Api) -> None:
    async with api.http.put(
        api.url + "/queues/%2F/q",
        data=b"{not json",
        headers={**auth("guest", "guest"), "Content-Type": "application/json"},
    ) as r:
        assert r.status == 400 and (await r.json())["error"] == "bad_request"
    async with api.http.get(api.url + "/no/such/endpoint", headers=auth("guest", "guest")) as r:
        assert r.status == 404 and await r.json() == {"error": "Object Not Found", "reason": "Not Found"}
    async with api.http.patch(api.url + "/queues", headers=auth("guest", "guest")) as r:
        assert r.status == 405 and "error" in json.loads(await r.text())
    async with api.http.get(api.url + "/queues") as r:  # no credentials
        assert r.status == 401 and (await r.json())["error"] == "not_authorized"
