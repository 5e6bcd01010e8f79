"""DescribeShareGroupOffsets (90), AlterShareGroupOffsets (91), DeleteShareGroupOffsets (92).

A share group's "offset" of a partition is its share-partition start offset (SPSO, KIP-932).
Describe needs Describe on the group and on each topic; Alter (Read on the group and the topics)
and Delete (Delete on the group, Read on the topics) change a group only while it has no members
(``NON_EMPTY_GROUP`` otherwise), as Kafka does, and answer once the change is durable.
"""

from __future__ import annotations

from typing import Any

from jackalope.core.acls import Operation
from jackalope.core.share.partitions import SharePartitions
from jackalope.kafka import authorization
from jackalope.kafka.context import RequestContext
from jackalope.kafka.handlers import Api
from jackalope.kafka.protocol import ApiKey, ErrorCode, build, response_module
from jackalope.storage import StorageError


def _group_exists(ctx: RequestContext, manager: SharePartitions, group: str) -> bool:
    share = ctx.broker.share
    if share is not None and share.exists(group):
        return True
    return bool(manager.keys(group))


def _group_has_members(ctx: RequestContext, group: str) -> bool:
    share = ctx.broker.share
    found = share.group(group) if share is not None else None
    return found is not None and bool(found.members)


async def handle_describe(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, ctx.api_version)
    manager = ctx.broker.share_partitions
    groups = []
    for g in request.groups:
        groups.append(_describe_group(ctx, mod, manager, g))
    return build(mod.DescribeShareGroupOffsetsResponse, throttle_time=0, groups=tuple(groups))


def _describe_group(ctx: RequestContext, mod: Any, manager: SharePartitions | None, g: Any) -> Any:
    def group_error(error: int) -> Any:
        return build(
            mod.DescribeShareGroupOffsetsResponseGroup, group_id=g.group_id, topics=(), error_code=error
        )

    if denied := authorization.group_error(ctx, Operation.DESCRIBE, g.group_id):
        return group_error(denied)
    if manager is None:
        return group_error(ErrorCode.unsupported_version)
    if g.topics is None:
        wanted: dict[str, list[int]] = {}
        for _, name, index in manager.keys(g.group_id):
            wanted.setdefault(name, []).append(index)
    else:
        wanted = {t.topic_name: list(t.partitions) for t in g.topics}
    topics = []
    for name, indexes in wanted.items():
        topic = ctx.broker.topics.get(name)
        denied = authorization.topic_error(ctx, Operation.DESCRIBE, name)
        partitions = []
        for index in indexes:
            error = denied or (
                ErrorCode.unknown_topic_or_partition if topic is None or topic.log(index) is None else 0
            )
            start, lag = -1, -1
            if not error and topic is not None and (log_ := topic.log(index)) is not None:
                key = (g.group_id, name, index)
                found = manager.start_offset(key)
                if found is not None:
                    start = found
                    lag = manager.lag(key, log_) or 0
            partitions.append(
                build(
                    mod.DescribeShareGroupOffsetsResponsePartition,
                    partition_index=index,
                    start_offset=start,
                    leader_epoch=0 if start >= 0 else -1,
                    lag=lag,
                    error_code=error,
                    error_message=None,
                )
            )
        topics.append(
            build(
                mod.DescribeShareGroupOffsetsResponseTopic,
                topic_name=name,
                topic_id=topic.topic_id if topic is not None else None,
                partitions=tuple(partitions),
            )
        )
    return build(
        mod.DescribeShareGroupOffsetsResponseGroup, group_id=g.group_id, topics=tuple(topics), error_code=0
    )


def _top_error(ctx: RequestContext, group: str, operation: Operation) -> int:
    if denied := authorization.group_error(ctx, operation, group):
        return denied
    if ctx.broker.share_partitions is None:
        return ErrorCode.unsupported_version
    if _group_has_members(ctx, group):
        return ErrorCode.non_empty_group
    return ErrorCode.none


async def handle_alter(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.ALTER_SHARE_GROUP_OFFSETS, ctx.api_version)
    group = request.group_id
    if error := _top_error(ctx, group, Operation.READ):
        return build(mod.AlterShareGroupOffsetsResponse, throttle_time=0, error_code=error, responses=())
    manager = ctx.broker.share_partitions
    assert manager is not None
    responses = []
    for t in request.topics:
        topic = ctx.broker.topics.get(t.topic_name)
        denied = authorization.topic_error(ctx, Operation.READ, t.topic_name)
        partitions = []
        for p in t.partitions:
            error = denied
            log_ = topic.log(p.partition_index) if topic is not None else None
            if not error and log_ is None:
                error = ErrorCode.unknown_topic_or_partition
            if not error and log_ is not None:
                if not log_.start_offset <= p.start_offset <= log_.end_offset:
                    error = ErrorCode.invalid_request  # Kafka refuses offsets outside the log too
                else:
                    try:
                        await manager.alter((group, t.topic_name, p.partition_index), p.start_offset)
                    except StorageError:
                        error = ErrorCode.kafka_storage_error
            partitions.append(
                build(
                    mod.AlterShareGroupOffsetsResponsePartition,
                    partition_index=p.partition_index,
                    error_code=error,
                    error_message=None,
                )
            )
        responses.append(
            build(
                mod.AlterShareGroupOffsetsResponseTopic,
                topic_name=t.topic_name,
                topic_id=topic.topic_id if topic is not None else None,
                partitions=tuple(partitions),
            )
        )
    return build(
        mod.AlterShareGroupOffsetsResponse, throttle_time=0, error_code=0, responses=tuple(responses)
    )


async def handle_delete(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.DELETE_SHARE_GROUP_OFFSETS, ctx.api_version)
    group = request.group_id
    if error := _top_error(ctx, group, Operation.DELETE):
        return build(mod.DeleteShareGroupOffsetsResponse, throttle_time=0, error_code=error, responses=())
    manager = ctx.broker.share_partitions
    assert manager is not None
    if not _group_exists(ctx, manager, group):
        return build(
            mod.DeleteShareGroupOffsetsResponse,
            throttle_time=0,
            error_code=ErrorCode.group_id_not_found,
            responses=(),
        )
    responses = []
    for t in request.topics:
        topic = ctx.broker.topics.get(t.topic_name)
        error = authorization.topic_error(ctx, Operation.READ, t.topic_name)
        if not error and topic is None:
            error = ErrorCode.unknown_topic_or_partition
        if not error:
            try:
                await manager.delete([k for k in manager.keys(group) if k[1] == t.topic_name])
            except StorageError:
                error = ErrorCode.kafka_storage_error
        responses.append(
            build(
                mod.DeleteShareGroupOffsetsResponseTopic,
                topic_name=t.topic_name,
                topic_id=topic.topic_id if topic is not None else None,
                error_code=error,
                error_message=None,
            )
        )
    return build(
        mod.DeleteShareGroupOffsetsResponse, throttle_time=0, error_code=0, responses=tuple(responses)
    )


APIS = [
    Api(ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, 0, 1, handle_describe),
    Api(ApiKey.ALTER_SHARE_GROUP_OFFSETS, 0, 0, handle_alter),
    Api(ApiKey.DELETE_SHARE_GROUP_OFFSETS, 0, 0, handle_delete),
]
