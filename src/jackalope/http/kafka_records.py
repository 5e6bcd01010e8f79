"""A topic's records over HTTP: browse a partition, view one record as each protocol sees it,
and produce.

``GET /api/kafka/topics/{topic}/partitions/{p}/records`` reads from ``offset`` (default the
low watermark) or from the first record at or after ``timestamp`` (ms), at most ``limit``
records (50, at most 1000), keeping with ``filter`` only those whose key, value or a header
value contains the text; ``next_offset`` is where to continue.  A filtered read examines at
most :data:`SCAN_RECORDS` records per request, so a long partition never holds the event loop:
an answer with fewer than ``limit`` records and ``next_offset`` below the high watermark means
"continue from there".

``GET .../records/{offset}`` is one stored record as a Kafka consumer gets it and as an AMQP
consumer of the stream of that topic gets it (exchange, routing key, properties, payload), by
the AMQP front-end's own mapping (:mod:`jackalope.amqp.stream_records`, sans-IO).

``POST /api/kafka/topics/{topic}/records`` appends records through the same write path as
Kafka's Produce (:meth:`Topics.append_batches`) and answers once they are durable.  A record
without a partition goes where Kafka's default partitioner puts it: by the murmur2 hash of its
key, and the records without a key of one request to one partition picked at random (the
sticky partitioner).  Everything is checked before anything is written.  While a resource
alarm is in effect producing is refused with 503 (nothing written).

Keys, values and header values are UTF-8 text, or base64 with ``encoding=base64``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import random
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from aiohttp import web

from jackalope.amqp.errors import FrameError
from jackalope.amqp.properties import decode_properties
from jackalope.amqp.stream_records import message_from_record
from jackalope.http.base import CORE, ApiError, bad_request, require_administrator, require_monitor
from jackalope.http.kafka_api import (
    decode,
    encode,
    encoding,
    int_param,
    is_int,
    not_found,
    object_body,
    partition_or_404,
    topic_or_404,
    topics_of,
)
from jackalope.storage import (
    CorruptRecordError,
    InvalidRecordError,
    Log,
    OffsetOutOfRangeError,
    Record,
    RecordTooLargeError,
)
from jackalope.storage.log import now_ms
from jackalope.storage.records import (
    HEADER_SIZE,
    TIMESTAMP_TYPE_LOG_APPEND,
    decode_records,
    encode_batch,
    iter_batches,
)

routes = web.RouteTableDef()

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
SCAN_RECORDS = 100_000  # records a filtered read examines per request at most
_READ_BYTES = 1 << 20
_RECORD_FIELDS = ("key", "value", "headers", "partition", "timestamp")
_BATCH_OVERHEAD = HEADER_SIZE + 32  # per record and per batch, beyond key, value and headers


# -- browsing --------------------------------------------------------------------------------------


def _record(partition: int, r: Record, how: str) -> dict[str, Any]:
    return {
        "partition": partition,
        "offset": r.offset,
        "timestamp": r.timestamp,
        "key": encode(r.key, how),
        "value": encode(r.value, how),
        "headers": {k: encode(v, how) for k, v in r.headers},
    }


def _matches(r: Record, needle: bytes) -> bool:
    return (
        (r.key is not None and needle in r.key)
        or (r.value is not None and needle in r.value)
        or any(v is not None and needle in v for _, v in r.headers)
    )


def _start(request: web.Request, log_: Log) -> int:
    low, high = log_.start_offset, log_.end_offset
    query = request.query
    if "offset" in query and "timestamp" in query:
        raise bad_request("give offset or timestamp, not both")
    if "timestamp" in query:
        found = log_.offset_for_time(int_param(request, "timestamp", 0, 0))
        return high if found is None else max(found, low)
    return min(max(int_param(request, "offset", low, 0), low), high)


async def _scan(log_: Log, offset: int, limit: int, needle: bytes) -> tuple[list[Record], int]:
    """Up to ``limit`` records from ``offset`` on (matching ``needle`` if given) and the offset
    after the last one examined."""
    found: list[Record] = []
    examined = 0
    while len(found) < limit and examined < SCAN_RECORDS:
        offset = max(offset, log_.start_offset)  # retention may have moved the start meanwhile
        try:
            chunk = log_.read_records(offset, _READ_BYTES)
        except OffsetOutOfRangeError:
            continue
        if not chunk:
            break
        for r in chunk:
            examined += 1
            offset = r.offset + 1
            if not needle or _matches(r, needle):
                found.append(r)
                if len(found) == limit:
                    break
        if needle:
            await asyncio.sleep(0)  # a long scan shares the loop
    return found, offset


@routes.get("/api/kafka/topics/{topic}/partitions/{partition}/records")
async def browse(request: web.Request) -> web.Response:
    require_monitor(request)
    partition, log_ = partition_or_404(request, topic_or_404(request))
    how = encoding(request)
    limit = int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    needle = request.query.get("filter", "").encode()
    records, next_offset = await _scan(log_, _start(request, log_), limit, needle)
    return web.json_response(
        {"records": [_record(partition, r, how) for r in records], "next_offset": next_offset}
    )


# -- one record, as each protocol sees it ----------------------------------------------------------


def _stored(log_: Log, offset: int) -> tuple[Record, bool] | None:
    """The record at ``offset`` and whether its timestamp is the log append time; None if no
    record has that offset (out of range, or compacted away)."""
    if not log_.start_offset <= offset < log_.end_offset:
        return None
    data = log_.read(offset, 1).data
    for pos, header in iter_batches(data):
        for r in decode_records(data, pos, start=offset):
            if r.offset != offset:
                return None  # the first record at or after it is a later one
            return r, bool(header.attributes & TIMESTAMP_TYPE_LOG_APPEND)
    return None


def _jsonable(value: Any) -> Any:
    """An AMQP field value as JSON, as the management API shows message properties."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode(errors="replace")
    if isinstance(value, datetime.datetime):
        return int(value.timestamp())
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _amqp_view(r: Record, how: str) -> dict[str, Any]:
    exchange, routing_key, raw = message_from_record(r.key, r.headers, r.timestamp, r.offset)
    try:
        properties = decode_properties(raw)
    except FrameError:  # cannot happen for what the mapping builds; never fail the view for it
        properties = {}
    shown = {("type" if k == "message_type" else k): _jsonable(v) for k, v in properties.items()}
    payload = r.value or b""
    text: str | None = None
    if how != "base64":  # "auto", as the management API's get: text when it is UTF-8
        with contextlib.suppress(UnicodeDecodeError):
            text = payload.decode()
    return {
        "exchange": exchange,
        "routing_key": routing_key,
        "properties": shown,
        "payload": text if text is not None else encode(payload, "base64"),
        "payload_encoding": "string" if text is not None else "base64",
    }


@routes.get("/api/kafka/topics/{topic}/partitions/{partition}/records/{offset}")
async def view_record(request: web.Request) -> web.Response:
    require_monitor(request)
    topic = topic_or_404(request)
    partition, log_ = partition_or_404(request, topic)
    how = encoding(request)
    raw = request.match_info["offset"]
    try:
        offset = int(raw)
    except ValueError:
        raise bad_request(f"offset {raw!r} is not an integer") from None
    stored = _stored(log_, offset)
    if stored is None:
        raise not_found(f"partition {partition} of topic {topic.name!r} has no record at offset {offset}")
    r, log_append_time = stored
    kafka = {
        "topic": topic.name,
        "partition": partition,
        "offset": r.offset,
        "key": encode(r.key, how),
        "value": encode(r.value, how),
        "headers": {k: encode(v, how) for k, v in r.headers},
        "timestamp": r.timestamp,
        "timestamp_type": "LogAppendTime" if log_append_time else "CreateTime",
    }
    return web.json_response({"kafka": kafka, "amqp": _amqp_view(r, how)})


# -- producing -------------------------------------------------------------------------------------


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash (``org.apache.kafka.common.utils.Utils.murmur2``), unsigned."""
    m = 0x5BD1E995
    h = (0x9747B28C ^ len(data)) & 0xFFFFFFFF
    whole = len(data) & ~3
    for i in range(0, whole, 4):
        k = (int.from_bytes(data[i : i + 4], "little") * m) & 0xFFFFFFFF
        k = ((k ^ (k >> 24)) * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    rest = len(data) - whole
    if rest == 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h = ((h ^ data[whole]) * m) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * m) & 0xFFFFFFFF
    return h ^ (h >> 15)


def _parse_record(item: Any, i: int, how: str, partitions: int) -> tuple[int | None, Record]:
    what = f"records[{i}]"
    if not isinstance(item, dict):
        raise bad_request(f"{what} must be an object")
    unknown = sorted(set(item) - set(_RECORD_FIELDS))
    if unknown:
        raise bad_request(f"{what} has unknown field(s) {', '.join(unknown)}")
    headers = item.get("headers")
    headers = {} if headers is None else headers
    if not isinstance(headers, dict):
        raise bad_request(f"{what}.headers must be an object")
    timestamp = item.get("timestamp")
    if timestamp is not None and not (is_int(timestamp) and 0 <= timestamp < 2**63):  # Kafka's int64
        raise bad_request(f"{what}.timestamp must be a non-negative integer (ms since the epoch)")
    partition = item.get("partition")
    if partition is not None:
        if not is_int(partition):
            raise bad_request(f"{what}.partition must be an integer")
        if not 0 <= partition < partitions:
            raise not_found(f"{what}: the topic has no partition {partition}")
    record = Record(
        value=decode(item.get("value"), how, f"{what}.value"),
        key=decode(item.get("key"), how, f"{what}.key"),
        headers=tuple((str(k), decode(v, how, f"{what}.headers.{k}")) for k, v in headers.items()),
        timestamp=timestamp,
    )
    return partition, record


def _size(r: Record) -> int:
    return (
        len(r.key or b"")
        + len(r.value or b"")
        + sum(len(k) + len(v or b"") for k, v in r.headers)
        + _BATCH_OVERHEAD
    )


def _batches(records: list[Record], max_bytes: int, now: int) -> bytearray:
    """``records`` as RecordBatch v2 bytes, in batches of at most ``max_bytes`` (413 for a
    record that fits no batch)."""
    out = bytearray()
    chunk: list[Record] = []
    size = 0
    for r in [*records, None]:
        n = 0 if r is None else _size(r)
        if chunk and (r is None or size + n > max_bytes):
            batch = encode_batch(chunk, now_ms=now)
            if len(batch) > max_bytes:
                raise ApiError(
                    413,
                    "record_too_large",
                    f"a record batch of {len(batch)} bytes exceeds the topic's max.message.bytes {max_bytes}",
                )
            out += batch
            chunk, size = [], 0
        if r is not None:
            chunk.append(r)
            size += n
    return out


@routes.post("/api/kafka/topics/{topic}/records")
async def produce(request: web.Request) -> web.Response:
    require_administrator(request)
    topic = topic_or_404(request)
    how = encoding(request)
    body = await object_body(request, ("records",))
    items = body.get("records")
    if not isinstance(items, list) or not items:
        raise bad_request('the body must be {"records": [{"key": ..., "value": ...}, ...]}, at least one')
    count = len(topic.partitions)
    sticky = random.randrange(count)
    placed: list[tuple[int, Record]] = []
    for i, item in enumerate(items):
        partition, record = _parse_record(item, i, how, count)
        if partition is None:
            partition = sticky if record.key is None else (murmur2(record.key) & 0x7FFFFFFF) % count
        placed.append((partition, record))
    core = request.app[CORE]
    if core.alarms.blocking:
        raise ApiError(503, "resource_alarm", f"{core.alarms.reason()}: producing is blocked")
    now = now_ms()
    by_partition: dict[int, list[Record]] = {}
    for partition, record in placed:
        by_partition.setdefault(partition, []).append(record)
    topics = topics_of(request)
    for p, rs in by_partition.items():
        # Topics.append_batches refuses these too; checked first so that no partition is written.
        if topic.partitions[p].config.compact:
            try:
                topics.refuse_keyless(topic.partitions[p], [i for i, r in enumerate(rs) if r.key is None])
            except InvalidRecordError as exc:
                raise bad_request(str(exc)) from None
    data = {
        p: _batches(rs, topic.partitions[p].config.max_message_bytes, now) for p, rs in by_partition.items()
    }
    base: dict[int, int] = {}
    waits = []
    for p, batches in data.items():
        log_ = topic.partitions[p]
        try:
            info = topics.append_batches(log_, batches)
        except RecordTooLargeError as exc:  # checked above: only if the config changed meanwhile
            raise ApiError(413, "record_too_large", str(exc)) from None
        except CorruptRecordError as exc:
            raise bad_request(str(exc)) from None
        base[p] = info.base_offset
        waits.append(core.logs.wait_durable(log_, info.last_offset))
    await asyncio.gather(*waits)
    return web.json_response({"offsets": list(_offsets(placed, base))})


def _offsets(placed: list[tuple[int, Record]], base: dict[int, int]) -> Iterable[dict[str, int]]:
    next_offset = dict(base)
    for partition, _ in placed:
        yield {"partition": partition, "offset": next_offset[partition]}
        next_offset[partition] += 1
