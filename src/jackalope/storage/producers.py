"""Idempotent-producer state of one log: Kafka's ``ProducerStateManager``, much simplified.

A RecordBatch v2 carries ``producerId``, ``producerEpoch`` and ``baseSequence``; an idempotent
producer numbers its records 0, 1, 2, ... per log and retries a batch with the same numbers.
For each producer id the log remembers the epoch and the last :data:`BATCHES_KEPT` batches
(their sequence range and where they landed), which is enough to

* recognise a retried batch (same epoch and sequence range as a remembered one): a *duplicate*,
  answered with the original offsets and not written again;
* refuse a fenced producer (an epoch older than the known one): :class:`InvalidProducerEpochError`;
* refuse a gap (a batch that does not continue the sequence): :class:`OutOfOrderSequenceError`.

An unknown producer id is accepted whatever its sequence (its state may have gone with
retention).  At most :data:`MAX_PRODUCERS` ids are kept; the least recently written is
forgotten first.  The state lives in memory, is snapshotted to a file at each segment roll and
at close (:func:`encode_snapshot`), and is rebuilt on open from the latest valid snapshot plus the
batch headers after it (:meth:`ProducerStateManager.replay`).

Transactions (KIP-98): a producer's transactional batch opens its transaction on the log (at
the batch's first offset) unless one is open; the COMMIT or ABORT marker the coordinator writes
(:meth:`ProducerStateManager.end_txn`) closes it.  Each entry also keeps the epoch of the
coordinator that wrote its last marker and the timestamp of its last write; the snapshot
(format 2) keeps them with the open transaction.  Format-1 snapshots still load.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import Final, NamedTuple

from crc32c import crc32c

from jackalope.storage.errors import (
    CorruptRecordError,
    InvalidProducerEpochError,
    InvalidTxnStateError,
    OutOfOrderSequenceError,
    TransactionCoordinatorFencedError,
)
from jackalope.storage.records import TRANSACTIONAL, BatchHeader

BATCHES_KEPT: Final = 5
MAX_PRODUCERS: Final = 100_000
MAX_SEQUENCE: Final = (1 << 31) - 1

_SNAPSHOT_MAGIC_V1: Final = b"JKPS0001"
_SNAPSHOT_MAGIC: Final = b"JKPS0002"
_SNAPSHOT_HEAD: Final = struct.Struct(">8sqI")  # magic, offset covered, producer count
_ENTRY_V1: Final = struct.Struct(">qhB")  # producer id, epoch, batch count
# producer id, epoch, coordinator epoch, open transaction's first offset (-1: none),
# last timestamp, batch count
_ENTRY: Final = struct.Struct(">qhiqqB")
_BATCH: Final = struct.Struct(">iiqqq")  # first seq, last seq, base offset, last offset, max timestamp
_CRC: Final = struct.Struct(">I")


def increment_sequence(sequence: int, increment: int) -> int:
    """``sequence + increment`` on Kafka's sequence ring: after 2**31-1 comes 0."""
    return (sequence + increment) % (MAX_SEQUENCE + 1)


def in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == MAX_SEQUENCE)


class BatchMetadata(NamedTuple):
    """One remembered batch of a producer: its sequence range and where it was written."""

    first_seq: int
    last_seq: int
    base_offset: int
    last_offset: int
    max_timestamp: int


class ProducerEntry:
    """What the log knows of one producer id."""

    __slots__ = ("batches", "coordinator_epoch", "epoch", "last_timestamp", "txn_first_offset")

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.batches: deque[BatchMetadata] = deque(maxlen=BATCHES_KEPT)
        self.coordinator_epoch = -1
        self.txn_first_offset = -1  # first offset of the open transaction, -1: none
        self.last_timestamp = -1

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1

    def find_duplicate(self, epoch: int, first_seq: int, last_seq: int) -> BatchMetadata | None:
        if epoch != self.epoch:
            return None
        for batch in self.batches:
            if batch.first_seq == first_seq and batch.last_seq == last_seq:
                return batch
        return None


class ProducerStateManager:
    """Per producer id: epoch and last batches, most recently written last; and the open
    transactions (``ongoing``: producer id -> first offset)."""

    def __init__(self, max_producers: int = MAX_PRODUCERS) -> None:
        self.max_producers = max_producers
        self.entries: dict[int, ProducerEntry] = {}
        self.ongoing: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, producer_id: int) -> ProducerEntry | None:
        return self.entries.get(producer_id)

    def _entry(self, producer_id: int, epoch: int) -> ProducerEntry:
        """The entry to update for a write of ``epoch``, moved to the recent end (a newer epoch
        starts fresh batches, keeping the open transaction and the coordinator epoch)."""
        entry = self.entries.pop(producer_id, None)
        if entry is None or entry.epoch != epoch:
            fresh = ProducerEntry(epoch)
            if entry is not None:
                fresh.coordinator_epoch = entry.coordinator_epoch
                fresh.txn_first_offset = entry.txn_first_offset
                fresh.last_timestamp = entry.last_timestamp
            entry = fresh
        self.entries[producer_id] = entry  # re-inserted: dict order is recency order
        if len(self.entries) > self.max_producers:
            self._evict()
        return entry

    def _evict(self) -> None:
        """Forget the least recently written producer without an open transaction."""
        for pid, entry in self.entries.items():
            if entry.txn_first_offset < 0:
                del self.entries[pid]
                return

    def update(
        self,
        producer_id: int,
        epoch: int,
        first_seq: int,
        last_seq: int,
        base: int,
        last: int,
        max_ts: int,
        *,
        transactional: bool = False,
    ) -> None:
        """Record a batch that was written (a transactional one opens the producer's
        transaction at ``base`` unless one is open)."""
        entry = self._entry(producer_id, epoch)
        entry.batches.append(BatchMetadata(first_seq, last_seq, base, last, max_ts))
        entry.last_timestamp = max_ts
        if transactional and entry.txn_first_offset < 0:
            entry.txn_first_offset = base
            self.ongoing[producer_id] = base

    def check_marker(self, producer_id: int, epoch: int, coordinator_epoch: int) -> None:
        """Raise if a marker of ``epoch`` from a coordinator of ``coordinator_epoch`` is fenced."""
        entry = self.entries.get(producer_id)
        if entry is None:
            return
        if epoch < entry.epoch:
            raise InvalidProducerEpochError(
                f"producer {producer_id}: marker epoch {epoch} is older than the current epoch {entry.epoch}"
            )
        if coordinator_epoch < entry.coordinator_epoch:
            raise TransactionCoordinatorFencedError(
                f"producer {producer_id}: coordinator epoch {coordinator_epoch} is older than "
                f"{entry.coordinator_epoch}"
            )

    def end_txn(
        self, producer_id: int, epoch: int, coordinator_epoch: int, offset: int, timestamp: int
    ) -> int:
        """Record the marker written at ``offset``; return the first offset of the transaction it
        ends (``offset`` itself when none was open, as Kafka counts it)."""
        entry = self._entry(producer_id, epoch)
        first = entry.txn_first_offset if entry.txn_first_offset >= 0 else offset
        entry.txn_first_offset = -1
        entry.coordinator_epoch = coordinator_epoch
        entry.last_timestamp = timestamp
        self.ongoing.pop(producer_id, None)
        return first

    def first_unstable_offset(self) -> int | None:
        """The first offset of the earliest open transaction, or None."""
        return min(self.ongoing.values()) if self.ongoing else None

    def replay(self, header: BatchHeader) -> None:
        """Rebuild from a stored data batch header (no checks: the log accepted it once);
        markers go to :meth:`end_txn`."""
        if header.producer_id < 0:
            return
        transactional = bool(header.attributes & TRANSACTIONAL)
        if header.base_sequence < 0:
            if transactional:  # not written by a producer: compaction emptied it, say
                self._entry(header.producer_id, header.producer_epoch)
            return
        self.update(
            header.producer_id,
            header.producer_epoch,
            header.base_sequence,
            increment_sequence(header.base_sequence, header.last_offset_delta),
            header.base_offset,
            header.last_offset,
            header.max_timestamp,
            transactional=transactional,
        )

    def truncate(self, end_offset: int) -> None:
        """Forget batches at or after ``end_offset`` (their bytes were lost); a producer left with
        none is forgotten entirely, so its retry is accepted whatever its sequence."""
        for producer_id, entry in list(self.entries.items()):
            batches = entry.batches
            while batches and batches[-1].last_offset >= end_offset:
                batches.pop()
            if entry.txn_first_offset >= end_offset:
                entry.txn_first_offset = -1
                self.ongoing.pop(producer_id, None)
            if not batches and entry.txn_first_offset < 0:
                del self.entries[producer_id]

    def last_batch_offsets(self) -> dict[int, int]:
        """Base offset of each known producer's last batch (compaction keeps that batch)."""
        return {pid: e.batches[-1].base_offset for pid, e in self.entries.items() if e.batches}


class ProducerAppend:
    """Checks the idempotent batches of one append request before anything is written.

    Batches of one request are checked against the stored state and the batches before them in
    the same request (``check`` is called in order).
    """

    __slots__ = ("_pending", "_txn", "state")

    def __init__(self, state: ProducerStateManager) -> None:
        self.state = state
        self._pending: dict[int, tuple[int, int]] = {}  # producer id -> (epoch, last seq)
        self._txn: dict[int, bool] = {}  # producer id -> transaction open after the pending batches

    def check(self, header: BatchHeader) -> BatchMetadata | None:
        """Validate one batch; return the original batch if it is a duplicate, else None.

        Raises :class:`InvalidProducerEpochError`, :class:`OutOfOrderSequenceError` or
        :class:`InvalidTxnStateError` (a non-transactional batch while the producer's
        transaction is open).
        """
        duplicate = self._check_sequence(header)
        if duplicate is None:
            pid = header.producer_id
            open_txn = self._txn.get(pid)
            if open_txn is None:
                entry = self.state.entries.get(pid)
                open_txn = entry is not None and entry.txn_first_offset >= 0
            transactional = bool(header.attributes & TRANSACTIONAL)
            if open_txn and not transactional:
                raise InvalidTxnStateError(
                    f"producer {pid} wrote a non-transactional batch while its transaction is open"
                )
            self._txn[pid] = open_txn or transactional
        return duplicate

    def _check_sequence(self, header: BatchHeader) -> BatchMetadata | None:
        pid = header.producer_id
        epoch = header.producer_epoch
        first_seq = header.base_sequence
        if first_seq < 0:
            raise CorruptRecordError(f"invalid sequence number {first_seq} in a batch of producer {pid}")
        last_seq = increment_sequence(first_seq, header.last_offset_delta)
        pending = self._pending.get(pid)
        if pending is not None:
            known_epoch, known_last = pending
        else:
            entry = self.state.entries.get(pid)
            if entry is None:
                self._pending[pid] = (epoch, last_seq)
                return None
            duplicate = entry.find_duplicate(epoch, first_seq, last_seq)
            if duplicate is not None:
                return duplicate
            known_epoch, known_last = entry.epoch, entry.last_seq
        if epoch < known_epoch:
            raise InvalidProducerEpochError(
                f"producer {pid} has epoch {epoch}, older than the current epoch {known_epoch}"
            )
        if epoch > known_epoch:
            if first_seq != 0:
                raise OutOfOrderSequenceError(
                    f"producer {pid}: the first batch of new epoch {epoch} has sequence {first_seq}, not 0"
                )
        elif not in_sequence(known_last, first_seq):
            raise OutOfOrderSequenceError(
                f"producer {pid} epoch {epoch}: sequence {first_seq} does not follow {known_last}"
            )
        self._pending[pid] = (epoch, last_seq)
        return None


# -- snapshots ---------------------------------------------------------------------------------


def encode_snapshot(state: ProducerStateManager, offset: int) -> bytes:
    """The state as it is with every batch below ``offset`` applied, with a trailing CRC-32C."""
    parts = [_SNAPSHOT_HEAD.pack(_SNAPSHOT_MAGIC, offset, len(state.entries))]
    for pid, entry in state.entries.items():
        parts.append(
            _ENTRY.pack(
                pid,
                entry.epoch,
                entry.coordinator_epoch,
                entry.txn_first_offset,
                entry.last_timestamp,
                len(entry.batches),
            )
        )
        parts.extend(_BATCH.pack(*b) for b in entry.batches)
    body = b"".join(parts)
    return body + _CRC.pack(crc32c(body))


def decode_snapshot(
    raw: bytes, max_producers: int = MAX_PRODUCERS
) -> tuple[int, ProducerStateManager] | None:
    """``(offset, state)`` from :func:`encode_snapshot` bytes (format 2, or 1 as written before
    transactions), or None if they are damaged."""
    decoded = decode_snapshot_version(raw, max_producers)
    return None if decoded is None else decoded[1:]


def decode_snapshot_version(
    raw: bytes, max_producers: int = MAX_PRODUCERS
) -> tuple[int, int, ProducerStateManager] | None:
    """``(format version, offset, state)``, or None if the bytes are damaged."""
    if len(raw) < _SNAPSHOT_HEAD.size + _CRC.size:
        return None
    body = raw[: -_CRC.size]
    if crc32c(body) != _CRC.unpack_from(raw, len(body))[0]:
        return None
    magic, offset, count = _SNAPSHOT_HEAD.unpack_from(body, 0)
    if magic not in (_SNAPSHOT_MAGIC, _SNAPSHOT_MAGIC_V1):
        return None
    version = 2 if magic == _SNAPSHOT_MAGIC else 1
    state = ProducerStateManager(max_producers)
    pos = _SNAPSHOT_HEAD.size
    try:
        for _ in range(count):
            if version == 2:
                pid, epoch, coordinator_epoch, txn_first, last_ts, n = _ENTRY.unpack_from(body, pos)
                pos += _ENTRY.size
            else:
                pid, epoch, n = _ENTRY_V1.unpack_from(body, pos)
                pos += _ENTRY_V1.size
                coordinator_epoch, txn_first, last_ts = -1, -1, -1
            entry = ProducerEntry(epoch)
            entry.coordinator_epoch = coordinator_epoch
            entry.txn_first_offset = txn_first
            if txn_first >= 0:
                state.ongoing[pid] = txn_first
            for _ in range(n):
                entry.batches.append(BatchMetadata(*_BATCH.unpack_from(body, pos)))
                pos += _BATCH.size
            entry.last_timestamp = max(last_ts, entry.batches[-1].max_timestamp if entry.batches else -1)
            state.entries[pid] = entry
    except struct.error:
        return None
    if pos != len(body):
        return None
    return version, offset, state
