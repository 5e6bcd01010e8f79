"""Every share group's share-partitions (KIP-932's delivery side), protocol-free.

:class:`SharePartitions` keeps one :class:`~jackalope.core.share.partition.SharePartition` per
share group and topic partition, made on the first fetch (its start offset from the group's
``share.auto.offset.reset``), and reads the partition's log for it: a fetch acquires records of
the stored batches it reads, and gets those batches back as stored.  What must survive a crash
(the start offset and which records of the window are settled, with the delivery counts) is
written to the compacted internal log ``__share_group_state`` (:mod:`.state_log`); an
acknowledgement is answered once its record is durable.  Acquisitions are not written: after a
restart every acquired record is available again.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from jackalope.core.share.partition import AckBatch, Acquired, Batch, InvalidRecordState, SharePartition
from jackalope.core.share.state_log import NAME, Key, ShareStateLog, State, state_record
from jackalope.core.topics import Topics
from jackalope.storage import Log, LogManager, Record
from jackalope.storage.log import now_ms
from jackalope.storage.records import CONTROL, iter_batches

log = logging.getLogger(__name__)

READ_BYTES_MAX = 1 << 20


class GroupConfig(Protocol):
    """What is read of a share group's configs (``jackalope.core.share.ShareGroupConfig``)."""

    @property
    def auto_offset_reset(self) -> str: ...
    @property
    def record_lock_duration_ms(self) -> int: ...
    @property
    def delivery_count_limit(self) -> int: ...
    @property
    def isolation_level(self) -> str: ...
    @property
    def partition_max_record_locks(self) -> int: ...


@dataclass(frozen=True)
class DefaultConfig:
    """Kafka's defaults, for groups whose configs are not known here."""

    auto_offset_reset: str = "latest"
    record_lock_duration_ms: int = 30000
    delivery_count_limit: int = 5
    isolation_level: str = "read_uncommitted"
    partition_max_record_locks: int = 2000


_DURATION = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$", re.IGNORECASE
)


def duration_ms(iso: str) -> int:
    """An ISO-8601 duration (``PnDTnHnMnS``, as Java's ``Duration.parse``) in milliseconds."""
    match = _DURATION.match(iso.strip())
    if match is None or iso.strip().upper() in ("P", "PT"):
        raise ValueError(f"{iso!r} is not an ISO-8601 duration")
    d, h, m, s = (match.group(g) for g in "dhms")
    seconds = int(d or 0) * 86400 + int(h or 0) * 3600 + int(m or 0) * 60 + float(s or 0)
    return int(seconds * 1000)


@dataclass(frozen=True, slots=True)
class Fetched:
    """What one fetch acquired of one partition, and the stored batches holding it."""

    acquired: list[Acquired]
    records: bytes


EMPTY = Fetched([], b"")


class SharePartitions:
    def __init__(
        self,
        logs: LogManager,
        topics: Topics,
        *,
        max_in_flight: int = 2000,
        config: Callable[[str], GroupConfig] | None = None,
        default_config: GroupConfig | None = None,
        name: str = NAME,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.topics = topics
        self.max_in_flight = max_in_flight
        self.default_config: GroupConfig = default_config or DefaultConfig()
        self.config: Callable[[str], GroupConfig] = config or (lambda group: self.default_config)
        self.state_log = ShareStateLog(logs, name)
        self._clock = clock
        self._partitions: dict[Key, SharePartition] = {}
        self._restored: dict[Key, State] = {}

    # -- lifecycle ---------------------------------------------------------------------------------

    async def load(self) -> None:
        """Replay ``__share_group_state``: the share-partitions come back with their settled
        records; the acquired ones are available again."""
        self._restored = await self.state_log.load()

    def now(self) -> int:
        """Milliseconds of the lock clock (the event loop's monotonic time by default)."""
        if self._clock is not None:
            return self._clock()
        return int(time.monotonic() * 1000)

    # -- the share-partitions ----------------------------------------------------------------------

    def get(self, key: Key) -> SharePartition | None:
        """The share-partition if it exists (made, or restored and not yet touched)."""
        sp = self._partitions.get(key)
        if sp is None and key in self._restored:
            sp = self._revive(key)
        return sp

    def keys(self, group: str | None = None) -> list[Key]:
        every = set(self._partitions) | set(self._restored)
        return sorted(k for k in every if group is None or k[0] == group)

    def _revive(self, key: Key) -> SharePartition:
        state = self._restored.pop(key)
        cfg = self.config(key[0])
        sp = SharePartition.restore(
            state.start,
            state.end,
            state.runs,
            max_in_flight=cfg.partition_max_record_locks,
            delivery_limit=cfg.delivery_count_limit,
            lock_ms=cfg.record_lock_duration_ms,
        )
        self._partitions[key] = sp
        return sp

    def _initial_offset(self, group: str, log_: Log) -> int:
        reset = self.config(group).auto_offset_reset
        if reset == "earliest":
            return log_.start_offset
        if reset.startswith("by_duration:"):
            found = log_.offset_for_time(now_ms() - duration_ms(reset.split(":", 1)[1]))
            return log_.end_offset if found is None else max(found, log_.start_offset)
        return log_.end_offset

    def partition(self, key: Key, log_: Log) -> SharePartition:
        """The share-partition of ``key`` over ``log_``, made (and written) on first use."""
        sp = self.get(key)
        if sp is None:
            cfg = self.config(key[0])
            sp = self._partitions[key] = SharePartition(
                self._initial_offset(key[0], log_),
                max_in_flight=cfg.partition_max_record_locks,
                delivery_limit=cfg.delivery_count_limit,
                lock_ms=cfg.record_lock_duration_ms,
            )
            self._append([key])  # not awaited: nothing is settled yet
        return sp

    def reconfigure(self, group: str) -> None:
        """The group's configs changed: new locks and deliveries follow them."""
        cfg = self.config(group)
        for key, sp in self._partitions.items():
            if key[0] == group:
                sp.lock_ms = cfg.record_lock_duration_ms
                sp.delivery_limit = cfg.delivery_count_limit
                sp.max_in_flight = cfg.partition_max_record_locks

    # -- fetching ----------------------------------------------------------------------------------

    def acquire(
        self,
        key: Key,
        log_: Log,
        member: str,
        *,
        max_records: int,
        max_bytes: int,
        committed: bool,
        whole_batches: bool = True,
    ) -> Fetched:
        """Acquire for ``member`` up to about ``max_records`` records of the partition (whole
        batches), reading at most about ``max_bytes`` of it; ``committed``: only records of
        committed transactions, below the last stable offset."""
        if self.topics.partition(key[1], key[2]) is not log_:
            return EMPTY  # the topic was deleted (perhaps made again) since the fetch began
        sp = self.partition(key, log_)
        now = self.now()
        sp.skip_to(log_.start_offset)
        sp.expire(now)
        offset = sp.first_available()
        if offset is None:
            return EMPTY
        limit = log_.last_stable_offset() if committed else log_.end_offset
        if offset >= limit:
            return EMPTY
        read = log_.read(offset, max(1, min(max_bytes, READ_BYTES_MAX)))
        view = log_.committed_view(offset) if committed else None
        batches: list[Batch] = []
        spans: list[tuple[int, int]] = []
        for pos, header in iter_batches(read.data):
            if header.base_offset >= limit:
                break
            deliverable = not header.attributes & CONTROL and (view is None or view.visible(header))
            batches.append(Batch(header.base_offset, header.last_offset, deliverable))
            spans.append((pos, header.size))
        acquired = sp.acquire(member, batches, max_records, now, whole_batches=whole_batches)
        if not acquired:
            return EMPTY
        chunks = [
            read.data[pos : pos + size]
            for batch, (pos, size) in zip(batches, spans, strict=True)
            if any(a.first <= batch.last and batch.first <= a.last for a in acquired)
        ]
        return Fetched(acquired, b"".join(chunks))

    def next_deadline(self, keys: Iterable[Key]) -> int | None:
        """The earliest lock expiry among ``keys``' partitions (a long poll wakes for it)."""
        deadlines = [
            d for k in keys if (sp := self._partitions.get(k)) and (d := sp.next_deadline()) is not None
        ]
        return min(deadlines, default=None)

    # -- acknowledging -----------------------------------------------------------------------------

    def acknowledge(self, key: Key, member: str, batches: list[AckBatch]) -> bool:
        """Apply ``member``'s acknowledgements to the share-partition (raises
        ``InvalidRecordState``/``InvalidAcknowledgement`` from :mod:`.partition`, having changed
        nothing); True if the durable state changed (then :meth:`save` it before answering)."""
        sp = self.get(key)
        if sp is None:
            raise InvalidRecordState("the share-partition has no records in flight")
        changed = sp.acknowledge(member, batches, self.now())
        if changed:
            self._wake(key)
        return changed

    async def save(self, keys: Iterable[Key]) -> None:
        """Write the state of ``keys`` and wait until it is durable (raises ``StorageError``)."""
        await self.state_log.wait_durable(self._append(keys))

    def _append(self, keys: Iterable[Key]) -> Any:
        records: list[Record] = []
        for key in keys:
            sp = self._partitions.get(key)
            if sp is None:
                records.append(state_record(key, None))
            else:
                start, end, runs = sp.snapshot()
                records.append(state_record(key, State(start, end, runs)))
        return self.state_log.append(records)

    def _wake(self, key: Key) -> None:
        """Records became available: wake the fetches waiting on the partition."""
        log_ = self.topics.partition(key[1], key[2])
        if log_ is not None:
            self.topics.waiters.appended(log_)

    # -- members, groups, topics ---------------------------------------------------------------------

    def member_left(self, group: str, member: str) -> None:
        """What ``member`` holds in ``group`` becomes available (or archived at the limit)."""
        for key, sp in list(self._partitions.items()):
            if key[0] == group and sp.release_member(member):
                self._wake(key)

    def release_unassigned(self, group: str, member: str, assigned: frozenset[tuple[str, int]]) -> None:
        """``member`` lost partitions: what it holds of those becomes available."""
        for key, sp in list(self._partitions.items()):
            if key[0] == group and (key[1], key[2]) not in assigned and sp.release_member(member):
                self._wake(key)

    def drop(self, keys: Iterable[Key]) -> Any:
        """Forget ``keys``' state (tombstones written, not awaited); returns the append."""
        dropped = []
        for key in keys:
            self._partitions.pop(key, None)
            self._restored.pop(key, None)
            dropped.append(key)
        return self._append(dropped) if dropped else None

    def group_deleted(self, group: str) -> None:
        self.drop(self.keys(group))

    def topic_deleted(self, topic: str) -> None:
        self.drop([k for k in self.keys() if k[1] == topic])

    # -- the offsets APIs ----------------------------------------------------------------------------

    def start_offset(self, key: Key) -> int | None:
        sp = self.get(key)
        return None if sp is None else sp.start

    def lag(self, key: Key, log_: Log) -> int | None:
        """Records of the partition not yet settled by the group: up to the log's end, less
        those of the window already settled."""
        sp = self.get(key)
        if sp is None:
            return None
        return max(0, log_.end_offset - sp.end) + len(sp.records)

    async def alter(self, key: Key, start: int) -> None:
        """Start the share-partition over at ``start`` (AlterShareGroupOffsets), durably."""
        cfg = self.config(key[0])
        self._restored.pop(key, None)
        self._partitions[key] = SharePartition(
            start,
            max_in_flight=cfg.partition_max_record_locks,
            delivery_limit=cfg.delivery_count_limit,
            lock_ms=cfg.record_lock_duration_ms,
        )
        await self.save([key])

    async def delete(self, keys: list[Key]) -> None:
        """Forget ``keys`` durably (DeleteShareGroupOffsets)."""
        info = self.drop(keys)
        if info is not None:
            await self.state_log.wait_durable(info)
