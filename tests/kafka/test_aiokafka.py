"""aiokafka producing to and consuming from Jackalope's Kafka port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2

from tests.kafka.conftest import MULTI_PARTITIONS, ensure_topic, recent_ms


@pytest.fixture
async def producer_factory(bootstrap: str) -> AsyncIterator[Any]:
    made: list[AIOKafkaProducer] = []

    async def make(**kw: Any) -> AIOKafkaProducer:
        kw.setdefault("bootstrap_servers", bootstrap)
        p = AIOKafkaProducer(request_timeout_ms=10000, **kw)
        made.append(p)
        await asyncio.wait_for(p.start(), 15)
        return p

    yield make
    for p in made:
        await asyncio.wait_for(p.stop(), 10)


@pytest.fixture
async def consumer_factory(bootstrap: str) -> AsyncIterator[Any]:
    made: list[AIOKafkaConsumer] = []

    async def make(**kw: Any) -> AIOKafkaConsumer:
        kw.setdefault("auto_offset_reset", "earliest")
        kw.setdefault("enable_auto_commit", False)
        kw.setdefault("bootstrap_servers", bootstrap)
        c = AIOKafkaConsumer(request_timeout_ms=10000, **kw)
        made.append(c)
        await asyncio.wait_for(c.start(), 15)
        return c

    yield make
    for c in made:
        await asyncio.wait_for(c.stop(), 10)


async def read(consumer: AIOKafkaConsumer, count: int, within: float = 15) -> list[Any]:
    out: list[Any] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while len(out) < count and loop.time() < deadline:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            out.extend(records)
    assert len(out) >= count, f"read {len(out)} of {count} records"
    return out


async def read_topic(
    consumer_factory: Any, topic: str, count: int, partitions: int = 1, **kw: Any
) -> list[Any]:
    c = await consumer_factory(**kw)
    c.assign([TopicPartition(topic, p) for p in range(partitions)])
    await c.seek_to_beginning()
    return await read(c, count)


async def test_round_trip_keys_headers_and_create_time(
    producer_factory: Any, consumer_factory: Any, topic: str
) -> None:
    ts = recent_ms()
    producer = await producer_factory()
    headers = [("h1", b"v1"), ("dup", b"a"), ("dup", b"b"), ("empty", b"")]
    metas = [
        await producer.send_and_wait(
            topic, key=f"k{i}".encode(), value=f"v{i}".encode(), headers=headers, timestamp_ms=ts + i
        )
        for i in range(5)
    ]
    assert [m.offset for m in metas] == [0, 1, 2, 3, 4]

    got = await read_topic(consumer_factory, topic, 5)
    for i, r in enumerate(got):
        assert (r.offset, r.key, r.value) == (i, f"k{i}".encode(), f"v{i}".encode())
        assert list(r.headers) == headers
        assert r.timestamp == ts + i
        assert r.timestamp_type == 0  # CreateTime


async def test_batch_of_records_via_send_batch(
    producer_factory: Any, consumer_factory: Any, topic: str
) -> None:
    producer = await producer_factory()
    batch = producer.create_batch()
    ts = recent_ms()
    for i in range(20):
        assert batch.append(key=None, value=f"b{i}".encode(), timestamp=ts + i, headers=[]) is not None
    partitions = await producer.partitions_for(topic)
    meta = await (await producer.send_batch(batch, topic, partition=min(partitions)))
    assert meta.offset == 0
    got = await read_topic(consumer_factory, topic, 20)
    assert [r.value for r in got] == [f"b{i}".encode() for i in range(20)]
    assert [r.timestamp for r in got] == [ts + i for i in range(20)]


async def test_null_key_and_null_value(producer_factory: Any, consumer_factory: Any, topic: str) -> None:
    producer = await producer_factory()
    for key, value in [(None, b"no key"), (b"tombstone", None), (b"", b"")]:
        await producer.send_and_wait(topic, key=key, value=value)
    got = await read_topic(consumer_factory, topic, 3)
    assert [(r.key, r.value) for r in got] == [(None, b"no key"), (b"tombstone", None), (b"", b"")]


async def test_record_near_one_megabyte(producer_factory: Any, consumer_factory: Any, topic: str) -> None:
    big = bytes(range(256)) * (900 * 1024 // 256)
    producer = await producer_factory(max_request_size=2_000_000)
    await producer.send_and_wait(topic, key=b"big", value=big)
    await producer.send_and_wait(topic, key=b"small", value=b"s")
    got = await read_topic(consumer_factory, topic, 2)
    assert got[0].value == big
    assert got[1].value == b"s"


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
async def test_compression_codecs(
    producer_factory: Any, consumer_factory: Any, topic: str, codec: str
) -> None:
    if codec != "gzip":
        pytest.importorskip("cramjam", reason=f"aiokafka needs cramjam for {codec}")
    producer = await producer_factory(compression_type=codec, linger_ms=50)
    records = [(f"k{i}".encode(), (f"value {i} " * 50).encode()) for i in range(200)]
    futures = [await producer.send(topic, key=k, value=v) for k, v in records]
    await asyncio.gather(*futures)
    got = await read_topic(consumer_factory, topic, 200)
    assert [(r.key, r.value) for r in got] == records
    assert [r.offset for r in got] == list(range(200))


async def test_key_partitioning_matches_default_partitioner(
    multi_bootstrap: str, producer_factory: Any, consumer_factory: Any, topic: str
) -> None:
    await asyncio.to_thread(ensure_topic, multi_bootstrap, topic)
    producer = await producer_factory(bootstrap_servers=multi_bootstrap)
    keys = [f"user-{i}".encode() for i in range(30)]
    for k in keys * 2:
        meta = await producer.send_and_wait(topic, key=k, value=b"x")
        assert meta.partition == (murmur2(k) & 0x7FFFFFFF) % MULTI_PARTITIONS
    got = await read_topic(consumer_factory, topic, 60, MULTI_PARTITIONS, bootstrap_servers=multi_bootstrap)
    for r in got:
        assert r.partition == (murmur2(r.key) & 0x7FFFFFFF) % MULTI_PARTITIONS


async def test_per_partition_ordering(
    multi_bootstrap: str, producer_factory: Any, consumer_factory: Any, topic: str
) -> None:
    await asyncio.to_thread(ensure_topic, multi_bootstrap, topic)
    producer = await producer_factory(bootstrap_servers=multi_bootstrap, linger_ms=2)
    futures = [
        await producer.send(topic, key=f"k{i % 3}".encode(), value=str(i).encode()) for i in range(600)
    ]
    await asyncio.gather(*futures)
    got = await read_topic(consumer_factory, topic, 600, MULTI_PARTITIONS, bootstrap_servers=multi_bootstrap)
    by_partition: dict[int, list[Any]] = {}
    for r in got:
        by_partition.setdefault(r.partition, []).append(r)
    for records in by_partition.values():
        assert [r.offset for r in records] == list(range(len(records)))
        values = [int(r.value) for r in records]
        assert values == sorted(values)


async def test_seek_beginning_end_and_timestamp(
    producer_factory: Any, consumer_factory: Any, topic: str
) -> None:
    t0 = recent_ms()
    producer = await producer_factory()
    for i in range(10):
        await producer.send_and_wait(topic, value=f"v{i}".encode(), timestamp_ms=t0 + i * 1000)

    tp = TopicPartition(topic, 0)
    consumer = await consumer_factory()
    consumer.assign([tp])
    assert await consumer.beginning_offsets([tp]) == {tp: 0}
    assert await consumer.end_offsets([tp]) == {tp: 10}
    found = await consumer.offsets_for_times({tp: t0 + 2500})
    assert found[tp].offset == 3 and found[tp].timestamp == t0 + 3000
    assert (await consumer.offsets_for_times({tp: t0 + 60_000}))[tp] is None

    consumer.seek(tp, found[tp].offset)
    assert (await read(consumer, 1))[0].value == b"v3"
    await consumer.seek_to_beginning(tp)
    assert (await read(consumer, 1))[0].offset == 0
    await consumer.seek_to_end(tp)
    assert await consumer.position(tp) == 10
    await producer.send_and_wait(topic, value=b"after-end")
    r = (await read(consumer, 1))[0]
    assert (r.offset, r.value) == (10, b"after-end")


async def test_idempotent_producer(
    multi_bootstrap: str, producer_factory: Any, consumer_factory: Any, topic: str
) -> None:
    await asyncio.to_thread(ensure_topic, multi_bootstrap, topic)
    producer = await producer_factory(bootstrap_servers=multi_bootstrap, enable_idempotence=True, acks="all")
    futures = [
        await producer.send(topic, key=f"k{i % 2}".encode(), value=str(i).encode()) for i in range(300)
    ]
    await asyncio.gather(*futures)
    got = await read_topic(consumer_factory, topic, 300, MULTI_PARTITIONS, bootstrap_servers=multi_bootstrap)
    assert sorted(int(r.value) for r in got) == list(range(300))


async def test_consumer_group_commit_and_resume(
    producer_factory: Any, consumer_factory: Any, topic: str, group: str
) -> None:
    producer = await producer_factory()
    for i in range(10):
        await producer.send_and_wait(topic, value=str(i).encode())
    tp = TopicPartition(topic, 0)
    opts = {"group_id": group, "session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}

    first = await consumer_factory(**opts)
    first.subscribe([topic])
    got = await read(first, 4, within=20)
    assert [int(r.value) for r in got[:4]] == [0, 1, 2, 3]
    await first.commit({tp: 4})
    assert await first.committed(tp) == 4
    await first.stop()

    second = await consumer_factory(**opts)
    second.subscribe([topic])
    rest = await read(second, 6, within=20)
    assert [int(r.value) for r in rest] == [4, 5, 6, 7, 8, 9]
