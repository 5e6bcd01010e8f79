"""What a channel may do to its connection: the narrow interface between the two.

A :class:`~jackalope.amqp.channel.Channel` never touches its connection's buffers, transport or
protocol state: it writes frames, asks for its confirms to go out with the next write, and
accounts for publishes waiting on the disk, through a :class:`ChannelOutput` (the asyncio
connection implements it, binding the writers straight to its
:class:`~jackalope.amqp.protocol.AmqpProtocol`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pamqp import base as pamqp_base

from jackalope.amqp.errors import ChannelException

if TYPE_CHECKING:
    from jackalope.amqp.channel import Channel


class ChannelOutput(Protocol):
    """What a channel may do to its connection: write frames, ask for its confirms to go out,
    and account for publishes waiting on the disk.  ``writable`` is False while the transport
    cannot take more output (deliveries wait)."""

    writable: bool

    @property
    def cancel_notify(self) -> bool:
        """Whether the client takes a broker-sent basic.cancel (``consumer_cancel_notify``)."""
        ...

    def send_method(self, channel: int, method: pamqp_base.Frame) -> None: ...

    def deliver(
        self,
        channel: int,
        consumer_tag: bytes,
        delivery_tag: int,
        redelivered: bool,
        exchange: str,
        routing_key: str,
        properties: bytes,
        body: bytes,
    ) -> None: ...

    def get_ok(
        self,
        channel: int,
        delivery_tag: int,
        redelivered: bool,
        exchange: str,
        routing_key: str,
        message_count: int,
        properties: bytes,
        body: bytes,
    ) -> None: ...

    def basic_return(
        self,
        channel: int,
        reply_code: int,
        reply_text: str,
        exchange: str,
        routing_key: str,
        properties: bytes,
        body: bytes,
    ) -> None: ...

    def confirm(self, channel: int, delivery_tag: int, multiple: bool, ack: bool) -> None: ...

    def confirms_due(self, channel: Channel) -> None: ...

    def publish_backlog(self, delta: int) -> None: ...

    def close_channel(self, channel: Channel, error: ChannelException) -> None:
        """Close ``channel`` for ``error`` outside the handling of a method (a failed commit)."""
