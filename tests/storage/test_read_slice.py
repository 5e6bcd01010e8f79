"""Log.read_slice: the same batches as Log.read, as a file range that outlives its segment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jackalope.storage import Log, LogConfig, OffsetOutOfRangeError, Record

CONFIG = LogConfig(segment_bytes=4096, durability="never")


def filled(path: Path, batches: list[int]) -> Log:
    log = Log.open(path, CONFIG)
    for i, count in enumerate(batches):
        log.append([Record(f"{i}-{j}".encode() * 20) for j in range(count)])
    return log


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(st.integers(1, 30), min_size=1, max_size=25),
    picks=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 20_000)), max_size=10),
)
def test_slices_hold_what_read_returns(
    tmp_path_factory: pytest.TempPathFactory, batches: list[int], picks: list[tuple[int, int]]
) -> None:
    log = filled(tmp_path_factory.mktemp("slice"), batches)
    try:
        for at, max_bytes in [(0, 1 << 20), *picks]:
            offset = at % (log.end_offset + 1)
            expected = log.read(offset, max_bytes)
            piece = log.read_slice(offset, max_bytes)
            try:
                assert piece.read() == expected.data
                assert len(piece) == len(expected.data)
                assert piece.next_offset == expected.next_offset
            finally:
                piece.close()
    finally:
        log.close()


def test_a_slice_outlives_the_deletion_of_its_segment(tmp_path: Path) -> None:
    log = filled(tmp_path / "log", [10] * 20)
    assert log.segment_count > 2
    piece = log.read_slice(0, 1 << 20)
    expected = log.read(0, 1 << 20).data
    log.truncate_prefix(log.end_offset)  # deletes every segment file the slice came from
    assert piece.read() == expected
    piece.close()
    fd = piece.fd
    piece.close()
    with pytest.raises(OSError):
        os.fstat(fd)  # the slice's own descriptor is closed
    piece.close()  # and closing twice is harmless
    log.close()


def test_slices_at_the_end_and_out_of_range(tmp_path: Path) -> None:
    log = filled(tmp_path / "log", [3])
    end = log.read_slice(3)
    assert (len(end), end.next_offset, end.read()) == (0, 3, b"")
    end.close()
    with pytest.raises(OffsetOutOfRangeError):
        log.read_slice(4)
    log.close()
