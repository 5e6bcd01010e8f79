"""The consumer timeout as RabbitMQ 4.3 enforces it (RabbitMQ 3.10, installed here, closes the
channel instead, so these run against Jackalope only): a consumer that holds a delivery
unacknowledged past its queue's ``x-consumer-timeout`` is cancelled, with basic.cancel, and
its deliveries go to the other consumers; its channel stays open."""

from __future__ import annotations

from collections.abc import Callable

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from tests.amqp.support import EXTERNAL_URL, Names, wait_until

pytestmark = pytest.mark.skipif(
    EXTERNAL_URL is not None, reason="RabbitMQ 4.3's rules; 3.10 is installed here"
)


def test_a_late_consumer_is_cancelled_and_its_messages_go_to_another(
    connect_to: Callable[..., BlockingConnection], names: Names
) -> None:
    queue = names.queue()
    slow_conn, fast_conn = connect_to(), connect_to()
    slow, fast = slow_conn.channel(), fast_conn.channel()
    slow.queue_declare(queue, arguments={"x-consumer-timeout": 200})
    slow.confirm_delivery()
    slow.basic_publish("", queue, b"held")
    held: list[bytes] = []
    cancelled: list[object] = []
    slow.add_on_cancel_callback(cancelled.append)
    slow.basic_consume(queue, lambda ch, m, p, body: held.append(body))  # never acks
    wait_until(lambda: held == [b"held"], "the first delivery", slow_conn)
    got: list[tuple[bytes, bool]] = []
    fast.basic_consume(queue, lambda ch, m, p, body: got.append((body, m.redelivered)), auto_ack=True)
    wait_until(lambda: cancelled, "basic.cancel of the late consumer", slow_conn)

    def redelivered() -> bool:
        fast_conn.process_data_events(time_limit=0.05)
        return got == [(b"held", True)]

    wait_until(redelivered, "the held message at the other consumer")
    assert slow.is_open
    assert slow.queue_declare(queue, passive=True).method.consumer_count == 1  # the fast one only


def test_a_late_basic_get_closes_the_channel(channel: BlockingChannel, names: Names) -> None:
    queue = names.queue()
    channel.queue_declare(queue, arguments={"x-consumer-timeout": 100})
    channel.confirm_delivery()
    channel.basic_publish("", queue, b"got, never acked")
    method, _, _ = channel.basic_get(queue)
    assert method is not None
    closed: list[tuple[int, str]] = []
    channel._impl.add_on_close_callback(lambda _ch, why: closed.append((why.reply_code, why.reply_text)))
    wait_until(lambda: closed, "the channel closed", channel.connection)
    ((code, text),) = closed
    assert code == 406
    assert text.startswith("PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out")


@pytest.mark.parametrize(("value", "reason"), [(0, "value_zero"), ("soon", "expected integer")])
def test_a_bad_consumer_timeout_is_refused(
    connection: BlockingConnection, names: Names, value: object, reason: str
) -> None:
    ch = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        ch.queue_declare(names.queue(), arguments={"x-consumer-timeout": value})
    assert err.value.reply_code == 406
    assert "invalid arg 'x-consumer-timeout'" in err.value.reply_text and reason in err.value.reply_text
