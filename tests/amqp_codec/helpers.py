"""Builders shared by the AMQP codec tests: raw frames, field tables with explicit types."""

from __future__ import annotations

import datetime
import struct
from decimal import Decimal
from typing import Any

from pamqp import base, body, commands, frame, header

from jackalope.amqp.constants import FRAME_BODY, FRAME_HEADER, FRAME_METHOD, PROTOCOL_HEADER
from jackalope.amqp.errors import FrameError
from jackalope.amqp.reader import Event, FrameReader, MethodFrame

FRAME_MAX = 131072


def raw_frame(frame_type: int, channel: int, payload: bytes, end: int = 0xCE) -> bytes:
    """One frame, built without any codec, so tests can make it wrong on purpose."""
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + bytes((end,))


def raw_method(channel: int, class_id: int, method_id: int, args: bytes) -> bytes:
    return raw_frame(FRAME_METHOD, channel, struct.pack(">HH", class_id, method_id) + args)


def raw_header(channel: int, body_size: int, properties: bytes, class_id: int = 60, weight: int = 0) -> bytes:
    return raw_frame(FRAME_HEADER, channel, struct.pack(">HHQ", class_id, weight, body_size) + properties)


def raw_body(channel: int, data: bytes, end: int = 0xCE) -> bytes:
    return raw_frame(FRAME_BODY, channel, data, end)


def pamqp_method(channel: int, method: base.Frame) -> bytes:
    return frame.marshal(method, channel)


def pamqp_content(
    channel: int, properties: commands.Basic.Properties, payload: bytes, frame_max: int = FRAME_MAX
) -> bytes:
    """Header + body frames as pamqp marshals them, split the way the spec says."""
    out = frame.marshal(header.ContentHeader(0, len(payload), properties), channel)
    chunk = frame_max - 8
    for offset in range(0, len(payload), chunk):
        out += frame.marshal(body.ContentBody(payload[offset : offset + chunk]), channel)
    return out


def events_of(data: bytes, frame_max: int = FRAME_MAX, with_header: bool = True) -> list[Event]:
    """Every event of a stream fed in one piece (the protocol header event left out)."""
    reader = FrameReader(frame_max)
    reader.feed((PROTOCOL_HEADER if with_header else b"") + data)
    result = drain(reader)
    return result[1:] if with_header else result


def drain(reader: FrameReader) -> list[Event]:
    result: list[Event] = []
    while (event := reader.next_event()) is not None:
        result.append(event)
    return result


def comparable(events: list[Event]) -> list[object]:
    """Events with pamqp command objects (which compare by identity) replaced by their fields."""
    return [
        (event.channel, type(event.method), dict(event.method)) if isinstance(event, MethodFrame) else event
        for event in events
    ]


def error_of(data: bytes, frame_max: int = FRAME_MAX) -> FrameError:
    """The FrameError a stream raises (after its valid frames)."""
    reader = FrameReader(frame_max)
    reader.feed(PROTOCOL_HEADER + data)
    try:
        drain(reader)
    except FrameError as exc:
        return exc
    raise AssertionError("no FrameError raised")


# Field tables with every field type RabbitMQ parses (rabbit_binary_parser), built by hand
# because pamqp's encoder picks its own types (it never writes B, L, d or x from Python values).


def u32(n: int) -> bytes:
    return struct.pack(">I", n)


def sstr(text: str) -> bytes:
    data = text.encode()
    return bytes((len(data),)) + data


def table(*items: tuple[str, bytes]) -> bytes:
    """A field table: (name, tagged value bytes) pairs, length-prefixed."""
    content = b"".join(sstr(name) + value for name, value in items)
    return u32(len(content)) + content


def array(*values: bytes) -> bytes:
    content = b"".join(values)
    return u32(len(content)) + content


NESTED_TABLE = table(("inner", b"S" + u32(2) + b"ok"), ("deeper", b"F" + table(("n", b"b\x07"))))

ALL_TYPES: list[tuple[str, bytes, Any]] = [
    ("t", b"t\x01", True),
    ("b", b"b" + struct.pack(">b", -5), -5),
    ("B", b"B" + struct.pack(">B", 250), 250),
    ("s", b"s" + struct.pack(">h", -300), -300),
    ("u", b"u" + struct.pack(">H", 65000), 65000),
    ("I", b"I" + struct.pack(">i", -70000), -70000),
    ("i", b"i" + struct.pack(">I", 4_000_000_000), 4_000_000_000),
    ("l", b"l" + struct.pack(">q", -(2**40)), -(2**40)),
    ("L", b"L" + struct.pack(">q", 2**40), 2**40),
    ("f", b"f" + struct.pack(">f", 1.5), 1.5),
    ("d", b"d" + struct.pack(">d", 2.25), 2.25),
    ("D", b"D" + struct.pack(">Bi", 2, 12345), Decimal("123.45")),
    ("S", b"S" + u32(5) + b"hello", "hello"),
    ("x", b"x" + u32(3) + b"\x00\x01\xff", bytearray(b"\x00\x01\xff")),
    (
        "A",
        b"A" + array(b"b\x01", b"S" + u32(1) + b"x", b"F" + NESTED_TABLE, b"A" + array(b"V")),
        [1, "x", {"inner": "ok", "deeper": {"n": 7}}, [None]],
    ),
    (
        "T",
        b"T" + struct.pack(">Q", 1_700_000_000),
        datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.UTC),
    ),
    ("F", b"F" + NESTED_TABLE, {"inner": "ok", "deeper": {"n": 7}}),
    ("V", b"V", None),
]

ALL_TYPES_TABLE = table(*((name, value) for name, value, _ in ALL_TYPES))
ALL_TYPES_DECODED = {name: decoded for name, _, decoded in ALL_TYPES}


def raw_properties(headers: bytes, delivery_mode: int = 2, content_type: str = "application/json") -> bytes:
    """content-type + headers + delivery-mode, flags and list built by hand."""
    return (
        struct.pack(">H", 0x8000 | 0x2000 | 0x1000) + sstr(content_type) + headers + bytes((delivery_mode,))
    )
