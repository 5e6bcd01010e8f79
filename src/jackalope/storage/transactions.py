"""Kafka transactions (KIP-98) in the storage engine: markers, the transaction index, visibility.

A transactional producer's batches carry attribute bit ``TRANSACTIONAL``; its transaction on a
log opens at the first such batch and ends with a *control batch* the coordinator has the log
write (:meth:`Log.append_control`): attributes ``TRANSACTIONAL | CONTROL``, the producer's id
and epoch, no sequence, one record whose key is ``int16 version 0, int16 type`` (0 ABORT,
1 COMMIT) and whose value is ``int16 version 0, int32 coordinator epoch`` (Kafka's
``EndTransactionMarker``).

The *first unstable offset* is the first offset of the earliest open transaction; the *last
stable offset* (LSO) is that, or the log end when none is open.  A read_committed reader
stops at the LSO and skips the batches of aborted transactions and every control batch.

Aborted transactions are listed in each segment's ``.txnindex`` (the segment holding the ABORT
marker), as Kafka's ``TransactionIndex``: 34-byte big-endian entries ``version int16 (0),
producer id int64, first offset int64, last offset int64 (the marker's), last stable offset
int64`` (the LSO just after the abort).  A file exists for every segment (empty when nothing
was aborted in it); it is appended to with the marker, fsynced with the segment, and rebuilt
from the segment's batches at open when it is missing or damaged, or when the segment was
recovered (an unclean shutdown past the recovery point).
"""

from __future__ import annotations

import contextlib
import os
import struct
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, NamedTuple

from jackalope.storage.errors import CorruptRecordError
from jackalope.storage.files import atomic_write
from jackalope.storage.producers import ProducerStateManager
from jackalope.storage.records import (
    CONTROL,
    TRANSACTIONAL,
    BatchHeader,
    Record,
    decode_records,
    encode_batch,
)

if TYPE_CHECKING:
    from jackalope.storage.segment import Segment

TXN_INDEX_SUFFIX: Final = ".txnindex"
ABORT: Final = 0
COMMIT: Final = 1

_ENTRY: Final = struct.Struct(">hqqqq")  # version, producer id, first, last, last stable offset
_MARKER_KEY: Final = struct.Struct(">hh")  # version, type
_MARKER_VALUE: Final = struct.Struct(">hi")  # version, coordinator epoch


class AbortedTxn(NamedTuple):
    """An aborted transaction: its records are ``producer_id``'s in ``first_offset..last_offset``
    (``last_offset`` is the ABORT marker's)."""

    producer_id: int
    first_offset: int
    last_offset: int


class OpenTxn(NamedTuple):
    """A transaction open on the log, from ``first_offset`` on."""

    producer_id: int
    producer_epoch: int
    first_offset: int


class ProducerState(NamedTuple):
    """What the log knows of one producer (Kafka's DescribeProducers)."""

    producer_id: int
    producer_epoch: int
    last_sequence: int
    last_timestamp: int
    coordinator_epoch: int
    current_txn_start_offset: int  # -1: no open transaction


class TxnIndexEntry(NamedTuple):
    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int


# -- control batches -----------------------------------------------------------------------------


def encode_marker(
    producer_id: int,
    producer_epoch: int,
    *,
    commit: bool,
    coordinator_epoch: int,
    base_offset: int,
    timestamp: int,
) -> bytearray:
    """The control batch of an end-transaction marker."""
    record = Record(
        _MARKER_VALUE.pack(0, coordinator_epoch),
        _MARKER_KEY.pack(0, COMMIT if commit else ABORT),
        timestamp=timestamp,
    )
    return encode_batch(
        [record],
        base_offset=base_offset,
        now_ms=timestamp,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        attributes=TRANSACTIONAL | CONTROL,
    )


def decode_marker(batch: bytes | bytearray | memoryview) -> tuple[bool, int] | None:
    """``(commit, coordinator epoch)`` of the control batch ``batch``, or None when it holds no
    end-transaction marker (an emptied batch, or another control type)."""
    try:
        records = list(decode_records(batch, verify=False))
    except CorruptRecordError:
        return None
    if not records or records[0].key is None or len(records[0].key) < _MARKER_KEY.size:
        return None
    _, kind = _MARKER_KEY.unpack_from(records[0].key)
    if kind not in (ABORT, COMMIT):
        return None
    value = records[0].value or b""
    epoch = _MARKER_VALUE.unpack_from(value)[1] if len(value) >= _MARKER_VALUE.size else -1
    return kind == COMMIT, epoch


def is_control(header: BatchHeader) -> bool:
    return bool(header.attributes & CONTROL)


def is_transactional(header: BatchHeader) -> bool:
    return bool(header.attributes & TRANSACTIONAL)


# -- the transaction index -----------------------------------------------------------------------


class TxnIndex:
    """One segment's ``.txnindex``: its aborted transactions, in marker order, in memory and
    appended to the file (opened lazily)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: list[TxnIndexEntry] = []
        self.fd = -1
        self.needs_sync = False

    def create(self) -> None:
        """Create the empty file of a new segment."""
        with contextlib.suppress(FileExistsError):
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))

    def load(self) -> bool:
        """Read the file; False if it is missing or damaged (then it must be rebuilt)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return False
        if len(data) % _ENTRY.size:
            return False
        entries = []
        for pos in range(0, len(data), _ENTRY.size):
            version, *fields = _ENTRY.unpack_from(data, pos)
            entry = TxnIndexEntry(*fields)
            if (
                version != 0
                or not 0 <= entry.first_offset <= entry.last_offset
                or entry.last_stable_offset < 0
            ):
                return False
            entries.append(entry)
        self.entries = entries
        return True

    def append(self, entry: TxnIndexEntry) -> None:
        """Add an entry (to the OS at once; fsynced by the next sync of the log)."""
        if self.fd < 0:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        view = memoryview(_ENTRY.pack(0, *entry))
        while view:
            view = view[os.write(self.fd, view) :]
        self.entries.append(entry)
        self.needs_sync = True

    def rewrite(self, entries: list[TxnIndexEntry], *, durable: bool = True) -> None:
        """Replace the file with ``entries`` (a rebuild, a truncation, a compaction)."""
        self.close()
        atomic_write(self.path, b"".join(_ENTRY.pack(0, *e) for e in entries), durable=durable)
        self.entries = list(entries)

    def truncate(self, end_offset: int) -> None:
        """Forget entries whose marker is at or after ``end_offset`` (lost with the tail)."""
        kept = [e for e in self.entries if e.last_offset < end_offset]
        if len(kept) != len(self.entries):
            self.rewrite(kept)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.needs_sync = False

    def delete(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def collect_aborted(indexes: Iterable[TxnIndex], start: int, end: int) -> list[AbortedTxn]:
    """Aborted transactions overlapping ``start..end-1``, from the indexes of the segments from
    the one holding ``start`` on (a transaction's entry sits with its marker, at or after its
    records), in marker order."""
    out: list[AbortedTxn] = []
    for index in indexes:
        for e in index.entries:
            if e.last_offset >= start and e.first_offset < end:
                out.append(AbortedTxn(e.producer_id, e.first_offset, e.last_offset))
            if e.last_stable_offset >= end:
                return out  # nothing that completes later began below ``end``
    return out


class AbortedRanges:
    """Lookup of whether a producer's batch at an offset belongs to an aborted transaction."""

    def __init__(self, aborted: Iterable[AbortedTxn]) -> None:
        ranges: dict[int, list[tuple[int, int]]] = {}
        for txn in aborted:
            ranges.setdefault(txn.producer_id, []).append((txn.first_offset, txn.last_offset))
        for runs in ranges.values():
            runs.sort()
        self._ranges = ranges

    def __bool__(self) -> bool:
        return bool(self._ranges)

    def aborted(self, header: BatchHeader) -> bool:
        """Whether ``header``'s data batch is one of an aborted transaction."""
        if not header.attributes & TRANSACTIONAL:
            return False
        runs = self._ranges.get(header.producer_id)
        if not runs:
            return False
        i = bisect_right(runs, (header.base_offset, 1 << 63)) - 1
        return i >= 0 and runs[i][0] <= header.base_offset <= runs[i][1]


class CommittedView:
    """Which stored batches a read_committed reader sees: below the last stable offset, not
    control batches, not of aborted transactions."""

    def __init__(self, last_stable_offset: int, aborted: Iterable[AbortedTxn]) -> None:
        self.last_stable_offset = last_stable_offset
        self.aborted = AbortedRanges(aborted)

    def visible(self, header: BatchHeader) -> bool:
        """Whether the batch's records are to be read (call only below the LSO)."""
        return not header.attributes & CONTROL and not self.aborted.aborted(header)


# -- recovery --------------------------------------------------------------------------------------


def abort_entry(state: ProducerStateManager, producer_id: int, first: int, last: int) -> TxnIndexEntry:
    """The index entry of the transaction aborted by the marker at ``last`` (whose end ``state``
    has recorded): its last stable offset is the first unstable offset left, if any."""
    unstable = state.first_unstable_offset()
    return TxnIndexEntry(producer_id, first, last, last + 1 if unstable is None else unstable)


def replay_segments(
    segments: Sequence[Segment],
    snapshot: tuple[int, int, ProducerStateManager] | None,
    rebuild: set[int],
) -> ProducerStateManager:
    """The producer state at the end of ``segments`` (of a log being opened): ``snapshot``
    (``(format, offset, state)``) plus the batches after it; on the way, the transaction
    index of every segment whose base is in ``rebuild``, or whose file is missing or damaged,
    is rebuilt from its markers.

    A rebuild needs the open transactions at the segment's start: the replay starts at the
    snapshot when it is not past the first segment to rebuild, else at the first segment (and
    the producers only the snapshot knows are kept).  A format-1 snapshot was written before
    transactions existed: missing index files are then created empty, not rebuilt."""
    for segment in segments:
        if segment.base_offset not in rebuild and not segment.txn_index.load():
            if snapshot is not None and snapshot[0] == 1:
                segment.txn_index.create()
            else:
                rebuild.add(segment.base_offset)
    offset = 0
    state = ProducerStateManager()
    older: ProducerStateManager | None = None
    if snapshot is not None:
        if not rebuild or snapshot[1] <= min(rebuild):
            offset, state = snapshot[1], snapshot[2]
        else:
            older = snapshot[2]
    for segment in segments:
        entries: list[TxnIndexEntry] | None = [] if segment.base_offset in rebuild else None
        if segment.next_offset > offset and segment.size:
            position = segment.index.lookup(offset) if offset > segment.base_offset else 0
            for pos, header in segment.headers_from(position):
                if header.base_offset < offset:
                    continue
                if not header.attributes & CONTROL:
                    state.replay(header)
                    continue
                marker = decode_marker(segment.pread(pos, header.size)) if header.producer_id >= 0 else None
                if marker is None:
                    continue  # emptied, or not a transaction marker
                commit, coordinator_epoch = marker
                pid = header.producer_id
                first = state.end_txn(
                    pid, header.producer_epoch, coordinator_epoch, header.base_offset, header.max_timestamp
                )
                if entries is not None and not commit:
                    entries.append(abort_entry(state, pid, first, header.base_offset))
        if entries is not None:
            segment.txn_index.rewrite(entries)
    if older is not None:
        for pid, entry in older.entries.items():
            if pid not in state.entries:
                state.entries[pid] = entry
                if entry.txn_first_offset >= 0:
                    state.ongoing[pid] = entry.txn_first_offset
    return state
