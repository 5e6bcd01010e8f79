"""The lecture note's messaging patterns, each in a few lines of pika against Jackalope.

Run a broker (``jackalope serve``) and then::

    python examples/amqp_patterns.py [amqp://guest:guest@127.0.0.1:5672/]

Every pattern prints what each consumer received.
"""

from __future__ import annotations

import sys
import time
import uuid

import pika
from pika.adapters.blocking_connection import BlockingChannel

URL = sys.argv[1] if len(sys.argv) > 1 else "amqp://guest:guest@127.0.0.1:5672/"


def name(kind: str) -> str:
    return f"example.{kind}.{uuid.uuid4().hex[:8]}"


def drain(ch: BlockingChannel, queue: str) -> list[str]:
    """Pull everything waiting in ``queue`` (basic.get)."""
    got: list[str] = []
    while True:
        method, _, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            return got
        got.append(body.decode())


def unicast(ch: BlockingChannel) -> dict[str, list[str]]:
    """To one specific target: a queue dedicated to that consumer."""
    inbox = ch.queue_declare(name("inbox-of-alice"), exclusive=True).method.queue
    ch.basic_publish("", inbox, b"hello alice")
    return {"alice": drain(ch, inbox)}


def multicast(ch: BlockingChannel) -> dict[str, list[str]]:
    """To several: the subscribers of a topic (a topic exchange, bindings by pattern)."""
    exchange = name("topics")
    ch.exchange_declare(exchange, "topic", auto_delete=True)
    subscribers = {"payments": "payment.*", "audit": "#", "auth": "auth.*"}
    queues = {}
    for who, pattern in subscribers.items():
        queues[who] = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(queues[who], exchange, pattern)
    ch.basic_publish(exchange, "payment.captured", b"order 42 paid")
    return {who: drain(ch, q) for who, q in queues.items()}


def broadcast(ch: BlockingChannel) -> dict[str, list[str]]:
    """To all: a fanout exchange copies every message to every bound queue."""
    exchange = name("everyone")
    ch.exchange_declare(exchange, "fanout", auto_delete=True)
    queues = {who: ch.queue_declare("", exclusive=True).method.queue for who in ("a", "b", "c")}
    for q in queues.values():
        ch.queue_bind(q, exchange)
    ch.basic_publish(exchange, "", b"maintenance at noon")
    return {who: drain(ch, q) for who, q in queues.items()}


def anycast(ch: BlockingChannel) -> dict[str, list[str]]:
    """To any one of many: competing consumers on one queue; the broker pushes each message to
    one of them, round-robin."""
    queue = ch.queue_declare(name("work"), exclusive=True).method.queue
    got: dict[str, list[str]] = {"worker-1": [], "worker-2": []}
    for worker in got:
        ch.basic_consume(queue, lambda _c, m, _p, body, w=worker: got[w].append(body.decode()), auto_ack=True)
    for i in range(4):
        ch.basic_publish("", queue, f"job {i}".encode())
    deadline = time.monotonic() + 5
    while sum(map(len, got.values())) < 4 and time.monotonic() < deadline:
        ch.connection.process_data_events(time_limit=0.1)
    return got


def bounded_buffer(ch: BlockingChannel) -> dict[str, list[str]]:
    """A queue of fixed size: with x-overflow=reject-publish a producer with confirms is refused
    when it is full (drop-head would drop the oldest instead)."""
    queue = ch.queue_declare(
        name("buffer"), exclusive=True, arguments={"x-max-length": 2, "x-overflow": "reject-publish"}
    ).method.queue
    ch.confirm_delivery()
    outcome = []
    for i in range(3):
        try:
            ch.basic_publish("", queue, f"item {i}".encode())
            outcome.append(f"item {i}: accepted")
        except pika.exceptions.NackError:
            outcome.append(f"item {i}: refused, buffer full")
    return {"producer": outcome, "buffer": drain(ch, queue)}


PATTERNS = [unicast, multicast, broadcast, anycast, bounded_buffer]


def main() -> dict[str, dict[str, list[str]]]:
    results = {}
    with pika.BlockingConnection(pika.URLParameters(URL)) as connection:
        for pattern in PATTERNS:
            results[pattern.__name__] = pattern(connection.channel())
    return results


if __name__ == "__main__":
    for pattern, received in main().items():
        print(f"{pattern}:")
        for who, messages in received.items():
            print(f"  {who:<9} {messages}")
