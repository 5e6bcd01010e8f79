"""Durability of `jackalope serve` across restarts: SIGKILL in the middle of confirmed persistent
publishes loses nothing that was confirmed, and a clean restart keeps durable exchanges, queues and
bindings but not transient queues.

These start and kill Jackalope themselves, so they are skipped against an external broker.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pika
import pika.channel
import pika.exceptions
import pika.frame
import pytest
from pika.spec import Basic

from tests.amqp.support import (
    EXTERNAL_URL,
    EXTERNAL_URL_ENV,
    WAIT,
    connect,
    consume,
    get_all,
    params,
    ready_count,
)
from tests.conftest import ServeProcess

pytestmark = [
    pytest.mark.skipif(
        EXTERNAL_URL is not None, reason=f"starts and kills Jackalope itself ({EXTERNAL_URL_ENV} is set)"
    ),
    pytest.mark.timeout(90),  # two broker start-ups and 2000 fsync-confirmed publishes
]

N = 2000  # messages the publisher tries to send
KILL_AFTER = 1000  # confirms before the broker is killed
WINDOW = 100  # unconfirmed publishes in flight at most
PAD = b"." * 200


def body_of(seq: int) -> bytes:
    return b"%06d:" % seq + PAD


def seq_of(body: bytes) -> int:
    head, _, pad = body.partition(b":")
    assert pad == PAD, body
    return int(head)


class CrashPublisher:
    """Publishes N persistent messages with confirms from a pika SelectConnection, up to WINDOW
    unconfirmed at a time. Once KILL_AFTER are confirmed, a second thread calls ``kill()`` while
    publishing goes on. ``confirmed`` lists the sequence numbers acknowledged, in that order."""

    def __init__(self, url: str, queue: str, kill: Callable[[], None]) -> None:
        self.queue = queue
        self.kill = kill
        self.confirmed: list[int] = []
        self.problems: list[str] = []
        self.in_flight: dict[int, int] = {}  # delivery tag -> sequence number
        self.next_seq = 0
        self.next_tag = 1
        self.time_to_kill = threading.Event()
        self.channel: pika.channel.Channel | None = None
        self.conn = pika.SelectConnection(
            params(url),
            on_open_callback=lambda conn: conn.channel(on_open_callback=self.on_channel),
            on_open_error_callback=self.on_open_error,
            on_close_callback=lambda _conn, _reason: self.conn.ioloop.stop(),
        )

    def run(self) -> list[int]:
        killer = threading.Thread(target=self.killer, daemon=True)
        killer.start()
        self.conn.ioloop.call_later(3 * WAIT, self.on_timeout)
        self.conn.ioloop.start()
        self.time_to_kill.set()  # let the killer thread end if it never got its turn
        killer.join(WAIT)
        assert not self.problems, self.problems
        return self.confirmed

    def killer(self) -> None:
        if self.time_to_kill.wait(3 * WAIT) and self.confirmed:
            self.kill()

    def on_channel(self, ch: pika.channel.Channel) -> None:
        self.channel = ch
        ch.confirm_delivery(self.on_confirm, callback=lambda _frame: self.publish_more())

    def publish_more(self) -> None:
        ch = self.channel
        assert ch is not None
        while self.next_seq < N and len(self.in_flight) < WINDOW and ch.is_open:
            props = pika.BasicProperties(delivery_mode=2, message_id=str(self.next_seq))
            ch.basic_publish("", self.queue, body_of(self.next_seq), props)
            self.in_flight[self.next_tag] = self.next_seq
            self.next_seq += 1
            self.next_tag += 1
        if not self.in_flight and self.next_seq == N:
            self.conn.close()  # everything was confirmed before the kill took effect

    def on_confirm(self, frame: pika.frame.Method) -> None:
        method = frame.method
        if method.multiple:
            tags = sorted(t for t in self.in_flight if t <= method.delivery_tag)
        else:
            tags = [method.delivery_tag]
        for tag in tags:
            seq = self.in_flight.pop(tag)
            if isinstance(method, Basic.Ack):
                self.confirmed.append(seq)
            else:
                self.problems.append(f"message {seq} was nacked")
        if len(self.confirmed) >= KILL_AFTER:
            self.time_to_kill.set()
        self.publish_more()

    def on_open_error(self, _conn: pika.SelectConnection, error: BaseException) -> None:
        self.problems.append(f"could not connect: {error!r}")
        self.conn.ioloop.stop()

    def on_timeout(self) -> None:
        self.problems.append(f"timed out with {len(self.confirmed)} confirmed")
        self.conn.ioloop.stop()


def declare_durable_queue(url: str, queue: str) -> None:
    conn = connect(url)
    conn.channel().queue_declare(queue, durable=True)
    conn.close()


def test_confirmed_persistent_messages_survive_sigkill(
    serve_amqp: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    queue = "durable-crash"
    server = serve_amqp(data_dir=data)
    declare_durable_queue(server.urls["amqp"], queue)

    kill = lambda: os.kill(server.proc.pid, signal.SIGKILL)  # noqa: E731
    confirmed = CrashPublisher(server.urls["amqp"], queue, kill).run()
    assert server.proc.wait(WAIT) == -signal.SIGKILL, "the broker was not killed: " + "".join(server.output)
    assert len(confirmed) >= KILL_AFTER

    again = serve_amqp(data_dir=data)
    conn = connect(again.urls["amqp"])
    ch = conn.channel()
    count = ready_count(ch, queue)
    assert count >= len(confirmed)
    deliveries = consume(ch, queue, count)
    assert ready_count(ch, queue) == 0
    conn.close()

    received = [seq_of(body) for _, _, body in deliveries]
    assert all(props.delivery_mode == 2 for _, props, _ in deliveries)
    assert all(props.message_id == str(seq_of(body)) for _, props, body in deliveries)
    assert set(received) <= set(range(N))
    wanted = set(confirmed)
    survivors = [seq for seq in received if seq in wanted]
    assert len(survivors) == len(confirmed), f"lost {sorted(wanted - set(survivors))[:20]}..."
    assert survivors == sorted(confirmed), "confirmed messages out of order or duplicated"


def test_clean_restart_keeps_durable_topology(
    serve_amqp: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = serve_amqp(data_dir=data)
    conn = connect(server.urls["amqp"])
    ch = conn.channel()
    ch.confirm_delivery()
    ch.exchange_declare("events", exchange_type="topic", durable=True)
    ch.exchange_declare("transient-exchange", exchange_type="fanout", durable=False)
    ch.queue_declare("kept", durable=True, arguments={"x-max-length": 100})
    ch.queue_declare("lost", durable=False)
    ch.queue_bind("kept", "events", routing_key="order.#")
    ch.queue_bind("lost", "events", routing_key="order.#")
    ch.basic_publish(
        "events",
        "order.created",
        b"persistent",
        pika.BasicProperties(delivery_mode=2, headers={"n": 1}, content_type="text/plain"),
        mandatory=True,
    )
    conn.close()
    assert server.stop() == 0  # SIGTERM: a clean stop

    again = serve_amqp(data_dir=data)
    conn = connect(again.urls["amqp"])
    ch = conn.channel()
    ch.confirm_delivery()
    ch.exchange_declare("events", passive=True)
    ((_, props, body),) = consume(ch, "kept", 1)
    assert (body, props.delivery_mode, props.headers, props.content_type) == (
        b"persistent",
        2,
        {"n": 1},
        "text/plain",
    )
    ch.basic_publish("events", "order.shipped", b"after restart", mandatory=True)  # the binding is back
    assert get_all(ch, "kept") == [b"after restart"]
    ch.queue_declare("kept", durable=True, arguments={"x-max-length": 100})  # same arguments as before
    for missing in (
        lambda c: c.queue_declare("lost", passive=True),
        lambda c: c.exchange_declare("transient-exchange", passive=True),
    ):
        c = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
            missing(c)
        assert err.value.reply_code == 404
    conn.close()
