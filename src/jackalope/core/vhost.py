"""A virtual host: its exchanges, queues and the bindings between them (RabbitMQ semantics).

The default exchange ("") routes to the queue named by the routing key; ``amq.*`` exchanges
are predeclared.  Durable exchanges, queues and bindings are written to the broker's
definitions through ``on_change`` whenever they change.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final

from jackalope.core.errors import AccessRefused, NotFound, PreconditionFailed
from jackalope.core.exchanges import BindingInvalid, Exchange, HeadersThunk, make_exchange
from jackalope.core.message import Message
from jackalope.core.queue import Defer, Queue
from jackalope.storage import LogConfig, LogManager

PREDECLARED: Final = {
    "amq.direct": "direct",
    "amq.fanout": "fanout",
    "amq.topic": "topic",
    "amq.headers": "headers",
    "amq.match": "headers",
}
QUEUE_SEGMENT_BYTES: Final = 64 * 1024 * 1024
REPLY_TO: Final = "amq.rabbitmq.reply-to"  # RabbitMQ's direct reply-to pseudo-queue


def queue_log_name(vhost: str, queue: str) -> str:
    return f"queue/{vhost}/{queue}"


def _server_named() -> str:
    return "amq.gen-" + base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")


class VirtualHost:
    def __init__(
        self,
        name: str,
        logs: LogManager,
        on_change: Callable[[], None] = lambda: None,
        defer: Defer | None = None,
    ) -> None:
        self.name = name
        self.defer = defer
        self.logs = logs
        self.on_change = on_change
        self.exchanges: dict[str, Exchange] = {}
        self.queues: dict[str, Queue] = {}
        # Direct reply-to: private, unlisted queues reached through the default exchange by
        # their generated names.
        self.reply_queues: dict[str, Queue] = {}
        # Whether any exchange is bound to another: only then does routing follow hops.
        self._exchange_bindings = False
        for ex_name, ex_type in PREDECLARED.items():
            self.exchanges[ex_name] = make_exchange(ex_type, ex_name, durable=True)

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
    ) -> Exchange:
        arguments = dict(arguments or {})
        if passive:
            return self.exchange(name)
        if not name:
            raise AccessRefused("operation not permitted on the default exchange")
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
        exchange = make_exchange(
            type_name, name, durable=durable, auto_delete=auto_delete, internal=internal, arguments=arguments
        )
        self.exchanges[name] = exchange
        if durable:
            self.on_change()
        return exchange

    def delete_exchange(self, name: str, *, if_unused: bool = False) -> None:
        if not name or name.startswith("amq."):
            raise AccessRefused(f"operation not permitted on exchange '{name or '(default)'}'")
        exchange = self.exchange(name)
        if if_unused and (exchange.has_bindings() or self._is_destination(exchange)):
            raise PreconditionFailed(f"exchange '{name}' in vhost '{self.name}' in use")
        del self.exchanges[name]
        for other in self.exchanges.values():
            other.unbind_destination(exchange)
        self._topology_changed()
        if exchange.durable:
            self.on_change()

    def _topology_changed(self) -> None:
        """Recompute what routing needs to know (exchange changes are rare; publishes are not)."""
        self._exchange_bindings = any(
            isinstance(b.destination, Exchange) for ex in self.exchanges.values() for b in ex.bindings()
        )

    def _is_destination(self, exchange: Exchange) -> bool:
        return any(b.destination is exchange for ex in self.exchanges.values() for b in ex.bindings())

    # -- queues --------------------------------------------------------------------------------

    def queue(self, name: str, owner: object | None = None) -> Queue:
        found = self.queues.get(name)
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
    ) -> Queue:
        if passive:
            return self.queue(name, owner)
        if not name:
            name = _server_named()
        elif name.startswith("amq."):
            raise AccessRefused(f"queue name '{name}' contains reserved prefix 'amq.*'")
        existing = self.queues.get(name)
        if existing is not None:
            existing.check_owner(owner)
            if (
                existing.durable != durable
                or existing.auto_delete != auto_delete
                or (existing.exclusive_owner is not None) != exclusive
                or existing.arguments != dict(arguments or {})
            ):
                raise PreconditionFailed(
                    f"inequivalent arg for queue '{name}' in vhost '{self.name}': the queue exists with "
                    f"durable={existing.durable} exclusive={existing.exclusive_owner is not None} "
                    f"auto_delete={existing.auto_delete} arguments={existing.arguments}"
                )
            return existing
        queue = self._make_queue(name, durable, (exclusive and owner) or None, auto_delete, arguments or {})
        if durable and not exclusive:
            self.on_change()
        return queue

    def _make_queue(
        self, name: str, durable: bool, owner: object | None, auto_delete: bool, arguments: Mapping[str, Any]
    ) -> Queue:
        log = None
        if durable:
            config: LogConfig = self.logs.default_config.replace(
                segment_bytes=min(self.logs.default_config.segment_bytes, QUEUE_SEGMENT_BYTES),
                retention_ms=-1,
                retention_bytes=-1,
            )
            log = self.logs.get_or_create(queue_log_name(self.name, name), config)
        queue = Queue(
            name,
            durable=durable,
            exclusive_owner=owner,
            auto_delete=auto_delete,
            arguments=arguments,
            log_=log,
        )
        queue.on_unused = self._auto_delete
        queue.defer = self.defer
        if "x-dead-letter-exchange" in queue.arguments:
            queue.on_dead_letter = self._dead_letter
        self.queues[name] = queue
        return queue

    def open_reply_queue(self) -> Queue:
        """A private queue for one direct reply-to consumer, named ``amq.rabbitmq.reply-to.<token>``."""
        name = f"{REPLY_TO}.{base64.urlsafe_b64encode(os.urandom(18)).decode()}"
        queue = self.reply_queues[name] = Queue(name)
        return queue

    def close_reply_queue(self, queue: Queue) -> None:
        if self.reply_queues.pop(queue.name, None) is queue:
            queue.delete()

    def _dead_letter(self, queue: Queue, message: Message) -> None:
        """Republish a rejected or overflowed message to the queue's dead-letter exchange
        (the x-death header RabbitMQ adds is not written yet)."""
        exchange = str(queue.arguments.get("x-dead-letter-exchange") or "")
        routing_key = str(queue.arguments.get("x-dead-letter-routing-key") or message.routing_key)
        if exchange and exchange not in self.exchanges:
            return
        dead = Message(exchange, routing_key, message.properties, message.body, message.persistent)
        for target in self.route(exchange, routing_key, lambda: {}):
            if target is not queue:
                target.enqueue(dead)

    def _auto_delete(self, queue: Queue) -> None:
        if self.queues.get(queue.name) is queue:
            self._remove_queue(queue)

    def delete_queue(
        self, name: str, *, owner: object, if_unused: bool = False, if_empty: bool = False
    ) -> int:
        if name not in self.queues:
            return 0  # RabbitMQ: deleting a missing queue succeeds
        queue = self.queue(name, owner)
        if if_unused and queue.consumer_count:
            raise PreconditionFailed(f"queue '{name}' in vhost '{self.name}' in use")
        if if_empty and (queue.message_count or queue.unacked_count):
            raise PreconditionFailed(f"queue '{name}' in vhost '{self.name}' is not empty")
        count = queue.message_count
        self._remove_queue(queue)
        return count

    def _remove_queue(self, queue: Queue) -> None:
        del self.queues[queue.name]
        for exchange in list(self.exchanges.values()):
            exchange.unbind_destination(queue)
            self._maybe_auto_delete_exchange(exchange)
        queue.delete()
        if queue.log is not None:
            self.logs.delete(queue_log_name(self.name, queue.name))
            queue.log = None
        if queue.durable:
            self.on_change()

    def connection_closed(self, owner: object) -> None:
        """Delete the exclusive queues of a closed connection."""
        for queue in [q for q in self.queues.values() if q.exclusive_owner is owner]:
            self._remove_queue(queue)

    # -- bindings ------------------------------------------------------------------------------

    def _bindable_source(self, name: str) -> Exchange:
        if not name:
            raise AccessRefused("operation not permitted on the default exchange")
        return self.exchange(name)

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
        queue = self.queue(queue_name, owner)
        exchange = self._bindable_source(exchange_name)
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
        dest = self._bindable_source(destination)
        src = self._bindable_source(source)
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
            self._topology_changed()
            if exchange.durable:
                self.on_change()

    # -- routing -------------------------------------------------------------------------------

    def route(self, exchange_name: str, routing_key: str, headers: HeadersThunk) -> Collection[Queue]:
        """The queues a message published to ``exchange_name`` reaches (exchange-to-exchange
        bindings followed, each queue once)."""
        if not exchange_name:
            queue = self.queues.get(routing_key) or self.reply_queues.get(routing_key)
            return (queue,) if queue is not None else ()
        exchange = self.exchange(exchange_name)
        found = exchange.route(routing_key, headers)
        if not self._exchange_bindings:
            return found  # type: ignore[return-value]  # only queues can be bound
        queues: dict[int, Queue] = {}
        seen: set[int] = {id(exchange)}
        pending = list(found)
        while pending:
            dest = pending.pop()
            if isinstance(dest, Queue):
                queues[id(dest)] = dest
            elif isinstance(dest, Exchange) and id(dest) not in seen:
                seen.add(id(dest))
                pending.extend(dest.route(routing_key, headers))
        return list(queues.values())

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
            if ex.durable and ex.name not in PREDECLARED
        ]
        queues = [
            {"name": q.name, "auto_delete": q.auto_delete, "arguments": q.arguments}
            for q in self.queues.values()
            if q.durable and q.exclusive_owner is None
        ]
        bindings = []
        for ex in self.exchanges.values():
            if not ex.durable:
                continue
            for b in ex.bindings():
                dest = b.destination
                if isinstance(dest, Queue) and dest.durable and dest.exclusive_owner is None:
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
        return {"exchanges": exchanges, "queues": queues, "bindings": bindings}

    def load_definitions(self, data: Mapping[str, Any]) -> None:
        """Re-create durable exchanges, queues (with their persistent messages) and bindings."""
        for ex in data.get("exchanges", []):
            self.exchanges[ex["name"]] = make_exchange(
                ex["type"],
                ex["name"],
                durable=True,
                auto_delete=ex["auto_delete"],
                internal=ex["internal"],
                arguments=ex["arguments"],
            )
        for q in data.get("queues", []):
            queue = self._make_queue(q["name"], True, None, q["auto_delete"], q["arguments"])
            queue.recover()
        for b in data.get("bindings", []):
            source = self.exchanges.get(b["source"])
            dest: Queue | Exchange | None = (
                self.queues.get(b["destination"])
                if b["destination_type"] == "queue"
                else self.exchanges.get(b["destination"])
            )
            if source is not None and dest is not None:
                source.bind(dest, b["routing_key"], b["arguments"])
        self._topology_changed()

    def close(self) -> None:
        for queue in self.queues.values():
            queue.close()


def _bind(
    source: Exchange, destination: Queue | Exchange, routing_key: str, arguments: Mapping[str, Any]
) -> bool:
    try:
        return source.bind(destination, routing_key, arguments)
    except BindingInvalid as exc:
        raise PreconditionFailed(str(exc)) from None
