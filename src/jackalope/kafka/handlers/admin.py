"""Topic administration: CreateTopics, DeleteTopics, CreatePartitions, the config APIs and
DescribeCluster.

There is one broker, so every partition has exactly one replica on it: a replication factor
other than 1 (or -1, "the default") is refused, and an explicit replica assignment is honoured
only when it places every partition on this broker.  Topic configs are the Kafka names
:mod:`jackalope.core.topics` maps onto the storage engine; broker configs are the broker's
settings (described read-only) and Kafka's dynamic broker configs
(:mod:`jackalope.kafka.broker_configs`).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from enum import IntEnum
from typing import Any

from jackalope.core.acls import CLUSTER_NAME, Operation
from jackalope.core.acls import ResourceType as AclResource
from jackalope.core.topics import (
    CONFIG_KEYS,
    ConfigEntry,
    InvalidConfig,
    InvalidPartitions,
    InvalidTopicName,
    TopicError,
    TopicExists,
    UnknownTopic,
)
from jackalope.kafka import authorization, broker_configs, broker_loggers, group_configs, internal_topics
from jackalope.kafka.broker_configs import DYNAMIC, BrokerConfigError, ConfigSource, ConfigType
from jackalope.kafka.context import RequestContext
from jackalope.kafka.handlers import Api
from jackalope.kafka.protocol import ApiKey, ErrorCode, build, response_module

NO_TOPIC_ID = uuid.UUID(int=0)
UNKNOWN_OPERATIONS = -2147483648  # "authorized operations were not requested"


class ResourceType(IntEnum):
    TOPIC = 2
    BROKER = 4
    BROKER_LOGGER = 8
    CLIENT_METRICS = 16
    GROUP = 32


class AlterOp(IntEnum):
    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


class EndpointType(IntEnum):
    BROKER = 1
    CONTROLLER = 2


TOPIC_CONFIG_TYPES: dict[str, ConfigType] = {
    "retention.ms": ConfigType.LONG,
    "retention.bytes": ConfigType.LONG,
    "segment.bytes": ConfigType.INT,
    "segment.ms": ConfigType.LONG,
    "cleanup.policy": ConfigType.LIST,
    "delete.retention.ms": ConfigType.LONG,
    "min.compaction.lag.ms": ConfigType.LONG,
    "max.message.bytes": ConfigType.INT,
    "message.timestamp.type": ConfigType.STRING,
    "segment.index.bytes": ConfigType.INT,
    "index.interval.bytes": ConfigType.INT,
    "flush.ms": ConfigType.LONG,
    "flush.messages": ConfigType.LONG,
    "compression.type": ConfigType.STRING,
    "min.insync.replicas": ConfigType.INT,
    "unclean.leader.election.enable": ConfigType.BOOLEAN,
    "message.timestamp.difference.max.ms": ConfigType.LONG,
    "preallocate": ConfigType.BOOLEAN,
    "segment.jitter.ms": ConfigType.LONG,
    "max.compaction.lag.ms": ConfigType.LONG,
    "file.delete.delay.ms": ConfigType.LONG,
    "min.cleanable.dirty.ratio": ConfigType.DOUBLE,
    "compression.gzip.level": ConfigType.INT,
    "compression.lz4.level": ConfigType.INT,
    "compression.zstd.level": ConfigType.INT,
    "message.format.version": ConfigType.STRING,
    "message.timestamp.before.max.ms": ConfigType.LONG,
    "message.timestamp.after.max.ms": ConfigType.LONG,
    "leader.replication.throttled.replicas": ConfigType.LIST,
    "follower.replication.throttled.replicas": ConfigType.LIST,
    "message.downconversion.enable": ConfigType.BOOLEAN,
    "remote.storage.enable": ConfigType.BOOLEAN,
    "local.retention.ms": ConfigType.LONG,
    "local.retention.bytes": ConfigType.LONG,
    "remote.log.copy.disable": ConfigType.BOOLEAN,
    "remote.log.delete.on.disable": ConfigType.BOOLEAN,
}


class Rejected(Exception):
    """One item of a request fails with ``code``; the message is for the client."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _topic_error(exc: TopicError) -> Rejected:
    code: int = ErrorCode.invalid_request
    if isinstance(exc, TopicExists):
        code = ErrorCode.topic_already_exists
    elif isinstance(exc, UnknownTopic):
        code = ErrorCode.unknown_topic_or_partition
    elif isinstance(exc, InvalidTopicName):
        code = ErrorCode.invalid_topic_exception
    elif isinstance(exc, InvalidPartitions):
        code = ErrorCode.invalid_partitions
    elif isinstance(exc, InvalidConfig):
        code = ErrorCode.invalid_config
    return Rejected(code, str(exc))


def _topic_denied(name: str) -> Rejected:
    return Rejected(ErrorCode.topic_authorization_failed, f"Authorization failed for topic {name}")


def _duplicates(names: Iterable[str | None]) -> set[str | None]:
    return {name for name, n in Counter(names).items() if n > 1}


def _each_topic_once(entries: Sequence[Any]) -> Iterator[tuple[Any, Rejected | None]]:
    """Each topic entry of a request once, with the error for a topic named more than once
    in the same request (INVALID_REQUEST, as Kafka answers), or None."""
    duplicates = _duplicates(t.name for t in entries)
    seen: set[str] = set()
    for t in entries:
        if t.name in seen:
            continue
        seen.add(t.name)
        duplicate = t.name in duplicates
        yield (
            t,
            Rejected(ErrorCode.invalid_request, f"topic {t.name!r} appears more than once")
            if duplicate
            else None,
        )


def _check_assignment(ctx: RequestContext, broker_ids: Iterable[Sequence[int]]) -> None:
    """Every partition's replica list must be exactly this broker."""
    node = ctx.broker.node_id
    for replicas in broker_ids:
        if list(replicas) != [node]:
            raise Rejected(
                ErrorCode.invalid_replica_assignment,
                f"replica assignment {list(replicas)} is not possible: this cluster has one broker "
                f"(id {node}), so every partition's replicas must be [{node}]",
            )


# -- CreateTopics --------------------------------------------------------------------------------


def _requested_partitions(ctx: RequestContext, t: Any) -> int:
    """The partition count a CreatableTopic asks for (-1: the default), validating replication."""
    if t.assignments:
        if t.num_partitions != -1 or t.replication_factor != -1:
            raise Rejected(
                ErrorCode.invalid_request,
                "both num_partitions or replication_factor and replica assignments were set; "
                "set num_partitions and replication_factor to -1 with assignments",
            )
        indexes = sorted(a.partition_index for a in t.assignments)
        if indexes != list(range(len(indexes))):
            raise Rejected(
                ErrorCode.invalid_replica_assignment,
                "the partitions of a replica assignment must be numbered 0, 1, 2... without gaps",
            )
        _check_assignment(ctx, (a.broker_ids for a in t.assignments))
        return len(indexes)
    rf = t.replication_factor
    if rf != -1 and rf != 1:
        message = (
            "replication factor must be larger than 0, or -1 to use the default"
            if rf < 1
            else f"replication factor {rf} is larger than the number of brokers (1)"
        )
        raise Rejected(ErrorCode.invalid_replication_factor, message)
    return int(t.num_partitions)


def _creatable_configs(mod: Any, entries: Iterable[ConfigEntry]) -> tuple[Any, ...]:
    if not hasattr(mod, "CreatableTopicConfigs"):
        return ()  # before v5
    return tuple(
        build(
            mod.CreatableTopicConfigs,
            name=e.name,
            value=e.value,
            read_only=False,
            config_source=ConfigSource.DEFAULT_CONFIG if e.is_default else ConfigSource.DYNAMIC_TOPIC_CONFIG,
            is_sensitive=False,
        )
        for e in entries
    )


async def handle_create_topics(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.CREATE_TOPICS, ctx.api_version)
    topics = ctx.broker.topics
    results = []
    cluster_create = authorization.cluster(ctx, Operation.CREATE)
    for t, duplicate in _each_topic_once(request.topics):
        try:
            if duplicate is not None:
                raise duplicate
            if not cluster_create and not authorization.topic(ctx, Operation.CREATE, t.name):
                raise _topic_denied(t.name)
            if internal_topics.is_internal(t.name):
                # the coordinators' logs, always there as far as clients can tell
                raise Rejected(ErrorCode.topic_already_exists, f"Topic '{t.name}' already exists.")
            partitions = _requested_partitions(ctx, t)
            configs: dict[str, str] = {}
            for c in t.configs:
                if c.value is None:
                    raise Rejected(
                        ErrorCode.invalid_config, f"null value not supported for topic config {c.name}"
                    )
                configs[c.name] = c.value
            try:
                topic = topics.create(t.name, partitions, configs, validate_only=request.validate_only)
            except TopicError as exc:
                raise _topic_error(exc) from None
        except Rejected as r:
            results.append(
                build(
                    mod.CreatableTopicResult,
                    name=t.name,
                    topic_id=NO_TOPIC_ID,
                    error_code=r.code,
                    error_message=r.message,
                    num_partitions=-1,
                    replication_factor=-1,
                    configs=(),
                )
            )
            continue
        count = len(topic.partitions)
        if request.validate_only:
            count = topics.default_partitions if partitions == -1 else partitions
        results.append(
            build(
                mod.CreatableTopicResult,
                name=t.name,
                topic_id=NO_TOPIC_ID if request.validate_only else topic.topic_id,
                error_code=ErrorCode.none,
                error_message=None,
                num_partitions=count,
                replication_factor=1,
                configs=_creatable_configs(mod, topics.config_entries(topic.configs)),
            )
        )
    return build(mod.CreateTopicsResponse, throttle_time=0, topics=tuple(results))


# -- DeleteTopics ----------------------------------------------------------------------------------


async def handle_delete_topics(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.DELETE_TOPICS, ctx.api_version)
    topics = ctx.broker.topics
    wanted: list[tuple[str | None, uuid.UUID | None]]
    if ctx.api_version >= 6:
        wanted = [(t.name, None if t.topic_id == NO_TOPIC_ID else t.topic_id) for t in request.topics]
    else:
        wanted = [(name, None) for name in request.topic_names]
    results = []
    for name, topic_id in wanted:
        found_id = topic_id
        try:
            if name is not None and topic_id is not None:
                raise Rejected(ErrorCode.invalid_request, "give a topic name or a topic id, not both")
            if topic_id is not None:
                by_id = topics.by_id(topic_id)
                if by_id is None:
                    raise Rejected(ErrorCode.unknown_topic_id, f"no topic has id {topic_id}")
                name = by_id.name
            if name is None:
                raise Rejected(ErrorCode.invalid_request, "neither a topic name nor a topic id was given")
            if not authorization.topic(ctx, Operation.DELETE, name):
                raise _topic_denied(name)
            topic = topics.get(name)
            if topic is None:
                raise Rejected(ErrorCode.unknown_topic_or_partition, f"unknown topic {name!r}")
            found_id = topic.topic_id
            try:
                topics.delete(name)
            except TopicError as exc:
                raise _topic_error(exc) from None
            error: int = ErrorCode.none
            message = None
        except Rejected as r:
            error, message = r.code, r.message
        results.append(
            build(
                mod.DeletableTopicResult,
                name=name,
                topic_id=found_id or NO_TOPIC_ID,
                error_code=error,
                error_message=message,
            )
        )
    return build(mod.DeleteTopicsResponse, throttle_time=0, responses=tuple(results))


# -- CreatePartitions ------------------------------------------------------------------------------


async def handle_create_partitions(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.CREATE_PARTITIONS, ctx.api_version)
    topics = ctx.broker.topics
    results = []
    for t, duplicate in _each_topic_once(request.topics):
        error: int = ErrorCode.none
        message = None
        try:
            if duplicate is not None:
                raise duplicate
            if not authorization.topic(ctx, Operation.ALTER, t.name):
                raise _topic_denied(t.name)
            try:
                topics.add_partitions(t.name, t.count, validate_only=True)
            except TopicError as exc:
                raise _topic_error(exc) from None
            if t.assignments is not None:
                topic = topics.get(t.name)
                new = t.count - (len(topic.partitions) if topic is not None else 0)
                if len(t.assignments) != new:
                    raise Rejected(
                        ErrorCode.invalid_replica_assignment,
                        f"{new} new partitions need {new} replica assignments, not {len(t.assignments)}",
                    )
                _check_assignment(ctx, (a.broker_ids for a in t.assignments))
            if not request.validate_only:
                try:
                    topics.add_partitions(t.name, t.count)
                except TopicError as exc:
                    raise _topic_error(exc) from None
        except Rejected as r:
            error, message = r.code, r.message
        results.append(
            build(mod.CreatePartitionsTopicResult, name=t.name, error_code=error, error_message=message)
        )
    return build(mod.CreatePartitionsResponse, throttle_time=0, results=tuple(results))


# -- DescribeConfigs -------------------------------------------------------------------------------


def _describe_entry(
    mod: Any,
    request: Any,
    name: str,
    value: str | None,
    source: ConfigSource,
    config_type: ConfigType,
    *,
    read_only: bool,
    default: str | None = None,
    doc: str = "",
    levels: list[tuple[str, str | None, ConfigSource]] | None = None,
    sensitive: bool = False,
) -> Any:
    """One config of a DescribeConfigs answer; ``levels``: its synonyms (name, value and source
    of each level that sets it, the one in effect first), else the value and ``default``."""
    synonyms: tuple[Any, ...] = ()
    if request.include_synonyms:
        pairs = levels if levels is not None else [(name, value, source)]
        if levels is None and default is not None and source != ConfigSource.DEFAULT_CONFIG:
            pairs.append((name, default, ConfigSource.DEFAULT_CONFIG))
        synonyms = tuple(
            build(mod.DescribeConfigsSynonym, name=n, value=None if sensitive else v, source=s)
            for n, v, s in pairs
        )
    return build(
        mod.DescribeConfigsResourceResult,
        name=name,
        value=None if sensitive else value,
        read_only=read_only,
        config_source=source,
        is_sensitive=sensitive,
        synonyms=synonyms,
        config_type=config_type,
        documentation=(doc or None) if getattr(request, "include_documentation", False) else None,
    )


def _check_broker_name(ctx: RequestContext, name: str) -> None:
    if name not in ("", str(ctx.broker.node_id)):
        raise Rejected(
            ErrorCode.invalid_request,
            f"unexpected broker id {name!r}: this cluster has one broker, id {ctx.broker.node_id}",
        )


def _check_logger_resource(ctx: RequestContext, name: str) -> None:
    """A BROKER_LOGGER resource is named by its broker's id (no cluster-wide default)."""
    if name != str(ctx.broker.node_id):
        raise Rejected(
            ErrorCode.invalid_request,
            f"Unexpected broker id, expected {ctx.broker.node_id}, but received {name!r}",
        )


def _authorize_configs(ctx: RequestContext, resource: Any, operation: Operation) -> None:
    """TOPIC_AUTHORIZATION_FAILED or CLUSTER_AUTHORIZATION_FAILED unless ``operation`` (Describe-
    or AlterConfigs) on the resource is allowed, as Kafka checks before anything else."""
    if resource.resource_type == ResourceType.TOPIC:
        if not authorization.topic(ctx, operation, resource.resource_name):
            raise _topic_denied(resource.resource_name)
    elif resource.resource_type in (ResourceType.BROKER, ResourceType.BROKER_LOGGER) and not (
        authorization.cluster(ctx, operation)
    ):
        raise Rejected(ErrorCode.cluster_authorization_failed, authorization.CLUSTER_DENIED)


def _describe_resource(ctx: RequestContext, mod: Any, request: Any, resource: Any) -> tuple[Any, ...]:
    if resource.resource_type == group_configs.GROUP:  # share and consumer group configs
        try:
            return group_configs.describe(ctx, mod, request, resource)
        except group_configs.GroupConfigRefused as r:
            raise Rejected(r.code, r.message) from None
    keys = set(resource.configuration_keys) if resource.configuration_keys else None
    entries = []
    _authorize_configs(ctx, resource, Operation.DESCRIBE_CONFIGS)
    if resource.resource_type == ResourceType.TOPIC:
        topics = ctx.broker.topics
        try:
            described = topics.describe_configs(resource.resource_name)
        except TopicError as exc:
            raise _topic_error(exc) from None
        defaults = {e.name: e.value for e in topics.config_entries({})}
        dynamic = broker_configs.of(ctx.broker)
        for e in described:
            if keys is not None and e.name not in keys:
                continue
            source = ConfigSource.DEFAULT_CONFIG if e.is_default else ConfigSource.DYNAMIC_TOPIC_CONFIG
            value: str | None = e.value
            # a default set by a dynamic broker config: that level, with the broker's synonyms
            inherited = dynamic.topic_levels(e.name)
            levels = None
            if inherited is not None:
                levels = ([] if e.is_default else [(e.name, e.value, source)]) + inherited
                value, source = levels[0][1], levels[0][2]
            entries.append(
                _describe_entry(
                    mod,
                    request,
                    e.name,
                    value,
                    source,
                    TOPIC_CONFIG_TYPES.get(e.name, ConfigType.UNKNOWN),
                    read_only=False,
                    default=defaults.get(e.name),
                    doc=CONFIG_KEYS[e.name].doc if e.name in CONFIG_KEYS else "",
                    levels=levels,
                )
            )
    elif resource.resource_type == ResourceType.BROKER:
        _check_broker_name(ctx, resource.resource_name)
        entries = _describe_broker(ctx, mod, request, resource.resource_name != "", keys)
    elif resource.resource_type == ResourceType.BROKER_LOGGER:
        _check_logger_resource(ctx, resource.resource_name)
        for name, level in broker_loggers.loggers().items():
            if keys is None or name in keys:
                source = ConfigSource.DYNAMIC_BROKER_LOGGER_CONFIG
                entries.append(
                    _describe_entry(
                        mod, request, name, level, source, ConfigType.STRING, read_only=False, levels=[]
                    )
                )
    else:
        raise Rejected(
            ErrorCode.invalid_request, f"unsupported config resource type {resource.resource_type}"
        )
    return tuple(entries)


async def handle_describe_configs(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.DESCRIBE_CONFIGS, ctx.api_version)
    results = []
    for resource in request.resources:
        error: int = ErrorCode.none
        message = None
        configs: tuple[Any, ...] = ()
        try:
            configs = _describe_resource(ctx, mod, request, resource)
        except Rejected as r:
            error, message = r.code, r.message
        results.append(
            build(
                mod.DescribeConfigsResult,
                error_code=error,
                error_message=message,
                resource_type=resource.resource_type,
                resource_name=resource.resource_name,
                configs=configs,
            )
        )
    return build(mod.DescribeConfigsResponse, throttle_time=0, results=tuple(results))


def _describe_broker(
    ctx: RequestContext, mod: Any, request: Any, per_broker: bool, keys: set[str] | None
) -> list[Any]:
    """Broker 0: its static settings (read-only) and every dynamic config with the level in
    effect; the cluster default (``per_broker`` False): the dynamic defaults that are set."""
    dynamic = broker_configs.of(ctx.broker)
    entries = []
    if per_broker:
        for name, static, config_type in broker_configs.static_configs(ctx):
            if name in DYNAMIC or (keys is not None and name not in keys):
                continue
            entries.append(
                _describe_entry(
                    mod, request, name, static, ConfigSource.STATIC_BROKER_CONFIG, config_type, read_only=True
                )
            )
    for name, key in DYNAMIC.items():
        if keys is not None and name not in keys:
            continue
        levels = dynamic.synonyms(name)
        if not per_broker:
            levels = [level for level in levels if level[2] != ConfigSource.DYNAMIC_BROKER_CONFIG]
            if not levels or levels[0][2] != ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG:
                continue
        value: str | None = levels[0][1] if levels else None
        source = levels[0][2] if levels else ConfigSource.DEFAULT_CONFIG
        entries.append(
            _describe_entry(
                mod,
                request,
                name,
                value,  # None: a null default, described as null as Kafka does
                source,
                key.type,
                read_only=False,
                levels=list(levels),
                sensitive=key.sensitive,
            )
        )
    return entries


# -- AlterConfigs and IncrementalAlterConfigs -------------------------------------------------------


def _alter_resource(ctx: RequestContext, resource: Any, validate_only: bool, *, incremental: bool) -> None:
    _authorize_configs(ctx, resource, Operation.ALTER_CONFIGS)
    dupes = _duplicates(c.name for c in resource.configs)
    if dupes:
        raise Rejected(
            ErrorCode.invalid_request, f"duplicate config keys: {', '.join(sorted(map(str, dupes)))}"
        )
    if resource.resource_type == group_configs.GROUP:  # share and consumer group configs
        try:
            return group_configs.alter(ctx, resource, validate_only, incremental=incremental)
        except group_configs.GroupConfigRefused as r:
            raise Rejected(r.code, r.message) from None
    if resource.resource_type == ResourceType.BROKER:
        _check_broker_name(ctx, resource.resource_name)
        _alter_broker(ctx, resource, validate_only, incremental=incremental)
        return
    if resource.resource_type == ResourceType.BROKER_LOGGER and incremental:
        _check_logger_resource(ctx, resource.resource_name)
        ops = [(c.name, int(c.config_operation), c.value) for c in resource.configs]
        try:
            broker_loggers.alter(ops, validate_only=validate_only)
        except BrokerConfigError as exc:
            raise _config_error(exc) from None
        return
    if resource.resource_type != ResourceType.TOPIC:
        raise Rejected(
            ErrorCode.invalid_request, f"unsupported config resource type {resource.resource_type}"
        )
    topics = ctx.broker.topics
    topic = topics.get(resource.resource_name)
    if topic is None:
        raise Rejected(ErrorCode.unknown_topic_or_partition, f"unknown topic {resource.resource_name!r}")
    if incremental:
        overrides = _apply_ops(ctx, dict(topic.configs), resource.configs)
    else:
        overrides = {}
        for c in resource.configs:
            if c.value is None:
                raise Rejected(ErrorCode.invalid_request, f"null value not supported for {c.name}")
            overrides[c.name] = c.value
    try:
        topics.set_configs(topic.name, overrides, validate_only=validate_only)
    except TopicError as exc:
        raise _topic_error(exc) from None


def _alter_broker(ctx: RequestContext, resource: Any, validate_only: bool, *, incremental: bool) -> None:
    """Set dynamic broker configs of broker 0 (resource ``"0"``) or the cluster default (``""``):
    incrementally, or (legacy AlterConfigs) replacing that level's whole set, as Kafka does."""
    dynamic = broker_configs.of(ctx.broker)
    per_broker = resource.resource_name != ""
    try:
        if incremental:
            ops = [(c.name, int(c.config_operation), c.value) for c in resource.configs]
            configs = broker_configs.incremental(dynamic.level(per_broker), ops, dynamic.current())
        else:
            configs = {}
            for c in resource.configs:
                if c.value is None:
                    raise Rejected(ErrorCode.invalid_request, f"null value not supported for {c.name}")
                configs[c.name] = c.value
        dynamic.replace(configs, per_broker=per_broker, validate_only=validate_only)
    except BrokerConfigError as exc:
        raise _config_error(exc) from None


def _config_error(exc: BrokerConfigError) -> Rejected:
    return Rejected(ErrorCode.invalid_config if exc.invalid_config else ErrorCode.invalid_request, str(exc))


def _apply_ops(ctx: RequestContext, overrides: dict[str, str], ops: Iterable[Any]) -> dict[str, str]:
    defaults: dict[str, str] | None = None
    for c in ops:
        name = c.name
        if name not in CONFIG_KEYS:
            raise Rejected(ErrorCode.invalid_config, f"unknown topic config name: {name}")
        op = c.config_operation
        if op == AlterOp.DELETE:
            overrides.pop(name, None)
            continue
        if op not in (AlterOp.SET, AlterOp.APPEND, AlterOp.SUBTRACT):
            raise Rejected(ErrorCode.invalid_request, f"unknown config operation {op} for {name}")
        if c.value is None:
            raise Rejected(ErrorCode.invalid_request, f"null value not supported for {name}")
        if op == AlterOp.SET:
            overrides[name] = c.value
            continue
        if TOPIC_CONFIG_TYPES.get(name) != ConfigType.LIST:
            verb = "append" if op == AlterOp.APPEND else "subtract"
            raise Rejected(
                ErrorCode.invalid_config, f"config value {verb} is not allowed for config key: {name}"
            )
        if defaults is None:
            defaults = {e.name: e.value for e in ctx.broker.topics.config_entries({})}
        current = [v.strip() for v in overrides.get(name, defaults[name]).split(",") if v.strip()]
        items = [v.strip() for v in c.value.split(",") if v.strip()]
        if op == AlterOp.APPEND:
            current += [v for v in items if v not in current]
        else:
            current = [v for v in current if v not in items]
        overrides[name] = ",".join(current)
    return overrides


async def _alter(ctx: RequestContext, request: Any, api_key: int, *, incremental: bool) -> Any:
    mod = response_module(api_key, ctx.api_version)
    responses = []
    for resource in request.resources:
        error: int = ErrorCode.none
        message = None
        try:
            _alter_resource(ctx, resource, request.validate_only, incremental=incremental)
        except Rejected as r:
            error, message = r.code, r.message
        responses.append(
            build(
                mod.AlterConfigsResourceResponse,
                error_code=error,
                error_message=message,
                resource_type=resource.resource_type,
                resource_name=resource.resource_name,
            )
        )
    response_class = mod.IncrementalAlterConfigsResponse if incremental else mod.AlterConfigsResponse
    return build(response_class, throttle_time=0, responses=tuple(responses))


async def handle_alter_configs(ctx: RequestContext, request: Any) -> Any:
    """Legacy AlterConfigs: the resource's overrides become exactly the given set."""
    return await _alter(ctx, request, ApiKey.ALTER_CONFIGS, incremental=False)


async def handle_incremental_alter_configs(ctx: RequestContext, request: Any) -> Any:
    return await _alter(ctx, request, ApiKey.INCREMENTAL_ALTER_CONFIGS, incremental=True)


# -- DescribeCluster -------------------------------------------------------------------------------


async def handle_describe_cluster(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.DESCRIBE_CLUSTER, ctx.api_version)
    endpoint_type = getattr(request, "endpoint_type", EndpointType.BROKER)
    broker = ctx.broker
    if endpoint_type != EndpointType.BROKER:
        return build(
            mod.DescribeClusterResponse,
            throttle_time=0,
            error_code=ErrorCode.unsupported_endpoint_type,
            error_message=f"this broker serves endpoint type {int(EndpointType.BROKER)} (brokers) only",
            endpoint_type=endpoint_type,
            cluster_id=broker.cluster_id,
            controller_id=-1,
            brokers=(),
            cluster_authorized_operations=UNKNOWN_OPERATIONS,
        )
    node = build(
        mod.DescribeClusterBroker,
        broker_id=broker.node_id,
        host=ctx.listener.advertised_host,
        port=ctx.listener.advertised_port,
        rack=None,
        is_fenced=False,  # v2+
    )
    return build(
        mod.DescribeClusterResponse,
        throttle_time=0,
        error_code=ErrorCode.none,
        error_message=None,
        endpoint_type=endpoint_type,
        cluster_id=broker.cluster_id,
        controller_id=broker.node_id,
        brokers=(node,),
        cluster_authorized_operations=(
            authorization.authorized_operations(ctx, AclResource.CLUSTER, CLUSTER_NAME)
            if request.include_cluster_authorized_operations
            else UNKNOWN_OPERATIONS
        ),
    )


APIS = [
    Api(ApiKey.CREATE_TOPICS, 2, 7, handle_create_topics),
    Api(ApiKey.DELETE_TOPICS, 1, 6, handle_delete_topics),
    Api(ApiKey.CREATE_PARTITIONS, 0, 3, handle_create_partitions),
    Api(ApiKey.DESCRIBE_CONFIGS, 1, 4, handle_describe_configs),
    Api(ApiKey.ALTER_CONFIGS, 0, 2, handle_alter_configs),
    Api(ApiKey.INCREMENTAL_ALTER_CONFIGS, 0, 1, handle_incremental_alter_configs),
    Api(ApiKey.DESCRIBE_CLUSTER, 0, 2, handle_describe_cluster),
]
