"""One AMQP 0-9-1 connection on asyncio: the read loop, the write loop and flow control.

Bytes from the socket go into the connection's :class:`~jackalope.amqp.protocol.AmqpProtocol`,
whose events are handed to the :class:`~jackalope.amqp.channel.Channel` they belong to (or
answered here: login, virtual host, heartbeats, closing).  Everything the protocol has to
send is written once per event-loop iteration.

Flow control is the publisher's credit, and every reason to stop reading its socket is one
of ``Hold``'s:

* ``SLICE``: a connection's work per loop iteration is bounded.  After ``SLICE_EVENTS``
  events (a message counts one, plus one per ``SLICE_BYTES`` of body) the connection stops
  reading and picks up where it left off in the next iteration, so a flood of publishes
  shares the loop with every other connection: the acks and deliveries of consumers, other
  clients' round trips.  (The event loop may hand one socket many reads per iteration.)
  What arrives meanwhile waits in the kernel's socket buffer, and TCP slows the publisher.
* ``DISK``: more than ``BACKLOG_HIGH`` of its confirmed publishes wait for the disk; reading
  resumes below ``BACKLOG_LOW``.
* ``ALARM``: a resource alarm is in effect and the connection published (RabbitMQ's
  "blocked"); it gets connection.blocked, and connection.unblocked once every alarm clears.
  Connections that only consume are never held.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from jackalope import __version__
from jackalope.amqp import constants as c
from jackalope.amqp.channel import Channel
from jackalope.amqp.errors import ChannelException, ConnectionException
from jackalope.amqp.protocol import (
    EXTERNAL,
    Ack,
    AmqpProtocol,
    ChannelClosed,
    ChannelOpened,
    ConnectionClosed,
    ConnectionFailed,
    Event,
    LoginRequested,
    MessageReceived,
    MethodReceived,
    Nack,
    Reject,
    SecretUpdateRequested,
    State,
    Tuned,
    VhostRequested,
)
from jackalope.core.access import LoginRefused
from jackalope.core.errors import NotAllowed
from jackalope.core.permissions import Grant
from jackalope.core.vhost import VirtualHost

if TYPE_CHECKING:
    from jackalope.amqp.server import AmqpServer

log = logging.getLogger(__name__)

CHANNEL_MAX: Final = 2047
FRAME_MAX: Final = 131072
HEARTBEAT: Final = 60
BACKLOG_HIGH: Final = 20_000  # publishes awaiting the disk before we stop reading the socket
BACKLOG_LOW: Final = 5_000
SLICE_EVENTS: Final = 256  # events handled per loop iteration before yielding to the rest
SLICE_BYTES: Final = 8192


def _address(host: str | None, port: int | None) -> str:
    return f"{host}:{port}" if host is not None else "?"


class Hold(enum.IntFlag):
    """Why a connection is not read from (see the module docstring); flags of one int, since
    the publish path tests them for every message."""

    SLICE = 1
    DISK = 2
    ALARM = 4


HANDSHAKE_TIMEOUT: Final = 10.0
CLOSE_TIMEOUT: Final = 3.0

_SLICE: Final = int(Hold.SLICE)
_DISK: Final = int(Hold.DISK)
_ALARM: Final = int(Hold.ALARM)


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
            "consumer_priorities": True,
            "authentication_failure_close": True,
            "per_consumer_qos": True,
            "direct_reply_to": True,
        },
    }


class AmqpConnection(asyncio.Protocol):
    """The asyncio side of one connection; the :class:`~jackalope.amqp.channel.ChannelOutput`
    its channels write to."""

    def __init__(self, server: AmqpServer) -> None:
        self.server = server
        self.core = server.core
        self.loop = asyncio.get_running_loop()
        protocol = self.protocol = AmqpProtocol(
            server_properties(),
            frame_max=FRAME_MAX,
            channel_max=CHANNEL_MAX,
            heartbeat=HEARTBEAT,
            max_message_bytes=server.max_message_bytes,
            on_output=self._schedule_flush,
        )
        # The channels' output, straight to the protocol's writers (no call in between).
        self.send_method = protocol.send_method
        self.deliver = protocol.deliver
        self.get_ok = protocol.get_ok
        self.basic_return = protocol.basic_return
        self.confirm = protocol.confirm
        self.writable = True
        self.transport: asyncio.Transport | None = None
        self.channels: dict[int, Channel] = {}
        self.user = ""
        self.vhost: VirtualHost | None = None
        self.grant: Grant | None = None  # the user's rights in the vhost, once it is open
        self.peer = "?"
        self.peer_host: str | None = None
        # What the management API shows of the connection (core.clients lists it once open).
        self.peer_port: int | None = None
        self.host: str | None = None
        self.port: int | None = None
        self.name = "?"
        self.tls = False
        self.connected_at = int(time.time() * 1000)
        self.recv_oct = 0
        self.send_oct = 0
        self.backlog = 0
        self._holds = 0  # Hold flags
        self._budget = SLICE_EVENTS  # of this loop iteration
        self._blocked_sent = False
        self._alarms = server.core.alarms
        self._flush_scheduled = False
        self._confirm_channels: set[Channel] = set()
        self._heartbeat_timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._handlers: dict[type[Event], Callable[[Any], None]] = {
            Ack: self._on_ack,
            Nack: self._on_nack,
            Reject: self._on_reject,
            MethodReceived: self._on_method,
            ChannelOpened: self._on_channel_opened,
            ChannelClosed: self._on_channel_closed,
            LoginRequested: self._login,
            Tuned: self._tuned,
            VhostRequested: self._open_vhost,
            SecretUpdateRequested: self._update_secret,
            ConnectionFailed: self._on_failed,
            ConnectionClosed: self._on_closed,
        }

    # -- transport callbacks -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        # Over TLS: the client's certificate if it sent one and the listener verified it (the
        # dict is empty for an unverified one), for EXTERNAL.
        self.protocol.set_peer_certificate(transport.get_extra_info("peercert"))
        self.peer_host = str(peer[0]) if peer else None
        self.peer_port = int(peer[1]) if peer else None
        local = transport.get_extra_info("sockname")
        self.host = str(local[0]) if local else None
        self.port = int(local[1]) if local else None
        self.name = f"{self.peer} -> {_address(self.host, self.port)}"
        self.tls = transport.get_extra_info("ssl_object") is not None
        self.server.connections.add(self)
        self._close_timer = self.loop.call_later(HANDSHAKE_TIMEOUT, self._handshake_timeout)
        self._alarms.subscribe(self._alarms_changed)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cleanup()

    def pause_writing(self) -> None:
        self.writable = False

    def resume_writing(self) -> None:
        self.writable = True
        for channel in list(self.channels.values()):
            channel.dispatch_consumers()

    def data_received(self, data: bytes) -> None:
        self.recv_oct += len(data)
        self.protocol.receive_data(data)
        self._process()

    # -- events --------------------------------------------------------------------------------

    def _process(self) -> None:
        """Handle the protocol's events until it needs more bytes, the slice is used up, or
        something holds the connection."""
        next_event = self.protocol.next_event
        handlers = self._handlers
        while not self._closed and not self._holds:
            if self._budget <= 0:
                self._hold(_SLICE)  # until _next_slice
                return
            if self._budget == SLICE_EVENTS:
                self.loop.call_soon(self._next_slice)  # the first event of this iteration
            self._budget -= 1
            try:
                event = next_event()
                if event is None:
                    return
                if type(event) is MessageReceived:  # the hot path, without a call in between
                    self._budget -= len(event.body) // SLICE_BYTES
                    channel = self.channels[event.channel]
                    try:
                        channel.publish(event.publish, event.properties, event.body)
                    except ChannelException as exc:
                        self._close_channel(channel, exc)
                    if self._alarms.blocking:
                        self._block()
                else:
                    handlers[type(event)](event)
            except ConnectionException as exc:
                self._fail(exc)
            except Exception:
                log.exception("internal error on AMQP connection %s", self.peer)
                self._fail(ConnectionException(c.INTERNAL_ERROR, "internal error"))

    # -- flow control ----------------------------------------------------------------------------

    def _next_slice(self) -> None:
        self._budget = SLICE_EVENTS
        self._release(_SLICE)

    def _hold(self, reason: int) -> None:
        if not self._holds and self.transport is not None:
            self.transport.pause_reading()
        self._holds |= reason

    def _release(self, reason: int) -> None:
        if not self._holds & reason:
            return
        self._holds &= ~reason
        if not self._holds and not self._closed:
            if self.transport is not None:
                self.transport.resume_reading()
            self._process()  # what was read before the hold

    def _block(self) -> None:
        """A publish while an alarm is in effect: stop reading (RabbitMQ's "blocked")."""
        if not self._holds & _ALARM:
            self._hold(_ALARM)
            if not self._blocked_sent:
                self._blocked_sent = self.protocol.block(self._alarms.reason())

    def _alarms_changed(self) -> None:
        if self._alarms.blocking or not self._holds & _ALARM:
            return
        if self._blocked_sent:
            self._blocked_sent = False
            self.protocol.unblock()
        self._release(_ALARM)

    def _on_ack(self, event: Ack) -> None:
        channel = self.channels[event.channel]
        try:
            channel.ack(event.delivery_tag, event.multiple)
        except ChannelException as exc:
            self._close_channel(channel, exc)

    def _on_nack(self, event: Nack) -> None:
        channel = self.channels[event.channel]
        try:
            channel.nack(event.delivery_tag, event.multiple, event.requeue)
        except ChannelException as exc:
            self._close_channel(channel, exc)

    def _on_reject(self, event: Reject) -> None:
        channel = self.channels[event.channel]
        try:
            channel.nack(event.delivery_tag, False, event.requeue, c.BASIC_REJECT)
        except ChannelException as exc:
            self._close_channel(channel, exc)

    def _on_method(self, event: MethodReceived) -> None:
        channel = self.channels[event.channel]
        try:
            channel.handle_method(event.method)
        except ChannelException as exc:
            self._close_channel(channel, exc)

    def _on_channel_opened(self, event: ChannelOpened) -> None:
        assert self.vhost is not None and self.grant is not None
        self.channels[event.channel] = Channel(self, event.channel, self.vhost, self.user, self.grant)
        self.core.clients.channel_opened()

    def _on_channel_closed(self, event: ChannelClosed) -> None:
        channel = self.channels.pop(event.channel, None)
        if channel is not None:
            self._channel_gone(channel)

    def _on_failed(self, event: ConnectionFailed) -> None:
        log.info("closing AMQP connection", extra={"peer": self.peer, "reason": event.error.reply_text})
        self._closing()

    def _on_closed(self, event: ConnectionClosed) -> None:
        self._close_transport()

    def _login(self, event: LoginRequested) -> None:
        """As RabbitMQ: a refused login (a wrong password, an unknown EXTERNAL user, or a
        loopback-only user such as guest from elsewhere) gets the generic refusal; the log
        says why."""
        try:
            self._check_login(event)
        except LoginRefused as exc:
            log.warning(
                "AMQP login refused",
                extra={
                    "peer": self.peer,
                    "user": event.user,
                    "reason": f"{event.mechanism} login refused: {exc}",
                },
            )
            self.protocol.refuse_login()
            self._closing()
            return
        assert event.user is not None  # _check_login refuses a login without one
        self.user = event.user
        self.protocol.accept_login()

    def _check_login(self, event: LoginRequested) -> None:
        """Raise LoginRefused, saying why, unless the login is good."""
        if event.user is None:
            if event.mechanism == EXTERNAL:
                raise LoginRefused("no verified client certificate with a CN")
            raise LoginRefused(f"unreadable {event.mechanism} response")
        if event.mechanism == EXTERNAL:  # the certificate vouches for the user
            self.core.check_login_source(event.user, self.peer_host)
        else:
            self.core.login(event.user, event.password or "", self.peer_host)

    def _update_secret(self, event: SecretUpdateRequested) -> None:
        """The broker's users have passwords, not expiring tokens: a new secret is taken when
        it is the user's password still (a client refreshing what it has), refused otherwise."""
        secret = event.secret.decode(errors="replace")
        if self.user is None or not self.core.authenticate(self.user, secret):
            log.warning("AMQP secret update refused", extra={"peer": self.peer, "user": self.user})
            raise ConnectionException(
                c.NOT_ALLOWED, f"Secret update was refused for user '{self.user}'", c.CONNECTION_UPDATE_SECRET
            )
        self.protocol.accept_secret()

    def _tuned(self, event: Tuned) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        if event.heartbeat:
            self._heartbeat_timer = self.loop.call_later(event.heartbeat / 2, self._heartbeat_tick)

    def _open_vhost(self, event: VhostRequested) -> None:
        """connection.open: RabbitMQ's rules (the vhost exists, is under its connection limit,
        and the user has permissions in it), or 530 NOT_ALLOWED in RabbitMQ's words."""
        try:
            self.vhost = self.core.open_connection(self.user, event.vhost)
        except NotAllowed as exc:
            raise ConnectionException(c.NOT_ALLOWED, str(exc), c.CONNECTION_OPEN) from None
        self.grant = self.core.grant(self.user, event.vhost)
        self.protocol.accept_vhost()
        self.core.clients.opened(self)

    def close_channel(self, channel: Channel, error: ChannelException) -> None:
        """A channel's own failure outside a method's handling (a failed commit)."""
        self._close_channel(channel, error)

    def _close_channel(self, channel: Channel, exc: ChannelException) -> None:
        if self.channels.pop(channel.number, None) is not None:
            self._channel_gone(channel)
            self.protocol.close_channel(channel.number, exc)

    def _fail(self, exc: ConnectionException) -> None:
        """A connection exception: connection.close, and wait (briefly) for close-ok."""
        log.info("closing AMQP connection", extra={"peer": self.peer, "reason": exc.reply_text})
        self.protocol.fail(exc)
        self._closing()

    def _closing(self) -> None:
        """The protocol closes the connection: the channels go now; the transport goes at the
        client's close-ok or after CLOSE_TIMEOUT."""
        self._drop_channels()
        if self.protocol.state is State.CLOSED:
            self._close_transport()
        elif self._close_timer is None:
            self._close_timer = self.loop.call_later(CLOSE_TIMEOUT, self._close_transport)

    # -- the channels' output ----------------------------------------------------------------

    def confirms_due(self, channel: Channel) -> None:
        """``channel`` has publisher confirms to send with the next write."""
        self._confirm_channels.add(channel)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        if self._confirm_channels:
            channels, self._confirm_channels = self._confirm_channels, set()
            for channel in channels:
                channel.flush_confirms()
        self._flush_scheduled = False
        data = self.protocol.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.send_oct += len(data)
            self.transport.write(data)

    @property
    def cancel_notify(self) -> bool:
        return bool(self.protocol.capabilities.get("consumer_cancel_notify"))

    def publish_backlog(self, delta: int) -> None:
        """Stop reading from a publisher whose messages the disk has not caught up with."""
        self.backlog += delta
        if self.backlog > BACKLOG_HIGH:
            if not self._holds & _DISK:
                self._hold(_DISK)
        elif self._holds & _DISK and self.backlog < BACKLOG_LOW:
            self.loop.call_soon(self._release, _DISK)  # not from inside a confirm callback

    # -- heartbeats and closing ----------------------------------------------------------------

    def _heartbeat_tick(self) -> None:
        if self._closed:
            return
        if not self.protocol.tick(watch_peer=not self._holds & _ALARM):
            log.warning("missed heartbeats from client, closing", extra={"peer": self.peer})
            self._close_transport()
            return
        self._heartbeat_timer = self.loop.call_later(self.protocol.heartbeat / 2, self._heartbeat_tick)

    def _handshake_timeout(self) -> None:
        self._close_timer = None
        if self.protocol.state in (State.AWAIT_HEADER, State.AWAIT_START_OK, State.AWAIT_TUNE_OK):
            self._close_transport()

    # -- what core.clients shows (ClientConnection) --------------------------------------------

    protocol_name: Final = "AMQP 0-9-1"

    @property
    def vhost_name(self) -> str | None:
        return self.vhost.name if self.vhost is not None else None

    @property
    def client_properties(self) -> dict[str, Any]:
        return self.protocol.client_properties

    @property
    def auth_mechanism(self) -> str:
        return self.protocol.mechanism

    @property
    def timeout(self) -> int:
        return self.protocol.heartbeat

    @property
    def frame_max(self) -> int:
        return self.protocol.frame_max

    @property
    def channel_max(self) -> int:
        return self.protocol.channel_max

    @property
    def blocked(self) -> bool:
        return self._blocked_sent

    def client_channels(self) -> list[Channel]:
        return list(self.channels.values())

    def close(self, reason: str) -> None:
        """Closed by an operator (the management API): 320 CONNECTION_FORCED, as RabbitMQ."""
        self.force_close(reason)

    def force_close(self, reason: str) -> None:
        """Broker shutdown: 320 CONNECTION_FORCED."""
        if not self._closed:
            self._fail(ConnectionException(c.CONNECTION_FORCED, reason))
            self._flush()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self._cleanup()

    def _close_transport(self) -> None:
        self._flush()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self._cleanup()

    def _drop_channels(self) -> None:
        channels, self.channels = self.channels, {}
        for channel in channels.values():
            self._channel_gone(channel)

    def _channel_gone(self, channel: Channel) -> None:
        channel.close()
        self.core.clients.channel_closed(channel.stats)

    def _cleanup(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._drop_channels()
        for timer in (self._heartbeat_timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        for vhost in self.core.vhosts.values():
            vhost.connection_closed(self)
        if self.vhost is not None:
            self.core.connection_closed(self.vhost)
            self.core.clients.closed(self)
        self._alarms.unsubscribe(self._alarms_changed)
        self.server.connections.discard(self)
