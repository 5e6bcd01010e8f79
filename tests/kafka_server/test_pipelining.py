"""Pipelined requests on one connection: answered in request order, whatever their speed."""

from __future__ import annotations

import datetime
import io
import socket
import struct
from collections.abc import Iterator

import pytest
from kio.schema.fetch.v4.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.metadata.v1.request import MetadataRequest, MetadataRequestTopic
from kio.schema.request_header.v1.header import RequestHeader
from kio.serial import entity_writer

from jackalope import Broker


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    b = Broker(kafka_port=0).start()
    yield b
    b.stop()


def frame(api_key: int, version: int, correlation_id: int, body: object) -> bytes:
    out = io.BytesIO()
    header = RequestHeader(
        request_api_key=api_key, request_api_version=version, correlation_id=correlation_id, client_id="t"
    )
    entity_writer(RequestHeader)(out, header)
    entity_writer(type(body))(out, body)
    payload = out.getvalue()
    return struct.pack(">i", len(payload)) + payload


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "connection closed"
            data += chunk
        return data

    (size,) = struct.unpack(">i", exactly(4))
    body = exactly(size)
    return struct.unpack_from(">i", body)[0], body[4:]


def connect(broker: Broker) -> socket.socket:
    host, port = broker.kafka_bootstrap.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def test_a_slow_fetch_holds_back_later_responses_but_not_their_order(broker: Broker) -> None:
    metadata = MetadataRequest(topics=(MetadataRequestTopic(name="pipelined"),))
    fetch = FetchRequest(
        replica_id=-1,
        max_wait=datetime.timedelta(milliseconds=400),
        min_bytes=1,
        max_bytes=1 << 20,
        isolation_level=0,
        topics=(
            FetchTopic(
                topic="pipelined",
                partitions=(FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20),),
            ),
        ),
    )
    with connect(broker) as sock:
        sock.sendall(frame(3, 1, 1, metadata))  # auto-creates the topic
        assert read_response(sock)[0] == 1
        # a fetch that waits 400 ms for data, then two quick requests behind it
        sock.sendall(
            frame(1, 4, 2, fetch) + frame(3, 1, 3, metadata) + frame(18, 0, 4, object_api_versions())
        )
        order = [read_response(sock)[0] for _ in range(3)]
    assert order == [2, 3, 4]


def object_api_versions() -> object:
    from kio.schema.api_versions.v0.request import ApiVersionsRequest

    return ApiVersionsRequest()


def test_newer_api_versions_gets_a_v0_answer_with_unsupported_version(broker: Broker) -> None:
    with connect(broker) as sock:
        payload = struct.pack(">hhih", 18, 99, 7, -1) + b"\x00\x00\x00"
        sock.sendall(struct.pack(">i", len(payload)) + payload)
        correlation_id, body = read_response(sock)
        assert correlation_id == 7
        (error,) = struct.unpack_from(">h", body)
        assert error == 35  # UNSUPPORTED_VERSION, followed by the versions we do support
        (count,) = struct.unpack_from(">i", body, 2)
        keys = {struct.unpack_from(">h", body, 6 + 6 * i)[0] for i in range(count)}
        assert {0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18} <= keys


def test_unknown_api_closes_only_that_connection(broker: Broker) -> None:
    with connect(broker) as bad, connect(broker) as good:
        payload = struct.pack(">hhih", 999, 0, 1, -1)
        bad.sendall(struct.pack(">i", len(payload)) + payload)
        assert bad.recv(1) == b""
        good.sendall(frame(3, 1, 5, MetadataRequest(topics=None)))
        assert read_response(good)[0] == 5


def test_a_fetch_with_a_partition_error_is_answered_without_waiting(broker: Broker) -> None:
    fetch = FetchRequest(
        replica_id=-1,
        max_wait=datetime.timedelta(minutes=5),  # a wait the socket timeout (10 s) would expose
        min_bytes=1,
        max_bytes=1 << 20,
        isolation_level=0,
        topics=(
            FetchTopic(
                topic="no-such-topic",
                partitions=(FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20),),
            ),
        ),
    )
    with connect(broker) as sock:
        sock.sendall(frame(1, 4, 11, fetch))
        correlation_id, body = read_response(sock)
    assert correlation_id == 11
    # throttle, topic count, name, partition count, partition index, then the error code
    (error,) = struct.unpack_from(">h", body, 4 + 4 + 2 + len("no-such-topic") + 4 + 4)
    assert error == 3  # UNKNOWN_TOPIC_OR_PARTITION
