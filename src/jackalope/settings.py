"""Broker settings: defaults, overridden by a TOML file, then ``JACKALOPE_*`` variables, then flags.

Every setting is declared once, in :class:`Settings`, with its help text; the CLI builds its
flags and the environment/TOML readers their keys from that one declaration.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from jackalope import resources, tls
from jackalope.core.share.configs import ShareGroupConfig
from jackalope.kafka.listeners import ANONYMOUS_POLICIES, ListenerError, ListenerSpec, parse_listeners
from jackalope.kafka.oauthbearer import ValidatorConfig
from jackalope.storage import Durability, LogConfig

ENV_PREFIX = "JACKALOPE_"
DAY_MS = 24 * 3600 * 1000


SASL_MECHANISMS = frozenset({"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"})
CONSUMER_GROUP_ASSIGNORS = frozenset({"uniform", "range"})  # core/groups/assignors.py
# core/groups/migration.py (MigrationPolicy)
CONSUMER_GROUP_MIGRATION_POLICIES = ("bidirectional", "upgrade", "downgrade", "disabled")


class SettingsError(ValueError):
    """A setting has a value of the wrong kind, or the config file cannot be read."""


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    data_dir: Path = _setting(
        Path("jackalope-data"), "Directory for logs and metadata (locked while in use)."
    )
    host: str = _setting("127.0.0.1", "Address the listeners bind to (0.0.0.0 for every interface).")
    http_port: int = _setting(15672, "HTTP API port (0 picks a free port).")
    amqp_port: int = _setting(5672, "AMQP 0-9-1 port (0 picks a free port, -1 disables).")
    amqp_tls_port: int = _setting(
        5671,
        "AMQP 0-9-1 over TLS (amqps) port, listening only when amqp_tls_certfile and amqp_tls_keyfile "
        "are set (0 picks a free port, -1 disables).",
    )
    amqp_tls_certfile: str = _setting(
        "", "PEM certificate (chain) of the amqps listener; empty: no amqps listener."
    )
    amqp_tls_keyfile: str = _setting("", "PEM private key of amqp_tls_certfile (not encrypted).")
    amqp_tls_cafile: str = _setting(
        "", "PEM CA certificates that amqps client certificates must be signed by (for verify_peer)."
    )
    amqp_tls_verify: str = _setting(
        "verify_none",
        "verify_none: no client certificate is asked for; verify_peer: one is asked for and, if sent, "
        "must be signed by amqp_tls_cafile (its CN is then the user of the EXTERNAL mechanism).",
    )
    amqp_tls_fail_if_no_peer_cert: bool = _setting(
        False, "With verify_peer: refuse amqps clients that send no certificate."
    )
    amqp_max_message_bytes: int = _setting(128 * 1024 * 1024, "Largest AMQP message body accepted.")
    kafka_port: int = _setting(9092, "Kafka protocol port (0 picks a free port, -1 disables).")
    kafka_advertised_host: str = _setting(
        "", "Host Kafka clients are told to connect to (empty: the bind host, or 127.0.0.1 for 0.0.0.0)."
    )
    kafka_advertised_port: int = _setting(0, "Port Kafka clients are told to connect to (0: the bound port).")
    kafka_listeners: str = _setting(
        "",
        "Kafka listeners, as Kafka's listeners: comma-separated NAME://host:port, NAME one of "
        "PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL or a name kafka_listener_security_protocol_map "
        "maps to one (empty host: the host setting; port 0: a free port); empty: one listener "
        "from kafka_port, kafka_tls_certfile and kafka_sasl_mechanisms.",
    )
    kafka_advertised_listeners: str = _setting(
        "",
        "NAME://host:port Kafka clients are told to connect to, per listener of kafka_listeners "
        "(Kafka's advertised.listeners); a listener left out advertises its bound address.",
    )
    kafka_listener_security_protocol_map: str = _setting(
        "",
        "NAME:PROTOCOL pairs giving the listener names of kafka_listeners that are not a protocol "
        "their security protocol (Kafka's listener.security.protocol.map).",
    )
    kafka_anonymous: str = _setting(
        "loopback",
        "Who may use a Kafka listener without SASL (as User:ANONYMOUS): loopback (clients on a "
        "loopback address only, like RabbitMQ's guest), any, or never.",
    )
    kafka_auto_create_topics: bool = _setting(
        True,
        "Create a missing topic on a Produce, or on a Metadata request that allows it "
        "(allow_auto_topic_creation, as producers send; never for requests that only look).",
    )
    kafka_num_partitions: int = _setting(1, "Partitions of auto-created topics and of CreateTopics' default.")
    kafka_max_request_bytes: int = _setting(
        100 * 1024 * 1024, "Largest Kafka request (socket.request.max.bytes)."
    )
    kafka_group_initial_delay_ms: int = _setting(
        3000, "How long a new consumer group waits for more members before its first rebalance."
    )
    kafka_group_min_session_timeout_ms: int = _setting(
        6000, "Shortest session timeout a consumer may join a group with (group.min.session.timeout.ms)."
    )
    kafka_group_max_session_timeout_ms: int = _setting(
        1_800_000, "Longest session timeout a consumer may join a group with (group.max.session.timeout.ms)."
    )
    kafka_transaction_max_timeout_ms: int = _setting(
        900_000,
        "Longest transaction timeout a transactional producer may ask for (transaction.max.timeout.ms).",
    )
    kafka_transaction_abort_interval_ms: int = _setting(
        10_000,
        "How often transactions open longer than their timeout are aborted "
        "(transaction.abort.timed.out.transaction.cleanup.interval.ms).",
    )
    kafka_transactional_id_expiration_ms: int = _setting(
        7 * DAY_MS,
        "How long an idle transactional id is kept (transactional.id.expiration.ms).",
    )
    kafka_group_consumer_heartbeat_interval_ms: int = _setting(
        5000,
        "Heartbeat interval the broker gives consumer-protocol (KIP-848) members "
        "(group.consumer.heartbeat.interval.ms).",
    )
    kafka_group_consumer_session_timeout_ms: int = _setting(
        45000,
        "Session timeout of consumer-protocol (KIP-848) members: without a heartbeat for this long "
        "a member is fenced (group.consumer.session.timeout.ms).",
    )
    kafka_group_consumer_assignors: str = _setting(
        "uniform,range",
        "Comma-separated server-side assignors of consumer-protocol groups, the first the default "
        "(group.consumer.assignors; known: uniform, range).",
    )
    kafka_group_consumer_migration_policy: str = _setting(
        "bidirectional",
        "Online migration between classic and consumer-protocol (KIP-848) groups "
        "(group.consumer.migration.policy): bidirectional, upgrade, downgrade or disabled.",
    )
    kafka_sasl_mechanisms: str = _setting(
        "",
        "Comma-separated SASL mechanisms Kafka clients must authenticate with "
        "(PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER: the last only with "
        "kafka_oauthbearer_unsecured); empty: no authentication.",
    )
    kafka_tls_certfile: str = _setting(
        "", "PEM certificate (chain) for TLS on the Kafka port; empty: plaintext."
    )
    kafka_tls_keyfile: str = _setting("", "PEM private key of kafka_tls_certfile.")
    kafka_max_message_bytes: int = _setting(
        1048588, "Largest record batch a topic accepts unless its max.message.bytes says otherwise."
    )
    kafka_connections_max_reauth_ms: int = _setting(
        0,
        "Longest SASL session (connections.max.reauth.ms, KIP-368): clients are told it when they "
        "authenticate and must re-authenticate within it, or their connection is closed at its next "
        "request; 0: sessions never expire.",
    )
    kafka_allow_everyone_if_no_acl_found: bool = _setting(
        False,
        "Allow every principal on a Kafka resource that no ACL binding names "
        "(allow.everyone.if.no.acl.found); false: such a resource falls back on the user's AMQP "
        'permissions in vhost "/".',
    )
    kafka_share_record_lock_duration_ms: int = _setting(
        30000,
        "How long a share-group member holds the records it fetched before they are delivered again, "
        "for groups that do not set share.record.lock.duration.ms (group.share.record.lock.duration.ms).",
    )
    kafka_share_min_record_lock_duration_ms: int = _setting(
        15000,
        "Shortest share.record.lock.duration.ms a share group may set "
        "(group.share.min.record.lock.duration.ms, 1000-30000).",
    )
    kafka_share_max_record_lock_duration_ms: int = _setting(
        60000,
        "Longest share.record.lock.duration.ms a share group may set "
        "(group.share.max.record.lock.duration.ms, 30000-3600000).",
    )
    kafka_share_min_session_timeout_ms: int = _setting(
        45000,
        "Shortest share.session.timeout.ms a share group may set (group.share.min.session.timeout.ms; "
        "at most the default, 45000).",
    )
    kafka_share_max_session_timeout_ms: int = _setting(
        60000,
        "Longest share.session.timeout.ms a share group may set (group.share.max.session.timeout.ms; "
        "at least the default, 45000).",
    )
    kafka_share_min_heartbeat_interval_ms: int = _setting(
        5000,
        "Shortest share.heartbeat.interval.ms a share group may set "
        "(group.share.min.heartbeat.interval.ms; at most the default, 5000).",
    )
    kafka_share_max_heartbeat_interval_ms: int = _setting(
        15000,
        "Longest share.heartbeat.interval.ms a share group may set "
        "(group.share.max.heartbeat.interval.ms; at least the default, 5000).",
    )
    kafka_share_partition_max_record_locks: int = _setting(
        2000,
        "Most records in flight per share-partition; past it a share fetch gets nothing new "
        "(group.share.partition.max.record.locks).",
    )
    kafka_oauthbearer_unsecured: bool = _setting(
        False,
        "Serve SASL/OAUTHBEARER (when kafka_sasl_mechanisms names it) with Kafka's UNSECURED "
        "validator: unsigned tokens (alg none) are trusted, so any client can claim any principal. "
        "For development and testing only; OAUTHBEARER is refused at start-up without it.",
    )
    kafka_oauthbearer_principal_claim_name: str = _setting(
        "sub", "The token claim naming the principal (unsecuredValidatorPrincipalClaimName)."
    )
    kafka_oauthbearer_scope_claim_name: str = _setting(
        "scope", "The token claim holding its scope (unsecuredValidatorScopeClaimName)."
    )
    kafka_oauthbearer_required_scope: str = _setting(
        "",
        "Space-separated scope values every token must hold (unsecuredValidatorRequiredScope); empty: none.",
    )
    kafka_oauthbearer_allowable_clock_skew_ms: int = _setting(
        0,
        "Clock skew allowed when checking a token's exp and iat (unsecuredValidatorAllowableClockSkewMs).",
    )
    memory_high_watermark: str = _setting(
        "0.4",
        "Memory use that raises the memory alarm (publishers are blocked until it clears): a fraction "
        "of the machine's memory (0.4) or a size (512MiB).",
    )
    disk_free_limit: str = _setting(
        "50MB",
        "Free disk space below which the disk alarm blocks publishers: a size (50MB, 2GiB) or "
        "mem_relative:1.5 (a multiple of the machine's memory).",
    )
    consumer_timeout_ms: int = _setting(
        30 * 60 * 1000,
        "How long a delivery may stay unacknowledged before its consumer is cancelled "
        "(RabbitMQ's consumer_timeout; a queue's x-consumer-timeout overrides it; 0: never).",
    )
    default_user: str = _setting(
        "guest", "The user created on the first start (administrator, every permission on vhost /)."
    )
    default_pass: str = _setting("guest", "Its password.")
    loopback_users: str = _setting(
        "guest",
        "Comma-separated users who may log in only from a loopback address (RabbitMQ's "
        "loopback_users); empty or none: no such user.",
    )
    log_level: str = _setting("info", "Logging level: debug, info, warning, error.")
    log_format: str = _setting("text", "Log line format: text or json.")
    durability: str = _setting(
        "always",
        "When an append is durable: always (fsync per group commit), interval, never (OS only).",
    )
    fsync_interval_ms: int = _setting(1000, "fsync period for durability=interval.")
    segment_bytes: int = _setting(1 << 30, "Roll a log segment at this size.")
    segment_ms: int = _setting(7 * DAY_MS, "Roll a log segment at this age.")
    retention_ms: int = _setting(7 * DAY_MS, "Delete log segments older than this (-1: never).")
    retention_bytes: int = _setting(
        -1, "Delete the oldest log segments beyond this size per log (-1: no limit)."
    )
    retention_check_interval_ms: int = _setting(300_000, "How often retention runs.")

    def __post_init__(self) -> None:
        if self.log_format not in ("text", "json"):
            raise SettingsError(f"log_format must be text or json, not {self.log_format!r}")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise SettingsError(f"unknown log_level {self.log_level!r}")
        if self.durability not in {d.value for d in Durability}:
            raise SettingsError(f"durability must be always, interval or never, not {self.durability!r}")
        if not 0 <= self.http_port <= 65535:
            raise SettingsError(f"http_port {self.http_port} is not a port number")
        for name in ("amqp_port", "amqp_tls_port", "kafka_port"):
            if not -1 <= getattr(self, name) <= 65535:
                raise SettingsError(f"{name} {getattr(self, name)} is not a port number")
        if not 0 <= self.kafka_advertised_port <= 65535:
            raise SettingsError(f"kafka_advertised_port {self.kafka_advertised_port} is not a port number")
        if self.consumer_timeout_ms < 0:
            raise SettingsError("consumer_timeout_ms must be 0 (never) or more")
        if self.kafka_num_partitions < 1:
            raise SettingsError("kafka_num_partitions must be at least 1")
        if not 0 < self.kafka_group_min_session_timeout_ms <= self.kafka_group_max_session_timeout_ms:
            raise SettingsError(
                "kafka_group_min_session_timeout_ms must be above 0 and at most "
                "kafka_group_max_session_timeout_ms"
            )
        for name in (
            "kafka_transaction_max_timeout_ms",
            "kafka_transaction_abort_interval_ms",
            "kafka_transactional_id_expiration_ms",
        ):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be above 0")
        if (
            not 0
            < self.kafka_group_consumer_heartbeat_interval_ms
            < self.kafka_group_consumer_session_timeout_ms
        ):
            raise SettingsError(
                "kafka_group_consumer_heartbeat_interval_ms must be above 0 and below "
                "kafka_group_consumer_session_timeout_ms"
            )
        assignors = self.kafka_group_consumer_assignor_list()
        if not assignors or set(assignors) - CONSUMER_GROUP_ASSIGNORS:
            raise SettingsError(
                f"kafka_group_consumer_assignors must name some of {sorted(CONSUMER_GROUP_ASSIGNORS)}, "
                f"not {self.kafka_group_consumer_assignors!r}"
            )
        policy = self.kafka_group_consumer_migration_policy.strip().lower()
        if policy not in CONSUMER_GROUP_MIGRATION_POLICIES:
            raise SettingsError(
                "kafka_group_consumer_migration_policy must be one of "
                f"{', '.join(CONSUMER_GROUP_MIGRATION_POLICIES)}, "
                f"not {self.kafka_group_consumer_migration_policy!r}"
            )
        unknown = set(self.kafka_sasl_list()) - SASL_MECHANISMS
        if unknown:
            raise SettingsError(
                f"unknown kafka_sasl_mechanisms {sorted(unknown)}; known: {sorted(SASL_MECHANISMS)}"
            )
        self._check_oauthbearer()
        if bool(self.kafka_tls_certfile) != bool(self.kafka_tls_keyfile):
            raise SettingsError("kafka_tls_certfile and kafka_tls_keyfile go together")
        self.kafka_listener_specs()
        if self.kafka_anonymous not in ANONYMOUS_POLICIES:
            raise SettingsError(
                f"kafka_anonymous must be loopback, any or never, not {self.kafka_anonymous!r}"
            )
        self._check_amqp_tls()
        try:
            self.log_config()
            self.memory_limit()
            self.disk_limit()
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        self._check_share_bounds()
        self._check_kafka_ranges()

    def _check_share_bounds(self) -> None:
        """Each share-group bound pair: min at most max, and the default between them."""
        fixed = ShareGroupConfig()  # the defaults that are not settings
        for what, default, default_name in (
            ("record_lock_duration_ms", self.kafka_share_record_lock_duration_ms, None),
            ("session_timeout_ms", fixed.session_timeout_ms, "share.session.timeout.ms"),
            ("heartbeat_interval_ms", fixed.heartbeat_interval_ms, "share.heartbeat.interval.ms"),
        ):
            low_name, high_name = f"kafka_share_min_{what}", f"kafka_share_max_{what}"
            low, high = getattr(self, low_name), getattr(self, high_name)
            if low > high:
                raise SettingsError(f"{low_name} {low} is above {high_name} {high}")
            if not low <= default <= high:
                named = default_name or f"kafka_share_{what}"
                raise SettingsError(
                    f"{named} {default} is outside the share bounds {low}..{high} ({low_name}, {high_name})"
                )

    def _check_kafka_ranges(self) -> None:
        """The settings a broker DescribeConfigs shows under Kafka's names are held to the range
        Kafka's broker config allows (its type, INT or LONG, and its lower bound)."""
        for name, (kafka_name, low, high) in KAFKA_RANGES.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise SettingsError(f"{name} ({kafka_name}) {value} is outside {low}..{high}")

    def _check_oauthbearer(self) -> None:
        """Secure by default: the unsecured OAUTHBEARER validator trusts any token, so the
        mechanism is served only when it is asked for twice."""
        if "OAUTHBEARER" in self.kafka_sasl_list() and not self.kafka_oauthbearer_unsecured:
            raise SettingsError(
                "kafka_sasl_mechanisms names OAUTHBEARER, whose only validator is Kafka's unsecured "
                "one (unsigned tokens, any client may claim any principal: for development and "
                "testing only); set kafka_oauthbearer_unsecured = true to serve it anyway"
            )
        for name in ("kafka_oauthbearer_principal_claim_name", "kafka_oauthbearer_scope_claim_name"):
            if not getattr(self, name).strip():
                raise SettingsError(f"{name} must not be blank")
        if not 0 <= self.kafka_oauthbearer_allowable_clock_skew_ms <= 2**31 - 1:
            raise SettingsError(
                "kafka_oauthbearer_allowable_clock_skew_ms must be a non-negative int, not "
                f"{self.kafka_oauthbearer_allowable_clock_skew_ms}"
            )

    def kafka_oauthbearer_config(self) -> ValidatorConfig | None:
        """The OAUTHBEARER validator's options, or None when the mechanism is not served."""
        if "OAUTHBEARER" not in self.kafka_sasl_list() or not self.kafka_oauthbearer_unsecured:
            return None
        return ValidatorConfig(
            principal_claim=self.kafka_oauthbearer_principal_claim_name.strip(),
            scope_claim=self.kafka_oauthbearer_scope_claim_name.strip(),
            required_scope=tuple(self.kafka_oauthbearer_required_scope.split()),
            allowable_clock_skew_ms=self.kafka_oauthbearer_allowable_clock_skew_ms,
        )

    def _check_amqp_tls(self) -> None:
        if bool(self.amqp_tls_certfile) != bool(self.amqp_tls_keyfile):
            raise SettingsError("amqp_tls_certfile and amqp_tls_keyfile go together")
        if self.amqp_tls_verify not in tls.VERIFY_VALUES:
            raise SettingsError(
                f"amqp_tls_verify must be verify_none or verify_peer, not {self.amqp_tls_verify!r}"
            )
        verify_peer = self.amqp_tls_verify == tls.Verify.PEER.value
        if verify_peer and not self.amqp_tls_cafile:
            raise SettingsError("amqp_tls_verify=verify_peer needs amqp_tls_cafile (the CAs to trust)")
        if self.amqp_tls_fail_if_no_peer_cert and not verify_peer:
            raise SettingsError("amqp_tls_fail_if_no_peer_cert needs amqp_tls_verify=verify_peer")

    def kafka_listener_specs(self) -> tuple[ListenerSpec, ...]:
        """The Kafka listeners: those of kafka_listeners, or the one kafka_port and the TLS and
        SASL settings describe (none with kafka_port -1)."""
        if not self.kafka_listeners.strip():
            for name in ("kafka_advertised_listeners", "kafka_listener_security_protocol_map"):
                if getattr(self, name).strip():
                    raise SettingsError(f"{name} needs kafka_listeners")
            if self.kafka_port < 0:
                return ()
            tls_on, sasl_on = bool(self.kafka_tls_certfile), bool(self.kafka_sasl_list())
            protocol = ("SASL_" if sasl_on else "") + ("SSL" if tls_on else "PLAINTEXT")
            return (
                ListenerSpec(
                    protocol,
                    protocol,
                    self.host,
                    self.kafka_port,
                    self.kafka_advertised_host,
                    self.kafka_advertised_port,
                ),
            )
        for name, meaning in (
            ("kafka_port", "the ports"),
            ("kafka_advertised_host", "the advertised addresses (kafka_advertised_listeners)"),
            ("kafka_advertised_port", "the advertised addresses (kafka_advertised_listeners)"),
        ):
            if getattr(self, name) != FIELDS[name].default:
                raise SettingsError(
                    f"{name} and kafka_listeners both describe the Kafka listeners: give {meaning} "
                    "in kafka_listeners only"
                )
        try:
            specs = parse_listeners(
                self.kafka_listeners,
                self.kafka_advertised_listeners,
                self.kafka_listener_security_protocol_map,
            )
        except ListenerError as exc:
            raise SettingsError(f"kafka_listeners: {exc}") from None
        specs = tuple(dataclasses.replace(s, host=s.host or self.host) for s in specs)
        tls_names = [s.name for s in specs if s.tls]
        sasl_names = [s.name for s in specs if s.sasl]
        if tls_names and not self.kafka_tls_certfile:
            raise SettingsError(
                f"listener {tls_names[0]} uses TLS: it needs kafka_tls_certfile and kafka_tls_keyfile"
            )
        if self.kafka_tls_certfile and not tls_names:
            raise SettingsError("kafka_tls_certfile is set but no listener of kafka_listeners uses SSL")
        if sasl_names and not self.kafka_sasl_list():
            raise SettingsError(
                f"listener {sasl_names[0]} uses SASL: kafka_sasl_mechanisms must name its mechanisms"
            )
        if self.kafka_sasl_list() and not sasl_names:
            raise SettingsError("kafka_sasl_mechanisms is set but no listener of kafka_listeners uses SASL")
        return specs

    def loopback_user_list(self) -> tuple[str, ...]:
        if self.loopback_users.strip().lower() == "none":
            return ()
        return tuple(u.strip() for u in self.loopback_users.split(",") if u.strip())

    def kafka_group_consumer_assignor_list(self) -> tuple[str, ...]:
        return tuple(a.strip().lower() for a in self.kafka_group_consumer_assignors.split(",") if a.strip())

    def kafka_sasl_list(self) -> tuple[str, ...]:
        return tuple(m.strip().upper() for m in self.kafka_sasl_mechanisms.split(",") if m.strip())

    def log_config(self) -> LogConfig:
        """The default configuration of new logs."""
        return LogConfig(
            segment_bytes=self.segment_bytes,
            segment_ms=self.segment_ms,
            retention_ms=self.retention_ms,
            retention_bytes=self.retention_bytes,
            durability=Durability(self.durability),
            fsync_interval_ms=self.fsync_interval_ms,
        )

    def memory_limit(self) -> resources.Limit:
        try:
            return resources.parse_memory_watermark(self.memory_high_watermark)
        except ValueError as exc:
            raise ValueError(f"memory_high_watermark: {exc}") from None

    def disk_limit(self) -> resources.Limit:
        try:
            return resources.parse_disk_limit(self.disk_free_limit)
        except ValueError as exc:
            raise ValueError(f"disk_free_limit: {exc}") from None

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


INT_MAX: Final = (1 << 31) - 1
LONG_MAX: Final = (1 << 63) - 1
# setting -> (Kafka broker config, lowest, highest): Kafka's type and validator
KAFKA_RANGES: Final[dict[str, tuple[str, int, int]]] = {
    "kafka_num_partitions": ("num.partitions", 1, INT_MAX),
    "kafka_max_request_bytes": ("socket.request.max.bytes", 1, INT_MAX),
    "kafka_max_message_bytes": ("message.max.bytes", 0, INT_MAX),
    "kafka_group_initial_delay_ms": ("group.initial.rebalance.delay.ms", 0, INT_MAX),
    "kafka_group_min_session_timeout_ms": ("group.min.session.timeout.ms", 1, INT_MAX),
    "kafka_group_max_session_timeout_ms": ("group.max.session.timeout.ms", 1, INT_MAX),
    "segment_bytes": ("log.segment.bytes", 14, INT_MAX),
    "segment_ms": ("log.roll.ms", 1, LONG_MAX),
    "retention_ms": ("log.retention.ms", -1, LONG_MAX),
    "retention_bytes": ("log.retention.bytes", -1, LONG_MAX),
    "retention_check_interval_ms": ("log.retention.check.interval.ms", 1, LONG_MAX),
    "kafka_transaction_max_timeout_ms": ("transaction.max.timeout.ms", 1, INT_MAX),
    "kafka_transaction_abort_interval_ms": (
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        1,
        INT_MAX,
    ),
    "kafka_transactional_id_expiration_ms": ("transactional.id.expiration.ms", 1, INT_MAX),
    "kafka_group_consumer_heartbeat_interval_ms": ("group.consumer.heartbeat.interval.ms", 1, INT_MAX),
    "kafka_group_consumer_session_timeout_ms": ("group.consumer.session.timeout.ms", 1, INT_MAX),
    "kafka_connections_max_reauth_ms": ("connections.max.reauth.ms", 0, LONG_MAX),
    "kafka_share_min_session_timeout_ms": ("group.share.min.session.timeout.ms", 1, INT_MAX),
    "kafka_share_max_session_timeout_ms": ("group.share.max.session.timeout.ms", 1, INT_MAX),
    "kafka_share_min_heartbeat_interval_ms": ("group.share.min.heartbeat.interval.ms", 1, INT_MAX),
    "kafka_share_max_heartbeat_interval_ms": ("group.share.max.heartbeat.interval.ms", 1, INT_MAX),
    "kafka_share_record_lock_duration_ms": ("group.share.record.lock.duration.ms", 1000, 3600000),
    "kafka_share_min_record_lock_duration_ms": ("group.share.min.record.lock.duration.ms", 1000, 30000),
    "kafka_share_max_record_lock_duration_ms": (
        "group.share.max.record.lock.duration.ms",
        30000,
        3600000,
    ),
}


def field_type(name: str) -> type:
    default = FIELDS[name].default
    return type(default) if not isinstance(default, Path) else Path


_BOOLS = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}


def _coerce(name: str, value: Any, source: str) -> Any:
    kind = field_type(name)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    try:
        if kind is int and isinstance(value, str):
            return int(value.replace("_", ""))
        if kind is bool and isinstance(value, str) and value.lower() in _BOOLS:
            return _BOOLS[value.lower()]
        if kind is Path and isinstance(value, str):
            return Path(value)
        if kind is str and isinstance(value, str):
            return value
    except ValueError:
        pass
    raise SettingsError(f"{source}: {name} must be {kind.__name__}, not {value!r}")


def from_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise SettingsError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path}: {exc}") from None
    out = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in FIELDS:
            raise SettingsError(f"config file {path}: unknown setting {key!r}")
        out[name] = _coerce(name, value, f"config file {path}")
    return out


def from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    out = {}
    for name in FIELDS:
        key = ENV_PREFIX + name.upper()
        if key in environ:
            out[name] = _coerce(name, environ[key], key)
    return out


def load(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Merge defaults < TOML file < environment < flags (``None`` flags are ignored)."""
    environ = os.environ if environ is None else environ
    if config_file is None and environ.get(ENV_PREFIX + "CONFIG"):
        config_file = Path(environ[ENV_PREFIX + "CONFIG"])
    merged: dict[str, Any] = {}
    if config_file is not None:
        merged.update(from_toml(config_file))
    merged.update(from_env(environ))
    merged.update({k: v for k, v in (flags or {}).items() if v is not None})
    return Settings(**merged)
