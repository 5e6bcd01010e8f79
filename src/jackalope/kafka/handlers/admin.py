"""Topic administration: CreateTopics, DeleteTopics, CreatePartitions, the config APIs and
DescribeCluster.

There is one broker, so every partition has exactly one replica on it: a replication factor
other than 1 (or -1, "the default") is refused, and an explicit replica assignment is honoured
only when it places every partition on this broker.  Topic configs are the Kafka names
:mod:`jackalope.core.topics` maps onto the storage engine; broker configs are static (they
come from the broker's settings) and are described read-only.
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
from jackalope.kafka import authorization, internal_topics
from jackalope.kafka.context import RequestContext
from jackalope.kafka.handlers import Api
from jackalope.kafka.protocol import ApiKey, ErrorCode, build, response_module

NO_TOPIC_ID = uuid.UUID(int=0)
UNKNOWN_OPERATIONS = -2147483648  # "authorized operations were not requested"


class ResourceType(IntEnum):
    TOPIC = 2
    BROKER = 4
    BROKER_LOGGER = 8


class ConfigSource(IntEnum):
    DYNAMIC_TOPIC_CONFIG = 1
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5


class ConfigType(IntEnum):
    UNKNOWN = 0
    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7


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

BROKER_STATIC_MESSAGE = (
    "broker configs are static: set them in the broker's settings (config file, "
    "JACKALOPE_* environment variables or flags) and restart"
)


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


def broker_configs(ctx: RequestContext) -> list[tuple[str, str, ConfigType]]:
    """The broker-level configs DescribeConfigs shows: Kafka's names for this broker's settings."""
    topics = ctx.broker.topics
    base = topics.base_config
    groups = ctx.broker.groups
    kafka = ctx.broker
    configs = [
        ("broker.id", str(ctx.broker.node_id), ConfigType.INT),
        ("node.id", str(ctx.broker.node_id), ConfigType.INT),
        ("listeners", f"{kafka.security_protocol}://{kafka.listen_address}", ConfigType.STRING),
        (
            "advertised.listeners",
            f"{kafka.security_protocol}://{kafka.advertised_host}:{kafka.advertised_port}",
            ConfigType.STRING,
        ),
        ("process.roles", "broker,controller", ConfigType.LIST),
        (
            "controller.quorum.voters",
            f"{ctx.broker.node_id}@{kafka.advertised_host}:{kafka.advertised_port}",
            ConfigType.LIST,
        ),
        ("log.dirs", str(ctx.broker.core.logs.directory), ConfigType.STRING),
        (
            "log.retention.check.interval.ms",
            str(ctx.broker.core.logs.retention_check_interval_ms),
            ConfigType.LONG,
        ),
        ("group.initial.rebalance.delay.ms", str(groups.initial_rebalance_delay_ms), ConfigType.INT),
        ("group.max.size", str(groups.group_max_size), ConfigType.INT),
        ("offsets.retention.minutes", str(groups.offsets_retention_ms // 60_000), ConfigType.INT),
        (
            "offsets.retention.check.interval.ms",
            str(groups.offsets_retention_check_interval_ms),
            ConfigType.LONG,
        ),
        ("offsets.topic.replication.factor", "1", ConfigType.SHORT),
        ("offsets.topic.num.partitions", "1", ConfigType.INT),
        ("group.min.session.timeout.ms", str(groups.min_session_timeout_ms), ConfigType.INT),
        ("group.max.session.timeout.ms", str(groups.max_session_timeout_ms), ConfigType.INT),
        ("num.partitions", str(topics.default_partitions), ConfigType.INT),
        ("default.replication.factor", "1", ConfigType.INT),
        (
            "auto.create.topics.enable",
            "true" if ctx.broker.auto_create_topics else "false",
            ConfigType.BOOLEAN,
        ),
        ("message.max.bytes", str(base.max_message_bytes), ConfigType.INT),
        ("log.retention.ms", str(base.retention_ms), ConfigType.LONG),
        ("log.retention.bytes", str(base.retention_bytes), ConfigType.LONG),
        ("log.segment.bytes", str(base.segment_bytes), ConfigType.INT),
        ("log.roll.ms", str(base.segment_ms), ConfigType.LONG),
        ("log.cleanup.policy", base.cleanup_policy, ConfigType.LIST),
        ("socket.request.max.bytes", str(ctx.broker.max_request_bytes), ConfigType.INT),
        (
            "sasl.enabled.mechanisms",
            ",".join(ctx.broker.sasl_mechanisms),
            ConfigType.LIST,
        ),
        ("super.users", ";".join(f"User:{n}" for n in _administrators(ctx)), ConfigType.LIST),
        ("connections.max.reauth.ms", str(ctx.broker.connections_max_reauth_ms), ConfigType.LONG),
    ]
    transactions = getattr(ctx.broker, "transactions", None)
    for attribute, name in (
        ("max_timeout_ms", "transaction.max.timeout.ms"),
        ("id_expiration_ms", "transactional.id.expiration.ms"),
    ):
        value = getattr(transactions, attribute, None)
        if isinstance(value, int):
            configs.append((name, str(value), ConfigType.INT))
    metadata_bytes = getattr(groups, "max_metadata_bytes", None)
    if isinstance(metadata_bytes, int):
        configs.append(("offset.metadata.max.bytes", str(metadata_bytes), ConfigType.INT))
    return configs


def _administrators(ctx: RequestContext) -> list[str]:
    return sorted(u.name for u in ctx.broker.core.access.users.values() if u.is_administrator)


def _describe_entry(
    mod: Any,
    request: Any,
    name: str,
    value: str,
    source: ConfigSource,
    config_type: ConfigType,
    *,
    read_only: bool,
    default: str | None = None,
    doc: str = "",
) -> Any:
    synonyms: tuple[Any, ...] = ()
    if request.include_synonyms:
        pairs = [(value, source)]
        if default is not None and source != ConfigSource.DEFAULT_CONFIG:
            pairs.append((default, ConfigSource.DEFAULT_CONFIG))
        synonyms = tuple(build(mod.DescribeConfigsSynonym, name=name, value=v, source=s) for v, s in pairs)
    return build(
        mod.DescribeConfigsResourceResult,
        name=name,
        value=value,
        read_only=read_only,
        config_source=source,
        is_sensitive=False,
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
        for e in described:
            if keys is not None and e.name not in keys:
                continue
            entries.append(
                _describe_entry(
                    mod,
                    request,
                    e.name,
                    e.value,
                    ConfigSource.DEFAULT_CONFIG if e.is_default else ConfigSource.DYNAMIC_TOPIC_CONFIG,
                    TOPIC_CONFIG_TYPES.get(e.name, ConfigType.UNKNOWN),
                    read_only=False,
                    default=defaults.get(e.name),
                    doc=CONFIG_KEYS[e.name].doc if e.name in CONFIG_KEYS else "",
                )
            )
    elif resource.resource_type == ResourceType.BROKER:
        _check_broker_name(ctx, resource.resource_name)
        if resource.resource_name == "":
            return ()  # the cluster-wide dynamic defaults: there are none
        for name, value, config_type in broker_configs(ctx):
            if keys is not None and name not in keys:
                continue
            entries.append(
                _describe_entry(
                    mod, request, name, value, ConfigSource.STATIC_BROKER_CONFIG, config_type, read_only=True
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


# -- AlterConfigs and IncrementalAlterConfigs -------------------------------------------------------


def _alter_resource(ctx: RequestContext, resource: Any, validate_only: bool, *, incremental: bool) -> None:
    _authorize_configs(ctx, resource, Operation.ALTER_CONFIGS)
    dupes = _duplicates(c.name for c in resource.configs)
    if dupes:
        raise Rejected(
            ErrorCode.invalid_request, f"duplicate config keys: {', '.join(sorted(map(str, dupes)))}"
        )
    if resource.resource_type == ResourceType.BROKER:
        _check_broker_name(ctx, resource.resource_name)
        if resource.configs:
            raise Rejected(ErrorCode.invalid_request, BROKER_STATIC_MESSAGE)
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
        host=broker.advertised_host,
        port=broker.advertised_port,
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
