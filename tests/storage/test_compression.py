"""Batch compression codecs: round trips, and interop with what Kafka clients produce."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jackalope.storage import compression
from jackalope.storage.errors import CorruptRecordError

CODECS = [compression.NONE, compression.GZIP, compression.SNAPPY, compression.LZ4, compression.ZSTD]


@pytest.mark.parametrize("codec", CODECS)
@given(data=st.binary(max_size=100_000))
def test_round_trip(codec: int, data: bytes) -> None:
    assert compression.decompress(codec, compression.compress(codec, data)) == data


def test_snappy_accepts_raw_and_xerial_framing() -> None:
    kafka_codec = pytest.importorskip("kafka.codec")
    data = b"jackalope " * 20_000  # several 32 KiB xerial blocks
    assert (
        compression.decompress(compression.SNAPPY, kafka_codec.snappy_encode(data, xerial_compatible=True))
        == data
    )
    assert (
        compression.decompress(compression.SNAPPY, kafka_codec.snappy_encode(data, xerial_compatible=False))
        == data
    )


def test_lz4_and_zstd_frames_from_client_libraries() -> None:
    kafka_codec = pytest.importorskip("kafka.codec")
    data = b"0123456789" * 5000
    assert compression.decompress(compression.LZ4, kafka_codec.lz4_encode(data)) == data
    assert compression.decompress(compression.ZSTD, kafka_codec.zstd_encode(data)) == data


@pytest.mark.parametrize("codec", CODECS[1:])
def test_garbage_is_a_corrupt_record_error(codec: int) -> None:
    with pytest.raises(CorruptRecordError):
        compression.decompress(
            codec, b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\xff\xff\xff\xff garbage"
        )


def test_unknown_codec() -> None:
    with pytest.raises(CorruptRecordError):
        compression.decompress(7, b"x")
    with pytest.raises(CorruptRecordError):
        compression.compress(7, b"x")
