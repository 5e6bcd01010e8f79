"""The events :class:`~jackalope.amqp.protocol.AmqpProtocol` hands the broker.

Each is something the broker acts on; frames the protocol answers itself (heartbeats,
channel.open-ok, close-ok) produce none.  The hot-path frame events of the reader
(:class:`~jackalope.amqp.reader.Ack`, ``Nack``, ``Reject``) are passed through as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, TypeAlias

from pamqp import base as pamqp_base

from jackalope.amqp.errors import ChannelException, ConnectionException
from jackalope.amqp.reader import Ack, Nack, Reject, WholeMessage


class LoginRequested(NamedTuple):
    """connection.start-ok arrived.  ``user`` is None if the response could not be parsed.
    For EXTERNAL, ``user`` is the CN of the client's verified TLS certificate (None without
    one) and ``password`` is None: the user must exist.  Answer with ``accept_login()`` or
    ``refuse_login()`` before reading on."""

    mechanism: str
    user: str | None
    password: str | None
    client_properties: Mapping[str, Any]


class SecretUpdateRequested(NamedTuple):
    """connection.update-secret arrived on an open connection.  Answer with
    ``accept_secret()``, or fail the connection."""

    secret: bytes
    reason: str


class Tuned(NamedTuple):
    """connection.tune-ok arrived: the negotiated limits (heartbeat 0: none)."""

    channel_max: int
    frame_max: int
    heartbeat: int


class VhostRequested(NamedTuple):
    """connection.open arrived.  Answer with ``accept_vhost()`` or ``fail(...)``."""

    vhost: str


class ChannelOpened(NamedTuple):
    """channel.open-ok has been sent for this channel."""

    channel: int


class ChannelClosed(NamedTuple):
    """The channel is gone: closed by the client (close-ok already sent), or closed here for
    the channel exception ``error`` (channel.close already sent)."""

    channel: int
    error: ChannelException | None = None


class MethodReceived(NamedTuple):
    """A method (as a pamqp command object) on an open channel, for the broker to carry out."""

    channel: int
    method: pamqp_base.Frame


MessageReceived = WholeMessage
"""A whole published message: its basic.publish, raw properties and body (the reader's own
event when it found the three frames together)."""


class ConnectionFailed(NamedTuple):
    """The peer broke the protocol: connection.close has been sent with ``error``; nothing else
    will be read but the peer's close-ok."""

    error: ConnectionException


class ConnectionClosed(NamedTuple):
    """The connection is over: send what :meth:`AmqpProtocol.data_to_send` still has, then
    close the transport.  ``reply_code``/``reply_text`` are the client's, when it closed."""

    reply_code: int = 0
    reply_text: str = ""


Event: TypeAlias = (
    LoginRequested
    | Tuned
    | VhostRequested
    | SecretUpdateRequested
    | ChannelOpened
    | ChannelClosed
    | MethodReceived
    | MessageReceived
    | Ack
    | Nack
    | Reject
    | ConnectionFailed
    | ConnectionClosed
)
