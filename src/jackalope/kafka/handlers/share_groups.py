"""Share groups (KIP-932), membership: ShareGroupHeartbeat and ShareGroupDescribe, translated
to :class:`jackalope.core.share.ShareCoordinator` calls.

Authorization is Kafka's: Read on the group for a heartbeat (the request guard) and Describe
on every topic it subscribes to (TOPIC_AUTHORIZATION_FAILED otherwise, here); Describe on each
group described (the request guard).  The core names partitions by topic name, the wire by
topic id; assigned partitions of a topic deleted since are left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from jackalope.core.acls import Operation, ResourceType
from jackalope.core.groups import GroupError
from jackalope.core.share import ShareCoordinator, ShareHeartbeat
from jackalope.kafka import authorization as authz
from jackalope.kafka.context import RequestContext
from jackalope.kafka.handlers import Api
from jackalope.kafka.handlers.consumer_groups import assignment_entity
from jackalope.kafka.handlers.groups import code
from jackalope.kafka.protocol import ApiKey, ErrorCode, build, response_module

NO_AUTHORIZED_OPERATIONS: Final = -2147483648


def coordinator(ctx: RequestContext) -> ShareCoordinator | None:
    return ctx.broker.share


def _by_topic(partitions: Iterable[tuple[str, int]]) -> dict[str, list[int]]:
    by_topic: dict[str, list[int]] = {}
    for name, partition in partitions:
        by_topic.setdefault(name, []).append(partition)
    return by_topic


async def handle_share_group_heartbeat(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.SHARE_GROUP_HEARTBEAT, ctx.api_version)

    def refuse(error: int, message: str | None) -> Any:
        return build(
            mod.ShareGroupHeartbeatResponse,
            throttle_time=0,
            error_code=error,
            error_message=message,
            member_id=None,
            member_epoch=0,
            heartbeat_interval=0,
            assignment=None,
        )

    share = coordinator(ctx)
    if share is None:
        return refuse(ErrorCode.unsupported_version, "share groups are not enabled on this broker")
    names = request.subscribed_topic_names
    if names:
        denied = authz.denied_topics(ctx, Operation.DESCRIBE, names)
        if denied:
            return refuse(
                ErrorCode.topic_authorization_failed,
                f"The member is not authorized to describe the topics {', '.join(sorted(denied))}.",
            )
    hb = ShareHeartbeat(
        member_id=request.member_id,
        member_epoch=request.member_epoch,
        rack_id=request.rack_id,
        subscribed_topic_names=tuple(names) if names is not None else None,
        client_id=ctx.client_id or "",
        client_host="/" + ctx.connection.client_host,
    )
    result = share.heartbeat(request.group_id, hb)
    if result.error is not None:
        return refuse(code(result.error), result.message)
    assignment = None
    if result.assignment is not None:
        assignment = assignment_entity(ctx, mod, _by_topic(result.assignment), with_names=False)
    return build(
        mod.ShareGroupHeartbeatResponse,
        throttle_time=0,
        error_code=ErrorCode.none,
        error_message=None,
        member_id=result.member_id,
        member_epoch=result.member_epoch,
        heartbeat_interval=share.heartbeat_interval_ms(request.group_id) if result.member_epoch >= 0 else 0,
        assignment=assignment,
    )


async def handle_share_group_describe(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.SHARE_GROUP_DESCRIBE, ctx.api_version)
    share = coordinator(ctx)

    def failed(group_id: str, error: GroupError, message: str) -> Any:
        return build(
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

    described = []
    for group_id in request.group_ids:
        group = share.group(group_id) if share is not None else None
        if group is None:
            other = ctx.broker.groups.describe(group_id).state != "Dead"
            message = f"Group {group_id} is not a share group." if other else f"Group {group_id} not found."
            described.append(failed(group_id, GroupError.GROUP_ID_NOT_FOUND, message))
            continue
        members = tuple(
            build(
                mod.Member,
                member_id=m.member_id,
                rack_id=m.rack_id,
                member_epoch=m.epoch,
                client_id=m.client_id,
                client_host=m.client_host,
                subscribed_topic_names=m.subscribed_topic_names,
                assignment=assignment_entity(ctx, mod, _by_topic(m.assigned), with_names=True),
            )
            for m in sorted(group.members.values(), key=lambda m: m.member_id)
        )
        operations = NO_AUTHORIZED_OPERATIONS
        if request.include_authorized_operations:
            operations = authz.authorized_operations(ctx, ResourceType.GROUP, group_id)
        described.append(
            build(
                mod.DescribedGroup,
                error_code=ErrorCode.none,
                error_message=None,
                group_id=group_id,
                group_state=group.state.value,
                group_epoch=group.group_epoch,
                assignment_epoch=group.assignment_epoch,
                assignor_name="simple",
                members=members,
                authorized_operations=operations,
            )
        )
    return build(mod.ShareGroupDescribeResponse, throttle_time=0, groups=tuple(described))


APIS = [
    Api(ApiKey.SHARE_GROUP_HEARTBEAT, 1, 1, handle_share_group_heartbeat),
    Api(ApiKey.SHARE_GROUP_DESCRIBE, 1, 1, handle_share_group_describe),
]
