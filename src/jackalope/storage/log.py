"""A log: one append-only sequence of records, stored as a directory of segments.

This is the single storage object behind a Kafka topic partition and a RabbitMQ-style queue
or stream.  Offsets are dense integers handed out by :meth:`Log.append`; the log keeps four
marks, ``start <= durable <= flushed <= end``.  (``start`` runs ahead of ``durable`` and
``flushed`` when ``truncate_prefix`` or retention deletes records not yet durable; the next
sync, or flush under ``never``, brings them level again.)

* ``start_offset``  the first offset still readable (moved by retention and ``truncate_prefix``),
* ``flushed_offset``  everything below it has been written to the OS,
* ``durable_offset``  everything below it survives a crash under the log's durability policy,
* ``end_offset``  the next offset to assign.

The log itself never blocks on ``fsync``: :meth:`begin_sync` hands out a job that a worker
thread runs, and :meth:`end_sync` moves ``durable_offset`` and fires the callbacks registered
with :meth:`when_durable`.  :class:`~jackalope.storage.manager.LogManager` drives that on an
event loop (group commit); :meth:`sync` does it inline for synchronous callers.

Directory layout::

    00000000000000000000.log        segments, named by base offset
    00000000000000000000.index      sparse offset index
    00000000000000000000.timeindex  sparse time index
    log-start-offset                set by truncate_prefix (text)
    recovery-point                  offsets below it were fsynced before (text)
    clean-shutdown                  present only while the log is closed cleanly
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple

from jackalope.storage.config import Durability, LogConfig
from jackalope.storage.errors import LogClosedError, OffsetOutOfRangeError, StorageError
from jackalope.storage.records import (
    Record,
    decode_records,
    encode_batch,
    iter_batches,
    max_timestamp_of,
    set_base_offset,
    set_log_append_time,
    validate_batch,
)
from jackalope.storage.segment import Segment

log = logging.getLogger(__name__)

DurableCallback = Callable[[BaseException | None], None]

CLEAN_SHUTDOWN: Final = "clean-shutdown"
START_OFFSET_FILE: Final = "log-start-offset"
RECOVERY_POINT_FILE: Final = "recovery-point"
_MAX_RELATIVE_OFFSET: Final = (1 << 31) - 1


def now_ms() -> int:
    return int(time.time() * 1000)


class AppendInfo(NamedTuple):
    """Where an append landed: offsets ``base_offset..last_offset`` inclusive."""

    base_offset: int
    last_offset: int
    max_timestamp: int


@dataclass(frozen=True, slots=True)
class ReadResult:
    """Whole record batches as stored, and the offset a follow-up read starts at."""

    data: bytes
    next_offset: int


class SyncJob:
    """The fsync work of one group commit, run on a worker thread."""

    def __init__(self, segments: list[Segment], directory: Path | None, target: int) -> None:
        self.segments = segments
        self.directory = directory
        self.target = target

    def run(self) -> None:
        for segment in self.segments:
            try:
                segment.fsync()
            except OSError as exc:
                if exc.errno == errno.EBADF and segment.fd < 0:
                    continue  # deleted by retention meanwhile: nothing left to make durable
                raise
        if self.directory is not None:
            fsync_dir(self.directory)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Log:
    """An append-only log of record batches in one directory.  Not thread-safe."""

    def __init__(self, directory: Path, config: LogConfig) -> None:
        self.directory = directory
        self.config = config
        self.on_dirty: Callable[[Log], None] | None = None
        self._segments: list[Segment] = []
        self._bases: list[int] = []
        self._start = 0
        self._end = 0
        self._flushed = 0
        self._durable = 0
        self._recovery_point = 0
        self._waiters: deque[tuple[int, DurableCallback]] = deque()
        self._dirty = False
        self._dir_dirty = False
        self._failed: StorageError | None = None
        self._closed = False

    # -- opening and closing -------------------------------------------------------------------

    @classmethod
    def open(cls, directory: Path, config: LogConfig | None = None) -> Log:
        """Open (or create) the log in ``directory``, recovering from an unclean shutdown."""
        self = cls(directory, config or LogConfig())
        directory.mkdir(parents=True, exist_ok=True)
        marker = directory / CLEAN_SHUTDOWN
        clean = marker.exists()
        if clean:
            marker.unlink()
            fsync_dir(directory)
        for stray in directory.glob("*.tmp"):
            stray.unlink()
        self._recovery_point = _read_int(directory / RECOVERY_POINT_FILE, 0)
        bases = sorted(int(p.stem) for p in directory.glob("*.log") if p.stem.isdigit())
        for i, base in enumerate(bases):
            segment = Segment(directory, base, self.config.index_interval_bytes)
            is_last = i == len(bases) - 1
            next_base = bases[i + 1] if not is_last else None
            verify = not clean and (is_last or (next_base is not None and next_base > self._recovery_point))
            cut = segment.recover(verify)
            self._segments.append(segment)
            self._bases.append(base)
            if cut and not is_last:
                log.warning("%s: dropping segments after a torn segment at %d", directory, base)
                for later in bases[i + 1 :]:
                    Segment(directory, later, self.config.index_interval_bytes).delete()
                break
        for orphan in [*directory.glob("*.index"), *directory.glob("*.timeindex")]:
            if orphan.stem.isdigit() and int(orphan.stem) not in self._bases:
                orphan.unlink()
        start = _read_int(directory / START_OFFSET_FILE, 0)
        if not self._segments:
            self._add_segment(start)
        if start > self._segments[-1].next_offset:
            # Everything up to ``start`` was truncated away; continue numbering after it.
            self._roll(start)
        self._end = self._segments[-1].next_offset
        self._start = max(start, self._segments[0].base_offset)
        while len(self._segments) > 1 and self._segments[1].base_offset <= self._start:
            self._delete_oldest()
        self._flushed = self._durable = self._end
        return self

    def close(self) -> None:
        """Flush, fsync and close every segment; mark the shutdown clean."""
        if self._closed:
            return
        try:
            if self._failed is None:
                self.sync()
        finally:
            self._closed = True
            for segment in self._segments:
                segment.close()
            self._fail_waiters(LogClosedError(f"log {self.directory.name} closed"), 0)
        if self._failed is None:
            (self.directory / CLEAN_SHUTDOWN).touch()
            fsync_dir(self.directory)

    def delete(self) -> None:
        """Close and remove the whole log from disk."""
        self._closed = True
        for segment in self._segments:
            segment.delete()
        self._fail_waiters(LogClosedError(f"log {self.directory.name} deleted"), 0)
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- marks ---------------------------------------------------------------------------------

    @property
    def start_offset(self) -> int:
        return self._start

    @property
    def end_offset(self) -> int:
        return self._end

    @property
    def flushed_offset(self) -> int:
        return self._flushed

    @property
    def durable_offset(self) -> int:
        return self._durable

    @property
    def size_bytes(self) -> int:
        return sum(s.size for s in self._segments)

    @property
    def segment_count(self) -> int:
        return len(self._segments)

    @property
    def failed(self) -> StorageError | None:
        return self._failed

    # -- appending -----------------------------------------------------------------------------

    def append(self, records: Sequence[Record], *, timestamp: int | None = None) -> AppendInfo:
        """Append ``records`` as one batch; records without a timestamp get ``timestamp`` or now."""
        self._check_writable()
        now = now_ms() if timestamp is None else timestamp
        base = self._end
        batch = encode_batch(records, base_offset=base, now_ms=now)
        max_ts = max_timestamp_of(batch)
        self._write(batch, base, base + len(records), max_ts, now)
        return AppendInfo(base, base + len(records) - 1, max_ts)

    def append_batches(self, data: bytearray, *, log_append_time: bool = False) -> AppendInfo:
        """Append already-encoded RecordBatch v2 bytes (as a Kafka producer sends them).

        Every batch is checked (magic, sizes, CRC) before anything is written, offsets are
        assigned in place, and the batches are stored exactly as given otherwise.
        """
        self._check_writable()
        headers = []
        pos = 0
        for pos_, header in iter_batches(data):
            validate_batch(data, pos_)
            headers.append((pos_, header))
            pos = pos_ + header.size
        if not headers or pos != len(data):
            validate_batch(data, pos)  # raises CorruptRecordError describing the problem
        now = now_ms()
        base = self._end
        offset = base
        max_ts = -1
        for pos, header in headers:
            set_base_offset(data, offset, pos)
            if log_append_time:
                set_log_append_time(data, now, pos)
            ts = now if log_append_time else header.max_timestamp
            nxt = offset + header.last_offset_delta + 1
            self._write(memoryview(data)[pos : pos + header.size], offset, nxt, ts, now)
            offset = nxt
            max_ts = max(max_ts, ts)
        return AppendInfo(base, offset - 1, max_ts)

    def _write(
        self, batch: bytes | bytearray | memoryview, base: int, nxt: int, max_ts: int, now: int
    ) -> None:
        active = self._segments[-1]
        if active.size and (
            active.size + len(batch) > self.config.segment_bytes
            or now - active.created_ms >= self.config.segment_ms
            or nxt - active.base_offset > _MAX_RELATIVE_OFFSET
        ):
            active = self._roll(base)
        if not active.size:
            # A segment's age counts from its first batch, on the clock the appends use.
            active.created_ms = now
        try:
            active.append(batch, base, nxt, max_ts)
        except StorageError as exc:
            self._tail_lost(exc)
            raise
        self._end = nxt
        if not self._dirty:
            self._dirty = True
            if self.on_dirty is not None:
                self.on_dirty(self)

    def _check_writable(self) -> None:
        if self._closed:
            raise LogClosedError(f"log {self.directory.name} is closed")
        if self._failed is not None:
            raise self._failed

    def _add_segment(self, base: int) -> Segment:
        segment = Segment(self.directory, base, self.config.index_interval_bytes)
        self._segments.append(segment)
        self._bases.append(base)
        self._dir_dirty = True
        return segment

    def _roll(self, base: int) -> Segment:
        old = self._segments[-1]
        try:
            old.flush()
        except StorageError as exc:
            self._tail_lost(exc)
            raise
        old.index.rewrite()
        old.time_index.rewrite()
        return self._add_segment(base)

    # -- durability ----------------------------------------------------------------------------

    def flush(self) -> None:
        """Write buffered appends to the OS (under ``never`` that makes them durable)."""
        self._dirty = False
        if self._flushed == self._end:
            return
        try:
            self._segments[-1].flush()
        except StorageError as exc:
            self._tail_lost(exc)
            raise
        self._flushed = self._end
        if self.config.durability is Durability.NEVER:
            self._advance_durable(self._end)

    def begin_sync(self) -> SyncJob | None:
        """Flush, and describe the fsync that would make everything flushed durable."""
        self.flush()
        if self._durable >= self._flushed and not self._dir_dirty:
            return None
        segments = [s for s in self._segments if s.needs_sync]
        for s in segments:
            s.needs_sync = False
        directory = self.directory if self._dir_dirty else None
        self._dir_dirty = False
        return SyncJob(segments, directory, self._flushed)

    def end_sync(self, job: SyncJob, error: BaseException | None) -> None:
        """Record the outcome of ``job``: advance ``durable_offset`` or fail the log."""
        if error is not None:
            # After a failed fsync the page cache state is unknown: stop taking writes.
            self._failed = StorageError(f"fsync of {self.directory} failed: {error}")
            log.error("%s", self._failed)
            self._fail_waiters(self._failed, 0)
            return
        self._advance_durable(job.target)
        if self.directory.exists():  # not deleted while the job ran
            self._save_recovery_point()

    def sync(self) -> None:
        """Flush and fsync inline, blocking the caller."""
        job = self.begin_sync()
        if job is None:
            return
        try:
            job.run()
        except OSError as exc:
            self.end_sync(job, exc)
            raise self._failed from exc  # type: ignore[misc]
        self.end_sync(job, None)

    def when_durable(self, offset: int, callback: DurableCallback) -> None:
        """Call ``callback(None)`` once ``offset`` is durable, or ``callback(error)`` if it never will be."""
        if offset < self._durable:
            callback(None)
        elif self._failed is not None:
            callback(self._failed)
        elif self._closed:
            callback(LogClosedError(f"log {self.directory.name} is closed"))
        elif self._waiters and offset < self._waiters[-1][0]:
            # Registered out of order: keep the queue sorted, as the durable and failure
            # sweeps stop at the first waiter they must not call.
            i = bisect_right(self._waiters, offset, key=lambda waiter: waiter[0])
            self._waiters.insert(i, (offset, callback))
        else:
            self._waiters.append((offset, callback))

    def _advance_durable(self, offset: int) -> None:
        if offset > self._durable:
            self._durable = offset
        waiters = self._waiters
        while waiters and waiters[0][0] < self._durable:
            _, callback = waiters.popleft()
            _call(callback, None)

    def _flush_active(self) -> None:
        """Write the active segment's buffer before reading it (a segment flushes itself for a
        read, but only the log can account for a failed write: see :meth:`_tail_lost`)."""
        try:
            self._segments[-1].flush()
        except StorageError as exc:
            self._tail_lost(exc)
            raise

    def _tail_lost(self, error: StorageError) -> None:
        """A write failed: the unflushed tail is gone; tell whoever waits on it."""
        active = self._segments[-1]
        self._end = max(active.next_offset, self._flushed)
        self._dirty = False
        log.error("%s: %s", self.directory, error)
        self._fail_waiters(error, self._end)

    def _fail_waiters(self, error: StorageError, from_offset: int) -> None:
        waiters = self._waiters
        while waiters and waiters[-1][0] >= from_offset:
            _, callback = waiters.pop()
            _call(callback, error)

    def _save_recovery_point(self) -> None:
        # Segments before the active one are fully synced once a job has covered them.
        point = self._segments[-1].base_offset
        if point > self._recovery_point and all(not s.needs_sync for s in self._segments[:-1]):
            _write_int(self.directory / RECOVERY_POINT_FILE, point)
            self._recovery_point = point

    def needs_sync(self) -> bool:
        """Whether a sync job would have work: appends not yet durable, or rolled segments to sync."""
        return self._end > self._durable or any(s.needs_sync for s in self._segments[:-1])

    # -- reading -------------------------------------------------------------------------------

    def read(self, offset: int, max_bytes: int = 1 << 20) -> ReadResult:
        """Stored batches from the one holding ``offset``: at least one whole batch, then up to
        ``max_bytes``.  A batch may start before ``offset`` (readers skip those records)."""
        if self._closed:
            raise LogClosedError(f"log {self.directory.name} is closed")
        if offset < self._start or offset > self._end:
            raise OffsetOutOfRangeError(offset, self._start, self._end)
        if offset == self._end:
            return ReadResult(b"", offset)
        i = max(bisect_right(self._bases, offset) - 1, 0)
        while i < len(self._segments):
            if i == len(self._segments) - 1:
                self._flush_active()
            data, nxt = self._segments[i].read(offset, max_bytes)
            if data:
                return ReadResult(data, nxt)
            i += 1  # offset fell in a gap at the end of a segment
        return ReadResult(b"", self._end)

    def read_records(self, offset: int, max_bytes: int = 1 << 20) -> list[Record]:
        """Decoded records from ``offset`` on (CRC-checked), within about ``max_bytes``."""
        result = self.read(offset, max_bytes)
        start = max(offset, self._start)
        out: list[Record] = []
        for pos, _ in iter_batches(result.data):
            out.extend(r for r in decode_records(result.data, pos) if r.offset >= start)
        return out

    def offset_for_time(self, timestamp: int) -> int | None:
        """The first offset whose record timestamp is >= ``timestamp``, or None if there is none."""
        for segment in self._segments:
            if segment.max_timestamp < timestamp:
                continue
            if segment is self._segments[-1]:
                self._flush_active()
            base = segment.offset_for_time(timestamp)
            if base is None:
                continue
            offset = max(base, self._start)
            while offset < self._end:
                records = self.read_records(offset, 1)
                for record in records:
                    if record.timestamp is not None and record.timestamp >= timestamp:
                        return record.offset
                if not records:
                    break
                offset = records[-1].offset + 1
        return None

    # -- deleting old data ---------------------------------------------------------------------

    def truncate_prefix(self, offset: int) -> None:
        """Make ``offset`` the first readable offset and free whole segments below it.

        Used for acknowledged queue heads and Kafka's DeleteRecords.
        """
        self._check_writable()
        offset = min(offset, self._end)
        if offset <= self._start:
            return
        if offset == self._end and self._segments[-1].size:
            self._roll(self._end)  # first: if its write fails, the end moves back and nothing else
        self._start = offset
        _write_int(self.directory / START_OFFSET_FILE, offset)
        while len(self._segments) > 1 and self._segments[1].base_offset <= offset:
            self._delete_oldest()

    def enforce_retention(self, now: int | None = None) -> int:
        """Delete whole segments past ``retention_ms`` or beyond ``retention_bytes``; return how many."""
        if self._closed or self._failed is not None:
            return 0
        now = now_ms() if now is None else now
        deleted = 0
        retention_ms = self.config.retention_ms
        if retention_ms >= 0:
            while self._segments[0].size and self._segments[0].max_timestamp < now - retention_ms:
                if len(self._segments) == 1:
                    self._roll(self._end)
                self._delete_oldest()
                deleted += 1
        retention_bytes = self.config.retention_bytes
        if retention_bytes >= 0:
            total = self.size_bytes
            while len(self._segments) > 1 and total - self._segments[0].size >= retention_bytes:
                total -= self._segments[0].size
                self._delete_oldest()
                deleted += 1
        return deleted

    def _delete_oldest(self) -> None:
        segment = self._segments.pop(0)
        self._bases.pop(0)
        segment.delete()
        self._start = max(self._start, self._segments[0].base_offset)


def _call(callback: DurableCallback, error: BaseException | None) -> None:
    try:
        callback(error)
    except Exception:  # a broken callback must not stop the others
        log.exception("durability callback failed")


def _read_int(path: Path, default: int) -> int:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return default


def _write_int(path: Path, value: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{value}\n")
    tmp.replace(path)
