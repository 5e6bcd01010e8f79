"""Hand-encoded Kafka frames for the bad-input tests: just enough of the protocol, written from
the Kafka protocol guide, to build valid requests and then break them on purpose."""

from __future__ import annotations

import socket
import struct
import time

import crc32c

API_PRODUCE = 0
API_METADATA = 3
API_API_VERSIONS = 18

NO_ERROR = 0
CORRUPT_MESSAGE = 2
MESSAGE_TOO_LARGE = 10
UNSUPPORTED_VERSION = 35
INVALID_REQUEST = 42
UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
INVALID_RECORD = 87


def string(s: str | None) -> bytes:
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def request(
    api_key: int, api_version: int, correlation_id: int, body: bytes, client_id: str = "raw"
) -> bytes:
    """A size-prefixed request with a v1 (non-flexible) header."""
    header = struct.pack(">hhi", api_key, api_version, correlation_id) + string(client_id)
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def api_versions_v0(correlation_id: int = 1) -> bytes:
    return request(API_API_VERSIONS, 0, correlation_id, b"")


def metadata_v1(topics: list[str] | None, correlation_id: int = 1) -> bytes:
    if topics is None:
        body = struct.pack(">i", -1)
    else:
        body = struct.pack(">i", len(topics)) + b"".join(string(t) for t in topics)
    return request(API_METADATA, 1, correlation_id, body)


# -- record batches (magic 2) ---------------------------------------------------------------------


def zigzag_varint(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        b = z & 0x7F
        z >>= 7
        if z:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def record(offset_delta: int, key: bytes | None, value: bytes | None, timestamp_delta: int = 0) -> bytes:
    body = b"\x00" + zigzag_varint(timestamp_delta) + zigzag_varint(offset_delta)
    body += zigzag_varint(-1) if key is None else zigzag_varint(len(key)) + key
    body += zigzag_varint(-1) if value is None else zigzag_varint(len(value)) + value
    body += zigzag_varint(0)  # no headers
    return zigzag_varint(len(body)) + body


def record_batch(
    values: list[bytes],
    *,
    base_timestamp: int | None = None,
    magic: int = 2,
    corrupt_crc: bool = False,
    count: int | None = None,
    producer: tuple[int, int, int] = (-1, -1, -1),
    keys: list[bytes | None] | None = None,
) -> bytes:
    """A RecordBatch v2; ``producer`` is (producer id, epoch, base sequence) for idempotence;
    the records have no key unless ``keys`` gives them."""
    ts = int(time.time() * 1000) if base_timestamp is None else base_timestamp
    keys = keys or [None] * len(values)
    records = b"".join(record(i, k, v) for i, (k, v) in enumerate(zip(keys, values, strict=True)))
    after_crc = struct.pack(
        ">hiqqqhii",
        0,  # attributes: no compression, CreateTime
        len(values) - 1,  # last offset delta
        ts,
        ts,
        *producer,  # producer id, producer epoch, base sequence
        len(values) if count is None else count,
    )
    after_crc += records
    crc = crc32c.crc32c(after_crc)
    if corrupt_crc:
        crc ^= 0xDEADBEEF
    # baseOffset, batchLength, partitionLeaderEpoch, magic, crc
    batch_length = 4 + 1 + 4 + len(after_crc)
    return struct.pack(">qiibI", 0, batch_length, -1, magic, crc) + after_crc


def produce_v3(
    topic: str, partition: int, records: bytes, correlation_id: int = 1, acks: int = -1, version: int = 3
) -> bytes:
    """A Produce request of one partition; v3 to v8 have the same (non-flexible) layout."""
    assert 3 <= version <= 8
    body = string(None) + struct.pack(">hi", acks, 10000)
    body += struct.pack(">i", 1) + string(topic)
    body += struct.pack(">i", 1) + struct.pack(">i", partition) + struct.pack(">i", len(records)) + records
    return request(API_PRODUCE, version, correlation_id, body)


def parse_produce_v3(payload: bytes) -> tuple[int, list[tuple[str, int, int, int]]]:
    """-> (correlation id, [(topic, partition, error_code, base_offset)])"""
    corr, n_topics = struct.unpack_from(">ii", payload, 0)
    pos = 8
    out = []
    for _ in range(n_topics):
        (tlen,) = struct.unpack_from(">h", payload, pos)
        name = payload[pos + 2 : pos + 2 + tlen].decode()
        pos += 2 + tlen
        (n_parts,) = struct.unpack_from(">i", payload, pos)
        pos += 4
        for _ in range(n_parts):
            part, err, base, _append_time = struct.unpack_from(">ihqq", payload, pos)
            pos += 22
            out.append((name, part, err, base))
    return corr, out


def parse_api_versions_v0(payload: bytes) -> tuple[int, int, dict[int, tuple[int, int]]]:
    """-> (correlation id, error code, {api_key: (min, max)})"""
    corr, err, n = struct.unpack_from(">ihi", payload, 0)
    apis = {}
    for i in range(max(n, 0)):
        key, lo, hi = struct.unpack_from(">hhh", payload, 10 + 6 * i)
        apis[key] = (lo, hi)
    return corr, err, apis


# -- sockets --------------------------------------------------------------------------------------


def connect(bootstrap: str, timeout: float = 5) -> socket.socket:
    host, port = bootstrap.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.settimeout(timeout)
    return s


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def recv_response(sock: socket.socket) -> bytes:
    (size,) = struct.unpack(">i", recv_exact(sock, 4))
    return recv_exact(sock, size)


def roundtrip(bootstrap: str, frame: bytes) -> bytes:
    with connect(bootstrap) as s:
        s.sendall(frame)
        return recv_response(s)


def closed_by_peer(sock: socket.socket, timeout: float = 5) -> bool:
    """True if the broker closes the connection (EOF or reset) within ``timeout`` without
    sending a response first; False if it sends anything or stays silent."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return data == b""
