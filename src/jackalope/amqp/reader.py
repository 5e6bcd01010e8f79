"""The frame reader: the byte stream from one client in, frame events out (sans-IO).

No sockets, no asyncio: feed whatever was read into a :class:`FrameReader` and call
``next_event()`` until it returns None.  The connection-level state machine above it
(:mod:`jackalope.amqp.protocol`) turns these frame events into messages and methods.

Wire format (spec section 4.2.3; all integers big-endian)::

    protocol header   "AMQP" 0 0 9 1                      8 octets, client -> server, once
    frame             type(1) channel(2) size(4) payload(size) 0xCE
      method  (1)     class-id(2) method-id(2) arguments
      header  (2)     class-id(2) weight(2)=0 body-size(8) property-flags(2+) property-list
      body    (3)     raw body bytes (a message body is split over as many frames as needed)
      heartbeat (8)   empty payload, channel 0

basic.publish, basic.ack, basic.nack and basic.reject arrive once per message, so they are
decoded by hand into light named tuples, as are the content frames; every other method is
rare (set-up, declarations) and goes through pamqp, which embeds the spec, after the
structural checks of :mod:`jackalope.amqp.validation`.  A content header's properties stay
raw (see :mod:`jackalope.amqp.properties`).
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple, TypeAlias

from pamqp import base as pamqp_base

from jackalope.amqp.constants import (
    BASIC_ACK,
    BASIC_NACK,
    BASIC_PUBLISH,
    BASIC_REJECT,
    CLASS_BASIC,
    FRAME_BODY,
    FRAME_END,
    FRAME_ERROR,
    FRAME_HEADER,
    FRAME_HEADER_SIZE,
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    FRAME_OVERHEAD,
    NOT_IMPLEMENTED,
    PROTOCOL_HEADER,
)
from jackalope.amqp.errors import FrameError
from jackalope.amqp.validation import (
    COMMANDS,
    METHOD_LAYOUTS,
    PAMQP_DECODE_ERRORS,
    check_basic_properties,
    fields_fit,
    malformed,
)

# Events.  Named tuples: the reader makes several per message, and a tuple built with
# tuple.__new__ is the cheapest object Python has (about half the cost of the generated
# NamedTuple constructor).


class ProtocolHeader(NamedTuple):
    """The client's 8-octet greeting.  Not valid: reply with ``protocol_header()`` and close."""

    valid: bool


class MethodFrame(NamedTuple):
    """Any method other than the four hot-path ones, as a pamqp command object."""

    channel: int
    method: pamqp_base.Frame


class Publish(NamedTuple):
    """basic.publish (60/40); the content header and body frames follow."""

    channel: int
    exchange: str
    routing_key: str
    mandatory: bool
    immediate: bool


class Ack(NamedTuple):
    """basic.ack (60/80) from a consumer."""

    channel: int
    delivery_tag: int
    multiple: bool


class Nack(NamedTuple):
    """basic.nack (60/120) from a consumer (RabbitMQ extension)."""

    channel: int
    delivery_tag: int
    multiple: bool
    requeue: bool


class Reject(NamedTuple):
    """basic.reject (60/90) from a consumer."""

    channel: int
    delivery_tag: int
    requeue: bool


class ContentHeader(NamedTuple):
    """A content header frame.  ``properties`` is flags + property list, verbatim."""

    channel: int
    class_id: int
    body_size: int
    properties: bytes


class ContentBody(NamedTuple):
    """One content body frame; a body of ``body_size`` octets may span several."""

    channel: int
    data: bytes


class Heartbeat(NamedTuple):
    """A heartbeat frame (always channel 0)."""


class WholeMessage(NamedTuple):
    """basic.publish with its content header and body, found whole in the buffer (the common
    case, read in one step): what the three events above would say, for one channel."""

    channel: int
    publish: Publish
    properties: bytes
    body: bytes


Event: TypeAlias = (
    ProtocolHeader
    | MethodFrame
    | Publish
    | Ack
    | Nack
    | Reject
    | ContentHeader
    | ContentBody
    | Heartbeat
    | WholeMessage
)

_new = tuple.__new__
_HEARTBEAT: Final = Heartbeat()

_FRAME_HEAD: Final = struct.Struct(">BHI")  # type, channel, payload size
_HEADER_FRAME: Final = struct.Struct(">BHIHHQ")  # ... + class-id, weight, body size
_CACHE_SIZE: Final = 256  # distinct publish methods and property lists kept per connection
_CONTENT_PREFIX: Final = struct.Struct(">HHQ")  # class-id, weight, body size
_U32: Final = struct.Struct(">I")
_TAG_BITS: Final = struct.Struct(">QB")  # delivery-tag + one octet of bits

_COMPACT_AT: Final = 1 << 16
"""Drop consumed bytes from the front of the buffer once this many have piled up."""

_VIEW_COPY_AT: Final = 4096
"""Bodies larger than this are copied through a memoryview (one copy instead of two)."""

_AWAIT_HEADER, _FRAMES, _CLOSED, _FAILED = range(4)


class FrameReader:
    """Turns the byte stream from one client into events.

    ``feed()`` what the socket gave, then call ``next_event()`` until it returns None.  The
    buffer holds at most what was fed: a frame is refused as soon as its 7-octet header
    announces more than ``frame_max``, so a peer cannot make the reader wait for (and buffer)
    an oversized frame.

    ``FrameError`` comes in two kinds.  If the frame itself was delimited correctly (bad
    method arguments, unknown method or frame type, malformed content header, misplaced
    heartbeat) the frame is consumed and the reader stays usable, so the server can still read
    the client's connection.close-ok after sending connection.close.  If framing is lost
    (wrong frame-end octet, oversized frame) every later call raises the same error.
    """

    __slots__ = ("_buf", "_error", "_frame_max", "_pos", "_properties", "_publishes", "_state")

    def __init__(self, frame_max: int) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._state = _AWAIT_HEADER
        self._error: FrameError | None = None
        self._frame_max = _checked_frame_max(frame_max)
        self._publishes: dict[bytes, Publish] = {}
        self._properties: dict[bytes, bytes] = {}

    @property
    def frame_max(self) -> int:
        """Largest accepted frame *payload*: set it to the negotiated frame-max after tune-ok.

        The spec counts frame-max over the whole frame (payload + 8), but like RabbitMQ the
        reader lets payloads reach frame-max itself, because several clients get this wrong
        by exactly the 8 octets of overhead.
        """
        return self._frame_max

    @frame_max.setter
    def frame_max(self, value: int) -> None:
        self._frame_max = _checked_frame_max(value)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes read from the socket."""
        buf = self._buf
        pos = self._pos
        if pos:
            if pos == len(buf):
                buf.clear()
                self._pos = 0
            elif pos >= _COMPACT_AT:
                del buf[:pos]
                self._pos = 0
        buf += data

    def next_event(self) -> Event | None:
        """The next event, or None if more bytes are needed."""
        if self._state != _FRAMES:
            return self._outside_frames()
        buf = self._buf
        pos = self._pos
        if len(buf) - pos < FRAME_HEADER_SIZE:
            return None
        frame_type, channel, size = _FRAME_HEAD.unpack_from(buf, pos)
        if size > self._frame_max:
            raise self._fail(f"frame size {size} exceeds frame_max {self._frame_max}")
        start = pos + FRAME_HEADER_SIZE
        end = start + size
        if len(buf) <= end:
            return None
        if buf[end] != FRAME_END:
            raise self._fail(f"frame end octet is {buf[end]:#04x}, not 0xce")
        self._pos = end + 1
        if frame_type == FRAME_BODY:
            if size > _VIEW_COPY_AT:
                with memoryview(buf) as view:
                    data = bytes(view[start:end])
            else:
                data = bytes(buf[start:end])
            return _new(ContentBody, (channel, data))
        if frame_type == FRAME_METHOD:
            if size > 4 and buf[start + 1] == 60 and buf[start + 3] == 40 and not buf[start] | buf[start + 2]:
                # basic.publish: a publisher sends the same one over and over (same channel,
                # exchange, routing key and flags), so the decoded tuple is kept, by its bytes.
                key = bytes(buf[pos + 1 : end])
                publish = self._publishes.get(key)
                if publish is None:
                    publish = _decode_publish(buf, start + 4, end, channel)
                    if len(self._publishes) >= _CACHE_SIZE:
                        self._publishes.clear()
                    self._publishes[key] = publish
                return self._whole(publish)
            return _decode_method(buf, start, end, channel)
        if frame_type == FRAME_HEADER:
            return _decode_content_header(buf, start, end, channel)
        if frame_type == FRAME_HEARTBEAT:
            if channel != 0:
                raise FrameError(FRAME_ERROR, f"heartbeat frame on channel {channel}")
            if size:
                raise FrameError(FRAME_ERROR, "heartbeat frame with a payload")
            return _HEARTBEAT
        raise FrameError(FRAME_ERROR, f"unknown frame type {frame_type}")

    def _whole(self, publish: Publish) -> Publish | WholeMessage:
        """``publish`` and, if the buffer holds it whole right after (a content header and at
        most one body frame on the same channel, all well formed), its content: one event
        instead of three.  Anything unusual is left to the frame-by-frame path, errors too."""
        buf = self._buf
        pos = self._pos
        if len(buf) - pos < 22:  # the smallest content header frame
            return publish
        frame_type, channel, size, class_id, weight, body_size = _HEADER_FRAME.unpack_from(buf, pos)
        end = pos + FRAME_HEADER_SIZE + size
        if (
            frame_type != FRAME_HEADER
            or channel != publish.channel
            or class_id != CLASS_BASIC
            or weight
            or size < 14
            or size > self._frame_max
            or end >= len(buf)
            or buf[end] != FRAME_END
        ):
            return publish
        last = end
        if body_size:
            if len(buf) - end - 1 < FRAME_HEADER_SIZE or body_size > self._frame_max:
                return publish
            frame_type, channel, size = _FRAME_HEAD.unpack_from(buf, end + 1)
            last = end + 1 + FRAME_HEADER_SIZE + size
            if (
                frame_type != FRAME_BODY
                or channel != publish.channel
                or size != body_size
                or last >= len(buf)
                or buf[last] != FRAME_END
            ):
                return publish
        raw = bytes(buf[pos + 19 : end])
        properties = self._properties.get(raw)
        if properties is None:  # checked once per distinct property list (clients repeat them)
            try:
                check_basic_properties(raw, deep=False)
            except FrameError:
                return publish
            if len(self._properties) >= _CACHE_SIZE:
                self._properties.clear()
            properties = self._properties[raw] = raw
        if not body_size:
            body = b""
        elif body_size > _VIEW_COPY_AT:
            with memoryview(buf) as view:
                body = bytes(view[last - body_size : last])
        else:
            body = bytes(buf[last - body_size : last])
        self._pos = last + 1
        return _new(WholeMessage, (publish.channel, publish, properties, body))

    def _outside_frames(self) -> ProtocolHeader | None:
        # Before the protocol header, after a refused one, or after framing was lost.
        if self._state == _FAILED:
            assert self._error is not None
            raise self._error
        if self._state == _CLOSED:
            return None
        pos = self._pos
        head = bytes(self._buf[pos : pos + 8])
        # Refuse early when the first octets already rule out "AMQP" (an HTTP or TLS client):
        # waiting for 8 octets could wait forever.
        if head[:4] != PROTOCOL_HEADER[: min(4, len(head))]:
            self._state = _CLOSED
            return ProtocolHeader(False)
        if len(head) < 8:
            return None
        self._pos = pos + 8
        if head == PROTOCOL_HEADER:
            self._state = _FRAMES
            return ProtocolHeader(True)
        self._state = _CLOSED
        return ProtocolHeader(False)

    def _fail(self, text: str) -> FrameError:
        self._error = FrameError(FRAME_ERROR, text)
        self._state = _FAILED
        return self._error


def _checked_frame_max(value: int) -> int:
    if value <= FRAME_OVERHEAD:
        # 0 means "no limit" in connection.tune-ok; the server must substitute its own cap,
        # or the reader would buffer whatever a peer announces.
        raise ValueError(f"frame_max must exceed {FRAME_OVERHEAD}, got {value}")
    return value


# --- decoding ------------------------------------------------------------------------------


def _decode_method(buf: bytearray, start: int, end: int, channel: int) -> Event:
    if end - start < 4:
        raise malformed("method frame shorter than its class and method ids")
    (method_id,) = _U32.unpack_from(buf, start)
    p = start + 4
    if method_id == BASIC_PUBLISH:
        return _decode_publish(buf, p, end, channel)
    if method_id in (BASIC_ACK, BASIC_NACK, BASIC_REJECT):
        if end - p != 9:
            raise malformed("basic.ack/nack/reject", method_id)
        tag, bits = _TAG_BITS.unpack_from(buf, p)
        if method_id == BASIC_ACK:
            return _new(Ack, (channel, tag, bits & 1 != 0))
        if method_id == BASIC_NACK:
            return _new(Nack, (channel, tag, bits & 1 != 0, bits & 2 != 0))
        return _new(Reject, (channel, tag, bits & 1 != 0))
    return MethodFrame(channel, _decode_with_pamqp(method_id, buf, p, end))


def _decode_publish(buf: bytearray, p: int, end: int, channel: int) -> Publish:
    """basic.publish's arguments: ticket(2) exchange(shortstr) routing-key(shortstr)
    bits(mandatory=1, immediate=2).  Positions only grow, so one check at the end catches
    every overrun; reads past ``end`` but inside the buffer yield garbage it throws away."""
    try:
        n = buf[p + 2]
        p += 3
        exchange = buf[p : p + n].decode() if n else ""
        p += n
        n = buf[p]
        p += 1
        routing_key = buf[p : p + n].decode() if n else ""
        p += n
        bits = buf[p]
    except (IndexError, UnicodeDecodeError):
        raise malformed("basic.publish", BASIC_PUBLISH) from None
    if p + 1 != end:
        raise malformed("basic.publish", BASIC_PUBLISH)
    return _new(Publish, (channel, exchange, routing_key, bits & 1 != 0, bits & 2 != 0))


def _decode_with_pamqp(method_id: int, buf: bytearray, p: int, end: int) -> pamqp_base.Frame:
    cls = COMMANDS.get(method_id)
    if cls is None:
        raise FrameError(NOT_IMPLEMENTED, f"unknown method {method_id >> 16}/{method_id & 0xFFFF}", method_id)
    if not fields_fit(METHOD_LAYOUTS[method_id], buf, p, end):
        raise malformed(cls.name, method_id)
    # Built without __init__: pamqp's constructors validate names with client-side rules
    # (a regex narrower than what RabbitMQ accepts) and warn on deprecated methods;
    # unmarshal() sets every field.
    method = cls.__new__(cls)
    try:
        method.unmarshal(bytes(buf[p:end]))
    except PAMQP_DECODE_ERRORS as exc:
        raise malformed(f"{cls.name}: {exc}", method_id) from exc
    return method


def _decode_content_header(buf: bytearray, start: int, end: int, channel: int) -> ContentHeader:
    if end - start < 14:
        raise malformed("content header shorter than 14 octets")
    class_id, weight, body_size = _CONTENT_PREFIX.unpack_from(buf, start)
    if weight:
        raise malformed("content header with a non-zero weight")
    properties = bytes(buf[start + 12 : end])
    if class_id == CLASS_BASIC:
        check_basic_properties(properties, deep=False)
    # Other classes have no content in 0-9-1; the server refuses the header (UNEXPECTED_FRAME)
    # because no basic.publish announced it.
    return _new(ContentHeader, (channel, class_id, body_size, properties))
