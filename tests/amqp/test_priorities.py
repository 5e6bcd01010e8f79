"""Priority queues (``x-max-priority``, message ``priority``) and consumer priorities
(``x-priority``), with pika.  Every test but the restart passes against RabbitMQ too
(``JACKALOPE_TEST_AMQP_URL``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from tests.amqp.support import EXTERNAL_URL, Names, connect, get_all, wait_until
from tests.conftest import ServeProcess

PRECONDITION_FAILED = 406


def publish(
    ch: BlockingChannel, queue: str, bodies_priorities: list[tuple[bytes, int | None]], **props: object
) -> None:
    for body, priority in bodies_priorities:
        ch.basic_publish("", queue, body, pika.BasicProperties(priority=priority, **props))  # type: ignore[arg-type]


def test_higher_priority_first_capped_at_the_maximum(channel: BlockingChannel, names: Names) -> None:
    queue = names.queue()
    channel.queue_declare(queue, arguments={"x-max-priority": 5})
    channel.confirm_delivery()
    publish(
        channel, queue, [(b"1", 1), (b"9", 9), (b"5", 5), (b"none", None), (b"3", 3), (b"7", 7), (b"0", 0)]
    )
    got = []
    while True:
        method, props, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break
        got.append((body, props.priority))
    # 9 and 7 count as 5 and keep their order with it; the property is delivered as published
    assert got == [(b"9", 9), (b"5", 5), (b"7", 7), (b"3", 3), (b"1", 1), (b"none", None), (b"0", 0)]


def test_a_consumer_with_prefetch_gets_the_backlog_by_priority(
    channel: BlockingChannel, names: Names
) -> None:
    queue = names.queue()
    channel.queue_declare(queue, arguments={"x-max-priority": 10})
    channel.confirm_delivery()
    publish(channel, queue, [(b"low-%d" % i, 1) for i in range(5)] + [(b"urgent", 10), (b"normal", 5)])
    channel.basic_qos(prefetch_count=1)
    got: list[bytes] = []

    def on_message(ch: BlockingChannel, method: pika.spec.Basic.Deliver, _p: object, body: bytes) -> None:
        got.append(body)
        ch.basic_ack(method.delivery_tag)

    channel.basic_consume(queue, on_message)
    wait_until(lambda: len(got) == 7, "seven deliveries", channel.connection)
    assert got == [b"urgent", b"normal"] + [b"low-%d" % i for i in range(5)]


def test_requeued_messages_keep_their_priority_order(channel: BlockingChannel, names: Names) -> None:
    queue = names.queue()
    channel.queue_declare(queue, arguments={"x-max-priority": 3})
    channel.confirm_delivery()
    publish(channel, queue, [(b"a", 3), (b"b", 1), (b"c", 3)])
    tags = []
    for _ in range(3):
        method, _, _ = channel.basic_get(queue)
        assert method is not None
        tags.append(method.delivery_tag)
    channel.basic_nack(tags[-1], multiple=True, requeue=True)
    assert get_all(channel, queue) == [b"a", b"c", b"b"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (256, "{max_value_exceeded,256}"),
        (-1, "{value_negative,-1}"),
        ("ten", '"expected integer, got longstr"'),
    ],
)
def test_a_bad_max_priority_is_refused(
    connection: BlockingConnection, names: Names, value: object, reason: str
) -> None:
    queue = names.queue()
    ch = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        ch.queue_declare(queue, arguments={"x-max-priority": value})
    assert err.value.reply_code == PRECONDITION_FAILED
    assert f"invalid arg 'x-max-priority' for queue '{queue}' in vhost '/': {reason}" in err.value.reply_text


def test_max_priority_0_and_255_are_taken(channel: BlockingChannel, names: Names) -> None:
    for value in (0, 255):
        queue = names.queue(f"max{value}")
        channel.queue_declare(queue, arguments={"x-max-priority": value})
        channel.basic_publish("", queue, b"x", pika.BasicProperties(priority=200))
        assert get_all(channel, queue) == [b"x"]


def test_high_priority_consumers_get_messages_while_they_have_credit(
    connect_to: Callable[..., BlockingConnection], names: Names
) -> None:
    queue = names.queue()
    conn = connect_to()
    setup = conn.channel()
    setup.queue_declare(queue)
    high_ch, low_ch = conn.channel(), conn.channel()
    high_ch.basic_qos(prefetch_count=2)
    got: dict[str, list[bytes]] = {"high": [], "low": []}
    high_ch.basic_consume(
        queue, lambda ch, m, p, body: got["high"].append(body), arguments={"x-priority": 10}
    )
    low_ch.basic_consume(
        queue, lambda ch, m, p, body: got["low"].append(body), auto_ack=True, arguments={"x-priority": -5}
    )
    setup.confirm_delivery()
    for i in range(6):
        setup.basic_publish("", queue, b"%d" % i)
    wait_until(lambda: len(got["high"]) + len(got["low"]) == 6, "six deliveries", conn)
    # the high-priority consumer takes what its prefetch allows; only then is the low one served
    assert got["high"] == [b"0", b"1"]
    assert got["low"] == [b"2", b"3", b"4", b"5"]


def test_a_non_integer_consumer_priority_is_refused(channel: BlockingChannel, names: Names) -> None:
    queue = names.queue()
    channel.queue_declare(queue)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        channel.basic_consume(queue, lambda *a: None, arguments={"x-priority": "high"})
    assert err.value.reply_code == PRECONDITION_FAILED
    assert f"invalid arg 'x-priority' for queue '{queue}' in vhost '/'" in err.value.reply_text


@pytest.mark.skipif(EXTERNAL_URL is not None, reason="restarts a jackalope serve")
def test_a_durable_priority_queue_keeps_its_order_across_a_sigkill(
    serve_amqp: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = serve_amqp(data_dir=data)
    conn = connect(server.urls["amqp"])
    ch = conn.channel()
    ch.queue_declare("jobs", durable=True, arguments={"x-max-priority": 9})
    ch.confirm_delivery()
    publish(ch, "jobs", [(b"a", 1), (b"b", 9), (b"c", None), (b"d", 9), (b"e", 4)], delivery_mode=2)
    server.kill9()  # every publish was confirmed: on disk
    again = serve_amqp(data_dir=data)
    conn = connect(again.urls["amqp"])
    assert get_all(conn.channel(), "jobs") == [b"b", b"d", b"e", b"a", b"c"]
    conn.close()
