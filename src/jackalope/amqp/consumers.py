"""A channel's consumers and the deliveries they hold.

:class:`ChannelConsumer` is what a basic.consume subscribes to a queue (the core's
:class:`~jackalope.core.consumer.Consumer`) or a stream (its
:class:`~jackalope.core.stream.StreamConsumer`): it says whether it has credit and turns a
queue's entry into a basic.deliver.  :class:`Unacked` is one delivery awaiting its ack.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

from jackalope.amqp import properties as props
from jackalope.amqp.writers import shortstr
from jackalope.core.message import Message, QueueEntry
from jackalope.core.queue import Queue
from jackalope.core.queue_types import QueueType
from jackalope.core.stream import Stream
from jackalope.storage import Record

if TYPE_CHECKING:
    from jackalope.amqp.channel import Channel


# What a stream delivery's Unacked holds: settling it only returns credit.
STREAM_ENTRY: Final = QueueEntry(Message("", "", b"", b"", False), 0)


class ChannelConsumer:
    """A basic.consume subscription: the core's :class:`~jackalope.core.consumer.Consumer`
    for a queue, its :class:`~jackalope.core.stream.StreamConsumer` for a stream."""

    __slots__ = (
        "channel",
        "exclusive",
        "no_ack",
        "prefetch",
        "priority",
        "queue",
        "tag",
        "tag_bytes",
        "unacked",
    )

    def __init__(
        self,
        channel: Channel,
        queue: QueueType,
        tag: str,
        no_ack: bool,
        exclusive: bool,
        prefetch: int,
        priority: int = 0,
    ):
        self.channel = channel
        self.queue = queue
        self.tag = tag
        self.tag_bytes = shortstr(tag)
        self.no_ack = no_ack
        self.exclusive = exclusive
        self.prefetch = prefetch
        self.priority = priority  # x-priority: served before lower ones while it has credit
        self.unacked = 0

    def can_deliver(self) -> bool:
        ch = self.channel
        if self.no_ack:
            return ch.output.writable
        return (
            (self.prefetch == 0 or self.unacked < self.prefetch)
            and (ch.global_prefetch == 0 or ch.unacked_count < ch.global_prefetch)
            and ch.output.writable
        )

    def deliver(self, queue: Queue, entry: QueueEntry) -> None:
        """A queue's message to this consumer (the channel's work, done here: it is the hot path)."""
        ch = self.channel
        ch.delivery_tag += 1
        tag = ch.delivery_tag
        stats = ch.stats
        if entry.redelivered:
            stats.redeliver += 1
        if self.no_ack:
            stats.deliver_no_ack += 1
            queue.ack(entry)
        else:
            stats.deliver += 1
            ch.unacked[tag] = Unacked(queue, entry, self)
            ch.unacked_count += 1
            self.unacked += 1
            ch.timeouts.delivered()
        message = entry.message
        ch.output.deliver(
            ch.number,
            self.tag_bytes,
            tag,
            entry.redelivered,
            message.exchange,
            message.routing_key,
            delivered_properties(entry),
            message.body,
        )

    def deliver_record(self, stream: Stream, record: Record) -> None:
        self.channel.stats.deliver += 1
        self.channel.deliver_record(self, stream, record)

    # -- what core.clients shows (ClientConsumer) ----------------------------------------------

    @property
    def queue_name(self) -> str:
        return self.queue.name

    @property
    def ack_required(self) -> bool:
        return not self.no_ack

    @property
    def prefetch_count(self) -> int:
        return self.prefetch

    @property
    def arguments(self) -> dict[str, Any]:
        return {"x-priority": self.priority} if self.priority else {}

    def cancelled(self, queue: QueueType) -> None:
        self.channel.consumer_cancelled_by_broker(self)


def delivered_properties(entry: QueueEntry) -> bytes:
    """A message's properties as delivered: with ``x-delivery-count`` once a quorum queue has
    counted a failed delivery of it (RabbitMQ's header)."""
    if not entry.delivery_count:
        return entry.message.properties
    return props.with_header(entry.message.properties, "x-delivery-count", entry.delivery_count)


class Unacked:
    __slots__ = ("at", "consumer", "entry", "queue")

    def __init__(self, queue: QueueType, entry: QueueEntry, consumer: ChannelConsumer | None) -> None:
        self.queue = queue
        self.entry = entry
        self.consumer = consumer
        self.at = time.monotonic()  # when delivered (the consumer timeout's clock)
