"""check_producer_batches: a producer's batch must hold exactly the records it declares."""

from __future__ import annotations

import struct

import pytest
from crc32c import crc32c
from hypothesis import given
from hypothesis import strategies as st

from jackalope.storage import Record
from jackalope.storage.compression import GZIP
from jackalope.storage.errors import CorruptRecordError
from jackalope.storage.records import CRC_START, HEADER_SIZE, check_producer_batches, encode_batch

records = st.lists(
    st.builds(
        Record,
        value=st.one_of(st.none(), st.binary(max_size=300)),
        key=st.one_of(st.none(), st.binary(max_size=40)),
        headers=st.just(()),
        timestamp=st.none(),
        offset=st.just(0),
    ),
    min_size=1,
    max_size=40,
)

COUNT_AT = HEADER_SIZE - 4  # recordCount is the last field of the header
DELTA_AT = 23  # lastOffsetDelta


def patched(batch: bytes, at: int, fmt: str, value: int) -> bytes:
    data = bytearray(batch)
    struct.pack_into(fmt, data, at, value)
    struct.pack_into(">I", data, 17, crc32c(bytes(data[CRC_START:])))  # keep the CRC right
    return bytes(data)


@given(batch_records=records, compressed=st.booleans())
def test_encoded_batches_pass(batch_records: list[Record], compressed: bool) -> None:
    batch = encode_batch(batch_records, base_offset=0, now_ms=1, compression=GZIP if compressed else 0)
    check_producer_batches(batch + batch)


@given(batch_records=records, extra=st.integers(1, 5))
def test_a_count_that_lies_is_refused(batch_records: list[Record], extra: int) -> None:
    batch = encode_batch(batch_records, base_offset=0, now_ms=1)
    n = len(batch_records)
    lying = patched(patched(batch, COUNT_AT, ">i", n + extra), DELTA_AT, ">i", n + extra - 1)
    with pytest.raises(CorruptRecordError):
        check_producer_batches(lying)
    if n > 1:
        fewer = patched(patched(batch, COUNT_AT, ">i", n - 1), DELTA_AT, ">i", n - 2)
        with pytest.raises(CorruptRecordError):
            check_producer_batches(fewer)


def test_count_and_offset_range_must_agree() -> None:
    batch = encode_batch([Record(b"a"), Record(b"b")], base_offset=0, now_ms=1)
    with pytest.raises(CorruptRecordError, match="offset range"):
        check_producer_batches(patched(batch, COUNT_AT, ">i", 5))
