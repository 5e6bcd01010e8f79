"""Hostile input: whatever bytes arrive, in whatever pieces, the reader yields events or raises
FrameError - never another exception, never an endless loop."""

from __future__ import annotations

import contextlib
import itertools
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pamqp import commands

from jackalope.amqp.constants import FRAME_ERROR, PROTOCOL_HEADER
from jackalope.amqp.errors import FrameError
from jackalope.amqp.properties import decode_properties, delivery_mode
from jackalope.amqp.reader import Event, FrameReader

from .helpers import comparable, pamqp_content, pamqp_method, raw_frame

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FRAME_MAX = 1024

METHOD_IDS = [*sorted(commands.INDEX_MAPPING), 0x003C03E7, 0x001E000A]  # + unknown ones


def run(data: bytes, cuts: list[int], frame_max: int = FRAME_MAX) -> tuple[list[Event], list[FrameError]]:
    """Feed `data` split at `cuts`, draining after every piece, as a server would.

    A reader that raised a framing error raises it again on every call; the run stops there.
    """
    reader = FrameReader(frame_max)
    events: list[Event] = []
    errors: list[FrameError] = []
    bounds = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for start, end in itertools.pairwise(bounds):
        reader.feed(data[start:end])
        # Every event or recoverable error consumes at least 8 octets: this bounds the loop.
        for _ in range(len(data) // 8 + 3):
            try:
                event = reader.next_event()
            except FrameError as exc:
                if errors and errors[-1] is exc:
                    return events, errors
                errors.append(exc)
                continue
            if event is None:
                break
            events.append(event)
        else:
            raise AssertionError("next_event() did not settle")
    return events, errors


@SETTINGS
@given(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=20), st.booleans())
def test_arbitrary_bytes(data: bytes, cuts: list[int], greet: bool) -> None:
    run((PROTOCOL_HEADER if greet else b"") + data, cuts)


frame_types = st.sampled_from([1, 1, 1, 2, 2, 3, 8]) | st.integers(0, 255)


@st.composite
def frame_like(draw: st.DrawFn) -> bytes:
    """Frames with plausible headers and method ids but random arguments: this is what reaches
    the hand decoders and pamqp."""
    frame_type = draw(frame_types)
    payload = draw(st.binary(max_size=200))
    if frame_type == 1 and draw(st.booleans()):
        payload = struct.pack(">I", draw(st.sampled_from(METHOD_IDS))) + payload
    elif frame_type == 2 and draw(st.booleans()):
        payload = struct.pack(">HHQ", 60, 0, draw(st.integers(0, 2**64 - 1))) + payload
    end = draw(st.sampled_from([0xCE] * 9 + [0x00]))
    return raw_frame(frame_type, draw(st.integers(0, 3)), payload, end)


@SETTINGS
@given(st.lists(frame_like(), max_size=12), st.lists(st.integers(0, 5000), max_size=12))
def test_frame_shaped_garbage(frames: list[bytes], cuts: list[int]) -> None:
    run(PROTOCOL_HEADER + b"".join(frames), cuts)


# --- mutations of a valid stream ------------------------------------------------------------

VALID_FRAMES = [
    pamqp_method(0, commands.Connection.StartOk({"product": "x"}, "PLAIN", "\x00u\x00p", "en_US")),
    pamqp_method(
        1, commands.Queue.Declare(queue="q", arguments={"x-max-length": 10, "x-t": [1, {"a": None}]})
    ),
    pamqp_method(1, commands.Basic.Publish(exchange="e", routing_key="k", mandatory=True)),
    pamqp_content(
        1, commands.Basic.Properties(headers={"h": "v"}, delivery_mode=2, priority=1), b"b" * 2000, FRAME_MAX
    ),
    raw_frame(8, 0, b""),
    pamqp_method(1, commands.Basic.Nack(3, True, False)),
]
VALID = PROTOCOL_HEADER + b"".join(VALID_FRAMES)
EXPECTED = comparable(run(VALID, [])[0])


def test_valid_stream_decodes() -> None:
    assert len(EXPECTED) == 1 + 1 + 1 + 1 + 1 + 2 + 1 + 1  # header, 2 methods, publish, content(3), hb, nack


@SETTINGS
@given(st.integers(0, len(VALID)), st.lists(st.integers(0, len(VALID)), max_size=10))
def test_truncation_yields_a_prefix_of_the_events_and_no_error(length: int, cuts: list[int]) -> None:
    events, errors = run(VALID[:length], cuts)
    assert not errors
    assert comparable(events) == EXPECTED[: len(events)]


def frame_starts() -> list[int]:
    starts, pos = [], len(PROTOCOL_HEADER)
    while pos < len(VALID):
        starts.append(pos)
        pos += 8 + struct.unpack_from(">I", VALID, pos + 3)[0]
    return starts


STARTS = frame_starts()


@SETTINGS
@given(st.sampled_from(range(len(STARTS))), st.integers(0, 255).filter(lambda b: b != 0xCE))
def test_flipped_frame_end_stops_the_stream_there(index: int, octet: int) -> None:
    data = bytearray(VALID)
    end = STARTS[index + 1] - 1 if index + 1 < len(STARTS) else len(VALID) - 1
    data[end] = octet
    events, errors = run(bytes(data), [])
    assert comparable(events) == EXPECTED[: 1 + index]
    assert [e.reply_code for e in errors] == [FRAME_ERROR]


@SETTINGS
@given(st.sampled_from(range(len(STARTS))), st.integers(FRAME_MAX + 1, 2**32 - 1))
def test_oversized_length_stops_the_stream_there(index: int, size: int) -> None:
    data = bytearray(VALID)
    struct.pack_into(">I", data, STARTS[index] + 3, size)
    events, errors = run(bytes(data[: STARTS[index] + 7]), [])  # the frame header is enough
    assert comparable(events) == EXPECTED[: 1 + index]
    assert [e.reply_code for e in errors] == [FRAME_ERROR]


@SETTINGS
@given(
    st.lists(st.tuples(st.integers(len(PROTOCOL_HEADER), len(VALID) - 1), st.integers(0, 255)), max_size=6)
)
def test_random_octet_changes_never_escape_frame_error(changes: list[tuple[int, int]]) -> None:
    data = bytearray(VALID)
    for position, octet in changes:
        data[position] = octet
    run(bytes(data), [7, 300, 1000])


@SETTINGS
@given(st.binary(max_size=300), st.booleans())
def test_property_helpers_on_arbitrary_bytes(data: bytes, as_headers_table: bool) -> None:
    if as_headers_table:  # reach the table walker and pamqp's table decoder
        data = b"\x20\x00" + struct.pack(">I", len(data)) + data
    with contextlib.suppress(FrameError):
        decode_properties(data)
    with contextlib.suppress(ValueError):
        assert 0 <= delivery_mode(data) <= 255
