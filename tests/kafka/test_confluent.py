"""confluent-kafka (librdkafka) producing to and consuming from Jackalope's Kafka port."""

from __future__ import annotations

import time
import zlib

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    TIMESTAMP_CREATE_TIME,
    KafkaError,
    TopicPartition,
)

from tests.kafka.conftest import (
    MULTI_PARTITIONS,
    confluent_consumer,
    confluent_producer,
    consume_confluent,
    create_topic,
    ensure_topic,
    produce_confluent,
    recent_ms,
)


def _produce_one(bootstrap: str, topic: str, **kw: object) -> object:
    producer = confluent_producer(bootstrap, **{k: v for k, v in kw.items() if "." in k})
    delivered: list[object] = []
    errors: list[object] = []
    msg_kw = {k: v for k, v in kw.items() if "." not in k}
    producer.produce(topic, on_delivery=lambda e, m: (errors if e else delivered).append(e or m), **msg_kw)
    assert producer.flush(20) == 0
    assert not errors, errors
    return delivered[0]


def test_round_trip_keys_headers_and_create_time(bootstrap: str, topic: str) -> None:
    ts = recent_ms()
    producer = confluent_producer(bootstrap)
    delivered: list[object] = []
    headers = [("h1", b"v1"), ("dup", b"a"), ("dup", b"b"), ("empty", b""), ("null", None)]
    for i in range(5):
        producer.produce(
            topic,
            key=f"key-{i}".encode(),
            value=f"value-{i}".encode(),
            headers=headers,
            timestamp=ts + i,
            on_delivery=lambda e, m: delivered.append((e, m)),
        )
    assert producer.flush(20) == 0
    assert [e for e, _ in delivered] == [None] * 5
    assert [m.offset() for _, m in delivered] == [0, 1, 2, 3, 4]

    got = consume_confluent(bootstrap, topic, 5)
    assert [m.offset() for m in got] == [0, 1, 2, 3, 4]
    for i, m in enumerate(got):
        assert m.key() == f"key-{i}".encode()
        assert m.value() == f"value-{i}".encode()
        assert m.headers() == headers
        assert m.timestamp() == (TIMESTAMP_CREATE_TIME, ts + i)


def test_null_key_and_null_value(bootstrap: str, topic: str) -> None:
    produce_confluent(bootstrap, topic, [(None, b"no key"), (b"tombstone", None), (None, None), (b"", b"")])
    got = consume_confluent(bootstrap, topic, 4)
    assert [(m.key(), m.value()) for m in got] == [
        (None, b"no key"),
        (b"tombstone", None),
        (None, None),
        (b"", b""),
    ]
    assert all(m.headers() is None for m in got)


def test_record_near_one_megabyte(bootstrap: str, topic: str) -> None:
    big = bytes(range(256)) * (900 * 1024 // 256)
    produce_confluent(bootstrap, topic, [(b"big", big), (b"small", b"s")], **{"message.max.bytes": 2_000_000})
    got = consume_confluent(bootstrap, topic, 2)
    assert got[0].value() == big
    assert got[1].value() == b"s"


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_codecs(bootstrap: str, topic: str, codec: str) -> None:
    records = [(f"k{i}".encode(), (f"value {i} " * 50).encode()) for i in range(200)]
    produce_confluent(
        bootstrap, topic, records, **{"compression.type": codec, "linger.ms": 50, "batch.num.messages": 100}
    )
    got = consume_confluent(bootstrap, topic, 200)
    assert [(m.key(), m.value()) for m in got] == records
    assert [m.offset() for m in got] == list(range(200))


def test_key_partitioning_matches_default_partitioner(multi_bootstrap: str, topic: str) -> None:
    """librdkafka's default partitioner (consistent_random) is CRC-32 of the key modulo the
    partition count; every record of a key lands in that one partition."""
    ensure_topic(multi_bootstrap, topic)
    keys = [f"user-{i}".encode() for i in range(30)]
    delivered = produce_confluent(multi_bootstrap, topic, [(k, b"x") for k in keys * 3])
    where: dict[bytes, set[int]] = {}
    for m in delivered:
        where.setdefault(m.key(), set()).add(m.partition())
    for k in keys:
        assert where[k] == {zlib.crc32(k) % MULTI_PARTITIONS}, k
    assert len({p for ps in where.values() for p in ps}) > 1

    # What the broker stored agrees with what the delivery reports said.
    got = consume_confluent(multi_bootstrap, topic, 90)
    for m in got:
        assert m.partition() == zlib.crc32(m.key()) % MULTI_PARTITIONS


def test_murmur2_partitioner_agrees_with_java_default(multi_bootstrap: str, topic: str) -> None:
    from kafka.partitioner.default import murmur2

    ensure_topic(multi_bootstrap, topic)
    keys = [f"order-{i}".encode() for i in range(20)]
    delivered = produce_confluent(
        multi_bootstrap, topic, [(k, b"x") for k in keys], partitioner="murmur2_random"
    )
    for m in delivered:
        assert m.partition() == (murmur2(m.key()) & 0x7FFFFFFF) % MULTI_PARTITIONS


def test_per_partition_ordering(multi_bootstrap: str, topic: str) -> None:
    ensure_topic(multi_bootstrap, topic)
    records = [(f"k{i % 3}".encode(), f"{i}".encode()) for i in range(600)]
    produce_confluent(multi_bootstrap, topic, records, **{"linger.ms": 2, "batch.num.messages": 37})
    got = consume_confluent(multi_bootstrap, topic, 600)
    by_partition: dict[int, list[tuple[int, bytes, int]]] = {}
    for m in got:
        by_partition.setdefault(m.partition(), []).append((m.offset(), m.key(), int(m.value())))
    for seq in by_partition.values():
        seq.sort()
        assert [o for o, _, _ in seq] == list(range(len(seq))), "offsets of a partition are dense"
        for key in {k for _, k, _ in seq}:
            values = [v for _, k, v in seq if k == key]
            assert values == sorted(values), f"key {key!r} out of order"
            assert len(values) == 200


def test_seek_beginning_end_and_timestamp(bootstrap: str, topic: str) -> None:
    t0 = recent_ms()
    producer = confluent_producer(bootstrap)
    for i in range(10):
        producer.produce(topic, value=f"v{i}".encode(), timestamp=t0 + i * 1000)
    assert producer.flush(20) == 0

    consumer = confluent_consumer(bootstrap)
    try:
        tp = TopicPartition(topic, 0)
        assert consumer.get_watermark_offsets(tp, timeout=10) == (0, 10)

        found = consumer.offsets_for_times([TopicPartition(topic, 0, t0 + 2500)], timeout=10)
        assert found[0].error is None
        assert found[0].offset == 3
        exact = consumer.offsets_for_times([TopicPartition(topic, 0, t0 + 4000)], timeout=10)
        assert exact[0].offset == 4
        beyond = consumer.offsets_for_times([TopicPartition(topic, 0, t0 + 60_000)], timeout=10)
        assert beyond[0].offset == -1  # no record at or after that time: end (librdkafka: -1)

        consumer.assign([TopicPartition(topic, 0, found[0].offset)])
        first = _poll_value(consumer)
        assert first.offset() == 3 and first.value() == b"v3"

        consumer.seek(TopicPartition(topic, 0, OFFSET_BEGINNING))
        assert _poll_value(consumer).offset() == 0

        consumer.seek(TopicPartition(topic, 0, 7))
        assert _poll_value(consumer).value() == b"v7"

        consumer.seek(TopicPartition(topic, 0, OFFSET_END))
        # OFFSET_END is resolved when fetching resumes, maybe after a produce: produce until a
        # record arrives; it must be a new one, never one from before the seek.
        after = None
        for i in range(20):
            producer.produce(topic, value=f"after-end-{i}".encode())
            assert producer.flush(10) == 0
            after = consumer.poll(1.0)
            if after is not None:
                break
        assert after is not None and after.error() is None
        assert after.offset() >= 10 and after.value().startswith(b"after-end-")
    finally:
        consumer.close()


def _poll_value(consumer: object, timeout: float = 10) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = consumer.poll(0.2)  # type: ignore[attr-defined]
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        return msg
    raise AssertionError("no record within the timeout")


def test_idempotent_producer(multi_bootstrap: str, topic: str) -> None:
    ensure_topic(multi_bootstrap, topic)
    records = [(f"k{i % 2}".encode(), f"{i}".encode()) for i in range(300)]
    delivered = produce_confluent(
        multi_bootstrap, topic, records, **{"enable.idempotence": True, "acks": "all", "linger.ms": 1}
    )
    assert len(delivered) == 300
    got = consume_confluent(multi_bootstrap, topic, 300)
    values = sorted(int(m.value()) for m in got)
    assert values == list(range(300)), "each record exactly once"


def test_fetch_out_of_range_resets_per_policy(bootstrap: str, topic: str) -> None:
    produce_confluent(bootstrap, topic, [(None, b"a"), (None, b"b")])
    consumer = confluent_consumer(bootstrap, **{"auto.offset.reset": "earliest"})
    try:
        consumer.assign([TopicPartition(topic, 0, 1000)])
        msg = _poll_value(consumer)
        assert msg.offset() == 0, "OFFSET_OUT_OF_RANGE must reset to earliest"
    finally:
        consumer.close()

    consumer = confluent_consumer(bootstrap, **{"auto.offset.reset": "error", "enable.partition.eof": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 1000)])
        deadline = time.monotonic() + 10
        err = None
        while time.monotonic() < deadline and err is None:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is not None:
                err = msg.error()
        assert err is not None and err.code() == KafkaError._AUTO_OFFSET_RESET, err
    finally:
        consumer.close()


def test_metadata_advertises_the_port_clients_used(bootstrap: str, topic: str) -> None:
    produce_confluent(bootstrap, topic, [(None, b"x")])
    consumer = confluent_consumer(bootstrap)
    try:
        md = consumer.list_topics(timeout=10)
        brokers = list(md.brokers.values())
        assert len(brokers) == 1
        assert f"{brokers[0].host}:{brokers[0].port}" == bootstrap
        assert md.topics[topic].error is None
        part = md.topics[topic].partitions[0]
        assert part.leader == brokers[0].id
        assert list(part.replicas) == [brokers[0].id]
        assert list(part.isrs) == [brokers[0].id]
    finally:
        consumer.close()


def test_unknown_topic_without_auto_create(topic: str) -> None:
    from jackalope import Broker

    broker = Broker(kafka_auto_create_topics=False).start()
    try:
        bs = broker.kafka_bootstrap
        producer = confluent_producer(bs, **{"message.timeout.ms": 3000})
        errors: list[object] = []
        producer.produce(topic, value=b"x", on_delivery=lambda e, m: errors.append(e))
        producer.flush(10)
        assert len(errors) == 1 and errors[0] is not None
        assert errors[0].code() in (
            KafkaError.UNKNOWN_TOPIC_OR_PART,
            KafkaError._UNKNOWN_TOPIC,
            KafkaError._MSG_TIMED_OUT,
        ), errors
        consumer = confluent_consumer(bs)
        try:
            md = consumer.list_topics(topic, timeout=10)
            assert md.topics[topic].error is not None
            assert md.topics[topic].error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
        finally:
            consumer.close()
    finally:
        broker.stop()


def test_fetch_long_poll_wakes_on_append(bootstrap: str, topic: str) -> None:
    """A fetch waiting at the end of the log (fetch.wait.max.ms) is answered as soon as a record
    arrives, not when the wait runs out."""
    produce_confluent(bootstrap, topic, [(None, b"first")])
    consumer = confluent_consumer(bootstrap, **{"fetch.wait.max.ms": 5000, "fetch.min.bytes": 1})
    producer = confluent_producer(bootstrap, **{"linger.ms": 0})
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        assert _poll_value(consumer).value() == b"first"
        time.sleep(0.5)  # the consumer is now parked in a fetch at the end of the log
        latencies = []
        for i in range(3):
            sent = time.monotonic()
            producer.produce(topic, value=f"late-{i}".encode())
            producer.flush(5)
            msg = _poll_value(consumer)
            latencies.append(time.monotonic() - sent)
            assert msg.value() == f"late-{i}".encode()
        assert max(latencies) < 2.0, latencies
    finally:
        consumer.close()


def test_log_append_time_topic_stamps_records_with_broker_time(bootstrap: str, topic: str) -> None:
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME

    create_topic(bootstrap, topic, config={"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    delivered = produce_confluent(bootstrap, topic, [(None, b"a"), (None, b"b")])
    after = int(time.time() * 1000)
    ((kind, ts),) = {m.timestamp() for m in delivered[:1]}
    assert kind == TIMESTAMP_LOG_APPEND_TIME and before - 1000 <= ts <= after + 1000
    for m in consume_confluent(bootstrap, topic, 2):
        kind, ts = m.timestamp()
        assert kind == TIMESTAMP_LOG_APPEND_TIME
        assert before - 1000 <= ts <= after + 1000


def test_auto_offset_reset_latest_skips_old_records(bootstrap: str, topic: str, group: str) -> None:
    produce_confluent(bootstrap, topic, [(None, b"old")])
    consumer = confluent_consumer(bootstrap, group, **{"auto.offset.reset": "latest"})
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 20
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(0.1)
        assert consumer.assignment(), "no assignment"
        # The start position is resolved when fetching begins, which may be after a produce:
        # keep producing until something arrives; it must never be the old record.
        got = None
        for i in range(20):
            produce_confluent(bootstrap, topic, [(None, f"new-{i}".encode())])
            got = consumer.poll(1.0)
            if got is not None:
                break
        assert got is not None and got.error() is None
        assert got.value().startswith(b"new-"), got.value()
    finally:
        consumer.close()
