"""Writers: byte-for-byte equal to pamqp's frames, readable by pika, decodable by our reader."""

from __future__ import annotations

from typing import Any

import pika.frame
import pika.spec
import pytest
from pamqp import base, commands, frame, header, heartbeat

from jackalope.amqp.constants import NO_ROUTE, PROTOCOL_HEADER
from jackalope.amqp.reader import ContentBody, ContentHeader, FrameReader, MethodFrame
from jackalope.amqp.writers import (
    basic_return,
    build_method,
    confirm_ack,
    confirm_nack,
    content_frames,
    deliver,
    get_ok,
    method_frame,
    protocol_header,
    shortstr,
)
from jackalope.amqp.writers import heartbeat as heartbeat_frame

from .helpers import comparable, events_of, pamqp_content, pamqp_method

FRAME_MAX = 4096
CHUNK = FRAME_MAX - 8
BODY_SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5]
PROPS = commands.Basic.Properties(
    content_type="application/json",
    headers={"x-retry": 3, "nested": {"list": [1, "two", None]}},
    delivery_mode=2,
    correlation_id="c-1",
)
RAW_PROPS = PROPS.marshal()


def payload(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


@pytest.mark.parametrize("size", BODY_SIZES)
@pytest.mark.parametrize("redelivered", [False, True])
def test_deliver_matches_pamqp(size: int, redelivered: bool) -> None:
    out = bytearray(b"prefix")  # writers append; they never touch what is already there
    body = payload(size)
    deliver(
        out, 9, shortstr("ctag-1"), 2**63 - 1, redelivered, "amq.topic", "a.b", RAW_PROPS, body, FRAME_MAX
    )
    expected = pamqp_method(
        9, commands.Basic.Deliver("ctag-1", 2**63 - 1, redelivered, "amq.topic", "a.b")
    ) + pamqp_content(9, PROPS, body, FRAME_MAX)
    assert bytes(out) == b"prefix" + expected


@pytest.mark.parametrize("size", BODY_SIZES)
def test_get_ok_matches_pamqp(size: int) -> None:
    out = bytearray()
    body = payload(size)
    get_ok(out, 2, 17, True, "", "work", 4_000_000_000, RAW_PROPS, body, FRAME_MAX)
    expected = pamqp_method(2, commands.Basic.GetOk(17, True, "", "work", 4_000_000_000)) + pamqp_content(
        2, PROPS, body, FRAME_MAX
    )
    assert bytes(out) == expected


@pytest.mark.parametrize("size", BODY_SIZES)
def test_basic_return_matches_pamqp(size: int) -> None:
    out = bytearray()
    body = payload(size)
    basic_return(out, 1, NO_ROUTE, "NO_ROUTE", "logs", "nowhere", RAW_PROPS, body, FRAME_MAX)
    expected = pamqp_method(1, commands.Basic.Return(312, "NO_ROUTE", "logs", "nowhere")) + pamqp_content(
        1, PROPS, body, FRAME_MAX
    )
    assert bytes(out) == expected


@pytest.mark.parametrize("multiple", [False, True])
def test_confirms_match_pamqp(multiple: bool) -> None:
    out = bytearray()
    confirm_ack(out, 3, 12345, multiple)
    confirm_nack(out, 3, 678, multiple)
    # Basic.Nack's requeue defaults to true in the spec, and RabbitMQ sends the default.
    expected = pamqp_method(3, commands.Basic.Ack(12345, multiple)) + pamqp_method(
        3, commands.Basic.Nack(678, multiple)
    )
    assert bytes(out) == expected


@pytest.mark.parametrize("size", BODY_SIZES)
def test_content_frames_match_pamqp(size: int) -> None:
    out = bytearray()
    body = payload(size)
    content_frames(out, 4, 60, RAW_PROPS, body, FRAME_MAX)
    assert bytes(out) == pamqp_content(4, PROPS, body, FRAME_MAX)


def test_heartbeat_and_protocol_header_match_pamqp() -> None:
    assert heartbeat_frame() == heartbeat.Heartbeat.marshal()
    assert protocol_header() == header.ProtocolHeader().marshal() == PROTOCOL_HEADER


SERVER_METHODS: list[base.Frame] = [
    commands.Connection.Start(
        0,
        9,
        {"product": "Jackalope", "capabilities": {"publisher_confirms": True, "basic.nack": True}},
        "PLAIN AMQPLAIN",
        "en_US",
    ),
    commands.Connection.Tune(2047, 131072, 60),
    commands.Connection.OpenOk(),
    commands.Connection.Close(320, "CONNECTION_FORCED - shutdown", 0, 0),
    commands.Connection.CloseOk(),
    commands.Connection.Blocked("low on memory"),
    commands.Channel.OpenOk(),
    commands.Channel.Close(404, "NOT_FOUND - no queue 'q'", 50, 10),
    commands.Channel.FlowOk(True),
    commands.Exchange.DeclareOk(),
    commands.Queue.DeclareOk("amq.gen-abc", 10, 2),
    commands.Queue.PurgeOk(5),
    commands.Basic.QosOk(),
    commands.Basic.ConsumeOk("amq.ctag-1"),
    commands.Basic.Cancel("amq.ctag-1", nowait=True),
    commands.Basic.GetEmpty(),
    commands.Basic.RecoverOk(),
    commands.Confirm.SelectOk(),
    commands.Tx.CommitOk(),
    # eight and more bits in a row
    commands.Exchange.Declare(0, "e", "topic", True, True, True, True, True, {"alternate-exchange": "ae"}),
    commands.Queue.Declare(0, "q", True, False, True, False, True, {}),
]


@pytest.mark.parametrize("method", SERVER_METHODS, ids=lambda m: m.name)
def test_method_frame_matches_pamqp(method: base.Frame) -> None:
    encoded = method_frame(6, method)
    assert encoded == frame.marshal(method, 6)
    assert comparable(events_of(encoded)) == [(6, type(method), dict(method))]


def test_build_method_skips_pamqp_name_validation() -> None:
    with pytest.raises(ValueError):
        commands.Queue.DeclareOk("café!", 0, 0)  # pamqp's client-side rule
    method = build_method(commands.Queue.DeclareOk, queue="café!", message_count=0, consumer_count=0)
    [event] = events_of(method_frame(1, method))
    assert isinstance(event, MethodFrame)
    assert dict(event.method) == {"queue": "café!", "message_count": 0, "consumer_count": 0}
    with pytest.raises(TypeError):
        build_method(commands.Queue.DeclareOk, queue_name="q")


def test_over_long_names_are_refused_not_truncated() -> None:
    with pytest.raises(ValueError):
        deliver(bytearray(), 1, shortstr("t"), 1, False, "", "k" * 256, b"\x00\x00", b"", FRAME_MAX)
    with pytest.raises(ValueError):
        shortstr("é" * 128)


# --- the other side's view -----------------------------------------------------------------


def pika_frames(data: bytes) -> list[Any]:
    frames = []
    while data:
        consumed, decoded = pika.frame.decode_frame(data)
        assert consumed, "pika could not decode a frame"
        frames.append(decoded)
        data = data[consumed:]
    return frames


def test_pika_reads_a_multi_frame_delivery() -> None:
    out = bytearray()
    body = payload(10_000)
    deliver(out, 1, shortstr("ctag"), 7, True, "amq.direct", "ключ", RAW_PROPS, body, FRAME_MAX)
    method, head, *bodies = pika_frames(bytes(out))
    assert isinstance(method.method, pika.spec.Basic.Deliver)
    assert (method.method.consumer_tag, method.method.delivery_tag, method.method.redelivered) == (
        "ctag",
        7,
        True,
    )
    assert (method.method.exchange, method.method.routing_key) == ("amq.direct", "ключ")
    assert head.body_size == len(body)
    assert head.properties.headers == {"x-retry": 3, "nested": {"list": [1, "two", None]}}
    assert head.properties.delivery_mode == 2
    assert b"".join(b.fragment for b in bodies) == body


def test_our_reader_reads_what_we_write() -> None:
    out = bytearray()
    body = payload(9000)
    content_frames(out, 2, 60, RAW_PROPS, body, FRAME_MAX)
    reader = FrameReader(FRAME_MAX)
    reader.feed(PROTOCOL_HEADER + out)
    reader.next_event()
    events = []
    while (event := reader.next_event()) is not None:
        events.append(event)
    assert events[0] == ContentHeader(2, 60, len(body), RAW_PROPS)
    assert b"".join(e.data for e in events[1:] if isinstance(e, ContentBody)) == body
