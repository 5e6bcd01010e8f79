"""FrameReader: the protocol header, every event, chunked input and every FrameError."""

from __future__ import annotations

import struct
import warnings

import pytest
from pamqp import base, commands

from jackalope.amqp.constants import (
    FRAME_BODY,
    FRAME_ERROR,
    FRAME_HEARTBEAT,
    FRAME_MIN_SIZE,
    NOT_IMPLEMENTED,
    PROTOCOL_HEADER,
)
from jackalope.amqp.errors import FrameError
from jackalope.amqp.reader import (
    Ack,
    ContentBody,
    ContentHeader,
    FrameReader,
    Heartbeat,
    MethodFrame,
    Nack,
    ProtocolHeader,
    Publish,
    Reject,
    WholeMessage,
)
from jackalope.amqp.writers import build_method, method_frame

from .helpers import (
    FRAME_MAX,
    comparable,
    drain,
    error_of,
    events_of,
    pamqp_content,
    pamqp_method,
    raw_body,
    raw_frame,
    raw_header,
    raw_method,
    sstr,
    table,
    u32,
)

# --- protocol header -----------------------------------------------------------------------


def test_valid_protocol_header_even_byte_by_byte() -> None:
    reader = FrameReader(FRAME_MAX)
    for octet in PROTOCOL_HEADER[:-1]:
        reader.feed(bytes((octet,)))
        assert reader.next_event() is None
    reader.feed(PROTOCOL_HEADER[-1:])
    assert reader.next_event() == ProtocolHeader(True)
    assert reader.next_event() is None


@pytest.mark.parametrize(
    "greeting",
    [
        b"AMQP\x00\x00\x09\x00",  # 0-9-0
        b"AMQP\x01\x01\x00\x09",  # 0-9 (old-style header)
        b"AMQP\x00\x01\x00\x00",  # AMQP 1.0
        b"AMQP\x03\x01\x00\x00",  # AMQP 1.0 SASL
    ],
)
def test_other_protocol_versions_are_invalid(greeting: bytes) -> None:
    reader = FrameReader(FRAME_MAX)
    reader.feed(greeting + raw_frame(FRAME_HEARTBEAT, 0, b""))
    assert reader.next_event() == ProtocolHeader(False)
    assert reader.next_event() is None  # the reader stops: the server answers and closes


@pytest.mark.parametrize("first", [b"G", b"GET / HTTP/1.1\r\n", b"\x16\x03\x01", b"AMQX"])
def test_non_amqp_greeting_is_refused_without_waiting_for_eight_octets(first: bytes) -> None:
    reader = FrameReader(FRAME_MAX)
    reader.feed(first)
    assert reader.next_event() == ProtocolHeader(False)
    reader.feed(b"more")
    assert reader.next_event() is None


def test_partial_amqp_prefix_waits() -> None:
    reader = FrameReader(FRAME_MAX)
    reader.feed(b"AMQ")
    assert reader.next_event() is None


# --- hot-path methods ----------------------------------------------------------------------


@pytest.mark.parametrize("mandatory", [False, True])
@pytest.mark.parametrize("immediate", [False, True])
def test_publish(mandatory: bool, immediate: bool) -> None:
    method = commands.Basic.Publish(
        exchange="amq.topic", routing_key="a.b.c", mandatory=mandatory, immediate=immediate
    )
    assert events_of(pamqp_method(7, method)) == [Publish(7, "amq.topic", "a.b.c", mandatory, immediate)]


def test_publish_to_default_exchange_with_unicode_and_maximal_routing_key() -> None:
    routing_key = "ключ." + "x" * (255 - len("ключ.".encode()))
    assert len(routing_key.encode()) == 255
    data = method_frame(1, build_method(commands.Basic.Publish, routing_key=routing_key))
    assert events_of(data) == [Publish(1, "", routing_key, False, False)]


@pytest.mark.parametrize("multiple", [False, True])
def test_ack(multiple: bool) -> None:
    data = pamqp_method(3, commands.Basic.Ack(2**63 - 1, multiple))  # pamqp packs tags signed
    assert events_of(data) == [Ack(3, 2**63 - 1, multiple)]


def test_delivery_tags_are_unsigned() -> None:
    data = raw_method(1, 60, 80, b"\xff" * 8 + b"\x00")
    assert events_of(data) == [Ack(1, 2**64 - 1, False)]


@pytest.mark.parametrize("multiple", [False, True])
@pytest.mark.parametrize("requeue", [False, True])
def test_nack(multiple: bool, requeue: bool) -> None:
    data = pamqp_method(3, commands.Basic.Nack(42, multiple, requeue))
    assert events_of(data) == [Nack(3, 42, multiple, requeue)]


@pytest.mark.parametrize("requeue", [False, True])
def test_reject(requeue: bool) -> None:
    assert events_of(pamqp_method(3, commands.Basic.Reject(9, requeue))) == [Reject(3, 9, requeue)]


# --- control methods through pamqp ---------------------------------------------------------


CONTROL_METHODS = [
    commands.Connection.StartOk(
        client_properties={
            "product": "pika",
            "capabilities": {"publisher_confirms": True, "consumer_cancel_notify": True},
        },
        mechanism="PLAIN",
        response="\x00guest\x00guest",
        locale="en_US",
    ),
    commands.Connection.TuneOk(channel_max=2047, frame_max=131072, heartbeat=60),
    commands.Connection.Open(virtual_host="/"),
    commands.Connection.Close(200, "Normal shutdown", 0, 0),
    commands.Connection.CloseOk(),
    commands.Channel.Open(),
    commands.Channel.Close(200, "bye", 0, 0),
    commands.Exchange.Declare(exchange="logs", exchange_type="topic", durable=True, arguments={"x": 1}),
    commands.Queue.Declare(
        queue="work",
        durable=True,
        arguments={"x-message-ttl": 60000, "x-dead-letter-exchange": "dlx", "x-max-priority": 10},
    ),
    commands.Queue.Bind(queue="work", exchange="logs", routing_key="#", arguments={"x-match": "all"}),
    commands.Basic.Qos(prefetch_count=100, global_=False),
    commands.Basic.Consume(queue="work", consumer_tag="ctag", no_ack=False, exclusive=True),
    commands.Basic.Cancel("ctag"),
    commands.Basic.Get(queue="work", no_ack=True),
    commands.Basic.Recover(requeue=True),
    commands.Confirm.Select(),
    commands.Tx.Select(),
]


@pytest.mark.parametrize("method", CONTROL_METHODS, ids=lambda m: m.name)
def test_control_methods_decode_with_pamqp(method: base.Frame) -> None:
    [event] = events_of(pamqp_method(5, method))
    assert isinstance(event, MethodFrame)
    assert event.channel == 5
    assert type(event.method) is type(method)
    assert dict(event.method) == dict(method)


def test_names_pamqp_would_refuse_still_decode() -> None:
    # RabbitMQ accepts any UTF-8 queue name; pamqp's constructor would reject this one.
    method = build_method(commands.Queue.Declare, queue="café!", durable=True)
    [event] = events_of(method_frame(1, method))
    assert isinstance(event, MethodFrame)
    assert event.method.queue == "café!"  # type: ignore[attr-defined]


def test_deprecated_method_decodes_without_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        [event] = events_of(raw_method(1, 60, 100, b"\x01"))  # basic.recover-async
    assert isinstance(event, MethodFrame)
    assert event.method.requeue is True  # type: ignore[attr-defined]


# --- content, heartbeat --------------------------------------------------------------------


def test_publish_header_and_body_frames() -> None:
    props = commands.Basic.Properties(content_type="text/plain", delivery_mode=2)
    payload = bytes(range(256)) * 40  # 10240 octets: three body frames at frame_max 4096
    data = pamqp_method(1, commands.Basic.Publish(routing_key="q")) + pamqp_content(1, props, payload, 4096)
    events = events_of(data, frame_max=4096)
    assert events[0] == Publish(1, "", "q", False, False)
    assert events[1] == ContentHeader(1, 60, len(payload), props.marshal())
    bodies = events[2:]
    assert all(isinstance(e, ContentBody) and e.channel == 1 for e in bodies)
    assert [len(e.data) for e in bodies] == [4088, 4088, 2064]  # type: ignore[union-attr]
    assert b"".join(e.data for e in bodies) == payload  # type: ignore[union-attr]


def test_empty_body_has_only_a_header() -> None:
    props = commands.Basic.Properties()
    events = events_of(pamqp_content(2, props, b""))
    assert events == [ContentHeader(2, 60, 0, b"\x00\x00")]


def test_heartbeat() -> None:
    assert events_of(raw_frame(FRAME_HEARTBEAT, 0, b"")) == [Heartbeat()]


def test_chunking_does_not_change_events() -> None:
    props = commands.Basic.Properties(headers={"k": "v"}, delivery_mode=1)
    data = (
        pamqp_method(1, commands.Basic.Publish(exchange="e", routing_key="r"))
        + pamqp_content(1, props, b"x" * 10000, 4096)
        + pamqp_method(1, commands.Basic.Ack(1, False))
        + raw_frame(FRAME_HEARTBEAT, 0, b"")
        + pamqp_method(0, commands.Connection.CloseOk())
    )
    whole = events_of(data, frame_max=4096)
    for size in (1, 2, 7, 8, 13, 4096):
        reader = FrameReader(4096)
        reader.feed(PROTOCOL_HEADER)
        got = drain(reader)
        for i in range(0, len(data), size):
            reader.feed(memoryview(data)[i : i + size])
            got += drain(reader)
        assert comparable(got[1:]) == comparable(whole), size


def test_buffer_stays_bounded_when_fed_frame_by_frame() -> None:
    frame = raw_body(1, b"y" * 1000)
    reader = FrameReader(FRAME_MAX)
    reader.feed(PROTOCOL_HEADER)
    drain(reader)
    for _ in range(1000):
        reader.feed(frame[:500])
        assert reader.next_event() is None
        reader.feed(frame[500:])
        assert reader.next_event() is not None
    assert len(reader._buf) <= 2 * len(frame)  # consumed bytes are dropped, not kept


# --- frame size ----------------------------------------------------------------------------


def test_payload_of_exactly_frame_max_is_accepted_like_rabbitmq() -> None:
    assert events_of(raw_body(1, b"z" * 4096), frame_max=4096) == [ContentBody(1, b"z" * 4096)]


def test_oversized_frame_is_refused_from_its_header_alone() -> None:
    reader = FrameReader(4096)
    reader.feed(PROTOCOL_HEADER + struct.pack(">BHI", FRAME_BODY, 1, 4097))
    assert reader.next_event() == ProtocolHeader(True)
    with pytest.raises(FrameError) as info:
        reader.next_event()
    assert info.value.reply_code == FRAME_ERROR
    assert "4097" in info.value.reply_text


def test_frame_max_can_be_raised_after_tune() -> None:
    reader = FrameReader(FRAME_MIN_SIZE)
    reader.feed(PROTOCOL_HEADER + raw_body(1, b"a" * 10000))
    assert reader.next_event() == ProtocolHeader(True)
    reader.frame_max = FRAME_MAX
    assert reader.frame_max == FRAME_MAX
    assert reader.next_event() == ContentBody(1, b"a" * 10000)


@pytest.mark.parametrize("value", [0, 8, -1])
def test_frame_max_must_leave_room_for_a_payload(value: int) -> None:
    with pytest.raises(ValueError):
        FrameReader(value)
    reader = FrameReader(FRAME_MAX)
    with pytest.raises(ValueError):
        reader.frame_max = value


# --- errors --------------------------------------------------------------------------------


def test_bad_frame_end_poisons_the_reader() -> None:
    good = pamqp_method(1, commands.Basic.Ack(1, False))
    reader = FrameReader(FRAME_MAX)
    reader.feed(PROTOCOL_HEADER + good + raw_body(1, b"abc", end=0x00) + good)
    assert drain_until_error(reader) == [ProtocolHeader(True), Ack(1, 1, False)]
    first = reader_error(reader)
    assert first.reply_code == FRAME_ERROR
    assert reader_error(reader) is first  # framing is lost: every later call fails the same way


def drain_until_error(reader: FrameReader) -> list[object]:
    seen: list[object] = []
    try:
        while (event := reader.next_event()) is not None:
            seen.append(event)
    except FrameError:
        pass
    return seen


def reader_error(reader: FrameReader) -> FrameError:
    with pytest.raises(FrameError) as info:
        reader.next_event()
    return info.value


ACK = pamqp_method(1, commands.Basic.Ack(5, True))

RECOVERABLE = {
    "unknown frame type": (raw_frame(4, 1, b"??"), FRAME_ERROR),
    "heartbeat on a channel": (raw_frame(FRAME_HEARTBEAT, 1, b""), FRAME_ERROR),
    "heartbeat with payload": (raw_frame(FRAME_HEARTBEAT, 0, b"x"), FRAME_ERROR),
    "method shorter than ids": (raw_frame(1, 1, b"\x00\x3c"), FRAME_ERROR),
    "unknown method": (raw_method(1, 60, 999, b""), NOT_IMPLEMENTED),
    "unknown class (access.request)": (raw_method(1, 30, 10, sstr("/data") + b"\x00"), NOT_IMPLEMENTED),
    "publish truncated": (raw_method(1, 60, 40, b"\x00\x00" + sstr("ex") + b"\x05ab"), FRAME_ERROR),
    "publish without bits": (raw_method(1, 60, 40, b"\x00\x00" + sstr("ex") + sstr("rk")), FRAME_ERROR),
    "publish with trailing octets": (
        raw_method(1, 60, 40, b"\x00\x00" + sstr("ex") + sstr("rk") + b"\x00\x00"),
        FRAME_ERROR,
    ),
    "publish bad utf-8": (raw_method(1, 60, 40, b"\x00\x00\x00\x02\xff\xfe\x00"), FRAME_ERROR),
    "ack too short": (raw_method(1, 60, 80, b"\x00" * 8), FRAME_ERROR),
    "nack too long": (raw_method(1, 60, 120, b"\x00" * 10), FRAME_ERROR),
    "reject empty": (raw_method(1, 60, 90, b""), FRAME_ERROR),
    "qos with trailing octets": (raw_method(1, 60, 10, b"\x00" * 8), FRAME_ERROR),
    "queue.declare truncated": (raw_method(1, 50, 10, b"\x00\x00" + sstr("q")), FRAME_ERROR),
    "queue.declare bad table tag": (
        raw_method(1, 50, 10, b"\x00\x00" + sstr("q") + b"\x00" + table(("k", b"Z\x00"))),
        FRAME_ERROR,
    ),
    "queue.declare table overruns": (
        raw_method(1, 50, 10, b"\x00\x00" + sstr("q") + b"\x00" + u32(50) + sstr("k") + b"V"),
        FRAME_ERROR,
    ),
    "queue.declare nested table overruns": (
        raw_method(1, 50, 10, b"\x00\x00" + sstr("q") + b"\x00" + table(("k", b"F" + u32(9) + b"\x00"))),
        FRAME_ERROR,
    ),
    "bad utf-8 in a table key": (
        raw_method(1, 50, 10, b"\x00\x00" + sstr("q") + b"\x00" + u32(3) + b"\x01\xffV"),
        FRAME_ERROR,
    ),
    "header shorter than 14": (raw_frame(2, 1, b"\x00\x3c\x00\x00" + b"\x00" * 8), FRAME_ERROR),
    "header with weight": (raw_header(1, 0, b"\x00\x00", weight=1), FRAME_ERROR),
    "property flags without values": (raw_header(1, 0, b"\x80\x00"), FRAME_ERROR),
    "property list too long": (raw_header(1, 0, b"\x10\x00\x02\x00"), FRAME_ERROR),
    "shortstr property overruns": (raw_header(1, 0, b"\x80\x00\x05ab"), FRAME_ERROR),
    "headers table overruns": (raw_header(1, 0, b"\x20\x00" + u32(10) + b"\x00"), FRAME_ERROR),
    "continuation flag word missing": (raw_header(1, 0, b"\x10\x01"), FRAME_ERROR),
    "continuation word with properties": (raw_header(1, 0, b"\x00\x01\x80\x00"), FRAME_ERROR),
}


@pytest.mark.parametrize("case", RECOVERABLE, ids=list(RECOVERABLE))
def test_errors_in_well_delimited_frames_leave_the_reader_usable(case: str) -> None:
    frame, code = RECOVERABLE[case]
    reader = FrameReader(FRAME_MAX)
    reader.feed(PROTOCOL_HEADER + frame + ACK)
    assert reader.next_event() == ProtocolHeader(True)
    error = reader_error(reader)
    assert error.reply_code == code
    assert reader.next_event() == Ack(1, 5, True)  # e.g. the client's connection.close-ok


def test_not_implemented_names_the_method() -> None:
    error = error_of(raw_method(1, 60, 999, b""))
    assert (error.reply_code, error.class_id, error.method_id) == (NOT_IMPLEMENTED, 60, 999)


def test_malformed_method_names_the_method() -> None:
    error = error_of(raw_method(1, 60, 80, b""))
    assert (error.reply_code, error.class_id, error.method_id) == (FRAME_ERROR, 60, 80)
    assert error.reply_text.startswith("FRAME_ERROR - cannot decode")


def test_headers_table_contents_are_left_to_decode_properties() -> None:
    # The reader checks the property list down to the table's length only (the hot path);
    # decode_properties checks the contents.
    properties = b"\x20\x00" + table(("k", b"Z"))
    assert events_of(raw_header(1, 0, properties)) == [ContentHeader(1, 60, 0, properties)]


def test_continuation_flag_word_is_skipped() -> None:
    properties = b"\x10\x01\x00\x00\x02"  # delivery-mode, then an empty continuation word
    assert events_of(raw_header(1, 0, properties)) == [ContentHeader(1, 60, 0, properties)]


def test_content_header_of_another_class_is_passed_on_unchecked() -> None:
    # No class but basic has content in 0-9-1; the server refuses it as UNEXPECTED_FRAME.
    assert events_of(raw_header(1, 0, b"??", class_id=50)) == [ContentHeader(1, 50, 0, b"??")]


# --- a whole message at once ---------------------------------------------------------------


def test_a_message_found_whole_is_one_event() -> None:
    props = commands.Basic.Properties(delivery_mode=2)
    data = pamqp_method(3, commands.Basic.Publish(routing_key="q", mandatory=True)) + pamqp_content(
        3, props, b"hello"
    )
    assert events_of(data) == [WholeMessage(3, Publish(3, "", "q", True, False), props.marshal(), b"hello")]
    empty = pamqp_method(3, commands.Basic.Publish(routing_key="q")) + pamqp_content(3, props, b"")
    assert events_of(empty) == [WholeMessage(3, Publish(3, "", "q", False, False), props.marshal(), b"")]


@pytest.mark.parametrize(
    "case",
    ["partial", "other channel", "two body frames", "malformed properties", "body of another channel"],
)
def test_anything_unusual_stays_frame_by_frame(case: str) -> None:
    props = commands.Basic.Properties(delivery_mode=1)
    publish = pamqp_method(1, commands.Basic.Publish(routing_key="q"))
    content = pamqp_content(1, props, b"body")
    if case == "partial":
        data = publish + content[:-1]
    elif case == "other channel":
        data = publish + pamqp_content(2, props, b"body")
    elif case == "two body frames":
        data = publish + pamqp_content(1, props, b"x" * 5000, 4096)
    elif case == "malformed properties":
        data = publish + raw_header(1, 4, b"\x80\x00") + raw_body(1, b"body")  # content-type flag, no value
    else:
        data = publish + raw_header(1, 4, props.marshal()) + raw_body(2, b"body")
    reader = FrameReader(FRAME_MAX)
    reader.feed(PROTOCOL_HEADER + data)
    assert reader.next_event() == ProtocolHeader(True)
    assert reader.next_event() == Publish(1, "", "q", False, False)
