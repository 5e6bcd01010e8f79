"""Quorum queues (``x-queue-type: quorum``) with pika: the declaration rules, ``x-delivery-count``
on redeliveries, the delivery limit with dead-lettering, and the rules of RabbitMQ 4.3 that
the RabbitMQ 3.10 installed here predates (marked ``rabbitmq_4_3``: Jackalope only)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from tests.amqp.support import EXTERNAL_URL, Names, connect, get_all, wait_until
from tests.conftest import ServeProcess

PRECONDITION_FAILED = 406
QUORUM = {"x-queue-type": "quorum"}
rabbitmq_4_3 = pytest.mark.skipif(
    EXTERNAL_URL is not None, reason="RabbitMQ 4.3's rules; 3.10 is installed here"
)


def declare_error(conn: BlockingConnection, queue: str, **kwargs: Any) -> str:
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        ch.queue_declare(queue, **kwargs)
    assert err.value.reply_code == PRECONDITION_FAILED
    return str(err.value.reply_text)


@pytest.mark.parametrize(
    ("properties", "refused"),
    [
        ({"durable": False}, "non-durable"),
        ({"durable": True, "exclusive": True}, "exclusive-owner"),
        ({"durable": True, "auto_delete": True}, "auto-delete"),
    ],
)
def test_quorum_queues_are_durable_and_never_exclusive_or_auto_delete(
    connection: BlockingConnection, names: Names, properties: dict[str, bool], refused: str
) -> None:
    queue = names.queue()
    text = declare_error(connection, queue, arguments=QUORUM, **properties)
    assert f"invalid property '{refused}' for queue '{queue}' in vhost '/'" in text


@pytest.mark.parametrize("argument", [{"x-queue-mode": "lazy"}, {"x-queue-version": 2}, {"x-max-age": "1D"}])
def test_other_types_arguments_are_refused(
    connection: BlockingConnection, names: Names, argument: dict[str, Any]
) -> None:
    queue = names.queue()
    text = declare_error(connection, queue, durable=True, arguments={**QUORUM, **argument})
    (name,) = argument
    assert f"invalid arg '{name}' for queue '{queue}' in vhost '/' of queue type rabbit_quorum_queue" in text


def test_a_bad_dead_letter_strategy_is_refused(connection: BlockingConnection, names: Names) -> None:
    queue = names.queue()
    text = declare_error(
        connection, queue, durable=True, arguments={**QUORUM, "x-dead-letter-strategy": "bogus"}
    )
    assert "invalid arg 'x-dead-letter-strategy'" in text and "invalid_dlx_strategy" in text


def test_quorum_arguments_one_node_takes(channel: BlockingChannel, names: Names) -> None:
    arguments = {
        **QUORUM,
        "x-quorum-initial-group-size": 3,
        "x-queue-leader-locator": "balanced",
        "x-single-active-consumer": True,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        "x-max-length": 10,
    }
    queue = names.queue()
    channel.queue_declare(queue, durable=True, arguments=arguments)
    channel.queue_declare(queue, durable=True, arguments=arguments)  # equivalent: redeclared


def test_a_rejected_message_comes_back_with_its_delivery_count_until_the_limit(
    channel: BlockingChannel, names: Names
) -> None:
    dlx, dead, queue = names.exchange("dlx"), names.queue("dead"), names.queue()
    channel.exchange_declare(dlx, "fanout")
    channel.queue_declare(dead)
    channel.queue_bind(dead, dlx)
    arguments = {**QUORUM, "x-delivery-limit": 2, "x-dead-letter-exchange": dlx}
    channel.queue_declare(queue, durable=True, arguments=arguments)
    channel.confirm_delivery()
    channel.basic_publish("", queue, b"poison", pika.BasicProperties(headers={"app": "x"}))
    counts = []
    while True:
        method, props, _ = channel.basic_get(queue)
        if method is None:
            break
        counts.append((method.redelivered, (props.headers or {}).get("x-delivery-count")))
        channel.basic_reject(method.delivery_tag, requeue=True)
    # RabbitMQ 3.10 also says x-delivery-count 0 on the first delivery; 4.3 and Jackalope
    # only once a delivery has failed
    assert counts[1:] == [(True, 1), (True, 2)]
    assert len(counts) == 3
    wait_until(lambda: get_all(channel, dead) == [b"poison"], "the poison message dead-lettered")


@rabbitmq_4_3
def test_a_nack_is_a_return_and_does_not_count(channel: BlockingChannel, names: Names) -> None:
    queue = names.queue()
    channel.queue_declare(queue, durable=True, arguments={**QUORUM, "x-delivery-limit": 0})
    channel.confirm_delivery()
    channel.basic_publish("", queue, b"m")
    for _ in range(5):
        method, props, _ = channel.basic_get(queue)
        assert method is not None and "x-delivery-count" not in (props.headers or {})
        channel.basic_nack(method.delivery_tag, requeue=True)
    method, _, _ = channel.basic_get(queue)
    assert method is not None
    channel.basic_reject(method.delivery_tag, requeue=True)  # limit 0: the first failure is the last
    assert get_all(channel, queue) == []


@rabbitmq_4_3
def test_a_lost_consumer_counts_a_failed_delivery(
    connect_to: Callable[..., BlockingConnection], names: Names
) -> None:
    queue = names.queue()
    conn = connect_to()
    ch = conn.channel()
    ch.queue_declare(queue, durable=True, arguments=QUORUM)
    ch.confirm_delivery()
    ch.basic_publish("", queue, b"m")
    lost = connect_to()
    method, _, _ = lost.channel().basic_get(queue)
    assert method is not None
    lost.close()  # unacknowledged: back to the queue, one failed delivery
    wait_until(lambda: ch.queue_declare(queue, passive=True).method.message_count == 1, "the message back")
    _, props, _ = ch.basic_get(queue, auto_ack=True)
    assert props.headers == {"x-delivery-count": 1}


@rabbitmq_4_3
def test_delayed_retries_hold_a_rejected_message(channel: BlockingChannel, names: Names) -> None:
    queue = names.queue()
    arguments = {**QUORUM, "x-delayed-retry-type": "failed", "x-delayed-retry-min": 3000}
    channel.queue_declare(queue, durable=True, arguments=arguments)
    channel.confirm_delivery()
    channel.basic_publish("", queue, b"retry me")
    method, _, _ = channel.basic_get(queue)
    assert method is not None
    channel.basic_reject(method.delivery_tag, requeue=True)
    assert channel.basic_get(queue)[0] is None  # waiting out its delay (3 s: room for a busy machine)
    wait_until(
        lambda: channel.basic_get(queue, auto_ack=True)[0] is not None, "the retry", channel.connection
    )


@rabbitmq_4_3
@pytest.mark.parametrize(("value", "reason"), [(33, "{max_value_exceeded,33}"), ("a", "expected integer")])
def test_quorum_priorities_go_up_to_32(
    connection: BlockingConnection, names: Names, value: object, reason: str
) -> None:
    text = declare_error(
        connection, names.queue(), durable=True, arguments={**QUORUM, "x-max-priority": value}
    )
    assert "invalid arg 'x-max-priority'" in text and reason in text


@rabbitmq_4_3
def test_quorum_priorities_are_strict(channel: BlockingChannel, names: Names) -> None:
    queue = names.queue()
    channel.queue_declare(queue, durable=True, arguments={**QUORUM, "x-max-priority": 32})
    channel.confirm_delivery()
    for body, priority in [(b"low", 1), (b"top", 40), (b"mid", 16)]:
        channel.basic_publish("", queue, body, pika.BasicProperties(priority=priority))
    assert get_all(channel, queue) == [b"top", b"mid", b"low"]


@pytest.mark.skipif(EXTERNAL_URL is not None, reason="restarts a jackalope serve")
def test_a_quorum_queue_keeps_confirmed_messages_across_a_sigkill(
    serve_amqp: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = serve_amqp(data_dir=data)
    ch = connect(server.urls["amqp"]).channel()
    ch.queue_declare("orders", durable=True, arguments={**QUORUM, "x-delivery-limit": 3})
    ch.confirm_delivery()
    for i in range(20):
        ch.basic_publish("", "orders", b"%d" % i, pika.BasicProperties(delivery_mode=2))
    server.kill9()
    again = serve_amqp(data_dir=data)
    conn = connect(again.urls["amqp"])
    ch = conn.channel()
    declared = ch.queue_declare("orders", passive=True)
    assert declared.method.message_count == 20
    assert get_all(ch, "orders") == [b"%d" % i for i in range(20)]
    conn.close()
