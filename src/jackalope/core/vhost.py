"""A virtual host: its exchanges, queues and the bindings between them (RabbitMQ semantics).

The default exchange ("") routes to the queue named by the routing key; ``amq.*`` exchanges
are predeclared.  Durable exchanges, queues and bindings are written to the broker's
definitions through ``on_change`` whenever they change.

A queue declared with ``x-queue-type: stream`` is a :class:`~jackalope.core.stream.Stream`:
the single-partition topic of the same name in the broker's :class:`Topics`, so Kafka
clients read and write it too.  Streams share the queue namespace (``queue()`` finds either)
and exist only in the default virtual host "/", since Kafka topics have no virtual hosts.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final

from jackalope.core import policies, queue_arguments
from jackalope.core import stream as streams
from jackalope.core.dead_letters import Death, DeathStamp
from jackalope.core.delayed import DelayedMessages, Holding, ReleaseStamp, delayed_log_name
from jackalope.core.errors import AccessRefused, InvalidArgument, NotFound, PreconditionFailed
from jackalope.core.exchanges import (
    ArgumentInvalid,
    BindingInvalid,
    DelayedMessageExchange,
    Exchange,
    HeadersThunk,
    make_exchange,
)
from jackalope.core.exchanges.base import Destination
from jackalope.core.message import Message
from jackalope.core.permissions import Grant
from jackalope.core.policies import Policy, make_policy
from jackalope.core.priority_store import PriorityStore
from jackalope.core.queue import REJECTED, Defer, DurableWait, Queue, Timer, exclusive_locked
from jackalope.core.queue_logs import QueueLogs, queue_log_config
from jackalope.core.queue_types import QUORUM
from jackalope.core.quorum import QuorumQueue
from jackalope.core.stats import MessageStats, QueueCounts
from jackalope.core.stream import MessageEncoder, Stream
from jackalope.core.topic_routes import KAFKA_EXCHANGE
from jackalope.core.topics import TopicError, Topics, UnknownTopic
from jackalope.storage import LogManager

log = logging.getLogger(__name__)

PREDECLARED: Final = {
    "amq.direct": "direct",
    "amq.fanout": "fanout",
    "amq.topic": "topic",
    "amq.headers": "headers",
    "amq.match": "headers",
}
ALTERNATE: Final = "alternate-exchange"  # the exchange argument
REPLY_TO: Final = "amq.rabbitmq.reply-to"  # RabbitMQ's direct reply-to pseudo-queue
STREAM_VHOST: Final = "/"  # the one virtual host whose streams are Kafka topics
LIMITS: Final = ("max-connections", "max-queues")  # RabbitMQ's vhost limits

QueueLike = Queue | Stream
Target = Queue | Stream | Holding  # where a published message goes (Holding: a delayed exchange's)


def _server_named() -> str:
    return "amq.gen-" + base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")


class VirtualHost:
    def __init__(
        self,
        name: str,
        logs: LogManager,
        on_change: Callable[[], None] = lambda: None,
        defer: Defer | None = None,
        topics: Topics | None = None,
        transient_logs: LogManager | None = None,
        timer: Timer | None = None,
        counts: QueueCounts | None = None,
    ) -> None:
        self.name = name
        self.counts = counts if counts is not None else QueueCounts()
        self.default_exchange_stats = MessageStats()  # amq.default's, as RabbitMQ counts them
        self.description = ""
        self.tags: tuple[str, ...] = ()
        # RabbitMQ's vhost limits (max-connections, max-queues); absent: no limit.
        self.limits: dict[str, int] = {}
        self.connection_count = 0  # open connections (the front-ends count them in and out)
        self.defer = defer
        self.timer = timer  # queue expiry (x-expires); None: no timers (x-expires refused)
        self.consumer_timeout_ms = 30 * 60 * 1000  # of queues that set none (0: none)
        self.death_stamp: DeathStamp | None = None  # the front-end's x-death (set by the broker)
        self.release_stamp: ReleaseStamp | None = None  # the front-end's x-delay rewrite (likewise)
        self.delayed: dict[Exchange, DelayedMessages] = {}  # the messages each delayed exchange holds
        self.logs = logs
        # Where non-durable queues page their backlog (wiped at every start); None: in memory.
        self.transient_logs = transient_logs
        self.queue_logs = QueueLogs(name, logs, transient_logs, defer)
        self.on_change = on_change
        self.exchanges: dict[str, Exchange] = {}
        self.queues: dict[str, Queue] = {}
        # Stream queues, by name (no name is both a queue and a stream).
        self.streams: dict[str, Stream] = {}
        self.topics = topics if topics is not None else Topics(logs, None)
        self.topics.on_delete.append(self._topic_deleted)
        self._stream_encoder: MessageEncoder = streams.plain_record
        # Direct reply-to: private, unlisted queues reached through the default exchange by
        # their generated names.
        self.reply_queues: dict[str, Queue] = {}
        # Whether any exchange is bound to another: only then does routing follow hops.
        self._exchange_bindings = False
        self.policies: dict[str, Policy] = {}
        self.operator_policies: dict[str, Policy] = {}
        self._policy_alternates: dict[str, str] = {}  # exchange -> alternate-exchange by policy
        for ex_name, ex_type in PREDECLARED.items():
            self.exchanges[ex_name] = make_exchange(ex_type, ex_name, durable=True)
        if name == STREAM_VHOST:  # Kafka topics feed the queues bound to it (core.topic_routes)
            self.exchanges[KAFKA_EXCHANGE] = make_exchange("topic", KAFKA_EXCHANGE, durable=True)

    # -- exchanges -----------------------------------------------------------------------------

    def exchange(self, name: str) -> Exchange:
        found = self.exchanges.get(name)
        if found is None:
            raise NotFound(f"no exchange '{name}' in vhost '{self.name}'")
        return found

    def declare_exchange(
        self,
        name: str,
        type_name: str,
        *,
        durable: bool = True,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: Mapping[str, Any] | None = None,
        passive: bool = False,
        grant: Grant | None = None,
    ) -> Exchange:
        """``grant``: the declaring user's rights, checked as RabbitMQ checks them (configure
        on the exchange; read on it and write on its alternate exchange when it is new)."""
        arguments = dict(arguments or {})
        if not name:
            raise AccessRefused("operation not permitted on the default exchange")
        if passive:
            return self.exchange(name)
        if grant is not None:
            grant.check("configure", "exchange", name)
        existing = self.exchanges.get(name)
        if existing is not None:
            if not existing.equivalent(type_name, durable, auto_delete, internal, arguments):
                raise PreconditionFailed(
                    f"inequivalent arg for exchange '{name}' in vhost '{self.name}': "
                    f"received {type_name!r} durable={durable} but current is {existing.type_name!r} "
                    f"durable={existing.durable}"
                )
            return existing
        if name.startswith("amq."):
            raise AccessRefused(f"exchange name '{name}' contains reserved prefix 'amq.*'")
        alternate = arguments.get(ALTERNATE)
        if grant is not None and isinstance(alternate, str):
            grant.check("read", "exchange", name)
            grant.check("write", "exchange", alternate)
        try:
            exchange = make_exchange(
                type_name,
                name,
                durable=durable,
                auto_delete=auto_delete,
                internal=internal,
                arguments=arguments,
            )
        except ArgumentInvalid as exc:
            raise PreconditionFailed(str(exc)) from None
        if isinstance(exchange, DelayedMessageExchange):
            if self.timer is None:
                raise InvalidArgument(f"cannot declare exchange '{name}' of type '{type_name}': no timers")
            self._hold_delayed(exchange, fresh=True)
        self.exchanges[name] = exchange
        self._apply_exchange_policy(exchange)
        if durable:
            self.on_change()
        return exchange

    def delete_exchange(self, name: str, *, if_unused: bool = False) -> None:
        if not name or name.startswith("amq."):
            raise AccessRefused(f"operation not permitted on exchange '{name or '(default)'}'")
        exchange = self.exchanges.get(name)
        if exchange is None:
            return  # RabbitMQ: deleting a missing exchange succeeds, as a missing queue's does
        if if_unused and (exchange.has_bindings() or self._is_destination(exchange)):
            raise PreconditionFailed(f"exchange '{name}' in vhost '{self.name}' in use")
        del self.exchanges[name]
        self._policy_alternates.pop(name, None)
        for other in self.exchanges.values():
            other.unbind_destination(exchange)
        self._drop_delayed(exchange)
        self._topology_changed()
        if exchange.durable:
            self.on_change()

    def _hold_delayed(self, exchange: DelayedMessageExchange, fresh: bool = False) -> DelayedMessages:
        """Give a delayed-message exchange the place that holds its messages (a log if durable;
        ``fresh``: a new exchange, so a log of that name is a leftover of an unsaved one)."""
        assert self.timer is not None
        log_ = None
        if exchange.durable:
            name = delayed_log_name(self.name, exchange.name)
            if fresh and name in self.logs:
                self.logs.delete(name)
            log_ = self.logs.get_or_create(name, queue_log_config(self.logs))
        held = self.delayed[exchange] = DelayedMessages(
            exchange, self._route_due, self.timer, log_=log_, defer=self.defer
        )
        return held

    def _drop_delayed(self, exchange: Exchange) -> None:
        """A deleted delayed-message exchange's held messages go with it, and its log."""
        held = self.delayed.pop(exchange, None)
        if held is not None:
            held.delete()
            if held.log is not None:
                self.logs.delete(delayed_log_name(self.name, exchange.name))

    def _route_due(
        self, exchange: DelayedMessageExchange, message: Message
    ) -> tuple[Message, Collection[Target]]:
        """A held message is due: as it is routed (``x-delay`` negated by the front-end's stamp)
        and where it goes from ``exchange`` now."""
        properties, headers = message.properties, _no_headers
        if self.release_stamp is not None:
            properties, headers = self.release_stamp(properties)
        released = Message(
            exchange.name, message.routing_key, properties, message.body, message.persistent, message.ttl_ms
        )
        if self.exchanges.get(exchange.name) is not exchange:
            return released, ()
        found = exchange.route_now(message.routing_key, headers)
        return released, self._follow(exchange, found, message.routing_key, headers)

    def _topology_changed(self) -> None:
        """Recompute what routing needs to know (exchange changes are rare; publishes are not)."""
        self._exchange_bindings = any(
            isinstance(b.destination, Exchange) for ex in self.exchanges.values() for b in ex.bindings()
        )

    def _is_destination(self, exchange: Exchange) -> bool:
        return any(b.destination is exchange for ex in self.exchanges.values() for b in ex.bindings())

    # -- queues --------------------------------------------------------------------------------

    def queue(self, name: str, owner: object | None = None) -> QueueLike:
        """The queue or stream called ``name``."""
        found: QueueLike | None = self.queues.get(name) or self.streams.get(name)
        if found is None:
            raise NotFound(f"no queue '{name}' in vhost '{self.name}'")
        if owner is not None:
            found.check_owner(owner)
        return found

    def declare_queue(
        self,
        name: str,
        *,
        owner: object,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: Mapping[str, Any] | None = None,
        passive: bool = False,
        grant: Grant | None = None,
    ) -> QueueLike:
        """``grant``: the declaring user's rights, checked as RabbitMQ checks them (configure
        on the queue, server-named ones too; read on it and write on its dead-letter exchange
        when it is new); a passive declaration needs none."""
        if passive:
            found = self.queue(name, owner)
            if isinstance(found, Queue):
                found.last_used = time.monotonic()  # any declaration renews an x-expires lease
            return found
        self.counts.declared += 1
        if not name:
            name = _server_named()
        elif name.startswith("amq."):
            raise AccessRefused(f"queue name '{name}' contains reserved prefix 'amq.*'")
        if grant is not None:
            grant.check("configure", "queue", name)
        current: QueueLike | None = self.streams.get(name) or self.queues.get(name)
        if current is not None:  # a redeclaration (of either kind) must match exactly
            current.check_owner(owner)
            if (current.exclusive_owner is not None) != exclusive:
                raise exclusive_locked(name)
            if (
                current.durable != durable
                or current.auto_delete != auto_delete
                or (current.exclusive_owner is not None) != exclusive
                or current.arguments != dict(arguments or {})
            ):
                raise PreconditionFailed(
                    f"inequivalent arg for queue '{name}' in vhost '{self.name}': the queue exists with "
                    f"durable={current.durable} exclusive={current.exclusive_owner is not None} "
                    f"auto_delete={current.auto_delete} arguments={current.arguments}"
                )
            if isinstance(current, Queue):
                current.last_used = time.monotonic()  # as a passive declaration does
            return current
        self._check_queue_limit(name)
        dead_letter_exchange = (arguments or {}).get("x-dead-letter-exchange")
        if grant is not None and isinstance(dead_letter_exchange, str):
            grant.check("read", "queue", name)
            grant.check("write", "exchange", dead_letter_exchange)
        if streams.is_stream(arguments):
            stream = self._declare_stream(name, durable, exclusive, auto_delete, dict(arguments or {}))
            self.counts.created += 1
            self.on_change()
            return stream
        what = f"queue '{name}' in vhost '{self.name}'"
        if queue_arguments.check(arguments or {}, what) == QUORUM:
            _check_replicated(what, durable, exclusive, auto_delete)
        for timed in ("x-expires", "x-message-ttl", "x-delayed-retry-type"):
            if self.timer is None and (arguments or {}).get(timed) is not None:
                raise InvalidArgument(f"invalid arg '{timed}' for {what}: this broker runs no timers")
        queue = self._make_queue(name, durable, (exclusive and owner) or None, auto_delete, arguments or {})
        self.counts.created += 1
        if durable and not exclusive:
            self.on_change()
        return queue

    def _check_queue_limit(self, name: str) -> None:
        limit = self.limits.get("max-queues")
        if limit is not None and len(self.queues) + len(self.streams) >= limit:
            raise PreconditionFailed(
                f"cannot declare queue '{name}': queue limit in vhost '{self.name}' ({limit}) is reached"
            )

    def _make_queue(
        self, name: str, durable: bool, owner: object | None, auto_delete: bool, arguments: Mapping[str, Any]
    ) -> Queue:
        log = None
        store = None
        max_priority = arguments.get("x-max-priority")
        if isinstance(max_priority, int) and max_priority > 0:
            store = PriorityStore(max_priority, self.queue_logs.levels(name, durable))
        elif durable:
            log = self.queue_logs.durable(name)
        kind = QuorumQueue if queue_arguments.queue_type(arguments) == QUORUM else Queue
        queue = kind(
            name,
            durable=durable,
            exclusive_owner=owner,
            auto_delete=auto_delete,
            arguments=arguments,
            log_=log,
            log_factory=None if durable else self.queue_logs.transient_factory(name),
            defer=self.defer,
            timer=self.timer,
            store=store,
        )
        queue.on_unused = self._auto_delete
        self.queues[name] = queue
        self._apply_policy(queue)
        return queue

    # -- streams -------------------------------------------------------------------------------

    @property
    def stream_encoder(self) -> MessageEncoder:
        """How a published message becomes a stream's record (the AMQP front-end sets its own)."""
        return self._stream_encoder

    @stream_encoder.setter
    def stream_encoder(self, encoder: MessageEncoder) -> None:
        if encoder is not self._stream_encoder:
            self._stream_encoder = encoder
            for stream in self.streams.values():
                stream.encode = encoder

    def _declare_stream(
        self, name: str, durable: bool, exclusive: bool, auto_delete: bool, arguments: dict[str, Any]
    ) -> Stream:
        what = f"queue '{name}' in vhost '{self.name}'"
        _check_replicated(what, durable, exclusive, auto_delete)
        if self.name != STREAM_VHOST:
            raise PreconditionFailed(
                f"cannot declare stream {what}: streams are Kafka topics, which exist only in "
                f"vhost '{STREAM_VHOST}'"
            )
        configs = streams.topic_configs(arguments, what)
        return self._make_stream(name, arguments, configs)

    def _make_stream(self, name: str, arguments: dict[str, Any], configs: dict[str, str]) -> Stream:
        """Attach to the topic ``name`` (a stream is its partition 0), creating it if need be."""
        topic = self.topics.get(name)
        if topic is None:
            try:
                topic = self.topics.create(name, 1, configs)
            except TopicError as exc:
                raise PreconditionFailed(
                    f"cannot declare stream '{name}' in vhost '{self.name}': {exc}"
                ) from None
        elif len(topic.partitions) != 1:
            raise PreconditionFailed(
                f"cannot declare stream '{name}' in vhost '{self.name}': topic '{name}' exists with "
                f"{len(topic.partitions)} partitions, and a stream is a topic of one partition"
            )
        stream = Stream(
            name,
            topic.partitions[0],
            topics=self.topics,
            arguments=arguments,
            encode=self._stream_encoder,
            defer=self.defer,
        )
        self.streams[name] = stream
        return stream

    def _topic_deleted(self, name: str) -> None:
        """A topic went (Kafka's DeleteTopics, or our own queue.delete): so does its stream."""
        stream = self.streams.get(name)
        if stream is not None:
            self._remove_stream(stream)

    def _remove_stream(self, stream: Stream) -> None:
        if self.streams.get(stream.name) is not stream:
            return
        del self.streams[stream.name]
        self.counts.deleted += 1
        for exchange in list(self.exchanges.values()):
            if exchange.unbind_destination(stream):
                self._maybe_auto_delete_exchange(exchange)
        stream.delete()
        self.on_change()

    def open_reply_queue(self) -> Queue:
        """A private queue for one direct reply-to consumer, named ``amq.rabbitmq.reply-to.<token>``."""
        name = f"{REPLY_TO}.{base64.urlsafe_b64encode(os.urandom(18)).decode()}"
        queue = self.reply_queues[name] = Queue(
            name, log_factory=self.queue_logs.transient_factory(name), defer=self.defer
        )
        return queue

    def close_reply_queue(self, queue: Queue) -> None:
        if self.reply_queues.pop(queue.name, None) is queue:
            queue.delete()
            self.queue_logs.drop(False, queue.logs())

    def _dead_letter(self, queue: Queue, message: Message, reason: str) -> list[DurableWait]:
        """Republish a message that left ``queue`` for ``reason`` to its dead-letter exchange,
        its death recorded by the front-end's stamp (RabbitMQ's x-death); return how to wait
        for the copies to be safe."""
        exchange = queue.dead_letter_exchange or ""
        routing_key = queue.dead_letter_routing_key or message.routing_key
        if exchange and exchange not in self.exchanges:
            return []
        properties = message.properties
        headers: HeadersThunk = _no_headers
        cycle = frozenset() if reason == REJECTED else frozenset({queue.name})
        if self.death_stamp is not None:
            death = Death(queue.name, reason, message.exchange, (message.routing_key,), int(time.time()))
            stamped = self.death_stamp(properties, death)
            properties, headers, cycle = stamped.properties, stamped.headers, stamped.cycle
        # The publisher's TTL is spent: a dead letter has none (RabbitMQ keeps it in x-death).
        dead = Message(
            exchange, routing_key, properties, message.body, message.persistent, None, message.priority
        )
        waits: list[DurableWait] = []
        for target in self.route(exchange, routing_key, headers):
            # back to a queue it died in with no rejection since: a cycle, dropped (RabbitMQ)
            if not (isinstance(target, Queue | Stream) and target.name in cycle):
                entry = target.enqueue(dead)
                if entry is not None:
                    waits.append(functools.partial(target.when_durable, entry))
        return waits

    def _arm_expiry(self, queue: Queue, delay: float) -> None:
        if self.timer is not None:
            queue.expiry = self.timer(delay, lambda: self._expire(queue))

    def _expire(self, queue: Queue) -> None:
        """x-expires: delete ``queue`` once it has gone unused (no consumers, no basic.get, no
        redeclaration) for its whole period; else look again when the period could end."""
        queue.expiry = None
        if self.queues.get(queue.name) is not queue or queue.expires_ms is None:
            return
        period = queue.expires_ms / 1000
        idle = time.monotonic() - queue.last_used
        if queue.consumer_count or idle < period:
            self._arm_expiry(queue, period if queue.consumer_count else period - idle)
            return
        log.info("queue '%s' in vhost '%s' expired (x-expires)", queue.name, self.name)
        self._remove_queue(queue)

    def _auto_delete(self, queue: Queue) -> None:
        if self.queues.get(queue.name) is queue:
            self._remove_queue(queue)

    def delete_queue(
        self, name: str, *, owner: object, if_unused: bool = False, if_empty: bool = False
    ) -> int:
        stream = self.streams.get(name)
        if stream is not None:
            return self._delete_stream(stream, if_unused=if_unused, if_empty=if_empty)
        if name not in self.queues:
            return 0  # RabbitMQ: deleting a missing queue succeeds
        queue = self.queues[name]
        queue.check_owner(owner)
        if if_unused and queue.consumer_count:
            raise PreconditionFailed(f"queue '{name}' in vhost '{self.name}' in use")
        if if_empty and queue.message_count:  # ready messages, as RabbitMQ counts them
            raise PreconditionFailed(f"queue '{name}' in vhost '{self.name}' is not empty")
        count = queue.message_count
        self._remove_queue(queue)
        return count

    def _delete_stream(self, stream: Stream, *, if_unused: bool, if_empty: bool) -> int:
        if if_unused and stream.consumer_count:
            raise PreconditionFailed(f"queue '{stream.name}' in vhost '{self.name}' in use")
        count = stream.message_count
        if if_empty and count:
            raise PreconditionFailed(f"queue '{stream.name}' in vhost '{self.name}' is not empty")
        with contextlib.suppress(UnknownTopic):
            self.topics.delete(stream.name)  # calls _topic_deleted
        self._remove_stream(stream)  # in case the topic was already gone
        return count

    def _remove_queue(self, queue: Queue) -> None:
        del self.queues[queue.name]
        self.counts.deleted += 1
        if queue.expiry is not None:
            queue.expiry.cancel()
            queue.expiry = None
        for exchange in list(self.exchanges.values()):
            if exchange.unbind_destination(queue):  # only the exchanges it was bound to
                self._maybe_auto_delete_exchange(exchange)
        queue.delete()
        self.queue_logs.drop(queue.durable, queue.logs())
        if queue.durable:
            self.on_change()

    def connection_closed(self, owner: object) -> None:
        """Delete the exclusive queues of a closed connection."""
        for queue in [q for q in self.queues.values() if q.exclusive_owner is owner]:
            self._remove_queue(queue)

    # -- policies ------------------------------------------------------------------------------

    def set_policy(self, name: str, body: Mapping[str, Any], *, operator: bool = False) -> Policy:
        """Add or replace a policy (RabbitMQ's JSON shape) and apply it to what it matches."""
        policy = make_policy(name, body, operator=operator)
        (self.operator_policies if operator else self.policies)[name] = policy
        self._apply_policies()
        self.on_change()
        return policy

    def delete_policy(self, name: str, *, operator: bool = False) -> None:
        store = self.operator_policies if operator else self.policies
        if store.pop(name, None) is None:
            raise NotFound(f"no {'operator ' if operator else ''}policy '{name}' in vhost '{self.name}'")
        self._apply_policies()
        self.on_change()

    def _apply_policies(self) -> None:
        for queue in list(self.queues.values()):
            self._apply_policy(queue)
            queue.enforce_limits()
        for exchange in self.exchanges.values():
            self._apply_exchange_policy(exchange)

    def _apply_exchange_policy(self, exchange: Exchange) -> None:
        policy = policies.choose(self.policies.values(), exchange.name, "exchange")
        alternate = policy.definition.get(ALTERNATE) if policy is not None else None
        if isinstance(alternate, str):
            self._policy_alternates[exchange.name] = alternate
        else:
            self._policy_alternates.pop(exchange.name, None)

    def _apply_policy(self, queue: Queue) -> None:
        """Configure ``queue`` with its arguments resolved against its policies."""
        effective = policies.effective_arguments(
            queue.arguments,
            policies.choose(self.policies.values(), queue.name, queue.type_name),
            policies.choose(self.operator_policies.values(), queue.name, queue.type_name),
        )
        if effective != queue.effective_arguments:
            queue.configure(effective)
        queue.on_dead_letter = self._dead_letter if queue.dead_letter_exchange is not None else None
        if queue.expiry is not None:
            queue.expiry.cancel()
            queue.expiry = None
        if queue.expires_ms is not None:
            idle = time.monotonic() - queue.last_used
            self._arm_expiry(queue, max(queue.expires_ms / 1000 - idle, 0))

    # -- bindings ------------------------------------------------------------------------------

    def _bindable_source(self, name: str) -> Exchange:
        if not name:
            raise AccessRefused("operation not permitted on the default exchange")
        return self.exchange(name)

    def _unbind_source(self, name: str) -> Exchange | None:
        """An exchange of an unbind: None if it is gone (not an error for an unbind)."""
        if not name:
            raise AccessRefused("operation not permitted on the default exchange")
        return self.exchanges.get(name)

    def bind_queue(
        self,
        queue_name: str,
        exchange_name: str,
        routing_key: str,
        arguments: Mapping[str, Any],
        owner: object,
    ) -> None:
        queue = self.queue(queue_name, owner)
        exchange = self._bindable_source(exchange_name)
        if _bind(exchange, queue, routing_key, arguments) and queue.durable and exchange.durable:
            self.on_change()

    def unbind_queue(
        self,
        queue_name: str,
        exchange_name: str,
        routing_key: str,
        arguments: Mapping[str, Any],
        owner: object,
    ) -> None:
        # RabbitMQ answers unbind-ok when the queue or the exchange is already gone.
        queue = self.queues.get(queue_name) or self.streams.get(queue_name)
        exchange = self._unbind_source(exchange_name)
        if queue is None or exchange is None:
            return
        queue.check_owner(owner)
        if exchange.unbind(queue, routing_key, arguments):
            self._maybe_auto_delete_exchange(exchange)
            if queue.durable and exchange.durable:
                self.on_change()

    def bind_exchange(
        self, destination: str, source: str, routing_key: str, arguments: Mapping[str, Any]
    ) -> None:
        dest = self._bindable_source(destination)
        src = self._bindable_source(source)
        if _bind(src, dest, routing_key, arguments):
            self._topology_changed()
            if src.durable and dest.durable:
                self.on_change()

    def unbind_exchange(
        self, destination: str, source: str, routing_key: str, arguments: Mapping[str, Any]
    ) -> None:
        dest = self._unbind_source(destination)
        src = self._unbind_source(source)
        if dest is None or src is None:
            return  # unbind-ok, as RabbitMQ answers for an exchange already gone
        if src.unbind(dest, routing_key, arguments):
            self._maybe_auto_delete_exchange(src)
            self._topology_changed()
            if src.durable and dest.durable:
                self.on_change()

    def _maybe_auto_delete_exchange(self, exchange: Exchange) -> None:
        if (
            exchange.auto_delete
            and not exchange.has_bindings()
            and self.exchanges.get(exchange.name) is exchange
        ):
            del self.exchanges[exchange.name]
            for other in self.exchanges.values():
                other.unbind_destination(exchange)
            self._drop_delayed(exchange)
            self._topology_changed()
            if exchange.durable:
                self.on_change()

    # -- routing -------------------------------------------------------------------------------

    def route(self, exchange_name: str, routing_key: str, headers: HeadersThunk) -> Collection[Target]:
        """The queues and streams a message published to ``exchange_name`` reaches
        (exchange-to-exchange bindings followed, each queue once), or the place a delayed-message
        exchange holds it."""
        if not exchange_name:
            queue: QueueLike | None = (
                self.queues.get(routing_key)
                or self.streams.get(routing_key)
                or self.reply_queues.get(routing_key)
            )
            default = self.default_exchange_stats
            default.publish_in += 1
            if queue is None:
                return ()
            default.publish_out += 1
            return (queue,)
        exchange = self.exchange(exchange_name)
        found = self._follow(exchange, exchange.route(routing_key, headers), routing_key, headers)
        stats = exchange.stats
        stats.publish_in += 1
        if found:
            stats.publish_out += 1
        return found

    def _follow(
        self, exchange: Exchange, found: Collection[Destination], routing_key: str, headers: HeadersThunk
    ) -> Collection[Target]:
        """Where ``found`` (what ``exchange`` routed to) leads: exchanges followed, or the
        alternate exchange's if it is empty."""
        if not self._exchange_bindings and (
            found or (ALTERNATE not in exchange.arguments and exchange.name not in self._policy_alternates)
        ):
            return found  # type: ignore[return-value]  # only queues and streams can be bound
        queues: dict[int, Target] = {}
        seen: set[int] = {id(exchange)}
        pending: list[Destination] = list(found) or self._alternate(exchange)
        while pending:
            dest = pending.pop()
            if isinstance(dest, Queue | Stream | Holding):
                queues[id(dest)] = dest
            elif isinstance(dest, Exchange) and id(dest) not in seen:
                seen.add(id(dest))
                pending.extend(dest.route(routing_key, headers) or self._alternate(dest))
        return list(queues.values())

    def _alternate(self, exchange: Exchange) -> list[Destination]:
        """The alternate exchange that takes what ``exchange`` routes nowhere (RabbitMQ's
        ``alternate-exchange`` argument), if it exists."""
        name = exchange.arguments.get(ALTERNATE) or self._policy_alternates.get(exchange.name)
        alternate = self.exchanges.get(name) if isinstance(name, str) else None
        return [alternate] if alternate is not None else []

    def check_publish(self, exchange_name: str) -> None:
        if exchange_name:
            exchange = self.exchange(exchange_name)
            if exchange.internal:
                raise AccessRefused(
                    f"cannot publish to internal exchange '{exchange_name}' in vhost '{self.name}'"
                )

    # -- definitions ---------------------------------------------------------------------------

    def definitions(self) -> dict[str, Any]:
        exchanges = [
            {
                "name": ex.name,
                "type": ex.type_name,
                "auto_delete": ex.auto_delete,
                "internal": ex.internal,
                "arguments": dict(ex.arguments),
            }
            for ex in self.exchanges.values()
            if ex.durable and ex.name not in PREDECLARED and ex.name != KAFKA_EXCHANGE
        ]
        queues = [
            {"name": q.name, "auto_delete": q.auto_delete, "arguments": q.arguments}
            for q in self.queues.values()
            if q.durable and q.exclusive_owner is None
        ]
        queues += [
            {"name": s.name, "auto_delete": False, "arguments": s.arguments} for s in self.streams.values()
        ]
        bindings = []
        for ex in self.exchanges.values():
            if not ex.durable:
                continue
            for b in ex.bindings():
                dest = b.destination
                if (isinstance(dest, Queue) and dest.durable and dest.exclusive_owner is None) or isinstance(
                    dest, Stream
                ):
                    kind, name = "queue", dest.name
                elif isinstance(dest, Exchange) and dest.durable:
                    kind, name = "exchange", dest.name
                else:
                    continue
                bindings.append(
                    {
                        "source": ex.name,
                        "destination": name,
                        "destination_type": kind,
                        "routing_key": b.routing_key,
                        "arguments": dict(b.arguments),
                    }
                )
        return {
            "exchanges": exchanges,
            "queues": queues,
            "bindings": bindings,
            "policies": [p.to_json(self.name) for p in self.policies.values()],
            "operator_policies": [p.to_json(self.name) for p in self.operator_policies.values()],
        }

    def load_definitions(self, data: Mapping[str, Any]) -> None:
        """Re-create policies, durable exchanges, queues (with their persistent messages) and
        bindings."""
        for key, store in (("policies", self.policies), ("operator_policies", self.operator_policies)):
            for p in data.get(key, []):
                try:
                    store[p["name"]] = make_policy(p["name"], p, operator=store is self.operator_policies)
                except InvalidArgument as exc:
                    log.error("policy %r of vhost %r not restored: %s", p["name"], self.name, exc)
        for ex in data.get("exchanges", []):
            exchange = make_exchange(
                ex["type"],
                ex["name"],
                durable=True,
                auto_delete=ex["auto_delete"],
                internal=ex["internal"],
                arguments=ex["arguments"],
            )
            if isinstance(exchange, DelayedMessageExchange):
                if self.timer is None:
                    log.error("delayed-message exchange %r not restored: no timers", exchange.name)
                    continue
                self._hold_delayed(exchange)
            self.exchanges[ex["name"]] = exchange
        for q in data.get("queues", []):
            if streams.is_stream(q["arguments"]):
                self._load_stream(q["name"], q["arguments"])
                continue
            queue = self._make_queue(q["name"], True, None, q["auto_delete"], q["arguments"])
            queue.recover()
        for b in data.get("bindings", []):
            source = self.exchanges.get(b["source"])
            dest: Queue | Stream | Exchange | None = (
                (self.queues.get(b["destination"]) or self.streams.get(b["destination"]))
                if b["destination_type"] == "queue"
                else self.exchanges.get(b["destination"])
            )
            if source is not None and dest is not None:
                source.bind(dest, b["routing_key"], b["arguments"])
        self._topology_changed()
        self._apply_policies()
        for held in self.delayed.values():  # once the bindings are there to route by
            held.recover()

    def _load_stream(self, name: str, arguments: dict[str, Any]) -> None:
        """Attach a stored stream to its topic (made again if the topic went missing)."""
        try:
            configs = streams.topic_configs(arguments, f"queue '{name}' in vhost '{self.name}'")
            self._make_stream(name, arguments, configs)
        except (PreconditionFailed, InvalidArgument) as exc:
            log.error("stream %r not restored: %s", name, exc)

    def delete_all(self) -> None:
        """The vhost is being deleted: every queue (with its messages) and exchange goes."""
        for queue in list(self.queues.values()):
            self._remove_queue(queue)
        for stream in list(self.streams.values()):
            self._remove_stream(stream)
        for reply_queue in list(self.reply_queues.values()):
            self.close_reply_queue(reply_queue)
        self.exchanges.clear()
        self.topics.on_delete.remove(self._topic_deleted)

    def close(self) -> None:
        for held in self.delayed.values():
            held.close()
        for queue in self.queues.values():
            queue.close()
        for stream in self.streams.values():
            stream.close()


def _check_replicated(what: str, durable: bool, exclusive: bool, auto_delete: bool) -> None:
    """Quorum queues and streams are durable, never exclusive or auto-delete (RabbitMQ's 406)."""
    if auto_delete:
        raise PreconditionFailed(f"invalid property 'auto-delete' for {what}")
    if exclusive:
        raise PreconditionFailed(f"invalid property 'exclusive-owner' for {what}")
    if not durable:
        raise PreconditionFailed(f"invalid property 'non-durable' for {what}")


def _no_headers() -> Mapping[str, Any]:
    return {}


def _bind(
    source: Exchange, destination: Queue | Stream | Exchange, routing_key: str, arguments: Mapping[str, Any]
) -> bool:
    try:
        return source.bind(destination, routing_key, arguments)
    except BindingInvalid as exc:
        raise PreconditionFailed(str(exc)) from None
