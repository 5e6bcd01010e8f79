"""A hand-written encoder for FetchResponse v4-v18, the one response that carries bulk data.

kio would copy every stored batch into one buffer; this encoder returns a list of chunks in
which the stored record batches are what the fetch read: ranges of the segment files, which
the connection sends with ``os.sendfile``, or bytes (over TLS).  The layout follows Kafka's
``FetchResponse.json`` (flexible from v12: compact arrays and strings, tagged fields; topics
named by topic id from v13).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from jackalope.storage import FileSlice

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_HEADER = struct.Struct(">ii")  # size, correlation id
_PARTITION_V4 = struct.Struct(">ihqq")  # index, error, high watermark, last stable offset
_I64 = struct.Struct(">q")
_ABORTED = struct.Struct(">qq")  # producer id, first offset

MIN_VERSION = 4
MAX_VERSION = 18  # v18 only adds a follower's high watermark to the request
TOPIC_IDS_VERSION = 13


@dataclass(slots=True)
class PartitionData:
    index: int
    error_code: int
    high_watermark: int
    last_stable_offset: int
    log_start_offset: int
    records: bytes | FileSlice  # a file range is sent as it is stored, with os.sendfile
    # read_committed: (producer id, first offset) of the aborted transactions in the records;
    # None (read_uncommitted) is sent as a null array, as Kafka does
    aborted_transactions: Sequence[tuple[int, int]] | None = field(default=None)


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode(
    version: int,
    correlation_id: int,
    topics: Sequence[tuple[str | uuid.UUID, Sequence[PartitionData]]],
    *,
    error_code: int = 0,
    session_id: int = 0,
) -> list[bytes | FileSlice]:
    """The size-prefixed response frame as chunks: bytes, and the records as given.

    A topic is given by name (v4-v12) or by topic id (v13+)."""
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise ValueError(f"FetchResponse v{version} is not supported")
    flexible = version >= 12
    chunks: list[bytes | FileSlice] = []
    head = bytearray(_HEADER.pack(0, correlation_id))
    if flexible:
        head.append(0)  # response header v1: no tagged fields
    head += _I32.pack(0)  # throttle_time_ms
    if version >= 7:
        head += _I16.pack(error_code) + _I32.pack(session_id)
    head += _uvarint(len(topics) + 1) if flexible else _I32.pack(len(topics))
    for topic, partitions in topics:
        if version >= TOPIC_IDS_VERSION:
            assert isinstance(topic, uuid.UUID)
            head += topic.bytes
        else:
            encoded = str(topic).encode()
            head += _uvarint(len(encoded) + 1) if flexible else _I16.pack(len(encoded))
            head += encoded
        head += _uvarint(len(partitions) + 1) if flexible else _I32.pack(len(partitions))
        for p in partitions:
            head += _PARTITION_V4.pack(p.index, p.error_code, p.high_watermark, p.last_stable_offset)
            if version >= 5:
                head += _I64.pack(p.log_start_offset)
            aborted = p.aborted_transactions
            if aborted is None:
                head += b"\x00" if flexible else _I32.pack(-1)
            else:
                head += _uvarint(len(aborted) + 1) if flexible else _I32.pack(len(aborted))
                for producer_id, first_offset in aborted:
                    head += _ABORTED.pack(producer_id, first_offset)
                    if flexible:
                        head.append(0)  # aborted transaction tagged fields
            if version >= 11:
                head += _I32.pack(-1)  # preferred read replica: none
            size = len(p.records)
            head += _uvarint(size + 1) if flexible else _I32.pack(size)
            if size:
                chunks.append(bytes(head))
                chunks.append(p.records)
                head = bytearray()
            if flexible:
                head.append(0)  # partition tagged fields
        if flexible:
            head.append(0)  # topic tagged fields
    if flexible:
        head.append(0)  # response tagged fields
    chunks.append(bytes(head))
    total = sum(len(c) for c in chunks) - 4
    first = chunks[0]
    assert isinstance(first, bytes)  # the response header always comes first
    sized = bytearray(first)
    _I32.pack_into(sized, 0, total)
    chunks[0] = bytes(sized)
    return chunks
