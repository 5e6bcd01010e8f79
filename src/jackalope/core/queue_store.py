"""A queue's messages as stored: a window in memory, the backlog in the queue's log.

The ready messages of a :class:`~jackalope.core.queue.Queue` are one ordered sequence kept
two ways:

* the **window**: the first messages, as :class:`QueueEntry` objects in a deque (what
  dispatch hands to consumers), at most ``window_messages`` of them or ``window_bytes`` of
  bodies;
* the **paged** run: every message after the window, kept only in the queue's log and
  counted here (a count, a byte total and the offset where the run starts).  As the window
  drains below half, the run is read back (``PAGE_BYTES`` per read) into it.

Once a run exists every new message joins it, so the run is always the log's tail and the
order of the queue is the order of the log.  No per-message Python object stays in memory
for the backlog, however deep: the garbage collector and the event loop never walk it.

What goes to the log, as one record batch per event-loop iteration (``defer`` schedules the
write): every persistent message of a durable queue (window or run: it must survive a
restart), and every message of the run.  Transient messages written to a durable queue's
log are appended ``volatile``, so they are gone after a restart as transient messages are;
a non-durable queue pages into a log of the broker's transient log manager, created on first
need and deleted with the queue.  A message's record: key = routing key, value = body,
headers = exchange and the opaque properties.

Acknowledged messages are settled in the log (:meth:`jackalope.storage.Log.settle`), which
deletes segments once wholly settled and keeps the settlements in ``.acks``, so after a crash
only the acks of the last loop iteration come back as redeliveries.  Deliveries of a durable
queue's messages are marked too, so that messages recovered after a restart carry the
redelivered flag exactly when they may have been delivered before.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Final

from jackalope.core.message import Message, QueueEntry
from jackalope.storage import Log, OffsetOutOfRangeError, Record, StorageError

log = logging.getLogger(__name__)

EXCHANGE_HEADER: Final = "x-exchange"
PROPERTIES_HEADER: Final = "x-properties"
EXPIRES_HEADER: Final = "x-expires-at"  # wall-clock ms, for a message that expires in its queue
PRIORITY_HEADER: Final = "x-priority"  # a message's priority, when not 0
UNWRITTEN: Final = -2
"""``QueueEntry.offset`` of a message waiting for this iteration's batch (-1: memory only)."""

WINDOW_MESSAGES: Final = 4096
WINDOW_BYTES: Final = 8 * 1024 * 1024
PAGE_BYTES: Final = 1 << 20

Defer = Callable[[Callable[[], None]], object]
DurableCallback = Callable[[BaseException | None], None]
LogFactory = Callable[[], Log]


_new = tuple.__new__


def message_record(message: Message, expires_at: int = 0) -> Record:
    headers: tuple[tuple[str, bytes], ...] = (
        (EXCHANGE_HEADER, message.exchange.encode()),
        (PROPERTIES_HEADER, message.properties),
    )
    if expires_at:
        headers += ((EXPIRES_HEADER, b"%d" % expires_at),)
    if message.priority:
        headers += ((PRIORITY_HEADER, b"%d" % message.priority),)
    return _new(Record, (message.body, message.routing_key.encode(), headers, None, -1))


def record_message(record: Record, persistent: bool) -> tuple[Message, int]:
    """The message a record holds, and when it expires in its queue (0: never)."""
    exchange = b""
    properties = b""
    expires_at = 0
    priority = 0
    for name, value in record.headers:
        if name == EXCHANGE_HEADER:
            exchange = value or b""
        elif name == PROPERTIES_HEADER:
            properties = value or b""
        elif name == EXPIRES_HEADER and value:
            expires_at = int(value)
        elif name == PRIORITY_HEADER and value:
            priority = int(value)
    message = Message(
        _text(exchange), _text(record.key or b""), properties, record.value or b"", persistent, None, priority
    )
    return message, expires_at


_TEXTS: dict[bytes, str] = {}  # exchange names and routing keys, decoded: they repeat


def _text(raw: bytes) -> str:
    text = _TEXTS.get(raw)
    if text is None:
        text = raw.decode()
        if len(_TEXTS) >= 4096:
            _TEXTS.clear()
        _TEXTS[raw] = text
    return text


class QueueStore:
    """The ready messages of one queue, and the log behind them.  Not thread-safe."""

    def __init__(
        self,
        *,
        durable_log: Log | None = None,
        log_factory: LogFactory | None = None,
        defer: Defer | None = None,
        window_messages: int = WINDOW_MESSAGES,
        window_bytes: int = WINDOW_BYTES,
    ) -> None:
        self.durable_log = durable_log
        self._log_factory = log_factory
        self._log = durable_log  # where messages are written (a transient log once paged)
        self.defer = defer
        self.window_messages = window_messages
        self.window_bytes = window_bytes
        self._window: deque[QueueEntry] = deque()
        self._window_bytes = 0
        self._paged = 0  # messages in the run (written or in _unwritten)
        self._paged_bytes = 0
        self._page_from = -1  # offset of the run's first written message
        self._transient_runs: deque[list[int]] = deque()  # [start, end) of transient records in the run
        self._unwritten: list[QueueEntry] = []
        self._unwritten_paged = 0  # how many of _unwritten (its tail) belong to the run
        self._write_waiters: list[tuple[QueueEntry, DurableCallback]] = []
        self._seq = 0

    # -- state ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._window) + self._paged

    @property
    def ready_bytes(self) -> int:
        return self._window_bytes + self._paged_bytes

    @property
    def paged(self) -> int:
        """Ready messages that are on disk only."""
        return self._paged

    @property
    def log(self) -> Log | None:
        return self._log

    def logs(self) -> list[Log]:
        """The logs behind the messages (none, or one)."""
        return [] if self._log is None else [self._log]

    def levels(self) -> tuple[QueueStore, ...]:
        """The ordered runs the store is made of, first delivered first: itself alone (a
        :class:`~jackalope.core.priority_store.PriorityStore` has one per priority)."""
        return (self,)

    # -- adding --------------------------------------------------------------------------------

    def push(self, message: Message, expires_at: int = 0) -> QueueEntry:
        """Add ``message`` at the tail (expiring at ``expires_at``, wall-clock ms, if not 0)."""
        size = len(message.body)
        durable = message.persistent and self.durable_log is not None
        if self._paged or (
            (len(self._window) >= self.window_messages or self._window_bytes + size > self.window_bytes)
            and self._can_page()
        ):
            entry = QueueEntry(message, 0, UNWRITTEN, False, expires_at)
            self._paged += 1
            self._paged_bytes += size
            self._unwritten_paged += 1
            self._schedule_write(entry)
            return entry
        self._seq += 1
        entry = QueueEntry(message, self._seq, -1, False, expires_at)
        self._window.append(entry)
        self._window_bytes += size
        if durable:
            entry.offset = UNWRITTEN
            self._schedule_write(entry)
        return entry

    def handoff(self, message: Message, expires_at: int = 0) -> QueueEntry:
        """``message`` straight to a consumer, the queue being empty: what push then pop would
        do, without the window in between (written to the log all the same if it must be)."""
        self._seq += 1
        entry = QueueEntry(message, self._seq, -1, False, expires_at)
        if message.persistent and self.durable_log is not None:
            entry.offset = UNWRITTEN
            entry.delivered = True
            self._schedule_write(entry)
        return entry

    def _can_page(self) -> bool:
        if self._log is not None:
            return True
        if self._log_factory is None:
            return False  # no transient log manager (the core used without a data directory)
        try:
            self._log = self._log_factory()
        except (OSError, StorageError) as exc:
            log.error("cannot create a log to page a queue to: %s", exc)
            self._log_factory = None
            return False
        return True

    def _schedule_write(self, entry: QueueEntry) -> None:
        self._unwritten.append(entry)
        if self.defer is None:
            self.write_pending()
        elif len(self._unwritten) == 1:
            self.defer(self.write_pending)

    def requeue(self, entries: Iterable[QueueEntry]) -> None:
        """Return delivered entries to the head, in their original order, marked redelivered."""
        back = sorted(entries, key=lambda e: e.seq)
        if not back:
            return
        window = self._window
        rest = list(window)
        window.clear()
        i = j = 0
        while i < len(back) or j < len(rest):
            if j >= len(rest) or (i < len(back) and back[i].seq < rest[j].seq):
                entry = back[i]
                entry.redelivered = True
                self._window_bytes += len(entry.message.body)
                window.append(entry)
                i += 1
            else:
                window.append(rest[j])
                j += 1

    # -- taking --------------------------------------------------------------------------------

    def pop(self) -> QueueEntry | None:
        """Take the head (for a delivery); None if there is nothing ready."""
        window = self._window
        if self._paged and self._window_low():
            self._page_in()
        if not window:
            return None
        entry = window.popleft()
        self._window_bytes -= len(entry.message.body)
        if entry.message.persistent and self.durable_log is not None:
            entry.delivered = True
            if entry.offset >= 0:
                self.durable_log.mark_delivered(entry.offset)  # else when it is written
        return entry

    def peek(self) -> QueueEntry | None:
        """The head, left where it is; None if there is nothing ready."""
        if not self._window and self._paged:
            self._page_in()
        return self._window[0] if self._window else None

    def pop_unseen(self) -> QueueEntry | None:
        """Take the head without it counting as delivered (overflow drops, purges)."""
        window = self._window
        if not window and self._paged:
            self._page_in()
        if not window:
            return None
        entry = window.popleft()
        self._window_bytes -= len(entry.message.body)
        return entry

    def _window_low(self) -> bool:
        return len(self._window) <= self.window_messages // 2 and self._window_bytes <= self.window_bytes // 2

    def _page_in(self) -> None:
        """Read the run's head into the window, up to the window's budget."""
        if self._unwritten_paged:
            self.write_pending()
        log_ = self._log
        if log_ is None or not self._paged:
            return
        window = self._window
        room = max(self.window_messages - len(window), 1)
        budget = self.window_bytes - self._window_bytes
        offset = self._page_from
        per_message = self._paged_bytes // self._paged + 64
        while room > 0 and self._paged:
            try:
                records = list(
                    itertools.islice(log_.records(offset, min(PAGE_BYTES, room * per_message)), room)
                )
            except OffsetOutOfRangeError:
                records = []
            except StorageError as exc:
                log.error("%s: cannot read the queue's backlog at %d: %s", log_.directory, offset, exc)
                return
            if not records:
                log.error(
                    "%s: %d queued messages past offset %d are missing from the log (lost to a failed write)",
                    log_.directory,
                    self._paged,
                    offset,
                )
                self._paged = self._paged_bytes = 0
                self._transient_runs.clear()
                break
            for record in records:
                if record.offset < offset:
                    continue
                offset = record.offset + 1
                if log_.is_settled(record.offset):
                    continue  # settled (or volatile) before the last restart
                message, expires_at = record_message(record, self._persistent(record.offset))
                self._seq += 1
                entry = QueueEntry(message, self._seq, record.offset, False, expires_at)
                if log_ is self.durable_log and log_.delivered_before_open(record.offset):
                    entry.redelivered = True
                window.append(entry)
                size = len(message.body)
                self._window_bytes += size
                self._paged -= 1
                self._paged_bytes -= size
                room -= 1
                budget -= size
                if not self._paged or room <= 0 or budget <= 0:
                    break
            if budget <= 0:
                break
        self._page_from = offset
        if not self._paged:
            self._paged_bytes = 0
            self._page_from = -1

    def _persistent(self, offset: int) -> bool:
        runs = self._transient_runs
        while runs and runs[0][1] <= offset:
            runs.popleft()
        return not (runs and runs[0][0] <= offset)

    # -- writing -------------------------------------------------------------------------------

    def write_pending(self) -> None:
        """Append what this iteration added: one record batch per run of messages that are
        persistent alike (transient ones are volatile in a durable queue's log)."""
        entries, self._unwritten = self._unwritten, []
        paged, self._unwritten_paged = self._unwritten_paged, 0
        waiters, self._write_waiters = self._write_waiters, []
        log_ = self._log
        if not entries or log_ is None:
            for _, callback in waiters:
                callback(None)
            return
        first_paged = len(entries) - paged
        durable = log_ is self.durable_log
        try:
            start = 0
            while start < len(entries):
                persistent = entries[start].message.persistent
                end = start + 1
                while end < len(entries) and entries[end].message.persistent == persistent:
                    end += 1
                run = entries[start:end]
                info = log_.append(
                    [message_record(e.message, e.expires_at) for e in run],
                    volatile=durable and not persistent,
                )
                for i, entry in enumerate(run):
                    entry.offset = info.base_offset + i
                    if entry.delivered and durable:
                        log_.mark_delivered(entry.offset)
                if not persistent:
                    self._note_transient(info.base_offset, info.last_offset + 1, start, end, first_paged)
                start = end
        except StorageError as exc:
            self._write_failed(entries, first_paged, exc)
            for _, callback in waiters:
                callback(exc)
            return
        if first_paged < len(entries) and self._page_from < 0:
            self._page_from = entries[first_paged].offset
        later: list[DurableCallback] = []
        last = -1
        for entry, callback in waiters:
            if entry.offset >= 0 and entry.message.persistent and durable:
                later.append(callback)
                last = max(last, entry.offset)
            else:
                callback(None)
        if later:  # one waiter for the batch: its fsync covers every message in it
            log_.when_durable(last, _fan_out(later))

    def _note_transient(self, base: int, end: int, start_i: int, end_i: int, first_paged: int) -> None:
        """Remember which records of the run hold transient messages (for page-in)."""
        if end_i <= first_paged:
            return  # window entries only: they are never paged in
        lo = base + max(first_paged - start_i, 0)
        runs = self._transient_runs
        if runs and runs[-1][1] == lo:
            runs[-1][1] = end
        else:
            runs.append([lo, end])

    def _write_failed(self, entries: list[QueueEntry], first_paged: int, exc: StorageError) -> None:
        lost = 0
        for i, entry in enumerate(entries):
            if entry.offset == UNWRITTEN:
                entry.offset = -1  # kept in memory only, if it is in the window
                if i >= first_paged:
                    lost += 1
                    self._paged -= 1
                    self._paged_bytes -= len(entry.message.body)
        if lost:
            log.error("a queue lost %d paged messages: the write failed: %s", lost, exc)

    def when_durable(self, entry: QueueEntry, callback: DurableCallback) -> None:
        """Call ``callback(None)`` once ``entry`` is as safe as it will be (on disk for a
        persistent message of a durable queue, written to its log for a paged one, at once
        otherwise), or ``callback(error)`` if it cannot be written."""
        if entry.offset == UNWRITTEN:
            self._write_waiters.append((entry, callback))
        elif entry.offset >= 0 and entry.message.persistent and self.durable_log is not None:
            self.durable_log.when_durable(entry.offset, callback)
        else:
            callback(None)

    # -- settling ------------------------------------------------------------------------------

    def settle(self, entry: QueueEntry) -> None:
        """``entry`` (taken with pop) is gone for good."""
        if entry.offset == UNWRITTEN:
            self.write_pending()
        if entry.offset >= 0 and self._log is not None:
            self._log.settle(entry.offset)

    def purge(self) -> list[QueueEntry]:
        """Drop every ready message; return the ones that were in the window (the run's are
        settled unseen)."""
        if self._unwritten_paged:
            self.write_pending()
        dropped = list(self._window)
        self._window.clear()
        self._window_bytes = 0
        for entry in dropped:
            self.settle(entry)
        if self._paged and self._log is not None:
            self._log.settle_range(self._page_from, self._log.end_offset)
        self._paged = self._paged_bytes = 0
        self._page_from = -1
        self._transient_runs.clear()
        return dropped

    # -- life and death ------------------------------------------------------------------------

    def recover(self, *, exact_bytes: bool = False) -> int:
        """A durable queue's messages after a restart: every unsettled record of its log,
        left on disk as the run (read back as consumers need them); return how many.

        The run's body bytes are the log's size (an estimate: framing included) unless
        ``exact_bytes`` (for ``x-max-length-bytes``), which reads the whole backlog once."""
        log_ = self.durable_log
        if log_ is None:
            return 0
        head = log_.head
        count = log_.end_offset - head - log_.settled_above_head
        if count > 0:
            self._paged = count
            self._page_from = head
            self._paged_bytes = _body_bytes(log_, head) if exact_bytes else log_.size_bytes
        return count

    def close(self) -> None:
        """Clean shutdown: write what is pending."""
        try:
            self.write_pending()
        except StorageError as exc:
            log.error("a queue could not write its last messages: %s", exc)

    def delete(self) -> None:
        """The queue is gone: confirm what waits (routed, then deleted with its queue, as
        RabbitMQ confirms those) and drop everything."""
        self._unwritten = []
        self._unwritten_paged = 0
        waiters, self._write_waiters = self._write_waiters, []
        for _, callback in waiters:
            callback(None)
        self._window.clear()
        self._window_bytes = self._paged = self._paged_bytes = 0


def _fan_out(callbacks: list[DurableCallback]) -> DurableCallback:
    def done(error: BaseException | None) -> None:
        for callback in callbacks:
            callback(error)

    return done


def _body_bytes(log_: Log, start: int) -> int:
    """The body bytes of the unsettled records of ``log_`` from ``start`` on."""
    total = 0
    offset = start
    while offset < log_.end_offset:
        records = log_.read_records(offset, PAGE_BYTES)
        if not records:
            break
        total += sum(len(r.value or b"") for r in records if not log_.is_settled(r.offset))
        offset = records[-1].offset + 1
    return total
