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
"""

from __future__ import annotations

import struct
from collections import deque
from typing import Final, NamedTuple

from crc32c import crc32c

from jackalope.storage.errors import CorruptRecordError, InvalidProducerEpochError, OutOfOrderSequenceError
from jackalope.storage.records import BatchHeader

BATCHES_KEPT: Final = 5
MAX_PRODUCERS: Final = 100_000
MAX_SEQUENCE: Final = (1 << 31) - 1

_SNAPSHOT_MAGIC: Final = b"JKPS0001"
_SNAPSHOT_HEAD: Final = struct.Struct(">8sqI")  # magic, offset covered, producer count
_ENTRY: Final = struct.Struct(">qhB")  # producer id, epoch, batch count
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

    __slots__ = ("batches", "epoch")

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.batches: deque[BatchMetadata] = deque(maxlen=BATCHES_KEPT)

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
    """Per producer id: epoch and last batches, most recently written last."""

    def __init__(self, max_producers: int = MAX_PRODUCERS) -> None:
        self.max_producers = max_producers
        self.entries: dict[int, ProducerEntry] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, producer_id: int) -> ProducerEntry | None:
        return self.entries.get(producer_id)

    def update(
        self, producer_id: int, epoch: int, first_seq: int, last_seq: int, base: int, last: int, max_ts: int
    ) -> None:
        """Record a batch that was written (a newer epoch starts a fresh entry)."""
        entry = self.entries.pop(producer_id, None)
        if entry is None or entry.epoch != epoch:
            entry = ProducerEntry(epoch)
        entry.batches.append(BatchMetadata(first_seq, last_seq, base, last, max_ts))
        self.entries[producer_id] = entry  # re-inserted: dict order is recency order
        if len(self.entries) > self.max_producers:
            del self.entries[next(iter(self.entries))]

    def replay(self, header: BatchHeader) -> None:
        """Rebuild from a stored batch header (no checks: the log accepted it once)."""
        if header.producer_id < 0 or header.base_sequence < 0:
            return
        self.update(
            header.producer_id,
            header.producer_epoch,
            header.base_sequence,
            increment_sequence(header.base_sequence, header.last_offset_delta),
            header.base_offset,
            header.last_offset,
            header.max_timestamp,
        )

    def truncate(self, end_offset: int) -> None:
        """Forget batches at or after ``end_offset`` (their bytes were lost); a producer left with
        none is forgotten entirely, so its retry is accepted whatever its sequence."""
        for producer_id, entry in list(self.entries.items()):
            batches = entry.batches
            while batches and batches[-1].last_offset >= end_offset:
                batches.pop()
            if not batches:
                del self.entries[producer_id]

    def last_batch_offsets(self) -> dict[int, int]:
        """Base offset of each known producer's last batch (compaction keeps that batch)."""
        return {pid: e.batches[-1].base_offset for pid, e in self.entries.items() if e.batches}


class ProducerAppend:
    """Checks the idempotent batches of one append request before anything is written.

    Batches of one request are checked against the stored state and the batches before them in
    the same request (``check`` is called in order).
    """

    __slots__ = ("_pending", "state")

    def __init__(self, state: ProducerStateManager) -> None:
        self.state = state
        self._pending: dict[int, tuple[int, int]] = {}  # producer id -> (epoch, last seq)

    def check(self, header: BatchHeader) -> BatchMetadata | None:
        """Validate one batch; return the original batch if it is a duplicate, else None.

        Raises :class:`InvalidProducerEpochError` or :class:`OutOfOrderSequenceError`.
        """
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
        parts.append(_ENTRY.pack(pid, entry.epoch, len(entry.batches)))
        parts.extend(_BATCH.pack(*b) for b in entry.batches)
    body = b"".join(parts)
    return body + _CRC.pack(crc32c(body))


def decode_snapshot(
    raw: bytes, max_producers: int = MAX_PRODUCERS
) -> tuple[int, ProducerStateManager] | None:
    """``(offset, state)`` from :func:`encode_snapshot` bytes, or None if they are damaged."""
    if len(raw) < _SNAPSHOT_HEAD.size + _CRC.size:
        return None
    body = raw[: -_CRC.size]
    if crc32c(body) != _CRC.unpack_from(raw, len(body))[0]:
        return None
    magic, offset, count = _SNAPSHOT_HEAD.unpack_from(body, 0)
    if magic != _SNAPSHOT_MAGIC:
        return None
    state = ProducerStateManager(max_producers)
    pos = _SNAPSHOT_HEAD.size
    try:
        for _ in range(count):
            pid, epoch, n = _ENTRY.unpack_from(body, pos)
            pos += _ENTRY.size
            entry = ProducerEntry(epoch)
            for _ in range(n):
                entry.batches.append(BatchMetadata(*_BATCH.unpack_from(body, pos)))
                pos += _BATCH.size
            state.entries[pid] = entry
    except struct.error:
        return None
    if pos != len(body):
        return None
    return offset, state
