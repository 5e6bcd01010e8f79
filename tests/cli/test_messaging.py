"""Queues, exchanges, bindings, messages, connections, channels and consumers through the
installed ``jackalope`` command, with the state made and checked by pika."""

from __future__ import annotations

import base64
import signal
from collections.abc import Iterator

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel

from jackalope import Broker
from tests.cli.conftest import Run, table_lines


@pytest.fixture
def channel(broker: Broker) -> Iterator[BlockingChannel]:
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    ch = connection.channel()
    ch.confirm_delivery()  # a publish has landed when basic_publish returns
    yield ch
    if connection.is_open:
        connection.close()


def _depth(channel: BlockingChannel, queue: str) -> int:
    return int(channel.queue_declare(queue, passive=True).method.message_count)


def test_declare_list_and_delete_a_queue(cli: Run, channel: BlockingChannel) -> None:
    declared = cli("declare", "queue", "cli.q1", "--type", "quorum", "-x", "x-max-length=100", "--json")
    assert declared.code == 0, declared.err
    assert declared.json() == {"queue": "cli.q1", "vhost": "/", "declared": True}
    for i in range(3):
        channel.basic_publish("", "cli.q1", f"m{i}".encode())
    rows = {q["name"]: q for q in cli("queues", "list", "--json").json()}
    q = rows["cli.q1"]
    assert (q["type"], q["durable"], q["messages"], q["messages_ready"]) == ("quorum", True, 3, 3)
    assert q["arguments"]["x-max-length"] == 100
    table = table_lines(cli("queues", "list").out)
    assert table[0].split()[:4] == ["NAME", "TYPE", "DURABLE", "STATE"]
    row = next(line.split() for line in table if line.startswith("cli.q1 "))
    assert row[:3] == ["cli.q1", "quorum", "yes"] and "3" in row
    assert cli("delete", "queue", "cli.q1").code == 0
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        _depth(channel, "cli.q1")
    assert closed.value.reply_code == 404


def test_publish_routes_through_a_declared_binding(cli: Run, channel: BlockingChannel) -> None:
    assert cli("declare", "exchange", "cli.x", "--type", "topic").code == 0
    assert cli("declare", "queue", "cli.routed").code == 0
    bound = cli("declare", "binding", "--source", "cli.x", "--destination", "cli.routed", "-k", "a.*")
    assert bound.code == 0, bound.err
    bindings = cli("bindings", "list", "--json").json()
    assert any(
        (b["source"], b["destination"], b["destination_type"], b["routing_key"])
        == ("cli.x", "cli.routed", "queue", "a.*")
        for b in bindings
    )
    exchanges = {e["name"]: e for e in cli("exchanges", "list", "--json").json()}
    assert exchanges["cli.x"]["type"] == "topic"
    published = cli(
        "publish",
        "-e",
        "cli.x",
        "-k",
        "a.b",
        "-p",
        "content_type=text/plain",
        "-p",
        "delivery_mode=2",
        "-H",
        "attempt=3",
        "hello, routed",
        "--json",
    )
    assert (published.code, published.json()) == (0, {"routed": True})
    method, props, body = channel.basic_get("cli.routed", auto_ack=True)
    assert method is not None and body == b"hello, routed"
    assert (method.exchange, method.routing_key) == ("cli.x", "a.b")
    assert (props.content_type, props.delivery_mode, props.headers) == ("text/plain", 2, {"attempt": 3})
    # unroutable: a note, exit 0; with --mandatory, exit 1
    lost = cli("publish", "-e", "cli.x", "-k", "b.c", "nobody hears")
    assert lost.code == 0 and "not routed" in lost.err
    assert cli("publish", "-e", "cli.x", "-k", "b.c", "--mandatory", "x").code == 1
    unbound = cli("delete", "binding", "-s", "cli.x", "-d", "cli.routed", "-k", "a.*")
    assert unbound.code == 0, unbound.err
    assert cli("publish", "-e", "cli.x", "-k", "a.b", "--mandatory", "x").code == 1
    again = cli("delete", "binding", "-s", "cli.x", "-d", "cli.routed", "-k", "a.*")
    assert again.code == 1 and "no binding" in again.err
    assert cli("delete", "exchange", "cli.x").code == 0
    assert cli("delete", "queue", "cli.routed").code == 0


def test_publish_from_stdin_keeps_binary_payloads(cli: Run, channel: BlockingChannel) -> None:
    channel.queue_declare("cli.stdin")
    assert cli("publish", "-k", "cli.stdin", input="from stdin\n").code == 0
    assert channel.basic_get("cli.stdin", auto_ack=True)[2] == b"from stdin\n"
    binary = bytes(range(256))
    done = cli.bytes_in("publish", "-k", "cli.stdin", "-", input=binary)
    assert done.returncode == 0, done.stderr
    assert channel.basic_get("cli.stdin", auto_ack=True)[2] == binary
    as_b64 = base64.b64encode(b"\x00\xffraw").decode()
    assert cli("publish", "-k", "cli.stdin", "--base64", as_b64).code == 0
    assert channel.basic_get("cli.stdin", auto_ack=True)[2] == b"\x00\xffraw"
    assert cli("publish", "-k", "cli.stdin", "--base64", "not base64!").code == 2
    assert cli("publish", "-k", "cli.stdin", "-p", "priority=high", "x").code == 2
    assert cli("publish", "-k", "cli.stdin", "-p", "colour=red", "x").code == 2
    assert _depth(channel, "cli.stdin") == 0  # nothing half-published
    channel.queue_delete("cli.stdin")


def test_get_peeks_or_takes_and_purge_empties(cli: Run, channel: BlockingChannel) -> None:
    channel.queue_declare("cli.get")
    for i in range(4):
        channel.basic_publish("", "cli.get", f"body {i}".encode(), pika.BasicProperties(message_id=f"id-{i}"))
    peeked = cli("get", "cli.get", "--count", "2", "--json")
    assert peeked.code == 0, peeked.err
    messages = peeked.json()
    assert [m["payload"] for m in messages] == ["body 0", "body 1"]
    assert messages[0]["properties"]["message_id"] == "id-0" and messages[0]["routing_key"] == "cli.get"
    assert _depth(channel, "cli.get") == 4  # ack_requeue_true puts them back
    table = table_lines(cli("get", "cli.get").out)
    assert table[0].split()[:2] == ["ROUTING-KEY", "EXCHANGE"] and "body 0" in table[1]
    taken = cli("get", "cli.get", "--ackmode", "ack_requeue_false", "--json").json()
    assert [m["payload"] for m in taken] == ["body 0"]
    assert _depth(channel, "cli.get") == 3
    assert cli("purge", "queue", "cli.get").code == 0
    assert _depth(channel, "cli.get") == 0
    empty = cli("get", "cli.get")
    assert (empty.code, empty.out) == (0, "") and "empty" in empty.err
    assert cli("get", "cli.get", "--json").json() == []
    channel.queue_delete("cli.get")


def test_unknown_queue_exits_1_with_the_reason(cli: Run) -> None:
    for args in (
        ("get", "cli.nowhere"),
        ("purge", "queue", "cli.nowhere"),
        ("delete", "queue", "cli.nowhere"),
    ):
        result = cli(*args)
        assert (result.code, result.out) == (1, ""), args
        assert "Not Found" in result.err and "404" in result.err


def test_consume_count_takes_them_all(cli: Run, channel: BlockingChannel) -> None:
    channel.queue_declare("cli.consume")
    for i in range(5):
        channel.basic_publish("", "cli.consume", f"c{i}".encode())
    result = cli("consume", "cli.consume", "--count", "5")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [f"c{i}" for i in range(5)]
    assert "consumed 5 messages" in result.err
    assert _depth(channel, "cli.consume") == 0
    for i in range(3):
        channel.basic_publish("", "cli.consume", f"t{i}".encode())
    shown = cli.on_terminal("consume", "cli.consume", "--count", "3")
    assert shown.code == 0, shown.err
    assert shown.out.splitlines() == ["t0", "t1", "t2"]  # the payloads stay on stdout
    assert "consuming cli.consume" in shown.err and "3/3" in shown.err  # the bar, on the terminal
    assert "t0" not in shown.err
    assert cli("consume", "cli.consume").code == 2  # neither --follow nor --count
    assert cli("consume", "cli.consume", "--follow", "--count", "1").code == 2
    channel.queue_delete("cli.consume")


def test_consume_follow_until_interrupted(cli: Run, channel: BlockingChannel) -> None:
    channel.queue_declare("cli.follow")
    follower = cli.popen("consume", "cli.follow", "--follow", "--json")
    try:
        assert follower.stdout is not None
        for i in range(3):
            channel.basic_publish("", "cli.follow", f"f{i}".encode())
            line = follower.stdout.readline()  # waits for the message to come through
            assert f'"payload": "f{i}"' in line
        follower.send_signal(signal.SIGINT)
        _, err = follower.communicate(timeout=30)
        assert follower.returncode == 0 and "consumed 3 messages" in err
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert _depth(channel, "cli.follow") == 0
    channel.queue_delete("cli.follow")


def test_connections_channels_and_consumers(cli: Run, broker: Broker) -> None:
    connection = pika.BlockingConnection(
        pika.URLParameters(broker.amqp_url + "?client_properties={'connection_name':'cli-test'}")
    )
    try:
        ch = connection.channel()
        ch.basic_qos(prefetch_count=7)
        ch.queue_declare("cli.watched")
        ch.basic_consume("cli.watched", lambda *a: None, consumer_tag="cli-tag")
        connections = cli("connections", "list", "--json").json()
        mine = [c for c in connections if c.get("user") == "guest" and c.get("channels") == 1]
        assert mine, connections
        channels = cli("channels", "list", "--json").json()
        assert any(c.get("prefetch_count") == 7 and c.get("consumer_count") == 1 for c in channels)
        consumers = cli("consumers", "list", "--json").json()
        tagged = [c for c in consumers if c["consumer_tag"] == "cli-tag"]
        assert tagged and tagged[0]["queue"]["name"] == "cli.watched"
        for kind in ("connections", "channels", "consumers"):
            table = table_lines(cli(kind, "list").out)
            assert len(table) >= 2, kind
        assert "cli-tag" in cli("consumers", "list").out
        name = next(c["name"] for c in connections if c in mine)
        assert cli("connections", "close", name, "--reason", "go away").code == 0
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
            connection.process_data_events(time_limit=10)
            connection.sleep(10)
        assert closed.value.reply_code == 320 and "go away" in closed.value.reply_text
    finally:
        if connection.is_open:
            connection.close()
