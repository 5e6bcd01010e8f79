"""Log compaction (Kafka's log cleaner): keep only the latest record of each key.

A compaction *job* is planned on the event loop by :meth:`Log.begin_compaction`, run anywhere
(:meth:`CompactionJob.run` touches only duplicated file descriptors and new files, so a worker
thread may run it) and committed on the loop by :meth:`Log.end_compaction`.

Rules (as Kafka):

* Only closed segments are cleaned, and only those whose newest record is older than
  ``min_compaction_lag_ms`` (the cleanable prefix ends at the first younger one).
* A record is removed when a record with the same key has a higher offset anywhere in the log,
  the active segment included.  Records with a null key are kept.
* A tombstone (null value) is kept until ``delete_retention_ms`` after its segment was last
  modified (appended to, or rewritten: a rewritten segment keeps the newest modification time
  of its inputs so that rewriting does not extend a tombstone's life), then removed.
* Batches keep their boundaries and header fields (base offset, lastOffsetDelta, timestamps,
  producer id/epoch/sequence, attributes); a batch that lost records is rewritten with the
  survivors, byte for byte, at their original offsets.  Offsets become sparse.  A batch that
  lost all its records is dropped, unless it is the last batch of a known producer (then it is
  kept empty, so a restart can still rebuild that producer's sequence).
* Consecutive cleaned segments are merged while the result fits ``segment_bytes`` (and a 32-bit
  relative offset), so compaction does not leave a trail of tiny segments.
* Transactions: nothing at or after the first unstable offset is cleaned, nor counts in the
  offset map (an open transaction may still abort); the records of aborted transactions do not
  count in the map and are removed (their batches dropped, or kept empty as above).  Control
  batches (transaction markers) are always kept, and so are the transaction indexes' entries.
* Batches whose records cannot be read (a codec :mod:`compression` does not implement, or a
  damaged batch) are kept as they are and their keys are not counted.

The map of ``key -> latest offset`` is built from the *dirty* part of the log only: the records
at or after the end of the previous run's cleanable prefix.  The part before it is already free
of duplicates, so a record there is superseded only by one in the dirty part.  (That mark is in
memory: after a restart the first run reads the whole log.)

Swapping a rewritten group in is crash-safe: the job writes ``<base>.log.cleaned`` and fsyncs it;
the commit renames it to ``<first base>-<last base>.swap`` (the commit point), deletes the old
segments, and renames the swap file to ``<first base>.log``.  :meth:`Log.open` deletes
``*.cleaned`` files (the old segments are intact) and completes any ``*.swap`` (deletes the
segments in its range, renames it), so a crash anywhere leaves the old or the new segment set.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from jackalope.storage.errors import CorruptRecordError
from jackalope.storage.records import (
    CONTROL,
    HEADER_SIZE,
    LOG_OVERHEAD,
    BatchHeader,
    batch_keys,
    parse_header,
    rebuild_batch,
    record_spans,
    records_section,
    validate_batch,
)
from jackalope.storage.segment import Segment, segment_name
from jackalope.storage.transactions import AbortedRanges

CLEANED_SUFFIX: Final = ".log.cleaned"
SWAP_SUFFIX: Final = ".swap"
_BLOCK: Final = 1024 * 1024


def cleaned_path(directory: Path, base_offset: int) -> Path:
    return directory / (segment_name(base_offset) + CLEANED_SUFFIX)


def swap_path(directory: Path, first_base: int, last_base: int) -> Path:
    return directory / f"{segment_name(first_base)}-{segment_name(last_base)}{SWAP_SUFFIX}"


def parse_swap_name(path: Path) -> tuple[int, int] | None:
    """``(first base, last base)`` of a ``.swap`` file, or None if the name is not one."""
    first, sep, last = path.name.removesuffix(SWAP_SUFFIX).partition("-")
    if not (path.name.endswith(SWAP_SUFFIX) and sep and first.isdigit() and last.isdigit()):
        return None
    return int(first), int(last)


@dataclass(frozen=True)
class SegmentView:
    """What a job needs of one segment: a duplicated descriptor and a size fixed at planning.

    ``segment`` is only compared by identity at commit; the job never touches it.
    """

    segment: Segment
    base_offset: int
    next_offset: int
    fd: int
    size: int
    mtime_ms: int


@dataclass
class CleanedGroup:
    """One rewritten group of consecutive segments, waiting in a ``.cleaned`` file."""

    segments: list[SegmentView]
    path: Path
    records_removed: int
    bytes_before: int
    bytes_after: int
    mtime_ms: int


@dataclass
class CompactionResult:
    """What one compaction run did."""

    segments_cleaned: int = 0  # input segments replaced
    records_removed: int = 0
    bytes_before: int = 0
    bytes_after: int = 0


@dataclass
class CompactionJob:
    directory: Path
    groups: list[list[SegmentView]]  # the cleanable segments, grouped for merging
    dirty: list[SegmentView]  # segments whose keys build the offset map (active one last)
    now: int
    delete_retention_ms: int
    producer_last_batches: dict[int, int]  # producer id -> base offset of its last batch
    clean_end: int  # the first offset the job does not clean (base of the first uncleanable segment)
    map_end: int | None = None  # the first unstable offset: later records are not mapped
    aborted: AbortedRanges = field(default_factory=lambda: AbortedRanges(()))
    outputs: list[CleanedGroup] = field(default_factory=list)
    tombstone_deadline: int | None = None  # when a retained tombstone may next be removed
    cancelled: bool = False
    _closed: bool = False

    def run(self) -> None:
        """Build the offset map and write the rewritten groups (thread-safe; no log state)."""
        try:
            offset_map = self._build_map()
            for group in self.groups:
                if self.cancelled:
                    break
                out = self._clean_group(group, offset_map)
                if out is not None:
                    self.outputs.append(out)
        except BaseException:
            self.discard()
            raise
        finally:
            self._close_fds()
        if self.cancelled:
            self.discard()

    def discard(self) -> None:
        """Remove the outputs not committed and release the descriptors (idempotent)."""
        self._close_fds()
        for out in self.outputs:
            out.path.unlink(missing_ok=True)
        self.outputs = []

    def _close_fds(self) -> None:
        if self._closed:
            return
        self._closed = True
        fds = {v.fd for v in self.dirty} | {v.fd for g in self.groups for v in g}
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- the offset map ------------------------------------------------------------------------

    def _build_map(self) -> dict[bytes, int]:
        offset_map: dict[bytes, int] = {}
        for view in self.dirty:
            for header, raw in read_batches(view.fd, view.size):
                if self.map_end is not None and header.base_offset >= self.map_end:
                    return offset_map
                if header.attributes & CONTROL or not header.record_count or self.aborted.aborted(header):
                    continue
                with contextlib.suppress(CorruptRecordError):  # unreadable: its keys stay unknown
                    for offset, key, _ in batch_keys(raw):
                        if key is not None:
                            offset_map[key] = offset
        return offset_map

    # -- rewriting -----------------------------------------------------------------------------

    def _clean_group(self, group: list[SegmentView], offset_map: dict[bytes, int]) -> CleanedGroup | None:
        path = cleaned_path(self.directory, group[0].base_offset)
        out: _Output | None = _Output(path) if len(group) > 1 else None  # merging rewrites anyway
        removed = 0
        horizon = self.now - self.delete_retention_ms
        try:
            for view in group:
                drop_tombstones = view.mtime_ms <= horizon
                pos = 0
                for header, raw in read_batches(view.fd, view.size):
                    keep_empty = self.producer_last_batches.get(header.producer_id) == header.base_offset
                    new, n_removed, tombstone_kept = filter_batch(
                        raw,
                        header,
                        offset_map,
                        drop_tombstones=drop_tombstones,
                        keep_empty=keep_empty,
                        aborted=self.aborted.aborted(header),
                    )
                    if tombstone_kept:
                        deadline = view.mtime_ms + self.delete_retention_ms
                        if self.tombstone_deadline is None or deadline < self.tombstone_deadline:
                            self.tombstone_deadline = deadline
                    if n_removed:
                        removed += n_removed
                        if out is None:  # the first change: copy what came before it
                            out = _Output(path)
                            out.copy_from(view.fd, 0, pos)
                    if out is not None and new is not None:
                        out.write(new)
                    pos += header.size
            if out is None:
                return None
            mtime = max(v.mtime_ms for v in group)
            size = out.finish(mtime)
        except BaseException:
            if out is not None:
                out.abort()
            raise
        return CleanedGroup(group, path, removed, sum(v.size for v in group), size, mtime)


class _Output:
    """A ``.cleaned`` file being written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.size = 0
        self._buffer = bytearray()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._buffer += data
        if len(self._buffer) >= _BLOCK:
            self._flush()

    def copy_from(self, fd: int, start: int, end: int) -> None:
        while start < end:
            chunk = os.pread(fd, min(_BLOCK, end - start), start)
            if not chunk:
                raise CorruptRecordError("segment shorter than planned")
            self.write(chunk)
            start += len(chunk)

    def _flush(self) -> None:
        view = memoryview(self._buffer)
        written = 0
        while written < len(view):
            written += os.write(self.fd, view[written:])
        view.release()
        self.size += written
        self._buffer.clear()

    def finish(self, mtime_ms: int) -> int:
        self._flush()
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1
        os.utime(self.path, ns=(mtime_ms * 1_000_000, mtime_ms * 1_000_000))
        return self.size

    def abort(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
        self.path.unlink(missing_ok=True)


def filter_batch(
    raw: bytes | memoryview,
    header: BatchHeader,
    offset_map: dict[bytes, int],
    *,
    drop_tombstones: bool,
    keep_empty: bool,
    aborted: bool = False,
) -> tuple[bytes | bytearray | memoryview | None, int, bool]:
    """Apply the compaction rules to one batch (``aborted``: of an aborted transaction).

    Returns ``(batch to write or None, records removed, whether a tombstone was kept)``; the
    batch is ``raw`` itself when nothing was removed.
    """
    if header.attributes & CONTROL or not header.record_count:
        return raw, 0, False
    if aborted:
        return (rebuild_batch(header, b"", 0) if keep_empty else None), header.record_count, False
    try:
        validate_batch(raw)  # never re-seal a damaged batch with a fresh CRC
        data = records_section(raw, 0, header)
        spans = list(record_spans(data, header.record_count))
    except CorruptRecordError:
        return raw, 0, False  # unreadable: keep it as it is
    base = header.base_offset
    kept: list[tuple[int, int]] = []  # byte ranges of the records kept, contiguous ones merged
    count = 0
    tombstone_kept = False
    for start, end, delta, key, null_value in spans:
        if key is not None:
            offset = base + delta
            if offset_map.get(key, offset) > offset:
                continue  # superseded
            if null_value:
                if drop_tombstones:
                    continue
                tombstone_kept = True
        count += 1
        if kept and kept[-1][1] == start:
            kept[-1] = (kept[-1][0], end)
        else:
            kept.append((start, end))
    removed = header.record_count - count
    if not removed:
        return raw, 0, tombstone_kept
    if not count and not keep_empty:
        return None, removed, False
    body = b"".join(bytes(data[s:e]) for s, e in kept)
    return rebuild_batch(header, body, count), removed, tombstone_kept


def read_batches(fd: int, size: int) -> Iterator[tuple[BatchHeader, memoryview]]:
    """``(header, bytes)`` of each whole batch in the first ``size`` bytes of the file at ``fd``."""
    position = 0
    while size - position >= HEADER_SIZE:
        block = os.pread(fd, min(_BLOCK, size - position), position)
        if len(block) < HEADER_SIZE:
            return
        view = memoryview(block)
        p = 0
        while len(block) - p >= HEADER_SIZE:
            header = parse_header(block, p)
            if header.batch_length < HEADER_SIZE - LOG_OVERHEAD:
                raise CorruptRecordError(f"bad batch length at {position + p}")
            if p + header.size > len(block):
                break
            yield header, view[p : p + header.size]
            p += header.size
        if p == 0:  # one batch larger than the block
            header = parse_header(block, 0)
            if position + header.size > size:
                return
            whole = os.pread(fd, header.size, position)
            yield header, memoryview(whole)
            p = header.size
        position += p
