"""Retention: old segments of a topic go once they are past retention.ms / retention.bytes, so
the earliest offset (log start) advances while the newest records stay readable."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from tests.kafka.conftest import (
    confluent_consumer,
    confluent_producer,
    consume_confluent,
    create_topic,
    wait_until,
)


@pytest.fixture
def fast_retention_broker() -> Iterator[Any]:
    from jackalope import Broker

    broker = Broker(retention_check_interval_ms=100).start()
    try:
        yield broker
    finally:
        broker.stop()


def _produce_in_rounds(bootstrap: str, topic: str, rounds: int, per_round: int, pause: float) -> None:
    producer = confluent_producer(bootstrap, **{"linger.ms": 0})
    n = 0
    for _ in range(rounds):
        for _ in range(per_round):
            producer.produce(topic, value=f"{n}".encode() + b"." * 400, partition=0)
            n += 1
        assert producer.flush(10) == 0
        time.sleep(pause)


def _watermarks(bootstrap: str, topic: str) -> tuple[int, int]:
    c = confluent_consumer(bootstrap)
    try:
        low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        return int(low), int(high)
    finally:
        c.close()


def test_topic_retention_ms_deletes_old_segments(fast_retention_broker: Any, topic: str) -> None:
    bs = fast_retention_broker.kafka_bootstrap
    create_topic(bs, topic, config={"retention.ms": "1500", "segment.ms": "200", "segment.bytes": "1048576"})
    _produce_in_rounds(bs, topic, rounds=5, per_round=10, pause=0.3)
    assert _watermarks(bs, topic)[1] == 50

    low, high = wait_until(
        lambda: (w := _watermarks(bs, topic))[0] > 0 and w,
        10,
        "the log start offset to advance",
        interval=0.2,
    )
    assert high == 50, "retention never moves the end of the log"
    assert low % 10 == 0, "whole segments go, and each round of 10 records was at least one segment"

    # the log goes on from where it was, and a reader from the beginning starts at the log start
    p = confluent_producer(bs)
    p.produce(topic, value=b"fresh", partition=0)
    assert p.flush(10) == 0
    now_low, now_high = _watermarks(bs, topic)
    assert now_high == 51
    msgs = consume_confluent(bs, topic, now_high - now_low)
    assert msgs[0].offset() == now_low
    assert msgs[-1].value() == b"fresh"


def test_broker_default_retention_applies_to_auto_created_topics(topic: str) -> None:
    from jackalope import Broker

    broker = Broker(retention_check_interval_ms=100, retention_ms=1500, segment_ms=200).start()
    try:
        bs = broker.kafka_bootstrap
        _produce_in_rounds(bs, topic, rounds=4, per_round=5, pause=0.3)
        low, high = wait_until(
            lambda: (w := _watermarks(bs, topic))[0] > 0 and w, 10, "the log start to advance", interval=0.2
        )
        assert high == 20 and low > 0
    finally:
        broker.stop()


def test_retention_bytes_keeps_the_log_bounded(topic: str) -> None:
    from jackalope import Broker

    broker = Broker(retention_check_interval_ms=100).start()
    try:
        bs = broker.kafka_bootstrap
        create_topic(bs, topic, config={"retention.bytes": "8192", "segment.bytes": "4096"})
        _produce_in_rounds(bs, topic, rounds=20, per_round=5, pause=0)
        # each record is ~470 bytes on disk: at most retention.bytes plus one segment remain once
        # the next retention pass after the last produce has run (passes during producing may
        # have moved the start already, so the start moving is not enough to wait for)
        bound = (8192 + 4096) // 400
        low, high = wait_until(
            lambda: (w := _watermarks(bs, topic))[1] - w[0] <= bound and w,
            10,
            f"retention to keep at most {bound} records",
            interval=0.2,
        )
        assert high == 100 and low > 0
    finally:
        broker.stop()
