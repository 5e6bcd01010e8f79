"""A RabbitMQ-style queue: ordered ready messages, competing consumers, acknowledgements.

Push delivery is inline: whatever makes a message deliverable (a publish, an ack freeing
prefetch credit, a new consumer) calls :meth:`Queue.dispatch`, which hands ready messages to
consumers round-robin while they have credit.  No task, timer or future per message.

A durable queue writes persistent messages to its own log (one record per message: key =
routing key, value = body, headers = exchange and the opaque properties).  Acknowledged
messages leave the log from its head with ``truncate_prefix`` so whole segments are freed;
acknowledgements that arrive out of order are kept in memory and saved at a clean shutdown
(after a crash those messages are delivered again: at-least-once, as RabbitMQ).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from jackalope.core.consumer import Consumer
from jackalope.core.errors import InvalidArgument, ResourceLocked
from jackalope.core.message import Message, QueueEntry
from jackalope.storage import Log, Record, StorageError

log = logging.getLogger(__name__)

OVERFLOW_MODES: Final = ("drop-head", "reject-publish", "reject-publish-dlx")
EXCHANGE_HEADER: Final = "x-exchange"
PROPERTIES_HEADER: Final = "x-properties"
ACKS_FILE: Final = "acked-offsets"
_PERSIST_HEAD_EVERY: Final = 256
UNWRITTEN: Final = -2  # QueueEntry.offset of a persistent message still waiting for its batch

Defer = Callable[[Callable[[], None]], object]
DurableCallback = Callable[[BaseException | None], None]


def _int_arg(arguments: Mapping[str, Any], name: str) -> int | None:
    value = arguments.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(f"invalid arg '{name}' for queue: {value!r} is not a non-negative integer")
    return value


class Queue:
    def __init__(
        self,
        name: str,
        *,
        durable: bool = False,
        exclusive_owner: object | None = None,
        auto_delete: bool = False,
        arguments: Mapping[str, Any] | None = None,
        log_: Log | None = None,
    ) -> None:
        self.name = name
        self.durable = durable
        self.exclusive_owner = exclusive_owner
        self.auto_delete = auto_delete
        self.arguments = dict(arguments or {})
        self.max_length = _int_arg(self.arguments, "x-max-length")
        self.max_length_bytes = _int_arg(self.arguments, "x-max-length-bytes")
        overflow = self.arguments.get("x-overflow", "drop-head")
        if overflow not in OVERFLOW_MODES:
            raise InvalidArgument(f"invalid arg 'x-overflow' for queue: {overflow!r}")
        self.overflow = overflow
        self.log = log_
        self.on_unused: Callable[[Queue], None] | None = None  # auto-delete hook (the vhost's)
        self.on_dead_letter: Callable[[Queue, Message], None] | None = None  # x-dead-letter-exchange
        # Persistent messages are written as one record batch per event-loop iteration:
        # ``defer`` (the loop's call_soon) schedules the write; None writes at once.
        self.defer: Defer | None = None
        self._unwritten: list[QueueEntry] = []
        self._write_waiters: list[tuple[QueueEntry, DurableCallback]] = []
        self._ready: deque[QueueEntry] = deque()
        self._ready_bytes = 0
        self._consumers: list[Consumer] = []
        self._next_consumer = 0
        self._seq = 0
        self._unacked = 0
        self._had_consumer = False
        self._deleted = False
        # Persistence bookkeeping: offsets below _head are settled; _settled holds settled
        # offsets above it (acks out of order).
        self._head = log_.start_offset if log_ is not None else 0
        self._persisted_head = self._head
        self._settled: set[int] = set()

    # -- state ---------------------------------------------------------------------------------

    @property
    def message_count(self) -> int:
        """Messages ready for delivery (not counting delivered-but-unacknowledged)."""
        return len(self._ready)

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
            raise ResourceLocked(
                f"cannot obtain exclusive access to locked queue '{self.name}'. It could be originally "
                "declared on another connection or the exclusive property value does not match that "
                "of the original declaration."
            )

    # -- publishing ----------------------------------------------------------------------------

    def enqueue(self, message: Message) -> QueueEntry | None:
        """Add ``message``; None if the queue refuses it (x-overflow reject-publish when full).

        A persistent message of a durable queue goes to the queue's log, in one batch with the
        others of this event-loop iteration; :meth:`when_durable` tells when it is on disk.
        """
        if self._full(len(message.body)):
            if self.overflow != "drop-head":
                return None
            while self._ready and self._full(len(message.body)):
                dropped = self._drop_ready_head()
                self._settle(dropped)
                if self.on_dead_letter is not None:
                    self.on_dead_letter(self, dropped.message)
            if self._full(len(message.body)):
                return None  # too big even for an empty queue
        self._seq += 1
        entry = QueueEntry(message, self._seq)
        if message.persistent and self.log is not None:
            entry.offset = UNWRITTEN
            self._unwritten.append(entry)
            if self.defer is None:
                self.write_pending()
            elif len(self._unwritten) == 1:
                self.defer(self.write_pending)
        self._ready.append(entry)
        self._ready_bytes += len(message.body)
        if self._consumers:
            self.dispatch()
        return entry

    def write_pending(self) -> None:
        """Append the persistent messages enqueued since the last write as one record batch."""
        entries, self._unwritten = self._unwritten, []
        waiters, self._write_waiters = self._write_waiters, []
        if not entries or self.log is None:
            for _, callback in waiters:
                callback(None)
            return
        records = [
            Record(
                value=e.message.body,
                key=e.message.routing_key.encode(),
                headers=(
                    (EXCHANGE_HEADER, e.message.exchange.encode()),
                    (PROPERTIES_HEADER, e.message.properties),
                ),
            )
            for e in entries
        ]
        try:
            base = self.log.append(records).base_offset
        except StorageError as exc:
            for e in entries:
                e.offset = -1  # kept in memory only; the publisher hears of the failure
            for _, callback in waiters:
                callback(exc)
            return
        for i, e in enumerate(entries):
            e.offset = base + i
        for entry, callback in waiters:
            self.log.when_durable(entry.offset, callback)

    def when_durable(self, entry: QueueEntry, callback: DurableCallback) -> None:
        """Call ``callback(None)`` once ``entry`` is on disk (at once if it never goes there),
        or ``callback(error)`` if it cannot be written."""
        if entry.offset == UNWRITTEN:
            self._write_waiters.append((entry, callback))
        elif entry.offset >= 0 and self.log is not None:
            self.log.when_durable(entry.offset, callback)
        else:
            callback(None)

    def _full(self, incoming: int) -> bool:
        if self.max_length is not None and len(self._ready) + 1 > self.max_length:
            return True
        return self.max_length_bytes is not None and self._ready_bytes + incoming > self.max_length_bytes

    def _drop_ready_head(self) -> QueueEntry:
        entry = self._ready.popleft()
        self._ready_bytes -= len(entry.message.body)
        return entry

    # -- consuming -----------------------------------------------------------------------------

    def add_consumer(self, consumer: Consumer) -> None:
        if consumer.exclusive and self._consumers:
            raise ResourceLocked(f"queue '{self.name}' in use: cannot obtain exclusive access")
        if any(c.exclusive for c in self._consumers):
            raise ResourceLocked(f"queue '{self.name}' has an exclusive consumer")
        self._consumers.append(consumer)
        self._had_consumer = True
        self.dispatch()

    def remove_consumer(self, consumer: Consumer) -> None:
        try:
            self._consumers.remove(consumer)
        except ValueError:
            return
        if not self._consumers and self.auto_delete and self._had_consumer and self.on_unused is not None:
            self.on_unused(self)

    def dispatch(self) -> None:
        """Push ready messages to consumers with credit, round-robin."""
        consumers = self._consumers
        ready = self._ready
        while ready and consumers:
            n = len(consumers)
            start = self._next_consumer % n
            for i in range(n):
                consumer = consumers[(start + i) % n]
                if consumer.can_deliver():
                    self._next_consumer = start + i + 1
                    entry = ready.popleft()
                    self._ready_bytes -= len(entry.message.body)
                    self._unacked += 1
                    consumer.deliver(self, entry)
                    break
            else:
                return  # nobody has credit

    def get(self) -> QueueEntry | None:
        """Pull one message (basic.get); the caller settles it like a delivery."""
        if not self._ready:
            return None
        self._unacked += 1
        return self._drop_ready_head()

    # -- settling ------------------------------------------------------------------------------

    def ack(self, entry: QueueEntry) -> None:
        """The delivered ``entry`` was acknowledged: it is gone for good."""
        self._unacked -= 1
        self._settle(entry)

    def requeue(self, entries: Iterable[QueueEntry]) -> None:
        """Return delivered entries to the queue in their original order, marked redelivered."""
        back = sorted(entries, key=lambda e: e.seq)
        if not back:
            return
        self._unacked -= len(back)
        if self._deleted:
            return
        ready = self._ready
        rest = list(ready)
        ready.clear()
        i = j = 0
        while i < len(back) or j < len(rest):
            if j >= len(rest) or (i < len(back) and back[i].seq < rest[j].seq):
                entry = back[i]
                entry.redelivered = True
                self._ready_bytes += len(entry.message.body)
                ready.append(entry)
                i += 1
            else:
                ready.append(rest[j])
                j += 1
        self.dispatch()

    def discard(self, entries: Iterable[QueueEntry]) -> None:
        """Delivered entries rejected without requeue: dead-lettered if the queue says where."""
        for entry in entries:
            self._unacked -= 1
            self._settle(entry)
            if self.on_dead_letter is not None:
                self.on_dead_letter(self, entry.message)

    def purge(self) -> int:
        """Drop every ready message; return how many."""
        count = len(self._ready)
        while self._ready:
            self._settle(self._drop_ready_head())
        return count

    def _settle(self, entry: QueueEntry) -> None:
        if entry.offset == UNWRITTEN:
            self.write_pending()
        offset = entry.offset
        if offset < 0 or self.log is None:
            return
        if offset != self._head:
            self._settled.add(offset)
            return
        head = offset + 1
        settled = self._settled
        while head in settled:
            settled.remove(head)
            head += 1
        self._head = head
        if head - self._persisted_head >= _PERSIST_HEAD_EVERY or (
            not settled and head == self.log.end_offset
        ):
            self.log.truncate_prefix(head)
            self._persisted_head = head

    # -- life and death ------------------------------------------------------------------------

    def delete(self) -> None:
        """Remove every consumer (telling each) and drop the messages."""
        self._deleted = True
        self._unwritten = []
        waiters, self._write_waiters = self._write_waiters, []
        for _, callback in waiters:
            callback(None)  # routed, then deleted with its queue: RabbitMQ confirms those
        consumers, self._consumers = self._consumers, []
        for consumer in consumers:
            consumer.cancelled(self)
        self._ready.clear()
        self._ready_bytes = 0

    def close(self) -> None:
        """Clean shutdown: record the settled state so acked messages are not delivered again."""
        if self.log is None:
            return
        self.write_pending()
        if self._head > self._persisted_head:
            self.log.truncate_prefix(self._head)
            self._persisted_head = self._head
        path = self.log.directory / ACKS_FILE
        if self._settled:
            path.write_text("\n".join(map(str, sorted(self._settled))) + "\n")
        else:
            path.unlink(missing_ok=True)

    def recover(self) -> int:
        """Load the persistent messages of a durable queue's log; return how many."""
        if self.log is None:
            return 0
        path: Path = self.log.directory / ACKS_FILE
        try:
            settled = {int(line) for line in path.read_text().split()}
        except (FileNotFoundError, ValueError):
            settled = set()
        path.unlink(missing_ok=True)
        offset = self.log.start_offset
        self._head = self._persisted_head = offset
        count = 0
        while offset < self.log.end_offset:
            records = self.log.read_records(offset, 1 << 20)
            if not records:
                break
            for record in records:
                if record.offset in settled:
                    self._settled.add(record.offset)
                    continue
                headers = dict(record.headers)
                message = Message(
                    (headers.get(EXCHANGE_HEADER) or b"").decode(),
                    (record.key or b"").decode(),
                    headers.get(PROPERTIES_HEADER) or b"",
                    record.value or b"",
                    persistent=True,
                )
                self._seq += 1
                self._ready.append(QueueEntry(message, self._seq, record.offset))
                self._ready_bytes += len(message.body)
                count += 1
            offset = records[-1].offset + 1
        # Offsets settled before the first unsettled one move the head straight away.
        while self._head in self._settled:
            self._settled.remove(self._head)
            self._head += 1
        return count
