"""OffsetForLeaderEpoch and DescribeTopicPartitions (KIP-966): what a partition's leader
says of it.  One node leads every partition at leader epoch 0, from the log's start."""

from __future__ import annotations

from typing import Any, Final

from jackalope.core.topics import TopicError, validate_name
from jackalope.kafka import internal_topics
from jackalope.kafka.context import RequestContext
from jackalope.kafka.handlers import Api
from jackalope.kafka.handlers.metadata import NO_TOPIC_ID
from jackalope.kafka.protocol import ApiKey, ErrorCode, build, response_module

LEADER_EPOCH: Final = 0
UNDEFINED_EPOCH: Final = -1
MAX_PARTITIONS: Final = 2000  # max.request.partition.size.limit
# Without ACLs every operation on a topic is allowed: READ, WRITE, CREATE, DELETE, ALTER,
# DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS (Kafka's AclOperation codes, as bits).
TOPIC_OPERATIONS: Final = sum(1 << op for op in (3, 4, 5, 6, 7, 8, 10, 11))


# -- OffsetForLeaderEpoch -----------------------------------------------------------------------


def end_offset_for_epoch(
    start_offset: int, end_offset: int, current_leader_epoch: int, leader_epoch: int
) -> tuple[int, int, int]:
    """``(error, epoch, end offset)`` as Kafka's ``Partition.lastOffsetForLeaderEpoch`` with a
    leader epoch cache of one entry, epoch 0 from the log's start."""
    if current_leader_epoch >= 0 and current_leader_epoch != LEADER_EPOCH:
        error = (
            ErrorCode.fenced_leader_epoch
            if current_leader_epoch < LEADER_EPOCH
            else ErrorCode.unknown_leader_epoch
        )
        return error, UNDEFINED_EPOCH, -1
    if leader_epoch == LEADER_EPOCH:
        return ErrorCode.none, LEADER_EPOCH, end_offset
    if leader_epoch == UNDEFINED_EPOCH or leader_epoch > LEADER_EPOCH:
        return ErrorCode.none, UNDEFINED_EPOCH, -1  # no such epoch, nor a later one
    # an epoch before the first one: it ends where epoch 0 begins
    return ErrorCode.none, leader_epoch, start_offset


async def handle_offset_for_leader_epoch(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.OFFSET_FOR_LEADER_EPOCH, ctx.api_version)
    topics = []
    for t in request.topics:
        partitions = []
        for p in t.partitions:
            log_ = internal_topics.partition(ctx.broker, t.topic, p.partition)
            error: int
            if log_ is None:
                error, epoch, end = ErrorCode.unknown_topic_or_partition, UNDEFINED_EPOCH, -1
            else:
                error, epoch, end = end_offset_for_epoch(
                    log_.start_offset, log_.end_offset, p.current_leader_epoch, p.leader_epoch
                )
            partitions.append(
                build(
                    mod.EpochEndOffset,
                    error_code=error,
                    partition=p.partition,
                    leader_epoch=epoch,
                    end_offset=end,
                )
            )
        topics.append(build(mod.OffsetForLeaderTopicResult, topic=t.topic, partitions=tuple(partitions)))
    return build(mod.OffsetForLeaderEpochResponse, throttle_time=0, topics=tuple(topics))


# -- DescribeTopicPartitions --------------------------------------------------------------------


def _topic_error(mod: Any, name: str, error: int) -> Any:
    return build(
        mod.DescribeTopicPartitionsResponseTopic,
        error_code=error,
        name=name,
        topic_id=NO_TOPIC_ID,
        is_internal=internal_topics.is_internal(name),
        partitions=(),
        topic_authorized_operations=TOPIC_OPERATIONS,
    )


def _partition(mod: Any, ctx: RequestContext, index: int) -> Any:
    node = ctx.broker.node_id
    return build(
        mod.DescribeTopicPartitionsResponsePartition,
        error_code=ErrorCode.none,
        partition_index=index,
        leader_id=node,
        leader_epoch=LEADER_EPOCH,
        replica_nodes=(node,),
        isr_nodes=(node,),
        eligible_leader_replicas=(),
        last_known_elr=(),
        offline_replicas=(),
    )


async def handle_describe_topic_partitions(ctx: RequestContext, request: Any) -> Any:
    """As Kafka's ``DescribeTopicPartitionsRequestHandler``: the topics asked for (none: all),
    in name order from the cursor's, at most ``response_partition_limit`` partitions (capped
    at 2000); ``next_cursor`` says where the next request should go on from."""
    mod = response_module(ApiKey.DESCRIBE_TOPIC_PARTITIONS, ctx.api_version)
    broker = ctx.broker
    cursor = request.cursor
    after = cursor.topic_name if cursor is not None else ""
    everything = not request.topics
    if everything:
        names = {t.name for t in broker.topics} | {t.name for t in internal_topics.all_topics(broker)}
    else:
        names = {t.name for t in request.topics}
    names = {n for n in names if n >= after}
    invalid = None
    if cursor is not None and not everything and cursor.topic_name not in names:
        invalid = "the topic list must contain the cursor's topic"
    elif cursor is not None and cursor.partition_index < 0:
        invalid = "the cursor's partition must not be negative"
    if invalid is not None:
        topics = tuple(_topic_error(mod, t.name, ErrorCode.invalid_request) for t in request.topics)
        return build(mod.DescribeTopicPartitionsResponse, throttle_time=0, topics=topics, next_cursor=None)
    remaining = max(min(MAX_PARTITIONS, request.response_partition_limit), 1)
    results: list[Any] = []
    next_cursor = None
    for name in sorted(names):
        if remaining == 0:
            next_cursor = build(mod.Cursor, topic_name=name, partition_index=0)
            break
        topic = broker.topics.get(name) or internal_topics.find(broker, name)
        if topic is None:
            if not everything:
                try:
                    validate_name(name)
                    error = ErrorCode.unknown_topic_or_partition
                except TopicError:
                    error = ErrorCode.invalid_topic_exception
                results.append(_topic_error(mod, name, error))
            continue
        count = 1 if isinstance(topic, internal_topics.InternalTopic) else len(topic.partitions)
        first = cursor.partition_index if cursor is not None and name == cursor.topic_name else 0
        last = min(count, first + remaining)
        results.append(
            build(
                mod.DescribeTopicPartitionsResponseTopic,
                error_code=ErrorCode.none,
                name=name,
                topic_id=topic.topic_id,
                is_internal=isinstance(topic, internal_topics.InternalTopic),
                partitions=tuple(_partition(mod, ctx, i) for i in range(first, last)),
                topic_authorized_operations=TOPIC_OPERATIONS,
            )
        )
        if last < count:
            next_cursor = build(mod.Cursor, topic_name=name, partition_index=last)
            break
        remaining -= max(last - first, 0)
    return build(
        mod.DescribeTopicPartitionsResponse, throttle_time=0, topics=tuple(results), next_cursor=next_cursor
    )


APIS = [
    Api(ApiKey.OFFSET_FOR_LEADER_EPOCH, 2, 4, handle_offset_for_leader_epoch),
    Api(ApiKey.DESCRIBE_TOPIC_PARTITIONS, 0, 0, handle_describe_topic_partitions),
]
