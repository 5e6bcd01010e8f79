"""Kafka wire protocol, sans-IO: request frames in, typed requests out; responses in, bytes out.

Every request and response body is a dataclass of the ``kio`` package, generated from
Kafka's own message schemas (``clients/src/main/resources/common/message/*.json``), one
class per API version.  This module adds what the schemas leave to the transport: the
4-byte size prefix, the request header (v1, or v2 for flexible versions) and the response
header (v0, or v1 for flexible versions, except ApiVersions which always answers with v0).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import importlib
import io
import os
import pkgutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from types import ModuleType
from typing import Any, TypeVar

from kio.index import load_payload_module
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer
from kio.static.constants import EntityType

from jackalope.storage import FileSlice

__all__ = [
    "ApiKey",
    "Encoded",
    "ErrorCode",
    "FrameError",
    "Request",
    "RequestError",
    "build",
    "encode_response",
    "parse_request",
    "read_frames",
    "response_module",
]

_SIZE = struct.Struct(">i")
_HEADER = struct.Struct(">hhi")
_CLIENT_ID = struct.Struct(">h")


class ApiKey(IntEnum):
    PRODUCE = 0
    FETCH = 1
    LIST_OFFSETS = 2
    METADATA = 3
    OFFSET_COMMIT = 8
    OFFSET_FETCH = 9
    FIND_COORDINATOR = 10
    JOIN_GROUP = 11
    HEARTBEAT = 12
    LEAVE_GROUP = 13
    SYNC_GROUP = 14
    DESCRIBE_GROUPS = 15
    LIST_GROUPS = 16
    SASL_HANDSHAKE = 17
    API_VERSIONS = 18
    CREATE_TOPICS = 19
    DELETE_TOPICS = 20
    DELETE_RECORDS = 21
    INIT_PRODUCER_ID = 22
    OFFSET_FOR_LEADER_EPOCH = 23
    ADD_PARTITIONS_TO_TXN = 24
    ADD_OFFSETS_TO_TXN = 25
    END_TXN = 26
    TXN_OFFSET_COMMIT = 28
    DESCRIBE_ACLS = 29
    CREATE_ACLS = 30
    DELETE_ACLS = 31
    DESCRIBE_CONFIGS = 32
    ALTER_CONFIGS = 33
    ALTER_REPLICA_LOG_DIRS = 34
    DESCRIBE_LOG_DIRS = 35
    SASL_AUTHENTICATE = 36
    CREATE_PARTITIONS = 37
    DELETE_GROUPS = 42
    ELECT_LEADERS = 43
    INCREMENTAL_ALTER_CONFIGS = 44
    ALTER_PARTITION_REASSIGNMENTS = 45
    LIST_PARTITION_REASSIGNMENTS = 46
    OFFSET_DELETE = 47
    DESCRIBE_USER_SCRAM_CREDENTIALS = 50
    ALTER_USER_SCRAM_CREDENTIALS = 51
    DESCRIBE_QUORUM = 55
    DESCRIBE_CLUSTER = 60
    DESCRIBE_PRODUCERS = 61
    DESCRIBE_TRANSACTIONS = 65
    LIST_TRANSACTIONS = 66
    CONSUMER_GROUP_HEARTBEAT = 68
    CONSUMER_GROUP_DESCRIBE = 69
    LIST_CONFIG_RESOURCES = 74
    DESCRIBE_TOPIC_PARTITIONS = 75
    SHARE_GROUP_HEARTBEAT = 76  # KIP-932 share groups: 76-79 and 90-92
    SHARE_GROUP_DESCRIBE = 77
    SHARE_FETCH = 78
    SHARE_ACKNOWLEDGE = 79
    DESCRIBE_SHARE_GROUP_OFFSETS = 90
    ALTER_SHARE_GROUP_OFFSETS = 91
    DELETE_SHARE_GROUP_OFFSETS = 92


class FrameError(Exception):
    """The byte stream is not Kafka framing (or a frame is over the size limit): close."""


class RequestError(Exception):
    """A frame that cannot be decoded as a request of its (supported) API and version."""

    def __init__(self, message: str, api_key: int = -1, api_version: int = -1, correlation_id: int = -1):
        super().__init__(message)
        self.api_key = api_key
        self.api_version = api_version
        self.correlation_id = correlation_id


@dataclass(frozen=True, slots=True)
class Request:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    body: Any  # the kio request dataclass of this API and version


@dataclass(frozen=True, slots=True)
class Encoded:
    """A response a handler encoded itself: the whole size-prefixed frame, in chunks; a
    :class:`FileSlice` chunk is a range of a segment file, sent with ``os.sendfile``."""

    chunks: list[bytes | FileSlice]


def read_frames(buffer: bytearray, max_size: int, limit: int | None = None) -> list[bytes]:
    """Split complete size-prefixed frames off the front of ``buffer`` (consumed in place);
    with ``limit``, stop once the frames taken hold that many bytes (at least one frame)."""
    frames = []
    pos = 0
    end = len(buffer)
    while end - pos >= 4 and (limit is None or pos < limit):
        (size,) = _SIZE.unpack_from(buffer, pos)
        if size < 0 or size > max_size:
            raise FrameError(f"request size {size} is outside 0..{max_size}")
        if end - pos - 4 < size:
            break
        with memoryview(buffer) as view:
            frames.append(bytes(view[pos + 4 : pos + 4 + size]))
        pos += 4 + size
    if pos:
        del buffer[:pos]
    return frames


def peek_header(frame: bytes) -> tuple[int, int, int]:
    """``(api_key, api_version, correlation_id)`` of a request frame."""
    if len(frame) < _HEADER.size:
        raise RequestError("request shorter than its header")
    api_key, api_version, correlation_id = _HEADER.unpack_from(frame, 0)
    return api_key, api_version, correlation_id


@functools.cache
def _request_reader(api_key: int, version: int) -> tuple[Callable[..., Any], bool]:
    module = load_payload_module(api_key, version, EntityType.request)
    cls = _payload_class(module, "Request")
    return entity_reader(cls), bool(cls.__flexible__)


@functools.cache
def response_module(api_key: int, version: int) -> ModuleType:
    """The kio module holding the response classes of ``api_key`` at ``version``."""
    return load_payload_module(api_key, version, EntityType.response)


def _payload_class(module: ModuleType, suffix: str) -> type[Any]:
    for name, value in vars(module).items():
        if (
            name.endswith(suffix)
            and isinstance(value, type)
            and getattr(value, "__type__", None) in (EntityType.request, EntityType.response)
        ):
            return value
    raise LookupError(f"no {suffix} class in {module.__name__}")


def parse_request(frame: bytes) -> Request:
    """Decode one request frame (without its size prefix) of a supported API version.

    The caller checks that the API key and version are supported before calling this.
    """
    api_key, api_version, correlation_id = peek_header(frame)
    try:
        reader, flexible = _request_reader(api_key, api_version)
    except Exception:
        raise RequestError("unknown API or version", api_key, api_version, correlation_id) from None
    pos = _HEADER.size
    try:
        (n,) = _CLIENT_ID.unpack_from(frame, pos)
        pos += 2
        if n < 0:
            client_id = None
        else:
            client_id = frame[pos : pos + n].decode()
            if len(frame) < pos + n:
                raise ValueError("truncated client id")
            pos += n
        if flexible:
            pos = _skip_tagged_fields(frame, pos)
        # Bytes after the body are ignored, as Kafka does: librdkafka's Metadata request for
        # every topic (v12) carries three.
        body, _ = reader(frame, pos)
    except Exception as exc:
        raise RequestError(f"malformed request: {exc}", api_key, api_version, correlation_id) from None
    return Request(api_key, api_version, correlation_id, client_id, body)


def _read_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 28:
            raise ValueError("bad unsigned varint")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _skip_tagged_fields(data: bytes, pos: int) -> int:
    count, pos = _read_uvarint(data, pos)
    for _ in range(count):
        _, pos = _read_uvarint(data, pos)
        size, pos = _read_uvarint(data, pos)
        pos += size
        if pos > len(data):
            raise ValueError("truncated tagged field")
    return pos


_WRITERS: dict[type[Any], Callable[[Any, Any], None]] = {}


def _writer(cls: type[Any]) -> Callable[[Any, Any], None]:
    writer = _WRITERS.get(cls)
    if writer is None:
        writer = _WRITERS[cls] = entity_writer(cls)
    return writer


def encode_response(api_key: int, correlation_id: int, body: Any) -> bytes:
    """The size-prefixed response frame for ``body`` (a kio response dataclass)."""
    out = io.BytesIO()
    out.write(b"\0\0\0\0")
    out.write(correlation_id.to_bytes(4, "big", signed=True))
    if body.__flexible__ and api_key != ApiKey.API_VERSIONS:
        out.write(b"\0")  # response header v1: no tagged fields
    _writer(type(body))(out, body)
    data = out.getbuffer()
    _SIZE.pack_into(data, 0, len(data) - 4)
    del data
    return out.getvalue()


# -- building responses -----------------------------------------------------------------------

T = TypeVar("T")


_FIELDS: dict[type[Any], dict[str, str]] = {}


def _fields(cls: type[Any]) -> dict[str, str]:
    fields = _FIELDS.get(cls)
    if fields is None:
        fields = _FIELDS[cls] = {f.name: f.metadata.get("kafka_type", "") for f in dataclasses.fields(cls)}
    return fields


def _coerce(kafka_type: str, value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        if kafka_type == "error_code":
            return ErrorCode(value)
        if kafka_type in ("timedelta_i32", "timedelta_i64"):
            return datetime.timedelta(milliseconds=value)
        if kafka_type == "datetime_i64":
            return None if value < 0 else datetime.datetime.fromtimestamp(value / 1000, datetime.UTC)
    return value


# Under tests (the test suite sets this variable), ``build`` refuses a field that no version
# of the entity has: a misspelt field would otherwise be dropped without a sound.
STRICT_FIELDS = os.environ.get("JACKALOPE_STRICT_KAFKA_FIELDS") == "1"


def fields_of_any_version(cls: type[Any]) -> frozenset[str]:
    """The field names that the entity named like ``cls`` has in any version of its message
    (kio keeps one package per version: ``kio.schema.<api>.v<N>.<request|response>``)."""
    return _fields_of_any_version(cls.__module__, cls.__name__)


@functools.cache
def _fields_of_any_version(module_name: str, entity: str) -> frozenset[str]:
    version_package, kind = module_name.rsplit(".", 1)
    api_name = version_package.rsplit(".", 1)[0]
    names: set[str] = set()
    for info in pkgutil.iter_modules(importlib.import_module(api_name).__path__):
        try:
            module = importlib.import_module(f"{api_name}.{info.name}.{kind}")
        except ImportError:
            continue
        other = getattr(module, entity, None)
        if isinstance(other, type) and dataclasses.is_dataclass(other):
            names.update(f.name for f in dataclasses.fields(other))
    return frozenset(names)


def build(cls: type[T], **values: Any) -> T:
    """Instantiate a kio entity from the fields this version has; the rest are ignored.

    Handlers pass every field any version of the message has; each version's class takes
    what it knows.  Plain ints are accepted for error codes (``ErrorCode``), ``*_ms``
    durations (``timedelta``) and millisecond timestamps (``datetime``).  With
    :data:`STRICT_FIELDS`, a name that no version has raises ``TypeError``.
    """
    fields = _fields(cls)
    if STRICT_FIELDS:
        unknown = values.keys() - fields.keys()
        if unknown and (unknown := unknown - fields_of_any_version(cls)):
            raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(unknown))} in any version")
    return cls(**{k: _coerce(fields[k], v) for k, v in values.items() if k in fields})


def ms(value: datetime.timedelta | int) -> int:
    """Milliseconds of a kio duration field."""
    if isinstance(value, datetime.timedelta):
        return round(value.total_seconds() * 1000)
    return int(value)
