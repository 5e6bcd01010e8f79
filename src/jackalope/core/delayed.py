"""The messages a delayed-message exchange holds until they are due.

Each ``x-delayed-message`` exchange of a vhost has one :class:`DelayedMessages`: a heap of held
messages by due time (wall-clock ms, then publish order) and one timer, armed for the earliest
due message only (re-armed when an earlier one arrives), so nothing polls. When the timer fires
every due message is routed (:data:`RouteDue`, the vhost's) and enqueued where it goes.

A durable exchange also writes every held message, persistent or not (as the plugin keeps
them all on disk), to its log ``delayed/<vhost>/<exchange>``: one record batch per event-loop
iteration, and a publish's confirm waits for its record to be durable (:meth:`Holding.when_durable`).
A routed message's record is settled (:meth:`jackalope.storage.Log.settle`) once its copies in
the queues are as durable as they will be, so a restart neither loses a confirmed message nor
routes one twice; at start the log's unsettled records are held again (:meth:`recover`), and a
message that fell due while the broker was down is routed at once. A non-durable exchange holds
its messages in memory only: they are lost with a restart, as with the plugin.

A record: key = routing key, value = body, headers = exchange, properties, due time, whether the
message is persistent and its TTL (the held time does not count against it).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Collection
from typing import Final, Protocol

from jackalope.core import queue as queue_module
from jackalope.core.exchanges import DelayedMessageExchange, HeadersThunk
from jackalope.core.message import Message, QueueEntry
from jackalope.core.queue import Cancellable, Timer
from jackalope.core.queue_store import (
    UNWRITTEN,
    Defer,
    DurableCallback,
    _fan_out,
    message_record,
    record_message,
)
from jackalope.storage import Log, Record, StorageError

log = logging.getLogger(__name__)

DUE_HEADER: Final = "x-due-at"  # wall-clock ms
PERSISTENT_HEADER: Final = "x-persistent"  # b"1" or b"0"
TTL_HEADER: Final = "x-ttl"  # the publisher's TTL in ms, if it gave one
READ_BYTES: Final = 1 << 20


def delayed_log_name(vhost: str, exchange: str) -> str:
    return f"delayed/{vhost}/{exchange}"


class Receiver(Protocol):
    """Where a due message goes (a queue or a stream)."""

    def enqueue(self, message: Message) -> QueueEntry | None: ...

    def when_durable(self, entry: QueueEntry, callback: DurableCallback) -> None: ...


ReleaseStamp = Callable[[bytes], tuple[bytes, HeadersThunk]]
"""The front-end's part in a release: given a held message's properties, the properties it is
routed with (``x-delay`` negated) and a thunk of their headers."""

RouteDue = Callable[[DelayedMessageExchange, Message], tuple[Message, Collection[Receiver]]]
"""The vhost's part: the message as released and where it goes from the exchange now."""


def held_record(message: Message, due: int) -> Record:
    record = message_record(message)
    headers = (
        *record.headers,
        (DUE_HEADER, b"%d" % due),
        (PERSISTENT_HEADER, b"1" if message.persistent else b"0"),
    )
    if message.ttl_ms is not None:
        headers += ((TTL_HEADER, b"%d" % message.ttl_ms),)
    return record._replace(headers=headers)


def record_held(record: Record) -> tuple[Message, int]:
    """The message a record holds and when it is due."""
    fields = dict(record.headers)
    message, _ = record_message(record, fields.get(PERSISTENT_HEADER) == b"1")
    ttl = fields.get(TTL_HEADER)
    message.ttl_ms = int(ttl) if ttl else None
    return message, int(fields.get(DUE_HEADER) or 0)


class Holding:
    """The destination a delayed message is routed to: :meth:`enqueue` holds it for ``delay``
    ms, as a queue's enqueue keeps a message (the publish path treats both alike)."""

    __slots__ = ("delay", "store")

    def __init__(self, store: DelayedMessages, delay: int) -> None:
        self.store = store
        self.delay = delay

    def enqueue(self, message: Message) -> QueueEntry | None:
        return self.store.hold(message, self.delay)

    def when_durable(self, entry: QueueEntry, callback: DurableCallback) -> None:
        self.store.when_durable(entry, callback)


class DelayedMessages:
    """The held messages of one delayed-message exchange (see the module's docstring)."""

    def __init__(
        self,
        exchange: DelayedMessageExchange,
        route_due: RouteDue,
        timer: Timer,
        *,
        log_: Log | None = None,
        defer: Defer | None = None,
    ) -> None:
        self.exchange = exchange
        self.log = log_
        self._route_due = route_due
        self._timer = timer
        self._defer = defer
        self._heap: list[tuple[int, int, QueueEntry]] = []
        self._seq = 0
        self._wake: Cancellable | None = None
        self._wake_at = 0
        self._unwritten: list[QueueEntry] = []
        self._write_waiters: list[tuple[QueueEntry, DurableCallback]] = []
        self._releasing: dict[int, QueueEntry] = {}  # released, copies not yet durable (by seq)
        self._deleted = False
        exchange.hold = self.holding

    def __len__(self) -> int:
        """How many messages are held (the plugin's ``messages_delayed``)."""
        return len(self._heap)

    def holding(self, delay: int) -> Holding:
        return Holding(self, delay)

    # -- holding -------------------------------------------------------------------------------

    def hold(self, message: Message, delay: int) -> QueueEntry:
        """Keep ``message`` until ``delay`` ms from now (written to the log if there is one)."""
        due = queue_module.now_ms() + delay
        entry = self._push(message, due, -1)
        if self.log is not None:
            entry.offset = UNWRITTEN
            self._unwritten.append(entry)
            if self._defer is None:
                self.write_pending()
            elif len(self._unwritten) == 1:
                self._defer(self.write_pending)
        self._arm(due)
        return entry

    def _push(self, message: Message, due: int, offset: int) -> QueueEntry:
        self._seq += 1
        entry = QueueEntry(message, self._seq, offset, False, due)
        heapq.heappush(self._heap, (due, self._seq, entry))
        return entry

    def when_durable(self, entry: QueueEntry, callback: DurableCallback) -> None:
        """``callback(None)`` once the held ``entry`` is on disk (at once without a log), or
        ``callback(error)`` if it cannot be written."""
        if entry.offset == UNWRITTEN:
            self._write_waiters.append((entry, callback))
        elif entry.offset >= 0 and self.log is not None:
            self.log.when_durable(entry.offset, callback)
        else:
            callback(None)

    def write_pending(self) -> None:
        """Append this iteration's held messages to the log, as one record batch."""
        entries, self._unwritten = self._unwritten, []
        waiters, self._write_waiters = self._write_waiters, []
        if not entries or self.log is None:
            for _, callback in waiters:
                callback(None)
            return
        try:
            info = self.log.append([held_record(e.message, e.expires_at) for e in entries])
        except StorageError as exc:
            log.error(
                "delayed-message exchange %r could not write held messages: %s", self.exchange.name, exc
            )
            for entry in entries:
                entry.offset = -1  # held in memory only; the publisher hears of the failure
            for _, callback in waiters:
                callback(exc)
            return
        for i, entry in enumerate(entries):
            entry.offset = info.base_offset + i
        if waiters:  # one waiter for the batch: its fsync covers every message in it
            self.log.when_durable(info.last_offset, _fan_out([callback for _, callback in waiters]))

    # -- releasing -----------------------------------------------------------------------------

    def _arm(self, due: int) -> None:
        if self._wake is not None and self._wake_at <= due:
            return
        if self._wake is not None:
            self._wake.cancel()
        self._wake_at = due
        self._wake = self._timer(max(due - queue_module.now_ms(), 0) / 1000 + 0.001, self._woken)

    def _woken(self) -> None:
        self._wake = None
        if self._deleted:
            return
        heap = self._heap
        now = queue_module.now_ms()
        while heap and heap[0][0] <= now:
            _, _, entry = heapq.heappop(heap)
            try:
                self._release(entry)
            except Exception:  # one bad message must not stop the others or the timer
                log.exception("delayed-message exchange %r could not route a due message", self.exchange.name)
        if heap:
            self._arm(heap[0][0])

    def _release(self, entry: QueueEntry) -> None:
        """Route a due message; settle its record once its copies are durable."""
        released, targets = self._route_due(self.exchange, entry.message)
        waiting: list[tuple[Receiver, QueueEntry]] = []
        for target in targets:
            copy = target.enqueue(released)
            if copy is not None and copy.offset != -1:
                waiting.append((target, copy))
        if not waiting:
            self._settle(entry)
            return
        remaining = [len(waiting)]
        failed: list[BaseException] = []
        self._releasing[entry.seq] = entry

        def done(error: BaseException | None) -> None:
            if error is not None:
                failed.append(error)
            remaining[0] -= 1
            if remaining[0] or self._releasing.pop(entry.seq, None) is None:
                return
            if failed:  # kept: routed again after a restart rather than lost
                log.error("a delayed message's copies could not be written: %s", failed[0])
            else:
                self._settle(entry)

        for target, copy in waiting:
            target.when_durable(copy, done)

    def _settle(self, entry: QueueEntry) -> None:
        if self.log is None or self._deleted:
            return
        if entry.offset == UNWRITTEN:
            self.write_pending()
        if entry.offset >= 0:
            self.log.settle(entry.offset)

    # -- life and death ------------------------------------------------------------------------

    def recover(self) -> int:
        """Hold again the unsettled records of the log (after a restart); return how many."""
        log_ = self.log
        if log_ is None:
            return 0
        offset = log_.head
        count = 0
        while offset < log_.end_offset:
            records = log_.read_records(offset, READ_BYTES)
            if not records:
                break
            for record in records:
                if not log_.is_settled(record.offset):
                    message, due = record_held(record)
                    self._push(message, due, record.offset)
                    count += 1
            offset = records[-1].offset + 1
        if self._heap:
            self._arm(self._heap[0][0])
        return count

    def close(self) -> None:
        """Clean shutdown: write what is pending, and settle what was released (its copies are
        synced by the same shutdown). Nothing is released after this."""
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        releasing, self._releasing = self._releasing, {}
        try:
            self.write_pending()
            for entry in releasing.values():
                self._settle(entry)
        except StorageError as exc:
            log.error(
                "delayed-message exchange %r could not write its last messages: %s", self.exchange.name, exc
            )

    def delete(self) -> None:
        """The exchange is gone, and its held messages with it (confirming what waits, as a
        deleted queue confirms what was routed to it)."""
        self._deleted = True
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        self._heap.clear()
        self._unwritten = []
        waiters, self._write_waiters = self._write_waiters, []
        for _, callback in waiters:
            callback(None)
