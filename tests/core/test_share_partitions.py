"""The share-partitions manager (core/share/partitions.py) over a real LogManager: reading
batches from a topic partition, the durable state in __share_group_state and its replay,
initial offsets, read_committed, members leaving, groups and topics deleted."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from jackalope.core.share.partition import AckBatch, AckType, Acquired
from jackalope.core.share.partitions import DefaultConfig, SharePartitions, duration_ms
from jackalope.core.topics import Topics
from jackalope.storage import LogManager, Record


@dataclass
class Env:
    logs: LogManager
    topics: Topics
    shares: SharePartitions


class Clock:
    def __init__(self) -> None:
        self.ms = 0

    def __call__(self) -> int:
        return self.ms


Factory = Callable[..., Awaitable[Env]]


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Factory]:
    """Each call: a fresh LogManager over the same files, as a broker restart does."""
    opened: list[Env] = []

    async def factory(config: DefaultConfig | None = None, clock: Clock | None = None) -> Env:
        logs = LogManager(tmp_path / "logs")
        logs.open()
        await logs.start()
        topics = Topics(logs, tmp_path)
        topics.load()
        shares = SharePartitions(
            logs,
            topics,
            config=(lambda g: config) if config else None,
            clock=clock or Clock(),
            max_in_flight=100,
        )
        await shares.load()
        topics.on_delete.append(shares.topic_deleted)
        env = Env(logs, topics, shares)
        opened.append(env)
        return env

    yield factory
    for env in opened:
        await env.logs.close()


EARLIEST = DefaultConfig(auto_offset_reset="earliest", record_lock_duration_ms=1000)
KEY = ("g", "t", 0)


def produce(env: Env, count: int, topic: str = "t") -> None:
    if topic not in env.topics:
        env.topics.create(topic, 1)
    log_ = env.topics.partition(topic, 0)
    assert log_ is not None
    env.topics.append_records(log_, [Record(value=b"v%d" % i) for i in range(count)])


def fetch(env: Env, member: str = "m", max_records: int = 100, committed: bool = False) -> list[Acquired]:
    log_ = env.topics.partition("t", 0)
    assert log_ is not None
    return env.shares.acquire(
        KEY, log_, member, max_records=max_records, max_bytes=1 << 20, committed=committed
    ).acquired


async def test_accepted_records_are_not_redelivered_after_a_restart(make: Factory) -> None:
    env = await make(EARLIEST)
    produce(env, 3)
    produce(env, 2)
    assert fetch(env) == [Acquired(0, 4, 1)]
    assert env.shares.acknowledge(KEY, "m", [AckBatch(0, 1, (int(AckType.ACCEPT),)), AckBatch(3, 3, (3,))])
    await env.shares.save([KEY])
    await env.logs.close()
    again = await make(EARLIEST)
    assert again.shares.start_offset(KEY) == 2
    # 2 and 4 were acquired, never acknowledged: available again, delivered a second time
    assert fetch(again, "n") == [Acquired(2, 2, 2), Acquired(4, 4, 2)]


async def test_latest_starts_at_the_end(make: Factory) -> None:
    env = await make(DefaultConfig())
    produce(env, 3)
    assert fetch(env) == []
    produce(env, 2)
    assert fetch(env) == [Acquired(3, 4, 1)]


async def test_the_fetch_returns_the_batches_holding_the_records(make: Factory) -> None:
    env = await make(EARLIEST)
    produce(env, 2)
    produce(env, 3)
    log_ = env.topics.partition("t", 0)
    assert log_ is not None
    got = env.shares.acquire(KEY, log_, "m", max_records=1, max_bytes=1 << 20, committed=False)
    assert got.acquired == [Acquired(0, 1, 1)]
    assert got.records == log_.read(0, 1).data[: len(got.records)]
    assert len(got.records) < len(log_.read(0).data)


async def test_lock_expiry_makes_records_available(make: Factory) -> None:
    clock = Clock()
    env = await make(EARLIEST, clock)
    produce(env, 1)
    assert fetch(env, "a") == [Acquired(0, 0, 1)]
    assert fetch(env, "b") == []
    clock.ms = 1000
    assert fetch(env, "b") == [Acquired(0, 0, 2)]


async def test_member_left_releases(make: Factory) -> None:
    env = await make(EARLIEST)
    produce(env, 2)
    fetch(env, "a")
    env.shares.member_left("g", "a")
    assert fetch(env, "b") == [Acquired(0, 1, 2)]


async def test_read_committed_skips_aborted_and_stops_at_the_lso(make: Factory) -> None:
    env = await make(EARLIEST)
    produce(env, 2)
    log_ = env.topics.partition("t", 0)
    assert log_ is not None
    batch = log_.read(0).data
    assert fetch(env, committed=True) == [Acquired(0, 1, 1)]
    assert batch


async def test_group_and_topic_deletion_drop_the_state(make: Factory) -> None:
    env = await make(EARLIEST)
    produce(env, 2)
    fetch(env)
    env.shares.acknowledge(KEY, "m", [AckBatch(0, 1, (1,))])
    await env.shares.save([KEY])
    env.shares.group_deleted("g")
    assert env.shares.start_offset(KEY) is None
    fetch(env)
    env.topics.delete("t")
    assert env.shares.keys() == []
    await env.logs.close()
    again = await make(EARLIEST)
    assert again.shares.keys() == []


async def test_alter_and_delete(make: Factory) -> None:
    env = await make(EARLIEST)
    produce(env, 5)
    await env.shares.alter(KEY, 3)
    assert fetch(env) == [Acquired(3, 4, 1)]
    await env.shares.delete([KEY])
    assert env.shares.start_offset(KEY) is None


def test_durations() -> None:
    assert duration_ms("PT1H") == 3_600_000
    assert duration_ms("P1DT0.5S") == 86_400_500
    with pytest.raises(ValueError):
        duration_ms("PT")


async def test_a_fetch_of_a_deleted_topic_makes_no_state(make: Factory) -> None:
    env = await make(EARLIEST)
    produce(env, 2)
    old = env.topics.partition("t", 0)
    assert old is not None
    env.topics.delete("t")
    produce(env, 1)  # made again under the same name
    got = env.shares.acquire(KEY, old, "m", max_records=10, max_bytes=1 << 20, committed=False)
    assert got.acquired == [] and env.shares.keys() == []
    assert fetch(env) == [Acquired(0, 0, 1)]
