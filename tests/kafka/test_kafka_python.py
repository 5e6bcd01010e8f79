"""kafka-python producing to and consuming from Jackalope's Kafka port."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from kafka.partitioner.default import murmur2

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from tests.kafka.conftest import MULTI_PARTITIONS, consume_confluent, ensure_topic, recent_ms


@pytest.fixture
def producer_factory(bootstrap: str) -> Iterator[Any]:
    made: list[KafkaProducer] = []

    def make(**kw: Any) -> KafkaProducer:
        kw.setdefault("bootstrap_servers", bootstrap)
        p = KafkaProducer(request_timeout_ms=10000, max_block_ms=10000, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close(timeout=5)


@pytest.fixture
def consumer_factory(bootstrap: str) -> Iterator[Any]:
    made: list[KafkaConsumer] = []

    def make(**kw: Any) -> KafkaConsumer:
        kw.setdefault("auto_offset_reset", "earliest")
        kw.setdefault("enable_auto_commit", False)
        kw.setdefault("bootstrap_servers", bootstrap)
        c = KafkaConsumer(request_timeout_ms=10000, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def read(consumer: KafkaConsumer, count: int, timeout: float = 15) -> list[Any]:
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            out.extend(records)
    assert len(out) >= count, f"read {len(out)} of {count} records"
    return out


def read_topic(consumer_factory: Any, topic: str, count: int, partitions: int = 1, **kw: Any) -> list[Any]:
    c = consumer_factory(**kw)
    c.assign([TopicPartition(topic, p) for p in range(partitions)])
    c.seek_to_beginning()
    return read(c, count)


def test_round_trip_keys_headers_and_create_time(
    producer_factory: Any, consumer_factory: Any, topic: str
) -> None:
    ts = recent_ms()
    producer = producer_factory()
    headers = [("h1", b"v1"), ("dup", b"a"), ("dup", b"b"), ("empty", b"")]
    futures = [
        producer.send(
            topic, key=f"k{i}".encode(), value=f"v{i}".encode(), headers=headers, timestamp_ms=ts + i
        )
        for i in range(5)
    ]
    metas = [f.get(timeout=15) for f in futures]
    assert [m.offset for m in metas] == [0, 1, 2, 3, 4]
    assert all(m.partition == 0 for m in metas)

    got = read_topic(consumer_factory, topic, 5)
    for i, r in enumerate(got):
        assert (r.offset, r.key, r.value) == (i, f"k{i}".encode(), f"v{i}".encode())
        assert list(r.headers) == headers
        assert r.timestamp == ts + i
        assert r.timestamp_type == 0  # CreateTime


def test_null_key_and_null_value(producer_factory: Any, consumer_factory: Any, topic: str) -> None:
    producer = producer_factory()
    for key, value in [(None, b"no key"), (b"tombstone", None), (b"", b"")]:
        producer.send(topic, key=key, value=value)
    producer.flush(timeout=15)
    got = read_topic(consumer_factory, topic, 3)
    assert [(r.key, r.value) for r in got] == [(None, b"no key"), (b"tombstone", None), (b"", b"")]


def test_record_near_one_megabyte(producer_factory: Any, consumer_factory: Any, topic: str) -> None:
    big = bytes(range(256)) * (900 * 1024 // 256)
    producer = producer_factory(max_request_size=2_000_000)
    producer.send(topic, key=b"big", value=big).get(timeout=15)
    producer.send(topic, key=b"small", value=b"s").get(timeout=15)
    got = read_topic(consumer_factory, topic, 2)
    assert got[0].value == big
    assert got[1].value == b"s"


CODEC_MODULES = {"gzip": None, "snappy": "snappy", "lz4": "lz4.frame", "zstd": "zstandard"}


@pytest.mark.parametrize("codec", list(CODEC_MODULES))
def test_compression_codecs(
    bootstrap: str, producer_factory: Any, consumer_factory: Any, topic: str, codec: str
) -> None:
    module = CODEC_MODULES[codec]
    if module is not None:
        pytest.importorskip(module, reason=f"kafka-python needs {module} for {codec}")
    producer = producer_factory(compression_type=codec, linger_ms=50, batch_size=64 * 1024)
    records = [(f"k{i}".encode(), (f"value {i} " * 50).encode()) for i in range(200)]
    for k, v in records:
        producer.send(topic, key=k, value=v)
    producer.flush(timeout=15)
    got = read_topic(consumer_factory, topic, 200)
    assert [(r.key, r.value) for r in got] == records
    assert [r.offset for r in got] == list(range(200))
    # and another client library reads what kafka-python compressed
    other = consume_confluent(bootstrap, topic, 200)
    assert [(m.key(), m.value()) for m in other] == records


def test_key_partitioning_matches_default_partitioner(
    multi_bootstrap: str, producer_factory: Any, consumer_factory: Any, topic: str
) -> None:
    ensure_topic(multi_bootstrap, topic)
    producer = producer_factory(bootstrap_servers=multi_bootstrap)
    keys = [f"user-{i}".encode() for i in range(30)]
    futures = [(k, producer.send(topic, key=k, value=b"x")) for k in keys * 2]
    for k, f in futures:
        assert f.get(timeout=15).partition == (murmur2(k) & 0x7FFFFFFF) % MULTI_PARTITIONS
    got = read_topic(consumer_factory, topic, 60, MULTI_PARTITIONS, bootstrap_servers=multi_bootstrap)
    for r in got:
        assert r.partition == (murmur2(r.key) & 0x7FFFFFFF) % MULTI_PARTITIONS


def test_per_partition_ordering(
    multi_bootstrap: str, producer_factory: Any, consumer_factory: Any, topic: str
) -> None:
    ensure_topic(multi_bootstrap, topic)
    producer = producer_factory(bootstrap_servers=multi_bootstrap, linger_ms=2)
    for i in range(600):
        producer.send(topic, key=f"k{i % 3}".encode(), value=str(i).encode())
    producer.flush(timeout=20)
    got = read_topic(consumer_factory, topic, 600, MULTI_PARTITIONS, bootstrap_servers=multi_bootstrap)
    by_partition: dict[int, list[Any]] = {}
    for r in got:
        by_partition.setdefault(r.partition, []).append(r)
    for records in by_partition.values():
        assert [r.offset for r in records] == list(range(len(records)))
        values = [int(r.value) for r in records]
        assert values == sorted(values)


def test_seek_beginning_end_and_timestamp(producer_factory: Any, consumer_factory: Any, topic: str) -> None:
    t0 = recent_ms()
    producer = producer_factory()
    for i in range(10):
        producer.send(topic, value=f"v{i}".encode(), timestamp_ms=t0 + i * 1000)
    producer.flush(timeout=15)

    tp = TopicPartition(topic, 0)
    consumer = consumer_factory()
    consumer.assign([tp])
    assert consumer.beginning_offsets([tp]) == {tp: 0}
    assert consumer.end_offsets([tp]) == {tp: 10}
    found = consumer.offsets_for_times({tp: t0 + 2500})
    assert found[tp].offset == 3 and found[tp].timestamp == t0 + 3000
    assert consumer.offsets_for_times({tp: t0 + 60_000})[tp] is None

    consumer.seek(tp, found[tp].offset)
    assert read(consumer, 1)[0].value == b"v3"
    consumer.seek_to_beginning(tp)
    assert read(consumer, 1)[0].offset == 0
    consumer.seek_to_end(tp)
    assert consumer.position(tp) == 10
    assert consumer.poll(timeout_ms=300) == {}
    producer.send(topic, value=b"after-end").get(timeout=15)
    r = read(consumer, 1)[0]
    assert (r.offset, r.value) == (10, b"after-end")


def test_idempotent_producer(
    multi_bootstrap: str, producer_factory: Any, consumer_factory: Any, topic: str
) -> None:
    ensure_topic(multi_bootstrap, topic)
    producer = producer_factory(bootstrap_servers=multi_bootstrap, enable_idempotence=True, acks="all")
    futures = [producer.send(topic, key=f"k{i % 2}".encode(), value=str(i).encode()) for i in range(300)]
    for f in futures:
        f.get(timeout=15)
    got = read_topic(consumer_factory, topic, 300, MULTI_PARTITIONS, bootstrap_servers=multi_bootstrap)
    assert sorted(int(r.value) for r in got) == list(range(300))


def test_consumer_group_commit_and_resume(
    producer_factory: Any, consumer_factory: Any, topic: str, group: str
) -> None:
    producer = producer_factory()
    for i in range(10):
        producer.send(topic, value=str(i).encode())
    producer.flush(timeout=15)

    first = consumer_factory(group_id=group, session_timeout_ms=6000, heartbeat_interval_ms=1000)
    first.subscribe([topic])
    got = read(first, 4, timeout=20)
    tp = TopicPartition(topic, 0)
    from kafka.structs import OffsetAndMetadata

    first.commit({tp: OffsetAndMetadata(4, "", -1)})
    assert first.committed(tp) == 4
    first.close()

    second = consumer_factory(group_id=group, session_timeout_ms=6000, heartbeat_interval_ms=1000)
    second.subscribe([topic])
    rest = read(second, 6, timeout=20)
    assert [int(r.value) for r in rest] == [4, 5, 6, 7, 8, 9]
    assert [int(r.value) for r in got[:4]] == [0, 1, 2, 3]
