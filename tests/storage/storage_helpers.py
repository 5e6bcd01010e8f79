"""Shared helpers for the storage tests (imported by the test modules, not collected)."""

from __future__ import annotations

import shutil
from pathlib import Path

from hypothesis import strategies as st

from jackalope.storage import Log, LogConfig, Record
from jackalope.storage.records import iter_batches

# -- strategies ----------------------------------------------------------------------------------

header_names = st.text(max_size=12)
header_values = st.none() | st.binary(max_size=16)
headers = st.lists(st.tuples(header_names, header_values), max_size=3).map(tuple)


def records(max_value: int = 64, timestamps: bool = True) -> st.SearchStrategy[Record]:
    """Records as a producer gives them: no offset, maybe no timestamp."""
    return st.builds(
        Record,
        value=st.none() | st.binary(max_size=max_value),
        key=st.none() | st.binary(max_size=16),
        headers=headers,
        timestamp=(st.none() | st.integers(0, 2**41)) if timestamps else st.none(),
    )


# -- logs ----------------------------------------------------------------------------------------


def read_all(log: Log, max_bytes: int = 1 << 20) -> list[Record]:
    """Every record from ``start_offset`` to ``end_offset``, read in ``max_bytes`` steps."""
    out: list[Record] = []
    offset = log.start_offset
    while offset < log.end_offset:
        got = log.read_records(offset, max_bytes)
        assert got, f"no records at {offset} below end {log.end_offset}"
        assert got[0].offset == offset, (got[0].offset, offset)
        out.extend(got)
        offset = got[-1].offset + 1
    return out


def read_sparse(log: Log, max_bytes: int = 1 << 20) -> list[Record]:
    """Every record from ``start_offset`` on when offsets may have gaps (compaction)."""
    out: list[Record] = []
    offset = log.start_offset
    while offset < log.end_offset:
        got = log.read_records(offset, max_bytes)
        if not got:
            break
        assert got[0].offset >= offset, (got[0].offset, offset)
        out.extend(got)
        offset = got[-1].offset + 1
    return out


def stored(record: Record, offset: int, now: int) -> Record:
    """What the log returns for ``record`` appended at ``offset`` with ``now`` as the time."""
    ts = now if record.timestamp is None else record.timestamp
    return record._replace(offset=offset, timestamp=ts)


def crash_copy(log: Log, dest: Path) -> Path:
    """Simulate a process crash: keep only what the OS has (the files), drop the Log object.

    The directory is copied as it is on disk (the user-space write buffer is not in it), then
    the original is deleted without flushing, as a killed process would leave it.
    """
    shutil.copytree(log.directory, dest)
    log.delete()
    return dest


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.log"))


def batches_in(path: Path) -> list[tuple[int, int, int]]:
    """``(position, base offset, next offset)`` of each whole batch in a segment file."""
    data = path.read_bytes()
    return [(pos, h.base_offset, h.next_offset) for pos, h in iter_batches(data)]


def open_log(directory: Path, **config: object) -> Log:
    return Log.open(directory, LogConfig(**config))  # type: ignore[arg-type]
