"""Raw content properties: verbatim round trips, lazy decoding, the delivery-mode fast path."""

from __future__ import annotations

import datetime
import struct

import pika.frame
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pamqp import commands, header

from jackalope.amqp.constants import FRAME_ERROR
from jackalope.amqp.errors import FrameError
from jackalope.amqp.properties import decode_properties, delivery_mode, encode_properties
from jackalope.amqp.reader import ContentHeader
from jackalope.amqp.validation import MAX_TABLE_DEPTH
from jackalope.amqp.writers import deliver, shortstr

from .helpers import (
    ALL_TYPES,
    ALL_TYPES_DECODED,
    ALL_TYPES_TABLE,
    events_of,
    raw_header,
    raw_properties,
    table,
    u32,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

EVERY_PROPERTY = commands.Basic.Properties(
    content_type="application/json",
    content_encoding="gzip",
    headers={"a": 1, "b": "two"},
    delivery_mode=2,
    priority=7,
    correlation_id="corr",
    reply_to="amq.rabbitmq.reply-to",
    expiration="60000",
    message_id="m-1",
    timestamp=datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
    message_type="order.created",
    user_id="guest",
    app_id="shop",
)


def test_every_field_type_round_trips_byte_for_byte() -> None:
    properties = raw_properties(ALL_TYPES_TABLE)
    [event] = events_of(raw_header(1, 3, properties))
    assert event == ContentHeader(1, 60, 3, properties)

    out = bytearray()
    deliver(out, 1, shortstr("c"), 1, False, "", "q", event.properties, b"abc", 4096)
    assert properties in out  # re-emitted untouched

    # ... and both client libraries read every value back
    _, head = pika_header(bytes(out))
    assert head.properties.headers["B"] == 250
    assert head.properties.headers["L"] == 2**40
    assert head.properties.headers["x"] == b"\x00\x01\xff"
    assert head.properties.headers["F"] == {"inner": "ok", "deeper": {"n": 7}}
    decoded = header.ContentHeader()
    decoded.unmarshal(header_payload(bytes(out)))
    assert decoded.properties.headers == ALL_TYPES_DECODED


def pika_header(data: bytes) -> tuple[int, pika.frame.Header]:
    consumed, _ = pika.frame.decode_frame(data)
    _, head = pika.frame.decode_frame(data[consumed:])
    assert isinstance(head, pika.frame.Header)
    return consumed, head


def header_payload(data: bytes) -> bytes:
    """The content header frame's payload in a deliver's output."""
    method_size = struct.unpack_from(">I", data, 3)[0]
    start = 7 + method_size + 1
    size = struct.unpack_from(">I", data, start + 3)[0]
    return data[start + 7 : start + 7 + size]


@pytest.mark.parametrize(("name", "raw", "value"), ALL_TYPES, ids=[t[0] for t in ALL_TYPES])
def test_decode_properties_reads_every_field_type(name: str, raw: bytes, value: object) -> None:
    decoded = decode_properties(raw_properties(table((name, raw))))
    assert decoded == {"content_type": "application/json", "headers": {name: value}, "delivery_mode": 2}


def test_decode_properties_reads_every_property() -> None:
    decoded = decode_properties(EVERY_PROPERTY.marshal())
    assert decoded == {name: value for name, value in EVERY_PROPERTY if name != "cluster_id"}


def test_absent_properties_are_left_out() -> None:
    assert decode_properties(b"\x00\x00") == {}
    assert decode_properties(encode_properties(priority=0)) == {"priority": 0}


def test_encode_properties_is_pamqps_encoding() -> None:
    fields = {name: value for name, value in EVERY_PROPERTY if name != "cluster_id"}
    assert encode_properties(**fields) == EVERY_PROPERTY.marshal()


@pytest.mark.parametrize(
    "properties",
    [
        b"\x20\x00" + table(("k", b"Z")),  # unknown type tag
        b"\x20\x00" + table(("k", b"S" + u32(10) + b"ab")),  # value overruns the table
        b"\x20\x00" + table(("k", b"T" + struct.pack(">Q", 2**63))),  # no datetime holds this
        b"\x20\x00" + u32(3) + b"\x01\xffV",  # a key that is not UTF-8
        b"\x80\x00\x02\xff\xfe",  # content-type that is not UTF-8
    ],
)
def test_malformed_contents_raise_frame_error(properties: bytes) -> None:
    with pytest.raises(FrameError) as info:
        decode_properties(properties)
    assert info.value.reply_code == FRAME_ERROR


def nested(depth: int) -> bytes:
    value = b"V"
    for _ in range(depth):
        value = b"F" + table(("n", value))
    return b"\x20\x00" + table(("n", value))


def test_nesting_is_bounded() -> None:
    assert decode_properties(nested(MAX_TABLE_DEPTH - 1))["headers"]
    with pytest.raises(FrameError):
        decode_properties(nested(MAX_TABLE_DEPTH + 1))
    with pytest.raises(FrameError):
        decode_properties(nested(5000))  # no RecursionError


# --- delivery_mode -------------------------------------------------------------------------


def test_delivery_mode_when_absent_or_after_every_earlier_property() -> None:
    assert delivery_mode(b"\x00\x00") == 0
    assert delivery_mode(encode_properties(content_type="x", priority=3)) == 0
    assert delivery_mode(EVERY_PROPERTY.marshal()) == 2
    assert delivery_mode(raw_properties(ALL_TYPES_TABLE, delivery_mode=1)) == 1


def test_delivery_mode_skips_continuation_flag_words() -> None:
    assert delivery_mode(b"\x10\x01\x00\x01\x00\x00\x02") == 2


@pytest.mark.parametrize("properties", [b"", b"\x10", b"\x10\x00", b"\x30\x00\x00\x00", b"\x90\x00\x09ab"])
def test_delivery_mode_on_truncated_bytes_raises_value_error(properties: bytes) -> None:
    with pytest.raises(ValueError):
        delivery_mode(properties)


short_text = st.text(max_size=20).filter(lambda s: len(s.encode()) <= 255)
header_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=30)
    | st.floats(allow_nan=False, width=32),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
properties_strategy = st.builds(
    commands.Basic.Properties,
    content_type=st.none() | short_text,
    content_encoding=st.none() | short_text,
    headers=st.none() | st.dictionaries(st.text(max_size=10), header_values, max_size=6),
    delivery_mode=st.none() | st.sampled_from([1, 2]),
    priority=st.none() | st.integers(0, 255),
    correlation_id=st.none() | short_text,
    reply_to=st.none() | short_text,
    expiration=st.none() | short_text,
    message_id=st.none() | short_text,
    timestamp=st.none()
    | st.datetimes(min_value=datetime.datetime(1970, 1, 2), max_value=datetime.datetime(2100, 1, 1)).map(
        lambda d: d.replace(microsecond=0, tzinfo=datetime.UTC)
    ),
    message_type=st.none() | short_text,
    user_id=st.none() | short_text,
    app_id=st.none() | short_text,
)


@SETTINGS
@given(properties_strategy, st.booleans())
def test_delivery_mode_fast_path_agrees_with_pamqp(props: commands.Basic.Properties, continued: bool) -> None:
    raw = props.marshal()
    if continued:  # announce one more (empty) flag word, as the spec allows
        raw = bytes((raw[0], raw[1] | 1)) + b"\x00\x00" + raw[2:]
    reference = header.ContentHeader()
    reference.unmarshal(struct.pack(">HHQ", 60, 0, 0) + raw)
    assert delivery_mode(raw) == (reference.properties.delivery_mode or 0)
    # the reader accepts it verbatim, and lazy decoding agrees with pamqp on every property
    [event] = events_of(raw_header(1, 0, raw))
    assert event == ContentHeader(1, 60, 0, raw)
    decoded = decode_properties(raw)
    assert decoded == {name: value for name, value in reference.properties if name in decoded}
    assert all(getattr(reference.properties, name) in (None, "") for name, _ in props if name not in decoded)
