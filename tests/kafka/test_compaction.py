"""cleanup.policy=compact through the Kafka protocol: the broker's background cleaner keeps
the last record of every key (tombstones included) at its original offset, and consumers
keep reading from offset 0 across the gaps it leaves."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.kafka.conftest import consume_confluent, produce_confluent, unique, wait_until


@pytest.fixture(scope="module")
def compacting_broker() -> Iterator[Any]:
    from jackalope import Broker

    broker = Broker(kafka_port=0, retention_check_interval_ms=200).start()
    yield broker
    broker.stop()


def test_compaction_keeps_the_last_record_per_key(compacting_broker: Any) -> None:
    from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not re-exported in its stubs
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
    )
    from confluent_kafka.cimpl import NewTopic

    bs = compacting_broker.kafka_bootstrap
    topic = unique("compacted")
    admin = AdminClient({"bootstrap.servers": bs})
    # nothing is compacted while the records go in (a slow producer would otherwise see the
    # cleaner run between its batches); the lag is lifted once they are all written
    configs = {"cleanup.policy": "compact", "segment.bytes": "1024", "min.compaction.lag.ms": "3600000"}
    admin.create_topics([NewTopic(topic, 1, 1, config=configs)])[topic].result(10)

    keys = [f"user-{i}".encode() for i in range(5)]
    rounds: list[list[tuple[bytes, bytes | None]]] = [
        [(k, f"{k.decode()} v{r}".encode() * 10) for k in keys] for r in range(6)
    ]
    rounds.append([(keys[0], None)])  # a tombstone for user-0
    rounds += [[(b"tail", f"padding {i}".encode() * 40)] for i in range(4)]  # roll past the rest
    delivered = [m for batch in rounds for m in produce_confluent(bs, topic, batch)]  # one batch each
    last_offset = {m.key(): m.offset() for m in delivered}
    latest = {m.key(): m.value() for m in delivered}

    log_ = compacting_broker.server.core.topics.partition(topic, 0)
    assert log_.segment_count > 3
    before = log_.size_bytes
    lag = ConfigEntry("min.compaction.lag.ms", "0", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[lag])
    admin.incremental_alter_configs([resource])[resource].result(10)
    wait_until(lambda: log_.size_bytes < before // 2, 15, "a compaction")

    records = consume_confluent(bs, topic, count=_count_from_zero(bs, topic))
    seen = {m.key(): (m.offset(), m.value()) for m in records}
    offsets = [m.offset() for m in records]
    assert offsets == sorted(offsets) and len(offsets) < len(delivered)  # gaps, in order
    for key in keys:
        assert seen[key] == (last_offset[key], latest[key])  # the last value, where it was written
        assert [m.key() for m in records].count(key) == 1  # and no older one
    assert seen[keys[0]][1] is None  # the tombstone is kept (delete.retention.ms is a day)
    assert [m.value() for m in records if m.key() == b"tail"][-1] == latest[b"tail"]


def _count_from_zero(bs: str, topic: str) -> int:
    """How many records a reader from the beginning gets (what compaction left)."""
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    from tests.kafka.conftest import confluent_consumer

    consumer = confluent_consumer(bs)
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        count = 0
        while True:
            msg = consumer.poll(1.0)
            if msg is None:
                return count
            assert msg.error() is None
            count += 1
            if msg.offset() == high - 1:
                return count
    finally:
        consumer.close()
