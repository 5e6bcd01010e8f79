"""The share-partition state machine (core/share/partition.py): acquisition, locks, delivery
counts, acknowledgements, the SPSO and the in-flight bound; and properties over random runs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jackalope.core.share.partition import (
    AckBatch,
    AckType,
    Acquired,
    Batch,
    InvalidAcknowledgement,
    InvalidRecordState,
    RecordState,
    SharePartition,
)


def batches(*ranges: tuple[int, int]) -> list[Batch]:
    return [Batch(a, b) for a, b in ranges]


def ack(first: int, last: int, kind: AckType) -> list[AckBatch]:
    return [AckBatch(first, last, (int(kind),))]


def test_acquires_whole_batches_then_stops_at_max_records() -> None:
    sp = SharePartition(0)
    got = sp.acquire("m1", batches((0, 2), (3, 5), (6, 9)), max_records=4, now=0)
    assert got == [Acquired(0, 5, 1)]  # the second batch is taken whole
    assert (sp.start, sp.end) == (0, 6)
    assert sp.state_of(0) is RecordState.ACQUIRED


def test_record_limit_mode_splits_batches() -> None:
    sp = SharePartition(0)
    got = sp.acquire("m1", batches((0, 2), (3, 5)), max_records=4, now=0, whole_batches=False)
    assert got == [Acquired(0, 3, 1)]
    assert sp.end == 4
    assert sp.acquire("m2", batches((3, 5)), max_records=1, now=0, whole_batches=False) == [Acquired(4, 4, 1)]


def test_a_record_is_not_acquired_twice() -> None:
    sp = SharePartition(0)
    assert sp.acquire("m1", batches((0, 4)), 100, now=0) == [Acquired(0, 4, 1)]
    assert sp.acquire("m2", batches((0, 4)), 100, now=1) == []


def test_accept_advances_the_start_offset() -> None:
    sp = SharePartition(0)
    sp.acquire("m1", batches((0, 4)), 100, now=0)
    assert sp.acknowledge("m1", ack(0, 2, AckType.ACCEPT), now=1)
    assert sp.start == 3
    assert sp.acknowledge("m1", [AckBatch(3, 4, (int(AckType.REJECT), int(AckType.ACCEPT)))], now=1)
    assert (sp.start, sp.end, sp.records) == (5, 5, {})


def test_release_redelivers_with_a_higher_delivery_count() -> None:
    sp = SharePartition(0)
    sp.acquire("m1", batches((0, 1)), 100, now=0)
    sp.acknowledge("m1", ack(1, 1, AckType.RELEASE), now=1)
    assert sp.first_available() == 1
    assert sp.acquire("m2", batches((0, 1)), 100, now=2) == [Acquired(1, 1, 2)]


def test_delivery_count_limit_archives() -> None:
    sp = SharePartition(0, delivery_limit=2)
    for count in (1, 2):
        assert sp.acquire("m", batches((0, 0)), 10, now=count) == [Acquired(0, 0, count)]
        sp.acknowledge("m", ack(0, 0, AckType.RELEASE), now=count)
    assert sp.state_of(0) is RecordState.ACKNOWLEDGED  # archived, below the SPSO now
    assert sp.start == 1


def test_lock_timeout_releases() -> None:
    sp = SharePartition(0, lock_ms=100)
    sp.acquire("m1", batches((0, 0)), 10, now=0)
    assert sp.acquire("m2", batches((0, 0)), 10, now=99) == []
    assert sp.acquire("m2", batches((0, 0)), 10, now=100) == [Acquired(0, 0, 2)]
    with pytest.raises(InvalidRecordState):  # m1's lock lapsed: its acknowledgement is stale
        sp.acknowledge("m1", ack(0, 0, AckType.ACCEPT), now=101)


def test_renew_extends_the_lock() -> None:
    sp = SharePartition(0, lock_ms=100)
    sp.acquire("m1", batches((0, 0)), 10, now=0)
    assert not sp.acknowledge("m1", ack(0, 0, AckType.RENEW), now=90)
    assert sp.acquire("m2", batches((0, 0)), 10, now=150) == []
    assert sp.acquire("m2", batches((0, 0)), 10, now=190) == [Acquired(0, 0, 2)]


def test_acknowledgements_are_all_or_none() -> None:
    sp = SharePartition(0)
    sp.acquire("m1", batches((0, 1)), 10, now=0)
    sp.acquire("m2", batches((2, 3)), 10, now=0)
    with pytest.raises(InvalidRecordState):
        sp.acknowledge("m1", [AckBatch(0, 1, (1,)), AckBatch(2, 2, (1,))], now=1)
    assert sp.state_of(0) is RecordState.ACQUIRED
    with pytest.raises(InvalidAcknowledgement):
        sp.acknowledge("m1", [AckBatch(0, 1, (1, 1, 1))], now=1)
    with pytest.raises(InvalidAcknowledgement):
        sp.acknowledge("m1", [AckBatch(0, 0, (9,))], now=1)


def test_the_in_flight_bound_holds_back_new_records() -> None:
    sp = SharePartition(0, max_in_flight=3)
    assert sp.acquire("m", batches((0, 1), (2, 3), (4, 5)), 100, now=0) == [Acquired(0, 2, 1)]
    assert sp.full and sp.first_available() is None
    assert sp.acquire("m2", batches((2, 3), (4, 5)), 100, now=0) == []
    sp.acknowledge("m", ack(0, 1, AckType.ACCEPT), now=1)
    assert sp.acquire("m2", batches((2, 3), (4, 5)), 100, now=1) == [Acquired(3, 4, 1)]


def test_control_and_aborted_batches_are_settled_unseen() -> None:
    sp = SharePartition(0)
    got = sp.acquire("m", [Batch(0, 1), Batch(2, 2, deliverable=False), Batch(5, 6)], 100, now=0)
    assert got == [Acquired(0, 1, 1), Acquired(5, 6, 1)]
    sp.acknowledge("m", ack(0, 1, AckType.ACCEPT), now=0)
    assert sp.start == 5  # 2 (a marker) and 3..4 (no such offsets) are settled


def test_gap_acknowledgement_of_settled_offsets() -> None:
    sp = SharePartition(0)
    sp.acquire("m", [Batch(0, 0), Batch(3, 3)], 100, now=0)
    sp.acknowledge("m", [AckBatch(0, 3, (1, 0, 0, 1))], now=0)
    assert sp.start == 4


def test_member_leaving_releases_its_records() -> None:
    sp = SharePartition(0)
    sp.acquire("m1", batches((0, 1)), 10, now=0)
    assert sp.release_member("m1")
    assert sp.acquire("m2", batches((0, 1)), 10, now=0) == [Acquired(0, 1, 2)]


def test_snapshot_and_restore() -> None:
    sp = SharePartition(10)
    sp.acquire("m", batches((10, 14)), 100, now=0)
    sp.acknowledge("m", ack(11, 11, AckType.ACCEPT), now=0)
    start, end, runs = sp.snapshot()
    assert (start, end) == (10, 15)
    again = SharePartition.restore(start, end, runs)
    assert again.state_of(10) is RecordState.AVAILABLE  # acquired before: available after
    assert again.state_of(11) is RecordState.ARCHIVED
    assert again.acquire("n", batches((10, 14)), 100, now=0) == [Acquired(10, 10, 2), Acquired(12, 14, 2)]


def test_skip_to_the_log_start() -> None:
    sp = SharePartition(0)
    sp.acquire("m", batches((0, 4)), 100, now=0)
    sp.skip_to(3)
    assert (sp.start, sp.end) == (3, 5)


# -- properties --------------------------------------------------------------------------------------

MEMBERS = ("a", "b", "c")
step = st.one_of(
    st.tuples(st.just("fetch"), st.sampled_from(MEMBERS), st.integers(1, 7)),
    st.tuples(st.just("ack"), st.sampled_from(MEMBERS), st.sampled_from([1, 2, 3, 0])),
    st.tuples(st.just("tick"), st.just(""), st.integers(0, 150)),
    st.tuples(st.just("leave"), st.sampled_from(MEMBERS), st.just(0)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(step, max_size=60), st.lists(st.integers(1, 4), min_size=1, max_size=10))
def test_random_runs_keep_the_invariants(steps: list[tuple[str, str, int]], sizes: list[int]) -> None:
    log_batches = []
    offset = 0
    for size in sizes:
        log_batches.append(Batch(offset, offset + size - 1))
        offset += size
    total = offset
    sp = SharePartition(0, max_in_flight=6, delivery_limit=3, lock_ms=100)
    now = 0
    held: dict[str, set[int]] = {m: set() for m in MEMBERS}
    settled: set[int] = set()
    for kind, member, n in steps:
        if kind == "tick":
            now += n
            sp.expire(now)
        elif kind == "leave":
            sp.release_member(member)
        elif kind == "fetch":
            start = sp.first_available()
            if start is None:
                continue
            got = sp.acquire(member, [b for b in log_batches if b.last >= start], n, now)
            for a in got:
                for o in range(a.first, a.last + 1):
                    assert o not in settled
                    assert 1 <= a.delivery_count <= 3
        else:
            mine = sorted(sp.acquired_by(member))
            if mine:
                sp.acknowledge(member, ack(mine[0], mine[0], AckType(n)), now)
        # refresh what each member holds
        for m in MEMBERS:
            held[m] = set(sp.acquired_by(m))
        owners = [o for m in MEMBERS for o in held[m]]
        assert len(owners) == len(set(owners)), "a record is acquired by two members"
        assert sp.start <= sp.end <= total
        assert sp.end - sp.start <= 6, "the in-flight bound is exceeded"
        assert all(sp.start <= o < sp.end for o in sp.records)
        assert list(sp.records) == sorted(sp.records)
        assert sp.start == (min(sp.records) if sp.records else sp.end)
        settled |= set(range(sp.start))
    # drain: every record ends accepted or archived
    for _ in range(100):
        now += 1000
        sp.expire(now)
        start = sp.first_available()
        if start is None and not sp.records:
            break
        got = sp.acquire("z", [b for b in log_batches if b.last >= (start or 0)], 100, now)
        for a in got:
            sp.acknowledge("z", ack(a.first, a.last, AckType.ACCEPT), now)
    assert sp.start == sp.end == total and not sp.records
