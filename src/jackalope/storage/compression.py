"""Record batch compression codecs, by the ids Kafka gives them in batch attributes.

Batches are stored as produced; the engine only decompresses to decode records for a reader
that wants them (an AMQP consumer, the HTTP API).
"""

from __future__ import annotations

import zlib
from typing import Final

from jackalope.storage.errors import CorruptRecordError

NONE: Final = 0
GZIP: Final = 1
SNAPPY: Final = 2
LZ4: Final = 3
ZSTD: Final = 4

NAMES: Final = {NONE: "none", GZIP: "gzip", SNAPPY: "snappy", LZ4: "lz4", ZSTD: "zstd"}


def compress(codec: int, data: bytes) -> bytes:
    if codec == GZIP:
        c = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return c.compress(data) + c.flush()
    if codec == NONE:
        return data
    raise CorruptRecordError(f"compression codec {NAMES.get(codec, codec)} is not supported yet")


def decompress(codec: int, data: bytes | memoryview) -> bytes:
    try:
        if codec == GZIP:
            return zlib.decompress(data, 16 + zlib.MAX_WBITS)
    except zlib.error as exc:
        raise CorruptRecordError(f"gzip batch does not decompress: {exc}") from None
    if codec == NONE:
        return bytes(data)
    raise CorruptRecordError(f"compression codec {NAMES.get(codec, codec)} is not supported yet")
