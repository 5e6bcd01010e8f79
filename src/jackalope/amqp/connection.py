"""One AMQP 0-9-1 connection: handshake, heartbeats, channels, frame assembly, flow control.

An asyncio ``Protocol`` around the sans-IO codec: bytes from the socket go to
:class:`~jackalope.amqp.codec.FrameReader`, events are handled here or by the
:class:`~jackalope.amqp.channel.Channel` they belong to, and everything to send is appended
to one buffer that is written once per event-loop iteration.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from typing import TYPE_CHECKING, Any, Final

from pamqp import commands as spec
from pamqp import decode as pamqp_decode

from jackalope import __version__
from jackalope.amqp import codec
from jackalope.amqp import constants as c
from jackalope.amqp.channel import AmqpError, Channel, ChannelError, ConnectionError_, reply_text
from jackalope.core.vhost import VirtualHost

if TYPE_CHECKING:
    from jackalope.amqp.server import AmqpServer

log = logging.getLogger(__name__)

CHANNEL_MAX: Final = 2047
FRAME_MAX: Final = 131072
FRAME_MIN: Final = 4096
HEARTBEAT: Final = 60
BACKLOG_HIGH: Final = 20_000  # publishes awaiting the disk before we stop reading the socket
BACKLOG_LOW: Final = 5_000
CLOSE_TIMEOUT: Final = 3.0

# Connection states
AWAIT_HEADER, AWAIT_START_OK, AWAIT_TUNE_OK, AWAIT_OPEN, OPEN, CLOSING, CLOSED = range(7)


def server_properties() -> dict[str, Any]:
    return {
        "product": "Jackalope",
        "version": __version__,
        "platform": "Python",
        "copyright": "Jackalope contributors",
        "information": "https://github.com/jackalope-broker/jackalope",
        "cluster_name": "jackalope",
        "capabilities": {
            "publisher_confirms": True,
            "exchange_exchange_bindings": True,
            "basic.nack": True,
            "consumer_cancel_notify": True,
            "connection.blocked": True,
            "consumer_priorities": False,
            "authentication_failure_close": True,
            "per_consumer_qos": True,
            "direct_reply_to": False,
        },
    }


class AmqpConnection(asyncio.Protocol):
    def __init__(self, server: AmqpServer) -> None:
        self.server = server
        self.core = server.core
        self.reader = codec.FrameReader(FRAME_MAX)
        self.state = AWAIT_HEADER
        self.transport: asyncio.Transport | None = None
        self.out = bytearray()
        self.flush_scheduled = False
        self.writable = True
        self.channels: dict[int, Channel] = {}
        self.closing_channels: set[int] = set()
        self.frame_max = FRAME_MAX
        self.channel_max = CHANNEL_MAX
        self.heartbeat = 0
        self.user = ""
        self.vhost_obj: VirtualHost = self.core.vhost("/")
        self.pending_confirm_channels: set[Channel] = set()
        self.backlog = 0
        self.reading_paused = False
        self.last_received = self.last_sent = time.monotonic()
        self._heartbeat_timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self.loop = asyncio.get_running_loop()
        self.peer = "?"

    # -- transport callbacks -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.server.connections.add(self)
        self._close_timer = self.loop.call_later(10.0, self._handshake_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cleanup()

    def pause_writing(self) -> None:
        self.writable = False

    def resume_writing(self) -> None:
        self.writable = True
        for channel in list(self.channels.values()):
            for consumer in list(channel.consumers.values()):
                consumer.queue.dispatch()

    def data_received(self, data: bytes) -> None:
        self.last_received = time.monotonic()
        if self.state == CLOSED:
            return
        reader = self.reader
        reader.feed(data)
        try:
            while True:
                event = reader.next_event()
                if event is None:
                    break
                self._handle(event)
                if self.state == CLOSED:
                    return
        except codec.FrameError as exc:
            self.close_connection(exc.reply_code, exc.text, exc.class_id, exc.method_id)
        except ConnectionError_ as exc:
            self.close_connection(exc.code, exc.text, exc.class_id, exc.method_id, formatted=True)
        except Exception:
            log.exception("internal error on AMQP connection %s", self.peer)
            self.close_connection(c.INTERNAL_ERROR, "internal error")

    # -- events --------------------------------------------------------------------------------

    def _handle(self, event: Any) -> None:
        kind = type(event)
        if kind is codec.ContentBody:
            self._body(event)
        elif kind is codec.Publish or kind is codec.ContentHeader:
            self._publish_frames(event)
        elif kind is codec.Ack or kind is codec.Nack or kind is codec.Reject:
            self._settle(event)
        elif kind is codec.MethodFrame:
            self._method(event.channel, event.method)
        elif kind is codec.Heartbeat:
            pass
        elif kind is codec.ProtocolHeader:
            self._protocol_header(event)

    def _settle(self, event: codec.Ack | codec.Nack | codec.Reject) -> None:
        """basic.ack / nack / reject from the client (no closure per frame: this is hot)."""
        channel = self._open_channel(event.channel)
        if channel is None:
            return
        try:
            if isinstance(event, codec.Ack):
                channel.ack(event.delivery_tag, event.multiple)
            elif isinstance(event, codec.Nack):
                channel.nack(event.delivery_tag, event.multiple, event.requeue)
            else:
                channel.nack(event.delivery_tag, False, event.requeue, 0x3C005A)
        except ChannelError as exc:
            self._close_channel(channel, exc)

    def _open_channel(self, number: int) -> Channel | None:
        """The channel a frame is for; None if it is closing (frames are then dropped)."""
        channel = self.channels.get(number)
        if channel is not None:
            if channel.publishing is not None:
                raise ConnectionError_(c.UNEXPECTED_FRAME, f"expected content header for channel {number}")
            return channel
        if number in self.closing_channels:
            return None
        if self.state != OPEN:
            raise ConnectionError_(c.CHANNEL_ERROR, "connection is not open")
        raise ConnectionError_(c.CHANNEL_ERROR, f"expected 'channel.open' for channel {number}")

    def _protocol_header(self, event: codec.ProtocolHeader) -> None:
        if not event.valid or self.state != AWAIT_HEADER:
            self._write(codec.protocol_header())
            self._close_transport()
            return
        self.state = AWAIT_START_OK
        self.send_method(
            0, spec.Connection.Start(0, 9, server_properties(), mechanisms="PLAIN AMQPLAIN", locales="en_US")
        )

    def _method(self, number: int, method: Any) -> None:
        if self.state == CLOSING:
            if isinstance(method, spec.Connection.Close):
                self.send_method(0, spec.Connection.CloseOk())
                self._close_transport()
            elif isinstance(method, spec.Connection.CloseOk):
                self._close_transport()
            return
        if number == 0:
            self._connection_method(method)
            return
        if self.state != OPEN:
            raise ConnectionError_(c.CHANNEL_ERROR, "connection is not open", method.index)
        if isinstance(method, spec.Channel.Open):
            if number in self.channels or number in self.closing_channels:
                raise ConnectionError_(c.CHANNEL_ERROR, f"channel {number} is already open", method.index)
            if number > self.channel_max:
                raise ConnectionError_(c.CHANNEL_ERROR, f"channel {number} is over channel_max", method.index)
            self.channels[number] = Channel(self, number)
            self.send_method(number, spec.Channel.OpenOk())
            return
        if number in self.closing_channels:
            if isinstance(method, (spec.Channel.CloseOk, spec.Channel.Close)):
                self.closing_channels.discard(number)
                if isinstance(method, spec.Channel.Close):
                    self.send_method(number, spec.Channel.CloseOk())
            return  # everything else on a closing channel is dropped, per spec
        channel = self._open_channel(number)
        assert channel is not None
        if isinstance(method, spec.Channel.Close):
            channel.close()
            del self.channels[number]
            self.send_method(number, spec.Channel.CloseOk())
            return
        if isinstance(method, spec.Channel.CloseOk):
            return
        try:
            channel.handle_method(method)
        except ChannelError as exc:
            self._close_channel(channel, exc)

    def _close_channel(self, channel: Channel, exc: AmqpError) -> None:
        channel.close()
        self.channels.pop(channel.number, None)
        self.closing_channels.add(channel.number)
        self.send_method(channel.number, spec.Channel.Close(exc.code, exc.text, exc.class_id, exc.method_id))

    def _connection_method(self, method: Any) -> None:
        state = self.state
        if isinstance(method, spec.Connection.StartOk) and state == AWAIT_START_OK:
            self._start_ok(method)
        elif isinstance(method, spec.Connection.TuneOk) and state == AWAIT_TUNE_OK:
            self._tune_ok(method)
        elif isinstance(method, spec.Connection.Open) and state == AWAIT_OPEN:
            vhost = self.core.vhosts.get(method.virtual_host)
            if vhost is None:
                raise ConnectionError_(c.NOT_ALLOWED, f"vhost {method.virtual_host} not found", method.index)
            self.vhost_obj = vhost
            self.state = OPEN
            self.send_method(0, spec.Connection.OpenOk())
        elif isinstance(method, spec.Connection.Close):
            self._cleanup_channels()
            self.send_method(0, spec.Connection.CloseOk())
            self._close_transport()
        elif isinstance(
            method, (spec.Connection.Blocked, spec.Connection.Unblocked, spec.Connection.UpdateSecret)
        ):
            pass
        else:
            raise ConnectionError_(c.COMMAND_INVALID, f"unexpected {method.name} on channel 0", method.index)

    def _start_ok(self, m: spec.Connection.StartOk) -> None:
        user, password = self._credentials(m)
        if user is None or not self.core.authenticate(user, password or ""):
            capabilities = (m.client_properties or {}).get("capabilities")
            if not (isinstance(capabilities, dict) and capabilities.get("authentication_failure_close")):
                log.warning("AMQP login refused", extra={"peer": self.peer, "user": user})
                self._close_transport()  # what the client asked for by not advertising the capability
                return
            text = (
                f"ACCESS_REFUSED - Login was refused using authentication mechanism {m.mechanism}. "
                "For details see the broker logfile."
            )
            log.warning("AMQP login refused", extra={"peer": self.peer, "user": user})
            self.send_method(0, spec.Connection.Close(c.ACCESS_REFUSED, text, 0, 0))
            self.state = CLOSING
            self._flush()
            self._close_timer = self.loop.call_later(CLOSE_TIMEOUT, self._close_transport)
            return
        self.user = user
        self.state = AWAIT_TUNE_OK
        self.send_method(0, spec.Connection.Tune(CHANNEL_MAX, FRAME_MAX, HEARTBEAT))

    @staticmethod
    def _credentials(m: spec.Connection.StartOk) -> tuple[str | None, str | None]:
        response = m.response
        if isinstance(response, bytes):
            response = response.decode(errors="replace")
        if m.mechanism == "PLAIN":
            parts = (response or "").split("\x00")
            if len(parts) != 3:
                return None, None
            return parts[1], parts[2]
        if m.mechanism == "AMQPLAIN":
            try:
                raw = m.response if isinstance(m.response, bytes) else m.response.encode("latin-1")
                _, table = _amqplain_table(raw)
            except Exception:
                return None, None
            return str(table.get("LOGIN", "")), str(table.get("PASSWORD", ""))
        return None, None

    def _tune_ok(self, m: spec.Connection.TuneOk) -> None:
        frame_max = m.frame_max or FRAME_MAX
        if frame_max < FRAME_MIN or frame_max > FRAME_MAX:
            raise ConnectionError_(
                c.NOT_ALLOWED, f"frame_max={frame_max} < {FRAME_MIN} min size or > {FRAME_MAX}", m.index
            )
        self.frame_max = frame_max
        self.reader.frame_max = frame_max
        self.channel_max = m.channel_max or CHANNEL_MAX
        self.heartbeat = m.heartbeat
        self.state = AWAIT_OPEN
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        if self.heartbeat:
            self._heartbeat_timer = self.loop.call_later(self.heartbeat / 2, self._heartbeat_tick)

    # -- content assembly --------------------------------------------------------------------

    def _publish_frames(self, event: Any) -> None:
        if type(event) is codec.Publish:
            channel = self._open_channel(event.channel)
            if channel is None:
                return  # a closing channel: its content frames are dropped too
            if event.immediate:
                raise ConnectionError_(c.NOT_IMPLEMENTED, "immediate=true", 0x3C0028)
            channel.publishing = event
            return
        channel = self.channels.get(event.channel)
        if channel is None or channel.publishing is None or channel.properties is not None:
            if event.channel in self.closing_channels:
                return
            raise ConnectionError_(
                c.UNEXPECTED_FRAME, f"unexpected content header on channel {event.channel}"
            )
        if event.class_id != 60:
            raise ConnectionError_(c.UNEXPECTED_FRAME, f"content header for class {event.class_id}")
        if event.body_size > self.server.max_message_bytes:
            channel.publishing = None
            self._close_channel(
                channel,
                ChannelError(
                    c.PRECONDITION_FAILED,
                    f"message size {event.body_size} is larger than configured max size "
                    f"{self.server.max_message_bytes}",
                    0x3C0028,
                ),
            )
            return
        channel.properties = event.properties
        channel.body_size = event.body_size
        channel.body_parts = []
        channel.received = 0
        if event.body_size == 0:
            self._complete(channel, b"")

    def _body(self, event: codec.ContentBody) -> None:
        channel = self.channels.get(event.channel)
        if channel is None or channel.publishing is None or channel.properties is None:
            if event.channel in self.closing_channels:
                return
            raise ConnectionError_(c.UNEXPECTED_FRAME, f"unexpected content body on channel {event.channel}")
        data = event.data
        received = channel.received + len(data)
        if received > channel.body_size:
            raise ConnectionError_(
                c.FRAME_ERROR, f"content body is longer than the declared {channel.body_size} bytes"
            )
        if received == channel.body_size and not channel.body_parts:
            self._complete(channel, data)
            return
        channel.body_parts.append(data)
        channel.received = received
        if received == channel.body_size:
            self._complete(channel, b"".join(channel.body_parts))

    def _complete(self, channel: Channel, body: bytes) -> None:
        event = channel.publishing
        assert event is not None
        properties = channel.properties
        assert properties is not None
        channel.publishing = None
        channel.properties = None
        channel.body_parts = []
        channel.received = 0
        try:
            channel.publish(event, properties, body)
        except ChannelError as exc:
            self._close_channel(channel, exc)

    # -- output --------------------------------------------------------------------------------

    def send_method(self, channel: int, method: Any) -> None:
        self.out += codec.method_frame(channel, method)
        self.schedule_flush()

    def schedule_flush(self) -> None:
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_scheduled = False
        if self.pending_confirm_channels:
            channels, self.pending_confirm_channels = self.pending_confirm_channels, set()
            for channel in channels:
                channel.flush_confirms()
        if self.out and self.transport is not None and not self.transport.is_closing():
            out, self.out = self.out, bytearray()
            self.transport.write(out)
            self.last_sent = time.monotonic()

    def _write(self, data: bytes) -> None:
        self.out += data
        self._flush()

    def publish_backlog(self, delta: int) -> None:
        """Stop reading from a publisher whose messages the disk has not caught up with."""
        self.backlog += delta
        transport = self.transport
        if transport is None:
            return
        if not self.reading_paused and self.backlog > BACKLOG_HIGH:
            self.reading_paused = True
            transport.pause_reading()
        elif self.reading_paused and self.backlog < BACKLOG_LOW:
            self.reading_paused = False
            transport.resume_reading()

    # -- heartbeats and closing ----------------------------------------------------------------

    def _heartbeat_tick(self) -> None:
        if self.state == CLOSED or not self.heartbeat:
            return
        now = time.monotonic()
        if now - self.last_received > self.heartbeat * 2:
            log.warning("missed heartbeats from client, closing", extra={"peer": self.peer})
            self._close_transport()
            return
        if now - self.last_sent >= self.heartbeat / 2:
            self._write(codec.heartbeat())
        self._heartbeat_timer = self.loop.call_later(self.heartbeat / 2, self._heartbeat_tick)

    def _handshake_timeout(self) -> None:
        if self.state in (AWAIT_HEADER, AWAIT_START_OK, AWAIT_TUNE_OK):
            self._close_transport()

    def close_connection(
        self, code: int, text: str, class_id: int = 0, method_id: int = 0, *, formatted: bool = False
    ) -> None:
        """Hard error: send connection.close and wait (briefly) for close-ok."""
        if self.state in (CLOSING, CLOSED):
            return
        if not formatted:
            text = reply_text(code, text)
        log.info("closing AMQP connection", extra={"peer": self.peer, "code": code, "reason": text})
        self._cleanup_channels()
        if self.state in (AWAIT_HEADER,):
            self._close_transport()
            return
        self.state = CLOSING
        self.send_method(0, spec.Connection.Close(code, text, class_id, method_id))
        self._flush()
        self._close_timer = self.loop.call_later(CLOSE_TIMEOUT, self._close_transport)

    def force_close(self, reason: str) -> None:
        """Broker shutdown: 320 CONNECTION_FORCED."""
        self.close_connection(c.CONNECTION_FORCED, reason)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self._cleanup()

    def _close_transport(self) -> None:
        self._flush()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self._cleanup()

    def _cleanup_channels(self) -> None:
        channels, self.channels = self.channels, {}
        for channel in channels.values():
            channel.close()

    def _cleanup(self) -> None:
        if self.state == CLOSED:
            return
        self.state = CLOSED
        self._cleanup_channels()
        for timer in (self._heartbeat_timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        for vhost in self.core.vhosts.values():
            vhost.connection_closed(self)
        self.server.connections.discard(self)


def _amqplain_table(raw: bytes) -> tuple[int, dict[str, Any]]:
    """Decode an AMQP field table *without* its 4-byte length prefix (AMQPLAIN's response)."""
    consumed, table = pamqp_decode.field_table(struct.pack(">I", len(raw)) + raw)
    return consumed, table
