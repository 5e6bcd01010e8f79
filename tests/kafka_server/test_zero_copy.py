"""Fetched batches go out with os.sendfile on plain TCP: whole, in order, even when the
socket fills up, and without leaking the file descriptors of the ranges they came from."""

from __future__ import annotations

import datetime
import os
import struct
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer
from kio.schema.fetch.v4.request import FetchPartition, FetchRequest, FetchTopic

from jackalope import Broker
from jackalope.storage.records import decode_records, iter_batches
from tests.kafka_server.test_pipelining import connect, frame, read_response

TOPIC = "zero-copy"
RECORDS = 3000
VALUE = 1000


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    b = Broker(kafka_port=0).start()
    producer = Producer({"bootstrap.servers": b.kafka_bootstrap, "linger.ms": 5})
    for i in range(RECORDS):
        producer.produce(TOPIC, f"{i:08d}".encode() * (VALUE // 8))
    assert producer.flush(30) == 0
    yield b
    b.stop()


def fetch(correlation_id: int, max_bytes: int = 50 << 20) -> bytes:
    request = FetchRequest(
        replica_id=-1,
        max_wait=datetime.timedelta(milliseconds=10),
        min_bytes=1,
        max_bytes=max_bytes,
        isolation_level=0,
        topics=(
            FetchTopic(
                topic=TOPIC,
                partitions=(FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=max_bytes),),
            ),
        ),
    )
    return frame(1, 4, correlation_id, request)


def records_of(body: bytes) -> list[bytes]:
    # v4: throttle, topics[1]: name, partitions[1]: index, error, hw, lso, aborted[], records
    pos = 4 + 4 + 2 + len(TOPIC) + 4 + 4
    (error,) = struct.unpack_from(">h", body, pos)
    assert error == 0
    pos += 2 + 8 + 8
    (aborted,) = struct.unpack_from(">i", body, pos)
    pos += 4 + max(aborted, 0) * 16
    (size,) = struct.unpack_from(">i", body, pos)
    data = body[pos + 4 : pos + 4 + size]
    assert len(data) == size
    out: list[bytes] = []
    for at, _ in iter_batches(data):
        out += [r.value or b"" for r in decode_records(data, at)]
    return out


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_slow_reader_gets_every_byte_in_order(broker: Broker) -> None:
    with connect(broker) as sock:
        # ten ~3 MB responses pipelined and not read for a while: the socket buffers fill up,
        # so later ranges must queue behind what the transport holds
        sock.sendall(b"".join(fetch(i) for i in range(10)))
        time.sleep(0.5)
        for correlation_id in range(10):
            got, body = read_response(sock)
            assert got == correlation_id
            values = records_of(body)
            assert len(values) == RECORDS
            assert all(v == f"{i:08d}".encode() * (VALUE // 8) for i, v in enumerate(values))


def test_no_descriptor_is_left_open(broker: Broker) -> None:
    def settled() -> int:
        before, deadline = open_fds(), time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = open_fds()
            if now == before:
                return now
            before = now
        return before

    baseline = settled()
    for _ in range(5):
        with connect(broker) as sock:  # read the response
            sock.sendall(fetch(1))
            read_response(sock)
        with connect(broker) as sock:  # hang up before the responses are read
            sock.sendall(fetch(2) + fetch(3) + fetch(4))
    assert settled() <= baseline
