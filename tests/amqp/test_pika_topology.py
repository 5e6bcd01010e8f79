"""Queues, exchanges and bindings with pika's BlockingConnection: declaring them, routing through
every exchange type, and the errors the broker answers with (by reply code, as RabbitMQ does)."""

from __future__ import annotations

from collections.abc import Callable

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from tests.amqp.support import Names, get_all, queue_exists, ready_count, wait_until

# Reply codes of AMQP 0-9-1
ACCESS_REFUSED = 403
NOT_FOUND = 404
RESOURCE_LOCKED = 405
PRECONDITION_FAILED = 406


def exchange_exists(conn: BlockingConnection, name: str) -> bool:
    ch = conn.channel()
    try:
        ch.exchange_declare(name, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        assert exc.reply_code == NOT_FOUND
        return False
    ch.close()
    return True


def routed_to(
    ch: BlockingChannel, exchange: str, routing_key: str, queues: list[str], headers: dict | None = None
) -> list[str]:
    """Publish one message (on a channel in confirm mode) and say which of ``queues`` got it."""
    try:
        ch.basic_publish(
            exchange, routing_key, b"probe", pika.BasicProperties(headers=headers), mandatory=True
        )
    except pika.exceptions.UnroutableError:
        return []
    return [q for q in queues if get_all(ch, q)]


# -- queues --------------------------------------------------------------------------------------


def test_declare_queue_and_redeclare_it(channel: BlockingChannel, names: Names) -> None:
    q = names.queue()
    ok = channel.queue_declare(q, durable=True)
    assert (ok.method.queue, ok.method.message_count, ok.method.consumer_count) == (q, 0, 0)
    # Confirms: without them RabbitMQ may answer the next declare before the message is enqueued.
    channel.confirm_delivery()
    channel.basic_publish("", q, b"one")
    # Redeclaring with the same properties is a no-op that reports the current counts.
    again = channel.queue_declare(q, durable=True)
    assert (again.method.queue, again.method.message_count) == (q, 1)
    passive = channel.queue_declare(q, passive=True)
    assert passive.method.message_count == 1


def test_server_named_queues(channel: BlockingChannel) -> None:
    first = channel.queue_declare("", exclusive=True).method.queue
    second = channel.queue_declare("", exclusive=True).method.queue
    assert first.startswith("amq.gen-") and second.startswith("amq.gen-")
    assert first != second
    assert channel.queue_declare(first, passive=True).method.queue == first
    channel.confirm_delivery()
    channel.basic_publish("", second, b"to the server-named queue")
    assert get_all(channel, second) == [b"to the server-named queue"]


def test_passive_declare_of_a_missing_queue_is_404(connection: BlockingConnection, names: Names) -> None:
    ch = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        ch.queue_declare(names.queue("missing"), passive=True)
    assert err.value.reply_code == NOT_FOUND
    assert ch.is_closed
    assert connection.is_open  # a channel error closes the channel, not the connection
    assert connection.channel().queue_declare(names.queue("other")).method.message_count == 0


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"durable": True}, {"durable": False}),
        ({"arguments": {"x-max-length": 10}}, {"arguments": {"x-max-length": 20}}),
        ({"arguments": {"x-max-length-bytes": 1000}}, {}),
    ],
    ids=["durable", "argument-value", "argument-missing"],
)
def test_redeclare_with_different_properties_is_406(
    connection: BlockingConnection, names: Names, first: dict, second: dict
) -> None:
    q = names.queue()
    connection.channel().queue_declare(q, **first)
    ch = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        ch.queue_declare(q, **second)
    assert err.value.reply_code == PRECONDITION_FAILED
    assert queue_exists(connection, q)  # the original queue is untouched


def test_exclusive_queue_is_locked_to_its_connection(
    connect_to: Callable[..., BlockingConnection], names: Names
) -> None:
    owner = connect_to()
    q = names.queue("exclusive")
    owner.channel().queue_declare(q, exclusive=True)
    other = connect_to()
    for attempt in (
        lambda ch: ch.queue_declare(q, passive=True),
        lambda ch: ch.queue_declare(q, exclusive=True),
        lambda ch: ch.basic_consume(q, lambda *a: None),
        lambda ch: ch.basic_get(q),
        lambda ch: ch.queue_delete(q),
        lambda ch: ch.queue_purge(q),
    ):
        ch = other.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
            attempt(ch)
        assert err.value.reply_code == RESOURCE_LOCKED
    # The owner uses it normally, and it goes away with the owner's connection.
    owner_ch = owner.channel()
    owner_ch.confirm_delivery()
    owner_ch.basic_publish("", q, b"mine")
    assert get_all(owner_ch, q) == [b"mine"]
    owner.close()
    wait_until(lambda: not queue_exists(other, q), "the exclusive queue to be deleted")


def test_auto_delete_queue_goes_when_its_last_consumer_does(
    connection: BlockingConnection, names: Names
) -> None:
    q = names.queue("auto-delete")
    ch = connection.channel()
    ch.queue_declare(q, auto_delete=True)
    assert queue_exists(connection, q)  # never consumed from: stays
    first = ch.basic_consume(q, lambda *a: None)
    second = ch.basic_consume(q, lambda *a: None)
    ch.basic_cancel(first)
    assert queue_exists(connection, q)  # one consumer left
    ch.basic_cancel(second)
    # RabbitMQ deletes the queue just after answering cancel-ok, so wait for it.
    wait_until(lambda: not queue_exists(connection, q), "the auto-delete queue to be deleted")


def test_purge_and_delete_report_message_counts(channel: BlockingChannel, names: Names) -> None:
    q = names.queue()
    channel.queue_declare(q)
    channel.confirm_delivery()
    for i in range(5):
        channel.basic_publish("", q, b"m%d" % i)
    assert channel.queue_purge(q).method.message_count == 5
    assert ready_count(channel, q) == 0
    for i in range(3):
        channel.basic_publish("", q, b"m%d" % i)
    assert channel.queue_delete(q).method.message_count == 3


def test_delete_if_unused_refuses_a_queue_with_consumers(
    connection: BlockingConnection, names: Names
) -> None:
    q = names.queue()
    ch = connection.channel()
    ch.queue_declare(q)
    tag = ch.basic_consume(q, lambda *a: None)
    victim = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        victim.queue_delete(q, if_unused=True)
    assert err.value.reply_code == PRECONDITION_FAILED
    ch.basic_cancel(tag)
    connection.channel().queue_delete(q, if_unused=True)
    assert not queue_exists(connection, q)


def test_delete_if_empty_refuses_a_queue_with_messages(connection: BlockingConnection, names: Names) -> None:
    q = names.queue()
    ch = connection.channel()
    ch.confirm_delivery()
    ch.queue_declare(q)
    ch.basic_publish("", q, b"still here")
    victim = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        victim.queue_delete(q, if_empty=True)
    assert err.value.reply_code == PRECONDITION_FAILED
    assert get_all(ch, q) == [b"still here"]
    ch.queue_delete(q, if_empty=True)
    assert not queue_exists(connection, q)


def test_deleting_a_missing_queue_is_not_an_error(channel: BlockingChannel, names: Names) -> None:
    # RabbitMQ (since 3.2) answers delete-ok for a queue that does not exist.
    assert channel.queue_delete(names.queue("never-declared")).method.message_count == 0


# -- exchanges -----------------------------------------------------------------------------------


def test_declare_exchanges_of_every_type(connection: BlockingConnection, names: Names) -> None:
    ch = connection.channel()
    for kind in ("direct", "fanout", "topic", "headers"):
        x = names.exchange(kind)
        ch.exchange_declare(x, exchange_type=kind, durable=True)
        ch.exchange_declare(x, exchange_type=kind, durable=True)  # idempotent
        ch.exchange_declare(x, passive=True)
        assert exchange_exists(connection, x)
    ch.exchange_delete(names.exchanges[0])
    assert not exchange_exists(connection, names.exchanges[0])


def test_exchange_errors(connection: BlockingConnection, names: Names) -> None:
    x = names.exchange()
    connection.channel().exchange_declare(x, exchange_type="direct")
    cases: list[tuple[Callable[[BlockingChannel], object], int]] = [
        (lambda ch: ch.exchange_declare(names.exchange("missing"), passive=True), NOT_FOUND),
        (lambda ch: ch.exchange_declare(x, exchange_type="fanout"), PRECONDITION_FAILED),
        (lambda ch: ch.exchange_declare(x, exchange_type="direct", durable=True), PRECONDITION_FAILED),
        # Names starting with "amq." are reserved.
        (lambda ch: ch.exchange_declare("amq.jackalope-test." + names.suffix), ACCESS_REFUSED),
        (lambda ch: ch.exchange_delete("amq.direct"), ACCESS_REFUSED),
        (lambda ch: ch.exchange_delete(""), ACCESS_REFUSED),
    ]
    for attempt, code in cases:
        ch = connection.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
            attempt(ch)
        assert err.value.reply_code == code, err.value
    assert exchange_exists(connection, x)


def test_delete_exchange_if_unused(connection: BlockingConnection, names: Names) -> None:
    x, q = names.exchange(), names.queue()
    ch = connection.channel()
    ch.exchange_declare(x, exchange_type="direct")
    ch.queue_declare(q)
    ch.queue_bind(q, x, routing_key="k")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        ch.exchange_delete(x, if_unused=True)
    assert err.value.reply_code == PRECONDITION_FAILED
    ch = connection.channel()
    ch.queue_unbind(q, x, routing_key="k")
    ch.exchange_delete(x, if_unused=True)
    assert not exchange_exists(connection, x)


def test_predeclared_exchanges_exist(channel: BlockingChannel) -> None:
    for x in ("amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match"):
        channel.exchange_declare(x, passive=True)


# -- bindings and routing ------------------------------------------------------------------------


@pytest.fixture
def probe(channel: BlockingChannel) -> BlockingChannel:
    """A channel in confirm mode, for ``routed_to``."""
    channel.confirm_delivery()
    return channel


def test_default_exchange_routes_by_queue_name(probe: BlockingChannel, names: Names) -> None:
    a, b = names.queue("a"), names.queue("b")
    for q in (a, b):
        probe.queue_declare(q)
    assert routed_to(probe, "", a, [a, b]) == [a]
    assert routed_to(probe, "", names.queue("nobody"), [a, b]) == []


def test_binding_to_the_default_exchange_is_refused(connection: BlockingConnection, names: Names) -> None:
    ch = connection.channel()
    q = names.queue()
    ch.queue_declare(q)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        ch.queue_bind(q, "", routing_key="other")
    assert err.value.reply_code == ACCESS_REFUSED


def test_direct_exchange_bind_and_unbind(probe: BlockingChannel, names: Names) -> None:
    x, a, b = names.exchange(), names.queue("a"), names.queue("b")
    probe.exchange_declare(x, exchange_type="direct")
    for q in (a, b):
        probe.queue_declare(q)
    probe.queue_bind(a, x, routing_key="red")
    probe.queue_bind(b, x, routing_key="red")
    probe.queue_bind(b, x, routing_key="green")
    probe.queue_bind(b, x, routing_key="green")  # binding twice is one binding
    assert routed_to(probe, x, "red", [a, b]) == [a, b]
    assert routed_to(probe, x, "green", [a, b]) == [b]
    assert routed_to(probe, x, "blue", [a, b]) == []
    probe.queue_unbind(b, x, routing_key="red")
    assert routed_to(probe, x, "red", [a, b]) == [a]
    probe.queue_unbind(b, x, routing_key="green")
    assert routed_to(probe, x, "green", [a, b]) == []
    # RabbitMQ answers unbind-ok for a binding that does not exist.
    probe.queue_unbind(b, x, routing_key="never-bound")


def test_fanout_exchange_ignores_the_routing_key(probe: BlockingChannel, names: Names) -> None:
    x, a, b = names.exchange(), names.queue("a"), names.queue("b")
    probe.exchange_declare(x, exchange_type="fanout")
    for q in (a, b):
        probe.queue_declare(q)
        probe.queue_bind(q, x, routing_key="whatever-" + q)
    assert routed_to(probe, x, "anything", [a, b]) == [a, b]
    assert routed_to(probe, x, "", [a, b]) == [a, b]
    probe.queue_unbind(a, x, routing_key="whatever-" + a)
    assert routed_to(probe, x, "anything", [a, b]) == [b]


TOPIC_PATTERNS = ["a.b.c", "a.*.c", "a.#", "#", "*.b.*", "a.#.c", "*", "#.c", "a.*.#"]
# routing key -> the patterns above that match it (checked against RabbitMQ 3.10)
TOPIC_MATCHES = {
    "a.b.c": {"a.b.c", "a.*.c", "a.#", "#", "*.b.*", "a.#.c", "#.c", "a.*.#"},
    "a.x.c": {"a.*.c", "a.#", "#", "a.#.c", "#.c", "a.*.#"},
    "a": {"a.#", "#", "*"},
    "a.b": {"a.#", "#", "a.*.#"},
    "a.c": {"a.#", "#", "a.#.c", "#.c", "a.*.#"},
    "a.b.b.c": {"a.#", "#", "a.#.c", "#.c", "a.*.#"},
    "c": {"#", "*", "#.c"},
    "b.b.b": {"#", "*.b.*"},
    "": {"#"},
    "A.B.C": {"#"},  # matching is case-sensitive
}


def test_topic_exchange_wildcards(probe: BlockingChannel, names: Names) -> None:
    x = names.exchange()
    probe.exchange_declare(x, exchange_type="topic")
    queue_of = {}
    for i, pattern in enumerate(TOPIC_PATTERNS):
        q = names.queue(f"topic{i}")
        probe.queue_declare(q)
        probe.queue_bind(q, x, routing_key=pattern)
        queue_of[pattern] = q
    queues = list(queue_of.values())
    for key, expected in TOPIC_MATCHES.items():
        got = routed_to(probe, x, key, queues)
        assert {p for p, q in queue_of.items() if q in got} == expected, key
    probe.queue_unbind(queue_of["#"], x, routing_key="#")
    assert routed_to(probe, x, "", queues) == []


def test_headers_exchange_all_and_any(probe: BlockingChannel, names: Names) -> None:
    x = names.exchange()
    probe.exchange_declare(x, exchange_type="headers")
    q_all, q_any, q_default = names.queue("all"), names.queue("any"), names.queue("default")
    wanted = {"format": "pdf", "type": "report"}
    for q, args in (
        (q_all, {"x-match": "all", **wanted}),
        (q_any, {"x-match": "any", **wanted}),
        (q_default, {"format": "pdf"}),  # x-match defaults to all
    ):
        probe.queue_declare(q)
        probe.queue_bind(q, x, routing_key="ignored", arguments=args)
    queues = [q_all, q_any, q_default]
    assert routed_to(probe, x, "", queues, {"format": "pdf", "type": "report", "extra": 1}) == queues
    assert routed_to(probe, x, "", queues, {"format": "pdf"}) == [q_any, q_default]
    assert routed_to(probe, x, "", queues, {"type": "report"}) == [q_any]
    assert routed_to(probe, x, "", queues, {"format": "zip"}) == []
    assert routed_to(probe, x, "", queues, {}) == []
    assert routed_to(probe, x, "", queues, None) == []
    probe.queue_unbind(q_any, x, routing_key="ignored", arguments={"x-match": "any", **wanted})
    assert routed_to(probe, x, "", queues, {"type": "report"}) == []


def test_predeclared_exchanges_route(probe: BlockingChannel, names: Names) -> None:
    q, other = names.queue(), names.queue("other")
    probe.queue_declare(q)
    probe.queue_declare(other)
    probe.queue_bind(q, "amq.direct", routing_key=q)
    probe.queue_bind(q, "amq.fanout")
    probe.queue_bind(q, "amq.topic", routing_key=f"{q}.#")
    probe.queue_bind(q, "amq.headers", arguments={"x-match": "all", "to": q})
    probe.queue_bind(q, "amq.match", arguments={"x-match": "all", "via": q})
    assert routed_to(probe, "amq.direct", q, [q]) == [q]
    assert q in routed_to(probe, "amq.fanout", "", [q])  # others may share amq.fanout
    assert routed_to(probe, "amq.topic", f"{q}.some.thing", [q]) == [q]
    assert routed_to(probe, "amq.headers", "", [q], {"to": q}) == [q]
    assert routed_to(probe, "amq.match", "", [q], {"via": q}) == [q]
    probe.queue_unbind(q, "amq.direct", routing_key=q)
    probe.queue_unbind(q, "amq.fanout")
    probe.queue_unbind(q, "amq.topic", routing_key=f"{q}.#")
    probe.queue_unbind(q, "amq.headers", arguments={"x-match": "all", "to": q})
    probe.queue_unbind(q, "amq.match", arguments={"x-match": "all", "via": q})
    assert routed_to(probe, "amq.direct", q, [q]) == []
    assert routed_to(probe, "amq.topic", f"{q}.some.thing", [q]) == []


def test_exchange_to_exchange_binding(probe: BlockingChannel, names: Names) -> None:
    # A RabbitMQ extension (capability exchange_exchange_bindings) that clients such as kombu use.
    front, back, q = names.exchange("front"), names.exchange("back"), names.queue()
    probe.exchange_declare(front, exchange_type="topic")
    probe.exchange_declare(back, exchange_type="direct")
    probe.queue_declare(q)
    probe.exchange_bind(destination=back, source=front, routing_key="orders.*")
    probe.queue_bind(q, back, routing_key="orders.new")
    assert routed_to(probe, front, "orders.new", [q]) == [q]
    assert routed_to(probe, front, "orders.old", [q]) == []  # reaches back, which drops it
    probe.exchange_unbind(destination=back, source=front, routing_key="orders.*")
    assert routed_to(probe, front, "orders.new", [q]) == []


def test_binding_errors(connection: BlockingConnection, names: Names) -> None:
    x, q = names.exchange(), names.queue()
    ch = connection.channel()
    ch.exchange_declare(x)
    ch.queue_declare(q)
    for attempt in (
        lambda ch: ch.queue_bind(names.queue("missing"), x, routing_key="k"),
        lambda ch: ch.queue_bind(q, names.exchange("missing"), routing_key="k"),
    ):
        ch = connection.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
            attempt(ch)
        assert err.value.reply_code == NOT_FOUND


def test_deleting_a_queue_removes_its_bindings(probe: BlockingChannel, names: Names) -> None:
    x, q = names.exchange(), names.queue()
    probe.exchange_declare(x, exchange_type="fanout")
    probe.queue_declare(q)
    probe.queue_bind(q, x)
    probe.queue_delete(q)
    probe.queue_declare(q)  # same name, new queue: not bound
    assert routed_to(probe, x, "", [q]) == []
