"""RecordBatch v2 codec: encoding, decoding, validation and varints."""

from __future__ import annotations

import contextlib
import struct

import pytest
from crc32c import crc32c
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storage_helpers import records, stored

from jackalope.storage import CorruptRecordError, Record
from jackalope.storage.compression import GZIP, NONE
from jackalope.storage.records import (
    CRC_OFFSET,
    CRC_START,
    HEADER,
    HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC,
    TIMESTAMP_TYPE_LOG_APPEND,
    decode_records,
    encode_batch,
    iter_batches,
    max_timestamp_of,
    parse_header,
    read_varint,
    set_base_offset,
    set_log_append_time,
    validate_batch,
    varint,
)

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INT64 = st.integers(-(2**63), 2**63 - 1)

SAMPLE = [
    Record(b"v0", key=b"k0", timestamp=1_000),
    Record(None, key=b"k1", timestamp=1_005),  # null value (a tombstone)
    Record(b"v2", key=None),  # no timestamp: gets now_ms
    Record(b"", key=b"", headers=(("h", b"x"), ("nil", None)), timestamp=990),
    Record(b"v4", headers=(("ünïcødé ☃", b"\x00\xff"), ("日本", b"")), timestamp=1_002),
    Record(b"x" * 300, key=b"y" * 200, timestamp=2**40),
]


def decode(buf: bytes | bytearray, pos: int = 0) -> list[Record]:
    return list(decode_records(buf, pos))


# -- round trips ----------------------------------------------------------------------------------


def test_round_trip_all_field_kinds() -> None:
    batch = encode_batch(SAMPLE, base_offset=100, now_ms=1_001)
    got = decode(batch)
    assert got == [stored(r, 100 + i, 1_001) for i, r in enumerate(SAMPLE)]
    assert got[1].value is None
    assert got[2].key is None and got[2].timestamp == 1_001
    assert got[3].headers == (("h", b"x"), ("nil", None))
    assert got[4].headers[0][0] == "ünïcødé ☃"


def test_header_fields() -> None:
    batch = encode_batch(
        SAMPLE, base_offset=7, now_ms=1_001, producer_id=42, producer_epoch=3, base_sequence=9
    )
    header = validate_batch(batch)
    assert header == parse_header(batch)
    assert header.magic == MAGIC
    assert header.size == len(batch)
    assert header.batch_length == len(batch) - LOG_OVERHEAD
    assert header.record_count == len(SAMPLE)
    assert header.last_offset_delta == len(SAMPLE) - 1
    assert header.last_offset == 7 + len(SAMPLE) - 1
    assert header.next_offset == 7 + len(SAMPLE)
    assert header.base_timestamp == 1_000  # the first record's timestamp
    assert header.max_timestamp == max_timestamp_of(batch) == 2**40
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (42, 3, 9)
    assert header.compression == NONE
    assert header.partition_leader_epoch == -1


def test_missing_timestamps_all_get_now() -> None:
    batch = encode_batch([Record(b"a"), Record(b"b")], now_ms=555)
    assert [r.timestamp for r in decode(batch)] == [555, 555]
    assert max_timestamp_of(batch) == 555


def test_empty_batch_is_refused() -> None:
    with pytest.raises(ValueError):
        encode_batch([])


def test_gzip_round_trip() -> None:
    recs = [Record(b"hello world " * 50, key=str(i).encode(), timestamp=10 + i) for i in range(20)]
    plain = encode_batch(recs, base_offset=5)
    packed = encode_batch(recs, base_offset=5, compression=GZIP)
    header = validate_batch(packed)
    assert header.compression == GZIP
    assert len(packed) < len(plain) // 4
    assert decode(packed) == decode(plain) == [r._replace(offset=5 + i) for i, r in enumerate(recs)]


@pytest.mark.parametrize("codec", [5, 6, 7])
def test_unknown_codecs_are_corrupt_record_errors(codec: int) -> None:
    with pytest.raises(CorruptRecordError):
        encode_batch([Record(b"x")], compression=codec)
    # A batch that claims the codec (re-sealed so the CRC is right) does not decode either.
    batch = encode_batch([Record(b"x")])
    struct.pack_into(">h", batch, 21, codec)
    _reseal(batch)
    with pytest.raises(CorruptRecordError):
        decode(batch)


@SETTINGS
@given(
    recs=st.lists(records(), min_size=1, max_size=8),
    base_offset=st.integers(0, 2**40),
    now=st.integers(0, 2**41),
    codec=st.sampled_from([NONE, GZIP]),
)
def test_round_trip_property(recs: list[Record], base_offset: int, now: int, codec: int) -> None:
    batch = encode_batch(recs, base_offset=base_offset, now_ms=now, compression=codec)
    assert validate_batch(batch).size == len(batch)
    assert decode(batch) == [stored(r, base_offset + i, now) for i, r in enumerate(recs)]


# -- varints --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n", [0, 1, -1, 63, -64, 64, -65, 127, 128, 2**31 - 1, -(2**31), 2**62, 2**63 - 1, -(2**63)]
)
def test_varint_extremes(n: int) -> None:
    raw = varint(n)
    assert 1 <= len(raw) <= 10
    assert read_varint(raw + b"\x7f", 0) == (n, len(raw))


@settings(max_examples=300, deadline=None)
@given(n=INT64, prefix=st.binary(max_size=4))
def test_varint_round_trip(n: int, prefix: bytes) -> None:
    raw = varint(n)
    assert len(raw) <= 10
    assert raw[-1] < 0x80 and all(b >= 0x80 for b in raw[:-1])
    assert read_varint(prefix + raw, len(prefix)) == (n, len(prefix) + len(raw))
    assert read_varint(memoryview(prefix + raw), len(prefix)) == (n, len(prefix) + len(raw))


def test_varint_zigzag_is_small_for_small_magnitudes() -> None:
    assert varint(0) == b"\x00"
    assert varint(-1) == b"\x01"
    assert varint(1) == b"\x02"
    assert varint(-64) == b"\x7f"
    assert varint(64) == b"\x80\x01"


def test_read_varint_rejects_truncated_and_overlong() -> None:
    with pytest.raises(CorruptRecordError):
        read_varint(b"", 0)
    with pytest.raises(CorruptRecordError):
        read_varint(b"\x80\x80", 0)
    with pytest.raises(CorruptRecordError):
        read_varint(b"\xff" * 11, 0)


# -- validation -----------------------------------------------------------------------------------


def _reseal(batch: bytearray, pos: int = 0) -> None:
    size = parse_header(batch, pos).size
    struct.pack_into(">I", batch, pos + CRC_OFFSET, crc32c(bytes(batch[pos + CRC_START : pos + size])))


def test_validate_accepts_a_good_batch_at_any_position() -> None:
    a = encode_batch(SAMPLE[:2])
    b = encode_batch(SAMPLE[2:], base_offset=2)
    buf = a + b
    assert validate_batch(buf, 0).next_offset == 2
    assert validate_batch(buf, len(a)).base_offset == 2
    assert decode(buf, len(a)) == decode(b)


def test_validate_rejects_wrong_magic() -> None:
    batch = encode_batch(SAMPLE)
    for magic in (0, 1, 3, 255):
        bad = bytearray(batch)
        bad[16] = magic
        with pytest.raises(CorruptRecordError, match="magic"):
            validate_batch(bad)
        with pytest.raises(CorruptRecordError):
            decode(bad)


def test_validate_rejects_bad_crc() -> None:
    batch = encode_batch(SAMPLE)
    for pos in (CRC_OFFSET, CRC_START, 40, HEADER_SIZE, len(batch) - 1):
        bad = bytearray(batch)
        bad[pos] ^= 0x01
        with pytest.raises(CorruptRecordError, match="CRC"):
            validate_batch(bad)


def test_validate_rejects_truncation() -> None:
    batch = bytes(encode_batch(SAMPLE))
    for cut in (0, 1, HEADER_SIZE - 1, HEADER_SIZE, len(batch) // 2, len(batch) - 1):
        with pytest.raises(CorruptRecordError, match="truncated"):
            validate_batch(batch[:cut])
        with pytest.raises(CorruptRecordError):
            decode(batch[:cut])


@pytest.mark.parametrize("length", [-12, -1, 0, 1, HEADER_SIZE - LOG_OVERHEAD - 1])
def test_validate_rejects_short_batch_length(length: int) -> None:
    batch = encode_batch(SAMPLE)
    struct.pack_into(">i", batch, 8, length)
    with pytest.raises(CorruptRecordError, match="shorter"):
        validate_batch(batch)


def test_validate_rejects_negative_counts() -> None:
    batch = encode_batch(SAMPLE)
    struct.pack_into(">i", batch, 23, -1)  # lastOffsetDelta
    _reseal(batch)
    with pytest.raises(CorruptRecordError):
        validate_batch(batch)


def test_set_base_offset_keeps_the_crc() -> None:
    batch = encode_batch(SAMPLE, base_offset=0, now_ms=1)
    crc = parse_header(batch).crc
    set_base_offset(batch, 1_000_000)
    header = validate_batch(batch)
    assert header.crc == crc
    assert header.base_offset == 1_000_000
    assert [r.offset for r in decode(batch)] == list(range(1_000_000, 1_000_000 + len(SAMPLE)))


def test_set_base_offset_in_the_middle_of_a_buffer() -> None:
    a = encode_batch(SAMPLE[:1])
    b = encode_batch(SAMPLE[1:3])
    buf = a + b
    set_base_offset(buf, 77, len(a))
    assert validate_batch(buf, 0).base_offset == 0
    assert validate_batch(buf, len(a)).base_offset == 77


def test_set_log_append_time_reseals_the_crc() -> None:
    recs = SAMPLE[:3]
    a = encode_batch(SAMPLE[3:4])
    batch = a + encode_batch(recs, base_offset=10, now_ms=1)
    set_log_append_time(batch, 123_456, len(a))
    header = validate_batch(batch, len(a))
    assert header.attributes & TIMESTAMP_TYPE_LOG_APPEND
    assert header.max_timestamp == 123_456
    got = decode(batch, len(a))
    assert [r.timestamp for r in got] == [123_456] * len(recs)
    assert [r.value for r in got] == [r.value for r in recs]
    validate_batch(batch, 0)  # the batch before it is untouched


def test_set_log_append_time_keeps_compression() -> None:
    recs = [Record(b"abc" * 40, timestamp=5)] * 3
    batch = encode_batch(recs, compression=GZIP)
    set_log_append_time(batch, 99)
    header = validate_batch(batch)
    assert header.compression == GZIP
    assert [r.timestamp for r in decode(batch)] == [99, 99, 99]


def test_iter_batches_stops_at_a_partial_batch() -> None:
    batches = [encode_batch(SAMPLE[i : i + 2], base_offset=i) for i in range(0, 6, 2)]
    whole = b"".join(batches)
    expected = [(sum(len(b) for b in batches[:i]), i * 2) for i in range(3)]
    assert [(pos, h.base_offset) for pos, h in iter_batches(whole)] == expected
    for tail in (b"", b"\x00", batches[0][: HEADER_SIZE - 1], batches[0][:HEADER_SIZE], batches[0][:-1]):
        got = [(pos, h.base_offset) for pos, h in iter_batches(whole + tail)]
        assert got == expected
    assert list(iter_batches(b"")) == []
    # A header whose length is shorter than a header stops the walk too.
    bad = bytearray(batches[0])
    struct.pack_into(">i", bad, 8, 10)
    assert [p for p, _ in iter_batches(batches[1] + bad + batches[2])] == [0]


# -- robustness -----------------------------------------------------------------------------------


@SETTINGS
@given(data=st.binary(max_size=300), pos=st.integers(0, 8))
def test_decode_arbitrary_bytes_raises_only_corrupt_record_error(data: bytes, pos: int) -> None:
    with contextlib.suppress(CorruptRecordError):
        list(decode_records(data, min(pos, len(data))))


@SETTINGS
@given(
    fields=st.tuples(
        st.integers(-(2**63), 2**63 - 1),  # base offset
        st.integers(-(2**31), 2**31 - 1),  # leader epoch
        st.integers(-(2**15), 2**15 - 1),  # attributes
        st.integers(-(2**31), 2**31 - 1),  # last offset delta
        st.integers(-(2**63), 2**63 - 1),  # base timestamp
        st.integers(-(2**63), 2**63 - 1),  # max timestamp
        st.integers(-4, 40),  # record count
    ),
    payload=st.binary(max_size=400),
)
def test_decode_sealed_garbage_raises_only_corrupt_record_error(
    fields: tuple[int, int, int, int, int, int, int], payload: bytes
) -> None:
    """Random payloads behind a correct CRC: the record decoder itself must cope."""
    base, epoch, attrs, delta, base_ts, max_ts, count = fields
    head = HEADER.pack(
        base,
        HEADER_SIZE - LOG_OVERHEAD + len(payload),
        epoch,
        MAGIC,
        0,
        attrs,
        delta,
        base_ts,
        max_ts,
        -1,
        -1,
        -1,
        count,
    )
    batch = bytearray(head + payload)
    _reseal(batch)
    with contextlib.suppress(CorruptRecordError):
        list(decode_records(batch))


@SETTINGS
@given(
    recs=st.lists(records(), min_size=1, max_size=4),
    codec=st.sampled_from([NONE, GZIP]),
    data=st.data(),
)
def test_single_byte_flip_in_crc_region_is_always_detected(
    recs: list[Record], codec: int, data: st.DataObject
) -> None:
    batch = encode_batch(recs, base_offset=3, now_ms=7, compression=codec)
    pos = data.draw(st.integers(0, len(batch) - 1), label="pos")
    flip = data.draw(st.integers(1, 255), label="xor")
    bad = bytearray(batch)
    bad[pos] ^= flip
    if pos >= CRC_OFFSET:
        with pytest.raises(CorruptRecordError):
            decode(bad)
        return
    try:
        got = decode(bad)
    except CorruptRecordError:
        return
    # Only the fields outside the CRC changed: base offset, length (no: caught) and leader epoch.
    assert 0 <= pos < 8 or 12 <= pos < 16
    assert [r._replace(offset=-1) for r in got] == [r._replace(offset=-1) for r in decode(batch)]


@SETTINGS
@given(
    recs=st.lists(records(), min_size=1, max_size=4),
    codec=st.sampled_from([NONE, GZIP]),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=6),
)
def test_random_byte_flips_raise_only_corrupt_record_error(
    recs: list[Record], codec: int, flips: list[tuple[int, int]]
) -> None:
    batch = bytearray(encode_batch(recs, now_ms=7, compression=codec))
    for pos, flip in flips:
        batch[pos % len(batch)] ^= flip
    with contextlib.suppress(CorruptRecordError):
        list(decode_records(batch))
