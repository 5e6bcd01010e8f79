"""Kafka RecordBatch v2: the unit Jackalope writes to disk.

A log segment is a plain concatenation of record batches, byte for byte the format Kafka
puts on its disks and on the wire (KIP-98).  The Kafka front-end can therefore serve a fetch
straight from a segment file, and an AMQP message maps onto a record (key, value, headers,
timestamp), so one log reads the same from both protocols.

Batch layout (big-endian; 61-byte header, then ``records count`` records)::

    offset  size  field
         0     8  baseOffset             first offset of the batch (assigned by the log)
         8     4  batchLength            bytes after this field (= total size - 12)
        12     4  partitionLeaderEpoch
        16     1  magic                  always 2
        17     4  crc                    CRC-32C of bytes 21..end (attributes onwards)
        21     2  attributes             bits 0-2 compression, 3 timestamp type (1 = LogAppendTime),
                                         4 transactional, 5 control
        23     4  lastOffsetDelta
        27     8  baseTimestamp
        35     8  maxTimestamp
        43     8  producerId
        51     2  producerEpoch
        53     4  baseSequence
        57     4  records count

The CRC deliberately leaves out baseOffset, batchLength and partitionLeaderEpoch: the log
assigns offsets (and a leader its epoch) without recomputing it.

Each record is varint-framed (zig-zag varints, as protobuf)::

    length varint | attributes int8 | timestampDelta varlong | offsetDelta varint
    | keyLength varint (-1 = null) | key | valueLength varint (-1 = null) | value
    | headerCount varint | (keyLength varint | key utf-8 | valueLength varint | value)*
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

from crc32c import crc32c

from jackalope.storage.compression import compress, decompress
from jackalope.storage.errors import CorruptRecordError

Header = tuple[str, bytes | None]

HEADER: Final = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE: Final = HEADER.size  # 61
LOG_OVERHEAD: Final = 12  # baseOffset + batchLength precede what batchLength counts
MAGIC: Final = 2
CRC_START: Final = 21
CRC_OFFSET: Final = 17
ATTRIBUTES_OFFSET: Final = 21
MAX_TIMESTAMP_OFFSET: Final = 35

COMPRESSION_MASK: Final = 0x07
TIMESTAMP_TYPE_LOG_APPEND: Final = 0x08
TRANSACTIONAL: Final = 0x10
CONTROL: Final = 0x20

_PREFIX = struct.Struct(">qi")  # baseOffset, batchLength
_INT64 = struct.Struct(">q")
_UINT32 = struct.Struct(">I")


class Record(NamedTuple):
    """One message: what producers give the log and what readers get back.

    ``offset`` and ``timestamp`` are filled in by the log; a timestamp given on append is kept
    (CreateTime), a missing one becomes the append time.  (A named tuple: it is made once per
    record on the hot paths, and tuples are the cheapest objects Python makes.)
    """

    value: bytes | None
    key: bytes | None = None
    headers: tuple[Header, ...] = ()
    timestamp: int | None = None
    offset: int = -1


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """The fixed 61-byte header of a record batch, decoded."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int

    @property
    def size(self) -> int:
        """Bytes the whole batch occupies."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK


def parse_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Decode the batch header at ``pos`` (no CRC check; see :func:`validate_batch`)."""
    return BatchHeader(*HEADER.unpack_from(buf, pos))


def batch_size_at(buf: bytes | bytearray | memoryview, pos: int) -> int:
    """Total size of the batch starting at ``pos``, read from its length field."""
    return int(_PREFIX.unpack_from(buf, pos)[1]) + LOG_OVERHEAD


def validate_batch(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Check the batch at ``pos`` is whole, magic 2, and matches its CRC; return its header.

    Individual records are not decoded, so this costs one CRC pass over the bytes.
    """
    available = len(buf) - pos
    if available < HEADER_SIZE:
        raise CorruptRecordError(f"batch header truncated: {available} of {HEADER_SIZE} bytes")
    header = parse_header(buf, pos)
    if header.magic != MAGIC:
        raise CorruptRecordError(f"unsupported record batch magic {header.magic}")
    if header.batch_length < HEADER_SIZE - LOG_OVERHEAD:
        raise CorruptRecordError(f"batch length {header.batch_length} shorter than its header")
    if header.size > available:
        raise CorruptRecordError(f"batch truncated: {available} of {header.size} bytes")
    if header.last_offset_delta < 0 or header.record_count < 0:
        raise CorruptRecordError("negative offset delta or record count")
    view = memoryview(buf)[pos + CRC_START : pos + header.size]
    if crc32c(view) != header.crc:
        raise CorruptRecordError(f"CRC mismatch in batch at offset {header.base_offset}")
    return header


def max_timestamp_of(buf: bytes | bytearray | memoryview, pos: int = 0) -> int:
    """The maxTimestamp field of the batch at ``pos``."""
    return int(_INT64.unpack_from(buf, pos + MAX_TIMESTAMP_OFFSET)[0])


def set_base_offset(buf: bytearray | memoryview, base_offset: int, pos: int = 0) -> None:
    """Assign the batch's offsets in place; the CRC does not cover this field."""
    _INT64.pack_into(buf, pos, base_offset)


def set_log_append_time(buf: bytearray | memoryview, timestamp: int, pos: int = 0) -> None:
    """Mark a batch as LogAppendTime with ``timestamp`` and re-seal its CRC (Kafka does the same)."""
    header = parse_header(buf, pos)
    struct.pack_into(">h", buf, pos + ATTRIBUTES_OFFSET, header.attributes | TIMESTAMP_TYPE_LOG_APPEND)
    _INT64.pack_into(buf, pos + MAX_TIMESTAMP_OFFSET, timestamp)
    end = pos + header.size
    _UINT32.pack_into(buf, pos + CRC_OFFSET, crc32c(memoryview(buf)[pos + CRC_START : end]))


# -- varints -----------------------------------------------------------------------------------

# Zig-zag varints of -8192..8191 (every 1- and 2-byte varint), precomputed: record lengths,
# deltas and sizes almost always fall in this range.
_TABLE_MIN: Final = -8192
_TABLE_MAX: Final = 8191


def _varint_slow(n: int) -> bytes:
    v = ((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


_VARINTS: Final = tuple(_varint_slow(n) for n in range(_TABLE_MIN, _TABLE_MAX + 1))


def varint(n: int) -> bytes:
    """Zig-zag varint encoding of a signed 64-bit integer."""
    if _TABLE_MIN <= n <= _TABLE_MAX:
        return _VARINTS[n - _TABLE_MIN]
    return _varint_slow(n)


def read_varint(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    """Decode a zig-zag varint at ``pos``; return ``(value, next position)``."""
    shift = 0
    v = 0
    while True:
        try:
            b = buf[pos]
        except IndexError:
            raise CorruptRecordError("varint runs past the end of the batch") from None
        pos += 1
        v |= (b & 0x7F) << shift
        if b < 0x80:
            return (v >> 1) ^ -(v & 1), pos
        shift += 7
        if shift > 63:
            raise CorruptRecordError("varint longer than 10 bytes")


# -- encoding ----------------------------------------------------------------------------------

_NULL: Final = b"\x01"  # varint(-1)
_ZERO: Final = b"\x00"  # varint(0), and the unused record attributes byte


_HEADER_NAMES: dict[str, bytes] = {}  # encoded (length + UTF-8) header keys: they repeat


def _header_name(name: str) -> bytes:
    encoded = _HEADER_NAMES.get(name)
    if encoded is None:
        raw = name.encode()
        encoded = varint(len(raw)) + raw
        if len(_HEADER_NAMES) < 4096:
            _HEADER_NAMES[name] = encoded
    return encoded


_TAILS: dict[tuple[Header, ...], bytes] = {}  # encoded header sections, by headers


def _headers_part(headers: tuple[Header, ...]) -> bytes:
    """The count and the headers of a record, encoded."""
    encoded: list[bytes] = [varint(len(headers))]
    for name, hvalue in headers:
        encoded.append(_header_name(name))
        encoded.extend(_bytes_part(hvalue))
    return b"".join(encoded)


def _bytes_part(data: bytes | None) -> tuple[bytes, ...]:
    if data is None:
        return (_NULL,)
    n = len(data)
    return (_VARINTS[n - _TABLE_MIN] if n <= _TABLE_MAX else _varint_slow(n), data)


def _record_parts(parts: list[bytes], record: Record, offset_delta: int, timestamp_delta: int) -> int:
    """Append the pieces of one record to ``parts``; return how many bytes they hold.

    Pieces are joined once per batch: building each record in its own buffer would copy every
    value twice more.  (The common no-header case is inlined in :func:`encode_batch`.)
    """
    vt = _VARINTS
    lo = _TABLE_MIN
    ts_v = vt[timestamp_delta - lo] if lo <= timestamp_delta <= _TABLE_MAX else _varint_slow(timestamp_delta)
    off_v = vt[offset_delta - lo] if offset_delta <= _TABLE_MAX else _varint_slow(offset_delta)
    body = [_ZERO, ts_v, off_v, *_bytes_part(record.key), *_bytes_part(record.value)]
    headers = record.headers
    if headers:
        body.append(varint(len(headers)))
        for name, hvalue in headers:
            body.append(_header_name(name))
            body.extend(_bytes_part(hvalue))
    else:
        body.append(_ZERO)
    joined = b"".join(body)
    size_v = varint(len(joined))
    parts.append(size_v)
    parts.append(joined)
    return len(joined) + len(size_v)


def encode_batch(
    records: Sequence[Record],
    *,
    base_offset: int = 0,
    now_ms: int = 0,
    compression: int = 0,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    attributes: int = 0,
) -> bytearray:
    """Encode ``records`` as one RecordBatch v2 (records without a timestamp get ``now_ms``).

    The result is a ``bytearray`` so that a log can assign its offsets in place.
    """
    if not records:
        raise ValueError("a record batch holds at least one record")
    base_ts = records[0].timestamp
    if base_ts is None:
        base_ts = now_ms
    max_ts = base_ts
    parts: list[bytes] = [b""]  # the batch header, filled in below
    append = parts.append
    vt = _VARINTS
    lo = _TABLE_MIN
    hi = _TABLE_MAX
    size = 0
    for delta, record in enumerate(records):
        ts = record.timestamp
        if ts is None:
            ts = now_ms
        elif ts > max_ts:
            max_ts = ts
        key = record.key
        value = record.value
        if key is None or value is None or delta > hi or not lo <= ts - base_ts <= hi:
            size += _record_parts(parts, record, delta, ts - base_ts)
            continue
        # The common cases, inlined: key and value present, small deltas.
        klen = len(key)
        vlen = len(value)
        ts_v = vt[ts - base_ts - lo]
        off_v = vt[delta - lo]
        k_v = vt[klen - lo] if klen <= hi else _varint_slow(klen)
        v_v = vt[vlen - lo] if vlen <= hi else _varint_slow(vlen)
        headers = record.headers
        if headers:
            tail = _TAILS.get(headers)  # writers repeat their headers (a queue's, for one)
            if tail is None:
                tail = _headers_part(headers)
                if len(tail) <= 1024:
                    if len(_TAILS) >= 1024:
                        _TAILS.clear()
                    _TAILS[headers] = tail
        else:
            tail = _ZERO
        n = 1 + len(ts_v) + len(off_v) + len(k_v) + klen + len(v_v) + vlen + len(tail)
        n_v = vt[n - lo] if n <= hi else _varint_slow(n)
        append(n_v)
        append(_ZERO)
        append(ts_v)
        append(off_v)
        append(k_v)
        append(key)
        append(v_v)
        append(value)
        append(tail)
        size += n + len(n_v)
    if compression:
        parts = [b"", compress(compression, b"".join(parts))]
        size = len(parts[1])
    attributes = (attributes & ~COMPRESSION_MASK) | compression
    parts[0] = HEADER.pack(
        base_offset,
        HEADER_SIZE - LOG_OVERHEAD + size,
        -1,
        MAGIC,
        0,
        attributes,
        len(records) - 1,
        base_ts,
        max_ts,
        producer_id,
        producer_epoch,
        base_sequence,
        len(records),
    )
    out = bytearray().join(parts)
    _UINT32.pack_into(out, CRC_OFFSET, crc32c(memoryview(out)[CRC_START:]))
    return out


# -- decoding ----------------------------------------------------------------------------------


def _read_bytes(buf: bytes | memoryview, pos: int) -> tuple[bytes | None, int]:
    length, pos = read_varint(buf, pos)
    if length < 0:
        return None, pos
    end = pos + length
    if end > len(buf):
        raise CorruptRecordError("field runs past the end of the record")
    return bytes(buf[pos:end]), end


_new_record = tuple.__new__
_HEADER_KEYS: dict[bytes, str] = {}  # decoded header keys: they repeat


def decode_records(
    buf: bytes | bytearray | memoryview, pos: int = 0, *, verify: bool = True, start: int = -1
) -> Iterator[Record]:
    """Yield the records of the batch at ``pos`` with absolute offsets and timestamps.

    Records below offset ``start`` are skipped without being built (a reader resuming in the
    middle of a batch).  The hot path of every reader: one-byte varints are decoded inline,
    and two-byte ones where sizes of 64 to 8191 are common (record and value lengths, offset
    deltas in batches of more than 64 records, header values such as AMQP properties)."""
    header = validate_batch(buf, pos) if verify else parse_header(buf, pos)
    data: bytes
    if header.compression:
        data = decompress(header.compression, memoryview(buf)[pos + HEADER_SIZE : pos + header.size])
        p = 0
        limit = len(data)
    elif type(buf) is bytes:
        data = buf  # slices of bytes are bytes: no view, no second copy
        p = pos + HEADER_SIZE
        limit = pos + header.size
    else:
        data = bytes(memoryview(buf)[pos + HEADER_SIZE : pos + header.size])
        p = 0
        limit = len(data)
    log_append_time = bool(header.attributes & TIMESTAMP_TYPE_LOG_APPEND)
    base_offset = header.base_offset
    base_ts = header.base_timestamp
    skip_below = start - base_offset if start > base_offset >= 0 else -1
    read = read_varint
    try:
        for _ in range(header.record_count):
            b = data[p] if p < limit else 0x80
            if b < 0x80:
                length = (b >> 1) ^ -(b & 1)
                p += 1
            else:
                b2 = data[p + 1]
                if b2 < 0x80:  # two bytes: lengths up to 8191
                    v = (b & 0x7F) | (b2 << 7)
                    length = (v >> 1) ^ -(v & 1)
                    p += 2
                else:
                    length, p = read(data, p)
            end = p + length
            if length < 0 or end > limit:
                raise CorruptRecordError("record length runs past the end of the batch")
            p += 1  # record attributes, unused
            b = data[p]
            if b < 0x80:
                ts_delta = (b >> 1) ^ -(b & 1)
                p += 1
            else:
                ts_delta, p = read(data, p)
            b = data[p]
            if b < 0x80:
                offset_delta = (b >> 1) ^ -(b & 1)
                p += 1
            else:
                b2 = data[p + 1]
                if b2 < 0x80:
                    v = (b & 0x7F) | (b2 << 7)
                    offset_delta = (v >> 1) ^ -(v & 1)
                    p += 2
                else:
                    offset_delta, p = read(data, p)
            if offset_delta < skip_below:
                p = end
                continue
            # key, value: a length (-1: null) then the bytes
            b = data[p]
            if b < 0x80:
                n = (b >> 1) ^ -(b & 1)
                p += 1
            else:
                n, p = read(data, p)
            if n < 0:
                key = None
            else:
                key = data[p : p + n]
                p += n
            b = data[p] if p < end else 0x80
            if b < 0x80:
                n = (b >> 1) ^ -(b & 1)
                p += 1
            else:
                b2 = data[p + 1]
                if b2 < 0x80:  # two bytes: lengths up to 8191
                    v = (b & 0x7F) | (b2 << 7)
                    n = (v >> 1) ^ -(v & 1)
                    p += 2
                else:
                    n, p = read(data, p)
            if n < 0:
                value = None
            else:
                value = data[p : p + n]
                p += n
            b = data[p] if p < end else 0x80
            if b == 0:
                headers: tuple[Header, ...] = ()
                p += 1
            else:
                if b < 0x80:
                    count = (b >> 1) ^ -(b & 1)
                    p += 1
                else:
                    count, p = read(data, p)
                found: list[Header] = []
                for _ in range(count):
                    b = data[p]
                    if b < 0x80:
                        n = (b >> 1) ^ -(b & 1)
                        p += 1
                    else:
                        n, p = read(data, p)
                    if n < 0:
                        raise CorruptRecordError("null header key")
                    hkey = data[p : p + n]
                    p += n
                    b = data[p]
                    if b < 0x80:
                        n = (b >> 1) ^ -(b & 1)
                        p += 1
                    else:
                        b2 = data[p + 1]
                        if b2 < 0x80:  # two bytes: lengths up to 8191
                            v = (b & 0x7F) | (b2 << 7)
                            n = (v >> 1) ^ -(v & 1)
                            p += 2
                        else:
                            n, p = read(data, p)
                    if n < 0:
                        hvalue = None
                    else:
                        hvalue = data[p : p + n]
                        p += n
                    if p > end:
                        raise CorruptRecordError("header runs past the end of the record")
                    name = _HEADER_KEYS.get(hkey)
                    if name is None:
                        try:
                            name = hkey.decode()
                        except UnicodeDecodeError:
                            raise CorruptRecordError("header key is not UTF-8") from None
                        if len(_HEADER_KEYS) < 4096:
                            _HEADER_KEYS[hkey] = name
                    found.append((name, hvalue))
                headers = tuple(found)
            if p != end:
                raise CorruptRecordError("record length does not match its fields")
            yield _new_record(
                Record,
                (
                    value,
                    key,
                    headers,
                    header.max_timestamp if log_append_time else base_ts + ts_delta,
                    base_offset + offset_delta,
                ),
            )
    except IndexError:
        raise CorruptRecordError("record fields run past the end of the batch") from None


def iter_batches(buf: bytes | bytearray | memoryview) -> Iterator[tuple[int, BatchHeader]]:
    """Walk consecutive whole batches in ``buf``; yield ``(position, header)``; stop at a partial one."""
    pos = 0
    end = len(buf)
    while end - pos >= HEADER_SIZE:
        header = parse_header(buf, pos)
        if header.size > end - pos or header.batch_length < HEADER_SIZE - LOG_OVERHEAD:
            return
        yield pos, header
        pos += header.size


# -- record-level access for compaction and key checks -------------------------------------------------


def records_section(buf: bytes | bytearray | memoryview, pos: int, header: BatchHeader) -> bytes | memoryview:
    """The (decompressed) records of the batch at ``pos``; raises CorruptRecordError for an
    unsupported codec."""
    view = memoryview(buf)[pos + HEADER_SIZE : pos + header.size]
    if header.compression:
        return decompress(header.compression, view)
    return view


def _skip_bytes(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Skip a varint-length-prefixed field; return ``(length, next position)`` (length -1: null)."""
    length, pos = read_varint(buf, pos)
    return length, (pos + length if length > 0 else pos)


def record_spans(data: bytes | memoryview, count: int) -> Iterator[tuple[int, int, int, bytes | None, bool]]:
    """Walk ``count`` raw records of a records section (as :func:`decode_records` would, without
    building them); yield ``(start, end, offsetDelta, key, value is null)`` of each.

    ``data[start:end]`` is the record byte for byte, length prefix included, so a filter can
    copy the records it keeps verbatim.
    """
    p = 0
    size = len(data)
    for _ in range(count):
        start = p
        length, p = read_varint(data, p)
        end = p + length
        if length < 0 or end > size:
            raise CorruptRecordError("record length runs past the end of the batch")
        p += 1  # record attributes
        _, p = read_varint(data, p)  # timestamp delta
        offset_delta, p = read_varint(data, p)
        klen, p = read_varint(data, p)
        key: bytes | None = None
        if klen >= 0:
            if p + klen > end:
                raise CorruptRecordError("key runs past the end of the record")
            key = bytes(data[p : p + klen])
            p += klen
        vlen, _ = read_varint(data, p)
        yield start, end, offset_delta, key, vlen < 0
        p = end


def batch_keys(buf: bytes | bytearray | memoryview, pos: int = 0) -> Iterator[tuple[int, bytes | None, bool]]:
    """``(offset, key, value is null)`` of each record of the batch at ``pos`` (CRC not checked)."""
    header = parse_header(buf, pos)
    data = records_section(buf, pos, header)
    base = header.base_offset
    for _, _, delta, key, null_value in record_spans(data, header.record_count):
        yield base + delta, key, null_value


def keyless_records(buf: bytes | bytearray | memoryview, pos: int) -> list[int]:
    """Indexes (from the batch's first record) of the records without a key in the batch at
    ``pos``: what a compacted log refuses.  Records are decoded (decompressed if needed), so
    this is for compacted logs only.  Raises CorruptRecordError when the records cannot be read.
    """
    return [i for i, (_, key, _) in enumerate(batch_keys(buf, pos)) if key is None]


def rebuild_batch(header: BatchHeader, records: bytes, count: int) -> bytearray:
    """A batch with ``header``'s fields (offsets, timestamps, producer, attributes and codec
    included) holding ``count`` raw ``records`` (uncompressed, as :func:`record_spans` slices
    them): what compaction writes for a batch some of whose records it removed.  The records
    keep their offset and timestamp deltas, so their offsets and timestamps do not change."""
    attributes = header.attributes
    if count:
        body = compress(header.compression, records) if header.compression else records
    else:  # an empty batch is stored uncompressed, as Kafka writes one
        body = b""
        attributes &= ~COMPRESSION_MASK
    out = bytearray(
        HEADER.pack(
            header.base_offset,
            HEADER_SIZE - LOG_OVERHEAD + len(body),
            header.partition_leader_epoch,
            MAGIC,
            0,
            attributes,
            header.last_offset_delta,
            header.base_timestamp,
            header.max_timestamp,
            header.producer_id,
            header.producer_epoch,
            header.base_sequence,
            count,
        )
    )
    out += body
    _UINT32.pack_into(out, CRC_OFFSET, crc32c(memoryview(out)[CRC_START:]))
    return out


def check_producer_batches(buf: bytes | bytearray | memoryview) -> None:
    """The checks Kafka makes of batches a producer sends, beyond :func:`validate_batch`.

    A producer's batch covers exactly its records: ``lastOffsetDelta + 1 == recordCount``
    (compaction later thins batches, so stored batches need not satisfy this).  In an
    uncompressed batch the records' length prefixes must account for the records section
    exactly; that walk reads one varint per record and decodes nothing else.  Compressed
    batches are stored as produced and only decompressed by readers that decode them.
    """
    for pos, header in iter_batches(buf):
        if header.record_count != header.last_offset_delta + 1:
            raise CorruptRecordError(
                f"record count {header.record_count} does not match the offset range "
                f"0..{header.last_offset_delta} of the batch"
            )
        if header.compression:
            continue
        p = pos + HEADER_SIZE
        end = pos + header.size
        left = header.record_count
        while left and p < end:
            left -= 1
            b = buf[p]
            if b < 0x80:  # the common cases: one- and two-byte, non-negative lengths
                if not b & 1:
                    p += 1 + (b >> 1)
                    continue
            elif p + 1 < end and buf[p + 1] < 0x80 and not b & 1:
                p += 2 + (((b & 0x7F) | (buf[p + 1] << 7)) >> 1)
                continue
            length, p = read_varint(buf, p)
            if length < 0:
                raise CorruptRecordError("negative record length")
            p += length
        if left or p != end:
            raise CorruptRecordError(f"the batch does not hold the {header.record_count} records it declares")
