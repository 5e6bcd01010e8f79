"""AMQP messages as Kafka records, and back: what stream queues store and deliver.

A stream queue is a Kafka topic, so a message published to it is stored as a Kafka record
that Kafka consumers read naturally, and a record (whoever wrote it) is delivered to AMQP
stream consumers as a message.  docs/protocol-mapping.md is the reference.  Sans-IO, like
:mod:`jackalope.amqp.properties`, whose property layout it builds on.
"""

from __future__ import annotations

import json
import logging
import struct
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, TypeAlias

from pamqp import decode as pamqp_decode

from jackalope.amqp.errors import FrameError
from jackalope.amqp.validation import (
    BASIC_PROPERTY_LAYOUT,
    PAMQP_DECODE_ERRORS,
    SHORTSTR,
    TABLE,
    malformed,
    property_flags,
)
from jackalope.core.message import Message
from jackalope.core.topic_routes import KAFKA_EXCHANGE
from jackalope.storage import Record

#
# A stream queue is a Kafka topic, so a message published to it is stored as a Kafka record
# that Kafka consumers read naturally, and a record (whoever wrote it) is delivered to AMQP
# stream consumers as a message.  docs/protocol-mapping.md is the reference; in short:
#
#   routing key <-> record key (UTF-8; empty <-> null)      body <-> value (null -> empty)
#   headers table entries <-> Kafka headers (values as bytes; see ``header_value``)
#   timestamp property <-> record timestamp (s <-> ms); without one, the publish time
#   the exchange and every other property -> ``x-amqp-*`` Kafka headers (string forms)
#
# A headers table holding anything but strings is also kept verbatim in ``x-amqp-headers``,
# so AMQP consumers get every value back with its AMQP type.

log = logging.getLogger(__name__)

RESERVED_PREFIX: Final = "x-amqp-"
EXCHANGE_HEADER: Final = "x-amqp-exchange"  # on every record written through AMQP
TABLE_HEADER: Final = "x-amqp-headers"  # the headers table verbatim, when not all strings
TIMESTAMP_HEADER: Final = "x-amqp-timestamp"
STREAM_OFFSET: Final = "x-stream-offset"
KAFKA_TOPIC: Final = "x-kafka-topic"  # of a record routed by amq.kafka, and its partition
KAFKA_PARTITION: Final = "x-kafka-partition"
KAFKA_KEY: Final = "x-kafka-key"  # a record key that is no valid routing key (not UTF-8, > 255 bytes)

_HEADERS_FLAG: Final = 0x2000
_TIMESTAMP_FLAG: Final = 0x0040
# (flag, Kafka header) of the properties kept as x-amqp-* headers; the rest of the layout is
# the headers table (a table) and the timestamp (the record's timestamp).
_PROPERTY_HEADERS: Final = (
    (0x8000, "x-amqp-content-type"),
    (0x4000, "x-amqp-content-encoding"),
    (0x1000, "x-amqp-delivery-mode"),
    (0x0800, "x-amqp-priority"),
    (0x0400, "x-amqp-correlation-id"),
    (0x0200, "x-amqp-reply-to"),
    (0x0100, "x-amqp-expiration"),
    (0x0080, "x-amqp-message-id"),
    (_TIMESTAMP_FLAG, TIMESTAMP_HEADER),
    (0x0020, "x-amqp-type"),
    (0x0010, "x-amqp-user-id"),
    (0x0008, "x-amqp-app-id"),
    (0x0004, "x-amqp-cluster-id"),
)
_HEADER_FLAGS: Final = {name: flag for flag, name in _PROPERTY_HEADERS}
_OCTET_FLAGS: Final = frozenset({0x1000, 0x0800})
_U32: Final = struct.Struct(">I")
_OCTETS: Final = tuple(bytes((i,)) for i in range(256))
_U64: Final = struct.Struct(">Q")
_I64: Final = struct.Struct(">q")
_STREAM_OFFSET_ENTRY: Final = bytes((len(STREAM_OFFSET),)) + STREAM_OFFSET.encode() + b"l"

KafkaHeader: TypeAlias = tuple[str, bytes | None]


def split_properties(properties: bytes) -> dict[int, bytes | int]:
    """The properties present, by flag: shortstrs as their raw octets, octets and the
    timestamp as ints, the headers table as its raw contents (without the length prefix)."""
    flags, i = property_flags(properties)
    out: dict[int, bytes | int] = {}
    try:
        for flag, kind in BASIC_PROPERTY_LAYOUT:
            if not flags & flag:
                continue
            if kind == SHORTSTR:
                n = properties[i]
                out[flag] = properties[i + 1 : i + 1 + n]
                i += 1 + n
            elif kind == TABLE:
                n = _U32.unpack_from(properties, i)[0]
                out[flag] = properties[i + 4 : i + 4 + n]
                i += 4 + n
            elif kind == 1:
                out[flag] = properties[i]
                i += 1
            else:  # the timestamp
                out[flag] = _U64.unpack_from(properties, i)[0]
                i += 8
    except (IndexError, struct.error):
        raise malformed("property list") from None
    if i != len(properties):
        raise malformed("property list")
    return out


def header_value(value: Any) -> bytes | None:
    """A headers-table value as a Kafka header value: strings as UTF-8, byte arrays as they
    are, void as null, booleans as ``true``/``false``, numbers and decimals in their decimal
    form, timestamps as seconds since the epoch, nested tables and arrays as JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, datetime):
        return str(int(value.timestamp())).encode()
    if isinstance(value, dict | list | tuple):
        return json.dumps(_jsonable(value), separators=(",", ":"), ensure_ascii=False).encode()
    return str(value).encode()  # int, float, Decimal


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode(errors="replace")
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, Decimal):
        return str(value)
    return value


def timestamp_ms(seconds: int) -> int | None:
    """The record timestamp for an AMQP timestamp property.  Values past 2106 (more than 32
    bits) are taken as milliseconds already, as pamqp and several clients read them; None for
    what no record timestamp can hold."""
    ms = seconds if seconds > 0xFFFFFFFF else seconds * 1000
    return ms if ms < 1 << 63 else None


def record_fields(properties: bytes, exchange: str) -> tuple[list[KafkaHeader], int | None]:
    """The Kafka headers and the timestamp (ms, or None: the append time) of the record that
    keeps a message published with ``properties`` to ``exchange``."""
    fields = split_properties(properties)
    headers: list[KafkaHeader] = []
    table = fields.get(_HEADERS_FLAG)
    if isinstance(table, bytes) and table:
        try:
            decoded = pamqp_decode.field_table(_U32.pack(len(table)) + table)[1]
        except PAMQP_DECODE_ERRORS as exc:
            raise malformed(f"headers table: {exc}") from exc
        verbatim = False
        for name, value in decoded.items():
            if name.startswith(RESERVED_PREFIX):
                verbatim = True  # kept in the verbatim table only: the prefix is ours
                continue
            if type(value) is not str:
                verbatim = True
            headers.append((name, header_value(value)))
        if verbatim:
            headers.append((TABLE_HEADER, table))
    headers.append((EXCHANGE_HEADER, exchange.encode()))
    timestamp: int | None = None
    for flag, name in _PROPERTY_HEADERS:
        value = fields.get(flag)
        if value is None:
            continue
        if isinstance(value, int):
            if flag == _TIMESTAMP_FLAG:
                timestamp = timestamp_ms(value)
            headers.append((name, str(value).encode()))
        else:
            headers.append((name, value))
    return headers, timestamp


def message_from_record(
    key: bytes | None,
    headers: tuple[KafkaHeader, ...],
    timestamp: int | None,
    offset: int,
    extra: bytes = b"",
) -> tuple[str, str, bytes]:
    """``(exchange, routing key, properties)`` of the delivery of a stream record.

    A record written through AMQP (it has ``x-amqp-exchange``) gets its exchange, routing key
    and properties back; any other record is delivered from exchange "" with its key as the
    routing key, its headers as longstr entries of the headers table and its timestamp as the
    timestamp property.  Either way the table gains ``x-stream-offset`` (a long), as RabbitMQ's,
    after the encoded table entries ``extra``.
    """
    exchange = ""
    from_amqp = False
    values: dict[int, bytes] = {}
    verbatim: bytes | None = None
    entries: list[bytes] = []
    for name, value in headers:
        if name.startswith(RESERVED_PREFIX):
            if name == EXCHANGE_HEADER:
                from_amqp = True
                exchange = _shortstr_text(value) or ""
            elif name == TABLE_HEADER:
                verbatim = value
            elif value is not None and name in _HEADER_FLAGS and len(value) <= 255:
                values[_HEADER_FLAGS[name]] = value
            continue
        entry = _longstr_entry(name, value)
        if entry:
            entries.append(entry)
    routing_key = ""
    if key:
        text = _shortstr_text(key)
        if text is None:
            entries.append(_longstr_entry(KAFKA_KEY, key))
        else:
            routing_key = text
    own = verbatim if verbatim is not None else b"".join(entries)
    table = own + extra + _STREAM_OFFSET_ENTRY + _I64.pack(offset)
    if not from_amqp and timestamp is not None and timestamp >= 0:
        values[_TIMESTAMP_FLAG] = str(timestamp // 1000).encode()
    flags = _HEADERS_FLAG
    out = [b"", b""]
    for flag, kind in BASIC_PROPERTY_LAYOUT:
        if flag == _HEADERS_FLAG:
            out += (_U32.pack(len(table)), table)
            continue
        value = values.get(flag)
        if value is None:
            continue
        if kind == SHORTSTR:
            out += (_OCTETS[len(value)], value)
        else:
            try:
                number = int(value)
                packed = _OCTETS[number] if flag in _OCTET_FLAGS else _U64.pack(number)
            except (ValueError, IndexError, struct.error):
                continue  # not a number that fits: left out
            out.append(packed)
        flags |= flag
    out[0] = struct.pack(">H", flags)
    return exchange, routing_key, b"".join(out)


def _shortstr_text(value: bytes | None) -> str | None:
    """``value`` as a shortstr's text: None if it is not UTF-8 or longer than 255 octets."""
    if value is None or len(value) > 255:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError:
        return None


def _longstr_entry(name: str, value: bytes | None) -> bytes:
    """A headers-table entry: ``name`` = longstr ``value`` (void when null); b"" if the name
    does not fit a shortstr."""
    raw = name.encode()
    if len(raw) > 255:
        return b""
    if value is None:
        return _OCTETS[len(raw)] + raw + b"V"
    return _OCTETS[len(raw)] + raw + b"S" + _U32.pack(len(value)) + value


def message_record(message: Message) -> Record:
    """A message published to a stream as the Kafka record that keeps it: the encoder the
    AMQP front-end gives the core (:attr:`BrokerCore.stream_encoder`)."""
    try:
        headers, timestamp = record_fields(message.properties, message.exchange)
    except FrameError as exc:  # a malformed headers table: keep what can be kept
        log.warning("stream message with unreadable properties stored without them: %s", exc)
        headers, timestamp = [(EXCHANGE_HEADER, message.exchange.encode())], None
    return Record(
        value=message.body,
        key=message.routing_key.encode() or None,
        headers=tuple(headers),
        timestamp=timestamp,
    )


def bridged_message(topic: str, partition: int, record: Record) -> Message:
    """A topic's record as the message ``amq.kafka`` routes to its bound queues (the decoder the
    AMQP front-end gives the core, :attr:`BrokerCore.record_decoder`): the stream mapping, from
    exchange ``amq.kafka``, with ``x-kafka-topic`` and ``x-kafka-partition`` in the headers."""
    extra = _longstr_entry(KAFKA_TOPIC, topic.encode()) + _long_entry(KAFKA_PARTITION, partition)
    _, routing_key, properties = message_from_record(
        record.key, record.headers, record.timestamp, record.offset, extra
    )
    return Message(KAFKA_EXCHANGE, routing_key, properties, record.value or b"", True)


def _long_entry(name: str, value: int) -> bytes:
    raw = name.encode()
    return _OCTETS[len(raw)] + raw + b"l" + _I64.pack(value)
