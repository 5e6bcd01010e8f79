"""A minimal AMQP 0-9-1 client built for load generation, not for applications.

The handshake and the few synchronous methods (channel.open, queue.declare, basic.qos, ...) are
encoded and decoded by pamqp.  The hot paths are not:

* publishing writes precomputed bytes: basic.publish method frame + content header frame +
  body frame(s), built once per run by :func:`message_frames` and repeated to fill a write;
* the receiving side walks frames by their length (7-byte header, payload, 0xCE end octet).
  basic.deliver frames are counted (consumer tag, delivery tag and redelivered flag are read
  at fixed offsets), content body frames only add their length, basic.ack / basic.nack
  confirms are read as two integers.  Only the other, rare, method frames go through pamqp.

A consumer acknowledges with ``basic.ack(multiple=True)`` every ``ack_every`` deliveries, using
the last delivery tag it saw.  With a :class:`DeliveryTimeline` attached it also records, once per
read from the socket, the arrival time and the running count of deliveries.

The client announces the ``connection.blocked`` capability; ``connection.blocked`` and
``connection.unblocked`` from the broker are kept in :attr:`Connection.blocked_events` with the time
they arrived.
"""

from __future__ import annotations

import asyncio
import struct
import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, TypeVar, cast
from urllib.parse import unquote, urlsplit

from pamqp import base, commands, header
from pamqp import frame as pframe

PROTOCOL_HEADER: Final = b"AMQP\x00\x00\x09\x01"
FRAME_END: Final = 0xCE
DEFAULT_FRAME_MAX: Final = 131072
RPC_TIMEOUT: Final = 30.0

_HEADER: Final = struct.Struct(">BHI")
_CLASS_METHOD: Final = struct.Struct(">I")
_TAG_FLAGS: Final = struct.Struct(">QB")
_ACK_FRAME: Final = struct.Struct(">BHIHHQBB")
_DELIVER: Final = (60 << 16) | 60
_ACK: Final = (60 << 16) | 80
_NACK: Final = (60 << 16) | 120
_HEARTBEAT_FRAME: Final = bytes((8, 0, 0, 0, 0, 0, 0, FRAME_END))

M = TypeVar("M", bound=base.Frame)


class AmqpError(Exception):
    """The broker closed a channel or the connection, or broke the protocol."""


@dataclass(frozen=True)
class AmqpUrl:
    host: str
    port: int
    user: str
    password: str
    vhost: str

    @classmethod
    def parse(cls, url: str) -> AmqpUrl:
        parts = urlsplit(url)
        if parts.scheme != "amqp":
            raise ValueError(f"only amqp:// URLs are supported, not {url!r}")
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5672,
            user=unquote(parts.username or "guest"),
            password=unquote(parts.password or "guest"),
            vhost=unquote(path) if path else "/",
        )

    def display(self) -> str:
        """The URL without its password."""
        vhost = "" if self.vhost == "/" else self.vhost
        return f"amqp://{self.user}@{self.host}:{self.port}/{vhost}"


# -- frame builders --------------------------------------------------------------------------


def _frame(frame_type: int, channel: int, payload: bytes) -> bytes:
    return _HEADER.pack(frame_type, channel, len(payload)) + payload + bytes((FRAME_END,))


def message_frames(
    channel: int, exchange: str, routing_key: str, body: bytes, delivery_mode: int, frame_max: int
) -> bytes:
    """One message as it goes on the wire: basic.publish + content header + body frame(s)."""
    method = pframe.marshal(commands.Basic.Publish(exchange=exchange, routing_key=routing_key), channel)
    props = commands.Basic.Properties(delivery_mode=delivery_mode)
    content_header = pframe.marshal(header.ContentHeader(0, len(body), props), channel)
    limit = frame_max - 8
    bodies = b"".join(_frame(3, channel, body[i : i + limit]) for i in range(0, len(body), limit))
    return method + content_header + bodies


def ack_frame(channel: int, delivery_tag: int, multiple: bool) -> bytes:
    return _ACK_FRAME.pack(1, channel, 13, 60, 80, delivery_tag, int(multiple), FRAME_END)


# -- delivery timeline -----------------------------------------------------------------------


class DeliveryTimeline:
    """When deliveries arrived: after each read from the socket that brought at least one
    basic.deliver, the read's time (``time.monotonic()``) and the number delivered so far.

    One entry per read, not per message, so it stays small (a read carries up to hundreds of
    deliveries) and costs two appends on the receive path.
    """

    def __init__(self) -> None:
        self.times: array[float] = array("d")
        self.counts: array[int] = array("q")

    def add(self, when: float, delivered: int) -> None:
        self.times.append(when)
        self.counts.append(delivered)

    def delivered_by(self, when: float) -> int:
        """Deliveries that had arrived at or before ``when``."""
        i = bisect_right(self.times, when)
        return self.counts[i - 1] if i else 0

    def time_of(self, count: int) -> float | None:
        """When the ``count``-th delivery arrived (None if it never did)."""
        i = bisect_left(self.counts, count)
        return self.times[i] if i < len(self.counts) else None


# -- publisher confirms ----------------------------------------------------------------------


class ConfirmTracker:
    """Counts publisher confirms (publish sequence numbers start at 1 on a confirm channel).

    With ``record`` set it keeps the send time of every write (one write carries one or more
    messages), and turns each confirm into (latency, number of messages) samples.  ``marks`` are
    acked counts whose first time is kept in :attr:`mark_times` (when the 100,000th message was
    confirmed, say).
    """

    def __init__(self, record: bool, marks: Sequence[int] = ()) -> None:
        self.record = record
        self.published = 0
        self.upto = 0  # every sequence number <= upto is confirmed (acked or nacked)
        self.acked = 0
        self.nacked = 0
        self.duplicates = 0
        self.beyond = 0  # confirms of sequence numbers never published
        self.t_last = 0.0
        self.samples: list[tuple[float, int]] = []
        self._ooo: set[int] = set()  # confirmed individually above upto
        self._starts: list[int] = []  # first sequence number of each write
        self._times: list[float] = []  # and its send time
        self._marks = sorted(set(marks))
        self.mark_times: dict[int, float] = {}

    @property
    def outstanding(self) -> int:
        return self.published - self.acked - self.nacked

    def sent(self, count: int, when: float) -> None:
        if self.record:
            self._starts.append(self.published + 1)
            self._times.append(when)
        self.published += count

    def on_confirm(self, tag: int, multiple: bool, nack: bool, now: float) -> None:
        self.t_last = now
        if multiple and tag == 0:
            tag = self.published
        if tag > self.published:
            self.beyond += 1
            return
        if multiple:
            if tag <= self.upto:
                self.duplicates += 1
                return
            low = self.upto + 1
            if self._ooo:
                for single in sorted(t for t in self._ooo if t <= tag):
                    self._range(low, single - 1, now, nack)
                    low = single + 1
                    self._ooo.discard(single)
            self._range(low, tag, now, nack)
            self.upto = tag
        elif tag <= self.upto or tag in self._ooo:
            self.duplicates += 1
        else:
            self._range(tag, tag, now, nack)
            if tag == self.upto + 1:
                self.upto = tag
                while self.upto + 1 in self._ooo:
                    self._ooo.discard(self.upto + 1)
                    self.upto += 1
            else:
                self._ooo.add(tag)

    def _range(self, low: int, high: int, now: float, nack: bool) -> None:
        if high < low:
            return
        if nack:
            self.nacked += high - low + 1
        else:
            self.acked += high - low + 1
            marks = self._marks
            while marks and self.acked >= marks[0]:
                self.mark_times[marks.pop(0)] = now
        if not self.record:
            return
        starts, times = self._starts, self._times
        i = bisect_right(starts, low) - 1
        seq = low
        while seq <= high:
            end = starts[i + 1] - 1 if i + 1 < len(starts) else self.published
            last = min(end, high)
            self.samples.append((now - times[i], last - seq + 1))
            seq = last + 1
            i += 1


def weighted_percentiles(samples: Sequence[tuple[float, int]], quantiles: Sequence[float]) -> list[float]:
    """Nearest-rank percentiles of (value, count) samples."""
    ordered = sorted(samples)
    total = sum(count for _, count in ordered)
    out: list[float] = []
    for q in quantiles:
        rank = max(1, -(-int(q * total * 1_000_000) // 1_000_000))  # ceil(q * total), at least 1
        seen = 0
        value = float("nan")
        for value, count in ordered:  # noqa: B007 -- value is read after the loop
            seen += count
            if seen >= rank:
                break
        out.append(value)
    return out


# -- the connection --------------------------------------------------------------------------


class Connection(asyncio.Protocol):
    """One AMQP connection.  Create with :meth:`open`."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.frame_max = DEFAULT_FRAME_MAX
        self.server_properties: dict[str, object] = {}
        self.problems: list[str] = []  # anything unexpected the broker sent
        self.blocked = False
        self.blocked_events: list[tuple[float, bool, str]] = []  # (time, blocked?, reason)
        self._buf = bytearray()
        self._rpc: dict[int, asyncio.Future[base.Frame]] = {}
        self._closing = False
        self._lost: asyncio.Future[None] = self.loop.create_future()
        self._paused = False
        self._resume: asyncio.Future[None] | None = None
        # publisher side
        self.confirms: ConfirmTracker | None = None
        self._confirm_waiter: asyncio.Future[None] | None = None
        # consumer side
        self.delivered = 0
        self.body_bytes = 0
        self.redelivered = 0
        self.tag_gaps = 0  # delivery tags that were not the previous one + 1
        self.last_tag = 0
        self.acked_tag = 0
        self.ack_every = 0  # 0: the consumer does not ack by itself
        self.by_consumer: dict[bytes, int] | None = None
        self.t_first_delivery = 0.0
        self.t_last_delivery = 0.0
        self.expected = 0  # 0: not known yet
        self.timeline: DeliveryTimeline | None = None
        self._all_delivered: asyncio.Future[None] | None = None

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closing:
            self.problems.append(f"connection lost: {exc or 'closed by the broker'}")
        error = AmqpError(f"connection lost ({exc})" if exc else "connection closed")
        for fut in self._rpc.values():
            if not fut.done():
                fut.set_exception(error)
        self._rpc.clear()
        for waiter in (self._resume, self._confirm_waiter, self._all_delivered):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        if not self._lost.done():
            self._lost.set_result(None)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._resume is not None and not self._resume.done():
            self._resume.set_result(None)

    def data_received(self, data: bytes) -> None:
        buf: bytes | bytearray
        if self._buf:
            self._buf += data
            buf = self._buf
        else:
            buf = data
        now = time.monotonic()
        n = len(buf)
        pos = 0
        unpack_header = _HEADER.unpack_from
        delivered = self.delivered
        body = self.body_bytes
        last_tag = self.last_tag
        by_consumer = self.by_consumer
        while pos + 7 <= n:
            frame_type, _channel, size = unpack_header(buf, pos)
            end = pos + size + 8
            if end > n:
                break
            if buf[end - 1] != FRAME_END:
                self._fail(f"bad frame end octet at a frame of type {frame_type}, size {size}")
                return
            if frame_type == 3:
                body += size
            elif frame_type == 1:
                class_method = _CLASS_METHOD.unpack_from(buf, pos + 7)[0]
                if class_method == _DELIVER:
                    delivered += 1
                    ctag_len = buf[pos + 11]
                    tag, flags = _TAG_FLAGS.unpack_from(buf, pos + 12 + ctag_len)
                    if tag != last_tag + 1:
                        self.tag_gaps += 1
                    last_tag = tag
                    if flags & 1:
                        self.redelivered += 1
                    if by_consumer is not None:
                        ctag = bytes(buf[pos + 12 : pos + 12 + ctag_len])
                        by_consumer[ctag] = by_consumer.get(ctag, 0) + 1
                elif class_method in (_ACK, _NACK):
                    tag, flags = _TAG_FLAGS.unpack_from(buf, pos + 11)
                    if self.confirms is None:
                        self.problems.append("publisher confirm on a channel not in confirm mode")
                    else:
                        self.confirms.on_confirm(tag, bool(flags & 1), class_method == _NACK, now)
                        waiter = self._confirm_waiter
                        if waiter is not None and not waiter.done():
                            waiter.set_result(None)
                else:
                    self._method(bytes(buf[pos:end]))
            elif frame_type == 8:
                if self.transport is not None:
                    self.transport.write(_HEARTBEAT_FRAME)
            elif frame_type != 2:
                self._fail(f"unknown frame type {frame_type}")
                return
            pos = end
        if pos == n:
            self._buf = bytearray()
        elif buf is not self._buf:
            self._buf = bytearray(buf[pos:])
        elif pos:
            del self._buf[:pos]
        self.body_bytes = body
        if delivered != self.delivered:
            if not self.delivered:
                self.t_first_delivery = now
            self.delivered = delivered
            self.last_tag = last_tag
            self.t_last_delivery = now
            if self.timeline is not None:
                self.timeline.add(now, delivered)
            if self.ack_every and last_tag - self.acked_tag >= self.ack_every:
                self.ack_all()
            if self.expected and delivered >= self.expected:
                done = self._all_delivered
                if done is not None and not done.done():
                    done.set_result(None)

    # -- incoming methods that are not on the hot path --------------------------------------

    def _method(self, raw: bytes) -> None:
        try:
            _, channel, frame = pframe.unmarshal(raw)
        except Exception as exc:  # pamqp raises several exception types
            self._fail(f"undecodable method frame: {exc}")
            return
        name = getattr(frame, "name", type(frame).__name__)
        if isinstance(frame, commands.Connection.Close):
            self._send(0, commands.Connection.CloseOk())
            self._fail(f"broker closed the connection: {frame.reply_code} {frame.reply_text}")
            return
        if isinstance(frame, commands.Channel.Close):
            self._send(channel, commands.Channel.CloseOk())
            error = AmqpError(f"broker closed channel {channel}: {frame.reply_code} {frame.reply_text}")
            fut = self._rpc.pop(channel, None)
            if fut is not None and not fut.done():
                fut.set_exception(error)
            else:
                self.problems.append(str(error))
            return
        if isinstance(frame, commands.Connection.Blocked):
            self.blocked = True
            self.blocked_events.append((time.monotonic(), True, frame.reason or ""))
            return
        if isinstance(frame, commands.Connection.Unblocked):
            self.blocked = False
            self.blocked_events.append((time.monotonic(), False, ""))
            return
        fut = self._rpc.pop(channel, None)
        if fut is not None and not fut.done() and isinstance(frame, base.Frame):
            fut.set_result(frame)
        elif isinstance(frame, commands.Basic.Cancel):
            self.problems.append(f"broker cancelled consumer {frame.consumer_tag}")
        else:
            self.problems.append(f"unexpected {name} on channel {channel}")

    def _fail(self, message: str) -> None:
        self.problems.append(message)
        error = AmqpError(message)
        for fut in self._rpc.values():
            if not fut.done():
                fut.set_exception(error)
        self._rpc.clear()
        if self.transport is not None:
            self.transport.close()

    # -- outgoing ---------------------------------------------------------------------------

    def _send(self, channel: int, method: base.Frame) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(pframe.marshal(method, channel))

    def write(self, data: bytes | memoryview) -> None:
        assert self.transport is not None
        self.transport.write(data)

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def lost(self) -> bool:
        return self._lost.done()

    async def writable(self) -> None:
        """Wait until the transport's write buffer has drained below its low-water mark (or
        :meth:`wake`)."""
        if self._paused and not self._lost.done():
            self._resume = self.loop.create_future()
            try:
                await self._resume
            finally:
                self._resume = None

    async def next_confirm(self) -> None:
        """Wait for the next publisher confirm, or for :meth:`wake`.

        No timer per wait (this is on the confirm-1 round trip): the publisher schedules
        :meth:`wake` at its deadlines instead.
        """
        if self._lost.done():
            return
        fut = self.loop.create_future()
        self._confirm_waiter = fut
        try:
            await fut
        finally:
            self._confirm_waiter = None

    def wake(self) -> None:
        """Release a pending :meth:`next_confirm` or :meth:`writable`."""
        for waiter in (self._confirm_waiter, self._resume):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def all_delivered(self, max_wait: float) -> bool:
        """Wait until ``expected`` deliveries have arrived; False after ``max_wait`` seconds."""
        if self.expected and self.delivered >= self.expected:
            return True
        if self._lost.done():
            return False
        fut = self.loop.create_future()
        self._all_delivered = fut
        timer = self.loop.call_later(max(max_wait, 0.0), _wake, fut)
        try:
            await fut
        finally:
            timer.cancel()
            self._all_delivered = None
        return bool(self.expected) and self.delivered >= self.expected

    def set_expected(self, count: int) -> None:
        """Stop waiting once ``count`` deliveries have arrived (wakes :meth:`all_delivered`)."""
        self.expected = count
        done = self._all_delivered
        if count and self.delivered >= count and done is not None and not done.done():
            done.set_result(None)

    def ack_all(self) -> None:
        """basic.ack(multiple=True) up to the last delivery tag seen on channel 1."""
        if self.last_tag > self.acked_tag and self.transport is not None:
            self.transport.write(ack_frame(1, self.last_tag, True))
            self.acked_tag = self.last_tag

    async def rpc(
        self, channel: int, method: base.Frame | None, reply: type[M], max_wait: float = RPC_TIMEOUT
    ) -> M:
        """Send ``method`` (if any) and return the next method frame on ``channel``."""
        if channel in self._rpc:
            raise RuntimeError(f"an RPC is already pending on channel {channel}")
        if self._lost.done():
            raise AmqpError("connection is closed")
        fut: asyncio.Future[base.Frame] = self.loop.create_future()
        self._rpc[channel] = fut
        if method is not None:
            self._send(channel, method)
        try:
            frame = await asyncio.wait_for(fut, max_wait)
        finally:
            if self._rpc.get(channel) is fut:
                del self._rpc[channel]
        if not isinstance(frame, reply):
            raise AmqpError(f"expected {reply.__name__}, got {getattr(frame, 'name', frame)!r}")
        return frame

    async def open_channel(self, channel: int = 1) -> None:
        await self.rpc(channel, commands.Channel.Open(), commands.Channel.OpenOk)

    async def close(self, max_wait: float = 5.0) -> None:
        """connection.close, then wait up to ``max_wait`` s for close-ok.

        The broker answers only after reading everything sent before, so a publisher that
        passes enough time here loses nothing still sitting in socket buffers; without
        close-ok the connection is dropped and that is recorded as a problem.
        """
        if self._lost.done() or self.transport is None:
            return
        self._closing = True
        close = commands.Connection.Close(200, "bye", 0, 0)
        try:
            await self.rpc(0, close, commands.Connection.CloseOk, max_wait)
        except (AmqpError, TimeoutError) as exc:
            self.problems.append(f"no connection.close-ok within {max_wait:g} s ({str(exc) or 'timeout'})")
        self.transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(self._lost), 5)
        except TimeoutError:
            self.transport.abort()

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    async def open(cls, url: AmqpUrl, product: str = "jackalope amqp_bench") -> Connection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(cls, url.host, url.port)
        try:
            await conn._handshake(url, product)
        except BaseException:
            if conn.transport is not None:
                conn.transport.abort()
            raise
        return conn

    async def _handshake(self, url: AmqpUrl, product: str) -> None:
        fut: asyncio.Future[base.Frame] = self.loop.create_future()
        self._rpc[0] = fut
        self.write(PROTOCOL_HEADER)
        start = await asyncio.wait_for(fut, RPC_TIMEOUT)
        if not isinstance(start, commands.Connection.Start):
            raise AmqpError(f"expected Connection.Start, got {start!r}")
        self.server_properties = dict(start.server_properties or {})
        mechanisms = (start.mechanisms or "").split()
        if "PLAIN" not in mechanisms:
            raise AmqpError(f"the broker does not offer PLAIN authentication ({mechanisms})")
        start_ok = commands.Connection.StartOk(
            client_properties={
                "product": product,
                "capabilities": {
                    "publisher_confirms": True,
                    "basic.nack": True,
                    "consumer_cancel_notify": True,
                    "connection.blocked": True,
                },
            },
            mechanism="PLAIN",
            response=f"\0{url.user}\0{url.password}",
        )
        tune = await self.rpc(0, start_ok, commands.Connection.Tune)
        self.frame_max = tune.frame_max or DEFAULT_FRAME_MAX
        self._send(
            0,
            commands.Connection.TuneOk(
                channel_max=tune.channel_max or 2047, frame_max=self.frame_max, heartbeat=0
            ),
        )
        await self.rpc(0, commands.Connection.Open(virtual_host=url.vhost), commands.Connection.OpenOk)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
