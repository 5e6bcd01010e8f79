"""What a queue needs from whoever consumes it (an AMQP channel's consumer, for one)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from jackalope.core.message import QueueEntry
    from jackalope.core.queue import Queue


class Consumer(Protocol):
    """A subscriber the queue pushes to.  The front-end implements it."""

    tag: str
    exclusive: bool
    priority: int  # higher first; consumers of one priority share messages round-robin

    def can_deliver(self) -> bool:
        """Whether it takes one more message now (prefetch credit, a writable connection)."""
        ...

    def deliver(self, queue: Queue, entry: QueueEntry) -> None:
        """Hand over ``entry``; the consumer settles it later with ``queue.ack``/``queue.reject``
        (at once for a no-ack consumer)."""
        ...

    def cancelled(self, queue: Queue) -> None:
        """The broker removed this consumer (the queue was deleted)."""
        ...
