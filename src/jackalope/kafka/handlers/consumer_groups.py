"""The consumer group protocol (KIP-848): ConsumerGroupHeartbeat and ConsumerGroupDescribe,
translated to :class:`jackalope.core.groups.GroupCoordinator` calls.

The core names partitions by topic name; the wire by topic id.  Owned partitions of a topic
id the broker does not know are dropped (the topic was deleted), as are assigned partitions
of a topic deleted since.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from jackalope.core.groups import GroupError
from jackalope.core.groups.consumer_group import HeartbeatRequest
from jackalope.kafka.context import RequestContext
from jackalope.kafka.handlers import Api
from jackalope.kafka.handlers.groups import code
from jackalope.kafka.protocol import ApiKey, ErrorCode, build, ms, response_module

NO_AUTHORIZED_OPERATIONS: Final = -2147483648
CONSUMER_MEMBER: Final = 1  # ConsumerGroupDescribe v1 member_type: a consumer-protocol member
CLASSIC_MEMBER: Final = 0  # a classic-protocol member of a consumer group (KIP-848 migration)


def _owned(ctx: RequestContext, topic_partitions: Any) -> dict[str, frozenset[int]] | None:
    if topic_partitions is None:
        return None
    owned: dict[str, frozenset[int]] = {}
    for tp in topic_partitions:
        topic = ctx.broker.topics.by_id(tp.topic_id)
        if topic is not None and tp.partitions:
            owned[topic.name] = owned.get(topic.name, frozenset()) | frozenset(tp.partitions)
    return owned


def assignment_entity(
    ctx: RequestContext, mod: Any, assignment: Mapping[str, Iterable[int]], *, with_names: bool
) -> Any:
    """A heartbeat's or a describe's ``Assignment``: the partitions by topic id (and name, in a
    describe), topics deleted meanwhile left out; the consumer and the share group APIs share it."""
    entries = []
    for name, partitions in sorted(assignment.items()):
        topic = ctx.broker.topics.get(name)
        if topic is None:
            continue
        named = {"topic_name": name} if with_names else {}
        entries.append(
            build(mod.TopicPartitions, topic_id=topic.topic_id, partitions=tuple(sorted(partitions)), **named)
        )
    return build(mod.Assignment, topic_partitions=tuple(entries))


async def handle_consumer_group_heartbeat(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.CONSUMER_GROUP_HEARTBEAT, ctx.api_version)
    groups = ctx.broker.groups
    rebalance_timeout = ms(request.rebalance_timeout)
    names = request.subscribed_topic_names
    req = HeartbeatRequest(
        member_id=request.member_id,
        member_epoch=request.member_epoch,
        instance_id=request.instance_id,
        rack_id=request.rack_id,
        rebalance_timeout_ms=rebalance_timeout,
        client_id=ctx.client_id or "",
        client_host="/" + ctx.connection.client_host,
        subscribed_topic_names=tuple(names) if names is not None else None,
        subscribed_topic_regex=getattr(request, "subscribed_topic_regex", None),
        server_assignor=request.server_assignor,
        owned=_owned(ctx, request.topic_partitions),
    )
    result = groups.consumer_heartbeat(request.group_id, req)
    if result.error is not None:
        return build(
            mod.ConsumerGroupHeartbeatResponse,
            throttle_time=0,
            error_code=code(result.error),
            error_message=result.message,
            member_id=None,
            member_epoch=0,
            heartbeat_interval=0,
            assignment=None,
        )
    assignment = None
    if result.assignment is not None:
        assignment = assignment_entity(ctx, mod, result.assignment, with_names=False)
    return build(
        mod.ConsumerGroupHeartbeatResponse,
        throttle_time=0,
        error_code=ErrorCode.none,
        error_message=None,
        member_id=result.member_id,
        member_epoch=result.member_epoch,
        heartbeat_interval=groups.consumer_heartbeat_interval(request.group_id),
        assignment=assignment,
    )


async def handle_consumer_group_describe(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.CONSUMER_GROUP_DESCRIBE, ctx.api_version)

    def assignment(parts: Mapping[str, frozenset[int]]) -> Any:
        return assignment_entity(ctx, mod, parts, with_names=True)

    described = []
    for group_id in request.group_ids:
        error, group = ctx.broker.groups.consumer_describe(group_id)
        if error is not None or group is None:
            message = None
            if error is GroupError.GROUP_ID_NOT_FOUND:
                exists = ctx.broker.groups.describe(group_id).state != "Dead"
                message = (
                    f"Group {group_id} is not a consumer group." if exists else f"Group {group_id} not found."
                )
            described.append(
                build(
                    mod.DescribedGroup,
                    error_code=code(error),
                    error_message=message,
                    group_id=group_id,
                    group_state="Dead",
                    group_epoch=-1,
                    assignment_epoch=-1,
                    assignor_name="",
                    members=(),
                    authorized_operations=NO_AUTHORIZED_OPERATIONS,
                )
            )
            continue
        members = tuple(
            build(
                mod.Member,
                member_id=m.member_id,
                instance_id=m.instance_id,
                rack_id=m.rack_id,
                member_epoch=m.epoch,
                client_id=m.client_id,
                client_host=m.client_host,
                subscribed_topic_names=m.subscribed_topic_names,
                subscribed_topic_regex=m.subscribed_topic_regex,
                assignment=assignment(m.assigned),
                target_assignment=assignment(group.target.get(m.member_id, {})),
                member_type=CLASSIC_MEMBER if m.classic is not None else CONSUMER_MEMBER,
            )
            for m in group.members.values()
        )
        described.append(
            build(
                mod.DescribedGroup,
                error_code=ErrorCode.none,
                error_message=None,
                group_id=group_id,
                group_state=group.state.value,
                group_epoch=group.group_epoch,
                assignment_epoch=group.assignment_epoch,
                assignor_name=group.assignor_name,
                members=members,
                authorized_operations=NO_AUTHORIZED_OPERATIONS,
            )
        )
    return build(mod.ConsumerGroupDescribeResponse, throttle_time=0, groups=tuple(described))


APIS = [
    Api(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, 1, handle_consumer_group_heartbeat),
    Api(ApiKey.CONSUMER_GROUP_DESCRIBE, 0, 1, handle_consumer_group_describe),
]
