"""Message TTL, as RabbitMQ's classic queues have it: ``x-message-ttl`` on the queue, the
``expiration`` property per message (the lower wins), expired messages leaving the head of the
queue with nobody consuming, dead-lettered when the queue says where, and expiry kept across a
restart of a durable queue.

All but the restart test run against RabbitMQ too (``JACKALOPE_TEST_AMQP_URL``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel

from tests.amqp.support import (
    EXTERNAL_URL,
    Names,
    connect,
    dead_letter_pair,
    get_all,
    ready_count,
    wait_until,
)
from tests.conftest import ServeProcess

PRECONDITION_FAILED = 406


def test_queue_ttl_expires_messages_nobody_consumes(channel: BlockingChannel, names: Names) -> None:
    name, dead = dead_letter_pair(channel, names, **{"x-message-ttl": 100})
    for i in range(3):
        channel.basic_publish("", name, b"m%d" % i)
    wait_until(lambda: ready_count(channel, dead) == 3, "three dead letters")
    assert ready_count(channel, name) == 0
    assert get_all(channel, dead) == [b"m0", b"m1", b"m2"]


def test_message_expiration_expires_it(channel: BlockingChannel, names: Names) -> None:
    name, dead = dead_letter_pair(channel, names)
    channel.basic_publish("", name, b"short", pika.BasicProperties(expiration="100"))
    wait_until(lambda: ready_count(channel, dead) == 1, "the expired message's dead letter")
    assert ready_count(channel, name) == 0


def test_the_lower_of_queue_and_message_ttl_wins(channel: BlockingChannel, names: Names) -> None:
    name, dead = dead_letter_pair(channel, names, **{"x-message-ttl": 600_000})
    channel.basic_publish("", name, b"short", pika.BasicProperties(expiration="100"))
    wait_until(lambda: ready_count(channel, dead) == 1, "the expired message's dead letter")
    channel.basic_publish("", name, b"long")  # the queue's 10 minutes
    assert get_all(channel, name) == [b"long"]


def test_ttl_zero_expires_unless_a_consumer_takes_it_at_once(channel: BlockingChannel, names: Names) -> None:
    name, dead = dead_letter_pair(channel, names, **{"x-message-ttl": 0})
    channel.confirm_delivery()
    channel.basic_publish("", name, b"nobody there")  # confirmed (taken), then gone
    wait_until(lambda: ready_count(channel, dead) == 1, "the dead letter")
    assert ready_count(channel, name) == 0
    got: list[bytes] = []
    channel.basic_consume(name, lambda ch, method, _props, body: got.append(body), auto_ack=True)
    channel.basic_publish("", name, b"taken at once")
    wait_until(lambda: got, "the delivery", channel.connection)
    assert got == [b"taken at once"]
    assert ready_count(channel, dead) == 1


@pytest.mark.parametrize(
    ("expiration", "reason"),
    [("abc", "no_integer"), ("-1", "{value_negative,-1}"), ("1.5", '{leftover_string,".5"}')],
)
def test_a_bad_expiration_closes_the_channel(
    channel: BlockingChannel, names: Names, expiration: str, reason: str
) -> None:
    name = names.queue()
    channel.queue_declare(name)
    channel.basic_publish("", name, b"x", pika.BasicProperties(expiration=expiration))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        channel.queue_declare(name, passive=True)
    assert err.value.reply_code == PRECONDITION_FAILED
    assert f"invalid expiration '{expiration}': {reason}" in err.value.reply_text


def test_a_bad_expiration_in_a_transaction_fails_at_the_publish(
    channel: BlockingChannel, names: Names
) -> None:
    name = names.queue()
    channel.queue_declare(name)
    channel.tx_select()
    channel.basic_publish("", name, b"x", pika.BasicProperties(expiration="soon"))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        channel.queue_declare(name, passive=True)  # before any commit
    assert err.value.reply_code == PRECONDITION_FAILED
    assert "invalid expiration 'soon': no_integer" in err.value.reply_text


@pytest.mark.skipif(EXTERNAL_URL is not None, reason="restarts a jackalope serve")
def test_expiry_survives_a_sigkill(serve_amqp: Callable[..., ServeProcess], tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = serve_amqp(data_dir=data)
    conn = connect(server.urls["amqp"])
    ch = conn.channel()
    ch.exchange_declare("dlx", "fanout", durable=True)
    ch.queue_declare("dead", durable=True)
    ch.queue_bind("dead", "dlx")
    ch.queue_declare("work", durable=True, arguments={"x-dead-letter-exchange": "dlx"})
    ch.confirm_delivery()
    ch.basic_publish("", "work", b"short", pika.BasicProperties(delivery_mode=2, expiration="300"))
    ch.basic_publish("", "work", b"long", pika.BasicProperties(delivery_mode=2, expiration="600000"))
    server.kill9()  # both confirmed: on disk
    time.sleep(0.4)  # the short one expires while the broker is down
    again = serve_amqp(data_dir=data)
    conn = connect(again.urls["amqp"])
    ch = conn.channel()
    wait_until(lambda: ready_count(ch, "dead") == 1, "the message that expired while the broker was down")
    assert get_all(ch, "work") == [b"long"]
    assert get_all(ch, "dead") == [b"short"]
    conn.close()
