"""Frame writers: what the server sends, appended to an output buffer (sans-IO).

basic.deliver, basic.get-ok, basic.return and publisher confirms go out once per message, so
they are written by hand with precomputed structs straight into the caller's ``bytearray``;
every other method is rare and is encoded from a pamqp command object (:func:`method_frame`).
Properties are written back exactly as they were received (see :mod:`jackalope.amqp.properties`).
"""

from __future__ import annotations

import struct
from typing import Any, Final

from pamqp import base as pamqp_base
from pamqp import encode as pamqp_encode

from jackalope.amqp.constants import (
    BASIC_ACK,
    BASIC_DELIVER,
    BASIC_GET_OK,
    BASIC_NACK,
    BASIC_RETURN,
    CLASS_BASIC,
    FRAME_BODY,
    FRAME_END,
    FRAME_HEADER,
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    FRAME_OVERHEAD,
    PROTOCOL_HEADER,
)

_FRAME_HEAD: Final = struct.Struct(">BHI")  # type, channel, payload size
_METHOD_HEAD: Final = struct.Struct(">BHII")  # ... + class-id<<16 | method-id
_END_AND_CONTENT_HEAD: Final = struct.Struct(">BBHIHHQ")  # end of previous frame + header frame start
_END_AND_FRAME_HEAD: Final = struct.Struct(">BBHI")  # end of previous frame + next frame's header
_CONTENT_HEAD: Final = struct.Struct(">BHIHHQ")
_U32: Final = struct.Struct(">I")
_TAG_BITS_LEN: Final = struct.Struct(">Q?B")  # delivery-tag + bit + next shortstr's length
_TAG_BIT: Final = struct.Struct(">Q?")  # delivery-tag + bit
_CONFIRM: Final = struct.Struct(">BHIIQBB")  # a whole basic.ack / basic.nack frame
_U16_LEN: Final = struct.Struct(">HB")
_END: Final = bytes((FRAME_END,))
_OCTETS: Final = tuple(bytes((i,)) for i in range(256))


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
    names = _name_pair(exchange, routing_key)
    size = 13 + len(consumer_tag) + len(names)
    out += _METHOD_HEAD.pack(FRAME_METHOD, channel, size, BASIC_DELIVER)
    out += consumer_tag
    out += _TAG_BIT.pack(delivery_tag, redelivered)
    out += names
    out += _END_AND_CONTENT_HEAD.pack(
        FRAME_END, FRAME_HEADER, channel, 12 + len(properties), CLASS_BASIC, 0, len(body)
    )
    out += properties
    _body_frames(out, channel, body, frame_max)


_NAME_PAIRS: dict[tuple[str, str], bytes] = {}


def _name_pair(exchange: str, routing_key: str) -> bytes:
    """exchange and routing key as two shortstrs: encoded once per pair (deliveries repeat them)."""
    key = (exchange, routing_key)
    encoded = _NAME_PAIRS.get(key)
    if encoded is None:
        ex = _encoded_name(exchange)
        rk = _encoded_name(routing_key)
        encoded = _OCTETS[len(ex)] + ex + _OCTETS[len(rk)] + rk
        if len(_NAME_PAIRS) >= 4096:
            _NAME_PAIRS.clear()
        _NAME_PAIRS[key] = encoded
    return encoded


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
    out += _METHOD_HEAD.pack(FRAME_METHOD, channel, size, BASIC_GET_OK)
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
    out += _METHOD_HEAD.pack(FRAME_METHOD, channel, size, BASIC_RETURN)
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
    out += _CONFIRM.pack(FRAME_METHOD, channel, 13, BASIC_ACK, delivery_tag, 1 if multiple else 0, FRAME_END)


def confirm_nack(out: bytearray, channel: int, delivery_tag: int, multiple: bool) -> None:
    """Append a publisher-confirm basic.nack.

    The requeue bit is set, as RabbitMQ sends it (its record default); clients ignore it.
    """
    out += _CONFIRM.pack(FRAME_METHOD, channel, 13, BASIC_NACK, delivery_tag, 3 if multiple else 2, FRAME_END)
