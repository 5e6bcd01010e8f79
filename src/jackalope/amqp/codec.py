"""Sans-IO AMQP 0-9-1 codec: bytes in, typed events out; events in, bytes out.

No sockets, no asyncio: the server feeds whatever it read into a ``FrameReader`` and drains
``next_event()`` until it returns None; it answers by appending frames to a ``bytearray``
with the writers below and writing that buffer out.  Everything here is testable with bytes.

Wire format (spec section 4.2.3; all integers big-endian)::

    protocol header   "AMQP" 0 0 9 1                      8 octets, client -> server, once
    frame             type(1) channel(2) size(4) payload(size) 0xCE
      method  (1)     class-id(2) method-id(2) arguments
      header  (2)     class-id(2) weight(2)=0 body-size(8) property-flags(2+) property-list
      body    (3)     raw body bytes (a message body is split over as many frames as needed)
      heartbeat (8)   empty payload, channel 0

Three decisions shape the module:

* **Hot path by hand, the rest through pamqp.**  basic.publish, basic.ack, basic.nack and
  basic.reject arrive once per message, so they are decoded by hand into light named tuples,
  as are the content frames; basic.deliver, basic.get-ok, basic.return and publisher
  confirms are written by hand with precomputed structs.  Every other method is rare
  (connection and channel set-up, declarations) and goes through pamqp, which embeds the
  spec, so the codec stays small and the server works with pamqp's command objects.

* **Properties stay raw.**  A content header's property flags and property list are kept
  verbatim (``ContentHeader.properties``) and written back verbatim on delivery, so every
  property and every field of a nested header table round-trips byte for byte, whatever
  integer width or string type the publisher chose.  Decoding is lazy:
  ``delivery_mode()`` is a fast scan for the one property needed on every message;
  ``decode_properties()`` decodes the rest when routing or TTL needs it.

* **Strict framing, as RabbitMQ.**  Method arguments must fill the payload exactly and field
  tables must be well formed (RabbitMQ decodes with exact binary patterns and answers
  FRAME_ERROR otherwise).  A property list must be well formed down to the length of its
  headers table; the table's contents are checked when ``decode_properties`` runs.
"""

from __future__ import annotations

import struct
from typing import Any, Final, NamedTuple, TypeAlias, cast

from pamqp import base as pamqp_base
from pamqp import commands
from pamqp import common as pamqp_common
from pamqp import encode as pamqp_encode

from jackalope.amqp.constants import (
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

__all__ = [
    "Ack",
    "ContentBody",
    "ContentHeader",
    "Event",
    "FrameError",
    "FrameReader",
    "Heartbeat",
    "MethodFrame",
    "Nack",
    "ProtocolHeader",
    "Publish",
    "Reject",
    "basic_return",
    "build_method",
    "confirm_ack",
    "confirm_nack",
    "content_frames",
    "decode_properties",
    "deliver",
    "delivery_mode",
    "encode_properties",
    "get_ok",
    "heartbeat",
    "method_frame",
    "protocol_header",
    "shortstr",
]


class FrameError(Exception):
    """The peer broke the protocol at connection level.

    The server answers with connection.close(reply_code, text, class_id, method_id) and stops
    reading.  ``class_id``/``method_id`` name the offending method when there is one.
    """

    def __init__(self, reply_code: int, text: str, class_id: int = 0, method_id: int = 0) -> None:
        super().__init__(reply_code, text)
        self.reply_code = int(reply_code)
        self.text = text
        self.class_id = class_id
        self.method_id = method_id

    def __str__(self) -> str:
        return f"{self.reply_code} {self.text}"


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


Event: TypeAlias = (
    ProtocolHeader | MethodFrame | Publish | Ack | Nack | Reject | ContentHeader | ContentBody | Heartbeat
)

_new = tuple.__new__
_HEARTBEAT: Final = Heartbeat()

# Structs and constants of the hot paths.
_FRAME_HEAD: Final = struct.Struct(">BHI")  # type, channel, payload size
_METHOD_HEAD: Final = struct.Struct(">BHII")  # ... + class-id<<16 | method-id
_END_AND_CONTENT_HEAD: Final = struct.Struct(">BBHIHHQ")  # end of previous frame + header frame start
_END_AND_FRAME_HEAD: Final = struct.Struct(">BBHI")  # end of previous frame + next frame's header
_CONTENT_HEAD: Final = struct.Struct(">BHIHHQ")
_CONTENT_PREFIX: Final = struct.Struct(">HHQ")  # class-id, weight, body size
_U32: Final = struct.Struct(">I")
_TAG_BITS: Final = struct.Struct(">QB")  # delivery-tag + one octet of bits
_TAG_BITS_LEN: Final = struct.Struct(">Q?B")  # delivery-tag + bit + next shortstr's length
_CONFIRM: Final = struct.Struct(">BHIIQBB")  # a whole basic.ack / basic.nack frame
_U16_LEN: Final = struct.Struct(">HB")
_END: Final = bytes((FRAME_END,))
_OCTETS: Final = tuple(bytes((i,)) for i in range(256))

_PUBLISH: Final = 0x003C0028
_RETURN: Final = 0x003C0032
_DELIVER: Final = 0x003C003C
_GET_OK: Final = 0x003C0047
_ACK: Final = 0x003C0050
_REJECT: Final = 0x003C005A
_NACK: Final = 0x003C0078

_COMPACT_AT: Final = 1 << 16
"""Drop consumed bytes from the front of the buffer once this many have piled up."""

_VIEW_COPY_AT: Final = 4096
"""Bodies larger than this are copied through a memoryview (one copy instead of two)."""

MAX_TABLE_DEPTH: Final = 64
"""Nesting limit for field tables and arrays.  RabbitMQ sets none, but nothing real nests this
deep, and the limit keeps pamqp's recursive decoder far from Python's recursion limit."""

_AWAIT_HEADER, _FRAMES, _CLOSED, _FAILED = range(4)

# pamqp's method classes by (class-id << 16 | method-id).  pamqp types the mapping as
# dict[int, type]; every value is a pamqp Frame subclass.
_COMMANDS: Final = cast("dict[int, type[pamqp_base.Frame]]", commands.INDEX_MAPPING)


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

    __slots__ = ("_buf", "_error", "_frame_max", "_pos", "_state")

    def __init__(self, frame_max: int) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._state = _AWAIT_HEADER
        self._error: FrameError | None = None
        self._frame_max = _checked_frame_max(frame_max)

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


def _malformed(what: str, method_id: int = 0) -> FrameError:
    # FRAME_ERROR, not SYNTAX_ERROR: the spec's 501 is "a malformed frame that the recipient
    # could not decode", and RabbitMQ answers undecodable method arguments with it too
    # (rabbit_misc:frame_error, "cannot decode").
    return FrameError(FRAME_ERROR, f"cannot decode {what}", method_id >> 16, method_id & 0xFFFF)


def _decode_method(buf: bytearray, start: int, end: int, channel: int) -> Event:
    if end - start < 4:
        raise _malformed("method frame shorter than its class and method ids")
    (method_id,) = _U32.unpack_from(buf, start)
    p = start + 4
    if method_id == _PUBLISH:
        # ticket(2) exchange(shortstr) routing-key(shortstr) bits(mandatory=1, immediate=2).
        # Positions only grow, so one check at the end catches every overrun; reads past
        # `end` but inside the buffer yield garbage that this check then throws away.
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
            raise _malformed("basic.publish", method_id) from None
        if p + 1 != end:
            raise _malformed("basic.publish", method_id)
        return _new(Publish, (channel, exchange, routing_key, bits & 1 != 0, bits & 2 != 0))
    if method_id in (_ACK, _NACK, _REJECT):
        if end - p != 9:
            raise _malformed("basic.ack/nack/reject", method_id)
        tag, bits = _TAG_BITS.unpack_from(buf, p)
        if method_id == _ACK:
            return _new(Ack, (channel, tag, bits & 1 != 0))
        if method_id == _NACK:
            return _new(Nack, (channel, tag, bits & 1 != 0, bits & 2 != 0))
        return _new(Reject, (channel, tag, bits & 1 != 0))
    return MethodFrame(channel, _decode_with_pamqp(method_id, buf, p, end))


def _decode_with_pamqp(method_id: int, buf: bytearray, p: int, end: int) -> pamqp_base.Frame:
    cls = _COMMANDS.get(method_id)
    if cls is None:
        class_id, mid = method_id >> 16, method_id & 0xFFFF
        raise FrameError(NOT_IMPLEMENTED, f"unknown method {class_id}/{mid}", class_id, mid)
    if not _fields_fit(_METHOD_LAYOUTS[method_id], buf, p, end):
        raise _malformed(cls.name, method_id)
    # Built without __init__: pamqp's constructors validate names with client-side rules
    # (a regex narrower than what RabbitMQ accepts) and warn on deprecated methods;
    # unmarshal() sets every field.
    method = cls.__new__(cls)
    try:
        method.unmarshal(bytes(buf[p:end]))
    except _PAMQP_DECODE_ERRORS as exc:
        raise _malformed(f"{cls.name}: {exc}", method_id) from exc
    return method


# What pamqp's decoders raise on bad input that passed the structural checks: undecodable
# UTF-8 (ValueError), timestamps no datetime can hold (OverflowError, OSError, ValueError).
_PAMQP_DECODE_ERRORS: Final = (struct.error, ValueError, TypeError, OverflowError, OSError, RecursionError)


def _decode_content_header(buf: bytearray, start: int, end: int, channel: int) -> ContentHeader:
    if end - start < 14:
        raise _malformed("content header shorter than 14 octets")
    class_id, weight, body_size = _CONTENT_PREFIX.unpack_from(buf, start)
    if weight:
        raise _malformed("content header with a non-zero weight")
    properties = bytes(buf[start + 12 : end])
    if class_id == CLASS_BASIC:
        _check_basic_properties(properties, deep=False)
    # Other classes have no content in 0-9-1; the server refuses the header (UNEXPECTED_FRAME)
    # because no basic.publish announced it.
    return _new(ContentHeader, (channel, class_id, body_size, properties))


# Field kinds for the structural walkers: a fixed size in octets, or one of these.
_SHORTSTR: Final = -1
_LONGSTR: Final = -2
_TABLE: Final = -3
_BIT: Final = -4
_KINDS: Final = {
    "bit": _BIT,
    "octet": 1,
    "short": 2,
    "long": 4,
    "longlong": 8,
    "timestamp": 8,
    "shortstr": _SHORTSTR,
    "longstr": _LONGSTR,
    "table": _TABLE,
}

_METHOD_LAYOUTS: Final = {
    index: tuple(_KINDS[cls.amqp_type(name)] for name in cls.__slots__) for index, cls in _COMMANDS.items()
}

_BASIC_PROPERTY_LAYOUT: Final = tuple(
    (commands.Basic.Properties.flags[name], _KINDS[commands.Basic.Properties.amqp_type(name)])
    for name in commands.Basic.Properties.__slots__
)

# Value sizes of field-table types, as RabbitMQ parses them (rabbit_binary_parser).
_TABLE_FIXED: Final = {
    ord("t"): 1,
    ord("b"): 1,
    ord("B"): 1,
    ord("s"): 2,
    ord("u"): 2,
    ord("I"): 4,
    ord("i"): 4,
    ord("f"): 4,
    ord("l"): 8,
    ord("L"): 8,
    ord("d"): 8,
    ord("T"): 8,
    ord("D"): 5,
    ord("V"): 0,
}
_TABLE_SIZED: Final = frozenset(b"SxFA")  # a long length, then that many octets


def _fields_fit(layout: tuple[int, ...], data: bytes | bytearray, p: int, end: int) -> bool:
    """True if method arguments of this layout fill data[p:end] exactly (tables well formed)."""
    bits = 0
    for kind in layout:
        if kind == _BIT:
            if bits % 8 == 0:  # consecutive bits share octets, eight to an octet
                p += 1
            bits += 1
            continue
        bits = 0
        if kind > 0:
            p += kind
        elif kind == _SHORTSTR:
            if p >= end:
                return False
            p += 1 + data[p]
        else:
            if p + 4 > end:
                return False
            start = p + 4
            p = start + _U32.unpack_from(data, p)[0]
            if p > end or (kind == _TABLE and not _table_ok(data, start, p, False)):
                return False
    return p == end


def _table_ok(data: bytes | bytearray, p: int, end: int, is_array: bool) -> bool:
    """True if data[p:end] is a well-formed field table (or array) body.

    Iterative, so a hostile nesting depth costs a bounded stack, not a RecursionError.
    """
    outer: list[tuple[int, bool]] = []
    fixed = _TABLE_FIXED
    while True:
        if p == end:
            if not outer:
                return True
            end, is_array = outer.pop()
            continue
        if not is_array:  # a shortstr name comes first
            p += 1 + data[p]
            if p >= end:
                return False
        tag = data[p]
        p += 1
        size = fixed.get(tag)
        if size is not None:
            p += size
        elif tag in _TABLE_SIZED:
            if p + 4 > end:
                return False
            start = p + 4
            p = start + _U32.unpack_from(data, p)[0]
            if p > end:
                return False
            if tag == 0x46 or tag == 0x41:  # F, A: descend; resume after it at `p`
                if len(outer) >= MAX_TABLE_DEPTH:
                    return False
                outer.append((end, is_array))
                end, is_array, p = p, tag == 0x41, start
        else:
            return False
        if p > end:
            return False


def _property_flags(properties: bytes) -> tuple[int, int]:
    """(flags of the first flag word, offset of the property list).

    Bit 0 of a flag word says another word follows (spec 4.2.6.1).  Basic has 14 properties,
    all in the first word, so later words must carry no property bits.  Bit 1 is unused.
    """
    n = len(properties)
    if n < 2:
        raise _malformed("content header without property flags")
    flags = (properties[0] << 8) | properties[1]
    i = 2
    word = flags
    while word & 1:
        if i + 2 > n:
            raise _malformed("truncated property flags")
        word = (properties[i] << 8) | properties[i + 1]
        if word & 0xFFFE:
            raise _malformed("property flags beyond basic's fourteen properties")
        i += 2
    return flags & 0xFFFC, i


_PRESENT_KINDS: dict[int, tuple[int, ...]] = {}
"""Flags -> kinds of the properties present, in order.  At most 2**14 entries; in practice a
handful, since each client library sets the same few properties on every message."""


def _present_kinds(flags: int) -> tuple[int, ...]:
    kinds = _PRESENT_KINDS[flags] = tuple(kind for bit, kind in _BASIC_PROPERTY_LAYOUT if flags & bit)
    return kinds


def _check_basic_properties(properties: bytes, deep: bool) -> None:
    """Raise FrameError unless the property list matches its flags exactly.

    The headers table is skipped by its length prefix; ``deep`` also checks its contents.
    """
    n = len(properties)
    if n > 1 and not properties[1] & 1:  # one flag word: the only case clients produce
        flags = (properties[0] << 8) | (properties[1] & 0xFC)
        i = 2
    else:
        flags, i = _property_flags(properties)
    kinds = _PRESENT_KINDS.get(flags)
    if kinds is None:
        kinds = _present_kinds(flags)
    for kind in kinds:
        if kind > 0:
            i += kind
        elif kind == _SHORTSTR:
            if i >= n:
                raise _malformed("property list")
            i += 1 + properties[i]
        else:  # the headers table
            if i + 4 > n:
                raise _malformed("property list")
            start = i + 4
            i = start + _U32.unpack_from(properties, i)[0]
            if deep and i <= n and not _table_ok(properties, start, i, False):
                raise _malformed("headers table")
    if i != n:
        raise _malformed("property list")


# --- property helpers ----------------------------------------------------------------------


def delivery_mode(properties: bytes) -> int:
    """The delivery-mode property (2 = persistent), or 0 if absent.

    Called for every published message, so it scans instead of decoding: skip
    content-type and content-encoding by their length octet and the headers table by its
    length prefix.  Raises ValueError on bytes the reader would not have accepted.
    """
    p = properties
    try:
        flags = (p[0] << 8) | p[1]
        if not flags & 0x1000:
            return 0
        i = 2
        word = flags
        while word & 1:
            word = (p[i] << 8) | p[i + 1]
            i += 2
        if flags & 0x8000:
            i += 1 + p[i]
        if flags & 0x4000:
            i += 1 + p[i]
        if flags & 0x2000:
            i += 4 + _U32.unpack_from(p, i)[0]
        return p[i]
    except (IndexError, struct.error):
        raise ValueError("malformed content properties") from None


def decode_properties(properties: bytes) -> dict[str, pamqp_common.FieldValue]:
    """The properties that are present, by pamqp's names (``message_type`` for the spec's
    ``type``), decoded with pamqp.

    Raises FrameError(FRAME_ERROR) if the headers table's contents are malformed: the reader
    checks the property list only down to the table's length, so call this while the
    publishing connection is at hand when the message needs it (headers exchange, CC/BCC,
    expiration, priority).
    """
    _check_basic_properties(properties, deep=True)
    flags, i = _property_flags(properties)
    cls = commands.Basic.Properties
    decoded = cls.__new__(cls)  # no __init__: it validates values the broker must accept
    try:
        decoded.unmarshal(flags, properties[i:])
    except _PAMQP_DECODE_ERRORS as exc:
        raise _malformed(f"content properties: {exc}") from exc
    return {name: getattr(decoded, name) for name in cls.__slots__ if flags & cls.flags[name]}


_REPLY_TO_FLAG: Final = 0x0200


def reply_to(properties: bytes) -> tuple[str | None, int, int]:
    """The reply-to property and the byte span of its shortstr (length octet included);
    ``(None, 0, 0)`` when absent.  Fields before it are skipped by their lengths, so the other
    properties stay byte-for-byte as published."""
    if len(properties) < 2:
        return None, 0, 0
    flags = (properties[0] << 8) | properties[1]
    if not flags & _REPLY_TO_FLAG:
        return None, 0, 0
    i = 2
    try:
        for bit in (0x8000, 0x4000):  # content-type, content-encoding
            if flags & bit:
                i += 1 + properties[i]
        if flags & 0x2000:  # headers
            i += 4 + int.from_bytes(properties[i : i + 4], "big")
        i += bool(flags & 0x1000) + bool(flags & 0x0800)  # delivery-mode, priority
        if flags & 0x0400:  # correlation-id
            i += 1 + properties[i]
        n = properties[i]
        value = properties[i + 1 : i + 1 + n]
    except IndexError:
        return None, 0, 0
    if len(value) != n:
        return None, 0, 0
    return value.decode(errors="replace"), i, i + 1 + n


def replace_reply_to(properties: bytes, start: int, end: int, value: str) -> bytes:
    """``properties`` with the reply-to shortstr at ``start:end`` replaced by ``value``."""
    return properties[:start] + shortstr(value) + properties[end:]


def encode_properties(**fields: Any) -> bytes:
    """Raw properties (flags + list) from pamqp's Basic.Properties keyword arguments.

    For tests and for messages that arrive without AMQP properties (HTTP, Kafka).  pamqp
    leaves out None and empty-string values and picks the smallest integer type for table
    values.
    """
    return commands.Basic.Properties(**fields).marshal()


# --- writers -------------------------------------------------------------------------------


def shortstr(value: str) -> bytes:
    """A shortstr (length octet + UTF-8), e.g. a consumer tag encoded once for ``deliver``."""
    data = value.encode()
    if len(data) > 255:
        raise ValueError(f"shortstr longer than 255 octets: {value[:40]!r}...")
    return _OCTETS[len(data)] + data


def protocol_header() -> bytes:
    """The server's protocol header, sent before closing on a bad client header."""
    return PROTOCOL_HEADER


def heartbeat() -> bytes:
    """A heartbeat frame."""
    return _HEARTBEAT_FRAME


_HEARTBEAT_FRAME: Final = _FRAME_HEAD.pack(FRAME_HEARTBEAT, 0, 0) + _END


def build_method(cls: type[pamqp_base.Frame], **fields: Any) -> pamqp_base.Frame:
    """A pamqp method with pamqp's defaults but without its client-side validation.

    pamqp's constructors reject names RabbitMQ accepts (e.g. Queue.DeclareOk for a queue
    called "café" or "a!b"), so the server builds replies with this.
    """
    method = cls()  # the defaults validate
    for name, value in fields.items():
        if name not in cls.__slots__:
            raise TypeError(f"{cls.name} has no field {name!r}")
        setattr(method, name, value)
    return method


def method_frame(channel: int, method: pamqp_base.Frame) -> bytes:
    """A method frame for any pamqp command object (pamqp's encoding, minus validation)."""
    payload = _marshal_fields(method)
    return _METHOD_HEAD.pack(FRAME_METHOD, channel, 4 + len(payload), method.index) + payload + _END


def _marshal_fields(method: pamqp_base.Frame) -> bytes:
    # pamqp's Frame.marshal() without its validate() call: consecutive bits share an octet.
    out: list[bytes] = []
    bits = -1
    bit_count = 0
    for name in method.__slots__:
        data_type = method.amqp_type(name)
        value = getattr(method, name)
        if data_type == "bit":
            if bits < 0 or bit_count == 8:
                if bits >= 0:
                    out.append(_OCTETS[bits])
                bits, bit_count = 0, 0
            bits |= bool(value) << bit_count
            bit_count += 1
            continue
        if bits >= 0:
            out.append(_OCTETS[bits])
            bits = -1
        out.append(pamqp_encode.by_type(value, data_type))
    if bits >= 0:
        out.append(_OCTETS[bits])
    return b"".join(out)


def content_frames(
    out: bytearray, channel: int, class_id: int, properties: bytes, body: bytes, frame_max: int
) -> None:
    """Append a content header frame and the body frames (none for an empty body)."""
    out += _CONTENT_HEAD.pack(FRAME_HEADER, channel, 12 + len(properties), class_id, 0, len(body))
    out += properties
    _body_frames(out, channel, body, frame_max)


def _body_frames(out: bytearray, channel: int, body: bytes, frame_max: int) -> None:
    # Appends the pending end octet of the header frame, then the body frames.
    size = len(body)
    chunk = frame_max - FRAME_OVERHEAD
    if size == 0:
        out += _END
    elif size <= chunk:
        out += _END_AND_FRAME_HEAD.pack(FRAME_END, FRAME_BODY, channel, size)
        out += body
        out += _END
    else:
        if chunk <= 0:
            raise ValueError(f"frame_max must exceed {FRAME_OVERHEAD}, got {frame_max}")
        with memoryview(body) as view:
            for offset in range(0, size, chunk):
                piece = view[offset : offset + chunk]
                out += _END_AND_FRAME_HEAD.pack(FRAME_END, FRAME_BODY, channel, len(piece))
                out += piece
        out += _END


def _encoded_name(value: str) -> bytes:
    data = value.encode()
    if len(data) > 255:
        raise ValueError(f"shortstr longer than 255 octets: {value[:40]!r}...")
    return data


def deliver(
    out: bytearray,
    channel: int,
    consumer_tag: bytes,
    delivery_tag: int,
    redelivered: bool,
    exchange: str,
    routing_key: str,
    properties: bytes,
    body: bytes,
    frame_max: int,
) -> None:
    """Append basic.deliver + content header + body frames.

    ``consumer_tag`` is a pre-encoded shortstr (see ``shortstr()``): it is the same for
    every delivery to a consumer, so it is encoded once at basic.consume.
    """
    ex = _encoded_name(exchange)
    rk = _encoded_name(routing_key)
    size = 15 + len(consumer_tag) + len(ex) + len(rk)
    out += _METHOD_HEAD.pack(FRAME_METHOD, channel, size, _DELIVER)
    out += consumer_tag
    out += _TAG_BITS_LEN.pack(delivery_tag, redelivered, len(ex))
    out += ex
    out += _OCTETS[len(rk)]
    out += rk
    out += _END_AND_CONTENT_HEAD.pack(
        FRAME_END, FRAME_HEADER, channel, 12 + len(properties), CLASS_BASIC, 0, len(body)
    )
    out += properties
    _body_frames(out, channel, body, frame_max)


def get_ok(
    out: bytearray,
    channel: int,
    delivery_tag: int,
    redelivered: bool,
    exchange: str,
    routing_key: str,
    message_count: int,
    properties: bytes,
    body: bytes,
    frame_max: int,
) -> None:
    """Append basic.get-ok + content header + body frames."""
    ex = _encoded_name(exchange)
    rk = _encoded_name(routing_key)
    size = 19 + len(ex) + len(rk)
    out += _METHOD_HEAD.pack(FRAME_METHOD, channel, size, _GET_OK)
    out += _TAG_BITS_LEN.pack(delivery_tag, redelivered, len(ex))
    out += ex
    out += _OCTETS[len(rk)]
    out += rk
    out += _U32.pack(message_count)
    out += _END_AND_CONTENT_HEAD.pack(
        FRAME_END, FRAME_HEADER, channel, 12 + len(properties), CLASS_BASIC, 0, len(body)
    )
    out += properties
    _body_frames(out, channel, body, frame_max)


def basic_return(
    out: bytearray,
    channel: int,
    reply_code: int,
    reply_text: str,
    exchange: str,
    routing_key: str,
    properties: bytes,
    body: bytes,
    frame_max: int,
) -> None:
    """Append basic.return + content header + body frames (an unroutable mandatory message)."""
    text = _encoded_name(reply_text)
    ex = _encoded_name(exchange)
    rk = _encoded_name(routing_key)
    size = 9 + len(text) + len(ex) + len(rk)
    out += _METHOD_HEAD.pack(FRAME_METHOD, channel, size, _RETURN)
    out += _U16_LEN.pack(reply_code, len(text))
    out += text
    out += _OCTETS[len(ex)]
    out += ex
    out += _OCTETS[len(rk)]
    out += rk
    out += _END_AND_CONTENT_HEAD.pack(
        FRAME_END, FRAME_HEADER, channel, 12 + len(properties), CLASS_BASIC, 0, len(body)
    )
    out += properties
    _body_frames(out, channel, body, frame_max)


def confirm_ack(out: bytearray, channel: int, delivery_tag: int, multiple: bool) -> None:
    """Append a publisher-confirm basic.ack."""
    out += _CONFIRM.pack(FRAME_METHOD, channel, 13, _ACK, delivery_tag, 1 if multiple else 0, FRAME_END)


def confirm_nack(out: bytearray, channel: int, delivery_tag: int, multiple: bool) -> None:
    """Append a publisher-confirm basic.nack.

    The requeue bit is set, as RabbitMQ sends it (its record default); clients ignore it.
    """
    out += _CONFIRM.pack(FRAME_METHOD, channel, 13, _NACK, delivery_tag, 3 if multiple else 2, FRAME_END)
