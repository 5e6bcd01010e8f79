"""The transaction coordinator: Kafka's transaction state machine, fencing, timeouts, the
durable ``__transaction_state`` log and its replay, and transactional offset commits.

The coordinator runs over a real LogManager in a tmp dir with the real group coordinator; the
markers go to a recorder (what the storage engine would be asked to write), so each test sees
exactly which COMMIT/ABORT markers a transaction produced and with which epoch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from jackalope.core.groups import GroupCoordinator, OffsetAndMetadata, TopicPartition
from jackalope.core.producer_ids import ProducerIds
from jackalope.core.transactions import TransactionCoordinator, TxnError, TxnState, store
from jackalope.storage import LogManager, Record, StorageError

TP0: TopicPartition = ("t", 0)
TP1: TopicPartition = ("t", 1)
KNOWN = {TP0, TP1, ("u", 0)}


@dataclass
class Markers:
    """Records the markers the coordinator writes; ``fail`` makes them fail, ``gate`` holds them."""

    written: list[tuple[TopicPartition, int, int, bool]] = field(default_factory=list)
    fail: bool = False
    gate: asyncio.Event | None = None

    async def __call__(self, tp: TopicPartition, producer_id: int, epoch: int, commit: bool) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise StorageError("disk on fire")
        self.written.append((tp, producer_id, epoch, commit))


@dataclass
class Clock:
    now: int = 1_000_000

    def __call__(self) -> int:
        return self.now


@dataclass
class Env:
    txns: TransactionCoordinator
    groups: GroupCoordinator
    logs: LogManager
    markers: Markers
    clock: Clock

    async def begin(self, tid: str = "tx", *partitions: TopicPartition) -> tuple[int, int]:
        error, ids = await self.txns.init_producer_id(tid, 60_000)
        assert error is None
        results = await self.txns.add_partitions(
            tid, ids.producer_id, ids.producer_epoch, partitions or [TP0]
        )
        assert set(results.values()) == {None}
        return ids.producer_id, ids.producer_epoch

    def state(self, tid: str = "tx") -> str:
        return self.txns.describe([tid])[0].state


Factory = Callable[..., Awaitable[Env]]


async def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` (a coordinator's state: no event to await) with a deadline."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Factory]:
    """Build coordinators over ``tmp_path`` (each call: a fresh LogManager over the same files,
    as a broker restart does)."""
    opened: list[Env] = []

    async def factory(markers: Markers | None = None, clock: Clock | None = None, **kwargs: Any) -> Env:
        logs = LogManager(tmp_path / "logs")
        logs.open()
        await logs.start()
        groups = GroupCoordinator(logs, min_session_timeout_ms=10, initial_rebalance_delay_ms=0)
        await groups.load()
        markers = markers or Markers()
        clock = clock or Clock()
        txns = TransactionCoordinator(
            logs,
            ProducerIds(tmp_path / "producer-ids"),
            markers,
            groups=groups,
            partition_exists=lambda t, p: (t, p) in KNOWN,
            max_timeout_ms=120_000,
            clock=clock,
            **kwargs,
        )
        await txns.load()
        env = Env(txns, groups, logs, markers, clock)
        opened.append(env)
        return env

    yield factory
    for env in opened:
        await stop(env)


async def stop(env: Env) -> None:
    env.txns.close()
    env.groups.close()
    await env.logs.close()  # a second close does nothing


# -- InitProducerId ------------------------------------------------------------------------------


async def test_init_allocates_an_id_and_bumps_the_epoch(make: Factory) -> None:
    env = await make()
    error, first = await env.txns.init_producer_id("tx", 60_000)
    assert error is None and first.producer_epoch == 0 and first.producer_id >= 0
    error, second = await env.txns.init_producer_id("tx", 60_000)
    assert error is None
    assert (second.producer_id, second.producer_epoch) == (first.producer_id, 1)
    _, other = await env.txns.init_producer_id("other", 60_000)
    assert other.producer_id != first.producer_id
    assert env.state() == TxnState.EMPTY


@pytest.mark.parametrize("timeout_ms", [0, -5, 120_001])
async def test_init_refuses_a_timeout_out_of_bounds(make: Factory, timeout_ms: int) -> None:
    env = await make()
    error, ids = await env.txns.init_producer_id("tx", timeout_ms)
    assert error is TxnError.INVALID_TRANSACTION_TIMEOUT
    assert ids.producer_id == -1


async def test_init_retry_with_the_previous_epoch_gets_the_current_one(make: Factory) -> None:
    """KIP-360: the answer to a bump was lost; the producer retries with the epoch it had."""
    env = await make()
    _, first = await env.txns.init_producer_id("tx", 60_000)
    _, second = await env.txns.init_producer_id("tx", 60_000, first.producer_id, first.producer_epoch)
    assert second.producer_epoch == first.producer_epoch + 1
    error, again = await env.txns.init_producer_id("tx", 60_000, first.producer_id, first.producer_epoch)
    assert error is None and again == second
    await env.txns.init_producer_id("tx", 60_000, second.producer_id, second.producer_epoch)
    error, _ = await env.txns.init_producer_id("tx", 60_000, first.producer_id, first.producer_epoch)
    assert error is TxnError.PRODUCER_FENCED  # two bumps behind
    error, _ = await env.txns.init_producer_id("tx", 60_000, first.producer_id + 999, 0)
    assert error is TxnError.PRODUCER_FENCED


async def test_epoch_exhaustion_gives_a_new_producer_id(make: Factory) -> None:
    env = await make()
    _, ids = await env.txns.init_producer_id("tx", 60_000)
    env.txns._txns["tx"].producer_epoch = 32766  # as after 32766 restarts of the producer
    error, fresh = await env.txns.init_producer_id("tx", 60_000)
    assert error is None
    assert fresh.producer_id != ids.producer_id and fresh.producer_epoch == 0
    # the producer retries with the exhausted epoch of its old id: the new id again
    error, retried = await env.txns.init_producer_id("tx", 60_000, ids.producer_id, 32766)
    assert error is None and retried == fresh


# -- the transaction -----------------------------------------------------------------------------


async def test_commit_writes_commit_markers_into_every_partition(make: Factory) -> None:
    env = await make()
    pid, epoch = await env.begin("tx", TP0, TP1)
    assert env.state() == TxnState.ONGOING
    described = env.txns.describe(["tx"])[0]
    assert described.partitions == (TP0, TP1) and described.start_ms == env.clock.now
    assert await env.txns.end_txn("tx", pid, epoch, True) is None
    assert sorted(env.markers.written) == [(TP0, pid, epoch, True), (TP1, pid, epoch, True)]
    assert env.state() == TxnState.COMPLETE_COMMIT
    assert env.txns.describe(["tx"])[0].partitions == ()
    assert await env.txns.end_txn("tx", pid, epoch, True) is None  # a retry
    assert await env.txns.end_txn("tx", pid, epoch, False) is TxnError.INVALID_TXN_STATE


async def test_abort_writes_abort_markers(make: Factory) -> None:
    env = await make()
    pid, epoch = await env.begin("tx", TP0)
    assert await env.txns.end_txn("tx", pid, epoch, False) is None
    assert env.markers.written == [(TP0, pid, epoch, False)]
    assert env.state() == TxnState.COMPLETE_ABORT


async def test_a_new_transaction_after_one_completes(make: Factory) -> None:
    env = await make()
    pid, epoch = await env.begin("tx", TP0)
    await env.txns.end_txn("tx", pid, epoch, True)
    assert await env.txns.add_partitions("tx", pid, epoch, [TP1]) == {TP1: None}
    assert env.txns.describe(["tx"])[0].partitions == (TP1,)
    await env.txns.end_txn("tx", pid, epoch, False)
    assert env.markers.written[-1] == (TP1, pid, epoch, False)


async def test_end_without_a_transaction_is_invalid(make: Factory) -> None:
    env = await make()
    _, ids = await env.txns.init_producer_id("tx", 60_000)
    assert (
        await env.txns.end_txn("tx", ids.producer_id, ids.producer_epoch, True) is TxnError.INVALID_TXN_STATE
    )
    assert await env.txns.end_txn("nope", ids.producer_id, 0, True) is TxnError.INVALID_PRODUCER_ID_MAPPING
    assert (
        await env.txns.end_txn("tx", ids.producer_id + 1, ids.producer_epoch, True)
        is TxnError.INVALID_PRODUCER_ID_MAPPING
    )


async def test_unknown_partition_adds_nothing(make: Factory) -> None:
    env = await make()
    _, ids = await env.txns.init_producer_id("tx", 60_000)
    results = await env.txns.add_partitions("tx", ids.producer_id, ids.producer_epoch, [TP0, ("gone", 3)])
    assert results == {
        TP0: TxnError.OPERATION_NOT_ATTEMPTED,
        ("gone", 3): TxnError.UNKNOWN_TOPIC_OR_PARTITION,
    }
    assert env.state() == TxnState.EMPTY


async def test_produce_verification(make: Factory) -> None:
    """KIP-890 part 1: a transactional batch only for a partition of the Ongoing transaction."""
    env = await make()
    pid, epoch = await env.begin("tx", TP0)
    assert env.txns.check_produce(pid, epoch, TP0) is None
    assert env.txns.check_produce(pid, epoch, TP1) is TxnError.INVALID_TXN_STATE
    assert env.txns.check_produce(pid + 1000, 0, TP0) is TxnError.INVALID_TXN_STATE
    await env.txns.end_txn("tx", pid, epoch, True)
    assert env.txns.check_produce(pid, epoch, TP0) is TxnError.INVALID_TXN_STATE  # no transaction open
    _, ids = await env.txns.init_producer_id("tx", 60_000)
    assert env.txns.check_produce(pid, epoch, TP0) is TxnError.INVALID_PRODUCER_EPOCH
    assert env.txns.verify_partitions("tx", pid, ids.producer_epoch, [TP0]) == {
        TP0: TxnError.INVALID_TXN_STATE
    }
    await env.txns.add_partitions("tx", pid, ids.producer_epoch, [TP0])
    assert env.txns.verify_partitions("tx", pid, ids.producer_epoch, [TP0, TP1]) == {
        TP0: None,
        TP1: TxnError.INVALID_TXN_STATE,
    }


# -- fencing and timeouts ------------------------------------------------------------------------


async def test_a_new_instance_fences_the_zombie(make: Factory) -> None:
    env = await make()
    pid, epoch = await env.begin("tx", TP0, TP1)
    error, fresh = await env.txns.init_producer_id("tx", 60_000)  # the producer restarted
    assert error is None
    assert fresh.producer_id == pid and fresh.producer_epoch == epoch + 2
    # the open transaction was aborted with a bumped epoch, fencing the zombie in the partitions
    assert sorted(env.markers.written) == [(TP0, pid, epoch + 1, False), (TP1, pid, epoch + 1, False)]
    assert await env.txns.add_partitions("tx", pid, epoch, [TP0]) == {TP0: TxnError.PRODUCER_FENCED}
    assert await env.txns.end_txn("tx", pid, epoch, True) is TxnError.PRODUCER_FENCED
    assert await env.txns.add_offsets("tx", pid, epoch, "g") is TxnError.PRODUCER_FENCED
    assert env.txns.check_produce(pid, epoch, TP0) is TxnError.INVALID_PRODUCER_EPOCH
    assert env.state() == TxnState.EMPTY


async def test_a_transaction_past_its_timeout_is_aborted_and_its_producer_fenced(make: Factory) -> None:
    env = await make()
    _, ids = await env.txns.init_producer_id("tx", 10_000)
    pid, epoch = ids.producer_id, ids.producer_epoch
    await env.txns.add_partitions("tx", pid, epoch, [TP0])
    env.clock.now += 9_999
    assert await env.txns.abort_timed_out() == 0
    env.clock.now += 1
    assert await env.txns.abort_timed_out() == 1
    assert env.markers.written == [(TP0, pid, epoch + 1, False)]
    assert env.state() == TxnState.COMPLETE_ABORT
    assert await env.txns.end_txn("tx", pid, epoch, False) is TxnError.PRODUCER_FENCED
    error, _ = await env.txns.init_producer_id("tx", 10_000, pid, epoch)
    assert error is TxnError.PRODUCER_FENCED  # Kafka's fence: the old epoch does not come back
    error, fresh = await env.txns.init_producer_id("tx", 10_000)
    assert error is None and fresh.producer_epoch == epoch + 2


async def test_the_timer_aborts_timed_out_transactions(make: Factory) -> None:
    env = await make(clock=Clock(), abort_interval_ms=20)
    pid, epoch = await env.begin("tx", TP0)
    env.clock.now += 60_000
    await until(lambda: env.state() == TxnState.COMPLETE_ABORT)
    assert env.markers.written == [(TP0, pid, epoch + 1, False)]


async def test_concurrent_change_is_refused_while_one_is_written(make: Factory) -> None:
    markers = Markers(gate=asyncio.Event())
    env = await make(markers)
    pid, epoch = await env.begin("tx", TP0)
    ending = asyncio.ensure_future(env.txns.end_txn("tx", pid, epoch, True))
    await until(lambda: env.state() == TxnState.PREPARE_COMMIT)
    assert await env.txns.add_partitions("tx", pid, epoch, [TP1]) == {TP1: TxnError.CONCURRENT_TRANSACTIONS}
    assert await env.txns.end_txn("tx", pid, epoch, True) is TxnError.CONCURRENT_TRANSACTIONS
    error, _ = await env.txns.init_producer_id("tx", 60_000)
    assert error is TxnError.CONCURRENT_TRANSACTIONS
    assert env.txns.check_produce(pid, epoch, TP0) is TxnError.INVALID_TXN_STATE
    markers.gate.set()  # type: ignore[union-attr]
    assert await ending is None
    assert env.state() == TxnState.COMPLETE_COMMIT


# -- transactional offsets -----------------------------------------------------------------------


async def test_transactional_offsets_visible_only_once_committed(make: Factory) -> None:
    env = await make()
    pid, epoch = await env.begin("tx", TP0)
    assert await env.txns.add_offsets("tx", pid, epoch, "g") is None
    offsets = {TP1: OffsetAndMetadata(42, -1, "m")}
    assert await env.txns.commit_offsets("tx", "g", pid, epoch, offsets) == {TP1: None}
    assert env.groups.fetch_offsets("g") == (None, {})
    assert env.groups.unstable_offsets("g") == {TP1}
    assert ("__consumer_offsets", 0) in env.txns.describe(["tx"])[0].partitions
    assert await env.txns.end_txn("tx", pid, epoch, True) is None
    assert env.groups.fetch_offsets("g") == (None, offsets)
    assert env.groups.unstable_offsets("g") == set()


async def test_aborted_transactional_offsets_are_dropped(make: Factory) -> None:
    env = await make()
    pid, epoch = await env.begin("tx", TP0)
    await env.txns.add_offsets("tx", pid, epoch, "g")
    await env.txns.commit_offsets("tx", "g", pid, epoch, {TP1: OffsetAndMetadata(7)})
    assert await env.txns.end_txn("tx", pid, epoch, False) is None
    assert env.groups.fetch_offsets("g") == (None, {})
    assert env.groups.unstable_offsets("g") == set()


async def test_txn_offset_commit_checks(make: Factory) -> None:
    env = await make()
    pid, epoch = await env.begin("tx", TP0)
    offsets = {TP1: OffsetAndMetadata(1)}
    # no AddOffsetsToTxn for the group yet
    assert await env.txns.commit_offsets("tx", "g", pid, epoch, offsets) == {TP1: TxnError.INVALID_TXN_STATE}
    await env.txns.add_offsets("tx", pid, epoch, "g")
    assert await env.txns.commit_offsets("tx", "g", pid, epoch - 1, offsets) == {
        TP1: TxnError.INVALID_PRODUCER_EPOCH
    }
    # a generation given for a group the coordinator does not know
    assert await env.txns.commit_offsets("tx", "g", pid, epoch, offsets, generation_id=3, member_id="m") == {
        TP1: TxnError.ILLEGAL_GENERATION
    }
    assert await env.txns.commit_offsets("tx", "g", pid, epoch, {("gone", 0): OffsetAndMetadata(1)}) == {
        ("gone", 0): TxnError.UNKNOWN_TOPIC_OR_PARTITION
    }


async def test_txn_offset_commit_checks_the_member_and_generation(make: Factory) -> None:
    """TxnOffsetCommit v3+ carries the consumer's group metadata (KIP-447); v0-2 carry none and
    are accepted for any group."""
    env = await make()
    joined = await env.groups.join(
        "g", "", None, "c", "h", 10_000, 10_000, "consumer", [("range", b"")], False
    )
    assert joined.error is None
    member, generation = joined.member_id, joined.generation_id
    check = env.groups.validate_transactional_commit
    assert check("g", generation, member, None) is None
    assert check("g", generation + 1, member, None) == "ILLEGAL_GENERATION"
    assert check("g", generation, "someone-else", None) == "UNKNOWN_MEMBER_ID"
    assert check("g", -1, "", None) is None  # no group metadata (v0-2)
    pid, epoch = await env.begin("tx", TP0)
    await env.txns.add_offsets("tx", pid, epoch, "g")
    offsets = {TP0: OffsetAndMetadata(3)}
    assert await env.txns.commit_offsets(
        "tx", "g", pid, epoch, offsets, generation_id=generation, member_id=member
    ) == {TP0: None}
    assert await env.txns.commit_offsets(
        "tx", "g", pid, epoch, offsets, generation_id=generation + 1, member_id=member
    ) == {TP0: TxnError.ILLEGAL_GENERATION}


async def test_a_group_with_pending_transactional_offsets_is_not_expired(make: Factory) -> None:
    env = await make()
    pid, epoch = await env.begin("tx", TP0)
    await env.txns.add_offsets("tx", pid, epoch, "g")
    await env.txns.commit_offsets("tx", "g", pid, epoch, {TP0: OffsetAndMetadata(3)})
    assert await env.groups.commit_offsets("g", -1, "", None, {TP1: OffsetAndMetadata(1)}) == {TP1: None}
    assert env.groups.expire_offsets(now=2**62) == 1  # TP1's offset goes, the group stays
    assert env.groups.describe("g").state == "Empty"
    assert await env.txns.end_txn("tx", pid, epoch, True) is None
    assert env.groups.fetch_offsets("g") == (None, {TP0: OffsetAndMetadata(3)})


# -- durability and replay -----------------------------------------------------------------------


async def test_state_survives_a_restart(make: Factory) -> None:
    env = await make()
    pid, epoch = await env.begin("tx", TP0)
    await env.txns.add_offsets("tx", pid, epoch, "g")
    await env.txns.commit_offsets("tx", "g", pid, epoch, {TP1: OffsetAndMetadata(5)})
    await stop(env)
    env = await make(clock=env.clock)
    described = env.txns.describe(["tx"])[0]
    assert described.state == TxnState.ONGOING and (TP0 in described.partitions)
    assert env.groups.unstable_offsets("g") == {TP1}  # still pending after the restart
    assert env.markers.written == []  # an Ongoing transaction is left to its producer or timeout
    assert await env.txns.end_txn("tx", pid, epoch, True) is None
    assert env.groups.fetch_offsets("g") == (None, {TP1: OffsetAndMetadata(5)})


async def test_a_prepared_transaction_is_completed_at_start(make: Factory) -> None:
    """The commit is decided (PrepareCommit durable) but the markers failed, then the broker
    stopped: the next start writes the markers and the offsets, then CompleteCommit."""
    markers = Markers(fail=True)
    env = await make(markers)
    pid, epoch = await env.begin("tx", TP0, TP1)
    await env.txns.add_offsets("tx", pid, epoch, "g")
    await env.txns.commit_offsets("tx", "g", pid, epoch, {TP0: OffsetAndMetadata(9)})
    assert await env.txns.end_txn("tx", pid, epoch, True) is None  # decided
    assert env.state() == TxnState.PREPARE_COMMIT
    assert await env.txns.end_txn("tx", pid, epoch, True) is TxnError.CONCURRENT_TRANSACTIONS
    await stop(env)
    env = await make(Markers())
    assert env.state() == TxnState.COMPLETE_COMMIT
    assert sorted(env.markers.written) == [(TP0, pid, epoch, True), (TP1, pid, epoch, True)]
    assert env.groups.fetch_offsets("g") == (None, {TP0: OffsetAndMetadata(9)})


async def test_the_timer_retries_a_failed_completion(make: Factory) -> None:
    markers = Markers(fail=True)
    env = await make(markers, abort_interval_ms=20)
    pid, epoch = await env.begin("tx", TP0)
    assert await env.txns.end_txn("tx", pid, epoch, False) is None
    markers.fail = False
    await until(lambda: env.state() == TxnState.COMPLETE_ABORT)
    assert markers.written == [(TP0, pid, epoch, False)]


async def test_records_round_trip_and_unknown_kinds_are_skipped(make: Factory) -> None:
    env = await make()
    await env.begin("tx", TP0)
    txn = env.txns._txns["tx"]
    entry = store.decode(store.txn_record(txn))
    assert entry is not None and entry.txn == txn
    assert store.decode(Record(value=b"{}", key=b'["later-kind","x"]')) is None
    tomb = store.decode(store.txn_tombstone("tx"))
    assert tomb is not None and tomb.txn is None


# -- administration ------------------------------------------------------------------------------


async def test_list_and_describe(make: Factory) -> None:
    env = await make()
    pid, _ = await env.begin("a", TP0)
    _, other = await env.txns.init_producer_id("b", 60_000)
    error, unknown, listed = env.txns.list_transactions()
    assert error is None and unknown == []
    assert [(t.transactional_id, t.state) for t in listed] == [("a", "Ongoing"), ("b", "Empty")]
    _, unknown, listed = env.txns.list_transactions(states=["Ongoing", "Bogus"])
    assert unknown == ["Bogus"] and [t.transactional_id for t in listed] == ["a"]
    _, _, listed = env.txns.list_transactions(producer_ids=[other.producer_id])
    assert [t.transactional_id for t in listed] == ["b"]
    _, _, listed = env.txns.list_transactions(min_duration_ms=1000)
    assert listed == []
    env.clock.now += 1001
    _, _, listed = env.txns.list_transactions(min_duration_ms=1000)
    assert [t.transactional_id for t in listed] == ["a"]
    _, _, listed = env.txns.list_transactions(pattern="b.*")
    assert [t.transactional_id for t in listed] == ["b"]
    missing = env.txns.describe(["zzz"])[0]
    assert missing.error is TxnError.TRANSACTIONAL_ID_NOT_FOUND
    assert env.txns.describe(["a"])[0].producer_id == pid


async def test_idle_ids_expire(make: Factory) -> None:
    env = await make(id_expiration_ms=5_000)
    await env.begin("busy", TP0)
    await env.txns.init_producer_id("idle", 60_000)
    env.clock.now += 5_000
    assert await env.txns.expire_ids() == 1
    assert env.txns.describe(["idle"])[0].error is TxnError.TRANSACTIONAL_ID_NOT_FOUND
    await stop(env)
    env = await make(clock=env.clock)
    assert env.txns.describe(["idle"])[0].error is TxnError.TRANSACTIONAL_ID_NOT_FOUND
    assert env.state("busy") == TxnState.ONGOING


# -- with the storage engine's markers -----------------------------------------------------------


async def test_log_markers_end_the_transaction_in_the_partition(tmp_path: Path) -> None:
    """LogMarkers writes the COMMIT/ABORT control batches through ``Log.append_control``: the
    partition's last stable offset moves past the transaction and an abort is listed."""
    from jackalope.core.topics import Topics
    from jackalope.core.transactions import LogMarkers
    from jackalope.storage.records import TRANSACTIONAL, encode_batch

    logs = LogManager(tmp_path / "logs")
    logs.open()
    await logs.start()
    topics = Topics(logs, tmp_path)
    topics.create("t", 1)
    txns = TransactionCoordinator(
        logs, ProducerIds(None), LogMarkers(topics, logs), partition_exists=lambda t, p: t == "t"
    )
    await txns.load()
    try:
        log_ = topics.partition("t", 0)
        assert log_ is not None
        _, ids = await txns.init_producer_id("tx", 60_000)
        pid, epoch = ids.producer_id, ids.producer_epoch
        sequence = 0

        def produce(value: bytes) -> None:
            nonlocal sequence
            batch = encode_batch(
                [Record(value=value)],
                producer_id=pid,
                producer_epoch=epoch,
                base_sequence=sequence,
                attributes=TRANSACTIONAL,
            )
            sequence += 1
            topics.append_batches(log_, batch)

        await txns.add_partitions("tx", pid, epoch, [("t", 0)])
        produce(b"a")
        assert log_.last_stable_offset() == 0  # open
        assert await txns.end_txn("tx", pid, epoch, True) is None
        assert log_.last_stable_offset() == log_.end_offset == 2  # the record and its marker
        await txns.add_partitions("tx", pid, epoch, [("t", 0)])
        produce(b"b")
        assert await txns.end_txn("tx", pid, epoch, False) is None
        assert log_.last_stable_offset() == log_.end_offset == 4
        assert [(a.producer_id, a.first_offset) for a in log_.aborted_transactions(0, 4)] == [(pid, 2)]
    finally:
        txns.close()
        await logs.close()
