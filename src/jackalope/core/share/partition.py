"""One share-partition's delivery state (KIP-932), without protocol or storage.

A share group reads a topic partition as a queue: each record is *acquired* by one member at a
time, under a lock that lapses after the group's ``share.record.lock.duration.ms``, and is
then acknowledged: accepted (done), released (to be delivered again) or rejected (done, never
delivered again).  A record delivered ``share.delivery.count.limit`` times and released again
(or whose lock lapsed) is archived instead.

The share-partition start offset (SPSO, :attr:`SharePartition.start`) is the first offset not
yet settled (accepted, rejected or archived); the end offset (SPEO, :attr:`SharePartition.end`)
the first never acquired.  Between them are the *in-flight* records, at most
``max_in_flight`` of them (Kafka's ``group.share.partition.max.record.locks``): while the
window is full nothing new is acquired, whatever the consumers ask (back-pressure), until the
SPSO moves.

Only the unsettled offsets of the window are kept (:attr:`SharePartition.records`, in offset
order, since offsets only ever join at the end); an offset of the window that is not there is
settled (or never existed: offsets compaction removed, control records, aborted transactions).
Times are milliseconds of a monotonic clock the caller passes in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum


class RecordState(IntEnum):
    """Kafka's in-flight record states (the acknowledged and archived ones are not kept)."""

    AVAILABLE = 0
    ACQUIRED = 1
    ACKNOWLEDGED = 2
    ARCHIVED = 4


class AckType(IntEnum):
    """ShareFetch/ShareAcknowledge acknowledge types."""

    GAP = 0
    ACCEPT = 1
    RELEASE = 2
    REJECT = 3
    RENEW = 4


class InvalidRecordState(Exception):
    """An acknowledgement of records the member does not hold (Kafka's INVALID_RECORD_STATE)."""


class InvalidAcknowledgement(Exception):
    """A malformed acknowledgement batch (Kafka's INVALID_REQUEST)."""


@dataclass(slots=True)
class InFlight:
    """An unsettled record of the window."""

    state: RecordState
    delivery_count: int
    member: str | None = None
    deadline: int = 0  # lock expiry (monotonic ms) while acquired


@dataclass(frozen=True, slots=True)
class Acquired:
    """Offsets ``first..last`` acquired by one fetch, delivered ``delivery_count`` times."""

    first: int
    last: int
    delivery_count: int


@dataclass(frozen=True, slots=True)
class Batch:
    """A stored batch as the fetch read it: offsets ``first..last``; ``deliverable`` is false
    for control batches and aborted transactions' batches (read_committed), which are settled
    without being delivered."""

    first: int
    last: int
    deliverable: bool = True


@dataclass(frozen=True, slots=True)
class AckBatch:
    """One acknowledgement batch: a single type for the range, or one type per offset."""

    first: int
    last: int
    types: tuple[int, ...]


class SharePartition:
    """The delivery state of one topic partition for one share group."""

    def __init__(
        self,
        start: int,
        *,
        max_in_flight: int = 2000,
        delivery_limit: int = 5,
        lock_ms: int = 30000,
        end: int | None = None,
    ) -> None:
        self.start = start
        self.end = start if end is None else max(end, start)
        self.max_in_flight = max_in_flight
        self.delivery_limit = delivery_limit
        self.lock_ms = lock_ms
        self.records: dict[int, InFlight] = {}
        self._next_deadline: int | None = None

    # -- reading ---------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """The window's size, end - start (what the bound applies to)."""
        return self.end - self.start

    @property
    def full(self) -> bool:
        return self.end - self.start >= self.max_in_flight

    def state_of(self, offset: int) -> RecordState:
        if offset < self.start:
            return RecordState.ACKNOWLEDGED
        rec = self.records.get(offset)
        if rec is not None:
            return rec.state
        return RecordState.AVAILABLE if offset >= self.end else RecordState.ARCHIVED

    def first_available(self) -> int | None:
        """Where a fetch should read from: the first available offset of the window, else the
        end unless the window is full; None: nothing to acquire (everything held, or full)."""
        for offset, rec in self.records.items():
            if rec.state is RecordState.AVAILABLE:
                return offset
        return None if self.full else self.end

    def next_deadline(self) -> int | None:
        """The earliest lock expiry, if any record is acquired."""
        return self._next_deadline

    def acquired_by(self, member: str) -> Iterator[int]:
        return (o for o, r in self.records.items() if r.state is RecordState.ACQUIRED and r.member == member)

    # -- acquiring -------------------------------------------------------------------------------

    def acquire(
        self, member: str, batches: Iterable[Batch], max_records: int, now: int, *, whole_batches: bool = True
    ) -> list[Acquired]:
        """Acquire for ``member`` what ``batches`` (consecutive stored batches, in offset order)
        hold: their available records of the window, then new ones past the end, whole batches
        at a time while under ``max_records`` and the window's bound (``whole_batches=False``,
        Kafka's record_limit mode: never more than ``max_records``).  Non-deliverable batches
        past the end are settled as the end passes them."""
        self.expire(now)
        taken: list[tuple[int, int]] = []  # (offset, delivery count)
        deadline = now + self.lock_ms
        for batch in batches:
            if len(taken) >= max_records:
                break
            first = max(batch.first, self.start)
            if batch.last < first:
                continue
            # the part inside the window
            for offset in range(first, min(batch.last + 1, self.end)):
                if not whole_batches and len(taken) >= max_records:
                    break
                rec = self.records.get(offset)
                if rec is None or rec.state is not RecordState.AVAILABLE:
                    continue
                if not batch.deliverable:  # pragma: no cover - never made available
                    del self.records[offset]
                    continue
                rec.state = RecordState.ACQUIRED
                rec.delivery_count += 1
                rec.member = member
                rec.deadline = deadline
                taken.append((offset, rec.delivery_count))
            if batch.last < self.end:
                continue
            # the part past the end: new records (offsets between batches never existed)
            if self.full:
                break
            new_first = max(first, self.end)
            last = batch.last
            if batch.deliverable:
                # never past the bound: a batch straddling it is split
                last = min(last, self.start + self.max_in_flight - 1)
                if not whole_batches:
                    last = min(last, new_first + max_records - len(taken) - 1)
                for offset in range(new_first, last + 1):
                    self.records[offset] = InFlight(RecordState.ACQUIRED, 1, member, deadline)
                    taken.append((offset, 1))
            self.end = last + 1
        if taken and (self._next_deadline is None or deadline < self._next_deadline):
            self._next_deadline = deadline
        self._advance()
        return _ranges(taken)

    def skip_to(self, offset: int) -> None:
        """Nothing below ``offset`` exists any more (the log's start moved, by retention or
        DeleteRecords): settle it."""
        if offset <= self.start:
            return
        for o in [o for o in self.records if o < offset]:
            del self.records[o]
        self.start = offset
        self.end = max(self.end, offset)
        self._advance()

    # -- locks -------------------------------------------------------------------------------------

    def expire(self, now: int) -> bool:
        """Release the records whose lock lapsed by ``now``; True if any was."""
        if self._next_deadline is None or now < self._next_deadline:
            return False
        changed = False
        nxt: int | None = None
        for offset, rec in list(self.records.items()):
            if rec.state is not RecordState.ACQUIRED:
                continue
            if rec.deadline <= now:
                self._release(offset, rec)
                changed = True
            elif nxt is None or rec.deadline < nxt:
                nxt = rec.deadline
        self._next_deadline = nxt
        self._advance()
        return changed

    def release_member(self, member: str) -> bool:
        """The member left: what it holds becomes available (or archived at the limit)."""
        changed = False
        for offset in list(self.acquired_by(member)):
            self._release(offset, self.records[offset])
            changed = True
        self._advance()
        return changed

    def release_all(self) -> None:
        """After a restart: every acquired record is available again."""
        for offset, rec in list(self.records.items()):
            if rec.state is RecordState.ACQUIRED:
                self._release(offset, rec)
        self._next_deadline = None
        self._advance()

    def _release(self, offset: int, rec: InFlight) -> None:
        if rec.delivery_count >= self.delivery_limit:
            del self.records[offset]  # archived
        else:
            rec.state = RecordState.AVAILABLE
            rec.member = None
            rec.deadline = 0

    # -- acknowledging -----------------------------------------------------------------------------

    def acknowledge(self, member: str, batches: Sequence[AckBatch], now: int) -> bool:
        """Apply ``member``'s acknowledgements, all or none: raises :class:`InvalidRecordState`
        if any offset acknowledged (other than a gap) is not acquired by ``member``, and
        :class:`InvalidAcknowledgement` for a malformed batch.  True if a record was settled or
        released (the durable state changed)."""
        self.expire(now)
        plan: list[tuple[int, int]] = []
        previous = -1
        for batch in batches:
            if batch.last < batch.first or batch.first <= previous:
                raise InvalidAcknowledgement("acknowledgement batches overlap or are out of order")
            count = batch.last - batch.first + 1
            if len(batch.types) not in (1, count):
                raise InvalidAcknowledgement(
                    f"{len(batch.types)} acknowledge types for {count} offsets {batch.first}..{batch.last}"
                )
            for i, offset in enumerate(range(batch.first, batch.last + 1)):
                kind = batch.types[0] if len(batch.types) == 1 else batch.types[i]
                if kind not in AckType._value2member_map_:
                    raise InvalidAcknowledgement(f"unknown acknowledge type {kind}")
                rec = self.records.get(offset)
                held = rec is not None and rec.state is RecordState.ACQUIRED and rec.member == member
                if not held:
                    if kind == AckType.GAP and rec is None and offset < self.end:
                        continue  # a gap the broker settled already
                    raise InvalidRecordState(f"offset {offset} is not acquired by this member")
                plan.append((offset, kind))
            previous = batch.last
        changed = False
        renewed = now + self.lock_ms
        for offset, kind in plan:
            rec = self.records[offset]
            if kind == AckType.RENEW:
                rec.deadline = renewed
                continue
            changed = True
            if kind == AckType.RELEASE:
                self._release(offset, rec)
            else:  # ACCEPT, REJECT, GAP: settled
                del self.records[offset]
        if any(kind == AckType.RENEW for _, kind in plan):
            self._recompute_deadline()
        self._advance()
        return changed

    def _recompute_deadline(self) -> None:
        self._next_deadline = min(
            (r.deadline for r in self.records.values() if r.state is RecordState.ACQUIRED), default=None
        )

    def _advance(self) -> None:
        """Move the SPSO to the first unsettled offset (the end if none is)."""
        first = next(iter(self.records), None)
        self.start = self.end if first is None else first

    # -- the durable form ----------------------------------------------------------------------

    def snapshot(self) -> tuple[int, int, list[tuple[int, int, int]]]:
        """(start, end, [(first, last, delivery count)]): the unsettled runs of the window, each
        as available (acquired records are available again after a restart)."""
        runs: list[tuple[int, int, int]] = []
        for offset, rec in self.records.items():
            if runs and runs[-1][1] == offset - 1 and runs[-1][2] == rec.delivery_count:
                runs[-1] = (runs[-1][0], offset, rec.delivery_count)
            else:
                runs.append((offset, offset, rec.delivery_count))
        return self.start, self.end, runs

    @classmethod
    def restore(
        cls,
        start: int,
        end: int,
        runs: Iterable[tuple[int, int, int]],
        *,
        max_in_flight: int = 2000,
        delivery_limit: int = 5,
        lock_ms: int = 30000,
    ) -> SharePartition:
        sp = cls(start, end=end, max_in_flight=max_in_flight, delivery_limit=delivery_limit, lock_ms=lock_ms)
        for first, last, count in runs:
            for offset in range(max(first, start), min(last + 1, sp.end)):
                sp.records[offset] = InFlight(RecordState.AVAILABLE, count)
        sp._advance()
        return sp


def _ranges(taken: list[tuple[int, int]]) -> list[Acquired]:
    out: list[Acquired] = []
    for offset, count in taken:
        if out and out[-1].last == offset - 1 and out[-1].delivery_count == count:
            out[-1] = Acquired(out[-1].first, offset, count)
        else:
            out.append(Acquired(offset, offset, count))
    return out
