"""Authorization ahead of the handlers: what Kafka checks per request, per topic or per group,
applied around the handler so that the handlers stay about their API.

* Whole-request checks (one group or transactional id decides; AddPartitionsToTxn): the refusal is the API's
  response carrying only the error, as Kafka's ``getErrorResponse`` builds it.
* Per-topic checks (Produce, ListOffsets, DeleteRecords, OffsetCommit, OffsetForLeaderEpoch,
  DescribeProducers): the topics the principal may not use are taken out of the request, and
  their partitions answered with TOPIC_AUTHORIZATION_FAILED next to the handler's answers.
* Per-group checks (DescribeGroups, DeleteGroups, FindCoordinator v4+, ConsumerGroupDescribe,
  DescribeTransactions): the same, with GROUP_ or TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
* Listings (ListGroups, ListTransactions, DescribeTopicPartitions) leave out what the principal
  may not describe; Metadata and OffsetFetch leave out, or refuse when named, the topics it may
  not describe, and auto-creation (Metadata, Produce) needs Create.

Fetch is checked in its handler (its response is encoded there): ``authorization.topic_key_error``.

The registry wraps every API that has a guard (:func:`guarded`).  Responses are kio
dataclasses; the entries added are built from their classes with neutral values (-1 offsets,
empty strings and lists) besides the key and the error.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from kio.static.constants import EntityType

from jackalope.core.acls import CLUSTER_NAME, Operation, ResourceType
from jackalope.kafka import authorization as authz
from jackalope.kafka import internal_topics
from jackalope.kafka.context import RequestContext
from jackalope.kafka.handlers import Api, Handler
from jackalope.kafka.protocol import ApiKey, ErrorCode, response_module

Guard = Callable[[RequestContext, Any, Handler], Awaitable[Any]]

# -- whole-request checks --------------------------------------------------------------------------


def _group_read(ctx: RequestContext, request: Any) -> int:
    return authz.group_error(ctx, Operation.READ, request.group_id)


def _group_describe(ctx: RequestContext, request: Any) -> int:
    return authz.group_error(ctx, Operation.DESCRIBE, request.group_id)


def _group_delete(ctx: RequestContext, request: Any) -> int:
    return authz.group_error(ctx, Operation.DELETE, request.group_id)


def _txn_write(ctx: RequestContext, request: Any) -> int:
    return authz.transactional_id_error(ctx, Operation.WRITE, request.transactional_id)


def _txn_write_then_group_read(ctx: RequestContext, request: Any) -> int:
    return _txn_write(ctx, request) or _group_read(ctx, request)


def _init_producer_id(ctx: RequestContext, request: Any) -> int:
    if request.transactional_id is not None:
        return _txn_write(ctx, request)
    return ErrorCode.none if authz.may_write_somewhere(ctx) else ErrorCode.cluster_authorization_failed


def _find_coordinator_v0_3(ctx: RequestContext, request: Any) -> int:
    if ctx.api_version >= 4:
        return ErrorCode.none
    if getattr(request, "key_type", 0) == 1:
        return authz.transactional_id_error(ctx, Operation.DESCRIBE, request.key)
    return authz.group_error(ctx, Operation.DESCRIBE, request.key)


async def _find_coordinator(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    """Describe on the group or the transactional id each key names."""
    if ctx.api_version < 4:
        return await _whole(_find_coordinator_v0_3)(ctx, request, handler)
    if getattr(request, "key_type", 0) == 1:
        check = KeyCheck(
            ResourceType.TRANSACTIONAL_ID, Operation.DESCRIBE, "coordinator_keys", "coordinators", "key"
        )
    else:
        check = KeyCheck(ResourceType.GROUP, Operation.DESCRIBE, "coordinator_keys", "coordinators", "key")
    return await _keys(check)(ctx, request, handler)


def _whole(check: Callable[[RequestContext, Any], int]) -> Guard:
    async def guard(ctx: RequestContext, request: Any, handler: Handler) -> Any:
        error = check(ctx, request)
        if error:
            return refusal(ctx, request, error)
        return await handler(ctx, request)

    return guard


def refusal(ctx: RequestContext, request: Any, error: int) -> Any:
    """The response of the request's API and version carrying only ``error``: at the top, or,
    for the offset commits (which have none), on every partition asked about."""
    cls = _response_class(response_module(ctx.api_key, ctx.api_version))
    if "error_code" not in {f.name for f in dataclasses.fields(cls)}:  # OffsetCommit, OffsetFetch v1
        return dataclasses.replace(
            _neutral(cls), topics=tuple(_denied_topic(ctx, cls, "topics", t, error) for t in request.topics)
        )
    return dataclasses.replace(_neutral(cls), error_code=ErrorCode(error))


# -- per-topic checks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopicCheck:
    operation: Operation
    request_topics: str  # the request's field listing topics
    response_topics: str  # the response's
    creates: bool = False  # the handler creates a missing topic (Produce, as auto-creation)


def _request_topic_name(ctx: RequestContext, topic: Any) -> str | None:
    for field in ("name", "topic", "topic_name"):
        name = getattr(topic, field, None)
        if isinstance(name, str):
            return name
    topic_id = getattr(topic, "topic_id", None)
    if isinstance(topic_id, uuid.UUID):
        found = ctx.broker.topics.by_id(topic_id) or internal_topics.find(ctx.broker, topic_id)
        return found.name if found is not None else None  # unknown: the handler answers
    return None


def _topics(check: TopicCheck, first: Callable[[RequestContext, Any], int] | None = None) -> Guard:
    async def guard(ctx: RequestContext, request: Any, handler: Handler) -> Any:
        if first is not None and (error := first(ctx, request)):
            return refusal(ctx, request, error)
        allowed: list[Any] = []
        denied: list[Any] = []
        for t in getattr(request, check.request_topics) or ():
            name = _request_topic_name(ctx, t)
            refused = name is not None and not authz.topic(ctx, check.operation, name)
            if check.creates and name is not None and not refused:
                refused = _creates_unallowed(ctx, name)
            (denied if refused else allowed).append(t)
        if not denied:
            return await handler(ctx, request)
        response = await handler(ctx, dataclasses.replace(request, **{check.request_topics: tuple(allowed)}))
        if response is None:  # Produce with acks=0
            return None
        cls = type(response)
        added = tuple(
            _denied_topic(ctx, cls, check.response_topics, t, ErrorCode.topic_authorization_failed)
            for t in denied
        )
        return dataclasses.replace(
            response, **{check.response_topics: tuple(getattr(response, check.response_topics)) + added}
        )

    return guard


def _creates_unallowed(ctx: RequestContext, name: str) -> bool:
    """Whether a request would auto-create ``name`` without the principal's Create right."""
    return (
        ctx.broker.auto_create_topics
        and name not in ctx.broker.topics
        and not internal_topics.is_internal(name)
        and not authz.may_create_topic(ctx, name)
    )


async def _metadata(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    """Metadata shows only the topics the principal may describe (a named one it may not gets
    TOPIC_AUTHORIZATION_FAILED), auto-creates only where it may create (Create on the cluster
    or the topic; else TOPIC_AUTHORIZATION_FAILED), and reports the authorized operations when
    asked (KIP-430)."""
    wanted = request.topics
    listed_all = wanted is None or (ctx.api_version == 0 and not wanted)
    denied: list[Any] = []
    if not listed_all:
        creating = getattr(request, "allow_auto_topic_creation", False)
        allowed: list[Any] = []
        for item in wanted:
            name = item.name
            refused = name is not None and not authz.topic(ctx, Operation.DESCRIBE, name)
            if creating and name is not None and not refused:
                refused = _creates_unallowed(ctx, name)
            (denied if refused else allowed).append(item)
        if denied and (allowed or ctx.api_version > 0):  # v0: an empty list would mean all
            request = dataclasses.replace(request, topics=tuple(allowed))
    response = await handler(ctx, request)
    entries = authz.visible_metadata(ctx, response.topics, listed_all=listed_all)
    if not listed_all and denied and ctx.api_version == 0 and len(denied) == len(wanted):
        entries = []
    topic_cls = _entry_class(type(response), "topics")
    for item in denied:
        entries.append(
            dataclasses.replace(
                _neutral(topic_cls),
                name=item.name,
                error_code=ErrorCode(ErrorCode.topic_authorization_failed),
                is_internal=False,
            )
        )
    if getattr(request, "include_topic_authorized_operations", False):
        entries = [
            dataclasses.replace(
                e, topic_authorized_operations=authz.authorized_operations(ctx, ResourceType.TOPIC, e.name)
            )
            if e.name is not None and not e.error_code
            else e
            for e in entries
        ]
    changes: dict[str, Any] = {"topics": tuple(entries)}
    if getattr(request, "include_cluster_authorized_operations", False):
        changes["cluster_authorized_operations"] = authz.authorized_operations(
            ctx, ResourceType.CLUSTER, CLUSTER_NAME
        )
    return dataclasses.replace(response, **changes)


def _denied_topic(ctx: RequestContext, response_cls: type[Any], field: str, topic: Any, error: int) -> Any:
    """The response entry of a request topic whose every partition gets ``error``."""
    topic_cls = _entry_class(response_cls, field)
    values = _neutral_values(topic_cls)
    for key in ("name", "topic", "topic_name", "topic_id"):
        if key in values and hasattr(topic, key):
            values[key] = getattr(topic, key)
    partitions_field, partition_cls = next(
        (f.name, c)
        for f in dataclasses.fields(topic_cls)
        if (c := _element_class(topic_cls, f.name)) is not None
    )
    request_partitions = next(
        (
            getattr(topic, f)
            for f in ("partitions", "partition_data", "partition_indexes")
            if hasattr(topic, f)
        ),
        (),
    )
    entries = []
    for p in request_partitions:
        index = (
            p
            if isinstance(p, int)
            else next(getattr(p, f) for f in ("partition_index", "index", "partition") if hasattr(p, f))
        )
        entry = _neutral_values(partition_cls)
        for key in ("partition_index", "index", "partition", "partition_id"):
            if key in entry:
                entry[key] = index
                break
        entry["error_code"] = ErrorCode(error)
        entries.append(partition_cls(**entry))
    values[partitions_field] = tuple(entries)
    return topic_cls(**values)


# -- per-group (or transactional id) checks --------------------------------------------------------


@dataclass(frozen=True)
class KeyCheck:
    resource: ResourceType
    operation: Operation
    request_keys: str  # the request's field listing the ids (strings, or entries with ``key``)
    response_entries: str
    response_key: str  # the field of a response entry holding the id


def _keys(check: KeyCheck) -> Guard:
    error = {
        ResourceType.GROUP: ErrorCode.group_authorization_failed,
        ResourceType.TRANSACTIONAL_ID: ErrorCode.transactional_id_authorization_failed,
    }[check.resource]

    async def guard(ctx: RequestContext, request: Any, handler: Handler) -> Any:
        if not hasattr(request, check.request_keys):
            return await handler(ctx, request)  # versions without the list (FindCoordinator v0-3)
        keys = list(getattr(request, check.request_keys) or ())
        denied = [k for k in keys if not authz.authorized(ctx, check.operation, check.resource, k)]
        if not denied:
            return await handler(ctx, request)
        allowed = tuple(k for k in keys if k not in denied)
        response = await handler(ctx, dataclasses.replace(request, **{check.request_keys: allowed}))
        entry_cls = _entry_class(type(response), check.response_entries)
        added = tuple(
            dataclasses.replace(
                _neutral(entry_cls), **{check.response_key: k, "error_code": ErrorCode(error)}
            )
            for k in denied
        )
        return dataclasses.replace(
            response, **{check.response_entries: tuple(getattr(response, check.response_entries)) + added}
        )

    return guard


async def _offset_fetch(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    """Describe on the group (GROUP_AUTHORIZATION_FAILED), and on each topic: a topic asked
    about gets TOPIC_AUTHORIZATION_FAILED on its partitions, and is left out of "all"."""
    if ctx.api_version < 8:
        if error := _group_describe(ctx, request):
            return refusal(ctx, request, error)
        response = await handler(ctx, request)
        return dataclasses.replace(response, topics=_fetched(ctx, response.topics, request.topics is None))
    denied = {g.group_id for g in request.groups if not authz.group(ctx, Operation.DESCRIBE, g.group_id)}
    asked_all = {g.group_id: g.topics is None for g in request.groups}
    response = await handler(ctx, request)
    groups = []
    for g in response.groups:
        if g.group_id in denied:
            groups.append(
                dataclasses.replace(g, error_code=ErrorCode(ErrorCode.group_authorization_failed), topics=())
            )
        else:
            groups.append(
                dataclasses.replace(g, topics=_fetched(ctx, g.topics, asked_all.get(g.group_id, True)))
            )
    return dataclasses.replace(response, groups=tuple(groups))


def _fetched(ctx: RequestContext, topics: Any, listed_all: bool) -> tuple[Any, ...]:
    out = []
    for t in topics:
        name = _request_topic_name(ctx, t)
        if name is None or authz.topic(ctx, Operation.DESCRIBE, name):
            out.append(t)
        elif not listed_all:
            partitions = tuple(
                dataclasses.replace(
                    p,
                    committed_offset=-1,
                    metadata="",
                    error_code=ErrorCode(ErrorCode.topic_authorization_failed),
                )
                for p in t.partitions
            )
            out.append(dataclasses.replace(t, partitions=partitions))
    return tuple(out)


async def _add_partitions_to_txn(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    """v0-3 (producers): Write on the transactional id, then on every topic (the refused ones
    TOPIC_AUTHORIZATION_FAILED, the others OPERATION_NOT_ATTEMPTED), as Kafka answers; v4+ (from
    brokers) needs ClusterAction."""
    if ctx.api_version >= 4:
        if not authz.cluster(ctx, Operation.CLUSTER_ACTION):
            return refusal(ctx, request, ErrorCode.cluster_authorization_failed)
        return await handler(ctx, request)
    topics = request.v3_and_below_topics
    error = authz.transactional_id_error(ctx, Operation.WRITE, request.v3_and_below_transactional_id)
    denied = {t.name for t in topics if not authz.topic(ctx, Operation.WRITE, t.name)}
    if not error and not denied:
        return await handler(ctx, request)
    cls = _response_class(response_module(ctx.api_key, ctx.api_version))
    topic_cls = _entry_class(cls, "results_by_topic_v3_and_below")
    partition_cls = _entry_class(topic_cls, "results_by_partition")

    def code(name: str) -> ErrorCode:
        if error:
            return ErrorCode(error)
        if name in denied:
            return ErrorCode(ErrorCode.topic_authorization_failed)
        return ErrorCode(ErrorCode.operation_not_attempted)

    results = tuple(
        topic_cls(
            name=t.name,
            results_by_partition=tuple(
                partition_cls(partition_index=i, partition_error_code=code(t.name)) for i in t.partitions
            ),
        )
        for t in topics
    )
    return dataclasses.replace(_neutral(cls), results_by_topic_v3_and_below=results)


def _listing(field: str, visible: Callable[[RequestContext, Any], bool]) -> Guard:
    async def guard(ctx: RequestContext, request: Any, handler: Handler) -> Any:
        response = await handler(ctx, request)
        entries = tuple(e for e in getattr(response, field) if visible(ctx, e))
        return dataclasses.replace(response, **{field: entries})

    return guard


def _group_visible(ctx: RequestContext, entry: Any) -> bool:
    return authz.cluster(ctx, Operation.DESCRIBE) or authz.group(ctx, Operation.DESCRIBE, entry.group_id)


def _txn_visible(ctx: RequestContext, entry: Any) -> bool:
    return authz.transactional_id(ctx, Operation.DESCRIBE, entry.transactional_id)


def _topic_visible(ctx: RequestContext, entry: Any) -> bool:
    return entry.name is None or authz.topic(ctx, Operation.DESCRIBE, entry.name)


async def _describe_topic_partitions(ctx: RequestContext, request: Any, handler: Handler) -> Any:
    """Topics the principal may not describe: left out of a listing of all topics; a topic the
    request names is answered TOPIC_AUTHORIZATION_FAILED without its id or partitions, as
    Kafka answers it (whether it exists or not)."""
    response = await handler(ctx, request)
    named = bool(request.topics)
    entries = []
    for entry in response.topics:
        if _topic_visible(ctx, entry):
            entries.append(entry)
        elif named:
            entries.append(
                dataclasses.replace(
                    entry,
                    error_code=ErrorCode.topic_authorization_failed,
                    topic_id=uuid.UUID(int=0),
                    is_internal=False,
                    partitions=(),
                )
            )
    return dataclasses.replace(response, topics=tuple(entries))


GUARDS: Final[dict[int, Guard]] = {
    ApiKey.JOIN_GROUP: _whole(_group_read),
    ApiKey.SYNC_GROUP: _whole(_group_read),
    ApiKey.HEARTBEAT: _whole(_group_read),
    ApiKey.LEAVE_GROUP: _whole(_group_read),
    ApiKey.CONSUMER_GROUP_HEARTBEAT: _whole(_group_read),
    ApiKey.SHARE_GROUP_HEARTBEAT: _whole(_group_read),
    ApiKey.OFFSET_FETCH: _offset_fetch,
    ApiKey.OFFSET_DELETE: _topics(TopicCheck(Operation.READ, "topics", "topics"), _group_delete),
    ApiKey.INIT_PRODUCER_ID: _whole(_init_producer_id),
    ApiKey.END_TXN: _whole(_txn_write),
    ApiKey.ADD_PARTITIONS_TO_TXN: _add_partitions_to_txn,
    ApiKey.ADD_OFFSETS_TO_TXN: _whole(_txn_write_then_group_read),
    ApiKey.METADATA: _metadata,
    ApiKey.PRODUCE: _topics(TopicCheck(Operation.WRITE, "topic_data", "responses", creates=True)),
    ApiKey.LIST_OFFSETS: _topics(TopicCheck(Operation.DESCRIBE, "topics", "topics")),
    ApiKey.DELETE_RECORDS: _topics(TopicCheck(Operation.DELETE, "topics", "topics")),
    ApiKey.OFFSET_FOR_LEADER_EPOCH: _topics(TopicCheck(Operation.DESCRIBE, "topics", "topics")),
    ApiKey.DESCRIBE_PRODUCERS: _topics(TopicCheck(Operation.READ, "topics", "topics")),
    ApiKey.OFFSET_COMMIT: _topics(TopicCheck(Operation.READ, "topics", "topics"), _group_read),
    ApiKey.TXN_OFFSET_COMMIT: _topics(
        TopicCheck(Operation.READ, "topics", "topics"), _txn_write_then_group_read
    ),
    ApiKey.FIND_COORDINATOR: _find_coordinator,
    ApiKey.DESCRIBE_GROUPS: _keys(
        KeyCheck(ResourceType.GROUP, Operation.DESCRIBE, "groups", "groups", "group_id")
    ),
    ApiKey.DELETE_GROUPS: _keys(
        KeyCheck(ResourceType.GROUP, Operation.DELETE, "groups_names", "results", "group_id")
    ),
    ApiKey.CONSUMER_GROUP_DESCRIBE: _keys(
        KeyCheck(ResourceType.GROUP, Operation.DESCRIBE, "group_ids", "groups", "group_id")
    ),
    ApiKey.SHARE_GROUP_DESCRIBE: _keys(
        KeyCheck(ResourceType.GROUP, Operation.DESCRIBE, "group_ids", "groups", "group_id")
    ),
    ApiKey.DESCRIBE_TRANSACTIONS: _keys(
        KeyCheck(
            ResourceType.TRANSACTIONAL_ID,
            Operation.DESCRIBE,
            "transactional_ids",
            "transaction_states",
            "transactional_id",
        )
    ),
    ApiKey.LIST_GROUPS: _listing("groups", _group_visible),
    ApiKey.LIST_TRANSACTIONS: _listing("transaction_states", _txn_visible),
    ApiKey.DESCRIBE_TOPIC_PARTITIONS: _describe_topic_partitions,
}


def guarded(api: Api) -> Api:
    """``api`` with its guard (if it has one) around its handler."""
    guard = GUARDS.get(api.key)
    if guard is None:
        return api
    handler = api.handler

    async def guarded_handler(ctx: RequestContext, request: Any) -> Any:
        return await guard(ctx, request, handler)

    return dataclasses.replace(api, handler=guarded_handler)


# -- building entries from the kio classes ---------------------------------------------------------


def _response_class(mod: Any) -> type[Any]:
    for value in vars(mod).values():
        if isinstance(value, type) and getattr(value, "__type__", None) == EntityType.response:
            return value
    raise LookupError(f"no response class in {mod.__name__}")


def _element_class(cls: type[Any], field: str) -> type[Any] | None:
    """The entry class of ``cls``'s tuple field ``field`` (None if it is no tuple of entries)."""
    hints = typing.get_type_hints(cls)
    args = typing.get_args(hints.get(field))
    if args and isinstance(args[0], type) and dataclasses.is_dataclass(args[0]):
        return args[0]
    return None


def _entry_class(cls: type[Any], field: str) -> type[Any]:
    found = _element_class(cls, field)
    if found is None:
        raise LookupError(f"{cls.__name__}.{field} is no list of entries")
    return found


def _neutral(cls: type[Any]) -> Any:
    return cls(**_neutral_values(cls))


def _neutral_values(cls: type[Any]) -> dict[str, Any]:
    """A value for every field without a default: zero, empty, null or -1 (ids, offsets)."""
    values: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            continue
        kind = f.metadata.get("kafka_type", "")
        ftype = hints.get(f.name, f.type)
        if f.name.endswith("authorized_operations"):
            values[f.name] = -(1 << 31)  # "not requested"
        elif kind in ("timedelta_i32", "timedelta_i64"):
            values[f.name] = datetime.timedelta(0)
        elif kind == "error_code":
            values[f.name] = ErrorCode.none
        elif type(None) in typing.get_args(ftype):
            values[f.name] = None
        elif typing.get_origin(ftype) is tuple:
            values[f.name] = ()
        elif ftype is bool:
            values[f.name] = False
        elif ftype is bytes:
            values[f.name] = b""
        elif isinstance(ftype, type) and issubclass(ftype, str):
            values[f.name] = ftype("")
        elif ftype is uuid.UUID:
            values[f.name] = uuid.UUID(int=0)
        elif isinstance(ftype, type) and issubclass(ftype, int):
            values[f.name] = ftype(-1)
        else:
            values[f.name] = None
    return values
