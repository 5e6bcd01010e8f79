"""Consumer groups: partition assignment, rebalancing on leave and on death, committed offsets
surviving a consumer restart and a broker restart (confluent-kafka as the group member)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from tests.kafka.conftest import (
    SESSION_TIMEOUT_MS,
    confluent_consumer,
    ensure_topic,
    kafka_address,
    produce_confluent,
)

PARTITIONS = 6

MEMBER_SCRIPT = r"""
import sys, time
from confluent_kafka import Consumer
bootstrap, topic, group = sys.argv[1:4]
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
              "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000})
c.subscribe([topic])
last = None
while True:
    c.poll(0.1)
    now = sorted(tp.partition for tp in c.assignment())
    if now != last:
        print("assigned", ",".join(map(str, now)), flush=True)
        last = now
"""


@pytest.fixture(scope="module")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Auto-created topics get six partitions here, so these tests need no admin API."""
    from jackalope import Broker

    broker = Broker(tmp_path_factory.mktemp("groups") / "data", kafka_num_partitions=PARTITIONS).start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def members(bootstrap: str, group: str) -> Iterator[Callable[[], Any]]:
    made: list[Any] = []

    def make() -> Any:
        c = confluent_consumer(bootstrap, group)
        made.append(c)
        return c

    yield make
    for c in made:
        with contextlib.suppress(RuntimeError):  # closed by the test already
            c.close()


def assignment(c: Any) -> set[int]:
    return {tp.partition for tp in c.assignment()}


def poll_until(consumers: list[Any], done: Callable[[], bool], timeout: float, what: str) -> list[Any]:
    """Poll every consumer in turn (which runs their rebalance callbacks) until ``done()``;
    return the records they received meanwhile."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while True:
        for c in consumers:
            msg = c.poll(0.05)
            if msg is not None and msg.error() is None:
                got.append(msg)
        if done():
            return got
        if time.monotonic() > deadline:
            states = [sorted(assignment(c)) for c in consumers]
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; assignments {states}")


def split_evenly(consumers: list[Any], partitions: int) -> Callable[[], bool]:
    def check() -> bool:
        sets = [assignment(c) for c in consumers]
        union = set().union(*sets)
        disjoint = sum(len(s) for s in sets) == len(union)
        return union == set(range(partitions)) and disjoint and all(sets)

    return check


def test_three_members_split_six_partitions_and_rebalance_on_close(
    bootstrap: str, topic: str, members: Callable[[], Any]
) -> None:
    ensure_topic(bootstrap, topic)
    consumers = [members() for _ in range(3)]
    for c in consumers:
        c.subscribe([topic])
    poll_until(consumers, split_evenly(consumers, PARTITIONS), 30, "three members to share 6 partitions")
    assert sorted(len(assignment(c)) for c in consumers) == [2, 2, 2]

    # Every partition is read by exactly one member.
    produce_confluent(
        bootstrap, topic, [(None, f"p{p}".encode()) for p in range(PARTITIONS) for _ in range(3)]
    )
    _produce_to_each(bootstrap, topic)
    got = _drain(consumers, expect=PARTITIONS * 3 + PARTITIONS, timeout=15)
    assert len(got) == PARTITIONS * 3 + PARTITIONS
    for reader, m in _readers:
        assert m.partition() in assignment(reader), "a member reads only the partitions it owns"

    leaving = consumers.pop()
    leaving.close()  # LeaveGroup: the survivors take over at once, not after a session timeout
    started = time.monotonic()
    poll_until(
        consumers, split_evenly(consumers, PARTITIONS), 15, "the two survivors to take all 6 partitions"
    )
    assert time.monotonic() - started < SESSION_TIMEOUT_MS / 1000, (
        "a clean leave must not wait for the session"
    )
    assert sorted(len(assignment(c)) for c in consumers) == [3, 3]


def _produce_to_each(bootstrap: str, topic: str) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap})
    for part in range(PARTITIONS):
        p.produce(topic, value=f"direct-{part}".encode(), partition=part)
    assert p.flush(15) == 0


_readers: list[tuple[Any, Any]] = []


def _drain(consumers: list[Any], expect: int, timeout: float) -> list[Any]:
    """Poll the members until ``expect`` records arrived; ``_readers`` records who read what."""
    got: list[Any] = []
    _readers.clear()
    deadline = time.monotonic() + timeout
    while len(got) < expect and time.monotonic() < deadline:
        for c in consumers:
            msg = c.poll(0.05)
            if msg is not None and msg.error() is None:
                got.append(msg)
                _readers.append((c, msg))
    return got


@pytest.mark.timeout(60)
def test_dead_member_partitions_move_within_session_timeout(
    bootstrap: str, topic: str, group: str, members: Callable[[], Any]
) -> None:
    ensure_topic(bootstrap, topic)
    consumers = [members() for _ in range(2)]
    for c in consumers:
        c.subscribe([topic])
    doomed = subprocess.Popen(
        [sys.executable, "-c", MEMBER_SCRIPT, bootstrap, topic, group],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        # Wait until the three-way split includes the subprocess.
        def three_way() -> bool:
            sets = [assignment(c) for c in consumers]
            return all(len(s) == 2 for s in sets) and len(set().union(*sets)) == 4

        poll_until(consumers, three_way, 30, "a three-way split with the member in a subprocess")
        os.kill(doomed.pid, signal.SIGKILL)  # no LeaveGroup, no more heartbeats
        doomed.wait(5)
        killed_at = time.monotonic()
        poll_until(
            consumers,
            split_evenly(consumers, PARTITIONS),
            SESSION_TIMEOUT_MS / 1000 + 12,
            "the survivors to take the dead member's partitions",
        )
        elapsed = time.monotonic() - killed_at
        assert sorted(len(assignment(c)) for c in consumers) == [3, 3]
        # the session timeout, plus a heartbeat interval or two and the rebalance
        assert elapsed < SESSION_TIMEOUT_MS / 1000 + 6, elapsed

        _produce_to_each(bootstrap, topic)
        got = _drain(consumers, expect=PARTITIONS, timeout=15)
        assert sorted(m.partition() for m in got) == list(range(PARTITIONS))
    finally:
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait()


def test_committed_offsets_survive_a_consumer_restart(
    bootstrap: str, topic: str, group: str, members: Callable[[], Any]
) -> None:
    ensure_topic(bootstrap, topic)
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap})
    for i in range(20):
        p.produce(topic, value=f"{i % 2}:{i // 2}".encode(), partition=i % 2)
    assert p.flush(15) == 0

    first = members()
    first.subscribe([topic])
    got = _drain_until_count(first, 20)
    assert len(got) == 20
    first.commit(offsets=[TopicPartition(topic, 0, 4), TopicPartition(topic, 1, 7)], asynchronous=False)
    committed = first.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
    assert [tp.offset for tp in committed] == [4, 7]
    uncommitted = first.committed([TopicPartition(topic, 2)], timeout=10)
    assert uncommitted[0].offset < 0, "no commit: OFFSET_INVALID"
    first.close()

    second = members()
    second.subscribe([topic])
    rest = _drain_until_count(second, 3 + 6)
    assert sorted(m.value().decode() for m in rest) == sorted(
        [f"1:{i}" for i in range(7, 10)] + [f"0:{i}" for i in range(4, 10)]
    )
    # committed offsets are also visible to a non-member with the group id
    probe = confluent_consumer(bootstrap, group)
    try:
        again = probe.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
        assert [tp.offset for tp in again] == [4, 7]
    finally:
        probe.close()


def _drain_until_count(c: Any, count: int, timeout: float = 25) -> list[Any]:
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        msg = c.poll(0.1)
        if msg is not None:
            assert msg.error() is None, msg.error()
            got.append(msg)
    assert len(got) == count, f"read {len(got)} of {count}"
    return got


@pytest.mark.timeout(90)
def test_committed_offsets_survive_a_broker_restart(serve_kafka: Callable[..., Any], tmp_path: Any) -> None:
    data = tmp_path / "restart-data"
    served = serve_kafka(data_dir=data)
    bs = kafka_address(served)
    topic, group = "restart-topic", "restart-group"
    produce_confluent(bs, topic, [(None, str(i).encode()) for i in range(10)], acks="all")

    c = confluent_consumer(bs, group)
    c.subscribe([topic])
    got = _drain_until_count(c, 10)
    assert [m.value() for m in got] == [str(i).encode() for i in range(10)]
    c.commit(offsets=[TopicPartition(topic, 0, 6)], asynchronous=False)
    c.close()
    assert served.stop() == 0

    again = serve_kafka(data_dir=data)
    bs2 = kafka_address(again)
    c2 = confluent_consumer(bs2, group)
    try:
        committed = c2.committed([TopicPartition(topic, 0)], timeout=10)
        assert committed[0].offset == 6
        c2.subscribe([topic])
        rest = _drain_until_count(c2, 4)
        assert [m.value() for m in rest] == [b"6", b"7", b"8", b"9"]
        assert [m.offset() for m in rest] == [6, 7, 8, 9]
    finally:
        c2.close()
