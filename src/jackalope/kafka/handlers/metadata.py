"""Metadata: one broker that leads every partition of every topic.

The coordinators' logs are listed as Kafka's internal topics (``__consumer_offsets``,
``__transaction_state``: :mod:`jackalope.kafka.internal_topics`), with ``is_internal`` set.
"""

from __future__ import annotations

import uuid
from typing import Any

from jackalope.core.topics import Topic, TopicError
from jackalope.kafka import internal_topics
from jackalope.kafka.context import RequestContext
from jackalope.kafka.handlers import Api
from jackalope.kafka.protocol import ApiKey, ErrorCode, build, response_module

NO_TOPIC_ID = uuid.UUID(int=0)


def auto_create(ctx: RequestContext, name: str) -> tuple[Topic | None, int]:
    """The topic ``name``, created with the default settings if allowed; or an error code."""
    topics = ctx.broker.topics
    topic = topics.get(name)
    if topic is not None:
        return topic, ErrorCode.none
    if not ctx.broker.auto_create_topics:
        return None, ErrorCode.unknown_topic_or_partition
    if internal_topics.is_internal(name):  # the coordinator makes its log on first use
        return None, ErrorCode.unknown_topic_or_partition
    try:
        return topics.create(name), ErrorCode.none
    except TopicError:
        return None, ErrorCode.invalid_topic_exception


def _topic_entry(
    mod: Any,
    ctx: RequestContext,
    topic: Topic | internal_topics.InternalTopic | None,
    name: str | None,
    error: int,
) -> Any:
    node = ctx.broker.node_id
    partitions = ()
    internal = isinstance(topic, internal_topics.InternalTopic)
    if topic is not None:
        partitions = tuple(
            build(
                mod.MetadataResponsePartition,
                error_code=0,
                partition_index=p,
                leader_id=node,
                leader_epoch=0,
                replica_nodes=(node,),
                isr_nodes=(node,),
                offline_replicas=(),
            )
            for p in range(1 if isinstance(topic, internal_topics.InternalTopic) else len(topic.partitions))
        )
    return build(
        mod.MetadataResponseTopic,
        error_code=error,
        name=name,
        topic_id=topic.topic_id if topic is not None else NO_TOPIC_ID,
        is_internal=internal,
        partitions=partitions,
        topic_authorized_operations=-2147483648,
    )


async def handle_metadata(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.METADATA, ctx.api_version)
    topics = ctx.broker.topics
    wanted = request.topics
    if ctx.api_version == 0 and not wanted:
        wanted = None  # v0: an empty list means every topic
    entries = []
    if wanted is None:
        entries = [_topic_entry(mod, ctx, t, t.name, 0) for t in topics]
        entries += [_topic_entry(mod, ctx, t, t.name, 0) for t in internal_topics.all_topics(ctx.broker)]
    else:
        # Only requests that ask (v4+, as producers do) create topics; v0-v3 requests, which
        # cannot say, never do (Kafka 4 no longer serves them at all).
        allow = getattr(request, "allow_auto_topic_creation", False)
        for item in wanted:
            name = item.name
            topic_id = getattr(item, "topic_id", None)
            if name is None and topic_id is not None:
                topic = topics.by_id(topic_id) or internal_topics.find(ctx.broker, topic_id)
                entries.append(
                    _topic_entry(
                        mod,
                        ctx,
                        topic,
                        topic.name if topic else None,
                        0 if topic else ErrorCode.unknown_topic_id,
                    )
                )
                continue
            topic = topics.get(name) or internal_topics.find(ctx.broker, name)
            error: int = ErrorCode.none
            if topic is None:
                if allow and not internal_topics.is_internal(name):
                    topic, error = auto_create(ctx, name)
                else:
                    error = ErrorCode.unknown_topic_or_partition
            entries.append(_topic_entry(mod, ctx, topic, name, error))
    broker = build(
        mod.MetadataResponseBroker,
        node_id=ctx.broker.node_id,
        host=ctx.listener.advertised_host,
        port=ctx.listener.advertised_port,
        rack=None,
    )
    return build(
        mod.MetadataResponse,
        throttle_time=0,
        brokers=(broker,),
        cluster_id=ctx.broker.cluster_id,
        controller_id=ctx.broker.node_id,
        topics=tuple(entries),
        cluster_authorized_operations=-2147483648,
        error_code=ErrorCode.none,  # v13+
    )


APIS = [Api(ApiKey.METADATA, 0, 13, handle_metadata)]
