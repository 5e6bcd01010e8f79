"""The server side of one AMQP 0-9-1 connection as a state machine: bytes in, events out.

Everything in the AMQP front-end that is protocol rather than broker lives here, with no
socket, no event loop and no clock: the protocol header, the start / tune / open handshake
(with PLAIN and AMQPLAIN credentials, and EXTERNAL: the CN of the client's verified TLS
certificate, which the connection hands in with :meth:`AmqpProtocol.set_peer_certificate`),
channel numbers and their open and close handshakes,
the assembly of basic.publish + content header + body frames into one message per channel,
frame-max and channel-max, heartbeat bookkeeping, and the connection.close handshake in
both directions.  :class:`AmqpProtocol` is used like h11's ``Connection``::

    protocol.receive_data(data)                 # whatever the socket gave
    while (event := protocol.next_event()) is not None:
        ...                                     # act on it, e.g. protocol.deliver(...)
    transport.write(protocol.data_to_send())

The events are the things a broker acts on (:class:`MessageReceived`, :class:`MethodReceived`,
the hot-path :class:`Ack` / :class:`Nack` / :class:`Reject`, :class:`ChannelOpened` ...); every
other frame is answered or checked here.  A peer that breaks the protocol gets
connection.close with the spec's reply code and one :class:`ConnectionFailed` event; a channel
exception found here (an oversized message) closes that channel and yields
:class:`ChannelClosed`.  Exceptions the broker raises while handling an event are reported
back with :meth:`AmqpProtocol.close_channel` and :meth:`AmqpProtocol.fail`.

Two decisions of the broker are left to it by events it must answer before reading on:
:class:`LoginRequested` (call :meth:`~AmqpProtocol.accept_login` or
:meth:`~AmqpProtocol.refuse_login`) and :class:`VhostRequested` (call
:meth:`~AmqpProtocol.accept_vhost`, or :meth:`~AmqpProtocol.fail` with NOT_ALLOWED).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, Final

from pamqp import base as pamqp_base
from pamqp import commands as spec
from pamqp import decode as pamqp_decode

from jackalope.amqp import writers
from jackalope.amqp.constants import (
    ACCESS_REFUSED,
    BASIC_PUBLISH,
    CHANNEL_ERROR,
    CLASS_BASIC,
    COMMAND_INVALID,
    FRAME_ERROR,
    FRAME_MIN_SIZE,
    NOT_ALLOWED,
    NOT_IMPLEMENTED,
    PRECONDITION_FAILED,
    UNEXPECTED_FRAME,
)
from jackalope.amqp.errors import AmqpError, ChannelException, ConnectionException
from jackalope.amqp.events import (
    ChannelClosed,
    ChannelOpened,
    ConnectionClosed,
    ConnectionFailed,
    Event,
    LoginRequested,
    MessageReceived,
    MethodReceived,
    SecretUpdateRequested,
    Tuned,
    VhostRequested,
)
from jackalope.amqp.reader import (
    Ack,
    ContentBody,
    ContentHeader,
    FrameReader,
    Heartbeat,
    MethodFrame,
    Nack,
    ProtocolHeader,
    Publish,
    Reject,
    WholeMessage,
)

__all__ = [
    "EXTERNAL",
    "Ack",
    "AmqpProtocol",
    "ChannelClosed",
    "ChannelOpened",
    "ConnectionClosed",
    "ConnectionFailed",
    "Event",
    "LoginRequested",
    "MessageReceived",
    "MethodReceived",
    "Nack",
    "Publish",
    "Reject",
    "SecretUpdateRequested",
    "State",
    "Tuned",
    "VhostRequested",
]

MECHANISMS: Final = "PLAIN AMQPLAIN"
EXTERNAL: Final = "EXTERNAL"
"""Offered besides MECHANISMS on a connection whose client sent a verified TLS certificate."""
LOCALES: Final = "en_US"
MISSED_TICKS: Final = 4
"""A peer that sent nothing for this many ticks (two heartbeat intervals) is gone."""


class State(Enum):
    """Where the connection is.  The handshake moves it down this list; closing from either
    side goes to CLOSING (waiting for close-ok) or straight to CLOSED."""

    AWAIT_HEADER = "await protocol header"
    AWAIT_START_OK = "await connection.start-ok"
    AWAIT_LOGIN = "await the broker's login decision"
    AWAIT_TUNE_OK = "await connection.tune-ok"
    AWAIT_OPEN = "await connection.open"
    AWAIT_VHOST = "await the broker's vhost decision"
    OPEN = "open"
    CLOSING = "closing: await connection.close-ok"
    CLOSED = "closed"


_new = tuple.__new__
_deliver: Final = writers.deliver
_OPEN: Final = State.OPEN
_CONNECTION_METHODS: Final = tuple(
    v for v in vars(spec.Connection).values() if isinstance(v, type) and issubclass(v, pamqp_base.Frame)
)
_CLOSED: Final = State.CLOSED


class _Content:
    """An open channel's message being received: its basic.publish, then the content header,
    then the body frames.  ``publish`` is None between messages (one object per channel)."""

    __slots__ = ("body_size", "parts", "properties", "publish", "received")

    def __init__(self) -> None:
        self.publish: Publish | None = None
        self.properties: bytes | None = None
        self.body_size = 0
        self.parts: list[bytes] = []
        self.received = 0


class AmqpProtocol:
    """One server connection's protocol state.  Not thread-safe; no I/O."""

    def __init__(
        self,
        server_properties: Mapping[str, Any],
        *,
        frame_max: int,
        channel_max: int,
        heartbeat: int,
        max_message_bytes: int,
        on_output: Callable[[], None] | None = None,
    ) -> None:
        self.server_properties = dict(server_properties)
        self.max_frame_max = frame_max
        self.max_channel_max = channel_max
        self.offered_heartbeat = heartbeat
        self.max_message_bytes = max_message_bytes
        self.on_output = on_output
        """Called when output goes from none to some (to schedule a write)."""
        self.state = State.AWAIT_HEADER
        self.frame_max = frame_max
        self.channel_max = channel_max
        self.heartbeat = 0
        self.client_properties: dict[str, Any] = {}
        self.capabilities: dict[str, Any] = {}
        self.mechanism = ""
        self._peer_certificate: Mapping[str, Any] | None = None
        self._reader = FrameReader(frame_max)
        self._out = bytearray()
        self._open: dict[int, _Content] = {}  # open channels, with the message being received
        self._closing: set[int] = set()  # channels we closed, awaiting close-ok
        self._closed_event: ConnectionClosed | None = None  # to report on the next next_event()
        self._received = False
        self._sent = False
        self._idle_ticks = 0

    def set_peer_certificate(self, certificate: Mapping[str, Any] | None) -> None:
        """The client's TLS certificate as verified against the listener's CAs (the fields of
        :meth:`ssl.SSLSocket.getpeercert`), or None for none.  With one, connection.start offers
        EXTERNAL, whose user is the certificate's CN (RabbitMQ's ``ssl_cert_login_from =
        common_name``).  Call before feeding the protocol header."""
        self._expect(State.AWAIT_HEADER)
        self._peer_certificate = dict(certificate) if certificate else None

    @property
    def mechanisms(self) -> str:
        """The SASL mechanisms connection.start offers."""
        return f"{MECHANISMS} {EXTERNAL}" if self._peer_certificate else MECHANISMS

    # -- input -----------------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Take bytes read from the peer (events come from :meth:`next_event`)."""
        if data and self.state is not _CLOSED:
            self._received = True
            self._reader.feed(data)

    def next_event(self) -> Event | None:
        """The next event, or None when more bytes are needed (or the connection is closed)."""
        if self._closed_event is not None:
            closed, self._closed_event = self._closed_event, None
            return closed
        if self.state is _CLOSED:
            return None
        read = self._reader.next_event
        channels = self._open
        event: Event | None
        frame: Any  # the reader's frame events, told apart by their exact type below
        while True:
            try:
                frame = read()
                if frame is None:
                    return None
                if self.state is not _OPEN:
                    event = self._not_open(frame)
                    if event is not None:  # closing here always comes with ConnectionClosed
                        return event
                    continue
                # The hot path: the frames of publishes and acks on an open connection.
                kind = type(frame)
                if kind is WholeMessage:
                    content = channels.get(frame.channel)
                    if (
                        content is not None
                        and content.publish is None
                        and not frame.publish.immediate
                        and len(frame.body) <= self.max_message_bytes
                    ):
                        return frame  # type: ignore[no-any-return]
                    event = self._in_parts(frame)
                elif kind is ContentBody:
                    content = channels.get(frame.channel)
                    if (
                        content is not None
                        and content.properties is not None
                        and not content.received
                        and len(frame.data) == content.body_size
                    ):  # a whole body in one frame
                        event = _new(
                            MessageReceived, (frame.channel, content.publish, content.properties, frame.data)
                        )
                        content.publish = content.properties = None
                        return event
                    event = self._body(frame)
                elif kind is Publish:
                    content = channels.get(frame.channel)
                    if content is None or content.publish is not None or frame.immediate:
                        self._bad_publish(frame)
                    else:
                        content.publish = frame
                    continue
                elif kind is ContentHeader:
                    event = self._header(frame)
                elif kind is Ack or kind is Nack or kind is Reject:
                    content = channels.get(frame.channel)
                    if (content is not None and content.publish is None) or self._channel_ready(
                        frame.channel
                    ):
                        return frame  # type: ignore[no-any-return]
                    continue
                elif kind is MethodFrame:
                    event = self._method(frame.channel, frame.method)
                elif kind is Heartbeat:
                    continue
                else:
                    event = self._protocol_header(frame)
            except ConnectionException as exc:
                if self.state is State.CLOSING:
                    return None  # framing is lost after our connection.close: wait for the end
                return self._failed(exc)
            if event is not None:
                return event

    def _not_open(self, frame: Any) -> Event | None:
        """A frame during the handshake or while closing."""
        kind = type(frame)
        if kind is ProtocolHeader:
            return self._protocol_header(frame)
        if self.state is State.CLOSING:
            # Only the close handshake counts now (spec 2.2.4: discard everything else).
            if kind is MethodFrame and frame.channel == 0:
                if isinstance(frame.method, spec.Connection.Close):
                    self.send_method(0, spec.Connection.CloseOk())
                    return self._close_now()
                if isinstance(frame.method, spec.Connection.CloseOk):
                    return self._close_now()
            return None
        if kind is Heartbeat:
            return None
        if kind is MethodFrame and frame.channel == 0:
            return self._connection_method(frame.method)
        index = frame.method.index if kind is MethodFrame else 0
        raise ConnectionException(CHANNEL_ERROR, "connection is not open", index)

    def _channel_ready(self, number: int) -> bool:
        """Whether a frame for ``number`` is to be handled: the channel is open and not in the
        middle of a message; False if it is closing (the frame is dropped, per spec)."""
        content = self._open.get(number)
        if content is not None:
            if content.publish is not None:
                raise ConnectionException(UNEXPECTED_FRAME, f"expected content header for channel {number}")
            return True
        if number in self._closing:
            return False
        raise ConnectionException(CHANNEL_ERROR, "expected 'channel.open'")  # RabbitMQ's words

    # -- handshake -------------------------------------------------------------------------------

    def _protocol_header(self, frame: ProtocolHeader) -> Event | None:
        if not frame.valid or self.state is not State.AWAIT_HEADER:
            self._write(writers.protocol_header())
            return self._close_now()
        self.state = State.AWAIT_START_OK
        start = spec.Connection.Start(
            0, 9, self.server_properties, mechanisms=self.mechanisms, locales=LOCALES
        )
        self.send_method(0, start)
        return None

    def _start_ok(self, m: spec.Connection.StartOk) -> Event:
        self.client_properties = dict(m.client_properties or {})
        capabilities = self.client_properties.get("capabilities")
        self.capabilities = dict(capabilities) if isinstance(capabilities, dict) else {}
        self.mechanism = m.mechanism
        if m.mechanism == EXTERNAL:  # the response is not looked at, as in RabbitMQ
            user, password = _common_name(self._peer_certificate), None
        else:
            user, password = _credentials(m)
        self.state = State.AWAIT_LOGIN
        return LoginRequested(m.mechanism, user, password, self.client_properties)

    def accept_login(self) -> None:
        """The credentials are good: send connection.tune."""
        self._expect(State.AWAIT_LOGIN)
        self.state = State.AWAIT_TUNE_OK
        self.send_method(
            0, spec.Connection.Tune(self.max_channel_max, self.max_frame_max, self.offered_heartbeat)
        )

    def accept_secret(self) -> None:
        """The new secret is good: send connection.update-secret-ok."""
        self._expect(State.OPEN)
        self.send_method(0, spec.Connection.UpdateSecretOk())

    def refuse_login(self) -> None:
        """The credentials are wrong: connection.close(ACCESS_REFUSED) if the client announced
        ``authentication_failure_close``, else just close (what such clients expect)."""
        self._expect(State.AWAIT_LOGIN)
        if not self.capabilities.get("authentication_failure_close"):
            self._closed_event = self._close_now()
            return
        reason = (
            f"Login was refused using authentication mechanism {self.mechanism}. "
            "For details see the broker logfile."
        )
        self._start_closing(ConnectionException(ACCESS_REFUSED, reason))

    def _tune_ok(self, m: spec.Connection.TuneOk) -> Event:
        frame_max = m.frame_max or self.max_frame_max
        if frame_max < FRAME_MIN_SIZE or frame_max > self.max_frame_max:
            raise ConnectionException(
                NOT_ALLOWED,
                f"frame_max={frame_max} < {FRAME_MIN_SIZE} min size or > {self.max_frame_max}",
                m.index,
            )
        self.frame_max = frame_max
        self._reader.frame_max = frame_max
        self.channel_max = min(m.channel_max or self.max_channel_max, self.max_channel_max)
        self.heartbeat = m.heartbeat
        self.state = State.AWAIT_OPEN
        return Tuned(self.channel_max, self.frame_max, self.heartbeat)

    def accept_vhost(self) -> None:
        """The client may use the virtual host it asked for: send connection.open-ok."""
        self._expect(State.AWAIT_VHOST)
        self.state = State.OPEN
        self.send_method(0, spec.Connection.OpenOk())

    def _expect(self, state: State) -> None:
        if self.state is not state:
            raise RuntimeError(f"not allowed while the connection is {self.state.value}")

    # -- methods ---------------------------------------------------------------------------------

    def _method(self, number: int, method: pamqp_base.Frame) -> Event | None:
        if number == 0:
            return self._connection_method(method)
        if number in self._closing:
            if isinstance(method, (spec.Channel.CloseOk, spec.Channel.Close)):
                self._closing.discard(number)
                if isinstance(method, spec.Channel.Close):
                    self.send_method(number, spec.Channel.CloseOk())
            return None  # everything else on a closing channel is dropped, per spec
        if isinstance(method, spec.Channel.Open):
            if number in self._open:
                raise ConnectionException(CHANNEL_ERROR, f"channel {number} is already open", method.index)
            if len(self._open) >= self.channel_max:  # RabbitMQ counts channels, not numbers
                raise ConnectionException(
                    NOT_ALLOWED,
                    f"number of channels opened ({len(self._open)}) has reached the negotiated "
                    f"channel_max ({self.channel_max})",
                    method.index,
                )
            self._open[number] = _Content()
            self.send_method(number, spec.Channel.OpenOk())
            return ChannelOpened(number)
        self._channel_ready(number)
        if isinstance(method, spec.Channel.Close):
            del self._open[number]
            self.send_method(number, spec.Channel.CloseOk())
            return ChannelClosed(number)
        if isinstance(method, spec.Channel.CloseOk):
            return None
        return MethodReceived(number, method)

    def _connection_method(self, method: pamqp_base.Frame) -> Event | None:
        state = self.state
        if isinstance(method, spec.Connection.StartOk) and state is State.AWAIT_START_OK:
            return self._start_ok(method)
        if isinstance(method, spec.Connection.TuneOk) and state is State.AWAIT_TUNE_OK:
            return self._tune_ok(method)
        if isinstance(method, spec.Connection.Open) and state is State.AWAIT_OPEN:
            self.state = State.AWAIT_VHOST
            return VhostRequested(method.virtual_host)
        if isinstance(method, spec.Connection.Close):
            self.send_method(0, spec.Connection.CloseOk())
            return self._close_now(method.reply_code or 0, method.reply_text or "")
        if isinstance(method, (spec.Connection.Blocked, spec.Connection.Unblocked)):
            return None  # notifications for the client; a client that sends them is ignored
        if isinstance(method, spec.Connection.UpdateSecret) and state is State.OPEN:
            secret = method.new_secret
            raw = secret if isinstance(secret, bytes) else str(secret).encode()
            return SecretUpdateRequested(raw, method.reason or "")
        if state is State.OPEN and not isinstance(method, _CONNECTION_METHODS):  # RabbitMQ's words
            raise ConnectionException(
                CHANNEL_ERROR, "unexpected method in connection state running", method.index
            )
        raise ConnectionException(COMMAND_INVALID, f"unexpected {method.name} on channel 0", method.index)

    # -- content assembly ------------------------------------------------------------------------

    def _in_parts(self, frame: WholeMessage) -> Event | None:
        """A whole message where it cannot be passed on as it is: its three frames one by one,
        with every rule and error of the frame-by-frame path."""
        publish = frame.publish
        content = self._open.get(frame.channel)
        if content is None or content.publish is not None or publish.immediate:
            self._bad_publish(publish)  # raises, unless the channel is closing
            return None  # a closing channel: its content is dropped too
        content.publish = publish
        event = self._header(
            _new(ContentHeader, (frame.channel, CLASS_BASIC, len(frame.body), frame.properties))
        )
        if event is not None or not frame.body or frame.channel not in self._open:
            return event
        return self._body(_new(ContentBody, (frame.channel, frame.body)))

    def _bad_publish(self, frame: Publish) -> None:
        """basic.publish where it may not be: on a closing channel (dropped, as the content
        frames after it will be) or an error."""
        if self._channel_ready(frame.channel) and frame.immediate:
            raise ConnectionException(NOT_IMPLEMENTED, "immediate=true", BASIC_PUBLISH)

    def _header(self, frame: ContentHeader) -> Event | None:
        number = frame.channel
        content = self._open.get(number)
        if content is None or content.publish is None or content.properties is not None:
            if number in self._closing:
                return None
            raise ConnectionException(UNEXPECTED_FRAME, f"unexpected content header on channel {number}")
        if frame.class_id != CLASS_BASIC:
            raise ConnectionException(UNEXPECTED_FRAME, f"content header for class {frame.class_id}")
        if frame.body_size > self.max_message_bytes:
            error = ChannelException(
                PRECONDITION_FAILED,
                f"message size {frame.body_size} is larger than configured max size {self.max_message_bytes}",
                BASIC_PUBLISH,
            )
            self.close_channel(number, error)
            return ChannelClosed(number, error)
        if frame.body_size == 0:
            publish, content.publish = content.publish, None
            return _new(MessageReceived, (number, publish, frame.properties, b""))
        content.properties = frame.properties
        content.body_size = frame.body_size
        return None

    def _body(self, frame: ContentBody) -> Event | None:
        number = frame.channel
        content = self._open.get(number)
        if content is None or content.properties is None:
            if number in self._closing:
                return None
            raise ConnectionException(UNEXPECTED_FRAME, f"unexpected content body on channel {number}")
        data = frame.data
        received = content.received + len(data)
        if received < content.body_size:
            content.parts.append(data)
            content.received = received
            return None
        if received > content.body_size:
            raise ConnectionException(
                FRAME_ERROR, f"content body is longer than the declared {content.body_size} bytes"
            )
        if content.parts:
            content.parts.append(data)
            data = b"".join(content.parts)
            content.parts = []
        event = _new(MessageReceived, (number, content.publish, content.properties, data))
        content.publish = content.properties = None
        content.received = 0
        return event

    # -- output ----------------------------------------------------------------------------------

    def data_to_send(self) -> bytes | bytearray:
        """Everything to write to the peer since the last call (empty if nothing)."""
        out = self._out
        if not out:
            return b""
        self._out = bytearray()
        self._sent = True
        return out

    def _write(self, data: bytes) -> None:
        if not self._out and self.on_output is not None:
            self.on_output()
        self._out += data

    def _wake(self) -> None:
        # Before a writer appends straight to the buffer.
        if not self._out and self.on_output is not None:
            self.on_output()

    def send_method(self, channel: int, method: pamqp_base.Frame) -> None:
        """Any method, encoded from a pamqp command object."""
        self._write(writers.method_frame(channel, method))

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
    ) -> None:
        """basic.deliver with its content (``consumer_tag`` pre-encoded by ``writers.shortstr``)."""
        out = self._out
        if not out and self.on_output is not None:
            self.on_output()
        _deliver(
            out,
            channel,
            consumer_tag,
            delivery_tag,
            redelivered,
            exchange,
            routing_key,
            properties,
            body,
            self.frame_max,
        )

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
    ) -> None:
        """basic.get-ok with its content."""
        self._wake()
        writers.get_ok(
            self._out,
            channel,
            delivery_tag,
            redelivered,
            exchange,
            routing_key,
            message_count,
            properties,
            body,
            self.frame_max,
        )

    def basic_return(
        self,
        channel: int,
        reply_code: int,
        reply_text: str,
        exchange: str,
        routing_key: str,
        properties: bytes,
        body: bytes,
    ) -> None:
        """basic.return with its content (an unroutable mandatory message)."""
        self._wake()
        writers.basic_return(
            self._out,
            channel,
            reply_code,
            reply_text,
            exchange,
            routing_key,
            properties,
            body,
            self.frame_max,
        )

    def confirm(self, channel: int, delivery_tag: int, multiple: bool, ack: bool) -> None:
        """A publisher confirm: basic.ack, or basic.nack if not ``ack``."""
        self._wake()
        if ack:
            writers.confirm_ack(self._out, channel, delivery_tag, multiple)
        else:
            writers.confirm_nack(self._out, channel, delivery_tag, multiple)

    def block(self, reason: str) -> bool:
        """connection.blocked, if the client announced the capability; whether it was sent."""
        if self.state is not State.OPEN or not self.capabilities.get("connection.blocked"):
            return False
        self.send_method(0, spec.Connection.Blocked(reason))
        return True

    def unblock(self) -> bool:
        """connection.unblocked, if the client announced the capability; whether it was sent."""
        if self.state is not State.OPEN or not self.capabilities.get("connection.blocked"):
            return False
        self.send_method(0, spec.Connection.Unblocked())
        return True

    # -- closing ---------------------------------------------------------------------------------

    def close_channel(self, channel: int, error: AmqpError) -> None:
        """Close ``channel`` for ``error`` (a channel exception): send channel.close and drop the
        channel's frames until its close-ok."""
        self._open.pop(channel, None)
        self._closing.add(channel)
        self.send_method(
            channel, spec.Channel.Close(error.reply_code, error.reply_text, error.class_id, error.method_id)
        )

    def fail(self, error: AmqpError) -> None:
        """Close the connection for ``error`` (a connection exception, or a shutdown's
        CONNECTION_FORCED): send connection.close and wait for close-ok."""
        if self.state in (State.CLOSING, State.CLOSED):
            return
        if self.state is State.AWAIT_HEADER:
            self._closed_event = self._close_now()
            return
        self._start_closing(error)

    def _failed(self, error: ConnectionException) -> Event:
        if self.state is State.AWAIT_HEADER:
            return self._close_now()  # before the handshake there is nobody to tell
        self._start_closing(error)
        return ConnectionFailed(error)

    def _start_closing(self, error: AmqpError) -> None:
        self._open.clear()
        self._closing.clear()
        self.state = State.CLOSING
        self.send_method(
            0, spec.Connection.Close(error.reply_code, error.reply_text, error.class_id, error.method_id)
        )

    def _close_now(self, reply_code: int = 0, reply_text: str = "") -> ConnectionClosed:
        """Nothing more to read or send: the event that says so."""
        self.state = State.CLOSED
        self._open.clear()
        self._closing.clear()
        return ConnectionClosed(reply_code, reply_text)

    # -- heartbeats ------------------------------------------------------------------------------

    def tick(self, *, watch_peer: bool = True) -> bool:
        """Call every ``heartbeat / 2`` seconds: sends a heartbeat if nothing else went out since
        the last tick; False once the peer has sent nothing for two heartbeat intervals.
        ``watch_peer`` False (the broker is not reading the peer): only send."""
        if not self.heartbeat or self.state is State.CLOSED:
            return True
        if self._received or not watch_peer:
            self._idle_ticks = 0
        else:
            self._idle_ticks += 1
            if self._idle_ticks >= MISSED_TICKS:
                return False
        if not self._sent and not self._out:
            self._write(writers.heartbeat())
        self._received = self._sent = False
        return True


def _common_name(certificate: Mapping[str, Any] | None) -> str | None:
    """The CN of a certificate's subject (several joined with ",", as RabbitMQ joins them);
    None without a certificate or a CN."""
    if not certificate:
        return None
    names = [value for rdn in certificate.get("subject", ()) for key, value in rdn if key == "commonName"]
    return ",".join(names) if names else None


def _credentials(m: spec.Connection.StartOk) -> tuple[str | None, str | None]:
    """(user, password) from a PLAIN or AMQPLAIN response; (None, None) if unreadable."""
    response = m.response
    if m.mechanism == "PLAIN":
        text = response.decode(errors="replace") if isinstance(response, bytes) else (response or "")
        parts = text.split("\x00")
        if len(parts) != 3:
            return None, None
        return parts[1], parts[2]
    if m.mechanism == "AMQPLAIN":
        try:
            raw = response if isinstance(response, bytes) else response.encode("latin-1")
            # AMQPLAIN's response is a field table without its 4-octet length prefix.
            _, table = pamqp_decode.field_table(struct.pack(">I", len(raw)) + raw)
        except Exception:
            return None, None
        return str(table.get("LOGIN", "")), str(table.get("PASSWORD", ""))
    return None, None
