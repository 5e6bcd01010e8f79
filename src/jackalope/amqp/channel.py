"""One AMQP channel: publishing (with confirms, mandatory returns and transactions),
consumers with prefetch, deliveries and their acknowledgements.

The channel translates AMQP methods into calls on the broker core and holds only what is
the channel's by the spec: delivery tags, unacknowledged deliveries, confirm sequence
numbers, the transaction buffer.  Errors from the core become channel or connection closes
with the matching reply code (raised as :class:`~jackalope.amqp.errors.ChannelException` /
:class:`~jackalope.amqp.errors.ConnectionException`).  The channel writes through the narrow
:class:`~jackalope.amqp.output.ChannelOutput` its connection gives it; its consumers are
:mod:`jackalope.amqp.consumers`, and what waits for the disk :mod:`jackalope.amqp.confirms`.
"""

from __future__ import annotations

import base64
import logging
import os
import re
from collections import deque
from collections.abc import Callable, Collection, Iterable
from typing import Any, Final

from pamqp import base as pamqp_base
from pamqp import commands as spec

from jackalope.amqp import constants as c
from jackalope.amqp import properties as props
from jackalope.amqp import stream_records
from jackalope.amqp.confirms import Commit, PendingConfirm
from jackalope.amqp.consumer_timeouts import ConsumerTimeouts
from jackalope.amqp.consumers import STREAM_ENTRY, ChannelConsumer, Unacked, delivered_properties
from jackalope.amqp.errors import ChannelException, ConnectionException
from jackalope.amqp.output import ChannelOutput
from jackalope.amqp.reader import Publish
from jackalope.amqp.writers import build_method
from jackalope.core import errors as core_errors
from jackalope.core.exchanges import UnknownExchangeType
from jackalope.core.message import Message, QueueEntry
from jackalope.core.permissions import Grant, Kind
from jackalope.core.queue import Queue
from jackalope.core.queue_types import QueueType
from jackalope.core.stats import MessageStats
from jackalope.core.stream import Stream
from jackalope.core.vhost import REPLY_TO, Target, VirtualHost
from jackalope.storage import Log, Record

ERROR_CODES: Final[dict[type[core_errors.CoreError], int]] = {
    core_errors.NotFound: c.NOT_FOUND,
    core_errors.AccessRefused: c.ACCESS_REFUSED,
    core_errors.ResourceLocked: c.RESOURCE_LOCKED,
    core_errors.PreconditionFailed: c.PRECONDITION_FAILED,
    core_errors.InvalidArgument: c.PRECONDITION_FAILED,
    core_errors.NotAllowed: c.NOT_ALLOWED,
}


def _tag(prefix: str) -> str:
    return prefix + base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")


log = logging.getLogger(__name__)


_USER_ID_FLAG: Final = 0x10  # bit 4 of the property flags (low byte)
_REPLY_TO_FLAG_HIGH: Final = 0x02  # bit 9 of the property flags (high byte)


def _no_headers() -> dict[str, Any]:
    return {}


_NO_HEADERS: Final = _no_headers  # the default exchange routes by name only
_PROPERTY_FACTS: dict[bytes, tuple[bool, int | None, int]] = {}  # property lists -> _property_facts
_EXPIRATION_FLAG: Final = 0x0100
_PRIORITY_FLAG: Final = 0x0800
_INTEGER: Final = re.compile(r"-?[0-9]+")


def _property_facts(properties: bytes) -> tuple[bool, int | None, int]:
    """What the core needs of a property list: persistent or not (delivery mode 2), the
    expiration in ms (None for none) and the priority (0 for none); a bad expiration closes
    the channel, as on RabbitMQ."""
    persistent = props.delivery_mode(properties) == 2
    flags = ((properties[0] << 8) | properties[1]) if len(properties) >= 2 else 0
    if not flags & (_EXPIRATION_FLAG | _PRIORITY_FLAG):
        return persistent, None, 0
    decoded = props.decode_properties(properties)
    value = decoded.get("priority")
    priority = value if isinstance(value, int) else 0
    if not flags & _EXPIRATION_FLAG:
        return persistent, None, priority
    value = decoded.get("expiration")
    text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    digits = _INTEGER.match(text)
    if digits is None:
        reason = "no_integer"
    elif digits.end() < len(text):
        reason = f'{{leftover_string,"{text[digits.end() :]}"}}'
    elif int(text) < 0:
        reason = f"{{value_negative,{text}}}"
    else:
        return persistent, int(text), priority
    raise ChannelException(c.PRECONDITION_FAILED, f"invalid expiration '{text}': {reason}", c.BASIC_PUBLISH)


def _consumer_priority(m: spec.Basic.Consume, queue: str, vhost: str) -> int:
    """A consumer's ``x-priority`` (0 when none), checked as RabbitMQ checks it."""
    value = (m.arguments or {}).get("x-priority", 0)
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "longstr" if isinstance(value, str | bytes) else type(value).__name__
        reason = (
            f"invalid arg 'x-priority' for queue '{queue}' in vhost '{vhost}': "
            f'"expected integer, got {kind}"'
        )
        raise ChannelException(c.PRECONDITION_FAILED, reason, m.index)
    return value


class Channel:
    def __init__(
        self, output: ChannelOutput, number: int, vhost: VirtualHost, user: str, grant: Grant
    ) -> None:
        self.output = output  # also the owner of this connection's exclusive queues
        self.number = number
        self.vhost = vhost
        self.user = user
        self.last_queue: str | None = None  # what an empty queue name means (queue.declare's)
        # The user's permissions, checked as RabbitMQ's channel checks them (each method's
        # handler says which; declarations check inside the vhost, in RabbitMQ's order).
        self.grant = grant
        self.timeouts = ConsumerTimeouts(self)
        self.closing = False
        self.consumers: dict[str, ChannelConsumer] = {}
        self._held_cancels: list[str] | None = None  # during queue.delete: sent after delete-ok
        self.unacked: dict[int, Unacked] = {}
        self.unacked_count = 0
        self.global_prefetch = 0
        self.consumer_prefetch = 0
        self.delivery_tag = 0
        # confirms: every seq <= confirm_floor has been answered
        self.confirming = False
        self.publish_seq = 0
        self.confirm_floor = 0
        self.settled_above: set[int] = set()
        self.nacked: set[int] = set()
        self.ack_floor_sent = 0
        self.in_flight = 0
        # transactions
        self.tx = False
        self.tx_publishes: list[tuple[Publish, bytes, bytes]] = []
        self.tx_settlements: list[Callable[[], Iterable[QueueType]]] = []
        self.commits: deque[Commit] = deque()  # committed, waiting for the disk
        # direct reply-to: this channel's private reply queue, once it consumes from it
        self.reply_queue: Queue | None = None
        self.stats = MessageStats()  # this channel's message_stats (core.clients sums them)

    # -- dispatch of methods -------------------------------------------------------------------

    def handle_method(self, method: Any) -> None:
        handler = self._HANDLERS.get(type(method))
        if handler is None:
            raise ConnectionException(c.NOT_IMPLEMENTED, f"{method.name} is not implemented", method.index)
        try:
            handler(self, method)
        except core_errors.Unsupported as exc:  # RabbitMQ: a connection error
            raise ConnectionException(c.NOT_IMPLEMENTED, str(exc), method.index) from None
        except core_errors.CoreError as exc:
            code = ERROR_CODES.get(type(exc), c.PRECONDITION_FAILED)
            raise ChannelException(code, str(exc), method.index) from None

    def send(self, method: pamqp_base.Frame) -> None:
        self.output.send_method(self.number, method)

    # -- exchanges ---------------------------------------------------------------------------

    def _exchange_declare(self, m: spec.Exchange.Declare) -> None:
        try:
            self.vhost.declare_exchange(
                m.exchange,
                m.exchange_type,
                durable=m.durable,
                auto_delete=m.auto_delete,
                internal=m.internal,
                arguments=m.arguments or {},
                passive=m.passive,
                grant=self.grant,
            )
        except UnknownExchangeType as exc:  # x-delayed-type too names the type
            raise ConnectionException(
                c.COMMAND_INVALID, f"unknown exchange type '{exc.type_name}'", m.index
            ) from None
        if not m.nowait:
            self.send(spec.Exchange.DeclareOk())

    def _exchange_delete(self, m: spec.Exchange.Delete) -> None:
        if m.exchange and not m.exchange.startswith("amq."):  # those are refused as such first
            self.grant.check("configure", "exchange", m.exchange)
        self.vhost.delete_exchange(m.exchange, if_unused=m.if_unused)
        if not m.nowait:
            self.send(spec.Exchange.DeleteOk())

    def _check_binding(self, kind: Kind, destination: str, source: str) -> None:
        """RabbitMQ's binding rule: write on the destination, read on the source exchange (the
        default exchange, refused as such, needs no check)."""
        self.grant.check("write", kind, destination)
        if source and destination:
            self.grant.check("read", "exchange", source)

    def _exchange_bind(self, m: spec.Exchange.Bind) -> None:
        self._check_binding("exchange", m.destination, m.source)
        self.vhost.bind_exchange(m.destination, m.source, m.routing_key, m.arguments or {})
        if not m.nowait:
            self.send(spec.Exchange.BindOk())

    def _exchange_unbind(self, m: spec.Exchange.Unbind) -> None:
        self._check_binding("exchange", m.destination, m.source)
        self.vhost.unbind_exchange(m.destination, m.source, m.routing_key, m.arguments or {})
        if not m.nowait:
            self.send(spec.Exchange.UnbindOk())

    # -- queues ------------------------------------------------------------------------------

    def _queue_declare(self, m: spec.Queue.Declare) -> None:
        if m.queue == REPLY_TO and m.passive:
            if not m.nowait:
                self.send(
                    build_method(spec.Queue.DeclareOk, queue=REPLY_TO, message_count=0, consumer_count=0)
                )
            return
        queue = self.vhost.declare_queue(
            m.queue,
            owner=self.output,
            durable=m.durable,
            exclusive=m.exclusive,
            auto_delete=m.auto_delete,
            arguments=m.arguments or {},
            passive=m.passive,
            grant=self.grant,
        )
        self.last_queue = queue.name
        if not m.nowait:
            self.send(
                build_method(
                    spec.Queue.DeclareOk,
                    queue=queue.name,
                    message_count=queue.message_count,
                    consumer_count=queue.consumer_count,
                )
            )

    def _queue_name(self, name: str) -> str:
        """AMQP's shortcut: an empty queue name is the queue last declared on the channel."""
        if name:
            return name
        if self.last_queue is None:
            raise core_errors.NotFound("no previously declared queue")
        return self.last_queue

    def _queue_bind(self, m: spec.Queue.Bind) -> None:
        queue = self._queue_name(m.queue)
        routing_key = m.routing_key or ("" if m.queue else queue)  # the shortcut covers both
        self._check_binding("queue", queue, m.exchange or "")
        self.vhost.bind_queue(queue, m.exchange, routing_key, m.arguments or {}, self.output)
        if not m.nowait:
            self.send(spec.Queue.BindOk())

    def _queue_unbind(self, m: spec.Queue.Unbind) -> None:
        queue = self._queue_name(m.queue)
        routing_key = m.routing_key or ("" if m.queue else queue)
        self._check_binding("queue", queue, m.exchange or "")
        self.vhost.unbind_queue(queue, m.exchange, routing_key, m.arguments or {}, self.output)
        self.send(spec.Queue.UnbindOk())

    def _queue_purge(self, m: spec.Queue.Purge) -> None:
        name = self._queue_name(m.queue)
        self.grant.check("read", "queue", name)
        count = self.vhost.queue(name, self.output).purge()
        if not m.nowait:
            self.send(spec.Queue.PurgeOk(count))

    def _queue_delete(self, m: spec.Queue.Delete) -> None:
        # This channel's own consumers of the queue hear basic.cancel after delete-ok, as
        # RabbitMQ orders them.
        name = self._queue_name(m.queue)
        self.grant.check("configure", "queue", name)
        self._held_cancels = []
        try:
            count = self.vhost.delete_queue(
                name, owner=self.output, if_unused=m.if_unused, if_empty=m.if_empty
            )
            if not m.nowait:
                self.send(spec.Queue.DeleteOk(count))
        finally:
            held, self._held_cancels = self._held_cancels, None
        for tag in held:
            self.send(spec.Basic.Cancel(tag, nowait=True))

    # -- basic: consuming --------------------------------------------------------------------

    def _basic_qos(self, m: spec.Basic.Qos) -> None:
        if m.prefetch_size:
            raise ConnectionException(c.NOT_IMPLEMENTED, f"prefetch_size!=0 ({m.prefetch_size})", m.index)
        if m.global_:
            self.global_prefetch = m.prefetch_count
        else:
            self.consumer_prefetch = m.prefetch_count
        self.send(spec.Basic.QosOk())
        for consumer in list(self.consumers.values()):
            consumer.queue.dispatch()

    def _basic_consume(self, m: spec.Basic.Consume) -> None:
        if m.queue == REPLY_TO:
            if not m.no_ack:
                raise ChannelException(c.PRECONDITION_FAILED, "reply consumer cannot acknowledge", m.index)
            if self.reply_queue is not None:
                raise ChannelException(c.PRECONDITION_FAILED, "reply consumer already set", m.index)
            self.reply_queue = self.vhost.open_reply_queue()
            queue: QueueType = self.reply_queue
        else:
            name = self._queue_name(m.queue)
            self.grant.check("read", "queue", name)
            queue = self.vhost.queue(name, self.output)
        priority = _consumer_priority(m, queue.name, self.vhost.name)
        tag = m.consumer_tag or _tag("amq.ctag-")
        if tag in self.consumers:
            raise ConnectionException(c.NOT_ALLOWED, f"attempt to reuse consumer tag '{tag}'", m.index)
        if m.exclusive and queue.consumer_count:
            raise ChannelException(c.ACCESS_REFUSED, f"queue '{queue.name}' in exclusive use", m.index)
        consumer = ChannelConsumer(self, queue, tag, m.no_ack, m.exclusive, self.consumer_prefetch, priority)
        self.consumers[tag] = consumer
        try:
            queue.subscribe(
                consumer,
                no_ack=m.no_ack,
                prefetch=self.consumer_prefetch,
                global_prefetch=self.global_prefetch,
                arguments=m.arguments or {},
            )
        except core_errors.CoreError as exc:
            del self.consumers[tag]
            if isinstance(exc, core_errors.ResourceLocked):
                raise ChannelException(c.ACCESS_REFUSED, str(exc), m.index) from None
            raise
        if not m.nowait:
            self.send(spec.Basic.ConsumeOk(tag))
        queue.dispatch()  # after consume-ok: its first deliveries

    def _basic_cancel(self, m: spec.Basic.Cancel) -> None:
        consumer = self.consumers.pop(m.consumer_tag or "", None)
        if consumer is not None:
            consumer.queue.remove_consumer(consumer)
            if consumer.queue is self.reply_queue:
                self.vhost.close_reply_queue(self.reply_queue)
                self.reply_queue = None
        if not m.nowait:
            self.send(spec.Basic.CancelOk(m.consumer_tag))

    def cancel_late_consumer(self, consumer: ChannelConsumer) -> None:
        """The consumer timeout: ``consumer`` goes, its unacknowledged deliveries back to the
        queue (failed deliveries, as a lost consumer's), with basic.cancel if the client asked."""
        if self.consumers.pop(consumer.tag, None) is None:
            return
        consumer.queue.remove_consumer(consumer)
        if self.output.cancel_notify:
            self.send(spec.Basic.Cancel(consumer.tag, nowait=True))
        tags = [tag for tag, item in self.unacked.items() if item.consumer is consumer]
        taken = [self.unacked.pop(tag) for tag in tags]
        self.unacked_count -= len(taken)
        consumer.unacked = 0
        self._settle(taken, ack=False, requeue=True)

    def consumer_cancelled_by_broker(self, consumer: ChannelConsumer) -> None:
        if self.consumers.pop(consumer.tag, None) is None or self.closing:
            return
        if self.output.cancel_notify:  # else the client never hears of it, as on RabbitMQ
            if self._held_cancels is not None:
                self._held_cancels.append(consumer.tag)
            else:
                self.send(spec.Basic.Cancel(consumer.tag, nowait=True))

    def deliver_record(self, consumer: ChannelConsumer, stream: Stream, record: Record) -> None:
        """A stream record to a stream consumer (always acknowledged by hand)."""
        self.delivery_tag += 1
        tag = self.delivery_tag
        self.unacked[tag] = Unacked(stream, STREAM_ENTRY, consumer)
        self.timeouts.delivered()
        self.unacked_count += 1
        consumer.unacked += 1
        exchange, routing_key, properties = stream_records.message_from_record(
            record.key, record.headers, record.timestamp, record.offset
        )
        self.output.deliver(
            self.number,
            consumer.tag_bytes,
            tag,
            False,
            exchange,
            routing_key,
            properties,
            record.value or b"",
        )

    def _basic_get(self, m: spec.Basic.Get) -> None:
        name = self._queue_name(m.queue)
        self.grant.check("read", "queue", name)
        queue = self.vhost.queue(name, self.output)
        entry = queue.get()
        if entry is None:
            self.stats.get_empty += 1
            self.send(spec.Basic.GetEmpty())
            return
        self.delivery_tag += 1
        tag = self.delivery_tag
        if entry.redelivered:
            self.stats.redeliver += 1
        if m.no_ack:
            self.stats.get_no_ack += 1
            queue.ack(entry)
        else:
            self.stats.get += 1
            self.unacked[tag] = Unacked(queue, entry, None)
            self.unacked_count += 1
            self.timeouts.delivered()
        message = entry.message
        self.output.get_ok(
            self.number,
            tag,
            entry.redelivered,
            message.exchange,
            message.routing_key,
            queue.message_count,
            delivered_properties(entry),
            message.body,
        )

    # -- basic: settling deliveries ------------------------------------------------------------

    def _take(self, delivery_tag: int, multiple: bool, index: int) -> list[Unacked]:
        if multiple:
            if delivery_tag == 0:
                taken = list(self.unacked.values())
                self.unacked.clear()
            else:
                tags = []
                for t in self.unacked:  # tags ascend
                    if t > delivery_tag:
                        break
                    tags.append(t)
                if not tags and delivery_tag not in self.unacked:
                    raise ChannelException(
                        c.PRECONDITION_FAILED, f"unknown delivery tag {delivery_tag}", index
                    )
                taken = [self.unacked.pop(t) for t in tags]
        else:
            item = self.unacked.pop(delivery_tag, None)
            if item is None:
                raise ChannelException(c.PRECONDITION_FAILED, f"unknown delivery tag {delivery_tag}", index)
            taken = [item]
        self.unacked_count -= len(taken)
        for item in taken:
            if item.consumer is not None:
                item.consumer.unacked -= 1
        return taken

    def ack(self, delivery_tag: int, multiple: bool) -> None:
        if self.tx:  # settled at commit, forgotten at rollback
            self.tx_settlements.append(lambda: self.ack_now(delivery_tag, multiple))
        else:
            self.ack_now(delivery_tag, multiple)

    def ack_now(self, delivery_tag: int, multiple: bool) -> Iterable[QueueType]:
        return self._settle(self._take(delivery_tag, multiple, c.BASIC_ACK), ack=True, requeue=False)

    def nack(self, delivery_tag: int, multiple: bool, requeue: bool, index: int = c.BASIC_NACK) -> None:
        if self.tx:
            self.tx_settlements.append(lambda: self.nack_now(delivery_tag, multiple, requeue, index))
        else:
            self.nack_now(delivery_tag, multiple, requeue, index)

    def nack_now(self, delivery_tag: int, multiple: bool, requeue: bool, index: int) -> Iterable[QueueType]:
        # RabbitMQ 4.3 counts a reject as a failed delivery (quorum queues), a nack as a return
        failed = index != c.BASIC_NACK
        return self._settle(
            self._take(delivery_tag, multiple, index), ack=False, requeue=requeue, failed=failed
        )

    def _settle(
        self, taken: list[Unacked], *, ack: bool, requeue: bool, failed: bool = True
    ) -> Iterable[QueueType]:
        """Settle deliveries; return the queues they came from."""
        queues: dict[int, QueueType] = {}
        if ack:
            self.stats.ack += len(taken)
            last = None
            for item in taken:
                queue = item.queue
                queue.ack(item.entry)
                if queue is not last:
                    queues[id(queue)] = last = queue
        else:
            by_queue: dict[int, list[QueueEntry]] = {}
            for item in taken:
                queues[id(item.queue)] = item.queue
                by_queue.setdefault(id(item.queue), []).append(item.entry)
            for key, entries in by_queue.items():
                if requeue:
                    queues[key].requeue(entries, failed=failed)
                else:
                    queues[key].discard(entries)
        for queue in queues.values():  # freed prefetch credit
            queue.dispatch()
        if self.global_prefetch:
            for consumer in list(self.consumers.values()):
                consumer.queue.dispatch()
        return queues.values()

    def _basic_recover(self, m: spec.Basic.Recover) -> None:
        if not m.requeue:
            raise ConnectionException(c.NOT_IMPLEMENTED, "requeue=false", m.index)
        self.requeue_all()
        self.send(spec.Basic.RecoverOk())

    def _basic_recover_async(self, m: spec.Basic.RecoverAsync) -> None:
        """Deprecated, and still served as RabbitMQ serves it: basic.recover without the reply."""
        if not m.requeue:
            raise ConnectionException(c.NOT_IMPLEMENTED, "requeue=false", m.index)
        self.requeue_all()

    def requeue_all(self) -> None:
        """Every unacknowledged delivery goes back to its queue, in order."""
        taken = list(self.unacked.values())
        self.unacked.clear()
        self.unacked_count = 0
        for item in taken:
            if item.consumer is not None:
                item.consumer.unacked -= 1
        self._settle(taken, ack=False, requeue=True)

    # -- basic: publishing ---------------------------------------------------------------------

    def publish(self, event: Publish, properties: bytes, body: bytes) -> None:
        """A whole message has arrived (method, header, body)."""
        self.stats.publish += 1
        try:  # write on the exchange (the default one is amq.default), before it is looked up
            self.grant.check_publish(event.exchange)
        except core_errors.AccessRefused as exc:
            raise ChannelException(c.ACCESS_REFUSED, str(exc), c.BASIC_PUBLISH) from None
        if self.tx:
            # Checked now, as RabbitMQ checks it (a missing exchange closes the channel at the
            # publish); routed at tx.commit.
            self._check_publish(event, properties)
            self._message(event, properties, body)  # a bad expiration, too, fails at the publish
            self.tx_publishes.append((event, properties, body))
            return
        if event.exchange or properties[0] & _REPLY_TO_FLAG_HIGH or properties[1] & _USER_ID_FLAG:
            queues, properties = self._resolve(event, properties)
        else:  # the default exchange, nothing to check or rewrite: the common case, inlined
            queues = self.vhost.route("", event.routing_key, _NO_HEADERS)
        if not self.confirming:
            if queues:
                message = self._message(event, properties, body)
                for queue in queues:
                    queue.enqueue(message)
            elif event.mandatory:
                self._return_unroutable(event, properties, body)
            else:
                self.stats.drop_unroutable += 1
            return
        self.publish_seq += 1
        waiting, refused = self._enqueue(event, properties, body, queues)
        if not waiting:
            self.confirm_settled(self.publish_seq, not refused)
            return
        pending = PendingConfirm(self, self.publish_seq, len(waiting), refused)
        self.in_flight += 1
        self.output.publish_backlog(+1)
        for queue, entry in waiting:
            queue.when_durable(entry, pending.done)

    def _enqueue(
        self, event: Publish, properties: bytes, body: bytes, queues: Collection[Target]
    ) -> tuple[list[tuple[Target, QueueEntry]], bool]:
        if not queues:
            if event.mandatory:
                self._return_unroutable(event, properties, body)
            else:
                self.stats.drop_unroutable += 1
            return [], False
        message = self._message(event, properties, body)
        waiting: list[tuple[Target, QueueEntry]] = []
        refused = False
        for queue in queues:
            entry = queue.enqueue(message)
            if entry is None:
                refused = True
            elif entry.offset != -1:  # on its way to a log
                waiting.append((queue, entry))
        return waiting, refused

    @staticmethod
    def _message(event: Publish, properties: bytes, body: bytes) -> Message:
        known = _PROPERTY_FACTS.get(properties)
        if known is None:  # clients repeat their property lists: decided once for each
            known = _property_facts(properties)
            if len(_PROPERTY_FACTS) >= 4096:
                _PROPERTY_FACTS.clear()
            _PROPERTY_FACTS[properties] = known
        persistent, ttl, priority = known
        return Message(event.exchange, event.routing_key, properties, body, persistent, ttl, priority)

    def _return_unroutable(self, event: Publish, properties: bytes, body: bytes) -> None:
        self.stats.return_unroutable += 1
        self.output.basic_return(
            self.number, c.NO_ROUTE, "NO_ROUTE", event.exchange, event.routing_key, properties, body
        )

    def _resolve(self, event: Publish, properties: bytes) -> tuple[Collection[Target], bytes]:
        """The queues ``event`` reaches, and its properties as they will be delivered (direct
        reply-to rewritten); raises the channel exception a bad publish earns."""
        properties = self._check_publish(event, properties)
        try:
            if event.exchange:
                return self.vhost.route(
                    event.exchange, event.routing_key, props.LazyProperties(properties)
                ), properties
            return self.vhost.route("", event.routing_key, _NO_HEADERS), properties
        except core_errors.CoreError as exc:
            raise ChannelException(
                ERROR_CODES.get(type(exc), c.PRECONDITION_FAILED), str(exc), c.BASIC_PUBLISH
            ) from None

    def _check_publish(self, event: Publish, properties: bytes) -> bytes:
        if len(properties) >= 2 and properties[0] & _REPLY_TO_FLAG_HIGH:
            properties = self._direct_reply_to(properties)
        if len(properties) >= 2 and properties[1] & _USER_ID_FLAG:
            user_id = props.decode_properties(properties).get("user_id")
            if user_id != self.user:
                reason = f"user_id property set to '{user_id!s}' but authenticated user was '{self.user}'"
                raise ChannelException(c.PRECONDITION_FAILED, reason, c.BASIC_PUBLISH)
        if event.exchange:
            try:
                self.vhost.check_publish(event.exchange)
            except core_errors.CoreError as exc:
                raise ChannelException(
                    ERROR_CODES.get(type(exc), c.PRECONDITION_FAILED), str(exc), c.BASIC_PUBLISH
                ) from None
        return properties

    def _direct_reply_to(self, properties: bytes) -> bytes:
        """Point a request's ``reply_to: amq.rabbitmq.reply-to`` at this channel's reply queue."""
        value, start, end = props.reply_to(properties)
        if value != REPLY_TO:
            return properties
        if self.reply_queue is None:
            raise ChannelException(c.PRECONDITION_FAILED, "fast reply consumer does not exist", 0x3C0028)
        return props.replace_reply_to(properties, start, end, self.reply_queue.name)

    def confirm_settled(self, seq: int, ok: bool) -> None:
        """Publish ``seq`` is answered: nack at once; acks go out in order, coalesced into one
        ``multiple`` ack per flush (see :meth:`flush_confirms`)."""
        if self.closing:
            return
        if ok:
            self.stats.confirm += 1
        else:
            self.output.confirm(self.number, seq, False, False)
            self.nacked.add(seq)
        if seq == self.confirm_floor + 1:
            floor = seq
            settled = self.settled_above
            while floor + 1 in settled:
                floor += 1
                settled.remove(floor)
            self.confirm_floor = floor
            if floor > self.ack_floor_sent:
                self.output.confirms_due(self)
        else:
            self.settled_above.add(seq)

    def flush_confirms(self) -> None:
        """One basic.ack (multiple) for everything settled in order since the last flush;
        a nacked publish in the range splits it, since it must not be acked too."""
        floor = self.confirm_floor
        if floor <= self.ack_floor_sent or self.closing:
            return
        confirm = self.output.confirm
        if self.nacked:
            for seq in sorted(s for s in self.nacked if s <= floor):
                self.nacked.discard(seq)
                if seq - 1 > self.ack_floor_sent:
                    confirm(self.number, seq - 1, True, True)
                self.ack_floor_sent = seq
        if floor > self.ack_floor_sent:
            confirm(self.number, floor, True, True)
        self.ack_floor_sent = floor

    def pending_done(self) -> None:
        if self.closing:
            return  # close() already released this channel's share of the backlog
        self.in_flight -= 1
        self.output.publish_backlog(-1)

    def _confirm_select(self, m: spec.Confirm.Select) -> None:
        if self.tx:
            raise ChannelException(c.PRECONDITION_FAILED, "cannot switch from tx to confirm mode", m.index)
        self.confirming = True
        if not m.nowait:
            self.send(spec.Confirm.SelectOk())

    # -- transactions --------------------------------------------------------------------------

    def _tx_select(self, m: spec.Tx.Select) -> None:
        if self.confirming:
            raise ChannelException(c.PRECONDITION_FAILED, "cannot switch from confirm to tx mode", m.index)
        self.tx = True
        self.send(spec.Tx.SelectOk())

    def _tx_commit(self, m: spec.Tx.Commit) -> None:
        """Route every publish of the transaction and apply its acks; tx.commit-ok goes out once
        every persistent copy is durable under its log's policy and the acks are written (one
        group commit for the lot), and after the commit-oks of earlier commits."""
        if not self.tx:
            raise ChannelException(c.PRECONDITION_FAILED, "channel is not transactional", m.index)
        publishes, self.tx_publishes = self.tx_publishes, []
        settlements, self.tx_settlements = self.tx_settlements, []
        # Every route first: a publish that cannot be routed now fails the commit before any
        # message of it is enqueued.
        routes = [(event, *self._resolve(event, properties), body) for event, properties, body in publishes]
        commit = Commit(self)
        self.commits.append(commit)
        for event, queues, properties, body in routes:
            for queue, entry in self._enqueue(event, properties, body, queues)[0]:
                commit.remaining += 1
                queue.when_durable(entry, commit.done)
        written: dict[int, Log] = {}
        for settle in settlements:
            for settled in settle():
                if settled.durable:
                    for log_ in settled.logs():
                        written[id(log_)] = log_
        for log_ in written.values():
            commit.remaining += 1
            log_.when_flushed(commit.flushed)
        commit.done(None)  # routing and settling are over

    def commit_done(self) -> None:
        """Answer the commits that are complete, in order; a failed one closes the channel."""
        commits = self.commits
        while commits and commits[0].remaining == 0:
            commit = commits.popleft()
            if commit.error is not None:
                self.output.close_channel(
                    self,
                    ChannelException(c.INTERNAL_ERROR, f"tx.commit failed: {commit.error}", c.TX_COMMIT),
                )
                return
            if not self.closing:
                self.send(spec.Tx.CommitOk())

    def _tx_rollback(self, m: spec.Tx.Rollback) -> None:
        if not self.tx:
            raise ChannelException(c.PRECONDITION_FAILED, "channel is not transactional", m.index)
        self.tx_publishes.clear()
        self.tx_settlements.clear()
        self.send(spec.Tx.RollbackOk())

    # -- flow and lifecycle --------------------------------------------------------------------

    def _channel_flow(self, m: spec.Channel.Flow) -> None:
        """RabbitMQ never stops deliveries for channel.flow: active=false is a 540."""
        if not m.active:
            raise ConnectionException(c.NOT_IMPLEMENTED, "active=false", m.index)
        self.send(spec.Channel.FlowOk(True))

    def dispatch_consumers(self) -> None:
        """Let the queues this channel consumes from deliver (it can take more now)."""
        for consumer in list(self.consumers.values()):
            consumer.queue.dispatch()

    def close(self) -> None:
        """The channel ends: consumers go, unacknowledged deliveries return to their queues."""
        self.closing = True
        self.timeouts.close()
        for consumer in list(self.consumers.values()):
            consumer.queue.remove_consumer(consumer)
        self.consumers.clear()
        if self.reply_queue is not None:
            self.vhost.close_reply_queue(self.reply_queue)
            self.reply_queue = None
        self.requeue_all()
        self.tx_publishes.clear()
        self.tx_settlements.clear()
        self.commits.clear()
        if self.in_flight:
            self.output.publish_backlog(-self.in_flight)
            self.in_flight = 0

    # -- what core.clients shows (ClientChannel) -----------------------------------------------

    @property
    def prefetch_count(self) -> int:
        return self.consumer_prefetch

    @property
    def global_prefetch_count(self) -> int:
        return self.global_prefetch

    @property
    def confirm(self) -> bool:
        return self.confirming

    @property
    def transactional(self) -> bool:
        return self.tx

    def client_consumers(self) -> list[ChannelConsumer]:
        return list(self.consumers.values())

    _HANDLERS: Final[dict[type, Callable[[Channel, Any], None]]] = {
        spec.Exchange.Declare: _exchange_declare,
        spec.Exchange.Delete: _exchange_delete,
        spec.Exchange.Bind: _exchange_bind,
        spec.Exchange.Unbind: _exchange_unbind,
        spec.Queue.Declare: _queue_declare,
        spec.Queue.Bind: _queue_bind,
        spec.Queue.Unbind: _queue_unbind,
        spec.Queue.Purge: _queue_purge,
        spec.Queue.Delete: _queue_delete,
        spec.Basic.Qos: _basic_qos,
        spec.Basic.Consume: _basic_consume,
        spec.Basic.Cancel: _basic_cancel,
        spec.Basic.Get: _basic_get,
        spec.Basic.Recover: _basic_recover,
        spec.Basic.RecoverAsync: _basic_recover_async,
        spec.Confirm.Select: _confirm_select,
        spec.Tx.Select: _tx_select,
        spec.Tx.Commit: _tx_commit,
        spec.Tx.Rollback: _tx_rollback,
        spec.Channel.Flow: _channel_flow,
    }
