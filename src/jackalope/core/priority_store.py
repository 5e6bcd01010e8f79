"""A priority queue's messages: one :class:`QueueStore` per priority level in use.

A queue declared with ``x-max-priority`` N delivers its higher-priority messages first and,
within one priority, in publish order, as RabbitMQ's classic priority queues do.  A message's
level is its ``priority`` capped at N (no priority is 0).  Each level is an ordinary
:class:`QueueStore` (window, paging, persistence, settlements), made on the first message of
that level, with a log of its own when it needs one: the order of each log stays the order
of its level, so paging and recovery work per level unchanged.

The store offers the :class:`QueueStore` interface the queue uses; a queue holding up to
256 levels walks only the levels that were ever used, highest first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from jackalope.core.message import Message, QueueEntry
from jackalope.core.queue_store import DurableCallback, QueueStore
from jackalope.storage import Log

LevelFactory = Callable[[int, bool], QueueStore | None]
"""Make the store of a level; with ``False``, only if the level has a log from before (a
durable queue's recovery), else None."""


class PriorityStore:
    def __init__(self, max_priority: int, make_level: LevelFactory) -> None:
        self.max_priority = max_priority
        self._make_level = make_level
        self._by_level: dict[int, QueueStore] = {}
        self._levels: tuple[QueueStore, ...] = ()  # highest priority first

    def _level(self, message: Message) -> QueueStore:
        level = min(message.priority, self.max_priority)
        store = self._by_level.get(level)
        if store is None:
            made = self._make_level(level, True)
            assert made is not None
            store = self._add(level, made)
        return store

    def _add(self, level: int, store: QueueStore) -> QueueStore:
        self._by_level[level] = store
        self._levels = tuple(self._by_level[p] for p in sorted(self._by_level, reverse=True))
        return store

    def _head_level(self) -> QueueStore | None:
        for store in self._levels:
            if len(store):
                return store
        return None

    # -- state ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return sum(len(s) for s in self._levels)

    @property
    def ready_bytes(self) -> int:
        return sum(s.ready_bytes for s in self._levels)

    @property
    def paged(self) -> int:
        return sum(s.paged for s in self._levels)

    def logs(self) -> list[Log]:
        return [log_ for s in self._levels for log_ in s.logs()]

    def levels(self) -> tuple[QueueStore, ...]:
        return self._levels

    # -- adding --------------------------------------------------------------------------------

    def push(self, message: Message, expires_at: int = 0) -> QueueEntry:
        return self._level(message).push(message, expires_at)

    def handoff(self, message: Message, expires_at: int = 0) -> QueueEntry:
        return self._level(message).handoff(message, expires_at)

    def requeue(self, entries: Iterable[QueueEntry]) -> None:
        by_level: dict[int, list[QueueEntry]] = {}
        for entry in entries:
            by_level.setdefault(min(entry.message.priority, self.max_priority), []).append(entry)
        for level, back in by_level.items():
            self._by_level[level].requeue(back)

    # -- taking --------------------------------------------------------------------------------

    def pop(self) -> QueueEntry | None:
        store = self._head_level()
        return None if store is None else store.pop()

    def peek(self) -> QueueEntry | None:
        store = self._head_level()
        return None if store is None else store.peek()

    def pop_unseen(self) -> QueueEntry | None:
        store = self._head_level()
        return None if store is None else store.pop_unseen()

    # -- writing and settling ------------------------------------------------------------------

    def write_pending(self) -> None:
        for store in self._levels:
            store.write_pending()

    def when_durable(self, entry: QueueEntry, callback: DurableCallback) -> None:
        self._level(entry.message).when_durable(entry, callback)

    def settle(self, entry: QueueEntry) -> None:
        self._level(entry.message).settle(entry)

    def purge(self) -> list[QueueEntry]:
        return [entry for store in self._levels for entry in store.purge()]

    # -- life and death ------------------------------------------------------------------------

    def recover(self, *, exact_bytes: bool = False) -> int:
        """Every level a durable queue had before the restart, with its messages."""
        count = 0
        for level in range(self.max_priority + 1):
            store = self._make_level(level, False)
            if store is not None:
                count += self._add(level, store).recover(exact_bytes=exact_bytes)
        return count

    def close(self) -> None:
        for store in self._levels:
            store.close()

    def delete(self) -> None:
        for store in self._levels:
            store.delete()
