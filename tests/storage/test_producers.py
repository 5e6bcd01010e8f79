"""Idempotent producers: duplicates, fencing, sequence gaps, and the state across restarts."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storage_helpers import crash_copy, open_log, read_all

from jackalope.storage import CorruptRecordError, Log, Record, StorageError
from jackalope.storage import segment as segment_module
from jackalope.storage.errors import InvalidProducerEpochError, OutOfOrderSequenceError
from jackalope.storage.log import PRODUCER_STATE_FILE
from jackalope.storage.producers import (
    MAX_SEQUENCE,
    ProducerStateManager,
    decode_snapshot,
    encode_snapshot,
    increment_sequence,
)
from jackalope.storage.records import encode_batch


def batch(pid: int, epoch: int, seq: int, n: int = 1, tag: bytes = b"v") -> bytearray:
    return encode_batch(
        [Record(tag + b"%d" % (seq + i), timestamp=1) for i in range(n)],
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
    )


@pytest.fixture
def log(tmp_path: Path) -> Log:
    return Log.open(tmp_path / "log")


def test_in_sequence_batches_are_appended(log: Log) -> None:
    assert log.append_batches(batch(7, 0, 0, 3)) == (0, 2, 1, False)
    assert log.append_batches(batch(7, 0, 3, 2)) == (3, 4, 1, False)
    assert log.append_batches(batch(8, 0, 0)) == (5, 5, 1, False)  # another producer
    assert log.end_offset == 6


def test_a_retried_batch_is_a_duplicate_with_the_original_offsets(log: Log) -> None:
    first = log.append_batches(batch(7, 0, 0, 3))
    log.append([Record(b"other")])
    log.append_batches(batch(7, 0, 3, 2))
    again = log.append_batches(batch(7, 0, 0, 3))
    assert again.duplicate
    assert (again.base_offset, again.last_offset, again.max_timestamp) == (0, 2, first.max_timestamp)
    assert log.end_offset == 6  # nothing written
    assert log.append_batches(batch(7, 0, 3, 2)) == (4, 5, 1, True)


def test_only_the_last_five_batches_are_recognised(log: Log) -> None:
    for seq in range(6):
        log.append_batches(batch(1, 0, seq))
    assert log.append_batches(batch(1, 0, 1)).duplicate  # among the last five
    with pytest.raises(OutOfOrderSequenceError):
        log.append_batches(batch(1, 0, 0))  # forgotten: an old sequence is out of order
    assert log.end_offset == 6


def test_a_gap_in_the_sequence_is_refused(log: Log) -> None:
    log.append_batches(batch(1, 0, 0, 2))
    with pytest.raises(OutOfOrderSequenceError):
        log.append_batches(batch(1, 0, 3))
    with pytest.raises(OutOfOrderSequenceError):
        log.append_batches(batch(1, 0, 1))  # overlaps, not a duplicate
    assert log.end_offset == 2
    assert log.append_batches(batch(1, 0, 2)).base_offset == 2


def test_epochs(log: Log) -> None:
    log.append_batches(batch(1, 3, 0, 2))
    with pytest.raises(InvalidProducerEpochError):
        log.append_batches(batch(1, 2, 2))  # fenced
    with pytest.raises(OutOfOrderSequenceError):
        log.append_batches(batch(1, 4, 5))  # a new epoch starts at 0
    assert log.append_batches(batch(1, 4, 0)).base_offset == 2
    with pytest.raises(InvalidProducerEpochError):
        log.append_batches(batch(1, 3, 2))  # the old epoch is fenced now
    # The old epoch's batches are forgotten: a retry of one is fenced, not a duplicate.
    with pytest.raises(InvalidProducerEpochError):
        log.append_batches(batch(1, 3, 0, 2))
    assert log.end_offset == 3


def test_an_unknown_producer_may_start_anywhere(log: Log) -> None:
    assert log.append_batches(batch(9, 5, 1234)).base_offset == 0
    assert log.append_batches(batch(9, 5, 1235)).base_offset == 1


def test_the_sequence_wraps(log: Log) -> None:
    assert increment_sequence(MAX_SEQUENCE - 1, 3) == 1
    log.append_batches(batch(1, 0, MAX_SEQUENCE - 1, 2))  # ends at 2**31-1
    assert log.append_batches(batch(1, 0, 0)).base_offset == 2
    log2 = Log.open(log.directory.with_name("wrap2"))
    log2.append_batches(batch(1, 0, MAX_SEQUENCE - 1, 3))  # wraps inside the batch: last seq 0
    assert log2.append_batches(batch(1, 0, MAX_SEQUENCE - 1, 3)).duplicate
    assert log2.append_batches(batch(1, 0, 1)).base_offset == 3


def test_a_bad_batch_fails_the_whole_request(log: Log) -> None:
    log.append_batches(batch(1, 0, 0))
    request = batch(1, 0, 1) + batch(2, 0, 0) + batch(1, 0, 5)
    with pytest.raises(OutOfOrderSequenceError):
        log.append_batches(request)
    assert log.end_offset == 1
    # Batches of one request are checked against each other too.
    assert log.append_batches(batch(1, 0, 1) + batch(1, 0, 2, 2)) == (1, 3, 1, False)
    with pytest.raises(OutOfOrderSequenceError):
        log.append_batches(batch(3, 0, 0) + batch(3, 0, 0))
    assert log.end_offset == 4


def test_an_idempotent_batch_needs_a_sequence(log: Log) -> None:
    with pytest.raises(CorruptRecordError):
        log.append_batches(encode_batch([Record(b"x")], producer_id=1, producer_epoch=0, base_sequence=-1))
    assert log.end_offset == 0


def test_batches_without_a_producer_are_not_tracked(log: Log) -> None:
    plain = encode_batch([Record(b"x")])
    assert not log.append_batches(bytearray(plain)).duplicate
    assert not log.append_batches(bytearray(plain)).duplicate
    assert log.end_offset == 2


@pytest.mark.parametrize("how", ["clean", "crash", "damaged-snapshot", "no-snapshot"])
def test_state_survives_a_restart(tmp_path: Path, how: str) -> None:
    log = open_log(tmp_path / "log", segment_bytes=1024)
    for seq in range(0, 40, 2):  # several segments: snapshots at the rolls
        log.append_batches(batch(1, 0, seq, 2, tag=b"x" * 100))
    log.append_batches(batch(2, 7, 0))
    assert log.segment_count > 2
    log.flush()
    if how == "crash":
        directory = crash_copy(log, tmp_path / "copy")
    else:
        log.close()
        directory = log.directory
        if how == "damaged-snapshot":
            raw = bytearray((directory / PRODUCER_STATE_FILE).read_bytes())
            raw[20] ^= 1
            (directory / PRODUCER_STATE_FILE).write_bytes(raw)
        elif how == "no-snapshot":
            (directory / PRODUCER_STATE_FILE).unlink()
    log = open_log(directory, segment_bytes=1024)
    assert log.append_batches(batch(1, 0, 36, 2, tag=b"x" * 100)) == (36, 37, 1, True)
    assert log.append_batches(batch(2, 7, 0)) == (40, 40, 1, True)
    with pytest.raises(OutOfOrderSequenceError):
        log.append_batches(batch(1, 0, 41))
    with pytest.raises(InvalidProducerEpochError):
        log.append_batches(batch(2, 6, 1))
    assert log.append_batches(batch(1, 0, 40)).base_offset == 41
    log.close()


def test_a_snapshot_past_the_end_is_ignored(tmp_path: Path) -> None:
    """A crash lost appends the snapshot covered: the state comes from what the log holds."""
    log = open_log(tmp_path / "log")
    log.append_batches(batch(1, 0, 0))
    log.flush()
    directory = crash_copy(log, tmp_path / "copy")
    state = ProducerStateManager()
    state.update(1, 0, 0, 5, 0, 5, 1)  # claims six records at offsets 0..5
    (directory / PRODUCER_STATE_FILE).write_bytes(encode_snapshot(state, 6))
    log = Log.open(directory)
    assert log.end_offset == 1
    assert log.append_batches(batch(1, 0, 1)).base_offset == 1  # follows seq 0, not 5
    log.close()


def test_a_lost_tail_forgets_its_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed write drops the unflushed tail; a retry of those batches must be written again."""
    log = open_log(tmp_path / "log")
    log.append_batches(batch(1, 0, 0))
    log.flush()
    log.append_batches(batch(1, 0, 1))
    log.append_batches(batch(2, 0, 0))

    def disk_full(fd: int, data: memoryview, position: int) -> int:
        del data  # no reference to the caller's buffer may outlive the call
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(segment_module.os, "pwrite", disk_full)
        with pytest.raises(StorageError):
            log.flush()
    assert log.end_offset == 1
    assert log.append_batches(batch(1, 0, 1)) == (1, 1, 1, False)
    assert log.append_batches(batch(2, 0, 3)) == (2, 2, 1, False)  # unknown again: any sequence
    assert [r.value for r in read_all(log)] == [b"v0", b"v1", b"v3"]


def test_least_recently_written_producers_are_forgotten() -> None:
    state = ProducerStateManager(max_producers=3)
    for pid in range(3):
        state.update(pid, 0, 0, 0, pid, pid, 1)
    state.update(0, 0, 1, 1, 3, 3, 1)  # 0 is now the most recent
    state.update(3, 0, 0, 0, 4, 4, 1)
    assert sorted(state.entries) == [0, 2, 3]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2**40), st.integers(0, 32767), st.lists(st.integers(-(2**31), 2**31 - 1))),
        max_size=20,
    ),
    st.integers(0, 2**62),
)
def test_snapshot_round_trip(producers: list[tuple[int, int, list[int]]], offset: int) -> None:
    state = ProducerStateManager()
    for pid, epoch, seqs in producers:
        for i, seq in enumerate(seqs):
            state.update(pid, epoch, seq, seq, i, i, i)
    raw = encode_snapshot(state, offset)
    decoded = decode_snapshot(raw)
    assert decoded is not None
    got_offset, got = decoded
    assert got_offset == offset
    assert {p: (e.epoch, list(e.batches)) for p, e in got.entries.items()} == {
        p: (e.epoch, list(e.batches)) for p, e in state.entries.items()
    }
    for cut in {0, len(raw) // 2, len(raw) - 1}:
        assert decode_snapshot(raw[:cut]) is None
