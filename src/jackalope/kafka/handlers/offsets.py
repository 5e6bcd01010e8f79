"""ListOffsets (earliest, latest, by timestamp) and DeleteRecords."""

from __future__ import annotations

from typing import Any

from jackalope.kafka import internal_topics
from jackalope.kafka.context import RequestContext
from jackalope.kafka.handlers import Api
from jackalope.kafka.handlers.fetch import last_stable_offset
from jackalope.kafka.protocol import ApiKey, ErrorCode, build, response_module
from jackalope.storage import StorageError

LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3  # v7+ (KIP-734): the record with the largest timestamp
EARLIEST_LOCAL = -4  # v8+ (KIP-405): without tiered storage, the earliest offset
LATEST_TIERED = -5  # v9+ (KIP-1005): without tiered storage, none (-1)
EARLIEST_PENDING_UPLOAD = -6  # v11+ (KIP-1023): without tiered storage, none (-1)
READ_COMMITTED = 1


def _list_offset(
    ctx: RequestContext, topic: str, partition: int, timestamp: int, isolation_level: int
) -> tuple[int, int, int]:
    """``(error, timestamp, offset)`` for one partition."""
    log_ = internal_topics.partition(ctx.broker, topic, partition)
    if log_ is None:
        return ErrorCode.unknown_topic_or_partition, -1, -1
    # read_committed sees up to the last stable offset, read_uncommitted up to the high watermark
    fetchable = last_stable_offset(log_) if isolation_level == READ_COMMITTED else log_.end_offset
    if timestamp == LATEST:
        return ErrorCode.none, -1, fetchable
    if timestamp == LATEST_TIERED and ctx.api_version >= 9:
        return ErrorCode.none, -1, -1
    if timestamp == EARLIEST_PENDING_UPLOAD and ctx.api_version >= 11:
        return ErrorCode.none, -1, -1
    if timestamp in (EARLIEST, EARLIEST_LOCAL):
        return ErrorCode.none, -1, log_.start_offset
    if timestamp == MAX_TIMESTAMP:
        if log_.start_offset == log_.end_offset:
            return ErrorCode.none, -1, -1
        timestamp = log_.max_timestamp
    elif timestamp < 0:
        return ErrorCode.unsupported_version, -1, -1
    try:
        offset = log_.offset_for_time(timestamp)
        if offset is None or offset >= fetchable:
            return ErrorCode.none, -1, -1
        records = log_.read_records(offset, 1)
    except StorageError:
        return ErrorCode.kafka_storage_error, -1, -1
    found = next((r for r in records if r.offset == offset), None)
    ts = found.timestamp if found is not None and found.timestamp is not None else timestamp
    return ErrorCode.none, ts, offset


async def handle_list_offsets(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.LIST_OFFSETS, ctx.api_version)
    topics = []
    for t in request.topics:
        partitions = []
        for p in t.partitions:
            error, ts, offset = _list_offset(
                ctx, t.name, p.partition_index, p.timestamp, getattr(request, "isolation_level", 0)
            )
            partitions.append(
                build(
                    mod.ListOffsetsPartitionResponse,
                    partition_index=p.partition_index,
                    error_code=error,
                    timestamp=ts,
                    offset=offset,
                    leader_epoch=0,
                )
            )
        topics.append(build(mod.ListOffsetsTopicResponse, name=t.name, partitions=tuple(partitions)))
    return build(mod.ListOffsetsResponse, throttle_time=0, topics=tuple(topics))


async def handle_delete_records(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.DELETE_RECORDS, ctx.api_version)
    results = []
    for t in request.topics:
        partitions = []
        for p in t.partitions:
            log_ = ctx.broker.topics.partition(t.name, p.partition_index)
            error, low = ErrorCode.none, -1
            if log_ is None:
                error = ErrorCode.unknown_topic_or_partition
            else:
                offset = log_.end_offset if p.offset == -1 else p.offset
                if not 0 <= offset <= log_.end_offset:
                    error = ErrorCode.offset_out_of_range
                else:
                    try:
                        log_.truncate_prefix(offset)
                    except StorageError:
                        error = ErrorCode.kafka_storage_error
                low = log_.start_offset
            partitions.append(
                build(
                    mod.DeleteRecordsPartitionResult,
                    partition_index=p.partition_index,
                    low_watermark=low,
                    error_code=error,
                )
            )
        results.append(build(mod.DeleteRecordsTopicResult, name=t.name, partitions=tuple(partitions)))
    return build(mod.DeleteRecordsResponse, throttle_time=0, topics=tuple(results))


APIS = [
    Api(ApiKey.LIST_OFFSETS, 1, 11, handle_list_offsets),
    Api(ApiKey.DELETE_RECORDS, 0, 2, handle_delete_records),
]
