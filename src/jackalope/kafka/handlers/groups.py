"""Consumer groups: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
OffsetFetch, DescribeGroups, ListGroups and DeleteGroups, translated to
:class:`jackalope.core.groups.GroupCoordinator` calls.

This broker is the coordinator of every group.  Coordinator errors are
:class:`~jackalope.core.groups.GroupError` names, which are Kafka's: they map onto
``ErrorCode`` by name.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from jackalope.core.acls import ResourceType
from jackalope.core.groups import GroupDescription, GroupError, OffsetAndMetadata, TopicPartition
from jackalope.kafka import authorization
from jackalope.kafka.context import RequestContext
from jackalope.kafka.handlers import Api
from jackalope.kafka.protocol import ApiKey, ErrorCode, build, ms, response_module

if TYPE_CHECKING:
    pass

NO_AUTHORIZED_OPERATIONS: Final = -2147483648
KEY_TYPE_GROUP: Final = 0
KEY_TYPE_TRANSACTION: Final = 1

_CODES: Final = {error: ErrorCode[error.name.lower()] for error in GroupError}


def code(error: GroupError | None) -> ErrorCode:
    """Kafka's error code for a coordinator error (``none`` for None)."""
    return ErrorCode.none if error is None else _CODES[error]


# -- FindCoordinator ---------------------------------------------------------------------------


async def handle_find_coordinator(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.FIND_COORDINATOR, ctx.api_version)
    key_type = getattr(request, "key_type", KEY_TYPE_GROUP)
    broker = ctx.broker

    def locate(key: str) -> dict[str, Any]:
        error: int = ErrorCode.none
        message = None
        if key_type not in (KEY_TYPE_GROUP, KEY_TYPE_TRANSACTION):
            error, message = ErrorCode.invalid_request, f"unsupported coordinator key type {key_type}"
        if error:
            return {
                "key": key,
                "error_code": error,
                "error_message": message,
                "node_id": -1,
                "host": "",
                "port": -1,
            }
        return {
            "key": key,
            "error_code": error,
            "error_message": None,
            "node_id": broker.node_id,
            "host": ctx.listener.advertised_host,
            "port": ctx.listener.advertised_port,
        }

    if ctx.api_version < 4:
        found = locate(request.key)
        del found["key"]  # v0-v3 answer for the one key asked
        return build(mod.FindCoordinatorResponse, throttle_time=0, **found)
    coordinators = tuple(build(mod.Coordinator, **locate(key)) for key in request.coordinator_keys)
    return build(mod.FindCoordinatorResponse, throttle_time=0, coordinators=coordinators)


# -- JoinGroup, SyncGroup, Heartbeat, LeaveGroup -----------------------------------------------


async def handle_join_group(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.JOIN_GROUP, ctx.api_version)
    session_timeout = ms(request.session_timeout)
    result = await ctx.broker.groups.join(
        request.group_id,
        request.member_id,
        getattr(request, "group_instance_id", None),
        ctx.client_id or "",
        "/" + ctx.connection.client_host,
        session_timeout,
        # v0 has no rebalance timeout: the session timeout serves as both, as in Kafka
        ms(getattr(request, "rebalance_timeout", session_timeout)),
        request.protocol_type,
        [(p.name, p.metadata) for p in request.protocols],
        # KIP-394: from v4 a new member first gets MEMBER_ID_REQUIRED and its member id
        ctx.api_version >= 4,
    )
    members = tuple(
        build(
            mod.JoinGroupResponseMember,
            member_id=m.member_id,
            group_instance_id=m.group_instance_id,
            metadata=m.metadata,
        )
        for m in result.members
    )
    protocol_name = result.protocol_name
    if protocol_name is None and ctx.api_version < 7:
        protocol_name = ""  # nullable from v7 only
    return build(
        mod.JoinGroupResponse,
        throttle_time=0,
        error_code=code(result.error),
        generation_id=result.generation_id,
        protocol_type=result.protocol_type,
        protocol_name=protocol_name,
        leader=result.leader_id,
        skip_assignment=False,
        member_id=result.member_id,
        members=members,
    )


async def handle_sync_group(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.SYNC_GROUP, ctx.api_version)
    result = await ctx.broker.groups.sync(
        request.group_id,
        request.generation_id,
        request.member_id,
        getattr(request, "group_instance_id", None),
        getattr(request, "protocol_type", None),
        getattr(request, "protocol_name", None),
        {a.member_id: a.assignment for a in request.assignments},
    )
    return build(
        mod.SyncGroupResponse,
        throttle_time=0,
        error_code=code(result.error),
        protocol_type=result.protocol_type,
        protocol_name=result.protocol_name,
        assignment=result.assignment,
    )


async def handle_heartbeat(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.HEARTBEAT, ctx.api_version)
    error = ctx.broker.groups.heartbeat(
        request.group_id,
        request.generation_id,
        request.member_id,
        getattr(request, "group_instance_id", None),
    )
    return build(mod.HeartbeatResponse, throttle_time=0, error_code=code(error))


async def handle_leave_group(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.LEAVE_GROUP, ctx.api_version)
    groups = ctx.broker.groups
    if ctx.api_version < 3:  # one member, by member id
        error, errors = groups.leave(request.group_id, [(request.member_id, None)])
        return build(mod.LeaveGroupResponse, throttle_time=0, error_code=code(error or errors[0]))
    identities = [(m.member_id, m.group_instance_id) for m in request.members]
    error, errors = groups.leave(request.group_id, identities)
    members = tuple(
        build(
            mod.MemberResponse,
            member_id=member_id,
            group_instance_id=instance_id,
            error_code=code(member_error),
        )
        for (member_id, instance_id), member_error in zip(identities, errors, strict=False)
    )
    return build(mod.LeaveGroupResponse, throttle_time=0, error_code=code(error), members=members)


# -- offsets -----------------------------------------------------------------------------------


async def handle_offset_commit(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.OFFSET_COMMIT, ctx.api_version)
    topics = ctx.broker.topics
    by_id = ctx.api_version >= 10
    errors: dict[tuple[str, int], int] = {}  # from the coordinator
    wanted: dict[tuple[str, int], OffsetAndMetadata] = {}
    # per request topic: its key (name or id) and [(partition, (topic, partition) if sent on, error)]
    layout: list[tuple[Any, list[tuple[int, tuple[str, int] | None, int]]]] = []
    for t in request.topics:
        if by_id:
            topic = topics.by_id(t.topic_id)
            name = topic.name if topic is not None else None
            missing: int = ErrorCode.unknown_topic_id
        else:
            name = t.name
            missing = ErrorCode.unknown_topic_or_partition
        parts: list[tuple[int, tuple[str, int] | None, int]] = []
        for p in t.partitions:
            if name is None or topics.partition(name, p.partition_index) is None:
                parts.append((p.partition_index, None, missing))
                continue
            tp = (name, p.partition_index)
            wanted[tp] = OffsetAndMetadata(
                p.committed_offset,
                getattr(p, "committed_leader_epoch", -1),
                p.committed_metadata or "",
            )
            parts.append((p.partition_index, tp, ErrorCode.none))
        layout.append((t.topic_id if by_id else t.name, parts))
    if wanted:
        results = await ctx.broker.groups.commit_offsets(
            request.group_id,
            request.generation_id_or_member_epoch,
            request.member_id,
            getattr(request, "group_instance_id", None),
            wanted,
        )
        errors = {tp: code(error) for tp, error in results.items()}
    response_topics = []
    for key, parts in layout:
        partitions = tuple(
            build(
                mod.OffsetCommitResponsePartition,
                partition_index=index,
                error_code=errors[tp] if tp is not None else error,
            )
            for index, tp, error in parts
        )
        if by_id:
            response_topics.append(build(mod.OffsetCommitResponseTopic, topic_id=key, partitions=partitions))
        else:
            response_topics.append(build(mod.OffsetCommitResponseTopic, name=key, partitions=partitions))
    return build(mod.OffsetCommitResponse, throttle_time=0, topics=tuple(response_topics))


def _fetch_group(
    ctx: RequestContext,
    group_id: str,
    requested: Iterable[Any] | None,
    partition_cls: Any,
    topic_cls: Any,
    require_stable: bool = False,
) -> tuple[int, tuple[Any, ...]]:
    """One group's OffsetFetch: ``(group error, topics)``; partitions never committed get -1;
    with ``require_stable`` (KIP-447) those an open transaction holds offsets of get
    UNSTABLE_OFFSET_COMMIT."""
    by_id = ctx.api_version >= 10
    topics = ctx.broker.topics

    def partition(
        index: int, om: OffsetAndMetadata | None, error: int = ErrorCode.none, name: str = ""
    ) -> Any:
        if (name, index) in unstable:
            om, error = None, ErrorCode.unstable_offset_commit
        return build(
            partition_cls,
            partition_index=index,
            committed_offset=om.offset if om is not None else -1,
            committed_leader_epoch=om.leader_epoch if om is not None else -1,
            metadata=om.metadata if om is not None else "",
            error_code=error,
        )

    def topic_entry(name: str | None, topic_id: uuid.UUID | None, partitions: tuple[Any, ...]) -> Any:
        if by_id:
            return build(topic_cls, topic_id=topic_id, partitions=partitions)
        return build(topic_cls, name=name, partitions=partitions)

    error, committed = ctx.broker.groups.fetch_offsets(group_id, None)
    unstable = ctx.broker.groups.unstable_offsets(group_id) if require_stable and error is None else set()
    if error is not None:
        if ctx.api_version >= 2 or requested is None:
            return code(error), ()
        # v1 has no group-level error: every partition asked about carries it
        return code(error), tuple(
            topic_entry(t.name, None, tuple(partition(i, None, code(error)) for i in t.partition_indexes))
            for t in requested
        )
    out = []
    if requested is None:
        by_topic: dict[str, list[tuple[int, OffsetAndMetadata | None]]] = {}
        everything: dict[TopicPartition, OffsetAndMetadata | None] = {**dict.fromkeys(unstable), **committed}
        for (name, index), om in sorted(everything.items()):
            by_topic.setdefault(name, []).append((index, om))
        for name, entries in by_topic.items():
            topic_id = None
            if by_id:
                topic = topics.get(name)
                if topic is None:
                    continue  # a topic without an id can't be named in v10
                topic_id = topic.topic_id
            out.append(topic_entry(name, topic_id, tuple(partition(i, om, name=name) for i, om in entries)))
        return ErrorCode.none, tuple(out)
    for t in requested:
        if by_id:
            topic = topics.by_id(t.topic_id)
            if topic is None:
                parts = tuple(partition(i, None, ErrorCode.unknown_topic_id) for i in t.partition_indexes)
                out.append(topic_entry(None, t.topic_id, parts))
                continue
            name = topic.name
        else:
            name = t.name
        parts = tuple(partition(i, committed.get((name, i)), name=name) for i in t.partition_indexes)
        out.append(topic_entry(name, getattr(t, "topic_id", None), parts))
    return ErrorCode.none, tuple(out)


async def handle_offset_fetch(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.OFFSET_FETCH, ctx.api_version)
    if ctx.api_version < 8:
        error, topics = _fetch_group(
            ctx,
            request.group_id,
            request.topics,
            mod.OffsetFetchResponsePartition,
            mod.OffsetFetchResponseTopic,
            getattr(request, "require_stable", False),
        )
        return build(mod.OffsetFetchResponse, throttle_time=0, topics=topics, error_code=error)
    # v8+: several groups per request; v9 adds member id and epoch, which only the new
    # (KIP-848) consumer protocol checks
    results = []
    for g in request.groups:
        stale = ctx.broker.groups.validate_offset_fetch(
            g.group_id, getattr(g, "member_id", None), getattr(g, "member_epoch", -1)
        )
        if stale is not None:
            results.append(
                build(mod.OffsetFetchResponseGroup, group_id=g.group_id, topics=(), error_code=code(stale))
            )
            continue
        error, topics = _fetch_group(
            ctx,
            g.group_id,
            g.topics,
            mod.OffsetFetchResponsePartitions,
            mod.OffsetFetchResponseTopics,
            request.require_stable,
        )
        results.append(
            build(mod.OffsetFetchResponseGroup, group_id=g.group_id, topics=topics, error_code=error)
        )
    return build(mod.OffsetFetchResponse, throttle_time=0, groups=tuple(results))


# -- administration ----------------------------------------------------------------------------


async def handle_describe_groups(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.DESCRIBE_GROUPS, ctx.api_version)
    described = []
    for group_id in request.groups:
        d = ctx.broker.groups.describe(group_id)
        if d.group_type != "classic":  # as Kafka: ConsumerGroupDescribe describes KIP-848 groups
            d = GroupDescription(group_id, "Dead", "", "", [])
        error: int = code(d.error)
        message = None
        if d.error is None and d.state == "Dead" and ctx.api_version >= 6:
            # KIP-1043: v6 tells an unknown group apart from an empty one
            error, message = ErrorCode.group_id_not_found, f"group {group_id} not found"
        members = tuple(
            build(
                mod.DescribedGroupMember,
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                client_id=m.client_id,
                client_host=m.client_host,
                member_metadata=m.metadata,
                member_assignment=m.assignment,
            )
            for m in d.members
        )
        described.append(
            build(
                mod.DescribedGroup,
                error_code=error,
                error_message=message,
                group_id=group_id,
                group_state=d.state,
                protocol_type=d.protocol_type,
                protocol_data=d.protocol,
                members=members,
                authorized_operations=(
                    authorization.authorized_operations(ctx, ResourceType.GROUP, group_id)
                    if getattr(request, "include_authorized_operations", False)
                    else NO_AUTHORIZED_OPERATIONS
                ),  # KIP-430
            )
        )
    return build(mod.DescribeGroupsResponse, throttle_time=0, groups=tuple(described))


async def handle_list_groups(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.LIST_GROUPS, ctx.api_version)
    types = {t.lower() for t in getattr(request, "types_filter", ())}
    error, listed = ctx.broker.groups.list_groups(getattr(request, "states_filter", ()))
    entries = tuple(
        build(
            mod.ListedGroup,
            group_id=g.group_id,
            protocol_type=g.protocol_type,
            group_state=g.state,
            group_type=g.group_type,  # classic, or consumer (KIP-848)
        )
        for g in listed
        if not types or g.group_type in types
    )
    return build(mod.ListGroupsResponse, throttle_time=0, error_code=code(error), groups=entries)


async def handle_delete_groups(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.DELETE_GROUPS, ctx.api_version)
    names = list(request.groups_names)
    errors = {name: code(error) for name, error in (await ctx.broker.groups.delete_groups(names)).items()}
    results = tuple(build(mod.DeletableGroupResult, group_id=name, error_code=errors[name]) for name in names)
    return build(mod.DeleteGroupsResponse, throttle_time=0, results=results)


APIS = [
    Api(ApiKey.FIND_COORDINATOR, 0, 6, handle_find_coordinator),
    Api(ApiKey.JOIN_GROUP, 0, 9, handle_join_group),
    Api(ApiKey.SYNC_GROUP, 0, 5, handle_sync_group),
    Api(ApiKey.HEARTBEAT, 0, 4, handle_heartbeat),
    Api(ApiKey.LEAVE_GROUP, 0, 5, handle_leave_group),
    Api(ApiKey.OFFSET_COMMIT, 2, 10, handle_offset_commit),
    Api(ApiKey.OFFSET_FETCH, 1, 10, handle_offset_fetch),
    Api(ApiKey.DESCRIBE_GROUPS, 0, 6, handle_describe_groups),
    Api(ApiKey.LIST_GROUPS, 0, 5, handle_list_groups),
    Api(ApiKey.DELETE_GROUPS, 0, 2, handle_delete_groups),
]
