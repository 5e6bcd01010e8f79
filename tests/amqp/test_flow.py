"""Credit flow with real sockets: a publisher flooding a queue as fast as its socket takes
messages does not starve the queue's consumer.

The broker runs as its own process, and the clients walk frames by their lengths
(tests/amqp/flood.py), so the broker is the bottleneck.  The check is by counts, not by time:
when the last publish is confirmed (the broker has taken in every message), the consumer
must already have most of them.  A broker that handles a publisher's whole socket buffer
before anyone else (as Jackalope did: about 1 % by then) fails it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.amqp.flood import FastConsumer, Flood
from tests.amqp.support import EXTERNAL_URL, connect, host_port, start_serve_amqp
from tests.conftest import ServeProcess

pytestmark = pytest.mark.timeout(120)

MESSAGES = 100_000
PREFETCH = 1000


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[str]:
    if EXTERNAL_URL is not None:
        yield EXTERNAL_URL
        return
    served: ServeProcess = start_serve_amqp(tmp_path / "data")
    try:
        yield served.urls["amqp"]
    finally:
        served.stop()


@pytest.mark.parametrize("size", [16, 1024])
def test_a_flooding_publisher_does_not_starve_the_consumer(broker: str, size: int) -> None:
    queue = f"flow-{size}"
    with connect(broker) as conn:
        conn.channel().queue_declare(queue, auto_delete=False)
    host, port = host_port(broker)
    consumer = FastConsumer(host, port, queue, PREFETCH)
    flood = Flood(host, port, queue, MESSAGES, b"x" * size)
    delivered_at_last_confirm: list[int] = []
    flood.on_confirm = lambda seq: (
        delivered_at_last_confirm.append(consumer.delivered) if seq >= MESSAGES else None
    )
    try:
        consumer.start(MESSAGES)
        flood.start()
        assert flood.done.wait(60), f"{flood.confirmed} of {MESSAGES} confirmed"
        assert consumer.done.wait(60), f"{consumer.delivered} of {MESSAGES} delivered"
    finally:
        flood.close()
        consumer.close()
    assert flood.nacked == 0 and consumer.redelivered == 0
    assert consumer.delivered == MESSAGES
    (delivered,) = delivered_at_last_confirm
    assert delivered >= MESSAGES // 2, (
        f"when the last of {MESSAGES} publishes was confirmed the consumer had only {delivered}"
    )
    with connect(broker) as conn:
        ch = conn.channel()
        assert ch.queue_declare(queue, passive=True).method.message_count == 0
        ch.queue_delete(queue)
