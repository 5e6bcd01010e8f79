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


DeathStamp = Callable[[bytes, Death], tuple[bytes, HeadersThunk]]
"""A message's encoded properties, with ``death`` recorded in them, and a thunk of their
headers (a dead letter is routed by them, as any message)."""
