"""Helpers shared by the AMQP tests: connection parameters, unique names, small pika idioms and
starting ``jackalope serve`` with an AMQP listener."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.spec import Basic, BasicProperties

from tests.conftest import START_TIMEOUT, ServeProcess, start_serve

EXTERNAL_URL_ENV = "JACKALOPE_TEST_AMQP_URL"
EXTERNAL_URL = os.environ.get(EXTERNAL_URL_ENV) or None

WAIT = 10.0  # seconds: the longest any test waits for something that should happen

Delivery = tuple[Basic.Deliver, BasicProperties, bytes]


def params(url: str, **overrides: object) -> pika.URLParameters:
    """pika connection parameters that fail fast instead of retrying."""
    p = pika.URLParameters(url)
    p.connection_attempts = 1
    p.socket_timeout = WAIT
    p.stack_timeout = WAIT
    p.blocked_connection_timeout = WAIT
    for name, value in overrides.items():
        setattr(p, name, value)
    return p


def connect(url: str, **overrides: object) -> BlockingConnection:
    return pika.BlockingConnection(params(url, **overrides))


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 5672


# -- unique names, cleaned up afterwards -------------------------------------------------------


@dataclass
class Names:
    """Hands out unique queue and exchange names and remembers them for cleanup."""

    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    queues: list[str] = field(default_factory=list)
    exchanges: list[str] = field(default_factory=list)

    def queue(self, label: str = "q") -> str:
        return self.track_queue(f"jackalope-test.{label}.{self.suffix}")

    def exchange(self, label: str = "x") -> str:
        return self.track_exchange(f"jackalope-test.{label}.{self.suffix}")

    def track_queue(self, name: str) -> str:
        self.queues.append(name)
        return name

    def track_exchange(self, name: str) -> str:
        self.exchanges.append(name)
        return name

    def cleanup(self, url: str) -> None:
        """Delete everything handed out (deleting what does not exist is not an error). Best
        effort, and bounded in time: a broker that no longer answers is the test's failure."""
        if self.queues or self.exchanges:
            with contextlib.suppress(Exception):
                bounded(lambda: self._delete_all(url), "deleting the test's queues and exchanges")

    def _delete_all(self, url: str) -> None:
        conn = connect(url)
        try:
            ch = conn.channel()
            for q in self.queues:
                try:
                    ch.queue_delete(q)
                except pika.exceptions.ChannelClosed:  # e.g. exclusive to a connection still open
                    ch = conn.channel()
            for x in self.exchanges:
                try:
                    ch.exchange_delete(x)
                except pika.exceptions.ChannelClosed:
                    ch = conn.channel()
        finally:
            if conn.is_open:
                conn.close()


def bounded(fn: Callable[[], object], what: str, timeout: float = WAIT) -> None:
    """Run ``fn()`` on a daemon thread and wait for it at most ``timeout`` seconds (then give up
    on it and raise TimeoutError). For teardown steps, which pytest-timeout no longer covers once
    it has fired during the test, and which must not hang the run when the broker does."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, name=f"bounded: {what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"{what} did not finish within {timeout} s")
    if errors:
        raise errors[0]


# -- pika idioms -----------------------------------------------------------------------------------


def ready_count(ch: BlockingChannel, queue: str) -> int:
    """Messages ready for delivery in ``queue`` (not counting unacknowledged ones)."""
    return ch.queue_declare(queue, passive=True).method.message_count


def consumer_count(ch: BlockingChannel, queue: str) -> int:
    return ch.queue_declare(queue, passive=True).method.consumer_count


def get_all(ch: BlockingChannel, queue: str) -> list[bytes]:
    """Pull (basic.get with auto-ack) every ready message; the bodies in order."""
    bodies = []
    while True:
        method, _, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            return bodies
        bodies.append(body)


def consume(
    ch: BlockingChannel, queue: str, n: int, *, auto_ack: bool = True, wait: float = WAIT
) -> list[Delivery]:
    """Consume exactly ``n`` deliveries from ``queue`` and cancel; fail if they take over ``wait``."""
    got: list[Delivery] = []
    deadline = time.monotonic() + wait
    try:
        for method, props, body in ch.consume(queue, auto_ack=auto_ack, inactivity_timeout=0.1):
            if method is not None:
                got.append((method, props, body))
                if len(got) == n:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"got {len(got)} of {n} deliveries from {queue} within {wait}s")
    finally:
        if ch.is_open:
            ch.cancel()
    return got


def queue_exists(conn: BlockingConnection, name: str) -> bool:
    """Whether a passive declare finds ``name`` (on a channel of its own)."""
    ch = conn.channel()
    try:
        ch.queue_declare(name, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        assert exc.reply_code == 404
        return False
    ch.close()
    return True


def dead_letter_pair(channel: BlockingChannel, names: Names, **arguments: object) -> tuple[str, str]:
    """A queue with ``arguments`` that dead-letters into a fanout exchange, and the queue bound
    to that exchange."""
    dlx = names.exchange("dlx")
    dead = names.queue("dead")
    channel.exchange_declare(dlx, "fanout")
    channel.queue_declare(dead)
    channel.queue_bind(dead, dlx)
    name = names.queue()
    channel.queue_declare(name, arguments={"x-dead-letter-exchange": dlx, **arguments})
    return name, dead


def wait_until(
    condition: Callable[[], object], what: str, connection: BlockingConnection | None = None
) -> None:
    """Poll ``condition()`` (processing ``connection``'s events meanwhile) until true, up to WAIT."""
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        if connection is not None:
            connection.process_data_events(time_limit=0.05)
        else:
            time.sleep(0.02)


# -- `jackalope serve` with an AMQP listener ------------------------------------------------------


def start_serve_amqp(data_dir: Path, *args: str, timeout: float = START_TIMEOUT) -> ServeProcess:
    """``tests.conftest.start_serve``, with guest:guest in ``urls["amqp"]``."""
    served = start_serve(data_dir, *args, timeout=timeout)
    p = urlsplit(served.urls["amqp"])
    served.urls["amqp"] = f"amqp://guest:guest@{p.hostname}:{p.port}/"
    return served
