"""The sans-IO Kafka codec: framing, request headers, response headers, decoder robustness."""

from __future__ import annotations

import contextlib
import datetime
import io
import struct
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kio.schema.api_versions.v3 import response as api_versions_v3
from kio.schema.metadata.v1.request import MetadataRequest as MetadataV1
from kio.schema.metadata.v1.request import MetadataRequestTopic as TopicV1
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
from kio.schema.request_header.v1.header import RequestHeader as HeaderV1
from kio.schema.request_header.v2.header import RequestHeader as HeaderV2
from kio.serial import entity_writer

from jackalope.kafka import fetch_response, protocol
from jackalope.kafka.protocol import ApiKey, ErrorCode, FrameError, RequestError


def encode_request(header: object, body: object) -> bytes:
    out = io.BytesIO()
    entity_writer(type(header))(out, header)
    entity_writer(type(body))(out, body)
    return out.getvalue()


def produce_frame(correlation_id: int = 7) -> bytes:
    body = ProduceRequest(
        transactional_id=None,
        acks=-1,
        timeout=datetime.timedelta(seconds=5),
        topic_data=(
            TopicProduceData(name="t", partition_data=(PartitionProduceData(index=3, records=b"r" * 80),)),
        ),
    )
    header = HeaderV2(request_api_key=0, request_api_version=9, correlation_id=correlation_id, client_id="me")
    return encode_request(header, body)


def metadata_v1_frame() -> bytes:
    header = HeaderV1(request_api_key=3, request_api_version=1, correlation_id=42, client_id=None)
    return encode_request(header, MetadataV1(topics=(TopicV1(name="a"), TopicV1(name="b"))))


def test_parse_flexible_request() -> None:
    request = protocol.parse_request(produce_frame())
    assert (request.api_key, request.api_version, request.correlation_id) == (0, 9, 7)
    assert request.client_id == "me"
    partition = request.body.topic_data[0].partition_data[0]
    assert (partition.index, bytes(partition.records)) == (3, b"r" * 80)


def test_parse_non_flexible_request_with_null_client_id() -> None:
    request = protocol.parse_request(metadata_v1_frame())
    assert request.client_id is None
    assert [t.name for t in request.body.topics] == ["a", "b"]


def test_bytes_after_the_body_are_ignored_as_kafka_does() -> None:
    # librdkafka 2.x sends Metadata v12 for every topic with three extra bytes
    frame = bytes.fromhex("0003000c00000003000772646b61666b610000000000010000")
    request = protocol.parse_request(frame)
    assert request.body.topics is None and request.correlation_id == 3


def test_unknown_api_is_a_request_error() -> None:
    frame = struct.pack(">hhih", 999, 0, 1, -1)
    with pytest.raises(RequestError):
        protocol.parse_request(frame)


def test_read_frames_splits_and_keeps_the_partial_tail() -> None:
    a, b = produce_frame(1), produce_frame(2)
    stream = bytearray(struct.pack(">i", len(a)) + a + struct.pack(">i", len(b)) + b[:10])
    frames = protocol.read_frames(stream, 1 << 20)
    assert frames == [a]
    assert bytes(stream) == struct.pack(">i", len(b)) + b[:10]
    stream += b[10:]
    assert protocol.read_frames(stream, 1 << 20) == [b]
    assert stream == bytearray()


@pytest.mark.parametrize("size", [-1, (1 << 20) + 1])
def test_read_frames_rejects_sizes_outside_the_limit(size: int) -> None:
    with pytest.raises(FrameError):
        protocol.read_frames(bytearray(struct.pack(">i", size) + b"x"), 1 << 20)


def test_api_versions_answers_with_header_v0_and_other_flexible_with_v1() -> None:
    body = protocol.build(api_versions_v3.ApiVersionsResponse, error_code=0, api_keys=(), throttle_time=0)
    frame = protocol.encode_response(ApiKey.API_VERSIONS, 5, body)
    (size, correlation_id) = struct.unpack_from(">ii", frame)
    assert size == len(frame) - 4 and correlation_id == 5
    assert frame[8:10] == b"\0\0"  # the error code follows the correlation id directly
    mod = protocol.response_module(ApiKey.METADATA, 12)
    metadata = protocol.build(
        mod.MetadataResponse, throttle_time=0, brokers=(), cluster_id="c", controller_id=0, topics=()
    )
    frame = protocol.encode_response(ApiKey.METADATA, 6, metadata)
    assert frame[8] == 0  # empty tagged fields of response header v1


def test_build_coerces_plain_ints() -> None:
    mod = protocol.response_module(ApiKey.PRODUCE, 9)
    partition = protocol.build(
        mod.PartitionProduceResponse,
        index=0,
        error_code=2,
        base_offset=5,
        log_append_time=1_700_000_000_000,
        log_start_offset=0,
        record_errors=(),
        error_message=None,
    )
    assert partition.error_code is ErrorCode.corrupt_message
    assert partition.log_append_time == datetime.datetime.fromtimestamp(1_700_000_000, datetime.UTC)
    assert protocol.ms(datetime.timedelta(seconds=1.5)) == 1500


SAMPLES = [produce_frame(), metadata_v1_frame()]


@settings(max_examples=500, deadline=None)
@given(
    sample=st.sampled_from(SAMPLES),
    edits=st.lists(
        st.tuples(st.integers(0, 10_000), st.integers(0, 255), st.sampled_from("sdi")), max_size=6
    ),
)
def test_mutated_requests_decode_or_raise_request_error(
    sample: bytes, edits: list[tuple[int, int, str]]
) -> None:
    data = bytearray(sample)
    for pos, value, op in edits:
        pos = pos % (len(data) + 1)
        if op == "s" and pos < len(data):
            data[pos] = value
        elif op == "d":
            del data[pos:]
        else:
            data.insert(pos, value)
    with contextlib.suppress(RequestError):
        protocol.parse_request(bytes(data))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_decode_or_raise_request_error(data: bytes) -> None:
    with contextlib.suppress(RequestError):
        protocol.parse_request(data)


def test_metadata_v12_round_trip_through_the_reader() -> None:
    header = HeaderV2(request_api_key=3, request_api_version=12, correlation_id=9, client_id="c")
    body = MetadataRequest(
        topics=(MetadataRequestTopic(topic_id=None, name="x"),),
        allow_auto_topic_creation=False,
        include_topic_authorized_operations=False,
    )
    request = protocol.parse_request(encode_request(header, body))
    assert request.body == body


# -- the hand-written FetchResponse encoder agrees with the schema-generated one -------------

partition_data = st.builds(
    fetch_response.PartitionData,
    index=st.integers(0, 2**31 - 1),
    error_code=st.sampled_from([0, 1, 3, 56]),
    high_watermark=st.integers(-1, 2**63 - 1),
    last_stable_offset=st.integers(-1, 2**63 - 1),
    log_start_offset=st.integers(-1, 2**63 - 1),
    records=st.binary(max_size=300),
    aborted_transactions=st.none()
    | st.lists(st.tuples(st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1)), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(
    version=st.integers(fetch_response.MIN_VERSION, fetch_response.MAX_VERSION),
    correlation_id=st.integers(-(2**31), 2**31 - 1),
    topics=st.lists(
        st.tuples(st.text(max_size=20) | st.uuids(), st.lists(partition_data, max_size=4)), max_size=4
    ),
    error_code=st.sampled_from([0, 70, 71]),
    session_id=st.integers(0, 2**31 - 1),
)
def test_fetch_response_matches_kio(
    version: int,
    correlation_id: int,
    topics: list[tuple[str | uuid.UUID, list[fetch_response.PartitionData]]],
    error_code: int,
    session_id: int,
) -> None:
    # v13+ names topics by id, earlier versions by name
    ids = version >= fetch_response.TOPIC_IDS_VERSION
    topics = [
        (
            (key if isinstance(key, uuid.UUID) else uuid.uuid5(uuid.NAMESPACE_OID, key)) if ids else str(key),
            parts,
        )
        for key, parts in topics
    ]
    mine = b"".join(
        fetch_response.encode(version, correlation_id, topics, error_code=error_code, session_id=session_id)
    )
    mod = protocol.response_module(ApiKey.FETCH, version)
    body = protocol.build(
        mod.FetchResponse,
        throttle_time=0,
        error_code=error_code,
        session_id=session_id,
        responses=tuple(
            protocol.build(
                mod.FetchableTopicResponse,
                topic=None if ids else name,
                topic_id=name if ids else None,
                partitions=tuple(
                    protocol.build(
                        mod.PartitionData,
                        partition_index=p.index,
                        error_code=p.error_code,
                        high_watermark=p.high_watermark,
                        last_stable_offset=p.last_stable_offset,
                        log_start_offset=p.log_start_offset,
                        aborted_transactions=None
                        if p.aborted_transactions is None
                        else tuple(
                            protocol.build(mod.AbortedTransaction, producer_id=pid, first_offset=first)
                            for pid, first in p.aborted_transactions
                        ),
                        preferred_read_replica=-1,
                        records=p.records,
                    )
                    for p in partitions
                ),
            )
            for name, partitions in topics
        ),
    )
    assert mine == protocol.encode_response(ApiKey.FETCH, correlation_id, body)


def test_build_refuses_a_field_no_version_has() -> None:
    from jackalope.kafka import protocol

    assert protocol.STRICT_FIELDS  # tests/conftest.py turns the check on
    v3 = protocol.response_module(protocol.ApiKey.PRODUCE, 3)
    # record_errors exists only from v8: accepted (and dropped) at v3
    built = protocol.build(
        v3.PartitionProduceResponse, index=0, error_code=0, base_offset=1, record_errors=()
    )
    assert built.base_offset == 1
    with pytest.raises(TypeError, match="base_ofset"):
        protocol.build(v3.PartitionProduceResponse, index=0, error_code=0, base_ofset=1)
