"""Content properties (the basic class's property flags and list), kept raw.

A content header's property flags and property list are kept verbatim and written back
verbatim on delivery, so every property and every field of a nested header table round-trips
byte for byte, whatever integer width or string type the publisher chose.  Decoding is lazy:
:func:`delivery_mode` is a fast scan for the one property needed on every message;
:func:`decode_properties` decodes the rest when routing or TTL needs it.
"""

from __future__ import annotations

import struct
from typing import Any, Final

from pamqp import commands
from pamqp import common as pamqp_common

from jackalope.amqp.errors import FrameError
from jackalope.amqp.validation import (
    PAMQP_DECODE_ERRORS,
    check_basic_properties,
    malformed,
    property_flags,
)
from jackalope.amqp.writers import shortstr

_U32: Final = struct.Struct(">I")


def delivery_mode(properties: bytes) -> int:
    """The delivery-mode property (2 = persistent), or 0 if absent.

    Called for every published message, so it scans instead of decoding: skip
    content-type and content-encoding by their length octet and the headers table by its
    length prefix.  Raises ValueError on bytes the reader would not have accepted.
    """
    p = properties
    try:
        flags = (p[0] << 8) | p[1]
        if not flags & 0x1000:
            return 0
        i = 2
        word = flags
        while word & 1:
            word = (p[i] << 8) | p[i + 1]
            i += 2
        if flags & 0x8000:
            i += 1 + p[i]
        if flags & 0x4000:
            i += 1 + p[i]
        if flags & 0x2000:
            i += 4 + _U32.unpack_from(p, i)[0]
        return p[i]
    except (IndexError, struct.error):
        raise ValueError("malformed content properties") from None


def decode_properties(properties: bytes) -> dict[str, pamqp_common.FieldValue]:
    """The properties that are present, by pamqp's names (``message_type`` for the spec's
    ``type``), decoded with pamqp.

    Raises FrameError(FRAME_ERROR) if the headers table's contents are malformed: the reader
    checks the property list only down to the table's length, so call this while the
    publishing connection is at hand when the message needs it (headers exchange, CC/BCC,
    expiration, priority).
    """
    check_basic_properties(properties, deep=True)
    flags, i = property_flags(properties)
    cls = commands.Basic.Properties
    decoded = cls.__new__(cls)  # no __init__: it validates values the broker must accept
    try:
        decoded.unmarshal(flags, properties[i:])
    except PAMQP_DECODE_ERRORS as exc:
        raise malformed(f"content properties: {exc}") from exc
    return {name: getattr(decoded, name) for name in cls.__slots__ if flags & cls.flags[name]}


class LazyProperties:
    """A message's properties for the exchanges that read them, decoded on first use only:
    called, the headers table (headers, consistent-hash and delayed-message exchanges);
    ``property(name)``, another property by pamqp's name (consistent-hash ``hash-property``)."""

    __slots__ = ("fields", "properties")

    def __init__(self, properties: bytes) -> None:
        self.properties = properties
        self.fields: dict[str, pamqp_common.FieldValue] | None = None

    def _decoded(self) -> dict[str, pamqp_common.FieldValue]:
        if self.fields is None:
            self.fields = decode_properties(self.properties) if self.properties else {}
        return self.fields

    def __call__(self) -> dict[str, Any]:
        headers = self._decoded().get("headers")
        return headers if isinstance(headers, dict) else {}

    def property(self, name: str) -> Any:
        return self._decoded().get(name)


_REPLY_TO_FLAG: Final = 0x0200


def reply_to(properties: bytes) -> tuple[str | None, int, int]:
    """The reply-to property and the byte span of its shortstr (length octet included);
    ``(None, 0, 0)`` when absent.  Fields before it are skipped by their lengths, so the other
    properties stay byte-for-byte as published."""
    if len(properties) < 2:
        return None, 0, 0
    flags = (properties[0] << 8) | properties[1]
    if not flags & _REPLY_TO_FLAG:
        return None, 0, 0
    i = 2
    try:
        for bit in (0x8000, 0x4000):  # content-type, content-encoding
            if flags & bit:
                i += 1 + properties[i]
        if flags & 0x2000:  # headers
            i += 4 + int.from_bytes(properties[i : i + 4], "big")
        i += bool(flags & 0x1000) + bool(flags & 0x0800)  # delivery-mode, priority
        if flags & 0x0400:  # correlation-id
            i += 1 + properties[i]
        n = properties[i]
        value = properties[i + 1 : i + 1 + n]
    except IndexError:
        return None, 0, 0
    if len(value) != n:
        return None, 0, 0
    return value.decode(errors="replace"), i, i + 1 + n


def replace_reply_to(properties: bytes, start: int, end: int, value: str) -> bytes:
    """``properties`` with the reply-to shortstr at ``start:end`` replaced by ``value``."""
    return properties[:start] + shortstr(value) + properties[end:]


def encode_properties(**fields: Any) -> bytes:
    """Raw properties (flags + list) from pamqp's Basic.Properties keyword arguments.

    For tests and for messages that arrive without AMQP properties (HTTP, Kafka).  pamqp
    leaves out None and empty-string values and picks the smallest integer type for table
    values.
    """
    return commands.Basic.Properties(**fields).marshal()


def with_header(properties: bytes, name: str, value: Any) -> bytes:
    """``properties`` with the header ``name`` set to ``value`` (unchanged if they cannot be
    decoded).  Not for the hot path: it decodes and encodes the whole list."""
    try:
        fields: dict[str, Any] = dict(decode_properties(properties)) if properties else {}
    except FrameError:
        return properties
    fields["headers"] = {**(fields.get("headers") or {}), name: value}
    return encode_properties(**fields)
