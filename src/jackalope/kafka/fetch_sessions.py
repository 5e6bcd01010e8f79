"""Incremental fetch sessions (KIP-227), sans-IO: what the broker remembers of a consumer's
fetches so that its next Fetch need only name the partitions whose position changed, and the
response need only carry the partitions that have something new.

A request's ``(session_id, session_epoch)`` picks the context, as Kafka's ``FetchManager``:

* ``(0, -1)``: a sessionless full fetch (and v0-v6 requests, which have no session fields);
* ``(id, 0)``: a full fetch that closes session ``id`` (if any) and opens a new one, whose id
  the response carries (0 when the cache has no room for it);
* ``(id, -1)``: a full fetch that closes session ``id`` and opens none;
* ``(id, n > 0)``: an incremental fetch of session ``id`` at epoch ``n``: the request's
  partitions are added or updated, ``forgotten_topics_data`` removed, and every partition of
  the session is read; FETCH_SESSION_ID_NOT_FOUND for an unknown session, and
  INVALID_FETCH_SESSION_EPOCH for an epoch other than the expected one.

The cache is bounded (``max.incremental.fetch.session.cache.slots``, 1000) and evicts as
Kafka's ``FetchSessionCacheShard.tryEvict``: a session unused for longer than the eviction
time first, else the smallest session older than it when the new one has more partitions.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from jackalope.kafka.protocol import ErrorCode

INVALID_SESSION_ID: Final = 0
INITIAL_EPOCH: Final = 0
FINAL_EPOCH: Final = -1
MAX_SLOTS: Final = 1000  # max.incremental.fetch.session.cache.slots
EVICTION_SECONDS: Final = 120.0  # min.incremental.fetch.session.eviction.ms

TopicKey = str | uuid.UUID  # a topic name (v7-v12) or a topic id (v13+)
PartitionKey = tuple[TopicKey, int]


@dataclass(slots=True)
class FetchTarget:
    """Where the client wants one partition read from."""

    fetch_offset: int
    partition_max_bytes: int


@dataclass(slots=True)
class CachedPartition:
    fetch_offset: int
    partition_max_bytes: int
    # what the last response told the client (-1: never told, so the next one must)
    high_watermark: int = -1
    log_start_offset: int = -1


@dataclass(eq=False)
class FetchSession:
    id: int
    uses_topic_ids: bool
    created: float
    last_used: float
    epoch: int = 1  # the epoch the next request must carry
    partitions: dict[PartitionKey, CachedPartition] = field(default_factory=dict)


def next_epoch(epoch: int) -> int:
    if epoch < 0:
        return FINAL_EPOCH
    return 1 if epoch == 0x7FFFFFFF else epoch + 1


class FetchContext:
    """One Fetch request's view of its session: the partitions to read, and which of the
    results go into the response (:meth:`select`)."""

    def __init__(
        self,
        partitions: list[tuple[PartitionKey, FetchTarget]],
        *,
        session: FetchSession | None = None,
        incremental: bool = False,
        error: int = ErrorCode.none,
    ) -> None:
        self.partitions = partitions
        self.session = session
        self.incremental = incremental
        self.error = error

    @property
    def session_id(self) -> int:
        return self.session.id if self.session is not None else INVALID_SESSION_ID

    def select(
        self, key: PartitionKey, *, high_watermark: int, log_start_offset: int, error: int, records: int
    ) -> bool:
        """Whether the result of ``key`` goes into the response; remembers what was sent.

        A full fetch sends every partition; an incremental one a partition with records, an
        error, or a high watermark or log start offset the client has not been told yet.
        """
        cached = self.session.partitions.get(key) if self.session is not None else None
        if cached is None:
            return True
        respond = records > 0
        if cached.high_watermark != high_watermark:
            cached.high_watermark = high_watermark
            respond = True
        if cached.log_start_offset != log_start_offset:
            cached.log_start_offset = log_start_offset
            respond = True
        if error:
            cached.high_watermark = -1  # sent again once the error is gone
            respond = True
        if records and self.incremental and self.session is not None:
            # to the back of the session: the next fetches read the others first (max_bytes)
            self.session.partitions[key] = self.session.partitions.pop(key)
        return respond or not self.incremental


class FetchSessionCache:
    """The broker's fetch sessions, bounded; ``clock`` and ``rng`` are for tests."""

    def __init__(
        self,
        max_slots: int = MAX_SLOTS,
        eviction_seconds: float = EVICTION_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.max_slots = max_slots
        self.eviction_seconds = eviction_seconds
        self._clock = clock
        self._rng = rng or random.Random()
        self._sessions: dict[int, FetchSession] = {}
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: int) -> FetchSession | None:
        return self._sessions.get(session_id)

    def remove(self, session_id: int) -> FetchSession | None:
        return self._sessions.pop(session_id, None)

    def context(
        self,
        session_id: int,
        epoch: int,
        partitions: Iterable[tuple[PartitionKey, FetchTarget]],
        forgotten: Iterable[PartitionKey] = (),
        *,
        uses_topic_ids: bool = False,
    ) -> FetchContext:
        """The context of a Fetch request (see the module's docstring)."""
        wanted = list(partitions)
        if epoch in (INITIAL_EPOCH, FINAL_EPOCH):
            if session_id != INVALID_SESSION_ID:
                self.remove(session_id)
            if epoch == FINAL_EPOCH:
                return FetchContext(wanted)
            return FetchContext(wanted, session=self._create(wanted, uses_topic_ids))
        session = self._sessions.get(session_id)
        if session is None:
            return FetchContext([], error=ErrorCode.fetch_session_id_not_found)
        if session.epoch != epoch:
            return FetchContext([], error=ErrorCode.invalid_fetch_session_epoch)
        if session.uses_topic_ids != uses_topic_ids:
            return FetchContext([], error=ErrorCode.fetch_session_topic_id_error)
        for key in forgotten:
            session.partitions.pop(key, None)
        for key, target in wanted:
            cached = session.partitions.get(key)
            if cached is None:
                session.partitions[key] = CachedPartition(target.fetch_offset, target.partition_max_bytes)
            else:
                cached.fetch_offset = target.fetch_offset
                cached.partition_max_bytes = target.partition_max_bytes
        if not session.partitions:
            self.remove(session.id)
            return FetchContext(wanted)
        session.last_used = self._clock()
        session.epoch = next_epoch(session.epoch)
        reads = [
            (key, FetchTarget(c.fetch_offset, c.partition_max_bytes)) for key, c in session.partitions.items()
        ]
        return FetchContext(reads, session=session, incremental=True)

    def _create(
        self, wanted: list[tuple[PartitionKey, FetchTarget]], uses_topic_ids: bool
    ) -> FetchSession | None:
        now = self._clock()
        if len(self._sessions) >= self.max_slots and not self._evict(len(wanted), now):
            return None
        session_id = INVALID_SESSION_ID
        while session_id == INVALID_SESSION_ID or session_id in self._sessions:
            session_id = self._rng.randint(1, 0x7FFFFFFF)
        session = FetchSession(session_id, uses_topic_ids, now, now)
        for key, target in wanted:
            session.partitions[key] = CachedPartition(target.fetch_offset, target.partition_max_bytes)
        self._sessions[session_id] = session
        return session

    def _evict(self, size: int, now: float) -> bool:
        """Make room for a session of ``size`` partitions, if one may go."""
        oldest = min(self._sessions.values(), key=lambda s: (s.last_used, s.id), default=None)
        if oldest is None:
            return False
        if now - oldest.last_used > self.eviction_seconds:
            victim = oldest
        else:
            evictable = [s for s in self._sessions.values() if now - s.created > self.eviction_seconds]
            victim_ = min(evictable, key=lambda s: (len(s.partitions), s.id), default=None)
            if victim_ is None or size <= len(victim_.partitions):
                return False
            victim = victim_
        del self._sessions[victim.id]
        self.evictions += 1
        return True
