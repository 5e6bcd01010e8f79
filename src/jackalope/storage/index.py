"""Sparse per-segment indexes: offset -> file position, and timestamp -> offset.

Both follow Kafka's ``OffsetIndex`` and ``TimeIndex``: an entry is added only after
``index_interval_bytes`` of log data, so they stay small, and a lookup lands *before* the
target and the caller scans forward a few batches.  They are kept in memory and appended to a
file beside the segment; the file carries no checksum because it can always be rebuilt from
the segment, which is what recovery does when it is missing, torn or inconsistent.

On-disk entries (big-endian)::

    .index      relative offset u32 | position u32            (8 bytes)
    .timeindex  max timestamp so far i64 | relative offset u32 (12 bytes)
"""

from __future__ import annotations

import os
import struct
from array import array
from bisect import bisect_left, bisect_right
from pathlib import Path
from typing import Final

_OFFSET_ENTRY: Final = struct.Struct(">II")
_TIME_ENTRY: Final = struct.Struct(">qI")


class _Index:
    entry: struct.Struct

    def __init__(self, path: Path, base_offset: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.keys = array("q")
        self.values = array("q")
        self._pending = bytearray()

    def __len__(self) -> int:
        return len(self.keys)

    def _add(self, key: int, value: int, raw: bytes) -> None:
        self.keys.append(key)
        self.values.append(value)
        self._pending += raw

    def flush(self) -> None:
        """Append buffered entries to the file (not synced: the index is rebuildable)."""
        if not self._pending:
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, self._pending)
        finally:
            os.close(fd)
        self._pending.clear()

    def rewrite(self) -> None:
        """Replace the file with the in-memory entries (after a rebuild or a truncation)."""
        self._pending.clear()
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(b"".join(self._encode(i) for i in range(len(self.keys))))
        os.replace(tmp, self.path)

    def clear(self) -> None:
        del self.keys[:]
        del self.values[:]
        self._pending.clear()

    def truncate_after_position(self, keep: int) -> None:
        """Drop the entries of the last ``len - keep`` batches."""
        del self.keys[keep:]
        del self.values[keep:]

    def _encode(self, i: int) -> bytes:
        raise NotImplementedError

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)


class OffsetIndex(_Index):
    """Maps an offset to the file position of a batch at or before it."""

    def append(self, base_offset: int, position: int) -> None:
        self._add(base_offset, position, _OFFSET_ENTRY.pack(base_offset - self.base_offset, position))

    def _encode(self, i: int) -> bytes:
        return _OFFSET_ENTRY.pack(self.keys[i] - self.base_offset, self.values[i])

    def lookup(self, offset: int) -> int:
        """Position of the last indexed batch whose base offset is <= ``offset`` (0 if none)."""
        i = bisect_right(self.keys, offset)
        return int(self.values[i - 1]) if i else 0

    def entries_before_position(self, position: int) -> int:
        return bisect_left(self.values, position)

    def load(self, segment_size: int) -> bool:
        """Read the file; return False (and stay empty) if it is missing or inconsistent."""
        self.clear()
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return False
        if len(raw) % _OFFSET_ENTRY.size:
            return False
        last_rel = last_pos = -1
        for rel, pos in _OFFSET_ENTRY.iter_unpack(raw):
            if rel <= last_rel or pos <= last_pos or pos >= segment_size:
                self.clear()
                return False
            self.keys.append(self.base_offset + rel)
            self.values.append(pos)
            last_rel, last_pos = rel, pos
        return True


class TimeIndex(_Index):
    """Maps a timestamp to an offset before which every record is older than it."""

    def append(self, max_timestamp: int, offset: int) -> None:
        if self.keys and max_timestamp <= self.keys[-1]:
            return
        self._add(max_timestamp, offset, _TIME_ENTRY.pack(max_timestamp, offset - self.base_offset))

    def _encode(self, i: int) -> bytes:
        return _TIME_ENTRY.pack(self.keys[i], self.values[i] - self.base_offset)

    def lookup(self, timestamp: int) -> int:
        """An offset such that every record before it has a timestamp < ``timestamp``."""
        i = bisect_left(self.keys, timestamp)
        return int(self.values[i - 1]) if i else self.base_offset

    def truncate_after_offset(self, next_offset: int) -> None:
        keep = bisect_left(self.values, next_offset)
        self.truncate_after_position(keep)

    def load(self, next_offset: int) -> bool:
        self.clear()
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return False
        if len(raw) % _TIME_ENTRY.size:
            return False
        last_ts = None
        last_off = -1
        for ts, rel in _TIME_ENTRY.iter_unpack(raw):
            off = self.base_offset + rel
            if (last_ts is not None and ts <= last_ts) or off < last_off or off >= next_offset:
                self.clear()
                return False
            self.keys.append(ts)
            self.values.append(off)
            last_ts, last_off = ts, off
        return True
