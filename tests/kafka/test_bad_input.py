"""Malformed, unknown and oversized input on the Kafka port: the broker answers with Kafka's
error codes where the protocol has one, closes the connection where it does not, and always
keeps serving everyone else."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.kafka import wire
from tests.kafka.conftest import consume_confluent, produce_confluent, unique

MAX_REQUEST = 256 * 1024
MAX_MESSAGE = 64 * 1024


@pytest.fixture(scope="module")
def small_broker() -> Iterator[Any]:
    """A broker with small request and message limits, so that the limits are cheap to hit."""
    from jackalope import Broker

    broker = Broker(kafka_max_request_bytes=MAX_REQUEST, kafka_max_message_bytes=MAX_MESSAGE).start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def bs(small_broker: Any) -> str:
    return str(small_broker.kafka_bootstrap)


def assert_still_serving(bs: str) -> None:
    """A fresh connection gets ApiVersions answered, and a real client round-trips a record."""
    corr, err, apis = wire.parse_api_versions_v0(wire.roundtrip(bs, wire.api_versions_v0(77)))
    assert (corr, err) == (77, 0)
    assert wire.API_PRODUCE in apis and wire.API_API_VERSIONS in apis
    topic = unique("alive")
    produce_confluent(bs, topic, [(b"k", b"still here")])
    assert consume_confluent(bs, topic, 1)[0].value() == b"still here"


def end_offset(bs: str, topic: str) -> int:
    from confluent_kafka import TopicPartition

    from tests.kafka.conftest import confluent_consumer

    c = confluent_consumer(bs)
    try:
        return int(c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1])
    finally:
        c.close()


# -- framing and headers --------------------------------------------------------------------------


def test_api_versions_v0_lists_the_supported_apis(bs: str) -> None:
    corr, err, apis = wire.parse_api_versions_v0(wire.roundtrip(bs, wire.api_versions_v0(5)))
    assert (corr, err) == (5, 0)
    for key in (
        wire.API_PRODUCE,
        1,
        2,
        wire.API_METADATA,
        wire.API_API_VERSIONS,
    ):  # produce, fetch, list offsets
        assert key in apis
        lo, hi = apis[key]
        assert 0 <= lo <= hi


def test_api_versions_with_unsupported_version_gets_unsupported_version(bs: str) -> None:
    """KIP-511: a client's ApiVersions newer than the broker knows gets a v0-format answer with
    UNSUPPORTED_VERSION and the broker's list, so that the client can retry with a version it has."""
    frame = wire.request(wire.API_API_VERSIONS, 127, 9, b"\x00")  # body unparseable at v127 anyway
    corr, err, apis = wire.parse_api_versions_v0(wire.roundtrip(bs, frame))
    assert corr == 9
    assert err == wire.UNSUPPORTED_VERSION
    assert wire.API_API_VERSIONS in apis


def test_unsupported_version_of_another_api_closes_the_connection(bs: str) -> None:
    with wire.connect(bs) as s:
        s.sendall(wire.request(wire.API_METADATA, 999, 1, struct.pack(">i", -1)))
        assert wire.closed_by_peer(s), "an unsupported request version must close the connection"
    assert_still_serving(bs)


def test_unknown_api_key_closes_only_that_connection(bs: str) -> None:
    with wire.connect(bs) as bystander:
        bystander.sendall(wire.api_versions_v0(1))
        assert wire.parse_api_versions_v0(wire.recv_response(bystander))[:2] == (1, 0)
        with wire.connect(bs) as s:
            s.sendall(wire.request(31_000, 0, 1, b"whatever"))
            assert wire.closed_by_peer(s), "an unknown API key must close the connection"
        # the other connection is untouched
        bystander.sendall(wire.api_versions_v0(2))
        assert wire.parse_api_versions_v0(wire.recv_response(bystander))[:2] == (2, 0)
    assert_still_serving(bs)


def test_pipelined_requests_are_answered_in_order(bs: str) -> None:
    frames = wire.api_versions_v0(11) + wire.metadata_v1([], 12) + wire.api_versions_v0(13)
    frames += wire.metadata_v1(None, 14)
    with wire.connect(bs) as s:
        s.sendall(frames)
        corrs = [struct.unpack_from(">i", wire.recv_response(s))[0] for _ in range(4)]
    assert corrs == [11, 12, 13, 14]


def test_truncated_request_body_closes_the_connection(bs: str) -> None:
    # Metadata v1 claiming 5 topic names, carrying none: the size prefix is honest, the body is not
    frame = wire.request(wire.API_METADATA, 1, 1, struct.pack(">i", 5) + b"\x00\x03ab")
    with wire.connect(bs) as s:
        s.sendall(frame)
        assert wire.closed_by_peer(s)
    # a header that stops in the middle of the client id
    payload = struct.pack(">hhih", wire.API_METADATA, 1, 1, 50) + b"short"
    with wire.connect(bs) as s:
        s.sendall(struct.pack(">i", len(payload)) + payload)
        assert wire.closed_by_peer(s)
    # a size prefix announcing more than ever arrives: the client goes away mid-frame
    with wire.connect(bs) as s:
        s.sendall(struct.pack(">i", 1000) + b"\x00\x12\x00\x00")
        s.shutdown(socket.SHUT_WR)
        assert wire.closed_by_peer(s)
    assert_still_serving(bs)


def test_oversized_request_closes_the_connection_before_reading_it(bs: str) -> None:
    with wire.connect(bs) as s:
        s.sendall(struct.pack(">i", MAX_REQUEST + 1) + b"\x00\x12\x00\x00\x00\x00\x00\x01")
        assert wire.closed_by_peer(s), "a size beyond socket.request.max.bytes must close at once"
    with wire.connect(bs) as s:
        s.sendall(struct.pack(">i", -5))
        assert wire.closed_by_peer(s), "a negative size must close the connection"
    with wire.connect(bs) as s:
        s.sendall(struct.pack(">i", 2**31 - 1))
        assert wire.closed_by_peer(s)
    assert_still_serving(bs)


def test_request_just_under_the_limit_is_read(bs: str) -> None:
    """A produce request below socket.request.max.bytes but holding a batch above the message
    limit is read whole and answered with MESSAGE_TOO_LARGE, not dropped."""
    topic = unique("limit")
    batch = wire.record_batch([b"x" * (MAX_MESSAGE + 1000)])
    assert len(batch) < MAX_REQUEST - 200
    corr, parts = wire.parse_produce_v3(wire.roundtrip(bs, wire.produce_v3(topic, 0, batch, 4)))
    assert corr == 4
    assert parts == [(topic, 0, wire.MESSAGE_TOO_LARGE, -1)]


# -- produce validation ---------------------------------------------------------------------------


def _produce(bs: str, topic: str, batch: bytes) -> tuple[int, int]:
    corr, parts = wire.parse_produce_v3(wire.roundtrip(bs, wire.produce_v3(topic, 0, batch, 3)))
    assert corr == 3 and len(parts) == 1
    _, partition, err, base = parts[0]
    assert partition == 0
    return err, base


def test_hand_encoded_produce_is_accepted(bs: str) -> None:
    """The encoder of these tests is right: a well-formed batch goes in, a client reads it."""
    topic = unique("raw-ok")
    assert _produce(bs, topic, wire.record_batch([b"one", b"two"])) == (wire.NO_ERROR, 0)
    assert _produce(bs, topic, wire.record_batch([b"three"])) == (wire.NO_ERROR, 2)
    got = consume_confluent(bs, topic, 3)
    assert [m.value() for m in got] == [b"one", b"two", b"three"]


def test_bad_crc_is_corrupt_message_and_changes_nothing(bs: str) -> None:
    topic = unique("bad-crc")
    assert _produce(bs, topic, wire.record_batch([b"good"])) == (wire.NO_ERROR, 0)
    err, _ = _produce(bs, topic, wire.record_batch([b"bad"], corrupt_crc=True))
    assert err == wire.CORRUPT_MESSAGE
    assert end_offset(bs, topic) == 1
    assert _produce(bs, topic, wire.record_batch([b"after"])) == (wire.NO_ERROR, 1)
    assert [m.value() for m in consume_confluent(bs, topic, 2)] == [b"good", b"after"]


@pytest.mark.parametrize("magic", [0, 1, 3, -1])
def test_wrong_magic_is_invalid_record(bs: str, magic: int) -> None:
    # Kafka's ProduceRequest.validateRecords: v3+ carries magic-2 batches only (INVALID_RECORD)
    topic = unique("magic")
    assert _produce(bs, topic, wire.record_batch([b"good"])) == (wire.NO_ERROR, 0)
    err, _ = _produce(bs, topic, wire.record_batch([b"v"], magic=magic))
    assert err == wire.INVALID_RECORD, err
    assert end_offset(bs, topic) == 1


def test_keyless_record_on_a_compacted_topic_is_invalid_record(bs: str) -> None:
    from confluent_kafka import KafkaError, Producer
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    topic = unique("compacted-keyless")
    admin = AdminClient({"bootstrap.servers": bs})
    admin.create_topics([NewTopic(topic, 1, 1, config={"cleanup.policy": "compact"})])[topic].result(10)
    errors: list[Any] = []
    producer = Producer({"bootstrap.servers": bs, "linger.ms": 0, "message.timeout.ms": 30000})
    producer.produce(topic, value=b"no key", on_delivery=lambda err, _msg: errors.append(err))
    producer.flush(30)
    # INVALID_RECORD is not retriable: librdkafka fails the message at once (CORRUPT_MESSAGE it
    # retried until message.timeout.ms)
    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() == KafkaError.INVALID_RECORD, errors[0]
    assert end_offset(bs, topic) == 0


def test_produce_v8_names_each_keyless_record_on_the_wire(bs: str) -> None:
    """KIP-467 as the bytes say it: a v8 response carries record_errors (batch index and
    message) and the partition's error_message; nothing of the batch is written."""
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    topic = unique("compacted-v8")
    admin = AdminClient({"bootstrap.servers": bs})
    admin.create_topics([NewTopic(topic, 1, 1, config={"cleanup.policy": "compact"})])[topic].result(10)
    batch = wire.record_batch([b"a", b"b", b"c"], keys=[b"k", None, None])
    payload = wire.roundtrip(bs, wire.produce_v3(topic, 0, batch, 8, version=8))
    corr, n_topics = struct.unpack_from(">ii", payload, 0)
    assert (corr, n_topics) == (8, 1)
    (name_len,) = struct.unpack_from(">h", payload, 8)
    pos = 10 + name_len
    n_parts, index, error, base, _append_time, _start = struct.unpack_from(">iihqqq", payload, pos)
    pos += 34
    assert (n_parts, index, error, base) == (1, 0, wire.INVALID_RECORD, -1)
    (n_errors,) = struct.unpack_from(">i", payload, pos)
    pos += 4
    errors = []
    for _ in range(n_errors):
        batch_index, message_len = struct.unpack_from(">ih", payload, pos)
        errors.append((batch_index, payload[pos + 6 : pos + 6 + message_len].decode()))
        pos += 6 + message_len
    assert [i for i, _ in errors] == [1, 2]
    assert all(f"without key in topic partition {topic}-0" in m for _, m in errors)
    (message_len,) = struct.unpack_from(">h", payload, pos)
    assert "2 record errors" in payload[pos + 2 : pos + 2 + message_len].decode()
    assert struct.unpack_from(">i", payload, pos + 2 + message_len) == (0,)  # throttle time
    assert len(payload) == pos + 2 + message_len + 4
    assert end_offset(bs, topic) == 0


def test_record_count_that_lies_is_rejected(bs: str) -> None:
    topic = unique("count")
    assert _produce(bs, topic, wire.record_batch([b"good"])) == (wire.NO_ERROR, 0)
    err, _ = _produce(bs, topic, wire.record_batch([b"a", b"b"], count=5))
    assert err in (wire.CORRUPT_MESSAGE, wire.INVALID_RECORD), err
    assert end_offset(bs, topic) == 1


def test_batch_length_beyond_the_records_field_is_rejected(bs: str) -> None:
    topic = unique("length")
    assert _produce(bs, topic, wire.record_batch([b"good"])) == (wire.NO_ERROR, 0)
    batch = bytearray(wire.record_batch([b"abc"]))
    struct.pack_into(">i", batch, 8, struct.unpack_from(">i", batch, 8)[0] + 100)
    err, _ = _produce(bs, topic, bytes(batch))
    assert err in (wire.CORRUPT_MESSAGE, wire.INVALID_RECORD), err
    assert end_offset(bs, topic) == 1


def test_batch_above_max_message_bytes_is_message_too_large(bs: str) -> None:
    topic = unique("too-large")
    assert _produce(bs, topic, wire.record_batch([b"good"])) == (wire.NO_ERROR, 0)
    err, _ = _produce(bs, topic, wire.record_batch([b"y" * 1000] * 70))  # ~70 KB > 64 KiB
    assert err == wire.MESSAGE_TOO_LARGE
    assert end_offset(bs, topic) == 1
    # and a client sees the same error in its delivery report
    from confluent_kafka import KafkaError

    from tests.kafka.conftest import confluent_producer

    p = confluent_producer(bs, **{"linger.ms": 0})
    reports: list[Any] = []
    p.produce(topic, value=b"z" * (MAX_MESSAGE + 100), on_delivery=lambda e, m: reports.append(e))
    assert p.flush(15) == 0
    assert reports[0] is not None and reports[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert end_offset(bs, topic) == 1


# -- fuzz -----------------------------------------------------------------------------------------

_VALID = [
    wire.api_versions_v0(1),
    wire.metadata_v1(None, 2),
    wire.metadata_v1(["fuzz-topic"], 3),
    wire.produce_v3(
        "fuzz-topic", 0, wire.record_batch([b"hello", b"world"], base_timestamp=1_700_000_000_000)
    ),
]


def _mutate(frame: bytes, flips: list[tuple[int, int]]) -> bytes:
    body = bytearray(frame[4:])
    for pos, val in flips:
        body[pos % len(body)] = val
    return struct.pack(">i", len(body)) + bytes(body)


_frames = st.one_of(
    # anything at all
    st.binary(min_size=1, max_size=300),
    # an honest size prefix around random bytes
    st.binary(min_size=0, max_size=300).map(lambda b: struct.pack(">i", len(b)) + b),
    # a valid header of a real API, then random bytes
    st.tuples(
        st.sampled_from([0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18, 19, 20, 32, 33, 36, 37, 60]),
        st.integers(-2, 20),
        st.binary(max_size=200),
    ).map(lambda t: wire.request(t[0], t[1], 99, t[2])),
    # valid requests with a few bytes changed
    st.tuples(
        st.sampled_from(_VALID),
        st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    ).map(lambda t: _mutate(*t)),
    # valid requests cut short
    st.tuples(st.sampled_from(_VALID), st.integers(1, 200)).map(lambda t: t[0][: max(1, len(t[0]) - t[1])]),
)


def _throw(bs: str, frame: bytes) -> None:
    with wire.connect(bs, timeout=3) as s:
        try:
            s.sendall(frame)
            s.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                if not s.recv(65536):
                    return
        except (ConnectionError, TimeoutError):
            return


@pytest.mark.timeout(120)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(_frames, min_size=1, max_size=3))
def test_fuzzed_requests_never_stop_the_broker(bs: str, frames: list[bytes]) -> None:
    for frame in frames:
        _throw(bs, frame)
    corr, err, _ = wire.parse_api_versions_v0(wire.roundtrip(bs, wire.api_versions_v0(42)))
    assert (corr, err) == (42, 0)


def test_broker_serves_clients_after_the_fuzzing(bs: str) -> None:
    assert_still_serving(bs)
