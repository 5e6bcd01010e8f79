"""Broker configs: the static ones (the broker's settings, under Kafka's names) and the store of
Kafka's dynamic broker configs, set with AlterConfigs / IncrementalAlterConfigs on a BROKER
resource (the catalogue: :mod:`jackalope.kafka.broker_config_catalogue`).

Kafka keeps dynamic broker configs at two levels: per broker (resource name ``"0"``, source
DYNAMIC_BROKER_CONFIG) and the cluster-wide default (empty resource name, source
DYNAMIC_DEFAULT_BROKER_CONFIG); a per-broker value wins over the default, which wins over the
static setting, which wins over Kafka's default.  Those Jackalope has an equivalent for (the log
defaults every topic inherits) take effect at once; the others are accepted, stored and
described without effect.

The values are kept in ``broker-configs.json`` in the data directory (written atomically,
mode 0600) and applied again at start.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from jackalope.kafka import listeners
from jackalope.kafka.broker_config_catalogue import (
    DYNAMIC,
    TOPIC_SYNONYMS,
    BrokerConfigError,
    ConfigSource,
    ConfigType,
    incremental,
    validate,
)
from jackalope.storage import LogConfig
from jackalope.storage.files import atomic_write

if TYPE_CHECKING:
    from jackalope.core.share.configs import GroupConfigs
    from jackalope.kafka.context import KafkaBroker, RequestContext

__all__ = [
    "DYNAMIC",
    "BrokerConfigError",
    "ConfigSource",
    "ConfigType",
    "DynamicBrokerConfigs",
    "incremental",
    "of",
    "static_configs",
]

CONFIGS_FILE: Final = "broker-configs.json"


# -- the store ------------------------------------------------------------------------------------


class DynamicBrokerConfigs:
    """The dynamic broker configs of this broker and the cluster default; persisted, applied."""

    def __init__(self, broker: KafkaBroker, data_dir: Path | None) -> None:
        self.broker = broker
        self.path = data_dir / CONFIGS_FILE if data_dir is not None else None
        self.static_log = broker.topics.base_config  # what the settings gave, before any dynamic value
        self.per_broker: dict[str, str] = {}
        self.default: dict[str, str] = {}

    @classmethod
    def open(cls, broker: KafkaBroker) -> DynamicBrokerConfigs:
        """Load the stored configs and apply them (at start)."""
        configs = cls(broker, getattr(broker.core, "data_dir", None))
        configs.load()
        return configs

    def load(self) -> None:
        if self.path is None:
            return
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        except ValueError as exc:
            raise ValueError(f"{self.path} is damaged ({exc}): fix or remove it") from None
        if not isinstance(data, dict):
            raise ValueError(f"{self.path} is damaged: not a JSON object")
        # names a later version no longer knows are dropped rather than failing the start
        try:
            for per_broker, key in ((False, "default"), (True, "broker")):
                stored = {str(k): str(v) for k, v in data.get(key, {}).items() if k in DYNAMIC}
                checked = validate(stored, per_broker=per_broker, current={})
                if per_broker:
                    self.per_broker = checked
                else:
                    self.default = checked
            self._apply()
        except (BrokerConfigError, ValueError, AttributeError) as exc:
            raise ValueError(f"{self.path} is damaged ({exc}): fix or remove it") from None

    def save(self) -> None:
        if self.path is None:
            return
        data = {"default": self.default, "broker": self.per_broker}
        atomic_write(self.path, (json.dumps(data, indent=1) + "\n").encode(), mode=0o600)

    def level(self, per_broker: bool) -> dict[str, str]:
        return dict(self.per_broker if per_broker else self.default)

    def current(self) -> dict[str, str]:
        """The value in effect of every catalogue name that has one (dynamic, static or default)."""
        static = self.static_values()
        out: dict[str, str] = {}
        for name, key in DYNAMIC.items():
            value = self.per_broker.get(name, self.default.get(name, static.get(name, key.default)))
            if value is not None:
                out[name] = value
        return out

    def replace(self, configs: Mapping[str, str], *, per_broker: bool, validate_only: bool) -> None:
        """Make ``configs`` the whole set of one level (after :func:`validate`) and apply it."""
        checked = validate(configs, per_broker=per_broker, current=self.current())
        before = (dict(self.per_broker), dict(self.default))
        if per_broker:
            self.per_broker = checked
        else:
            self.default = checked
        try:
            log = self._log_config()
        except ValueError as exc:
            self.per_broker, self.default = before
            raise BrokerConfigError(str(exc)) from None
        if validate_only:
            self.per_broker, self.default = before
            return
        del log
        self.save()
        self._apply()

    def static_values(self) -> dict[str, str]:
        """The catalogue names the broker's settings set (STATIC_BROKER_CONFIG)."""
        base = self.static_log
        return {
            "log.segment.bytes": str(base.segment_bytes),
            "log.roll.ms": str(base.segment_ms),
            "log.retention.ms": str(base.retention_ms),
            "log.retention.bytes": str(base.retention_bytes),
            "message.max.bytes": str(base.max_message_bytes),
            "log.index.interval.bytes": str(base.index_interval_bytes),
            "log.cleaner.delete.retention.ms": str(base.delete_retention_ms),
            "log.cleaner.min.compaction.lag.ms": str(base.min_compaction_lag_ms),
            "log.cleanup.policy": base.cleanup_policy,
            "log.message.timestamp.type": "LogAppendTime" if base.log_append_time else "CreateTime",
        }

    def synonyms(self, name: str) -> list[tuple[str, str | None, ConfigSource]]:
        """Every level that gives ``name`` a value, first the one in effect (Kafka's synonyms:
        name, value, source)."""
        key = DYNAMIC[name]
        out: list[tuple[str, str | None, ConfigSource]] = []
        if name in self.per_broker:
            out.append((name, self.per_broker[name], ConfigSource.DYNAMIC_BROKER_CONFIG))
        if name in self.default:
            out.append((name, self.default[name], ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG))
        static = self.static_values()
        if name in static:
            out.append((name, static[name], ConfigSource.STATIC_BROKER_CONFIG))
        if key.default is not None:
            out.append((name, key.default, ConfigSource.DEFAULT_CONFIG))
        return out

    def topic_levels(self, topic_config: str) -> list[tuple[str, str | None, ConfigSource]] | None:
        """The broker levels behind ``topic_config`` when a dynamic broker config sets its default
        (a topic without an override describes it so, as Kafka does), else None."""
        name = TOPIC_SYNONYMS.get(topic_config)
        if name is None or (name not in self.per_broker and name not in self.default):
            return None
        return self.synonyms(name)

    def _log_config(self) -> LogConfig:
        changes: dict[str, Any] = {}
        for name, key in DYNAMIC.items():
            if key.effect is None:
                continue
            value = self.per_broker.get(name, self.default.get(name))
            if value is not None:
                changes[key.effect] = key.to_field(value)
        return self.static_log.replace(**changes)

    def _apply(self) -> None:
        self.broker.topics.set_base_config(self._log_config())


def of(broker: KafkaBroker) -> DynamicBrokerConfigs:
    """The broker's dynamic configs (opened on first use where the server did not open them)."""
    if broker.dynamic_configs is None:
        broker.dynamic_configs = DynamicBrokerConfigs.open(broker)
    return broker.dynamic_configs


# -- the static configs ---------------------------------------------------------------------------


def static_configs(ctx: RequestContext) -> list[tuple[str, str, ConfigType]]:
    """The broker-level configs DescribeConfigs shows read-only: Kafka's names for this broker's
    settings (the log defaults as the settings gave them, before any dynamic value)."""
    kafka = ctx.broker
    topics = kafka.topics
    base = of(kafka).static_log
    groups = kafka.groups
    node = str(kafka.node_id)
    configs = [
        ("broker.id", node, ConfigType.INT),
        ("node.id", node, ConfigType.INT),
        (
            "listeners",
            listeners.format_listeners([(x.name, x.host, x.port) for x in kafka.listeners]),
            ConfigType.STRING,
        ),
        (
            "advertised.listeners",
            listeners.format_listeners(
                [(x.name, x.advertised_host, x.advertised_port) for x in kafka.listeners]
            ),
            ConfigType.STRING,
        ),
        (
            "listener.security.protocol.map",
            listeners.format_protocol_map(kafka.protocol_map),
            ConfigType.STRING,
        ),
        ("process.roles", "broker,controller", ConfigType.LIST),
        (
            "controller.quorum.voters",
            f"{node}@{kafka.advertised_host}:{kafka.advertised_port}",
            ConfigType.LIST,
        ),
        ("log.dirs", str(kafka.core.logs.directory), ConfigType.STRING),
        (
            "log.retention.check.interval.ms",
            str(kafka.core.logs.retention_check_interval_ms),
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
        ("auto.create.topics.enable", "true" if kafka.auto_create_topics else "false", ConfigType.BOOLEAN),
        ("message.max.bytes", str(base.max_message_bytes), ConfigType.INT),
        ("log.retention.ms", str(base.retention_ms), ConfigType.LONG),
        ("log.retention.bytes", str(base.retention_bytes), ConfigType.LONG),
        ("log.segment.bytes", str(base.segment_bytes), ConfigType.INT),
        ("log.roll.ms", str(base.segment_ms), ConfigType.LONG),
        ("log.cleanup.policy", base.cleanup_policy, ConfigType.LIST),
        ("socket.request.max.bytes", str(kafka.max_request_bytes), ConfigType.INT),
        ("sasl.enabled.mechanisms", ",".join(kafka.sasl_mechanisms), ConfigType.LIST),
        ("super.users", ";".join(f"User:{n}" for n in _administrators(ctx)), ConfigType.LIST),
        ("connections.max.reauth.ms", str(kafka.connections_max_reauth_ms), ConfigType.LONG),
    ]
    transactions = getattr(kafka, "transactions", None)
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
    share = getattr(kafka, "share", None)
    if share is not None:
        configs += _share_configs(share.configs)
    return configs


def _share_configs(group_configs: GroupConfigs) -> list[tuple[str, str, ConfigType]]:
    """The share-group defaults and the bounds on their group configs (group.share.*)."""
    defaults, bounds = group_configs.share_defaults, group_configs.bounds
    configs = [
        ("group.share.record.lock.duration.ms", str(defaults.record_lock_duration_ms), ConfigType.INT),
        ("group.share.delivery.count.limit", str(defaults.delivery_count_limit), ConfigType.INT),
        ("group.share.session.timeout.ms", str(defaults.session_timeout_ms), ConfigType.INT),
        ("group.share.heartbeat.interval.ms", str(defaults.heartbeat_interval_ms), ConfigType.INT),
        (
            "group.share.partition.max.record.locks",
            str(defaults.partition_max_record_locks),
            ConfigType.INT,
        ),
    ]
    for name, (low, high) in (
        ("record.lock.duration.ms", bounds.share_record_lock_duration_ms),
        ("session.timeout.ms", bounds.share_session_timeout_ms),
        ("heartbeat.interval.ms", bounds.share_heartbeat_interval_ms),
    ):
        configs.append((f"group.share.min.{name}", str(low), ConfigType.INT))
        configs.append((f"group.share.max.{name}", str(high), ConfigType.INT))
    return configs


def _administrators(ctx: RequestContext) -> list[str]:
    return sorted(u.name for u in ctx.broker.core.access.users.values() if u.is_administrator)
