"""Kafka's dynamic broker configs (``DynamicBrokerConfig``): the names one may change at run
time, their types, ranges and defaults, which of them Jackalope applies (``effect``: the
LogConfig field it sets as the broker-wide default; None: accepted without effect), and the
checks Kafka makes of a level's whole set before taking it.  Sans-IO; the store that keeps and
applies them is :mod:`jackalope.kafka.broker_configs`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

INT_MAX: Final = (1 << 31) - 1
LONG_MAX: Final = (1 << 63) - 1


class ConfigSource(IntEnum):
    UNKNOWN = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5
    DYNAMIC_BROKER_LOGGER_CONFIG = 6
    CLIENT_METRICS_CONFIG = 7
    GROUP_CONFIG = 8


class ConfigType(IntEnum):
    UNKNOWN = 0
    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class BrokerConfigError(Exception):
    """A broker config change is refused; ``invalid_config``: INVALID_CONFIG, else INVALID_REQUEST
    (what Kafka answers for a value its validation refuses)."""

    def __init__(self, message: str, *, invalid_config: bool = False) -> None:
        super().__init__(message)
        self.invalid_config = invalid_config


# -- validators: each takes the text and returns it normalised, or raises ValueError ------------


def _integer(low: int, high: int, kind: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        try:
            number = int(value.strip())
        except ValueError:
            raise ValueError(f"Not a number of type {kind}") from None
        if number < low:
            raise ValueError(f"Value must be at least {low}")
        if number > high:
            raise ValueError(f"Value must be no more than {high}")
        return str(number)

    return check


def _int(low: int = -(1 << 31), high: int = INT_MAX) -> Callable[[str], str]:
    return _integer(low, high, "INT")


def _long(low: int = -(1 << 63), high: int = LONG_MAX) -> Callable[[str], str]:
    return _integer(low, high, "LONG")


def _double(low: float = -math.inf, high: float = math.inf) -> Callable[[str], str]:
    def check(value: str) -> str:
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError("Not a number of type DOUBLE") from None
        if not low <= number <= high:
            raise ValueError(f"Value must be in [{low}, {high}]")
        return value.strip()

    return check


def _boolean(value: str) -> str:
    if value.strip().lower() not in ("true", "false"):
        raise ValueError("Expected value to be either true or false")
    return value.strip().lower()


def _one_of(*choices: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value.strip() not in choices:
            raise ValueError(f"String must be one of: {', '.join(choices)}")
        return value.strip()

    return check


def _list_of(*choices: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        items = list(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
        bad = [v for v in items if choices and v not in choices]
        if bad:
            raise ValueError(f"Invalid value {bad[0]}: must be one of {', '.join(choices)}")
        return ",".join(items)

    return check


def _text(value: str) -> str:
    return value.strip()


def _gzip_level(value: str) -> str:
    level = int(_int()(value))
    if level != -1 and not 1 <= level <= 9:
        raise ValueError("Value must be -1 or in [1, 9]")
    return str(level)


# -- the catalogue --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DynamicConfig:
    """One of Kafka's dynamic broker configs.  ``effect`` is the LogConfig field it sets as the
    broker-wide default (None: accepted without effect here); ``per_broker``: Kafka takes it
    only for a named broker, not as the cluster-wide default."""

    name: str
    type: ConfigType
    default: str | None  # Kafka's default (DEFAULT_CONFIG); None: null
    validate: Callable[[str], str]
    effect: str | None = None
    per_broker: bool = False
    to_field: Callable[[str], Any] = int
    threads: bool = False  # Kafka's thread-pool rule: at least half, at most double the current

    @property
    def sensitive(self) -> bool:
        return self.type == ConfigType.PASSWORD


def _c(
    name: str, type_: ConfigType, default: str | None, validate: Callable[[str], str], **kw: Any
) -> DynamicConfig:
    return DynamicConfig(name, type_, default, validate, **kw)


B, S, N, SH, L, D, LI = (
    ConfigType.BOOLEAN,
    ConfigType.STRING,
    ConfigType.INT,
    ConfigType.SHORT,
    ConfigType.LONG,
    ConfigType.DOUBLE,
    ConfigType.LIST,
)
DAY_MS: Final = 86_400_000

DYNAMIC: Final[dict[str, DynamicConfig]] = {
    c.name: c
    for c in (
        # the log defaults of every topic without an override (Kafka's DynamicLogConfig)
        _c("log.segment.bytes", N, "1073741824", _int(14), effect="segment_bytes"),
        _c("log.roll.ms", L, None, _long(1), effect="segment_ms"),
        _c("log.retention.ms", L, None, _long(-1), effect="retention_ms"),
        _c("log.retention.bytes", L, "-1", _long(-1), effect="retention_bytes"),
        _c("message.max.bytes", N, "1048588", _int(0), effect="max_message_bytes"),
        _c("log.index.interval.bytes", N, "4096", _int(0), effect="index_interval_bytes"),
        _c("log.cleaner.delete.retention.ms", L, str(DAY_MS), _long(0), effect="delete_retention_ms"),
        _c("log.cleaner.min.compaction.lag.ms", L, "0", _long(0), effect="min_compaction_lag_ms"),
        _c(
            "log.cleanup.policy",
            LI,
            "delete",
            _list_of("compact", "delete"),
            effect="cleanup_policy",
            to_field=str,
        ),
        _c(
            "log.message.timestamp.type",
            S,
            "CreateTime",
            _one_of("CreateTime", "LogAppendTime"),
            effect="log_append_time",
            to_field=lambda v: v == "LogAppendTime",
        ),
        # log configs accepted without effect (see docs/kafka.md)
        _c("log.roll.jitter.ms", L, None, _long(0)),
        _c("log.index.size.max.bytes", N, "10485760", _int(4)),
        _c("log.flush.interval.messages", L, str(LONG_MAX), _long(1)),
        _c("log.flush.interval.ms", L, None, _long(0)),
        _c("log.cleaner.max.compaction.lag.ms", L, str(LONG_MAX), _long(1)),
        _c("log.segment.delete.delay.ms", L, "60000", _long(0)),
        _c("log.cleaner.min.cleanable.ratio", D, "0.5", _double(0, 1)),
        _c("unclean.leader.election.enable", B, "false", _boolean),
        _c("min.insync.replicas", N, "1", _int(1)),
        _c(
            "compression.type",
            S,
            "producer",
            _one_of("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
        ),
        _c("compression.gzip.level", N, "-1", _gzip_level),
        _c("compression.lz4.level", N, "9", _int(1, 17)),
        _c("compression.zstd.level", N, "3", _int(-131072, 22)),
        _c("log.preallocate", B, "false", _boolean),
        _c("log.message.timestamp.before.max.ms", L, str(LONG_MAX), _long(0)),
        _c("log.message.timestamp.after.max.ms", L, str(LONG_MAX), _long(0)),
        _c("log.local.retention.ms", L, "-2", _long(-2)),
        _c("log.local.retention.bytes", L, "-2", _long(-2)),
        # the log cleaner's tuning (LogCleaner.ReconfigurableConfigs)
        _c("log.cleaner.threads", N, "1", _int(0)),
        _c("log.cleaner.dedupe.buffer.size", L, "134217728", _long()),
        _c("log.cleaner.io.buffer.load.factor", D, "0.9", _double()),
        _c("log.cleaner.io.buffer.size", N, "524288", _int(0)),
        _c("log.cleaner.io.max.bytes.per.second", D, "1.7976931348623157E308", _double()),
        _c("log.cleaner.backoff.ms", L, "15000", _long(0)),
        # thread pools (DynamicThreadPool; num.network.threads is a cluster-level listener config)
        _c("num.io.threads", N, "8", _int(1), threads=True),
        _c("num.replica.fetchers", N, "1", _int(), threads=True),
        _c("num.recovery.threads.per.data.dir", N, "2", _int(1), threads=True),
        _c("background.threads", N, "10", _int(1), threads=True),
        _c("num.network.threads", N, "3", _int(1), threads=True),
        _c("metric.reporters", LI, "", _list_of()),
        # SASL configs of the listener (per broker); Kerberos and OAuth login refresh: no GSSAPI
        # or OAUTHBEARER here
        _c("sasl.mechanism.inter.broker.protocol", S, "GSSAPI", _text, per_broker=True),
        _c("sasl.kerberos.service.name", S, None, _text, per_broker=True),
        _c("sasl.kerberos.kinit.cmd", S, "/usr/bin/kinit", _text, per_broker=True),
        _c("sasl.kerberos.ticket.renew.window.factor", D, "0.8", _double(), per_broker=True),
        _c("sasl.kerberos.ticket.renew.jitter", D, "0.05", _double(), per_broker=True),
        _c("sasl.kerberos.min.time.before.relogin", L, "60000", _long(), per_broker=True),
        _c("sasl.kerberos.principal.to.local.rules", LI, "DEFAULT", _list_of(), per_broker=True),
        _c("sasl.login.refresh.window.factor", D, "0.8", _double(0.5, 1.0), per_broker=True),
        _c("sasl.login.refresh.window.jitter", D, "0.05", _double(0.0, 0.25), per_broker=True),
        _c("sasl.login.refresh.min.period.seconds", SH, "60", _integer(0, 900, "SHORT"), per_broker=True),
        _c("sasl.login.refresh.buffer.seconds", SH, "300", _integer(0, 3600, "SHORT"), per_broker=True),
        # idempotent producers and transactions
        _c("producer.id.expiration.ms", N, str(DAY_MS), _int(1)),
        _c("transaction.partition.verification.enable", B, "true", _boolean),
        # tiered storage (there is none) and replication throttles (there are no replicas)
        _c("remote.log.index.file.cache.total.size.bytes", L, "1073741824", _long(1)),
        _c("remote.fetch.max.wait.ms", N, "500", _int(1)),
        _c("remote.log.manager.copy.max.bytes.per.second", L, str(LONG_MAX), _long(1)),
        _c("remote.log.manager.fetch.max.bytes.per.second", L, str(LONG_MAX), _long(1)),
        _c("remote.list.offsets.request.timeout.ms", L, "30000", _long(1)),
        _c("leader.replication.throttled.rate", L, str(LONG_MAX), _long(0)),
        _c("follower.replication.throttled.rate", L, str(LONG_MAX), _long(0)),
        _c("replica.alter.log.dirs.io.max.bytes.per.second", L, str(LONG_MAX), _long(0)),
    )
}

# topic config -> the dynamic broker config that is its default (Kafka's TopicConfigSynonyms)
TOPIC_SYNONYMS: Final = {
    "segment.bytes": "log.segment.bytes",
    "segment.ms": "log.roll.ms",
    "retention.ms": "log.retention.ms",
    "retention.bytes": "log.retention.bytes",
    "max.message.bytes": "message.max.bytes",
    "index.interval.bytes": "log.index.interval.bytes",
    "delete.retention.ms": "log.cleaner.delete.retention.ms",
    "min.compaction.lag.ms": "log.cleaner.min.compaction.lag.ms",
    "cleanup.policy": "log.cleanup.policy",
    "message.timestamp.type": "log.message.timestamp.type",
    "segment.jitter.ms": "log.roll.jitter.ms",
    "segment.index.bytes": "log.index.size.max.bytes",
    "flush.messages": "log.flush.interval.messages",
    "flush.ms": "log.flush.interval.ms",
    "max.compaction.lag.ms": "log.cleaner.max.compaction.lag.ms",
    "file.delete.delay.ms": "log.segment.delete.delay.ms",
    "min.cleanable.dirty.ratio": "log.cleaner.min.cleanable.ratio",
    "unclean.leader.election.enable": "unclean.leader.election.enable",
    "min.insync.replicas": "min.insync.replicas",
    "compression.type": "compression.type",
    "compression.gzip.level": "compression.gzip.level",
    "compression.lz4.level": "compression.lz4.level",
    "compression.zstd.level": "compression.zstd.level",
    "preallocate": "log.preallocate",
    "message.timestamp.before.max.ms": "log.message.timestamp.before.max.ms",
    "message.timestamp.after.max.ms": "log.message.timestamp.after.max.ms",
    "local.retention.ms": "log.local.retention.ms",
    "local.retention.bytes": "log.local.retention.bytes",
}

# Dynamic in Kafka, but set by Jackalope's own settings (listeners, TLS, SASL mechanisms) or not
# implemented (connection limits): refused, naming the setting to use instead.
NOT_HERE: Final[dict[str, str]] = {
    **{
        name: "the Kafka listener is set by the broker's settings (--kafka-port, --kafka-advertised-host, "
        "--kafka-tls-certfile, --kafka-sasl-mechanisms) and a restart"
        for name in (
            "listeners",
            "advertised.listeners",
            "listener.security.protocol.map",
            "sasl.enabled.mechanisms",
            "sasl.jaas.config",
            "principal.builder.class",
            "ssl.protocol",
            "ssl.provider",
            "ssl.cipher.suites",
            "ssl.enabled.protocols",
            "ssl.keymanager.algorithm",
            "ssl.trustmanager.algorithm",
            "ssl.endpoint.identification.algorithm",
            "ssl.secure.random.implementation",
            "ssl.client.auth",
            "ssl.engine.factory.class",
        )
    },
    **{
        name: "this broker does not limit connections"
        for name in (
            "max.connections",
            "max.connection.creation.rate",
            "max.connections.per.ip",
            "max.connections.per.ip.overrides",
        )
    },
}

# Kafka's DynamicSecurityConfigs: dynamic only per listener (listener.name.<listener>.<name>)
LISTENER_ONLY: Final = frozenset(
    {
        "ssl.keystore.type",
        "ssl.keystore.location",
        "ssl.keystore.password",
        "ssl.key.password",
        "ssl.truststore.type",
        "ssl.truststore.location",
        "ssl.truststore.password",
        "ssl.keystore.certificate.chain",
        "ssl.keystore.key",
        "ssl.truststore.certificates",
    }
)


def _not_here(name: str) -> str | None:
    """Why a config Kafka changes dynamically is refused here, or None."""
    if name.startswith("listener.name."):  # per-listener overrides: one listener, from the settings
        return NOT_HERE["listeners"]
    return NOT_HERE.get(name)


def validate(configs: Mapping[str, str], *, per_broker: bool, current: Mapping[str, str]) -> dict[str, str]:
    """The dynamic configs ``configs`` of one level (``per_broker``: of broker 0, else the cluster
    default), checked as Kafka's ``DynamicBrokerConfig.validateConfigs`` checks them, normalised.
    ``current``: the values in effect now (for the thread-pool rule).  Raises BrokerConfigError."""
    unknown = sorted(n for n in configs if n not in DYNAMIC and not _not_here(n) and n not in LISTENER_ONLY)
    static = sorted(n for n in unknown if n in STATIC_NAMES)
    if static:
        raise BrokerConfigError(f"Cannot update these configs dynamically: {', '.join(static)}")
    if unknown:
        raise BrokerConfigError(
            f"unknown broker config names: {', '.join(unknown)} (this broker keeps no custom configs)",
            invalid_config=True,
        )
    prefixed = sorted(n for n in configs if n in LISTENER_ONLY)
    if prefixed:
        raise BrokerConfigError(
            "These security configs can be dynamically updated only per-listener using the listener "
            f"prefix: {', '.join(prefixed)}"
        )
    refused = sorted(n for n in configs if _not_here(n))
    if refused:
        raise BrokerConfigError(
            f"not supported by this broker: {', '.join(f'{n} ({_not_here(n)})' for n in refused)}",
            invalid_config=True,
        )
    if not per_broker:
        per = sorted(n for n in configs if DYNAMIC[n].per_broker)
        if per:
            raise BrokerConfigError(
                "Cannot update these configs at default cluster level, broker id must be specified: "
                + ", ".join(per)
            )
    out: dict[str, str] = {}
    for name, value in configs.items():
        key = DYNAMIC[name]
        try:
            out[name] = key.validate(value)
        except ValueError as exc:
            raise BrokerConfigError(f"Invalid value {value} for configuration {name}: {exc}") from None
        if key.threads and name in current and out[name] != current[name]:
            new, old = int(out[name]), int(current[name])
            if new < old / 2 or new > old * 2:
                raise BrokerConfigError(
                    f"Dynamic thread count update validation failed for {name}={value}, value should be "
                    f"at least half and at most double the current value {old}"
                )
    return out


# Kafka broker configs that exist but are not dynamic (refused as Kafka refuses them); the static
# list DescribeConfigs shows adds its own names.
STATIC_NAMES: Final = frozenset(
    {
        "broker.id",
        "node.id",
        "process.roles",
        "controller.quorum.voters",
        "log.dirs",
        "log.dir",
        "log.retention.hours",
        "log.retention.minutes",
        "log.roll.hours",
        "log.roll.jitter.hours",
        "log.retention.check.interval.ms",
        "log.message.format.version",
        "num.partitions",
        "default.replication.factor",
        "auto.create.topics.enable",
        "delete.topic.enable",
        "group.initial.rebalance.delay.ms",
        "group.min.session.timeout.ms",
        "group.max.session.timeout.ms",
        "group.max.size",
        "offsets.retention.minutes",
        "offsets.retention.check.interval.ms",
        "offsets.topic.replication.factor",
        "offsets.topic.num.partitions",
        "offset.metadata.max.bytes",
        "socket.request.max.bytes",
        "super.users",
        "transaction.max.timeout.ms",
        "transactional.id.expiration.ms",
        "connections.max.reauth.ms",
        "connections.max.idle.ms",
        "authorizer.class.name",
        "allow.everyone.if.no.acl.found",
    }
)


def incremental(
    level: dict[str, str], ops: Iterable[tuple[str, int, str | None]], current: Mapping[str, str]
) -> dict[str, str]:
    """IncrementalAlterConfigs' ``(name, operation, value)`` ops applied to one level's configs
    (SET 0, DELETE 1, APPEND 2 and SUBTRACT 3 for LIST configs, from the value in ``current``);
    the result is validated afterwards, as a whole."""
    out = dict(level)
    for name, op, value in ops:
        if op == 1:
            out.pop(name, None)
            continue
        if op not in (0, 2, 3):
            raise BrokerConfigError(f"unknown config operation {op} for {name}")
        if value is None:
            raise BrokerConfigError(f"null value not supported for {name}")
        if op == 0:
            out[name] = value
            continue
        key = DYNAMIC.get(name)
        if key is None or key.type != ConfigType.LIST:
            verb = "append" if op == 2 else "subtract"
            raise BrokerConfigError(
                f"config value {verb} is not allowed for config key: {name}", invalid_config=True
            )
        items = [v.strip() for v in out.get(name, current.get(name, "")).split(",") if v.strip()]
        given = [v.strip() for v in value.split(",") if v.strip()]
        items = (
            items + [v for v in given if v not in items] if op == 2 else [v for v in items if v not in given]
        )
        out[name] = ",".join(items)
    return out
