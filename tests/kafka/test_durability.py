"""SIGKILL `jackalope serve` while confluent-kafka produces with acks=all: every record whose
delivery report said success is there after a restart, at its offset, in order."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from tests.kafka.conftest import kafka_address

PARTITIONS = 2
KILL_AFTER_ACKS = 3000


@pytest.mark.timeout(90)
def test_acknowledged_records_survive_sigkill(serve_kafka: Callable[..., Any], tmp_path: Path) -> None:
    data = tmp_path / "durable"
    served = serve_kafka("--durability", "always", "--kafka-num-partitions", str(PARTITIONS), data_dir=data)
    bs = kafka_address(served)
    topic = "durable-topic"

    acked: dict[int, dict[int, bytes]] = {p: {} for p in range(PARTITIONS)}
    failed: list[Any] = []

    def report(err: Any, msg: Any) -> None:
        if err is None:
            acked[msg.partition()][msg.offset()] = msg.value()
        else:
            failed.append(err)

    producer = Producer(
        {
            "bootstrap.servers": bs,
            "acks": "all",
            "linger.ms": 2,
            "message.timeout.ms": 4000,
            "socket.timeout.ms": 3000,
            "reconnect.backoff.max.ms": 200,
        }
    )
    seq = [0] * PARTITIONS
    deadline = time.monotonic() + 40
    while sum(map(len, acked.values())) < KILL_AFTER_ACKS:
        assert time.monotonic() < deadline, f"only {sum(map(len, acked.values()))} acks in 40 s"
        for p in range(PARTITIONS):
            value = f"p{p}-{seq[p]:08d}-".encode() + b"x" * (seq[p] % 300)
            seq[p] += 1
            try:
                producer.produce(topic, value=value, partition=p, on_delivery=report)
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    os.kill(served.proc.pid, signal.SIGKILL)  # with produce requests in flight
    assert served.proc.wait(10) == -signal.SIGKILL
    producer.flush(10)  # whatever was in flight now fails (or, if it got in first, succeeded)
    total = sum(map(len, acked.values()))
    assert total >= KILL_AFTER_ACKS

    again = serve_kafka(data_dir=data)
    stored = _read_all(kafka_address(again), topic)
    for p in range(PARTITIONS):
        for offset, value in acked[p].items():
            assert stored[p].get(offset) == value, (
                f"partition {p}: acknowledged offset {offset} lost or changed"
            )
        offsets = sorted(stored[p])
        assert offsets == list(range(len(offsets))), "offsets stay dense"
        # the acknowledged records are in the order they were produced
        acked_in_offset_order = [acked[p][o] for o in sorted(acked[p])]
        assert acked_in_offset_order == sorted(acked_in_offset_order, key=lambda v: int(v.split(b"-")[1]))


def _read_all(bootstrap: str, topic: str) -> dict[int, dict[int, bytes]]:
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "reader",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    out: dict[int, dict[int, bytes]] = {p: {} for p in range(PARTITIONS)}
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        at_eof: set[int] = set()
        deadline = time.monotonic() + 30
        while len(at_eof) < PARTITIONS and time.monotonic() < deadline:
            msg = c.poll(0.2)
            if msg is None:
                continue
            if msg.error() is not None:
                if msg.error().code() == -191:  # _PARTITION_EOF
                    at_eof.add(msg.partition())
                    continue
                raise AssertionError(msg.error())
            at_eof.discard(msg.partition())
            out[msg.partition()][msg.offset()] = msg.value()
        assert len(at_eof) == PARTITIONS, "did not reach the end of every partition"
    finally:
        c.close()
    return out
