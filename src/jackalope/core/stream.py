"""Stream queues: RabbitMQ's append-only queues, kept as Kafka topics.

A queue declared with ``x-queue-type: stream`` is the single-partition topic of the same name
(see :mod:`jackalope.core.topics`): AMQP publishes append records to partition 0's log, Kafka
producers append to the same log, and both AMQP stream consumers and Kafka consumers read it.
Nothing is removed by consuming; retention (``x-max-age``, ``x-max-length-bytes``) deletes
whole segments, as for any topic.

Publishing mirrors :class:`~jackalope.core.queue.Queue`: the messages of one event-loop
iteration are written as one record batch (``defer`` schedules the write) and
:meth:`Stream.when_durable` tells when a message is on disk, for publisher confirms.  How a
message becomes a record is the front-end's business: ``Stream.encode`` (set by the virtual
host from its ``stream_encoder``) turns a :class:`Message` into a :class:`Record`; the records
are written on the topics' one append path (:meth:`Topics.append_records`).

Each consumer reads on its own from an offset chosen at subscription (``x-stream-offset``),
under its own credit: :meth:`Stream.dispatch` hands it records while it can take them.  A
caught-up consumer is woken without polling: one task per stream waits on the topics'
:class:`~jackalope.core.topics.AppendWaiters`, which that append path notifies for every
writer of the log (this stream, Kafka's Produce, the HTTP API).  Settling a delivery only
returns credit: acks, nacks and rejects are all the same to a stream, and nothing is ever
requeued (as RabbitMQ streams).

A stream over a topic Kafka transactional producers write to reads it as a read_committed
Kafka consumer does: consumers stop at the log's last stable offset (an open transaction holds
them back until it ends) and never see the records of aborted transactions, nor the control
batches (transaction markers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from jackalope.core.errors import InvalidArgument, PreconditionFailed, ResourceLocked, Unsupported
from jackalope.core.message import Message, QueueEntry
from jackalope.core.queue import UNWRITTEN, Defer, DurableCallback
from jackalope.core.queue_arguments import text_value
from jackalope.core.stats import MessageStats
from jackalope.core.topic_routes import KAFKA_EXCHANGE
from jackalope.storage import Log, OffsetOutOfRangeError, Record, StorageError
from jackalope.storage.records import decode_records, iter_batches

if TYPE_CHECKING:
    from jackalope.core.topics import Topics

log = logging.getLogger(__name__)

QUEUE_TYPE: Final = "x-queue-type"
STREAM: Final = "stream"
EXCHANGE_HEADER: Final = "x-amqp-exchange"
"""Written on every record a stream appends: the exchange the message was published to."""

# Declaration arguments a stream takes (RabbitMQ's rabbit_stream_queue list) and the Kafka
# topic config each sets; the others are accepted and have no effect here.
CONFIG_ARGUMENTS: Final = {
    "x-max-length-bytes": "retention.bytes",
    "x-max-age": "retention.ms",
    "x-stream-max-segment-size-bytes": "segment.bytes",
}
ACCEPTED_ARGUMENTS: Final = frozenset(
    {
        QUEUE_TYPE,
        *CONFIG_ARGUMENTS,
        "x-initial-cluster-size",
        "x-queue-leader-locator",
        "x-stream-filter-size-bytes",
    }
)
# Arguments of other queue types that RabbitMQ refuses on a stream ("invalid arg").
REFUSED_ARGUMENTS: Final = frozenset(
    {
        "x-expires",
        "x-message-ttl",
        "x-max-length",
        "x-overflow",
        "x-dead-letter-exchange",
        "x-dead-letter-routing-key",
        "x-dead-letter-strategy",
        "x-max-priority",
        "x-queue-mode",
        "x-queue-version",
        "x-single-active-consumer",
        "x-delivery-limit",
        "x-max-in-memory-length",
        "x-max-in-memory-bytes",
        "x-quorum-initial-group-size",
        "x-queue-master-locator",
    }
)
MAX_SEGMENT_SIZE: Final = 3_000_000_000  # RabbitMQ's ceiling for x-stream-max-segment-size-bytes

_AGE: Final = re.compile(r"^([0-9]+)([YMDhms])$")
_UNIT_MS: Final = {
    "Y": 365 * 86_400_000,
    "M": 30 * 86_400_000,
    "D": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1_000,
}
_BATCH_BYTES: Final = 1 << 20  # a write is split into batches of about this many bytes
_READ_BYTES: Final = 1 << 20  # what one read of the log for a consumer asks for
_WATCH_SECONDS: Final = 3600.0  # a waiting consumer's wake-up bound (appends wake it sooner)

MessageEncoder = Callable[[Message], Record]


def is_stream(arguments: Mapping[str, Any] | None) -> bool:
    """Whether queue.declare ``arguments`` ask for a stream."""
    return arguments is not None and text_value(arguments.get(QUEUE_TYPE)) == STREAM


def parse_age(value: Any) -> int:
    """Milliseconds in a RabbitMQ age (``x-max-age``, ``x-stream-offset`` intervals): a positive
    integer and one unit of Y (365 days), M (30 days), D, h, m, s.  Raises ValueError."""
    text = text_value(value)
    match = _AGE.match(text) if text is not None else None
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(f"{value!r} is not a positive number followed by one of Y, M, D, h, m, s")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def plain_record(message: Message) -> Record:
    """A protocol-free encoding (routing key, body and exchange only): the default until a
    front-end installs one that maps its message properties too."""
    return Record(
        value=message.body,
        key=message.routing_key.encode() or None,
        headers=((EXCHANGE_HEADER, message.exchange.encode()),),
    )


def topic_configs(arguments: Mapping[str, Any], what: str) -> dict[str, str]:
    """The Kafka topic configs that stream declaration ``arguments`` set (raises InvalidArgument).

    ``what`` names the queue in messages, RabbitMQ's way: ``queue 'q' in vhost '/'``.
    """
    configs: dict[str, str] = {}
    for name, value in arguments.items():
        if name in REFUSED_ARGUMENTS:
            raise InvalidArgument(f"invalid arg '{name}' for {what} of queue type rabbit_stream_queue")
        config = CONFIG_ARGUMENTS.get(name)
        if config is None:
            continue
        if name == "x-max-age":
            try:
                configs[config] = str(parse_age(value))
            except ValueError as exc:
                raise InvalidArgument(f"invalid arg 'x-max-age' for {what}: {exc}") from None
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidArgument(f"invalid arg '{name}' for {what}: {value!r} is not a non-negative integer")
        if name == "x-stream-max-segment-size-bytes":
            if value > MAX_SEGMENT_SIZE:
                raise InvalidArgument("Exceeded max value for x-stream-max-segment-size-bytes")
            value = max(value, 1024)  # the smallest segment.bytes a topic takes
        configs[config] = str(value)
    return configs


# -- where a consumer starts ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OffsetSpec:
    """Where a consumer starts reading: ``x-stream-offset`` parsed.

    ``first``: the first record still in the log; ``last``: the first record of the last
    batch (RabbitMQ: of the last chunk); ``next``: only records appended from now on;
    ``offset``: that offset (clamped into the log); ``timestamp``: the first record whose
    timestamp (ms) is at or after ``value``, else ``next``.
    """

    kind: Literal["first", "last", "next", "offset", "timestamp"]
    value: int = 0


NEXT: Final = OffsetSpec("next")


def parse_offset_spec(value: Any, now_ms: int | None = None) -> OffsetSpec:
    """``x-stream-offset`` as RabbitMQ reads it: absent -> next; "first", "last", "next"; an
    integer offset; a timestamp (a datetime, as AMQP's timestamp type decodes); or an age such
    as "1h" or "30m", meaning from that long ago.  Raises InvalidArgument."""
    if value is None:
        return NEXT
    if isinstance(value, datetime):
        return OffsetSpec("timestamp", int(value.timestamp() * 1000))
    if isinstance(value, bool):
        raise InvalidArgument(f"invalid x-stream-offset {value!r}")
    if isinstance(value, int):
        return OffsetSpec("offset", value)
    text = text_value(value)
    if text in ("first", "last", "next"):
        return OffsetSpec(text)  # type: ignore[arg-type]  # narrowed by the test above
    try:
        age = parse_age(value)
    except ValueError:
        raise InvalidArgument(
            f"invalid x-stream-offset {value!r}: expected first, last, next, an offset, a timestamp "
            "or an interval such as 30m"
        ) from None
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return OffsetSpec("timestamp", now - age)


def resolve_offset(log_: Log, spec: OffsetSpec) -> int:
    """The first offset to read for ``spec`` in ``log_`` as it is now."""
    start, end = log_.start_offset, log_.end_offset
    if spec.kind == "first":
        return start
    if spec.kind == "next":
        return end
    if spec.kind == "offset":
        return min(max(spec.value, start), end)
    if spec.kind == "timestamp":
        found = log_.offset_for_time(spec.value)
        return end if found is None else max(found, start)
    # last: the base offset of the batch holding the last record (the last readable: below the
    # last stable offset, see the module docstring)
    end = max(log_.last_stable_offset(), start)
    if end == start:
        return end
    data = log_.read(end - 1, 1).data
    for _, header in iter_batches(data):
        return max(header.base_offset, start)
    return end


# -- consumers -------------------------------------------------------------------------------


class StreamConsumer(Protocol):
    """A subscriber a stream pushes records to.  The front-end implements it."""

    tag: str
    exclusive: bool

    def can_deliver(self) -> bool:
        """Whether it takes one more record now (credit, a writable connection)."""
        ...

    def deliver_record(self, stream: Stream, record: Record) -> None:
        """Hand over ``record``; settling it later just gives the credit back."""
        ...

    def cancelled(self, stream: Stream) -> None:
        """The broker removed this consumer (the stream was deleted)."""
        ...


class _Reader:
    """One consumer's position: the next offset and records read ahead but not yet delivered."""

    __slots__ = ("buffer", "consumer", "offset")

    def __init__(self, consumer: StreamConsumer, offset: int) -> None:
        self.consumer = consumer
        self.offset = offset
        self.buffer: deque[Record] = deque()


# -- the stream ------------------------------------------------------------------------------


def _bridged(entry: QueueEntry) -> bool:
    """The message is a copy of a topic's record routed by ``amq.kafka``."""
    return entry.message.exchange == KAFKA_EXCHANGE


class Stream:
    """An AMQP stream queue over partition 0 of the topic of the same name."""

    type_name: Final = "stream"
    consumer_timeout_ms: Final = None  # the broker's
    durable: Final = True
    auto_delete: Final = False
    exclusive_owner: Final = None

    def __init__(
        self,
        name: str,
        log_: Log,
        *,
        topics: Topics,
        arguments: Mapping[str, Any] | None = None,
        encode: MessageEncoder = plain_record,
        defer: Defer | None = None,
    ) -> None:
        self.name = name
        self.log = log_
        self.topics = topics
        self.waiters = topics.waiters
        self.arguments = dict(arguments or {})
        self.encode = encode
        # One record batch per event-loop iteration: ``defer`` (the loop's call_soon)
        # schedules the write; None writes each message at once.
        self.defer = defer
        self._unwritten: list[QueueEntry] = []
        self._write_waiters: list[tuple[QueueEntry, DurableCallback]] = []
        self._seq = 0
        self._readers: dict[int, _Reader] = {}  # by id(consumer), in subscription order
        self._watcher: asyncio.Task[None] | None = None
        self._deleted = False
        self.stats = MessageStats()

    # -- state ---------------------------------------------------------------------------------

    @property
    def message_count(self) -> int:
        """Records in the log (RabbitMQ reports a stream's length the same way)."""
        return self.log.end_offset - self.log.start_offset + len(self._unwritten)

    @property
    def consumer_count(self) -> int:
        return len(self._readers)

    @property
    def unacked_count(self) -> int:
        return 0  # deliveries hold credit in the channel, nothing in the stream

    @property
    def deleted(self) -> bool:
        return self._deleted

    def check_owner(self, owner: object) -> None:
        """Streams are never exclusive: anyone may use them."""

    # -- publishing ----------------------------------------------------------------------------

    def enqueue(self, message: Message) -> QueueEntry | None:
        """Append ``message`` (in this iteration's batch); None once the stream is deleted."""
        if self._deleted:
            return None
        self._seq += 1
        self.stats.publish += 1
        entry = QueueEntry(message, self._seq, UNWRITTEN)
        self._unwritten.append(entry)
        if self.defer is None:
            self.write_pending()
        elif len(self._unwritten) == 1:
            self.defer(self.write_pending)
        return entry

    def write_pending(self) -> None:
        """Append the messages enqueued since the last write, in batches of about 1 MiB."""
        entries, self._unwritten = self._unwritten, []
        waiters, self._write_waiters = self._write_waiters, []
        if not entries or self._deleted:
            for _, callback in waiters:
                callback(None)
            return
        try:
            start = 0
            size = 0
            last = len(entries) - 1
            for i, entry in enumerate(entries):
                size += len(entry.message.body) + len(entry.message.routing_key) + 64
                if size >= _BATCH_BYTES or i == last or _bridged(entry) != _bridged(entries[i + 1]):
                    self._append(entries[start : i + 1])
                    start, size = i + 1, 0
        except StorageError as exc:
            log.error("stream %s: append failed: %s", self.name, exc)
            for entry in entries:
                if entry.offset == UNWRITTEN:
                    entry.offset = -1
            for _, callback in waiters:
                callback(exc)
            return
        for entry, callback in waiters:
            if entry.offset >= 0:
                self.log.when_durable(entry.offset, callback)
            else:
                callback(StorageError(f"stream {self.name}: the message was not written"))
        self.dispatch()

    def _append(self, entries: list[QueueEntry]) -> None:
        encode = self.encode
        records = [encode(e.message) for e in entries]
        # what came through amq.kafka is not routed through it again (streams bound to each
        # other's topics would pass records round for ever)
        base = self.topics.append_records(self.log, records, route=not _bridged(entries[0])).base_offset
        for i, entry in enumerate(entries):
            entry.offset = base + i

    def when_durable(self, entry: QueueEntry, callback: DurableCallback) -> None:
        """Call ``callback(None)`` once ``entry`` is on disk, or ``callback(error)`` if it cannot be."""
        if entry.offset == UNWRITTEN:
            self._write_waiters.append((entry, callback))
        elif entry.offset >= 0:
            self.log.when_durable(entry.offset, callback)
        else:
            callback(StorageError(f"stream {self.name}: the message was not written"))

    # -- consuming -----------------------------------------------------------------------------

    def subscribe(
        self,
        consumer: StreamConsumer,
        *,
        no_ack: bool,
        prefetch: int,
        global_prefetch: int,
        arguments: Mapping[str, Any],
    ) -> None:
        """A consumer, under RabbitMQ's rules for streams: manual acks and a consumer prefetch
        are required; ``x-stream-offset`` says where reading starts."""
        what = f"queue '{self.name}' in vhost '/'"
        if not prefetch:
            raise PreconditionFailed(f"consumer prefetch count is not set for {what}")
        if no_ack:
            raise Unsupported(f"automatic acknowledgement not supported by stream queues {what}")
        if global_prefetch:
            raise Unsupported(f"{what} does not support global qos")
        self._add_reader(consumer, parse_offset_spec(arguments.get("x-stream-offset")))

    def add_consumer(self, consumer: StreamConsumer, start: OffsetSpec = NEXT) -> None:
        self._add_reader(consumer, start)
        self.dispatch()

    def _add_reader(self, consumer: StreamConsumer, start: OffsetSpec) -> None:
        if consumer.exclusive and self._readers:
            raise ResourceLocked(f"queue '{self.name}' in use: cannot obtain exclusive access")
        if any(r.consumer.exclusive for r in self._readers.values()):
            raise ResourceLocked(f"queue '{self.name}' has an exclusive consumer")
        self.write_pending()  # "next" means after what was published before the subscription
        self._readers[id(consumer)] = _Reader(consumer, resolve_offset(self.log, start))

    def remove_consumer(self, consumer: StreamConsumer) -> None:
        self._readers.pop(id(consumer), None)
        if not self._readers:
            self._stop_watching()

    def consumer_offset(self, consumer: StreamConsumer) -> int | None:
        """The next offset ``consumer`` will be given (None if it does not consume here)."""
        reader = self._readers.get(id(consumer))
        if reader is None:
            return None
        return reader.buffer[0].offset if reader.buffer else reader.offset

    def dispatch(self) -> None:
        """Give every consumer records while it has credit and the log has records for it."""
        if self._deleted:
            return
        for reader in list(self._readers.values()):
            consumer = reader.consumer
            buffer = reader.buffer
            while consumer.can_deliver():
                if not buffer and not self._read_ahead(reader):
                    break
                record = buffer.popleft()
                consumer.deliver_record(self, record)
                if self._deleted:
                    return
        if self._readers and self._watcher is None:
            self._watch()

    def _read_ahead(self, reader: _Reader) -> bool:
        """Fill ``reader.buffer`` from the log (committed records only); False at the end of the
        log or at its last stable offset."""
        log_ = self.log
        while reader.offset < log_.last_stable_offset():
            if reader.offset < log_.start_offset:
                reader.offset = log_.start_offset  # retention went past it: skip ahead
                continue
            try:
                data = log_.read(reader.offset, _READ_BYTES).data
            except OffsetOutOfRangeError:
                reader.offset = log_.start_offset
                continue
            except StorageError as exc:
                log.error("stream %s: read at %d failed: %s", self.name, reader.offset, exc)
                return False
            if not data:
                return False
            offset = reader.offset
            view = log_.committed_view(offset)
            for pos, header in iter_batches(data):
                if header.base_offset >= view.last_stable_offset:
                    break  # an open transaction's: not readable yet
                if not view.visible(header):  # a marker, or an aborted transaction's
                    offset = max(offset, header.next_offset)
                    continue
                try:
                    records = [r for r in decode_records(data, pos) if r.offset >= offset]
                except (StorageError, ValueError) as exc:
                    log.error(
                        "stream %s: skipping undecodable batch at offset %d: %s",
                        self.name,
                        header.base_offset,
                        exc,
                    )
                    records = []
                reader.buffer.extend(records)
                offset = max(offset, header.next_offset)
            if offset <= reader.offset:
                return False  # a partial batch only: nothing more can be read now
            reader.offset = offset
            if reader.buffer:
                return True
        return False

    def _watch(self) -> None:
        """Start the task that wakes consumers when anyone (Kafka producers too) appends."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (synchronous use): whoever appends calls dispatch()
        self._watcher = loop.create_task(self._wait_for_appends(), name=f"jackalope-stream-{self.name}")

    async def _wait_for_appends(self) -> None:
        try:
            while self._readers and not self._deleted:
                await self.waiters.wait((self.log,), _WATCH_SECONDS)
                await asyncio.sleep(0)  # let the other appends of this iteration land too
                self._watcher_dispatch()
        finally:
            if self._watcher is asyncio.current_task():
                self._watcher = None

    def _watcher_dispatch(self) -> None:
        if self._deleted:
            return
        try:
            self.dispatch()
        except Exception:  # a failing consumer must not end the wake-ups of the others
            log.exception("stream %s: dispatch failed", self.name)

    def _stop_watching(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None and not watcher.done():
            watcher.cancel()

    def get(self) -> QueueEntry | None:
        raise Unsupported(f"basic.get not supported by stream queues queue '{self.name}' in vhost '/'")

    # -- settling: credit only -----------------------------------------------------------------

    def ack(self, entry: QueueEntry) -> None:
        """Nothing to do: a stream keeps its records (the channel returns the credit)."""

    def purge(self) -> int:
        raise Unsupported(f"queue.purge not supported by stream queues queue '{self.name}' in vhost '/'")

    def requeue(self, entries: Iterable[QueueEntry], *, failed: bool = True) -> None:
        """Streams never requeue: a nack or reject with requeue is an ack (as RabbitMQ)."""

    def discard(self, entries: Iterable[QueueEntry]) -> None:
        """Streams never dead-letter: a nack or reject is an ack (as RabbitMQ)."""

    # -- life and death ------------------------------------------------------------------------

    def logs(self) -> list[Log]:
        return [self.log]

    def delete(self) -> None:
        """The stream goes (its topic is deleted by the caller): consumers are told."""
        self._deleted = True
        self._unwritten = []
        waiters, self._write_waiters = self._write_waiters, []
        for _, callback in waiters:
            callback(None)  # routed, then deleted with its stream: confirmed, as for queues
        self._stop_watching()
        readers, self._readers = self._readers, {}
        for reader in readers.values():
            reader.consumer.cancelled(self)

    def close(self) -> None:
        """Clean shutdown: write what is pending."""
        with contextlib.suppress(StorageError):
            self.write_pending()
        self._stop_watching()
