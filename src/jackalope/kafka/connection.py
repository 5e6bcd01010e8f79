"""One Kafka client connection: framing, dispatch, and responses in request order.

Kafka clients pipeline requests and match responses by correlation id, but the protocol
promises responses in the order the requests arrived.  Each request gets a slot in a queue,
and a slot's response is written once every earlier slot's is.  Produce and Fetch requests
are handled concurrently with each other, so acks=-1 produces share one fsync; any other
request waits for every earlier request to finish before it runs, as Kafka handles them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, Final

from jackalope.core.access import is_loopback
from jackalope.core.clients import ClientChannel
from jackalope.kafka import protocol
from jackalope.kafka.context import KafkaBroker, Listener, RequestContext
from jackalope.kafka.handlers import Api, sasl, share_fetch
from jackalope.kafka.listeners import anonymous_allowed
from jackalope.kafka.protocol import ApiKey, FrameError, RequestError
from jackalope.kafka.registry import APIS, api_versions_fallback
from jackalope.storage import FileSlice

Chunk = bytes | FileSlice

log = logging.getLogger(__name__)

_CONCURRENT = frozenset({ApiKey.PRODUCE, ApiKey.FETCH})
_SASL = frozenset({ApiKey.SASL_HANDSHAKE, ApiKey.SASL_AUTHENTICATE})
MAX_IN_FLIGHT = 200  # requests of one connection being handled before reading pauses
SLICE_BYTES = 1 << 20  # request bytes one connection dispatches per loop iteration


class _Slot:
    __slots__ = ("api_key", "correlation_id", "done", "response")

    def __init__(self, api_key: int, correlation_id: int) -> None:
        self.api_key = api_key
        self.correlation_id = correlation_id
        self.done = False
        self.response: list[Chunk] | None = None


class KafkaConnection(asyncio.Protocol):
    def __init__(
        self, broker: KafkaBroker, connections: set[KafkaConnection], listener: Listener | None = None
    ) -> None:
        self.broker = broker
        self.listener = listener if listener is not None else broker.listeners[0]
        self._connections = connections
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._slots: deque[_Slot] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._reading_paused = False
        self._writing_paused = False
        self._running: set[asyncio.Future[None]] = set()  # Produce and Fetch being handled
        self._last_serial: asyncio.Future[None] | None = None  # the latest other request
        self.client_host = ""
        self.principal: str | None = None
        self.authenticated = not self.listener.sasl
        self.anonymous_allowed = True  # set from the client's address (kafka_anonymous)
        self.sasl_state: Any = None  # owned by the SASL handlers
        self.sasl_raw = False  # set by SaslHandshake v0: the next frames are bare SASL tokens
        self.session_expires: float | None = None  # KIP-368 (set by the SASL handlers)
        self.reauth_started = 0.0
        self.reauthentications = 0
        self.closed = False
        self._alarm_waits: list[asyncio.Future[None]] = []  # produces held by a resource alarm
        self._budget = SLICE_BYTES  # of this loop iteration
        self._sliced = False  # the budget is spent: reading waits for the next iteration
        # Plain TCP: fetches hand stored batches over as file ranges for os.sendfile.
        self.zero_copy = False
        self._socket_fd = -1
        # What the management API shows of the connection (core.clients lists it).
        self.name = "?"
        self.peer_host: str | None = None
        self.peer_port: int | None = None
        self.host: str | None = None
        self.port: int | None = None
        self.tls = False
        self.connected_at = int(time.time() * 1000)
        self.client_id = ""  # of the latest request
        self.auth_mechanism = ""  # the SASL mechanism it authenticated with
        self.recv_oct = 0
        self.send_oct = 0

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport
        sock = transport.get_extra_info("socket")
        if sock is not None and transport.get_extra_info("sslcontext") is None:
            self._socket_fd = sock.fileno()
            self.zero_copy = True
        peer = transport.get_extra_info("peername")
        self.client_host = str(peer[0]) if peer else ""
        local = transport.get_extra_info("sockname")
        self.peer_host = str(peer[0]) if peer else None
        self.peer_port = int(peer[1]) if peer else None
        self.host = str(local[0]) if local else None
        self.port = int(local[1]) if local else None
        self.name = f"{self.peer_host}:{self.peer_port} -> {self.host}:{self.port}"
        self.tls = transport.get_extra_info("sslcontext") is not None
        if not self.listener.sasl:
            self.anonymous_allowed = anonymous_allowed(self.broker.anonymous, is_loopback(self.peer_host))
            if not self.anonymous_allowed:
                log.warning(
                    "anonymous kafka client refused: every request is denied to User:ANONYMOUS from "
                    "this address (authenticate on a SASL listener, or set kafka_anonymous=any)",
                    extra={
                        "client": self.client_host,
                        "listener": self.listener.name,
                        "kafka_anonymous": self.broker.anonymous,
                    },
                )
        self._connections.add(self)
        self.broker.core.clients.opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._connections.discard(self)
        self.broker.core.clients.closed(self)
        self.broker.core.alarms.unsubscribe(self._alarms_changed)
        for task in list(self._tasks):
            task.cancel()
        share_fetch.connection_closed(self.broker, self)  # KIP-932: release what its sessions hold
        for slot in self._slots:
            _release(slot.response)
        self._slots.clear()

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._update_reading()

    def data_received(self, data: bytes) -> None:
        self.recv_oct += len(data)
        self._buffer += data
        self._dispatch_buffered()

    def _dispatch_buffered(self) -> None:
        """Dispatch the complete requests read, up to this iteration's budget: a flood of
        produces from one client shares the loop with every other connection (the event loop
        may hand one socket many reads per iteration)."""
        if self._sliced or self.closed:
            return
        if self._budget == SLICE_BYTES and self._buffer:
            asyncio.get_running_loop().call_soon(self._next_slice)  # the first read of this iteration
        try:
            frames = protocol.read_frames(self._buffer, self.broker.max_request_bytes, self._budget)
        except FrameError as exc:
            self._abort(str(exc))
            return
        for frame in frames:
            if self.closed:
                return
            self._budget -= len(frame) + 4
            self._dispatch(frame)
        if self._budget <= 0:
            self._sliced = True
        self._update_reading()

    def _next_slice(self) -> None:
        self._budget = SLICE_BYTES
        if self._sliced:
            self._sliced = False
            self._dispatch_buffered()
            self._update_reading()

    # -- requests ------------------------------------------------------------------------------

    def _dispatch(self, frame: bytes) -> None:
        if self.sasl_raw:
            self._sasl_token(frame)
            return
        try:
            api_key, version, correlation_id = protocol.peek_header(frame)
        except RequestError as exc:
            self._abort(str(exc))
            return
        api = APIS.get(api_key)
        if api is None:
            self._abort(f"unknown API key {api_key}")
            return
        if (
            self.session_expires is not None
            and api_key not in _SASL
            and time.monotonic() > self.session_expires
        ):
            # as Kafka: the first request after the session's end, other than one that
            # re-authenticates, closes the connection
            self._abort("SASL session expired without re-authentication")
            return
        if not api.min_version <= version <= api.max_version:
            if api_key == ApiKey.API_VERSIONS:
                # KIP-511: answer a newer ApiVersions with a v0 response listing what we support
                self._respond_now(api_key, correlation_id, api_versions_fallback())
            else:
                self._abort(f"unsupported version {version} of API {api_key}")
            return
        try:
            request = protocol.parse_request(frame)
        except RequestError as exc:
            self._abort(str(exc))
            return
        slot = _Slot(api_key, correlation_id)
        self._slots.append(slot)
        # Produce and Fetch run concurrently with each other (acks=-1 waits for an fsync that
        # covers many requests); every other request runs alone, after all earlier ones, as
        # Kafka runs every request of a connection.
        finished = asyncio.get_running_loop().create_future()
        if api_key in _CONCURRENT:
            after = [self._last_serial] if self._last_serial is not None else []
            self._running.add(finished)
            finished.add_done_callback(self._running.discard)
        else:
            after = list(self._running)
            if self._last_serial is not None:
                after.append(self._last_serial)
            self._last_serial = finished
        if request.client_id:
            self.client_id = request.client_id
        ctx = RequestContext(
            self.broker, self, api_key, version, correlation_id, request.client_id, self.listener
        )
        task = asyncio.ensure_future(self._handle(api, ctx, request.body, slot, after, finished))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(
        self,
        api: Api,
        ctx: RequestContext,
        body: Any,
        slot: _Slot,
        after: list[asyncio.Future[None]],
        finished: asyncio.Future[None],
    ) -> None:
        try:
            for earlier in after:
                await asyncio.shield(earlier)
            if not self.authenticated and not api.before_auth:
                self._abort(f"API {api.key} before SASL authentication")
                return
            response = await api.handler(ctx, body)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("kafka handler failed", extra={"api_key": api.key, "version": ctx.api_version})
            self._abort("internal error")
            return
        finally:
            if not finished.done():
                finished.set_result(None)
        if isinstance(response, protocol.Encoded):
            slot.response = response.chunks
        elif response is not None:
            slot.response = [protocol.encode_response(api.key, slot.correlation_id, response)]
        slot.done = True
        if self.closed:
            _release(slot.response)
            return
        self._write_ready()

    def _sasl_token(self, token: bytes) -> None:
        """A bare SASL token after SaslHandshake v0, answered with a bare frame in turn."""
        reply = sasl.raw_token(self.broker, self, token)
        if reply is None:
            asyncio.get_running_loop().call_later(
                sasl.FAILED_AUTH_CLOSE_DELAY, self._abort, "SASL authentication failed"
            )
            return
        slot = _Slot(ApiKey.SASL_HANDSHAKE, -1)
        slot.response = [len(reply).to_bytes(4, "big") + reply]
        slot.done = True
        self._slots.append(slot)
        self._write_ready()

    def _respond_now(self, api_key: int, correlation_id: int, response: Any) -> None:
        slot = _Slot(api_key, correlation_id)
        slot.response = [protocol.encode_response(api_key, correlation_id, response)]
        slot.done = True
        self._slots.append(slot)
        self._write_ready()

    def _write_ready(self) -> None:
        if self._transport is None or self.closed:
            return
        transport = self._transport
        while self._slots and self._slots[0].done:
            slot = self._slots.popleft()
            for chunk in slot.response or ():
                if isinstance(chunk, FileSlice):
                    self.send_oct += chunk.size
                    self._send_file(chunk)
                else:
                    self.send_oct += len(chunk)
                    transport.write(chunk)
        self._update_reading()

    def _send_file(self, piece: FileSlice) -> None:
        """Send stored batches with ``os.sendfile`` straight from the page cache when nothing
        is queued in the transport (so the bytes cannot overtake earlier ones); the rest, if
        the socket fills up, is read and queued like any other bytes."""
        assert self._transport is not None
        try:
            sent = 0
            if self._socket_fd >= 0 and not self._transport.get_write_buffer_size():
                while sent < piece.size:
                    try:
                        n = os.sendfile(self._socket_fd, piece.fd, piece.position + sent, piece.size - sent)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        self._socket_fd = -1  # e.g. the peer went away: let the transport find out
                        break
                    if n == 0:
                        break
                    sent += n
            if sent < piece.size:
                self._transport.write(os.pread(piece.fd, piece.size - sent, piece.position + sent))
        finally:
            piece.close()

    async def wait_for_alarms(self) -> None:
        """Hold a produce while a resource alarm is in effect; the connection is not read from
        meanwhile (RabbitMQ blocks publishers the same way).  Never an error for the producer."""
        alarms = self.broker.core.alarms
        if not alarms.blocking:
            return
        if not self._alarm_waits:
            alarms.subscribe(self._alarms_changed)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._alarm_waits.append(future)
        self._update_reading()
        try:
            await future
        finally:
            if future in self._alarm_waits:
                self._alarm_waits.remove(future)
            if not self._alarm_waits:
                alarms.unsubscribe(self._alarms_changed)
            self._update_reading()

    def _alarms_changed(self) -> None:
        if self.broker.core.alarms.blocking:
            return
        waits, self._alarm_waits = self._alarm_waits, []
        self.broker.core.alarms.unsubscribe(self._alarms_changed)
        for future in waits:
            if not future.done():
                future.set_result(None)

    def _update_reading(self) -> None:
        if self._transport is None or self.closed:
            return
        pause = (
            self._writing_paused
            or self._sliced
            or len(self._slots) >= MAX_IN_FLIGHT
            or bool(self._alarm_waits)
        )
        if pause and not self._reading_paused:
            self._reading_paused = True
            self._transport.pause_reading()
        elif not pause and self._reading_paused:
            self._reading_paused = False
            self._transport.resume_reading()

    def _abort(self, reason: str) -> None:
        if self.closed:
            return
        log.info("closing kafka connection", extra={"client": self.client_host, "reason": reason})
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def close(self, reason: str = "broker stopping") -> None:
        self._abort(reason)

    # -- what core.clients shows (ClientConnection) --------------------------------------------

    protocol_name: Final = "Kafka"
    vhost_name: Final = None  # topics are broker-wide
    timeout: Final = 0
    frame_max: Final = 0
    channel_max: Final = 0
    blocked: Final = False

    @property
    def user(self) -> str:
        return self.principal or ""

    @property
    def client_properties(self) -> dict[str, Any]:
        return {"client_id": self.client_id} if self.client_id else {}

    def client_channels(self) -> Sequence[ClientChannel]:
        return ()


def _release(chunks: list[Chunk] | None) -> None:
    """Close the file ranges of a response that will not be sent."""
    for chunk in chunks or ():
        if isinstance(chunk, FileSlice):
            chunk.close()
