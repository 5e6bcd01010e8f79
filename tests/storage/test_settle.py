"""Settling offsets one by one (a queue's log): the head, the bitmap, the ``.acks`` files,
segments deleted once wholly settled, and what a crash or a clean restart keeps."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storage_helpers import crash_copy, open_log

from jackalope.storage import Log, LogConfig, Record
from jackalope.storage.segment import ACK_RANGE
from jackalope.storage.settled import SettledOffsets

# -- SettledOffsets -------------------------------------------------------------------------------


@given(
    st.integers(0, 1000),
    st.lists(st.integers(0, 3000) | st.tuples(st.integers(0, 3000), st.integers(0, 70)), max_size=300),
)
def test_settled_offsets_match_a_set(head: int, steps: list[int | tuple[int, int]]) -> None:
    settled = SettledOffsets(head)
    model = set(range(head))
    for step in steps:
        if isinstance(step, tuple):
            start, length = step
            settled.add_range(start, start + length)
            model.update(range(start, start + length))
        else:
            assert settled.add(step) == (step not in model)
            model.add(step)
        expected_head = head
        while expected_head in model:
            expected_head += 1
        assert settled.head == expected_head
        assert settled.pending == len([o for o in model if o > expected_head])
    for probe in range(0, 3100, 7):
        assert (probe in settled) == (probe in model)


def test_in_order_settling_keeps_no_bitmap() -> None:
    settled = SettledOffsets(10)
    for offset in range(10, 100_000):
        settled.add(offset)
    assert (settled.head, settled.pending) == (100_000, 0)
    settled.add(100_005)  # one out of order: a bitmap starting at the head, not at 10
    assert settled.pending == 1 and 100_005 in settled and 100_004 not in settled
    settled.add_range(100_000, 100_005)
    assert (settled.head, settled.pending) == (100_006, 0)


def test_a_long_range_behind_a_stuck_head_is_cheap() -> None:
    settled = SettledOffsets()
    settled.add_range(1, 5_000_001)
    assert (settled.head, settled.pending) == (0, 5_000_000)
    settled.add(0)
    assert (settled.head, settled.pending) == (5_000_001, 0)


def test_a_stuck_head_costs_a_bit_per_offset() -> None:
    settled = SettledOffsets()
    for offset in range(1, 1_000_001):
        settled.add(offset)
    assert settled.head == 0 and settled.pending == 1_000_000
    assert len(settled._bits) <= 1_000_001 // 8 + 1
    settled.add(0)
    assert (settled.head, settled.pending) == (1_000_001, 0)


# -- the log --------------------------------------------------------------------------------------


def fill(log: Log, n: int, size: int = 100) -> None:
    for i in range(n):
        log.append([Record(b"%06d" % i + b"." * size)])
    log.flush()


def test_settling_out_of_order_moves_the_head_over_what_is_settled(tmp_path: Path) -> None:
    log = open_log(tmp_path / "q")
    fill(log, 10)
    for offset in (3, 1, 2):
        log.settle(offset)
    assert log.head == 0 and log.is_settled(2) and not log.is_settled(0)
    log.settle(0)
    assert log.head == 4
    log.settle(4)
    log.settle(42)  # past the end: nothing to settle
    assert log.head == 5 and not log.is_settled(42)
    log.close()


def test_wholly_settled_segments_are_deleted_and_never_the_active_one(tmp_path: Path) -> None:
    log = open_log(tmp_path / "q", segment_bytes=2048)
    fill(log, 100)
    assert log.segment_count > 3
    first_two = log._bases[2]
    order = list(range(first_two))
    random.Random(7).shuffle(order)
    for offset in order:
        log.settle(offset)
    assert log.start_offset == first_two and log._bases[0] == first_two
    assert not (tmp_path / "q" / "00000000000000000000.acks").exists()
    for offset in range(first_two, 100):
        log.settle(offset)
    assert log.segment_count == 1 and log.head == 100  # the active segment stays
    log.close()


def test_settlements_survive_a_crash_once_flushed(tmp_path: Path) -> None:
    log = open_log(tmp_path / "q", segment_bytes=4096)
    fill(log, 60)
    settled = [o for o in range(60) if o % 3 != 1] + [1]
    for offset in settled:
        log.settle(offset)
    log.flush()  # the end of the loop iteration
    log.settle(4)  # after the flush: lost with the process
    copy = crash_copy(log, tmp_path / "copy")
    again = Log.open(copy, LogConfig(segment_bytes=4096))
    for offset in range(60):
        assert again.is_settled(offset) == (offset in settled), offset
    assert again.head == 4
    again.close()


def test_settlements_survive_a_clean_restart_and_then_a_crash(tmp_path: Path) -> None:
    log = open_log(tmp_path / "q")
    fill(log, 10)
    for offset in (9, 7, 5, 0):
        log.settle(offset)
    log.close()
    again = Log.open(tmp_path / "q", LogConfig())
    assert [o for o in range(10) if again.is_settled(o)] == [0, 5, 7, 9]
    crashed = Log.open(crash_copy(again, tmp_path / "copy"), LogConfig())
    assert [o for o in range(10) if crashed.is_settled(o)] == [0, 5, 7, 9]
    crashed.close()


def test_a_torn_acks_file_keeps_its_whole_ranges(tmp_path: Path) -> None:
    log = open_log(tmp_path / "q")
    fill(log, 10)
    log.settle(6)
    log.flush()
    log.close()
    acks = tmp_path / "q" / "00000000000000000000.acks"
    with acks.open("ab") as f:
        f.write(ACK_RANGE.pack(2, 4)[:11])  # a crash in the middle of a write
    again = Log.open(tmp_path / "q", LogConfig())
    assert [o for o in range(10) if again.is_settled(o)] == [6]
    again.close()


def test_ranges_across_segments_go_to_each_segment(tmp_path: Path) -> None:
    log = open_log(tmp_path / "q", segment_bytes=2048)
    fill(log, 60)
    bases = list(log._bases)
    start, end = bases[1] - 2, bases[2] + 2
    log.settle_range(start, end)
    log.flush()
    per_segment = {p.name: p.stat().st_size // ACK_RANGE.size for p in (tmp_path / "q").glob("*.acks")}
    assert len(per_segment) == 3 and sum(per_segment.values()) == 3
    log.close()
    again = Log.open(tmp_path / "q", LogConfig(segment_bytes=2048))
    assert all(again.is_settled(o) for o in range(start, end))
    assert not again.is_settled(start - 1) and not again.is_settled(end)
    again.close()


def test_when_flushed_runs_after_the_next_flush(tmp_path: Path) -> None:
    log = open_log(tmp_path / "q")
    fill(log, 3)
    calls: list[str] = []
    log.settle(1)
    log.when_flushed(lambda: calls.append("flushed"))
    assert calls == []
    log.flush()
    assert calls == ["flushed"]
    assert (tmp_path / "q" / "00000000000000000000.acks").stat().st_size == ACK_RANGE.size
    log.close()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 199), max_size=300), st.integers(0, 300))
def test_whatever_was_flushed_before_a_crash_comes_back(
    tmp_path_factory: pytest.TempPathFactory, offsets: list[int], flush_after: int
) -> None:
    base = tmp_path_factory.mktemp("settle")
    log = open_log(base / "q", segment_bytes=4096)
    fill(log, 200, size=40)
    for i, offset in enumerate(offsets):
        if i == flush_after:
            log.flush()
        log.settle(offset)
    if flush_after >= len(offsets):
        log.flush()
    flushed = set(offsets[:flush_after])
    everything = set(offsets)
    again = Log.open(crash_copy(log, base / "copy"), LogConfig(segment_bytes=4096))
    for offset in range(200):
        if offset in flushed:
            assert again.is_settled(offset)
        elif offset not in everything:
            assert not again.is_settled(offset)
    again.close()


def test_volatile_records_are_settled_only_after_a_restart(tmp_path: Path) -> None:
    log = open_log(tmp_path / "q")
    log.append([Record(b"persistent")])
    log.append([Record(b"transient-1"), Record(b"transient-2")], volatile=True)
    log.append([Record(b"persistent")])
    assert log.head == 0 and not log.is_settled(1)  # live for as long as this process runs
    assert [r.value for r in log.read_records(0)][1] == b"transient-1"
    log.flush()
    again = Log.open(crash_copy(log, tmp_path / "copy"), LogConfig())
    assert [again.is_settled(o) for o in range(4)] == [False, True, True, False]
    again.close()


def test_delivery_marks_are_reported_after_the_next_open(tmp_path: Path) -> None:
    log = open_log(tmp_path / "q")
    fill(log, 10)
    for offset in (0, 1, 2, 5):
        log.mark_delivered(offset)
    log.settle(1)
    assert not log.delivered_before_open(0)  # marks of this run are for the next one
    log.flush()
    log.mark_delivered(7)  # not flushed: lost with the process
    again = Log.open(crash_copy(log, tmp_path / "copy"), LogConfig())
    assert [o for o in range(10) if again.delivered_before_open(o)] == [0, 1, 2, 5]
    assert again.is_settled(1) and not again.is_settled(0)
    again.close()
