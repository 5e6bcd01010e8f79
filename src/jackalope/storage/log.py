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
    00000000000000000000.acks       settled offsets of the segment (logs settled one by one)
    00000000000000000000.txnindex   aborted transactions whose marker is in the segment
    log-start-offset                set by truncate_prefix (text)
    recovery-point                  offsets below it were fsynced before (text)
    producer-state                  idempotent-producer state snapshot (see producers.py)
    clean-shutdown                  present only while the log is closed cleanly
    *.log.cleaned, *.swap           a compaction in progress (see compaction.py)

Kafka transactions (see :mod:`~jackalope.storage.transactions`): transactional batches of a
producer are tracked from the first one until :meth:`Log.append_control` writes the COMMIT or
ABORT marker; :meth:`Log.last_stable_offset`, :meth:`Log.aborted_transactions` and the
``committed_only`` readers give the read_committed view.

Offsets are dense as appended; compaction (:meth:`Log.compact`) removes records from closed
segments and so makes them sparse.  Every read skips to the next record that exists.

A log consumed record by record (a queue's) *settles* offsets instead of truncating:
:meth:`Log.settle` records that an offset is done with, in any order; the settlements go to
each segment's ``.acks`` with the next flush (so they survive a crash of the process from the
end of the event-loop iteration on, and a power cut from the next sync on), and a segment is
deleted as soon as every offset in it is settled.  ``head`` is the first unsettled offset.
Two more marks go the same way: records appended ``volatile`` are settled as of the next
open (they need not survive a restart), and offsets marked delivered are reported by
:meth:`Log.delivered_before_open` after the next open (a queue's redelivered flag).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple

from jackalope.storage.compaction import (
    CLEANED_SUFFIX,
    SWAP_SUFFIX,
    CompactionJob,
    CompactionResult,
    SegmentView,
    parse_swap_name,
)
from jackalope.storage.config import Durability, LogConfig
from jackalope.storage.errors import (
    CorruptRecordError,
    InvalidRecordError,
    LogClosedError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    StorageError,
)
from jackalope.storage.files import TMP_SUFFIX, atomic_write, fsync_dir, read_int, write_int
from jackalope.storage.producers import (
    ProducerAppend,
    ProducerStateManager,
    decode_snapshot_version,
    encode_snapshot,
    increment_sequence,
)
from jackalope.storage.records import (
    CONTROL,
    TRANSACTIONAL,
    Record,
    decode_records,
    encode_batch,
    iter_batches,
    max_timestamp_of,
    set_base_offset,
    set_log_append_time,
    validate_batch,
)
from jackalope.storage.segment import ACK_RANGE, DELIVERED_FLAG, MAX_RELATIVE_OFFSET, Segment, segment_name
from jackalope.storage.settled import SettledOffsets
from jackalope.storage.transactions import (
    TXN_INDEX_SUFFIX,
    AbortedRanges,
    AbortedTxn,
    CommittedView,
    OpenTxn,
    ProducerState,
    TxnIndex,
    abort_entry,
    collect_aborted,
    encode_marker,
    replay_segments,
)

log = logging.getLogger(__name__)

DurableCallback = Callable[[BaseException | None], None]

CLEAN_SHUTDOWN: Final = "clean-shutdown"
START_OFFSET_FILE: Final = "log-start-offset"
RECOVERY_POINT_FILE: Final = "recovery-point"
PRODUCER_STATE_FILE: Final = "producer-state"
_MAX_RELATIVE_OFFSET: Final = MAX_RELATIVE_OFFSET


def now_ms() -> int:
    return int(time.time() * 1000)


class AppendInfo(NamedTuple):
    """Where an append landed: offsets ``base_offset..last_offset`` inclusive.

    ``duplicate`` is True when an idempotent producer's batch had been written before (a retry):
    nothing was written, and the offsets and timestamp are those of the original batch.
    """

    base_offset: int
    last_offset: int
    max_timestamp: int
    duplicate: bool = False


class FileSlice:
    """Stored batches as a range of a file: ``size`` bytes at ``position`` of ``fd``."""

    __slots__ = ("fd", "next_offset", "position", "size")

    def __init__(self, fd: int, position: int, size: int, next_offset: int) -> None:
        self.fd = fd
        self.position = position
        self.size = size
        self.next_offset = next_offset

    def __len__(self) -> int:
        return self.size

    def read(self) -> bytes:
        return os.pread(self.fd, self.size, self.position) if self.size else b""

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@dataclass(frozen=True, slots=True)
class ReadResult:
    """Whole record batches as stored, and the offset a follow-up read starts at."""

    data: bytes
    next_offset: int


class SyncJob:
    """The fsync work of one group commit, run on a worker thread.

    It syncs descriptors of its own (duplicates taken when the job was made), so a segment
    deleted or truncated away while the job runs is simply synced as it was, never confused
    with whatever file reuses its descriptor number."""

    def __init__(self, fds: list[int], directory: Path | None, target: int) -> None:
        self.fds = fds
        self.directory = directory
        self.target = target

    def run(self) -> None:
        try:
            for fd in self.fds:
                os.fdatasync(fd)
            if self.directory is not None:
                # FileNotFoundError: the log was deleted meanwhile, nothing is left to make durable
                with contextlib.suppress(FileNotFoundError):
                    fsync_dir(self.directory)
        finally:
            self.release()

    def release(self) -> None:
        """Close the job's descriptors (``run`` does; a job never run must be released)."""
        fds, self.fds = self.fds, []
        for fd in fds:
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
        self._flush_waiters: list[Callable[[], None]] = []
        self._settled = SettledOffsets()
        self._acks_pending: list[list[int]] = []  # [start, end] runs settled since the last flush
        self._delivered_pending: list[list[int]] = []  # [start, end] runs marked delivered, likewise
        self._delivered_before: list[tuple[int, int]] = []  # runs marked delivered before open
        self._dirty = False
        self._dir_dirty = False
        self._failed: StorageError | None = None
        self._closed = False
        self._producers = ProducerStateManager()
        self._compaction: CompactionJob | None = None
        self._cleaned_to = 0  # compaction: offsets below are free of duplicate keys
        self._tombstone_deadline: int | None = None  # compaction: when a kept tombstone expires

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
        for stray in [*directory.glob("*" + TMP_SUFFIX), *directory.glob("*" + CLEANED_SUFFIX)]:
            stray.unlink()
        swapped = _complete_swaps(directory)
        self._recovery_point = read_int(directory / RECOVERY_POINT_FILE, 0)
        bases = sorted(int(p.stem) for p in directory.glob("*.log") if p.stem.isdigit())
        rebuild: set[int] = set()  # segments whose transaction index is rebuilt
        for i, base in enumerate(bases):
            segment = Segment(directory, base, self.config.index_interval_bytes)
            is_last = i == len(bases) - 1
            next_base = bases[i + 1] if not is_last else None
            verify = base in swapped or (
                not clean and (is_last or (next_base is not None and next_base > self._recovery_point))
            )
            cut = segment.recover(verify)
            if verify or cut:
                rebuild.add(base)
            self._segments.append(segment)
            self._bases.append(base)
            if cut and not is_last:
                log.warning("%s: dropping segments after a torn segment at %d", directory, base)
                for later in bases[i + 1 :]:
                    Segment(directory, later, self.config.index_interval_bytes).delete()
                break
        for orphan in [
            *directory.glob("*.index"),
            *directory.glob("*.timeindex"),
            *directory.glob("*.txnindex"),
        ]:
            if orphan.stem.isdigit() and int(orphan.stem) not in self._bases:
                orphan.unlink()
        start = read_int(directory / START_OFFSET_FILE, 0)
        if not self._segments:
            self._add_segment(start)
        self._load_producer_state(rebuild)
        if start > self._segments[-1].next_offset:
            # Everything up to ``start`` was truncated away; continue numbering after it.
            self._roll(start)
        self._end = self._segments[-1].next_offset
        self._start = max(start, self._segments[0].base_offset)
        while len(self._segments) > 1 and self._segments[1].base_offset <= self._start:
            self._delete_oldest()
        self._flushed = self._durable = self._end
        self._load_settled()
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
            if self._compaction is not None:
                self._compaction.cancelled = True
        if self._failed is None:
            self._save_producer_state(self._end)
            (self.directory / CLEAN_SHUTDOWN).touch()
            fsync_dir(self.directory)

    def delete(self) -> None:
        """Close and remove the whole log from disk."""
        self._closed = True
        if self._compaction is not None:
            self._compaction.cancelled = True
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

    def append(
        self, records: Sequence[Record], *, timestamp: int | None = None, volatile: bool = False
    ) -> AppendInfo:
        """Append ``records`` as one batch; records without a timestamp get ``timestamp`` or now.

        ``volatile`` records need not survive a restart: they read as settled after the next
        open (and take no space once their segments are otherwise settled)."""
        self._check_writable()
        now = now_ms() if timestamp is None else timestamp
        base = self._end
        batch = encode_batch(records, base_offset=base, now_ms=now)
        if self.config.log_append_time:
            set_log_append_time(batch, now)
        max_ts = max_timestamp_of(batch)
        self._write(batch, base, base + len(records), max_ts, now)
        if volatile:
            self._acks_pending.append([base, base + len(records)])
        return AppendInfo(base, base + len(records) - 1, max_ts)

    def append_batches(self, data: bytearray, *, log_append_time: bool = False) -> AppendInfo:
        """Append already-encoded RecordBatch v2 bytes (as a Kafka producer sends them).

        Every batch is checked (magic, sizes, CRC, ``max_message_bytes``, and the producer
        sequence of idempotent batches) before anything is written; offsets are assigned in
        place, and the batches are stored exactly as given otherwise (but for the timestamp
        under ``log_append_time``, given here or in the config).

        A retried idempotent batch is not written again: the result is the original batch's
        :class:`AppendInfo` with ``duplicate=True`` (if a request holds several batches, the
        first duplicate answers for the request and nothing of it is written, as Kafka does).

        Transactional batches (which must have a producer id) open the producer's transaction
        on the log; control batches are refused (the broker writes them, :meth:`append_control`);
        both refusals are InvalidRecordError (Kafka's INVALID_RECORD).

        Raises CorruptRecordError, RecordTooLargeError, InvalidProducerEpochError,
        OutOfOrderSequenceError or InvalidTxnStateError (a non-transactional batch of a
        producer whose transaction is open), having written nothing.
        """
        self._check_writable()
        headers = []
        pos = 0
        max_bytes = self.config.max_message_bytes
        idempotent = False
        for pos_, header in iter_batches(data):
            validate_batch(data, pos_)
            if header.size > max_bytes:
                raise RecordTooLargeError(
                    f"record batch of {header.size} bytes exceeds max_message_bytes {max_bytes}"
                )
            if header.attributes & CONTROL:
                raise InvalidRecordError("Clients are not allowed to write control records")
            if header.producer_id >= 0:
                idempotent = True
            elif header.attributes & TRANSACTIONAL:
                raise InvalidRecordError("Transactional records must have a producer id")
            headers.append((pos_, header))
            pos = pos_ + header.size
        if not headers or pos != len(data):
            validate_batch(data, pos)  # raises CorruptRecordError describing the problem
        if idempotent:
            check = ProducerAppend(self._producers)
            for _, header in headers:
                if header.producer_id >= 0:
                    duplicate = check.check(header)
                    if duplicate is not None:
                        return AppendInfo(
                            duplicate.base_offset, duplicate.last_offset, duplicate.max_timestamp, True
                        )
        now = now_ms()
        log_append_time = log_append_time or self.config.log_append_time
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
            if idempotent and header.producer_id >= 0:
                seq = header.base_sequence
                self._producers.update(
                    header.producer_id,
                    header.producer_epoch,
                    seq,
                    increment_sequence(seq, header.last_offset_delta),
                    offset,
                    nxt - 1,
                    ts,
                    transactional=bool(header.attributes & TRANSACTIONAL),
                )
            offset = nxt
            max_ts = max(max_ts, ts)
        return AppendInfo(base, offset - 1, max_ts)

    def append_control(
        self,
        producer_id: int,
        producer_epoch: int,
        *,
        commit: bool,
        coordinator_epoch: int,
        timestamp: int | None = None,
    ) -> AppendInfo:
        """Write the COMMIT or ABORT marker of ``producer_id``'s transaction (a control batch)
        and end the transaction on this log; an abort is listed in the transaction index.
        A marker when no transaction is open is written all the same, as Kafka does.

        Raises InvalidProducerEpochError (an epoch older than the producer's) or
        TransactionCoordinatorFencedError (a coordinator epoch older than the last marker's)."""
        self._check_writable()
        if producer_id < 0 or producer_epoch < 0:
            raise CorruptRecordError("a transaction marker needs a producer id and epoch")
        self._producers.check_marker(producer_id, producer_epoch, coordinator_epoch)
        now = now_ms() if timestamp is None else timestamp
        base = self._end
        batch = encode_marker(
            producer_id,
            producer_epoch,
            commit=commit,
            coordinator_epoch=coordinator_epoch,
            base_offset=base,
            timestamp=now,
        )
        if self.config.log_append_time:
            set_log_append_time(batch, now)
        max_ts = max_timestamp_of(batch)
        self._write(batch, base, base + 1, max_ts, now)
        first = self._producers.end_txn(producer_id, producer_epoch, coordinator_epoch, base, max_ts)
        if not commit:
            self._segments[-1].txn_index.append(abort_entry(self._producers, producer_id, first, base))
        return AppendInfo(base, base, max_ts)

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
            self._mark_dirty()

    def _mark_dirty(self) -> None:
        """Something waits to be written: tell the manager, which flushes dirty logs."""
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
        segment.txn_index.create()
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
        segment = self._add_segment(base)
        self._save_producer_state(base)
        return segment

    # -- durability ----------------------------------------------------------------------------

    def flush(self) -> None:
        """Write buffered appends and settlements to the OS (under ``never`` that makes the
        appends durable); then call the :meth:`when_flushed` callbacks."""
        self._dirty = False
        try:
            if self._acks_pending or self._delivered_pending:
                self._write_acks()
            if self._flushed != self._end:
                try:
                    self._segments[-1].flush()
                except StorageError as exc:
                    self._tail_lost(exc)
                    raise
                self._flushed = self._end
                if self.config.durability is Durability.NEVER:
                    self._advance_durable(self._end)
        finally:
            if self._flush_waiters:
                waiters, self._flush_waiters = self._flush_waiters, []
                for callback in waiters:
                    callback()

    def begin_sync(self, *, acks: bool = False) -> SyncJob | None:
        """Flush, and describe the fsync that would make everything flushed durable.

        Settlements are synced along with appends, or on their own with ``acks`` (the
        manager does that on the ``fsync_interval_ms`` period, so that a consumer's acks do
        not cost an fsync each)."""
        self.flush()
        segments = self._segments
        want_acks = acks or self._durable < self._flushed
        if (
            self._durable >= self._flushed
            and not self._dir_dirty
            and not (want_acks and any(s.acks_need_sync for s in segments))
        ):
            return None
        fds = []
        for segment in segments:
            if segment.needs_sync:
                segment.needs_sync = False
                fds.append(os.dup(segment.fd))
            if segment.txn_index.needs_sync:
                segment.txn_index.needs_sync = False
                fds.append(os.dup(segment.txn_index.fd))
            if want_acks and segment.acks_need_sync:
                segment.acks_need_sync = False
                fds.append(os.dup(segment.acks_fd))
        directory = self.directory if self._dir_dirty else None
        self._dir_dirty = False
        return SyncJob(fds, directory, self._flushed)

    def end_sync(self, job: SyncJob, error: BaseException | None) -> None:
        """Record the outcome of ``job``: advance ``durable_offset`` or fail the log."""
        if error is not None:
            # After a failed fsync the page cache state is unknown: stop taking writes.
            self._failed = StorageError(f"fsync of {self.directory} failed: {error}")
            log.error("%s", self._failed)
            self._fail_waiters(self._failed, 0)
            return
        self._advance_durable(job.target)
        if not self._closed:  # not deleted while the job ran
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
        active.txn_index.truncate(self._end)
        self._load_producer_state(set())  # markers may be lost too: replay what is stored
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
        closed = self._segments[:-1]
        if point > self._recovery_point and all(not (s.needs_sync or s.txn_index.needs_sync) for s in closed):
            # Not fsynced: a recovery point lost to a power cut only means a longer open.
            write_int(self.directory / RECOVERY_POINT_FILE, point, durable=False)
            self._recovery_point = point

    def needs_sync(self) -> bool:
        """Whether a sync job would have work: appends not yet durable, or rolled segments to sync."""
        return self._end > self._durable or any(s.needs_sync for s in self._segments[:-1])

    def acks_need_sync(self) -> bool:
        """Whether settlements were written that are not yet synced."""
        return any(s.acks_need_sync for s in self._segments)

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

    def read_slice(self, offset: int, max_bytes: int = 1 << 20) -> FileSlice:
        """What :meth:`read` would return, as a range of a segment file instead of bytes.

        The slice holds a descriptor of its own (a ``dup`` of the segment's), so it stays
        readable, and ``os.sendfile`` can send it, even if retention deletes the segment
        meanwhile; the caller must :meth:`FileSlice.close` it.
        """
        if self._closed:
            raise LogClosedError(f"log {self.directory.name} is closed")
        if offset < self._start or offset > self._end:
            raise OffsetOutOfRangeError(offset, self._start, self._end)
        i = max(bisect_right(self._bases, offset) - 1, 0)
        while offset < self._end and i < len(self._segments):
            segment = self._segments[i]
            if i == len(self._segments) - 1:
                self._flush_active()
            found = segment.locate(offset, max_bytes)
            if found is not None:
                start, length, nxt = found
                return FileSlice(os.dup(segment.fd), start, length, nxt)
            i += 1  # offset fell in a gap at the end of a segment
        return FileSlice(-1, 0, 0, self._end if offset < self._end else offset)

    def read_records(
        self, offset: int, max_bytes: int = 1 << 20, *, committed_only: bool = False
    ) -> list[Record]:
        """Decoded records from ``offset`` on (CRC-checked), within about ``max_bytes``.

        Offsets compaction removed are skipped: the first record returned is the first that
        exists at or after ``offset``; the list is empty only at the end of the log.
        ``committed_only``: what a read_committed reader sees (see :meth:`committed_view`):
        nothing at or past the last stable offset (the list is empty there), no records of
        aborted transactions, no control batches.
        """
        return list(self.records(offset, max_bytes, committed_only=committed_only))

    def records(
        self, offset: int, max_bytes: int = 1 << 20, *, committed_only: bool = False
    ) -> Iterator[Record]:
        """:meth:`read_records`, decoded as they are taken (a reader that stops early does not
        pay for the rest of what was read)."""
        start = max(offset, self._start)
        limit = self._end
        view: CommittedView | None = None
        if committed_only:
            view = self.committed_view(offset)
            limit = view.last_stable_offset
            if offset >= limit:
                if offset > self._end or offset < self._start:
                    raise OffsetOutOfRangeError(offset, self._start, self._end)
                return
        while True:
            result = self.read(offset, max_bytes)
            found = False
            for pos, header in iter_batches(result.data):
                if view is not None:
                    if header.base_offset >= limit:
                        return
                    if not view.visible(header):
                        continue
                for record in decode_records(result.data, pos, start=start):
                    found = True
                    yield record
            if found or result.next_offset >= limit or result.next_offset <= offset:
                return
            offset = result.next_offset  # only emptied (compacted) or invisible batches were read

    # -- transactions --------------------------------------------------------------------------

    @property
    def first_unstable_offset(self) -> int | None:
        """The first offset of the earliest open transaction (not below the log start), or None."""
        unstable = self._producers.first_unstable_offset()
        return None if unstable is None else max(unstable, self._start)

    def last_stable_offset(self, high_watermark: int | None = None) -> int:
        """The first unstable offset, else the log end; at most ``high_watermark`` if given."""
        unstable = self.first_unstable_offset
        lso = self._end if unstable is None else unstable
        return lso if high_watermark is None else min(lso, high_watermark)

    def open_transactions(self) -> list[OpenTxn]:
        """The transactions open on the log, earliest first."""
        entries = self._producers.entries
        return sorted(
            (OpenTxn(pid, entries[pid].epoch, first) for pid, first in self._producers.ongoing.items()),
            key=lambda txn: txn.first_offset,
        )

    def aborted_transactions(self, start: int, end: int) -> list[AbortedTxn]:
        """The aborted transactions with records in ``start..end-1`` (what a Fetch response
        lists for read_committed consumers), in the order they were aborted."""
        if end <= start:
            return []
        i = max(bisect_right(self._bases, start) - 1, 0)
        return collect_aborted((s.txn_index for s in self._segments[i:]), start, end)

    def producer_states(self) -> list[ProducerState]:
        """What the log knows of each producer (Kafka's DescribeProducers), least recent first."""
        return [
            ProducerState(pid, e.epoch, e.last_seq, e.last_timestamp, e.coordinator_epoch, e.txn_first_offset)
            for pid, e in self._producers.entries.items()
        ]

    def committed_view(self, offset: int, end: int | None = None) -> CommittedView:
        """The read_committed view of ``offset`` up to the last stable offset (or ``end``, if
        less): which stored batches a reader of committed records takes (see
        :class:`~jackalope.storage.transactions.CommittedView`)."""
        lso = self.last_stable_offset(end)
        return CommittedView(lso, self.aborted_transactions(offset, lso))

    @property
    def max_timestamp(self) -> int:
        """The largest record timestamp in the log (-1 when empty)."""
        return max((s.max_timestamp for s in self._segments if s.size), default=-1)

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
        write_int(self.directory / START_OFFSET_FILE, offset)
        while len(self._segments) > 1 and self._segments[1].base_offset <= offset:
            self._delete_oldest()

    # -- settling ------------------------------------------------------------------------------

    @property
    def head(self) -> int:
        """The first offset that is neither settled nor below the start."""
        return max(self._settled.head, self._start)

    @property
    def settled_above_head(self) -> int:
        """How many offsets above ``head`` are settled (out of order)."""
        return self._settled.pending

    def is_settled(self, offset: int) -> bool:
        return offset < self._start or offset in self._settled

    def settle(self, offset: int) -> None:
        """Record that ``offset`` is consumed for good (any order).  Whole segments whose
        every offset is settled are deleted; see the module docstring for durability."""
        settled = self._settled
        if offset >= self._end or not settled.add(offset):
            return
        pending = self._acks_pending
        _add_offset(pending, offset)
        if not self._dirty:
            self._mark_dirty()
        if len(self._bases) > 1 and settled.head >= self._bases[1]:
            self._reclaim()

    def settle_range(self, start: int, end: int) -> None:
        """Settle ``start..end-1`` (one run in ``.acks``, however long)."""
        start = max(start, self.head)
        end = min(end, self._end)
        if start >= end:
            return
        self._settled.add_range(start, end)
        self._acks_pending.append([start, end])
        if not self._dirty:
            self._mark_dirty()
        if len(self._bases) > 1 and self._settled.head >= self._bases[1]:
            self._reclaim()

    def _reclaim(self) -> None:
        """Delete the oldest segments while every offset in them is settled (never the active)."""
        head = self._settled.head
        while len(self._segments) > 1 and self._segments[1].base_offset <= head:
            self._delete_oldest()
        self._dir_dirty = True

    def mark_delivered(self, offset: int) -> None:
        """Note that ``offset`` was handed to a consumer (reported after the next open by
        :meth:`delivered_before_open`); written with the next flush, like a settlement."""
        pending = self._delivered_pending
        _add_offset(pending, offset)
        if not self._dirty:
            self._mark_dirty()

    def delivered_before_open(self, offset: int) -> bool:
        """Whether ``offset`` had been marked delivered when the log was opened."""
        runs = self._delivered_before
        i = bisect_right(runs, (offset, 1 << 63)) - 1
        return i >= 0 and runs[i][0] <= offset < runs[i][1]

    def _write_acks(self) -> None:
        """Hand the settlements and delivery marks since the last flush to their segments'
        ``.acks``."""
        bases = self._bases
        out: dict[int, bytearray] = {}
        for runs, flag in ((self._acks_pending, 0), (self._delivered_pending, DELIVERED_FLAG)):
            for start, end in runs:
                start = max(start, bases[0])  # marks of deleted segments need no record
                while start < end:
                    i = bisect_right(bases, start) - 1
                    stop = min(end, bases[i + 1]) if i + 1 < len(bases) else end
                    out.setdefault(i, bytearray()).extend(ACK_RANGE.pack(start | flag, stop))
                    start = stop
        self._acks_pending = []
        self._delivered_pending = []
        for i, data in out.items():
            self._segments[i].write_acks(bytes(data))

    def _load_settled(self) -> None:
        """Rebuild the settled offsets and delivery marks from the segments' ``.acks`` (at open)."""
        settled_runs: list[tuple[int, int]] = []
        delivered: list[tuple[int, int]] = []
        for segment in self._segments:
            for start, end in segment.read_acks():
                if start & DELIVERED_FLAG:
                    delivered.append((start & ~DELIVERED_FLAG, end))
                else:
                    settled_runs.append((start, end))
        settled = self._settled = SettledOffsets(self._start)
        for start, end in sorted(settled_runs):
            settled.add_range(start, min(end, self._end))
        merged: list[tuple[int, int]] = []
        for start, end in sorted(delivered):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        self._delivered_before = merged
        if len(self._bases) > 1 and settled.head >= self._bases[1]:
            self._reclaim()

    def when_flushed(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after the next flush (appends and settlements in the OS)."""
        self._flush_waiters.append(callback)
        if not self._dirty:
            self._mark_dirty()

    def enforce_retention(self, now: int | None = None) -> int:
        """Delete whole segments past ``retention_ms`` or beyond ``retention_bytes``; return how many."""
        if self._closed or self._failed is not None or not self.config.delete:
            return 0
        now = now_ms() if now is None else now
        deleted = 0
        retention_ms = self.config.retention_ms
        if retention_ms >= 0:
            while self._expired(self._segments[0], now - retention_ms):
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

    # -- configuration -------------------------------------------------------------------------

    def reconfigure(self, config: LogConfig) -> None:
        """Apply a new configuration to the open log; it governs every later operation (rolling,
        retention, compaction, durability, append checks).  Saving it is the caller's business."""
        old = self.config
        self.config = config
        if config.index_interval_bytes != old.index_interval_bytes:
            for segment in self._segments:
                segment.index_interval_bytes = config.index_interval_bytes
        if config.durability is Durability.NEVER and old.durability is not Durability.NEVER:
            self._advance_durable(self._flushed)  # written to the OS is durable enough now
        if config.compact and not old.compact:
            self._cleaned_to = 0
        self._tombstone_deadline = None if not config.compact else 0  # rules may have changed

    # -- compaction ----------------------------------------------------------------------------

    def compact(self, now: int | None = None) -> CompactionResult:
        """Run one compaction inline (see :mod:`~jackalope.storage.compaction`); the manager
        runs it in the background, the work off the event loop, for logs with ``config.compact``."""
        job = self.begin_compaction(now)
        return CompactionResult() if job is None else self.compact_job(job)

    def compact_job(self, job: CompactionJob) -> CompactionResult:
        """Run a job from :meth:`begin_compaction` inline and commit it."""
        try:
            job.run()
        except (OSError, StorageError) as exc:
            self.end_compaction(job, exc)
            raise StorageError(f"compaction of {self.directory} failed: {exc}") from exc
        return self.end_compaction(job)

    def begin_compaction(self, now: int | None = None) -> CompactionJob | None:
        """Plan a compaction, or None when there is nothing to do (or one is running).

        Compaction runs when closed segments old enough to clean (``min_compaction_lag_ms``)
        appeared since the last run, or when a tombstone it kept has expired.  The job holds
        duplicated descriptors: retention may delete segments while it runs.
        """
        if self._closed or self._failed is not None or self._compaction is not None:
            return None
        now = now_ms() if now is None else now
        horizon = now - self.config.min_compaction_lag_ms
        closed = self._segments[:-1]
        unstable = self.first_unstable_offset  # nothing is cleaned from an open transaction on
        n = 0
        while (
            n < len(closed)
            and closed[n].max_timestamp <= horizon
            and (unstable is None or closed[n].next_offset <= unstable)
        ):
            n += 1
        if n == 0:
            return None
        clean_end = self._segments[n].base_offset
        deadline = self._tombstone_deadline
        if clean_end <= self._cleaned_to and (deadline is None or now < deadline):
            return None
        self._flush_active()
        views: dict[int, SegmentView] = {}

        def view(i: int) -> SegmentView:
            if i not in views:
                segment = self._segments[i]
                fd = os.dup(segment.fd)
                views[i] = SegmentView(
                    segment,
                    segment.base_offset,
                    segment.next_offset,
                    fd,
                    segment.size,
                    os.fstat(fd).st_mtime_ns // 1_000_000,
                )
            return views[i]

        groups: list[list[SegmentView]] = []
        size = 0
        for i in range(n):
            v = view(i)
            if (
                not groups
                or size + v.size > self.config.segment_bytes
                or v.next_offset - groups[-1][0].base_offset > _MAX_RELATIVE_OFFSET
            ):
                groups.append([])
                size = 0
            groups[-1].append(v)
            size += v.size
        dirty = [
            view(i)
            for i, segment in enumerate(self._segments)
            if i == len(self._segments) - 1 or self._segments[i + 1].base_offset > self._cleaned_to
        ]
        self._compaction = CompactionJob(
            directory=self.directory,
            groups=groups,
            dirty=dirty,
            now=now,
            delete_retention_ms=self.config.delete_retention_ms,
            producer_last_batches=self._producers.last_batch_offsets(),
            clean_end=clean_end,
            map_end=unstable,
            aborted=AbortedRanges(self.aborted_transactions(self._start, self._end)),
        )
        return self._compaction

    def end_compaction(self, job: CompactionJob, error: BaseException | None = None) -> CompactionResult:
        """Swap in what ``job`` wrote (crash-safe), or discard it after an ``error``.

        A group whose segments are no longer all in the log (retention deleted some meanwhile)
        is discarded.  A failure while swapping fails the log, as its files and its memory may
        disagree until it is reopened (which completes or undoes the swap).
        """
        result = CompactionResult()
        try:
            if error is not None or job.cancelled or self._closed or self._failed is not None:
                return result
            complete = True
            for out in job.outputs:
                olds = [v.segment for v in out.segments]
                i = next((k for k, s in enumerate(self._segments) if s is olds[0]), -1)
                if i < 0 or self._segments[i : i + len(olds)] != olds or i + len(olds) >= len(self._segments):
                    complete = False
                    continue
                try:
                    self._swap_in(i, olds, out.path, keep_empty=i == 0)
                except OSError as exc:
                    self._failed = StorageError(f"compaction swap in {self.directory} failed: {exc}")
                    log.error("%s", self._failed)
                    self._fail_waiters(self._failed, 0)
                    raise self._failed from exc
                out.path = Path()  # committed: not the job's to delete any more
                result.segments_cleaned += len(olds)
                result.records_removed += out.records_removed
                result.bytes_before += out.bytes_before
                result.bytes_after += out.bytes_after
            if complete:
                self._cleaned_to = max(self._cleaned_to, job.clean_end)
                self._tombstone_deadline = job.tombstone_deadline
            return result
        finally:
            self._compaction = None
            job.outputs = [out for out in job.outputs if out.path != Path()]
            job.discard()

    def _swap_in(self, i: int, olds: list[Segment], cleaned: Path, *, keep_empty: bool) -> None:
        """Replace ``olds`` (``self._segments[i:]``) with the segment written to ``cleaned``."""
        first = olds[0].base_offset
        directory = self.directory
        if cleaned.stat().st_size == 0 and not keep_empty:
            # Nothing left: drop the segments (each deletion leaves a valid log behind).
            cleaned.unlink()
            for segment in olds:
                segment.delete()
            del self._segments[i : i + len(olds)]
            del self._bases[i : i + len(olds)]
            self._dir_dirty = True
            return
        swap = directory / f"{segment_name(first)}-{segment_name(olds[-1].base_offset)}{SWAP_SUFFIX}"
        aborted = [e for old in olds for e in old.txn_index.entries]  # markers are kept
        os.replace(cleaned, swap)
        fsync_dir(directory)  # the commit point: from here on, a reopen completes the swap
        for segment in olds:
            segment.delete()
        # before the segment appears: a reopen rebuilds the index of a swap it completes
        TxnIndex(directory / (segment_name(first) + TXN_INDEX_SUFFIX)).rewrite(aborted)
        os.replace(swap, directory / (segment_name(first) + ".log"))
        fsync_dir(directory)
        segment = Segment(directory, first, self.config.index_interval_bytes)
        segment.recover(verify=True)
        segment.txn_index.entries = aborted
        self._segments[i : i + len(olds)] = [segment]
        self._bases[i : i + len(olds)] = [first]

    # -- producer state ------------------------------------------------------------------------

    def _load_producer_state(self, rebuild: set[int]) -> None:
        """The latest snapshot (if it is whole and not past the end), then the batches after it;
        the transaction indexes of the segments in ``rebuild`` (and of those whose file is
        missing or damaged) rebuilt on the way (see :func:`transactions.replay_segments`)."""
        try:
            raw: bytes | None = (self.directory / PRODUCER_STATE_FILE).read_bytes()
        except FileNotFoundError:
            raw = None
        snapshot = decode_snapshot_version(raw) if raw is not None else None
        if snapshot is not None and snapshot[1] > self._segments[-1].next_offset:
            snapshot = None  # past the end: the tail it covered was lost
        self._producers = replay_segments(self._segments, snapshot, rebuild)

    def _save_producer_state(self, offset: int) -> None:
        """Snapshot the state, which covers every batch below ``offset`` (not fsynced: a torn or
        lost snapshot only means a longer scan on open)."""
        try:
            atomic_write(
                self.directory / PRODUCER_STATE_FILE, encode_snapshot(self._producers, offset), durable=False
            )
        except OSError as exc:
            log.warning("%s: cannot save the producer state: %s", self.directory, exc)

    def _expired(self, segment: Segment, horizon: int) -> bool:
        if not segment.size:  # the empty active segment stays; one compaction emptied goes
            return len(self._segments) > 1
        return segment.max_timestamp < horizon

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


def _complete_swaps(directory: Path) -> set[int]:
    """Finish compaction swaps a crash interrupted after their commit point; return the bases
    of the segments they produced (to be verified: their indexes may be stale)."""
    done: set[int] = set()
    for swap in sorted(directory.glob("*" + SWAP_SUFFIX)):
        bounds = parse_swap_name(swap)
        if bounds is None:
            continue
        first, last = bounds
        for path in directory.iterdir():
            is_segment_file = (
                path.suffix in (".log", ".index", ".timeindex", TXN_INDEX_SUFFIX) and path.stem.isdigit()
            )
            if is_segment_file and first <= int(path.stem) <= last:
                path.unlink()
        os.replace(swap, directory / (segment_name(first) + ".log"))
        done.add(first)
    if done:
        fsync_dir(directory)
    return done


def _add_offset(runs: list[list[int]], offset: int) -> None:
    """Add ``offset`` to ``runs`` of ``[start, end)``, extending the last run when it is next."""
    if runs and runs[-1][1] == offset:
        runs[-1][1] = offset + 1
    else:
        runs.append([offset, offset + 1])
