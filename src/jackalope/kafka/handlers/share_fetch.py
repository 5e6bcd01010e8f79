"""ShareFetch (78) and ShareAcknowledge (79): KIP-932's delivery to share-group members.

A ShareFetch belongs to the member's share session (:mod:`jackalope.kafka.share_sessions`),
may carry acknowledgements of what the member fetched before, and acquires records of every
partition of the session (:class:`jackalope.core.share.partitions.SharePartitions`): the
response holds the stored batches as they are and, per partition, the ranges of offsets
acquired with their delivery counts.  Acknowledgements are applied all or none per partition
(``INVALID_RECORD_STATE`` for records the member does not hold) and answered once durable.
With nothing to acquire, the fetch waits up to ``max_wait_ms`` for an append to one of its
partitions, for records released by others, or for a lock to lapse.  Needs Read on the group
and on each topic.  A session belongs to the connection that opened it: when that connection
closes, :func:`connection_closed` ends the session and releases what its member acquired.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from jackalope.core.acls import Operation
from jackalope.core.share.partition import AckBatch, InvalidAcknowledgement, InvalidRecordState
from jackalope.core.share.partitions import EMPTY, Fetched, SharePartitions
from jackalope.core.share.state_log import Key
from jackalope.kafka import authorization
from jackalope.kafka.context import KafkaBroker, RequestContext
from jackalope.kafka.handlers import Api
from jackalope.kafka.protocol import ApiKey, ErrorCode, build, ms, response_module
from jackalope.kafka.share_sessions import FINAL_EPOCH, INITIAL_EPOCH, PartitionKey, ShareSessionCache
from jackalope.storage import Log, StorageError

READ_COMMITTED = "read_committed"
DEFAULT_MAX_RECORDS = 500
RECORD_LIMIT = 1  # ShareFetch v2 share_acquire_mode: at most max_records, batches split


class _Part:
    __slots__ = ("ack_error", "error", "fetched", "key", "log", "topic")

    def __init__(self, key: PartitionKey) -> None:
        self.key = key
        self.topic: str | None = None
        self.log: Log | None = None
        self.error: int = ErrorCode.none
        self.ack_error: int = ErrorCode.none
        self.fetched: Fetched = EMPTY


def _manager(ctx: RequestContext) -> SharePartitions | None:
    return ctx.broker.share_partitions


def _member_error(ctx: RequestContext, group: str, member: str) -> int:
    share = ctx.broker.share
    if share is None:
        return ErrorCode.none
    error = share.member_error(group, member)
    return ErrorCode[error.value.lower()] if error is not None else ErrorCode.none


def _group_error(ctx: RequestContext, request: Any) -> int:
    """The request-wide refusals: a malformed request, no Read on the group, an unknown member."""
    if not request.group_id or not request.member_id:
        return ErrorCode.invalid_request
    if denied := authorization.group_error(ctx, Operation.READ, request.group_id):
        return denied
    if _manager(ctx) is None:
        return ErrorCode.unsupported_version
    if request.share_session_epoch != INITIAL_EPOCH:
        # the member was checked when it opened its session; it may have left the group since
        # (a closing consumer's last acknowledgements follow its leaving heartbeat)
        return ErrorCode.none
    return _member_error(ctx, request.group_id, request.member_id)


def _resolve(ctx: RequestContext, part: _Part) -> None:
    topic_id, index = part.key
    if denied := authorization.topic_key_error(ctx, Operation.READ, topic_id):
        part.error = denied
        return
    topic = ctx.broker.topics.by_id(topic_id)
    if topic is None:
        part.error = ErrorCode.unknown_topic_id
        return
    part.topic = topic.name
    part.log = topic.log(index)
    if part.log is None:
        part.error = ErrorCode.unknown_topic_or_partition


def _ack_batches(raw: Any) -> list[AckBatch]:
    return [AckBatch(b.first_offset, b.last_offset, tuple(b.acknowledge_types)) for b in raw]


def _acknowledge(
    ctx: RequestContext, group: str, member: str, part: _Part, raw: Any, changed: set[Key]
) -> None:
    """Apply one partition's acknowledgements; the outcome is ``part.ack_error``."""
    manager = _manager(ctx)
    assert manager is not None
    if part.error or part.topic is None:
        part.ack_error = part.error
        return
    key: Key = (group, part.topic, part.key[1])
    try:
        if manager.acknowledge(key, member, _ack_batches(raw)):
            changed.add(key)
    except InvalidRecordState:
        part.ack_error = ErrorCode.invalid_record_state
    except InvalidAcknowledgement:
        part.ack_error = ErrorCode.invalid_request


async def _save(ctx: RequestContext, changed: set[Key], parts: list[_Part]) -> None:
    manager = _manager(ctx)
    if not changed or manager is None:
        return
    try:
        await manager.save(changed)
    except StorageError:
        for part in parts:
            if any(k[1] == part.topic and k[2] == part.key[1] for k in changed):
                part.ack_error = ErrorCode.kafka_storage_error


def _config(ctx: RequestContext, group: str) -> Any:
    manager = _manager(ctx)
    assert manager is not None
    return manager.config(group)


def _acquire_all(ctx: RequestContext, request: Any, parts: list[_Part], committed: bool) -> int:
    manager = _manager(ctx)
    assert manager is not None
    records_left = request.max_records if request.max_records > 0 else DEFAULT_MAX_RECORDS
    bytes_left = request.max_bytes if request.max_bytes > 0 else 0x7FFFFFFF
    total = 0
    for part in parts:
        if part.log is None or part.error or part.topic is None or records_left <= 0:
            continue
        if part.fetched.acquired:
            continue
        key: Key = (request.group_id, part.topic, part.key[1])
        try:
            part.fetched = manager.acquire(
                key,
                part.log,
                request.member_id,
                max_records=records_left,
                max_bytes=max(bytes_left, 1),
                committed=committed,
                whole_batches=getattr(request, "share_acquire_mode", 0) != RECORD_LIMIT,
            )
        except StorageError:
            part.error = ErrorCode.kafka_storage_error
            continue
        got = sum(a.last - a.first + 1 for a in part.fetched.acquired)
        records_left -= got
        bytes_left -= len(part.fetched.records)
        total += len(part.fetched.records)
        if bytes_left <= 0:
            break
    return total


def _release_member(ctx: RequestContext, group: str, member: str) -> None:
    manager = _manager(ctx)
    if manager is not None:
        manager.member_left(group, member)


def connection_closed(broker: KafkaBroker, connection: object) -> None:
    """A client connection closed: the share sessions it opened end, and the records their
    members acquired become available at once (delivery counts unchanged; archived at the
    delivery limit), waking the fetches of other members.  A session the member re-opened on
    another connection is not touched."""
    manager = broker.share_partitions
    for group, member in broker.share_sessions.disconnected(connection):
        if manager is not None:
            manager.member_left(group, member)


async def handle_share_fetch(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.SHARE_FETCH, ctx.api_version)
    if error := _group_error(ctx, request):
        return _fetch_response(mod, error, 0, [])
    group, member = request.group_id, request.member_id
    cfg = _config(ctx, group)
    lock_ms = cfg.record_lock_duration_ms
    has_acks = any(p.acknowledgement_batches for t in request.topics for p in t.partitions)
    epoch = request.share_session_epoch
    if epoch == INITIAL_EPOCH and has_acks:
        return _fetch_response(mod, ErrorCode.invalid_request, lock_ms, [])
    sessions: ShareSessionCache = ctx.broker.share_sessions
    wanted = [(t.topic_id, p.partition_index) for t in request.topics for p in t.partitions]
    forgotten = [(t.topic_id, p) for t in request.forgotten_topics_data for p in t.partitions]
    session = sessions.fetch((group, member), epoch, wanted, forgotten, owner=ctx.connection)
    if session.error:
        return _fetch_response(mod, session.error, lock_ms, [])
    parts: dict[PartitionKey, _Part] = {}
    listed: list[_Part] = []
    for key in [*wanted, *session.partitions]:
        if key not in parts:
            part = parts[key] = _Part(key)
            _resolve(ctx, part)
            if key in wanted:
                listed.append(part)
    changed: set[Key] = set()
    for t in request.topics:
        for p in t.partitions:
            if p.acknowledgement_batches:
                part = parts[(t.topic_id, p.partition_index)]
                _acknowledge(ctx, group, member, part, p.acknowledgement_batches, changed)
    await _save(ctx, changed, list(parts.values()))
    if session.closed:
        _release_member(ctx, group, member)
        return _fetch_response(mod, ErrorCode.none, lock_ms, listed)
    fetching = [parts[k] for k in session.partitions]
    committed = cfg.isolation_level == READ_COMMITTED
    total = _acquire_all(ctx, request, fetching, committed)
    wait = ms(request.max_wait) / 1000
    if not total and wait > 0 and not any(p.error for p in fetching):
        await _long_poll(ctx, request, fetching, committed, wait)
    shown = [p for p in parts.values() if p in listed or p.fetched.acquired or p.error]
    return _fetch_response(mod, ErrorCode.none, lock_ms, shown)


async def _long_poll(
    ctx: RequestContext, request: Any, parts: list[_Part], committed: bool, wait: float
) -> None:
    manager = _manager(ctx)
    assert manager is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    logs = [p.log for p in parts if p.log is not None]
    keys: list[Key] = [(request.group_id, p.topic, p.key[1]) for p in parts if p.topic is not None]
    while logs:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return
        lock = manager.next_deadline(keys)
        if lock is not None:
            remaining = min(remaining, max(lock - manager.now(), 0) / 1000 + 0.001)
        await ctx.broker.topics.waiters.wait(logs, remaining)
        await asyncio.sleep(0)  # let producers of the same iteration append too
        if _acquire_all(ctx, request, parts, committed) or any(p.error for p in parts):
            return


def _leader(mod: Any, ctx_node: int = 0) -> Any:
    return build(mod.LeaderIdAndEpoch, leader_id=ctx_node, leader_epoch=0)


def _fetch_response(mod: Any, error: int, lock_ms: int, parts: list[_Part]) -> Any:
    topics: dict[uuid.UUID, list[Any]] = {}
    for part in parts:
        acquired = tuple(
            build(
                mod.AcquiredRecords, first_offset=a.first, last_offset=a.last, delivery_count=a.delivery_count
            )
            for a in part.fetched.acquired
        )
        topics.setdefault(part.key[0], []).append(
            build(
                mod.PartitionData,
                partition_index=part.key[1],
                error_code=part.error,
                error_message=None,
                acknowledge_error_code=part.ack_error,
                acknowledge_error_message=None,
                current_leader=_leader(mod),
                records=part.fetched.records,
                acquired_records=acquired,
            )
        )
    return build(
        mod.ShareFetchResponse,
        throttle_time=0,
        error_code=error,
        error_message=None,
        acquisition_lock_timeout=lock_ms if not error else 0,
        responses=tuple(
            build(mod.ShareFetchableTopicResponse, topic_id=t, partitions=tuple(ps))
            for t, ps in topics.items()
        ),
        node_endpoints=(),
    )


async def handle_share_acknowledge(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.SHARE_ACKNOWLEDGE, ctx.api_version)
    if error := _group_error(ctx, request):
        return _ack_response(mod, error, 0, [])
    group, member = request.group_id, request.member_id
    lock_ms = _config(ctx, group).record_lock_duration_ms
    sessions: ShareSessionCache = ctx.broker.share_sessions
    session = sessions.acknowledge((group, member), request.share_session_epoch)
    if session.error:
        return _ack_response(mod, session.error, lock_ms, [])
    parts: list[_Part] = []
    changed: set[Key] = set()
    for t in request.topics:
        for p in t.partitions:
            part = _Part((t.topic_id, p.partition_index))
            _resolve(ctx, part)
            _acknowledge(ctx, group, member, part, p.acknowledgement_batches, changed)
            parts.append(part)
    await _save(ctx, changed, parts)  # a failed write turns the partitions' ack_error into a storage error
    for part in parts:
        part.error = part.ack_error
    if session.closed or request.share_session_epoch == FINAL_EPOCH:
        _release_member(ctx, group, member)
    return _ack_response(mod, ErrorCode.none, lock_ms, parts)


def _ack_response(mod: Any, error: int, lock_ms: int, parts: list[_Part]) -> Any:
    topics: dict[uuid.UUID, list[Any]] = {}
    for part in parts:
        topics.setdefault(part.key[0], []).append(
            build(
                mod.PartitionData,
                partition_index=part.key[1],
                error_code=part.error,
                error_message=None,
                current_leader=_leader(mod),
            )
        )
    return build(
        mod.ShareAcknowledgeResponse,
        throttle_time=0,
        error_code=error,
        error_message=None,
        acquisition_lock_timeout=lock_ms if not error else 0,
        responses=tuple(
            build(mod.ShareAcknowledgeTopicResponse, topic_id=t, partitions=tuple(ps))
            for t, ps in topics.items()
        ),
        node_endpoints=(),
    )


APIS = [
    Api(ApiKey.SHARE_FETCH, 1, 2, handle_share_fetch),
    Api(ApiKey.SHARE_ACKNOWLEDGE, 1, 2, handle_share_acknowledge),
]
