"""Fetch: stored record batches, returned as stored, with long polling woken by appends.

The response is encoded by :mod:`jackalope.kafka.fetch_response`.  On plain TCP connections
the batches are ranges of the segment files (:meth:`Log.read_slice`) that the connection
sends with ``os.sendfile``, so they go from the page cache to the socket without passing
through Python; over TLS they are read into bytes.

v7+ requests may belong to an incremental fetch session (:mod:`jackalope.kafka.fetch_sessions`);
v13+ requests name topics by topic id.  ``isolation_level=1`` (read_committed) reads stop at
the last stable offset, and the response lists the aborted transactions of what it returns.
"""

from __future__ import annotations

import asyncio
import struct
import uuid
from typing import Any

from jackalope.core.acls import Operation
from jackalope.kafka import authorization, fetch_response, internal_topics
from jackalope.kafka.context import RequestContext
from jackalope.kafka.fetch_sessions import FetchContext, FetchTarget, PartitionKey, TopicKey
from jackalope.kafka.handlers import Api
from jackalope.kafka.protocol import ApiKey, Encoded, ErrorCode, ms
from jackalope.storage import FileSlice, Log, OffsetOutOfRangeError, StorageError

READ_COMMITTED = 1
_BATCH_HEAD = struct.Struct(">qi")  # base offset, batch length (after this field)


class _Part:
    __slots__ = ("aborted", "error", "index", "key", "log", "offset", "partition_max", "records")

    def __init__(self, key: PartitionKey, log_: Log | None, error: int, target: FetchTarget) -> None:
        self.key = key
        self.index = key[1]
        self.log = log_
        self.offset = target.fetch_offset
        self.partition_max = target.partition_max_bytes
        self.error: int = error
        self.records: bytes | FileSlice = b""
        self.aborted: list[tuple[int, int]] | None = None

    def release(self) -> None:
        if isinstance(self.records, FileSlice):
            self.records.close()
        self.records = b""


def last_stable_offset(log_: Log) -> int:
    """The partition's last stable offset: the first offset of its earliest open transaction,
    else its end (the high watermark: one replica)."""
    return log_.last_stable_offset(log_.end_offset)


def _aborted(log_: Log, start: int, end: int) -> list[tuple[int, int]]:
    return [(a.producer_id, a.first_offset) for a in log_.aborted_transactions(start, end)]


def _below(data: bytes, end: int) -> bytes:
    """The leading batches of ``data`` whose base offset is below ``end`` (a batch boundary)."""
    pos = 0
    while pos + _BATCH_HEAD.size <= len(data):
        base, length = _BATCH_HEAD.unpack_from(data, pos)
        if base >= end:
            break
        pos += _BATCH_HEAD.size + length
    return data[:pos]


def _read_one(part: _Part, budget: int, zero_copy: bool, committed: bool) -> None:
    log_ = part.log
    assert log_ is not None
    stable = last_stable_offset(log_) if committed else log_.end_offset
    if committed and part.offset >= stable:
        if not log_.start_offset <= part.offset <= log_.end_offset:
            raise OffsetOutOfRangeError(part.offset, log_.start_offset, log_.end_offset)
        part.aborted = []
        return
    if zero_copy and stable == log_.end_offset:
        piece = log_.read_slice(part.offset, budget)
        next_offset = piece.next_offset
        if len(piece):
            part.records = piece
        else:
            piece.close()
    else:
        read = log_.read(part.offset, budget)
        data = read.data if stable == log_.end_offset else _below(read.data, stable)
        part.records = data
        next_offset = read.next_offset if stable == log_.end_offset else min(read.next_offset, stable)
    if committed:
        part.aborted = _aborted(log_, part.offset, next_offset) if len(part.records) else []


def _read_all(parts: list[_Part], max_bytes: int, zero_copy: bool, committed: bool) -> int:
    """Read every partition; the first partition with data gets at least one batch (KIP-74)."""
    total = 0
    for part in parts:
        part.release()
        if part.log is None or part.error:
            continue
        budget = min(part.partition_max, max_bytes - total)
        if budget <= 0 and total:
            continue
        try:
            _read_one(part, max(budget, 1), zero_copy, committed)
        except OffsetOutOfRangeError:
            part.error = ErrorCode.offset_out_of_range
            continue
        except StorageError:
            part.error = ErrorCode.kafka_storage_error
            continue
        total += len(part.records)
    return total


def _resolve(ctx: RequestContext, key: PartitionKey) -> tuple[Log | None, int]:
    topic_key, index = key
    if denied := authorization.topic_key_error(ctx, Operation.READ, topic_key):
        return None, denied
    if isinstance(topic_key, uuid.UUID):
        topic = ctx.broker.topics.by_id(topic_key)
        missing = ErrorCode.unknown_topic_id
    else:
        topic = ctx.broker.topics.get(topic_key)
        missing = ErrorCode.unknown_topic_or_partition
    if topic is not None:
        log_ = topic.log(index)
        return log_, ErrorCode.none if log_ is not None else ErrorCode.unknown_topic_or_partition
    internal = internal_topics.find(ctx.broker, topic_key)
    if internal is not None:
        log_ = internal.log if index == 0 else None
        return log_, ErrorCode.none if log_ is not None else ErrorCode.unknown_topic_or_partition
    return None, missing


def _context(ctx: RequestContext, request: Any) -> FetchContext:
    ids = ctx.api_version >= fetch_response.TOPIC_IDS_VERSION

    def topic_key(t: Any) -> TopicKey:
        return t.topic_id if ids else t.topic  # type: ignore[no-any-return]

    wanted = [
        ((topic_key(t), p.partition), FetchTarget(p.fetch_offset, p.partition_max_bytes))
        for t in request.topics
        for p in t.partitions
    ]
    if ctx.api_version < 7:
        return FetchContext(wanted)
    forgotten = [(topic_key(t), p) for t in request.forgotten_topics_data for p in t.partitions]
    return ctx.broker.fetch_sessions.context(
        request.session_id, request.session_epoch, wanted, forgotten, uses_topic_ids=ids
    )


async def handle_fetch(ctx: RequestContext, request: Any) -> Any:
    parts: list[_Part] = []
    try:
        return await _fetch(ctx, request, parts)
    except BaseException:
        for part in parts:
            part.release()
        raise


async def _fetch(ctx: RequestContext, request: Any, parts: list[_Part]) -> Encoded:
    version = ctx.api_version
    fetch = _context(ctx, request)
    if fetch.error:
        chunks = fetch_response.encode(version, ctx.correlation_id, [], error_code=fetch.error)
        return Encoded(chunks)
    for key, target in fetch.partitions:
        log_, error = _resolve(ctx, key)
        parts.append(_Part(key, log_, error, target))
    committed = getattr(request, "isolation_level", 0) == READ_COMMITTED
    zero_copy = ctx.connection.zero_copy
    max_bytes = getattr(request, "max_bytes", 0x7FFFFFFF)
    total = _read_all(parts, max_bytes, zero_copy, committed)
    wait = ms(request.max_wait) / 1000
    # Kafka answers at once when a partition has an error, or min_bytes (0: none) are there.
    min_bytes = request.min_bytes
    if total < min_bytes and wait > 0 and not any(p.error for p in parts):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        logs = [p.log for p in parts if p.log is not None]
        while logs and total < min_bytes:
            remaining = deadline - loop.time()
            if remaining <= 0 or not await ctx.broker.topics.waiters.wait(logs, remaining):
                break
            await asyncio.sleep(0)  # let producers of the same iteration append too
            total = _read_all(parts, max_bytes, zero_copy, committed)
            if any(p.error for p in parts):
                break
    topics_data: dict[TopicKey, list[fetch_response.PartitionData]] = {}
    for part in parts:
        data = _partition_data(part)
        selected = fetch.select(
            part.key,
            high_watermark=data.high_watermark,
            log_start_offset=data.log_start_offset,
            error=data.error_code,
            records=len(data.records),
        )
        if selected:
            topics_data.setdefault(part.key[0], []).append(data)
        else:
            part.release()
    chunks = fetch_response.encode(
        version, ctx.correlation_id, list(topics_data.items()), session_id=fetch.session_id
    )
    return Encoded(chunks)


def _partition_data(part: _Part) -> fetch_response.PartitionData:
    log_ = part.log
    if log_ is None:
        return fetch_response.PartitionData(part.index, part.error, -1, -1, -1, b"")
    end = log_.end_offset
    stable = last_stable_offset(log_)  # sent whatever the isolation level, as Kafka does
    return fetch_response.PartitionData(
        part.index, part.error, end, stable, log_.start_offset, part.records, part.aborted
    )


APIS = [Api(ApiKey.FETCH, fetch_response.MIN_VERSION, fetch_response.MAX_VERSION, handle_fetch)]
