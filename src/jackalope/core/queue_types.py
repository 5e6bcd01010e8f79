"""The one interface front-ends use for a queue of any type.

RabbitMQ has three queue types, and so has Jackalope, each in a module of its own:

* ``classic``: :class:`~jackalope.core.queue.Queue` (delete-on-ack, paging to its log);
* ``quorum``: :class:`~jackalope.core.quorum.QuorumQueue`, a durable classic queue with the
  quorum rules (delivery counts and limits, delayed retries; replicated once clustered);
* ``stream``: :class:`~jackalope.core.stream.Stream`, a Kafka topic's partition read by offset.

A front-end holds a :class:`QueueType` and asks it; what a type does not do, it refuses
(:class:`~jackalope.core.errors.Unsupported`, or the error RabbitMQ gives), so no front-end
tests which type it holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, Protocol

from jackalope.core.message import Message, QueueEntry
from jackalope.core.queue_store import DurableCallback
from jackalope.core.stats import MessageStats
from jackalope.storage import Log

CLASSIC: Final = "classic"
QUORUM: Final = "quorum"
STREAM: Final = "stream"
QUEUE_TYPES: Final = (CLASSIC, QUORUM, STREAM)


class QueueType(Protocol):
    @property
    def type_name(self) -> str:
        """classic, quorum or stream"""
        ...

    @property
    def name(self) -> str: ...
    @property
    def durable(self) -> bool: ...
    @property
    def auto_delete(self) -> bool: ...
    @property
    def exclusive_owner(self) -> object | None: ...
    @property
    def arguments(self) -> dict[str, Any]: ...
    @property
    def consumer_timeout_ms(self) -> int | None:
        """How long a delivery may stay unacknowledged (None: the broker's default)."""
        ...

    @property
    def message_count(self) -> int: ...
    @property
    def consumer_count(self) -> int: ...
    @property
    def unacked_count(self) -> int: ...
    @property
    def deleted(self) -> bool: ...
    @property
    def stats(self) -> MessageStats:
        """publish, deliver, get, redeliver and ack counts with their rates"""
        ...

    def check_owner(self, owner: object) -> None: ...

    # publishing
    def enqueue(self, message: Message) -> QueueEntry | None: ...
    def write_pending(self) -> None: ...
    def when_durable(self, entry: QueueEntry, callback: DurableCallback) -> None: ...

    # consuming
    def subscribe(
        self,
        consumer: Any,
        *,
        no_ack: bool,
        prefetch: int,
        global_prefetch: int,
        arguments: Mapping[str, Any],
    ) -> None:
        """Add a consumer (the front-end's, a Consumer or StreamConsumer) under the type's rules."""
        ...

    def remove_consumer(self, consumer: Any) -> None: ...
    def dispatch(self) -> None: ...
    def get(self) -> QueueEntry | None: ...

    # settling
    def ack(self, entry: QueueEntry) -> None: ...
    def requeue(self, entries: Iterable[QueueEntry], *, failed: bool = True) -> None:
        """Return deliveries; ``failed``: they count as failed deliveries (a reject, a lost
        consumer), not as a plain return (a nack) -- quorum queues count those."""
        ...

    def discard(self, entries: Iterable[QueueEntry]) -> None: ...
    def purge(self) -> int: ...

    # life and death
    def logs(self) -> list[Log]: ...
    def delete(self) -> None: ...
    def close(self) -> None: ...
