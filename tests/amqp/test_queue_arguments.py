"""Classic queue declaration arguments, as RabbitMQ takes them: each one RabbitMQ knows is done
or refused with 406 naming it, never taken and ignored.

Run against RabbitMQ too (``JACKALOPE_TEST_AMQP_URL``): every test passes on both."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from tests.amqp.support import WAIT, Names, dead_letter_pair, get_all, queue_exists, wait_until

PRECONDITION_FAILED = 406
NOT_FOUND = 404


def declare_error(conn: BlockingConnection, name: str, arguments: dict[str, Any]) -> tuple[int, str] | None:
    """The (reply code, text) a queue.declare of ``name`` with ``arguments`` is refused with, or
    None if it is taken."""
    ch = conn.channel()
    try:
        ch.queue_declare(name, arguments=arguments)
    except pika.exceptions.ChannelClosedByBroker as exc:
        return exc.reply_code, exc.reply_text
    ch.close()
    return None


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"x-queue-type": "foo"}, "\"unsupported queue type 'foo'\""),
        ({"x-queue-mode": "bogus"}, None),
        ({"x-queue-version": 3}, "\"unsupported queue version '3'\""),
        ({"x-expires": 0}, "{value_zero,0}"),
        ({"x-expires": -5}, "{value_negative,-5}"),
        ({"x-max-length": "5"}, '"expected integer, got longstr"'),
        ({"x-max-length-bytes": -1}, "{value_negative,-1}"),
        ({"x-message-ttl": -1}, "{value_negative,-1}"),
        ({"x-single-active-consumer": "yes"}, "{unacceptable_type,longstr}"),
        ({"x-dead-letter-routing-key": "k"}, "routing_key_but_no_dlx_defined"),
        ({"x-delivery-limit": 5}, "of queue type rabbit_classic_queue"),
        ({"x-dead-letter-strategy": "at-least-once"}, "of queue type rabbit_classic_queue"),
        ({"x-max-in-memory-length": 5}, "of queue type rabbit_classic_queue"),
        ({"x-quorum-initial-group-size": 3}, "of queue type rabbit_classic_queue"),
        ({"x-initial-cluster-size": 1}, "of queue type rabbit_classic_queue"),
        ({"x-max-age": "1D"}, "of queue type rabbit_classic_queue"),
        ({"x-stream-max-segment-size-bytes": 100}, "of queue type rabbit_classic_queue"),
        ({"x-queue-leader-locator": "balanced"}, "of queue type rabbit_classic_queue"),
    ],
)
def test_invalid_arguments_are_refused_naming_them(
    connection: BlockingConnection, names: Names, arguments: dict[str, Any], reason: str | None
) -> None:
    refused = declare_error(connection, names.queue(), arguments)
    assert refused is not None, f"{arguments} was taken"
    code, text = refused
    assert code == PRECONDITION_FAILED
    (name,) = arguments
    assert f"invalid arg '{name}'" in text
    if reason is not None:
        assert reason in text


@pytest.mark.parametrize(
    "arguments",
    [
        {"x-queue-type": "classic"},
        {"x-queue-mode": "lazy"},
        {"x-queue-version": 2},
        {"x-queue-master-locator": "min-masters"},
        {"x-overflow": "reject-publish-dlx", "x-max-length": 1},
        {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "elsewhere"},
        {"x-expires": 60_000},
        {"x-message-ttl": 0},
        {"x-single-active-consumer": True},
        {"x-custom": "kept"},  # unknown to RabbitMQ as well: kept, as RabbitMQ keeps it
    ],
)
def test_arguments_rabbitmq_takes_are_taken(
    channel: BlockingChannel, names: Names, arguments: dict[str, Any]
) -> None:
    name = names.queue()
    channel.queue_declare(name, arguments=arguments)
    channel.queue_declare(name, arguments=arguments)  # the same again: equivalent


def wait_until_expired(conn: BlockingConnection, name: str) -> None:
    """Look (with a passive declare, which renews the lease as on RabbitMQ) once a second, far
    apart from the 100 ms period, until the queue is gone."""
    for _ in range(int(WAIT)):
        conn.sleep(1.0)
        if not queue_exists(conn, name):
            return
    raise AssertionError(f"queue {name} did not expire")


def test_an_unused_queue_expires(
    channel: BlockingChannel, connection: BlockingConnection, names: Names
) -> None:
    name = names.queue()
    channel.queue_declare(name, arguments={"x-expires": 100})
    channel.basic_publish("", name, b"kept until the queue expires")  # messages don't keep it
    wait_until_expired(connection, name)


def test_a_consumer_keeps_an_expiring_queue(
    connect_to: Callable[..., BlockingConnection], names: Names
) -> None:
    name = names.queue()
    consumer = connect_to()
    ch = consumer.channel()
    ch.queue_declare(name, arguments={"x-expires": 100})
    tag = ch.basic_consume(name, lambda *_: None)
    # Many periods with a consumer: a broker that expires it anyway fails here (a busy
    # machine only makes the queue live longer, never shorter).
    consumer.sleep(1.0)
    observer = connect_to()
    assert queue_exists(observer, name)
    ch.basic_cancel(tag)
    wait_until_expired(observer, name)


def test_overflow_reject_publish_dlx_nacks_and_dead_letters(channel: BlockingChannel, names: Names) -> None:
    name, dead = dead_letter_pair(channel, names, **{"x-max-length": 1, "x-overflow": "reject-publish-dlx"})
    channel.confirm_delivery()
    channel.basic_publish("", name, b"first")
    with pytest.raises(pika.exceptions.NackError):
        channel.basic_publish("", name, b"second")
    assert get_all(channel, name) == [b"first"]
    wait_until(lambda: channel.queue_declare(dead, passive=True).method.message_count == 1, "the dead letter")
    assert get_all(channel, dead) == [b"second"]
