"""Fetch and ListOffsets with isolation_level=read_committed: reads stop at the last stable
offset, and the response lists the aborted transactions so that consumers drop their records.

The transactions are written on the broker's loop, as the transaction coordinator would
write them (transactional batches, then COMMIT/ABORT markers), so that this tests the
consumers' side only; confluent-kafka, kafka-python and aiokafka then read them.
"""

from __future__ import annotations

import asyncio
import struct
import time
from typing import Any

import crc32c
import pytest

from tests.kafka.conftest import create_topic, wait_until
from tests.kafka.test_kafka4_surface import fetch_request, list_offsets
from tests.kafka.wire import record
from tests.kafka_frontend.wire import WireClient

TRANSACTIONAL = 0x10


def batch(values: list[bytes], producer: tuple[int, int, int] = (-1, -1, -1), attributes: int = 0) -> bytes:
    ts = int(time.time() * 1000)
    records = b"".join(record(i, None, v) for i, v in enumerate(values))
    after_crc = (
        struct.pack(">hiqqqhii", attributes, len(values) - 1, ts, ts, *producer, len(values)) + records
    )
    return struct.pack(">qiibI", 0, 4 + 1 + 4 + len(after_crc), -1, 2, crc32c.crc32c(after_crc)) + after_crc


class Writer:
    """Appends to partition 0 of ``topic`` on the broker's loop."""

    def __init__(self, broker: Any, topic: str) -> None:
        self.broker = broker
        self.topic = topic
        self.sequences: dict[int, int] = {}

    def _run(self, fn: Any) -> Any:
        async def go() -> Any:
            topics = self.broker.server.core.topics
            return fn(topics, topics.partition(self.topic, 0))

        return self.broker.call(go())

    def plain(self, *values: bytes) -> None:
        self._run(lambda topics, log_: topics.append_batches(log_, bytearray(batch(list(values)))))

    def txn(self, producer_id: int, *values: bytes) -> None:
        seq = self.sequences.get(producer_id, 0)
        self.sequences[producer_id] = seq + len(values)
        data = batch(list(values), (producer_id, 0, seq), TRANSACTIONAL)
        self._run(lambda topics, log_: topics.append_batches(log_, bytearray(data)))

    def end(self, producer_id: int, *, commit: bool) -> None:
        def write(topics: Any, log_: Any) -> None:
            log_.append_control(producer_id, 0, commit=commit, coordinator_epoch=0)
            topics.waiters.appended(log_)  # as Topics.append_control does

        self._run(write)


@pytest.fixture
def written(kafka_broker: Any, bootstrap: str, topic: str) -> Writer:
    """Offsets: 0 plain a; 1-2 txn 1000 (aborted at 3); 4 txn 1001 (committed at 5);
    6 txn 1002 (open); 7 plain b.  Last stable offset 6, high watermark 8."""
    create_topic(bootstrap, topic)
    w = Writer(kafka_broker, topic)
    w.plain(b"a")
    w.txn(1000, b"aborted-1", b"aborted-2")
    w.end(1000, commit=False)
    w.txn(1001, b"committed")
    w.end(1001, commit=True)
    w.txn(1002, b"open")
    w.plain(b"b")
    return w


def test_fetch_stops_at_the_last_stable_offset_and_lists_aborts(
    bootstrap: str, topic: str, written: Writer
) -> None:
    with WireClient(bootstrap) as client:
        committed = (
            client.call(fetch_request(12, [(topic, 0, 0)], isolation_level=1)).responses[0].partitions[0]
        )
        assert (committed.high_watermark, committed.last_stable_offset) == (8, 6)
        assert [(a.producer_id, a.first_offset) for a in committed.aborted_transactions] == [(1000, 1)]
        last = _last_offset(bytes(committed.records))
        assert last == 5, "read_committed: nothing at or past the LSO"

        uncommitted = client.call(fetch_request(12, [(topic, 0, 0)])).responses[0].partitions[0]
        assert (uncommitted.high_watermark, uncommitted.last_stable_offset) == (8, 6)
        assert uncommitted.aborted_transactions is None
        assert _last_offset(bytes(uncommitted.records)) == 7

        at_lso = client.call(fetch_request(17, [(_topic_id(client, topic), 0, 6)], isolation_level=1))
        part = at_lso.responses[0].partitions[0]
        assert part.error_code == 0 and not part.records and part.aborted_transactions == ()

        for version in (2, 5, 10):
            assert list_offsets(client, version, topic, -1, isolation=1).offset == 6
            assert list_offsets(client, version, topic, -1, isolation=0).offset == 8


def _last_offset(records: bytes) -> int:
    pos, last = 0, -1
    while pos + 12 <= len(records):
        base, length = struct.unpack_from(">qi", records, pos)
        (delta,) = struct.unpack_from(">i", records, pos + 23)
        last = base + delta
        pos += 12 + length
    return last


def _topic_id(client: WireClient, topic: str) -> Any:
    from tests.kafka.test_kafka4_surface import topic_id

    return topic_id(client, topic)


def _confluent(bootstrap: str, topic: str, isolation: str, want: int) -> list[bytes]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"{topic}-{isolation}", "isolation.level": isolation}
    )
    c.assign([TopicPartition(topic, 0, 0)])
    got: list[bytes] = []
    try:

        def poll() -> bool:
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                got.append(m.value())
            return len(got) >= want

        wait_until(poll, 20, f"confluent {isolation}")
        assert c.poll(0.5) is None, "nothing more"
    finally:
        c.close()
    return got


def test_confluent_read_committed(bootstrap: str, topic: str, written: Writer) -> None:
    assert _confluent(bootstrap, topic, "read_committed", 2) == [b"a", b"committed"]
    everything = [b"a", b"aborted-1", b"aborted-2", b"committed", b"open", b"b"]
    assert _confluent(bootstrap, topic, "read_uncommitted", 6) == everything
    written.end(1002, commit=True)
    assert _confluent(bootstrap, topic, "read_committed", 4) == [b"a", b"committed", b"open", b"b"]


def test_kafka_python_and_aiokafka_read_committed(bootstrap: str, topic: str, written: Writer) -> None:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", fetch_max_wait_ms=100
    )
    consumer.assign([TopicPartition(topic, 0)])
    consumer.seek(TopicPartition(topic, 0), 0)
    got: list[bytes] = []

    def poll(want: int) -> bool:
        for records in consumer.poll(timeout_ms=200).values():
            got.extend(r.value for r in records)
        return len(got) >= want

    try:
        wait_until(lambda: poll(2), 20, "kafka-python read_committed")
        assert got == [b"a", b"committed"]
        written.end(1002, commit=True)
        wait_until(lambda: poll(4), 20, "kafka-python after the commit")
        assert got == [b"a", b"committed", b"open", b"b"]
    finally:
        consumer.close()

    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition as ATP

    async def run() -> list[bytes]:
        c = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
        await c.start()
        try:
            c.assign([ATP(topic, 0)])
            c.seek(ATP(topic, 0), 0)
            out: list[bytes] = []
            while len(out) < 4:
                batch_ = await c.getmany(timeout_ms=1000)
                for records in batch_.values():
                    out.extend(r.value for r in records)
            return out
        finally:
            await c.stop()

    assert asyncio.run(asyncio.wait_for(run(), 20)) == [b"a", b"committed", b"open", b"b"]
