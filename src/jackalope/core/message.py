"""A message as the broker core holds it."""

from __future__ import annotations


class Message:
    """One published message.

    ``properties`` is opaque to the core: the encoded property block of the protocol that
    published it (for AMQP the basic-class property flags and list, kept verbatim so every
    property round-trips exactly).  ``persistent`` says whether it must reach the disk when
    routed to a durable queue; ``ttl_ms`` is the publisher's time to live (AMQP's
    ``expiration``), None for none; ``priority`` its priority (0 to 255) in a priority queue.
    """

    __slots__ = ("body", "exchange", "persistent", "priority", "properties", "routing_key", "ttl_ms")

    def __init__(
        self,
        exchange: str,
        routing_key: str,
        properties: bytes,
        body: bytes,
        persistent: bool,
        ttl_ms: int | None = None,
        priority: int = 0,
    ) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.properties = properties
        self.body = body
        self.persistent = persistent
        self.ttl_ms = ttl_ms
        self.priority = priority


class QueueEntry:
    """A message's place in one queue: its order, redelivery flag, log offset (-1: memory
    only), when it expires there (wall-clock ms; 0: never), and (counted by quorum queues)
    its failed deliveries and plain returns."""

    __slots__ = (
        "delivered",
        "delivery_count",
        "expires_at",
        "message",
        "offset",
        "redelivered",
        "returns",
        "seq",
    )

    def __init__(
        self, message: Message, seq: int, offset: int = -1, redelivered: bool = False, expires_at: int = 0
    ) -> None:
        self.message = message
        self.seq = seq
        self.offset = offset
        self.redelivered = redelivered
        self.expires_at = expires_at
        self.delivered = False  # handed to a consumer (a durable queue notes it in its log)
        self.delivery_count = 0
        self.returns = 0
