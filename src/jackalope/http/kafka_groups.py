"""Kafka consumer groups over HTTP: ``/api/kafka/groups[/{group}[/reset-offsets]]``.

What ``kafka-consumer-groups`` shows and does: the groups with their state, members and total
lag; one group's members with their assignments and, per partition, the committed offset,
log start and end and the lag (lag is :mod:`jackalope.core.groups.lag`'s, computed nowhere
else); resetting a group's offsets and deleting a group, both refused with 409
``group_not_empty`` while the group has members, as the tool refuses.

A reset commits through the coordinator's own commit path as the tool does (generation -1, no
member id), after moving each target into the partition's [low, high] watermarks as Kafka
does.  ``to`` is ``earliest``, ``latest``, ``timestamp`` (the first offset whose record
timestamp is at or after ``value`` ms, else the high watermark), ``offset`` (``value``) or
``shift`` (the committed offset plus ``value``; a partition without one is refused).
``topics`` lists ``"topic"`` or ``"topic:0,2"`` (default: every topic the group has committed
offsets for); as with the tool, naming topics resets a group that has no offsets yet.
``dry_run`` computes without committing.

The coordinator exists only while the Kafka listener runs; without it these routes answer 503.
"""

from __future__ import annotations

import struct
from typing import Any

from aiohttp import web

from jackalope.core.groups import GroupCoordinator, GroupDescription, GroupError, OffsetAndMetadata
from jackalope.core.groups.lag import PartitionLag, group_lag
from jackalope.core.groups.types import GroupState, TopicPartition
from jackalope.core.topics import Topics
from jackalope.http import listing
from jackalope.http.base import CORE, ApiError, bad_request, require_administrator, require_monitor
from jackalope.http.kafka_api import is_int, not_found, object_body, topics_of

routes = web.RouteTableDef()

RESETS = ("earliest", "latest", "timestamp", "offset", "shift")
_NEEDS_VALUE = ("timestamp", "offset", "shift")
# What a commit for a group refuses with when members (re)appeared meanwhile.
_HAS_MEMBERS = (GroupError.UNKNOWN_MEMBER_ID, GroupError.ILLEGAL_GENERATION, GroupError.REBALANCE_IN_PROGRESS)
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")


def _coordinator(request: web.Request) -> GroupCoordinator:
    groups = request.app[CORE].groups
    if groups is None:
        raise ApiError(503, "kafka_disabled", "the Kafka listener is off: there are no consumer groups")
    return groups


def _unavailable(error: GroupError) -> ApiError:
    return ApiError(503, "coordinator_unavailable", f"the group coordinator answered {error}")


def _describe(coordinator: GroupCoordinator, group_id: str) -> GroupDescription:
    """The group (404 if there is none; an unknown group is described as Dead)."""
    described = coordinator.describe(group_id)
    if described.error is not None:
        raise _unavailable(described.error)
    if described.state == GroupState.DEAD:
        raise not_found(f"no consumer group {group_id!r}")
    return described


def assigned_partitions(assignment: bytes) -> list[TopicPartition]:
    """The partitions of a ``consumer`` protocol assignment (Kafka's ConsumerProtocolAssignment,
    every version: version, then [topic, [partition]]); [] for what is not one."""
    out: list[TopicPartition] = []
    try:
        pos = _I16.size
        (topics,) = _I32.unpack_from(assignment, pos)
        pos += _I32.size
        for _ in range(max(topics, 0)):
            (length,) = _I16.unpack_from(assignment, pos)
            pos += _I16.size
            topic = assignment[pos : pos + length].decode()
            pos += length
            (count,) = _I32.unpack_from(assignment, pos)
            pos += _I32.size
            for _ in range(max(count, 0)):
                out.append((topic, _I32.unpack_from(assignment, pos)[0]))
                pos += _I32.size
    except (struct.error, UnicodeDecodeError):
        return []
    return out


def _total_lag(lags: list[PartitionLag]) -> int:
    return sum(lag.lag for lag in lags)


def _group(coordinator: GroupCoordinator, topics: Topics, d: GroupDescription) -> dict[str, Any]:
    consumer = d.protocol_type == "consumer"
    members = []
    owner: dict[TopicPartition, Any] = {}
    for m in d.members:
        assigned = list(m.partitions) or (assigned_partitions(m.assignment) if consumer else [])
        members.append(
            {
                "member_id": m.member_id,
                "client_id": m.client_id,
                "client_host": m.client_host,
                "assignments": [{"topic": t, "partition": p} for t, p in assigned],
            }
        )
        for tp in assigned:
            owner[tp] = m
    lags = group_lag(coordinator, topics, d.group_id)
    rows: dict[TopicPartition, dict[str, Any]] = {}
    for lag in lags:
        rows[(lag.topic, lag.partition)] = {
            "topic": lag.topic,
            "partition": lag.partition,
            "current_offset": lag.committed_offset,
            "log_start_offset": lag.log_start_offset,
            "log_end_offset": lag.log_end_offset,
            "lag": lag.lag,
            "metadata": lag.metadata,
        }
    for topic, partition in owner:
        log_ = topics.partition(topic, partition)
        if (topic, partition) in rows or log_ is None:
            continue
        # Assigned, nothing committed yet: the tool prints "-" for its offset and lag.
        rows[(topic, partition)] = {
            "topic": topic,
            "partition": partition,
            "current_offset": None,
            "log_start_offset": log_.start_offset,
            "log_end_offset": log_.end_offset,
            "lag": None,
            "metadata": None,
        }
    offsets = []
    for tp in sorted(rows):
        member = owner.get(tp)
        row = rows[tp]
        row["consumer_id"] = member.member_id if member is not None else None
        row["host"] = member.client_host if member is not None else None
        row["client_id"] = member.client_id if member is not None else None
        offsets.append(row)
    return {
        "group_id": d.group_id,
        "state": d.state,
        "protocol_type": d.protocol_type,
        "protocol": d.protocol,
        "members": members,
        "offsets": offsets,
        "lag": _total_lag(lags),
    }


@routes.get("/api/kafka/groups")
async def list_groups(request: web.Request) -> web.Response:
    require_monitor(request)
    coordinator = _coordinator(request)
    error, listings = coordinator.list_groups()
    if error is not None:
        raise _unavailable(error)
    topics = topics_of(request)
    items = [
        {
            "group_id": g.group_id,
            "state": g.state,
            "protocol_type": g.protocol_type,
            "members": len(coordinator.describe(g.group_id).members),
            "lag": _total_lag(group_lag(coordinator, topics, g.group_id)),
        }
        for g in listings
    ]
    return listing.respond(request, items, default_sort="group_id", name_field="group_id")


@routes.get("/api/kafka/groups/{group}")
async def get_group(request: web.Request) -> web.Response:
    require_monitor(request)
    coordinator = _coordinator(request)
    described = _describe(coordinator, request.match_info["group"])
    return web.json_response(_group(coordinator, topics_of(request), described))


@routes.delete("/api/kafka/groups/{group}")
async def delete_group(request: web.Request) -> web.Response:
    require_administrator(request)
    coordinator = _coordinator(request)
    group_id = request.match_info["group"]
    if _describe(coordinator, group_id).members:
        raise _not_empty(group_id)
    error = (await coordinator.delete_groups([group_id]))[group_id]
    if error == GroupError.NON_EMPTY_GROUP:
        raise _not_empty(group_id)
    if error == GroupError.GROUP_ID_NOT_FOUND:
        raise not_found(f"no consumer group {group_id!r}")
    if error is not None:
        raise _unavailable(error)
    return web.Response(status=204)


def _not_empty(group_id: str) -> ApiError:
    return ApiError(
        409, "group_not_empty", f"consumer group {group_id!r} has members: stop its consumers first"
    )


# -- reset-offsets ---------------------------------------------------------------------------------


def _selected(topics: Topics, specs: Any) -> list[TopicPartition]:
    """``["t", "t:0,1"]`` as partitions (400 malformed, 404 unknown topic or partition)."""
    if not isinstance(specs, list) or not specs or not all(isinstance(s, str) for s in specs):
        raise bad_request('topics must be a non-empty list of "topic" or "topic:0,1"')
    out: list[TopicPartition] = []
    for spec in specs:
        name, colon, numbers = spec.partition(":")
        topic = topics.get(name)
        if topic is None:
            raise not_found(f"no topic {name!r}")
        if not colon:
            out += [(name, p) for p in range(len(topic.partitions))]
            continue
        for text in numbers.split(","):
            try:
                p = int(text)
            except ValueError:
                raise bad_request(f"{spec!r}: {text!r} is not a partition number") from None
            if topic.log(p) is None:
                raise not_found(f"topic {name!r} has no partition {p}")
            out.append((name, p))
    return sorted(set(out))


def _target(topics: Topics, tp: TopicPartition, to: str, value: int, committed: int | None) -> int:
    log_ = topics.partition(*tp)
    assert log_ is not None
    low, high = log_.start_offset, log_.end_offset
    if to == "earliest":
        offset = low
    elif to == "latest":
        offset = high
    elif to == "timestamp":
        found = log_.offset_for_time(value)
        offset = high if found is None else found
    elif to == "offset":
        offset = value
    else:  # shift
        if committed is None:
            raise bad_request(f"cannot shift {tp[0]}:{tp[1]}: the group has no committed offset there")
        offset = committed + value
    return min(max(offset, low), high)  # as Kafka: into the log's range


@routes.post("/api/kafka/groups/{group}/reset-offsets")
async def reset_offsets(request: web.Request) -> web.Response:
    require_administrator(request)
    coordinator = _coordinator(request)
    group_id = request.match_info["group"]
    body = await object_body(request, ("to", "value", "topics", "dry_run"))
    to = body.get("to")
    if to not in RESETS:
        raise bad_request(f"to must be one of {', '.join(RESETS)}")
    value = body.get("value")
    if to in _NEEDS_VALUE and not is_int(value):
        raise bad_request(f"to={to} needs an integer value")
    if to not in _NEEDS_VALUE and value is not None:
        raise bad_request(f"to={to} takes no value")
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise bad_request("dry_run must be true or false")
    topics = topics_of(request)
    described = coordinator.describe(group_id)
    if described.error is not None:
        raise _unavailable(described.error)
    if described.members:
        raise _not_empty(group_id)
    committed = {
        (lag.topic, lag.partition): lag.committed_offset for lag in group_lag(coordinator, topics, group_id)
    }
    if "topics" in body:
        partitions = _selected(topics, body["topics"])
    elif described.state == GroupState.DEAD:
        raise not_found(f"no consumer group {group_id!r} (name topics to reset a new group's offsets)")
    else:
        partitions = sorted(committed)
    targets = {tp: _target(topics, tp, to, value or 0, committed.get(tp)) for tp in partitions}
    if not dry_run and targets:
        results = await coordinator.commit_offsets(
            group_id, -1, "", None, {tp: OffsetAndMetadata(o) for tp, o in targets.items()}
        )
        errors = {e for e in results.values() if e is not None}
        if errors & set(_HAS_MEMBERS):
            raise _not_empty(group_id)
        if errors:
            raise _unavailable(errors.pop())
    return web.json_response(
        {"offsets": [{"topic": t, "partition": p, "offset": o} for (t, p), o in targets.items()]}
    )
