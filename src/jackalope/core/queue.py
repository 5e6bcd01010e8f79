"""A RabbitMQ-style queue: ordered ready messages, competing consumers, acknowledgements.

Push delivery is inline: whatever makes a message deliverable (a publish, an ack freeing
prefetch credit, a new consumer) calls :meth:`Queue.dispatch`, which hands ready messages to
consumers round-robin while they have credit.  No task, timer or future per message.

The messages themselves are the :class:`~jackalope.core.queue_store.QueueStore`'s: a window
in memory, the backlog in the queue's log, persistent messages of durable queues on disk.
An acknowledged message is settled in the log; after a crash only the acks of the last loop
iteration come back as redeliveries (at-least-once, as RabbitMQ).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Protocol

from jackalope.core.consumer import Consumer
from jackalope.core.errors import InvalidArgument, ResourceLocked
from jackalope.core.message import Message, QueueEntry
from jackalope.core.priority_store import PriorityStore
from jackalope.core.queue_store import UNWRITTEN, Defer, DurableCallback, LogFactory, QueueStore
from jackalope.core.stats import MessageStats
from jackalope.storage import Log

log = logging.getLogger(__name__)

__all__ = ["UNWRITTEN", "Cancellable", "Defer", "DurableCallback", "Queue", "Timer"]


class Cancellable(Protocol):
    """A timer that can be stopped (asyncio's TimerHandle)."""

    def cancel(self) -> None: ...


Timer = Callable[[float, Callable[[], None]], Cancellable]
"""Run a callback after a delay in seconds (the event loop's ``call_later``)."""

DurableWait = Callable[[DurableCallback], None]
"""Register a callback for when a dead letter is as safe as its target queue makes it."""
DeadLetter = Callable[["Queue", Message, str], list[DurableWait]]
"""Republish a message that left a queue, for a reason; return how to wait for its copies."""


# Why a message was dead-lettered (RabbitMQ's x-death reasons).
REJECTED: Final = "rejected"
EXPIRED: Final = "expired"
MAXLEN: Final = "maxlen"
DELIVERY_LIMIT: Final = "delivery_limit"

OVERFLOW_MODES: Final = ("drop-head", "reject-publish", "reject-publish-dlx")


def exclusive_locked(name: str) -> ResourceLocked:
    """RabbitMQ's 405 for an exclusive queue used from another connection, or redeclared with
    another exclusive flag."""
    return ResourceLocked(
        f"cannot obtain exclusive access to locked queue '{name}'. It could be originally "
        "declared on another connection or the exclusive property value does not match that "
        "of the original declaration."
    )


def now_ms() -> int:
    """Wall-clock milliseconds: expiry times outlive the process, in the queue's log."""
    return int(time.time() * 1000)


def _int_arg(arguments: Mapping[str, Any], name: str) -> int | None:
    value = arguments.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(f"invalid arg '{name}' for queue: {value!r} is not a non-negative integer")
    return value


class Queue:
    """A classic queue (and the base of the quorum queue): see the module's docstring."""

    type_name = "classic"

    def __init__(
        self,
        name: str,
        *,
        durable: bool = False,
        exclusive_owner: object | None = None,
        auto_delete: bool = False,
        arguments: Mapping[str, Any] | None = None,
        log_: Log | None = None,
        log_factory: LogFactory | None = None,
        defer: Defer | None = None,
        timer: Timer | None = None,
        store: QueueStore | PriorityStore | None = None,
    ) -> None:
        self.name = name
        self.durable = durable
        self.exclusive_owner = exclusive_owner
        self.auto_delete = auto_delete
        self.arguments = dict(arguments or {})  # as declared (what a redeclaration must match)
        self.last_used = time.monotonic()  # a consumer came or went, a basic.get, a redeclare
        self.expiry: Cancellable | None = None  # the vhost's x-expires timer
        # x-single-active-consumer: only the longest-standing consumer is given messages; the
        # next one takes over when it leaves.
        self.single_active = self.arguments.get("x-single-active-consumer") is True
        self._expiring = False  # may hold messages that expire
        self.configure(self.arguments)
        self._timer = timer  # wakes the queue when its head expires (None: checked when taken)
        self._ttl_wake: Cancellable | None = None
        self._ttl_wake_at = 0
        # Persistent messages are written as one record batch per event-loop iteration:
        # ``defer`` (the loop's call_soon) schedules the write; None writes at once.
        # A priority queue's store is the vhost's to make (a log per level).
        if store is None:
            store = QueueStore(durable_log=log_, log_factory=log_factory, defer=defer)
        self.store = store
        self.on_unused: Callable[[Queue], None] | None = None  # auto-delete hook (the vhost's)
        # x-dead-letter-exchange: called with the message and why (RabbitMQ's reasons: rejected,
        # expired, maxlen)
        self.on_dead_letter: DeadLetter | None = None
        self._consumers: list[Consumer] = []  # by priority, highest first; then in arrival order
        self._next_consumer = 0
        self._next_by_priority: dict[int, int] | None = None  # round-robin per priority, if several
        self._unacked = 0
        self._had_consumer = False
        self._deleted = False
        self.stats = MessageStats()

    def configure(self, effective: Mapping[str, Any]) -> None:
        """Act on ``effective`` arguments: the declared ones, or those resolved against the
        queue's policies (:func:`jackalope.core.policies.effective_arguments`), live."""
        self.effective_arguments = dict(effective)
        self.max_length = _int_arg(effective, "x-max-length")
        self.max_length_bytes = _int_arg(effective, "x-max-length-bytes")
        overflow = effective.get("x-overflow", "drop-head")
        if overflow not in OVERFLOW_MODES:
            raise InvalidArgument(f"invalid arg 'x-overflow' for queue: {overflow!r}")
        self.overflow = overflow
        self.expires_ms = _int_arg(effective, "x-expires")  # deleted after this long unused
        self.message_ttl = _int_arg(effective, "x-message-ttl")
        self.consumer_timeout_ms = _int_arg(effective, "x-consumer-timeout")  # None: the broker's
        exchange = effective.get("x-dead-letter-exchange")
        self.dead_letter_exchange = str(exchange) if exchange is not None else None
        key = effective.get("x-dead-letter-routing-key")
        self.dead_letter_routing_key = str(key) if key is not None else None
        self._expiring = self._expiring or self.message_ttl is not None
        self._limited = self.max_length is not None or self.max_length_bytes is not None
        # Settle a dead-lettered message only once its copies are safe (a quorum queue's
        # at-least-once dead-letter strategy); else at once, as RabbitMQ's at-most-once.
        self.dead_letter_at_least_once = False

    def enforce_limits(self) -> None:
        """After a lower limit came into force: drop (dead-letter) from the head what is over
        it, as drop-head does; reject-publish queues keep what they hold."""
        if self.overflow != "drop-head":
            return
        store = self.store
        while (self.max_length is not None and len(store) > self.max_length) or (
            self.max_length_bytes is not None and store.ready_bytes > self.max_length_bytes
        ):
            dropped = store.pop_unseen()
            if dropped is None:
                return
            self._leave(dropped, MAXLEN)

    # -- state ---------------------------------------------------------------------------------

    def logs(self) -> list[Log]:
        """The logs behind the queue (a durable queue's from the start; a transient queue's once
        its backlog outgrew memory; one per priority level of a priority queue)."""
        return self.store.logs()

    @property
    def message_count(self) -> int:
        """Messages ready for delivery (not counting delivered-but-unacknowledged)."""
        return len(self.store)

    @property
    def consumer_count(self) -> int:
        return len(self._consumers)

    @property
    def unacked_count(self) -> int:
        return self._unacked

    @property
    def deleted(self) -> bool:
        return self._deleted

    def check_owner(self, owner: object) -> None:
        if self.exclusive_owner is not None and self.exclusive_owner is not owner:
            raise exclusive_locked(self.name)

    # -- publishing ----------------------------------------------------------------------------

    def enqueue(self, message: Message) -> QueueEntry | None:
        """Add ``message``; None if the queue refuses it (x-overflow reject-publish when full).

        A persistent message of a durable queue goes to the queue's log, in one batch with the
        others of this event-loop iteration; :meth:`when_durable` tells when it is on disk.
        """
        ttl = self.message_ttl
        if message.ttl_ms is not None and (ttl is None or message.ttl_ms < ttl):
            ttl = message.ttl_ms
        expires_at = 0
        if ttl is not None:
            expires_at = now_ms() + ttl
            self._expiring = True  # even if handed over now: a requeue brings it back
        if self._consumers and not self._limited and not len(self.store):  # empty: hand over
            consumer = self._ready_consumer()
            if consumer is not None:
                entry = self.store.handoff(message, expires_at)
                self._unacked += 1
                stats = self.stats
                stats.publish += 1
                stats.deliver += 1
                consumer.deliver(self, entry)
                return entry
        if ttl == 0:  # expires unless a consumer could take it at once (RabbitMQ's TTL 0)
            if self.on_dead_letter is not None:
                self.on_dead_letter(self, message, EXPIRED)
            self.stats.publish += 1
            return QueueEntry(message, 0)  # taken, and gone
        size = len(message.body)
        if self._full(size):
            if self.overflow != "drop-head":
                if self.overflow == "reject-publish-dlx" and self.on_dead_letter is not None:
                    self.on_dead_letter(self, message, MAXLEN)
                return None
            while self._full(size):
                dropped = self.store.pop_unseen()
                if dropped is None:
                    return None  # too big even for an empty queue
                self._leave(dropped, MAXLEN)
        entry = self.store.push(message, expires_at)
        self.stats.publish += 1
        if self._consumers:
            self.dispatch()
        elif expires_at and len(self.store) == 1:
            self._wake_at(expires_at)
        return entry

    def write_pending(self) -> None:
        """Write the messages of this iteration now (before a read of the log, or a close)."""
        self.store.write_pending()

    def when_durable(self, entry: QueueEntry, callback: DurableCallback) -> None:
        """Call ``callback(None)`` once ``entry`` is on disk (at once if it never goes there),
        or ``callback(error)`` if it cannot be written."""
        self.store.when_durable(entry, callback)

    def _full(self, incoming: int) -> bool:
        if self.max_length is not None and len(self.store) + 1 > self.max_length:
            return True
        return self.max_length_bytes is not None and self.store.ready_bytes + incoming > self.max_length_bytes

    # -- consuming -----------------------------------------------------------------------------

    def subscribe(
        self,
        consumer: Consumer,
        *,
        no_ack: bool,
        prefetch: int,
        global_prefetch: int,
        arguments: Mapping[str, Any],
    ) -> None:
        """Add a consumer, delivering nothing yet (the front-end confirms the subscription,
        then calls :meth:`dispatch`).  Its credit is its own business; so is its priority."""
        self._add_consumer(consumer)

    def add_consumer(self, consumer: Consumer) -> None:
        self._add_consumer(consumer)
        self.dispatch()

    def _add_consumer(self, consumer: Consumer) -> None:
        if consumer.exclusive and self._consumers:
            raise ResourceLocked(f"queue '{self.name}' in use: cannot obtain exclusive access")
        if any(c.exclusive for c in self._consumers):
            raise ResourceLocked(f"queue '{self.name}' has an exclusive consumer")
        consumers = self._consumers
        if self.single_active or not consumers or consumer.priority <= consumers[-1].priority:
            consumers.append(consumer)  # a single active consumer is the longest-standing one
        else:
            at = next(i for i, c in enumerate(consumers) if c.priority < consumer.priority)
            consumers.insert(at, consumer)
        if self._next_by_priority is None and consumers[0].priority != consumers[-1].priority:
            self._next_by_priority = {}
        self._had_consumer = True
        self.last_used = time.monotonic()

    def remove_consumer(self, consumer: Consumer) -> None:
        try:
            self._consumers.remove(consumer)
        except ValueError:
            return
        self.last_used = time.monotonic()
        if not self._consumers and self.auto_delete and self._had_consumer and self.on_unused is not None:
            self.on_unused(self)

    def dispatch(self) -> None:
        """Push ready messages to consumers with credit, round-robin."""
        if self._expiring:
            self.drop_expired()
        store = self.store
        stats = self.stats
        while self._consumers and len(store):
            consumer = self._ready_consumer()
            if consumer is None:
                return  # nobody has credit
            entry = store.pop()
            if entry is None:
                return
            self._unacked += 1
            stats.deliver += 1
            if entry.redelivered:
                stats.redeliver += 1
            consumer.deliver(self, entry)

    def _ready_consumer(self) -> Consumer | None:
        """The next consumer with credit, round-robin among those of the highest priority that
        have credit (the first only, with a single active consumer); None if none has."""
        consumers = self._consumers
        if self._next_by_priority is not None and not self.single_active:
            return self._ready_by_priority(consumers, self._next_by_priority)
        n = 1 if self.single_active else len(consumers)
        start = self._next_consumer % n
        for i in range(n):
            consumer = consumers[(start + i) % n]
            if consumer.can_deliver():
                self._next_consumer = start + i + 1
                return consumer
        return None

    @staticmethod
    def _ready_by_priority(consumers: list[Consumer], turns: dict[int, int]) -> Consumer | None:
        """RabbitMQ's consumer priorities: a lower priority is served only while every
        consumer of a higher one is blocked (no credit)."""
        first = 0
        while first < len(consumers):
            priority = consumers[first].priority
            end = first + 1
            while end < len(consumers) and consumers[end].priority == priority:
                end += 1
            n = end - first
            start = turns.get(priority, 0) % n
            for i in range(n):
                consumer = consumers[first + (start + i) % n]
                if consumer.can_deliver():
                    turns[priority] = start + i + 1
                    return consumer
            first = end
        return None

    def get(self) -> QueueEntry | None:
        """Pull one message (basic.get); the caller settles it like a delivery."""
        self.last_used = time.monotonic()
        if self._expiring:
            self.drop_expired()
        entry = self.store.pop()
        if entry is None:
            self.stats.get_empty += 1
        else:
            self._unacked += 1
            self.stats.get += 1
            if entry.redelivered:
                self.stats.redeliver += 1
            if self._expiring:
                self.drop_expired()  # and wake up for the next head
        return entry

    # -- expiry (x-message-ttl, a message's expiration) ---------------------------------------------

    def drop_expired(self) -> None:
        """Dead-letter (or drop) the expired messages at the head (of each priority level), as
        RabbitMQ's classic queues do, and wake up when the next head expires."""
        now = now_ms()
        wake = 0
        for store in self.store.levels():
            while True:
                head = store.peek()
                if head is None or not head.expires_at:
                    break
                if head.expires_at > now:
                    wake = head.expires_at if not wake else min(wake, head.expires_at)
                    break
                store.pop_unseen()
                self._leave(head, EXPIRED)
        if not len(self.store):
            self._expiring = self.message_ttl is not None
        elif wake:
            self._wake_at(wake)

    def _wake_at(self, when: int) -> None:
        if self._timer is None or (self._ttl_wake is not None and self._ttl_wake_at <= when):
            return
        if self._ttl_wake is not None:
            self._ttl_wake.cancel()
        self._ttl_wake_at = when
        self._ttl_wake = self._timer(max(when - now_ms(), 0) / 1000 + 0.001, self._woken)

    def _woken(self) -> None:
        self._ttl_wake = None
        if not self._deleted:
            self.dispatch()  # drops what expired, then delivers what may be delivered

    # -- settling ------------------------------------------------------------------------------

    def ack(self, entry: QueueEntry) -> None:
        """The delivered ``entry`` was acknowledged: it is gone for good."""
        self._unacked -= 1
        self.stats.ack += 1
        self.store.settle(entry)

    def requeue(self, entries: Iterable[QueueEntry], *, failed: bool = True) -> None:
        """Return delivered entries to the queue in their original order, marked redelivered
        (whether they ``failed`` matters to quorum queues only)."""
        back = list(entries)
        if not back:
            return
        self._unacked -= len(back)
        if self._deleted:
            return
        self.store.requeue(back)
        self.dispatch()

    def discard(self, entries: Iterable[QueueEntry]) -> None:
        """Delivered entries rejected without requeue: dead-lettered if the queue says where."""
        for entry in entries:
            self._unacked -= 1
            self._leave(entry, REJECTED)

    def _leave(self, entry: QueueEntry, reason: str) -> None:
        """``entry`` (taken from the store) leaves for good: dead-lettered if the queue says
        where, and settled (once its copies are safe, with at-least-once dead-lettering)."""
        if self.on_dead_letter is None:
            self.store.settle(entry)
            return
        waits = self.on_dead_letter(self, entry.message, reason)
        if not waits or not self.dead_letter_at_least_once:
            self.store.settle(entry)
            return
        remaining = len(waits)

        def copied(error: BaseException | None) -> None:
            nonlocal remaining
            remaining -= 1
            if remaining == 0 and error is None and not self._deleted:
                self.store.settle(entry)  # else it comes back after a restart: at least once

        for wait in waits:
            wait(copied)

    def purge(self) -> int:
        """Drop every ready message; return how many."""
        count = len(self.store)
        self.store.purge()
        return count

    # -- life and death ------------------------------------------------------------------------

    def delete(self) -> None:
        """Remove every consumer (telling each) and drop the messages."""
        self._deleted = True
        if self._ttl_wake is not None:
            self._ttl_wake.cancel()
            self._ttl_wake = None
        self.store.delete()
        consumers, self._consumers = self._consumers, []
        for consumer in consumers:
            consumer.cancelled(self)

    def close(self) -> None:
        """Clean shutdown: write what is pending (settlements are the log's to save)."""
        self.store.close()

    def recover(self) -> int:
        """Take back the persistent messages of a durable queue's log; return how many."""
        count = self.store.recover(exact_bytes=self.max_length_bytes is not None)
        if count:  # some may carry an expiry, or have expired while the broker was down
            self._expiring = True
            self._wake_at(now_ms())  # once everything is loaded: dead-letter routes need bindings
        return count
