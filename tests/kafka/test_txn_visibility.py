"""Kafka transactions seen from AMQP: a stream queue over a topic reads it read_committed
(consumers stop at the last stable offset, skip aborted transactions and markers), and
``amq.kafka`` routes a transaction's records into bound queues only when it commits.

The transactional batches and markers are written through the broker's own write path
(``Topics.append_batches``, ``Topics.append_control`` over the Log API), as the Kafka
front-end's Produce and transaction coordinator do; the consumers are real AMQP clients."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from jackalope import Broker
from jackalope.core.message import Message
from jackalope.core.stream import OffsetSpec, Stream
from jackalope.core.topics import Topics
from jackalope.core.vhost import VirtualHost
from jackalope.storage import Log, LogManager, Record
from jackalope.storage.records import TRANSACTIONAL, encode_batch

pytestmark = pytest.mark.timeout(60)

WAIT = 15.0


def batch(pid: int, seq: int, *values: bytes, txn: bool = True) -> bytearray:
    return encode_batch(
        [Record(v, timestamp=1_700_000_000_000) for v in values],
        producer_id=pid,
        producer_epoch=0,
        base_sequence=seq,
        attributes=TRANSACTIONAL if txn else 0,
    )


def body(message: Any) -> bytes:
    return bytes(message.body)


async def take(iterator: Any, count: int) -> list[bytes]:
    """The next ``count`` deliveries of an aio-pika queue iterator (acked), within WAIT each."""
    got: list[bytes] = []
    for _ in range(count):
        message = await asyncio.wait_for(iterator.__anext__(), WAIT)
        await message.ack()
        got.append(body(message))
    return got


# -- AMQP stream consumers -----------------------------------------------------------------------


async def test_a_stream_consumer_sees_committed_records_only(tmp_path: Path) -> None:
    async with Broker(tmp_path / "data") as broker:
        topics = broker.server.core.topics  # type: ignore[union-attr]
        connection = await aio_pika.connect(broker.amqp_url)
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=100)
            queue = await channel.declare_queue("txn-s", durable=True, arguments={"x-queue-type": "stream"})
            log_ = topics.partition("txn-s", 0)
            assert log_ is not None
            topics.append_batches(log_, batch(9, 0, b"plain-0", txn=False))  # 0
            topics.append_batches(log_, batch(1, 0, b"t1-a", b"t1-b"))  # 1-2, open
            topics.append_batches(log_, batch(2, 0, b"t2-a"))  # 3
            topics.append_control(log_, 2, 0, commit=True, coordinator_epoch=0)  # 4
            topics.append_batches(log_, batch(9, 1, b"plain-1", txn=False))  # 5
            assert log_.last_stable_offset() == 1
            async with queue.iterator(arguments={"x-stream-offset": "first"}) as iterator:
                # The subscription reads the log at once: up to the open transaction only.
                assert await take(iterator, 1) == [b"plain-0"]
                topics.append_control(log_, 1, 0, commit=False, coordinator_epoch=0)  # 6: aborts 1-2
                assert await take(iterator, 2) == [b"t2-a", b"plain-1"]
                topics.append_batches(log_, batch(3, 0, b"t3-a"))  # 7, open
                topics.append_batches(log_, batch(9, 2, b"plain-2", txn=False))  # 8
                topics.append_control(log_, 3, 0, commit=True, coordinator_epoch=0)  # 9
                topics.append_batches(log_, batch(9, 3, b"end", txn=False))  # 10
                # Nothing of the aborted transaction, no marker, in offset order.
                assert await take(iterator, 3) == [b"t3-a", b"plain-2", b"end"]
            assert [r.value for r in log_.read_records(0)].count(b"t1-a") == 1  # still stored


class Reader:
    """A stream consumer that records what it was given (dispatch is synchronous)."""

    tag = "c"
    exclusive = False

    def __init__(self) -> None:
        self.got: list[bytes | None] = []

    def can_deliver(self) -> bool:
        return True

    def deliver_record(self, stream: Stream, record: Record) -> None:
        self.got.append(record.value)

    def cancelled(self, stream: Stream) -> None:
        pass


@pytest.fixture
def core(tmp_path: Path) -> Iterator[tuple[Topics, VirtualHost]]:
    manager = LogManager(tmp_path / "logs")
    manager.open()
    topics = Topics(manager, None)
    yield topics, VirtualHost("/", manager, topics=topics)
    manager.close_sync()


def test_a_stream_reader_stops_at_the_last_stable_offset(core: tuple[Topics, VirtualHost]) -> None:
    topics, vhost = core
    stream = vhost.declare_queue("s", owner=None, durable=True, arguments={"x-queue-type": "stream"})
    assert isinstance(stream, Stream)
    log_: Log = stream.log
    topics.append_batches(log_, batch(1, 0, b"t1"))  # 0, open
    for target in vhost.route("", "s", lambda: {}):  # an AMQP publish after it
        target.enqueue(Message("", "s", b"\x00\x00", b"amqp", False))
    stream.write_pending()
    reader = Reader()
    stream.add_consumer(reader, OffsetSpec("first"))
    assert reader.got == []  # held back by the open transaction, the AMQP message too
    topics.append_control(log_, 1, 0, commit=True, coordinator_epoch=0)
    stream.dispatch()
    assert reader.got == [b"t1", b"amqp"]
    topics.append_batches(log_, batch(2, 0, b"t2"))
    topics.append_control(log_, 2, 0, commit=False, coordinator_epoch=0)
    topics.append_batches(log_, batch(2, 1, b"after", txn=False))
    stream.dispatch()
    assert reader.got == [b"t1", b"amqp", b"after"]


# -- amq.kafka routes ----------------------------------------------------------------------------


async def message_count(channel: Any, name: str) -> int:
    declared = await channel.declare_queue(name, passive=True)
    return int(declared.declaration_result.message_count)


async def until_count(channel: Any, name: str, count: int) -> None:
    """Poll the queue's message count until it is ``count`` (bounded by WAIT)."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while (n := await message_count(channel, name)) < count:
        assert asyncio.get_running_loop().time() < deadline, f"{n} of {count} messages"
        await asyncio.sleep(0.02)
    assert n == count, f"{n} messages, expected {count}"


async def test_amq_kafka_routes_a_transaction_at_commit_and_never_an_aborted_one(tmp_path: Path) -> None:
    async with Broker(tmp_path / "data") as broker:
        topics = broker.server.core.topics  # type: ignore[union-attr]
        topic = topics.create("txn-routed")
        log_ = topic.log(0)
        connection = await aio_pika.connect(broker.amqp_url)
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=100)
            queue = await channel.declare_queue("bound", durable=True)
            await queue.bind("amq.kafka", routing_key="txn-routed")
            topics.append_batches(log_, batch(1, 0, b"t1-a", b"t1-b"))  # to be committed
            topics.append_batches(log_, batch(2, 0, b"t2-a"))  # to be aborted
            topics.append_batches(log_, batch(9, 0, b"plain-0", txn=False))
            # The durable callbacks run in offset order: once plain-0 is in, nothing of the
            # open transactions before it was routed.
            await until_count(channel, "bound", 1)
            topics.append_control(log_, 2, 0, commit=False, coordinator_epoch=0)
            topics.append_control(log_, 1, 0, commit=True, coordinator_epoch=0)
            topics.append_batches(log_, batch(9, 1, b"end", txn=False))
            await until_count(channel, "bound", 4)
            async with queue.iterator() as iterator:
                assert await take(iterator, 4) == [b"plain-0", b"t1-a", b"t1-b", b"end"]
            assert await message_count(channel, "bound") == 0


async def test_the_queues_bound_at_commit_get_the_transaction(tmp_path: Path) -> None:
    async with Broker(tmp_path / "data") as broker:
        topics = broker.server.core.topics  # type: ignore[union-attr]
        log_ = topics.create("txn-late", configs={"segment.bytes": "1024"}).log(0)
        connection = await aio_pika.connect(broker.amqp_url)
        async with connection:
            channel = await connection.channel()
            topics.append_batches(log_, batch(9, 0, b"plain-before", txn=False))  # not routed: no binding
            topics.append_batches(log_, batch(5, 0, b"early"))  # the transaction begins unbound
            queue = await channel.declare_queue("late", durable=True)
            await queue.bind("amq.kafka", routing_key="txn-late")
            values = [b"%03d" % i + b"." * 200 for i in range(12)]  # several segments
            for i, value in enumerate(values):
                topics.append_batches(log_, batch(5, 1 + i, value))
                topics.append_batches(log_, batch(9, 1 + i, b"p%d" % i, txn=False))
            assert log_.segment_count > 2
            topics.append_control(log_, 5, 0, commit=True, coordinator_epoch=0)
            await until_count(channel, "late", 12 + 1 + 12)
            async with queue.iterator() as iterator:
                got = await take(iterator, 25)
            plain = [b"p%d" % i for i in range(12)]
            assert [v for v in got if v in plain] == plain  # routed as appended
            assert [v for v in got if v not in plain] == [b"early", *values]  # at commit, in order
