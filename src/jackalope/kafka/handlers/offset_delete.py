"""OffsetDelete: forget a group's committed offsets of some partitions (KIP-496).

The group coordinator refuses the partitions of topics a member of the group subscribes to
(GROUP_SUBSCRIBED_TO_TOPIC); the subscriptions are read here, from the members' consumer
protocol metadata (``ConsumerProtocolSubscription``), which the coordinator does not parse.
"""

from __future__ import annotations

import importlib
import struct
from typing import Any

from kio.serial import entity_reader

from jackalope.core.groups import TopicPartition
from jackalope.kafka.context import RequestContext
from jackalope.kafka.handlers import Api
from jackalope.kafka.handlers.groups import code
from jackalope.kafka.protocol import ApiKey, ErrorCode, build, response_module

_VERSION = struct.Struct(">h")
_SUBSCRIPTION_VERSIONS = 3  # ConsumerProtocolSubscription v0-v3; newer ones read as v3


def subscribed_topics(metadata: bytes) -> list[str] | None:
    """The topics of a consumer's subscription metadata; None if it is no such thing."""
    if len(metadata) < _VERSION.size:
        return None
    (version,) = _VERSION.unpack_from(metadata)
    if version < 0:
        return None
    module = importlib.import_module(
        f"kio.schema.consumer_protocol_subscription.v{min(version, _SUBSCRIPTION_VERSIONS)}.data"
    )
    try:
        subscription, _ = entity_reader(module.ConsumerProtocolSubscription)(metadata, _VERSION.size)
    except Exception:
        return None
    return [str(t) for t in subscription.topics]


async def handle_offset_delete(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.OFFSET_DELETE, ctx.api_version)
    topics = ctx.broker.topics
    unknown: set[TopicPartition] = set()
    wanted: list[TopicPartition] = []
    for t in request.topics:
        for p in t.partitions:
            tp = (t.name, p.partition_index)
            if topics.partition(*tp) is None:
                unknown.add(tp)
            else:
                wanted.append(tp)
    error, results = await ctx.broker.groups.delete_offsets(request.group_id, wanted, subscribed_topics)
    if error is not None:
        return build(mod.OffsetDeleteResponse, error_code=code(error), throttle_time=0, topics=())
    response_topics = []
    for t in request.topics:
        partitions = []
        for p in t.partitions:
            tp = (t.name, p.partition_index)
            partition_error = ErrorCode.unknown_topic_or_partition if tp in unknown else code(results.get(tp))
            partitions.append(
                build(
                    mod.OffsetDeleteResponsePartition,
                    partition_index=p.partition_index,
                    error_code=partition_error,
                )
            )
        response_topics.append(
            build(mod.OffsetDeleteResponseTopic, name=t.name, partitions=tuple(partitions))
        )
    return build(
        mod.OffsetDeleteResponse, error_code=ErrorCode.none, throttle_time=0, topics=tuple(response_topics)
    )


APIS = [Api(ApiKey.OFFSET_DELETE, 0, 0, handle_offset_delete)]
