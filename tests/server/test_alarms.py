"""Resource alarms with a real broker process and real clients: memory and disk alarms block
publishers (connection.blocked to pika and aio-pika, Kafka produces held, never failed),
consumers keep draining, the alarm clears when memory or disk is freed, and nothing that was
confirmed is lost.

The memory alarm is tripped for real: a consumer that takes 1 MiB messages without acking
holds them in the broker's memory until it acks.  The disk alarm needs a small file system:
the broker runs in a mount namespace of its own with its data directory on a 64 MiB tmpfs
(skipped where namespaces cannot be made).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
import pika
import pytest
from confluent_kafka import Producer

from tests.conftest import ServeProcess, start_serve

pytestmark = pytest.mark.timeout(180)

MIB = 1024 * 1024
GUARD = 60.0  # seconds: a hang guard, never a timing assertion


def amqp_params(served: ServeProcess, **kwargs: object) -> pika.ConnectionParameters:
    url = urlsplit(served.urls["amqp"])
    return pika.ConnectionParameters(
        url.hostname, url.port, credentials=pika.PlainCredentials("guest", "guest"), **kwargs
    )


def rss(served: ServeProcess) -> int:
    for line in Path(f"/proc/{served.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def pump(*connections: pika.BlockingConnection) -> None:
    for connection in connections:
        connection.process_data_events(0)


def until(condition: Callable[[], bool], what: str, *connections: pika.BlockingConnection) -> None:
    """Pump the connections until ``condition()`` holds (bounded by GUARD)."""
    end = time.monotonic() + GUARD
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        for connection in connections:
            connection.process_data_events(0.01)


def test_the_memory_alarm_blocks_publishers_and_holds_kafka_producers(tmp_path: Path) -> None:
    served = start_serve(tmp_path / "data", "--memory-high-watermark", "300MiB")
    try:
        assert rss(served) < 200 * MIB, "the idle broker alone is near the watermark"
        events: list[str] = []
        publisher = pika.BlockingConnection(amqp_params(served, blocked_connection_timeout=GUARD * 2))
        publisher.add_on_connection_blocked_callback(lambda _c, frame: events.append(frame.method.reason))
        publisher.add_on_connection_unblocked_callback(lambda _c, _f: events.append("unblocked"))
        consumer = pika.BlockingConnection(amqp_params(served))
        pub = publisher.channel()
        pub.queue_declare("hoard")
        con = consumer.channel()
        con.basic_qos(prefetch_count=0)  # the consumer takes everything, acks nothing yet
        got: list[tuple[int, bytes]] = []
        con.basic_consume("hoard", lambda ch, m, p, body: got.append((m.delivery_tag, body[:8])))
        body = b"." * MIB
        sent = 0
        while not events and sent < 600:  # ~300 MiB of unacked messages trips the alarm
            pub.basic_publish("", "hoard", b"%08d" % sent + body[8:])
            sent += 1  # one at a time, so that the client never waits on a full socket
            until(lambda n=sent: len(got) == n or bool(events), "a delivery", publisher, consumer)
        until(lambda: bool(events), "connection.blocked", publisher, consumer)
        assert events == ["low on memory"], events

        # A Kafka producer is held back while the alarm is in effect, not failed.
        kafka = served.urls["kafka"].split("://", 1)[1]
        reports: list[object] = []
        producer = Producer({"bootstrap.servers": kafka, "acks": "all", "message.timeout.ms": 120_000})
        producer.produce("held", b"while blocked", on_delivery=lambda err, msg: reports.append(err))
        assert producer.flush(3) == 1 and reports == []  # still waiting

        con.basic_ack(got[-1][0], multiple=True)  # the memory goes
        pump(consumer)
        until(lambda: "unblocked" in events, "connection.unblocked", publisher, consumer)
        assert producer.flush(GUARD) == 0 and reports == [None]
        for i in range(sent, sent + 5):
            pub.basic_publish("", "hoard", b"%08d" % i + body[8:])
        until(lambda: len(got) == sent + 5, "the messages after the alarm", consumer, publisher)
        assert [b for _, b in got] == [b"%08d" % i for i in range(sent + 5)]
        publisher.close()
        consumer.close()
    finally:
        served.stop()


def _tmpfs_wrap(directory: Path) -> list[str]:
    """A command prefix that runs the rest in a mount namespace with ``directory`` on a 64 MiB
    tmpfs; the test is skipped where that cannot be done."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("no unshare(1)")
    directory.mkdir(parents=True)
    probe = subprocess.run(
        [unshare, "-m", "sh", "-c", 'mount -t tmpfs -o size=1m tmpfs "$0"', str(directory)],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a mount namespace here: {probe.stderr.strip()}")
    script = 'mount -t tmpfs -o size=64m tmpfs "$0" && exec "$@"'
    return [unshare, "-m", "sh", "-c", script, str(directory)]


async def test_the_disk_alarm_blocks_aio_pika_and_clears_as_the_queue_drains(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "small"
    wrap = _tmpfs_wrap(data)
    served = start_serve(data, "--disk-free-limit", "24MB", "--segment-bytes", "1048576", wrap=wrap)
    caplog.set_level(logging.WARNING, logger="aiormq.connection")
    try:
        url = served.urls["amqp"].replace("amqp://", "amqp://guest:guest@") + "/"
        publisher = await aio_pika.connect(url)
        consumer = await aio_pika.connect(url)
        channel = await publisher.channel(publisher_confirms=True)
        await channel.declare_queue("disk", durable=True)
        body = b"." * (100 * 1024)

        async def publish(i: int) -> None:
            message = aio_pika.Message(b"%08d" % i + body[8:], delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await channel.default_exchange.publish(message, routing_key="disk")

        def logged(text: str) -> bool:
            return any(text in r.getMessage() for r in caplog.records)

        async def wait_for(condition: Callable[[], bool], what: str) -> None:
            try:
                async with asyncio.timeout(GUARD):
                    while not condition():  # noqa: ASYNC110 (log records and counters: no event to await)
                        await asyncio.sleep(0.05)
            except TimeoutError:
                raise AssertionError(f"timed out waiting for {what}") from None

        # Publish, ten in flight, until the broker blocks the connection: the tmpfs holds 64 MiB,
        # the alarm goes at 24 MB free, so it must come before the disk is full.
        publishing: list[asyncio.Future[None]] = []
        in_flight: set[asyncio.Future[None]] = set()
        while not logged("was blocked by: 'low on disk'"):
            assert len(publishing) < 620, "no connection.blocked before the disk filled up"
            future = asyncio.ensure_future(publish(len(publishing)))
            publishing.append(future)
            in_flight.add(future)
            if len(in_flight) >= 10:
                _, in_flight = await asyncio.wait(in_flight, timeout=0.2, return_when=asyncio.FIRST_COMPLETED)
        total = len(publishing)

        got: list[bytes] = []
        consuming = await consumer.channel()
        await consuming.set_qos(prefetch_count=100)
        source = await consuming.get_queue("disk")

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            got.append(message.body[:8])
            await message.ack()

        await source.consume(on_message)
        await wait_for(lambda: logged("was unblocked"), "connection.unblocked")
        async with asyncio.timeout(GUARD):
            await asyncio.gather(*publishing)  # every publish confirmed, none nacked
        await wait_for(lambda: len(got) == total, "every message to be consumed")
        assert sorted(got) == [b"%08d" % i for i in range(total)]
        await publisher.close()
        await consumer.close()
    finally:
        served.stop()
