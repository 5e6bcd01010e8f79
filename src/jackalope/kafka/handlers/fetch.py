"""Fetch: stored record batches, returned as stored, with long polling woken by appends.

The response is encoded by :mod:`jackalope.kafka.fetch_response`.  On plain TCP connections
the batches are ranges of the segment files (:meth:`Log.read_slice`) that the connection
sends with ``os.sendfile``, so they go from the page cache to the socket without passing
through Python; over TLS they are read into bytes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jackalope.kafka import fetch_response
from jackalope.kafka.context import RequestContext
from jackalope.kafka.handlers import Api
from jackalope.kafka.protocol import ApiKey, Encoded, ErrorCode, ms
from jackalope.storage import FileSlice, Log, OffsetOutOfRangeError, StorageError


class _Part:
    __slots__ = ("error", "index", "log", "offset", "partition_max", "records")

    def __init__(self, index: int, log_: Log | None, offset: int, partition_max: int) -> None:
        self.index = index
        self.log = log_
        self.offset = offset
        self.partition_max = partition_max
        self.error: int = ErrorCode.none if log_ is not None else ErrorCode.unknown_topic_or_partition
        self.records: bytes | FileSlice = b""

    def release(self) -> None:
        if isinstance(self.records, FileSlice):
            self.records.close()
        self.records = b""


def _read_all(parts: list[tuple[str, list[_Part]]], max_bytes: int, zero_copy: bool) -> int:
    """Read every partition; the first partition with data gets at least one batch (KIP-74)."""
    total = 0
    for _, topic_parts in parts:
        for part in topic_parts:
            part.release()
            if part.log is None or part.error == ErrorCode.offset_out_of_range:
                continue
            budget = min(part.partition_max, max_bytes - total)
            if budget <= 0 and total:
                continue
            try:
                if zero_copy:
                    piece = part.log.read_slice(part.offset, max(budget, 1))
                    part.records = piece if len(piece) else b""
                    if not len(piece):
                        piece.close()
                else:
                    part.records = part.log.read(part.offset, max(budget, 1)).data
            except OffsetOutOfRangeError:
                part.error = ErrorCode.offset_out_of_range
                continue
            except StorageError:
                part.error = ErrorCode.kafka_storage_error
                continue
            total += len(part.records)
    return total


async def handle_fetch(ctx: RequestContext, request: Any) -> Any:
    parts: list[tuple[str, list[_Part]]] = []
    try:
        return await _fetch(ctx, request, parts)
    except BaseException:
        for _, topic_parts in parts:
            for part in topic_parts:
                part.release()
        raise


async def _fetch(ctx: RequestContext, request: Any, parts: list[tuple[str, list[_Part]]]) -> Encoded:
    topics = ctx.broker.topics
    for t in request.topics:
        topic = topics.get(t.topic)
        parts.append(
            (
                t.topic,
                [
                    _Part(
                        p.partition,
                        topic.log(p.partition) if topic else None,
                        p.fetch_offset,
                        p.partition_max_bytes,
                    )
                    for p in t.partitions
                ],
            )
        )
    max_bytes = getattr(request, "max_bytes", 0x7FFFFFFF)
    total = _read_all(parts, max_bytes, ctx.connection.zero_copy)
    wait = ms(request.max_wait) / 1000
    # Kafka answers at once when a partition has an error, or min_bytes (0: none) are there.
    min_bytes = request.min_bytes
    errors = any(p.error for _, ps in parts for p in ps)
    if total < min_bytes and wait > 0 and not errors:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        logs = [p.log for _, ps in parts for p in ps if p.log is not None and not p.error]
        while logs and total < min_bytes:
            remaining = deadline - loop.time()
            if remaining <= 0 or not await topics.waiters.wait(logs, remaining):
                break
            await asyncio.sleep(0)  # let producers of the same iteration append too
            total = _read_all(parts, max_bytes, ctx.connection.zero_copy)
            if any(p.error for _, ps in parts for p in ps):
                break
    topics_data = [(name, [_partition_data(p) for p in topic_parts]) for name, topic_parts in parts]
    return Encoded(fetch_response.encode(ctx.api_version, ctx.correlation_id, topics_data))


def _partition_data(part: _Part) -> fetch_response.PartitionData:
    log_ = part.log
    end = log_.end_offset if log_ is not None else -1
    start = log_.start_offset if log_ is not None else -1
    return fetch_response.PartitionData(part.index, part.error, end, end, start, part.records)


APIS = [Api(ApiKey.FETCH, fetch_response.MIN_VERSION, fetch_response.MAX_VERSION, handle_fetch)]
