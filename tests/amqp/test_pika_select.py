"""pika's callback-style SelectConnection: the whole round trip happens in callbacks on its ioloop."""

from __future__ import annotations

import pika
import pika.channel
import pika.frame
from pika.spec import Basic, BasicProperties

from tests.amqp.support import WAIT, Names, params


def test_publish_consume_ack_in_callbacks(amqp_url: str, names: Names) -> None:
    queue = names.queue()
    bodies = [b"one", b"two", b"three"]
    events: list[str] = []
    received: list[bytes] = []
    confirmed: list[int] = []
    failure: list[str] = []

    def on_open(conn: pika.SelectConnection) -> None:
        events.append("connection open")
        conn.channel(on_open_callback=on_channel)

    def on_channel(ch: pika.channel.Channel) -> None:
        events.append("channel open")
        ch.confirm_delivery(lambda frame: on_confirm(ch, frame), callback=lambda _f: declare(ch))

    def declare(ch: pika.channel.Channel) -> None:
        ch.queue_declare(queue, callback=lambda _frame: consume(ch))

    def consume(ch: pika.channel.Channel) -> None:
        ch.basic_qos(prefetch_count=1, callback=lambda _f: start_consuming(ch))

    def start_consuming(ch: pika.channel.Channel) -> None:
        ch.basic_consume(queue, on_message, callback=lambda _frame: publish(ch))

    def publish(ch: pika.channel.Channel) -> None:
        events.append("consuming")
        for body in bodies:
            ch.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2))

    def on_confirm(ch: pika.channel.Channel, frame: pika.frame.Method) -> None:
        if not isinstance(frame.method, Basic.Ack):
            failure.append(f"publish not confirmed: {frame.method}")
        confirmed.append(frame.method.delivery_tag)

    def on_message(
        ch: pika.channel.Channel, method: Basic.Deliver, _props: BasicProperties, body: bytes
    ) -> None:
        received.append(body)
        ch.basic_ack(method.delivery_tag)  # prefetch 1: the next one comes only after this
        if len(received) == len(bodies):
            ch.queue_delete(queue, callback=lambda _frame: conn.close())

    def on_open_error(_conn: pika.SelectConnection, error: BaseException) -> None:
        failure.append(f"could not connect: {error!r}")
        conn.ioloop.stop()

    def on_closed(_conn: pika.SelectConnection, reason: BaseException) -> None:
        events.append("closed")
        conn.ioloop.stop()

    def on_timeout() -> None:
        failure.append(f"timed out; events so far: {events}, received: {received}")
        conn.ioloop.stop()  # not conn.close(): a broker that stopped answering would not answer that

    conn = pika.SelectConnection(
        params(amqp_url),
        on_open_callback=on_open,
        on_open_error_callback=on_open_error,
        on_close_callback=on_closed,
    )
    timer = conn.ioloop.call_later(WAIT, on_timeout)
    conn.ioloop.start()
    conn.ioloop.remove_timeout(timer)

    assert not failure, failure
    assert received == bodies
    assert confirmed and confirmed[-1] == len(bodies)  # confirms may be batched (multiple=True)
    assert events == ["connection open", "channel open", "consuming", "closed"]
