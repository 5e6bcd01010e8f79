"""Dead-lettering: what a queue's ``x-dead-letter-exchange`` receives, and the record of its
deaths that RabbitMQ keeps in the message (``x-death``).

The core knows no message properties, so how a death is written into a message is a
front-end's business: the AMQP front-end installs a :data:`DeathStamp` that adds RabbitMQ's
``x-death`` header (and ``x-first-death-*``, ``x-last-death-*``).  Without one, a message is
dead-lettered as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from jackalope.core.exchanges import HeadersThunk


@dataclass(frozen=True, slots=True)
class Death:
    """One death: the queue the message left, why (``rejected``, ``expired``, ``maxlen``),
    where it had been published (exchange and routing keys) and when (Unix seconds)."""

    queue: str
    reason: str
    exchange: str
    routing_keys: tuple[str, ...]
    time: int


@dataclass(frozen=True, slots=True)
class Stamped:
    """A dead letter's properties with its death recorded, a thunk of their headers (it is
    routed by them, as any message), and the queues it would cycle back to."""

    properties: bytes
    headers: HeadersThunk
    # RabbitMQ's cycle rule: the queues the message died in since its last rejection (the
    # most recent deaths first, up to one that was a rejection); sending it to one of these
    # again is a cycle with no client in it, and the dead letter is dropped there.
    cycle: frozenset[str] = frozenset()


DeathStamp = Callable[[bytes, Death], Stamped]
"""A message's encoded properties, with ``death`` recorded in them."""
