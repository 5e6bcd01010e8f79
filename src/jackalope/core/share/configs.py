"""Group configs (Kafka's ConfigResource type GROUP): per-group overrides of the coordinator's
defaults, for share groups (``share.*``) and consumer groups (``consumer.*``).

Protocol-free: names, types, ranges and defaults are Kafka's (GroupConfig, with the broker's
default bounds); values travel as strings, as in DescribeConfigs and AlterConfigs.  A value out
of range, of the wrong type or an unknown name is a :class:`GroupConfigError` naming it (the
front-end answers INVALID_CONFIG).  Streams groups (KIP-1071) do not exist here, so the
``streams.*`` names are refused by name.

A group may have configs before it exists (clients set ``share.auto.offset.reset`` before their
first heartbeat), and keeps them when it is deleted, as in Kafka.  The overrides are one JSON
document written whole with :func:`jackalope.storage.files.atomic_write`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from jackalope.storage.files import atomic_write

log = logging.getLogger(__name__)

SHARE_AUTO_OFFSET_RESET: Final = "share.auto.offset.reset"
SHARE_RECORD_LOCK_DURATION_MS: Final = "share.record.lock.duration.ms"
SHARE_DELIVERY_COUNT_LIMIT: Final = "share.delivery.count.limit"
SHARE_ISOLATION_LEVEL: Final = "share.isolation.level"
SHARE_SESSION_TIMEOUT_MS: Final = "share.session.timeout.ms"
SHARE_HEARTBEAT_INTERVAL_MS: Final = "share.heartbeat.interval.ms"
SHARE_PARTITION_MAX_RECORD_LOCKS: Final = "share.partition.max.record.locks"
CONSUMER_SESSION_TIMEOUT_MS: Final = "consumer.session.timeout.ms"
CONSUMER_HEARTBEAT_INTERVAL_MS: Final = "consumer.heartbeat.interval.ms"

_DURATION: Final = re.compile(
    r"P(?:(?P<d>\d+)D)?(?:T(?=\d)(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)


class GroupConfigError(ValueError):
    """A config name or value Kafka would refuse (INVALID_CONFIG); the message names it."""


@dataclass(frozen=True)
class ShareGroupConfig:
    """One share group's effective configs (Kafka 4.1/4.2 defaults unless overridden)."""

    auto_offset_reset: str = "latest"  # "latest" | "earliest" | "by_duration:<ISO-8601 duration>"
    record_lock_duration_ms: int = 30000
    delivery_count_limit: int = 5
    isolation_level: str = "read_uncommitted"  # or "read_committed"
    session_timeout_ms: int = 45000
    heartbeat_interval_ms: int = 5000
    partition_max_record_locks: int = 2000

    @property
    def auto_offset_reset_duration_ms(self) -> int | None:
        """For ``by_duration:<d>``: ``d`` in milliseconds (start from records younger than that)."""
        if not self.auto_offset_reset.startswith("by_duration:"):
            return None
        return parse_duration_ms(self.auto_offset_reset.removeprefix("by_duration:"))


def parse_duration_ms(text: str) -> int:
    """An ISO-8601 duration (``PnDTnHnMn.nS``, Java's Duration.parse without signs) in ms."""
    match = _DURATION.fullmatch(text.strip().upper())
    if match is None or text.strip().upper() in ("P", "PT"):
        raise ValueError(text)
    d, h, m = (int(match.group(k) or 0) for k in "dhm")
    s = float(match.group("s") or 0)
    return int(((d * 24 + h) * 60 + m) * 60_000 + s * 1000)


@dataclass(frozen=True)
class ConfigDef:
    name: str
    type: str  # Kafka's ConfigEntry type name: "INT" or "STRING"
    default: str
    check: Callable[[str], str | None]  # the complaint about a value, None if it is valid
    sensitive: bool = False


def _int_range(low: int, high: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        try:
            number = int(value.strip())
        except ValueError:
            return "is not a number"
        if not low <= number <= high:
            return f"must be between {low} and {high}"
        return None

    return check


def _choice(*choices: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value.strip().lower() in choices else f"must be one of {', '.join(choices)}"

    return check


def _offset_reset(value: str) -> str | None:
    value = value.strip().lower()
    if value in ("latest", "earliest"):
        return None
    if value.startswith("by_duration:"):
        try:
            parse_duration_ms(value.removeprefix("by_duration:"))
        except ValueError:
            return "has an invalid ISO-8601 duration after by_duration:"
        return None
    return "must be latest, earliest or by_duration:<ISO-8601 duration>"


@dataclass(frozen=True)
class Bounds:
    """The coordinator's bounds on group configs (Kafka's group.share.min/max.* broker configs)."""

    consumer_session_timeout_ms: tuple[int, int] = (45000, 60000)
    consumer_heartbeat_interval_ms: tuple[int, int] = (5000, 15000)
    share_session_timeout_ms: tuple[int, int] = (45000, 60000)
    share_heartbeat_interval_ms: tuple[int, int] = (5000, 15000)
    share_record_lock_duration_ms: tuple[int, int] = (15000, 60000)
    share_delivery_count_limit: tuple[int, int] = (2, 10)
    share_partition_max_record_locks: tuple[int, int] = (100, 10000)


def definitions(
    bounds: Bounds, defaults: ShareGroupConfig, consumer_session_ms: int, consumer_heartbeat_ms: int
) -> dict[str, ConfigDef]:
    b = bounds
    defs = [
        ConfigDef(
            CONSUMER_SESSION_TIMEOUT_MS,
            "INT",
            str(consumer_session_ms),
            _int_range(*b.consumer_session_timeout_ms),
        ),
        ConfigDef(
            CONSUMER_HEARTBEAT_INTERVAL_MS,
            "INT",
            str(consumer_heartbeat_ms),
            _int_range(*b.consumer_heartbeat_interval_ms),
        ),
        ConfigDef(
            SHARE_SESSION_TIMEOUT_MS,
            "INT",
            str(defaults.session_timeout_ms),
            _int_range(*b.share_session_timeout_ms),
        ),
        ConfigDef(
            SHARE_HEARTBEAT_INTERVAL_MS,
            "INT",
            str(defaults.heartbeat_interval_ms),
            _int_range(*b.share_heartbeat_interval_ms),
        ),
        ConfigDef(
            SHARE_RECORD_LOCK_DURATION_MS,
            "INT",
            str(defaults.record_lock_duration_ms),
            _int_range(*b.share_record_lock_duration_ms),
        ),
        ConfigDef(
            SHARE_DELIVERY_COUNT_LIMIT,
            "INT",
            str(defaults.delivery_count_limit),
            _int_range(*b.share_delivery_count_limit),
        ),
        ConfigDef(
            SHARE_PARTITION_MAX_RECORD_LOCKS,
            "INT",
            str(defaults.partition_max_record_locks),
            _int_range(*b.share_partition_max_record_locks),
        ),
        ConfigDef(SHARE_AUTO_OFFSET_RESET, "STRING", defaults.auto_offset_reset, _offset_reset),
        ConfigDef(
            SHARE_ISOLATION_LEVEL,
            "STRING",
            defaults.isolation_level,
            _choice("read_uncommitted", "read_committed"),
        ),
    ]
    return {d.name: d for d in defs}


@dataclass(frozen=True)
class ConfigValue:
    """One entry of a DescribeConfigs answer."""

    name: str
    value: str
    type: str
    default: bool  # source DEFAULT (else DYNAMIC_GROUP_CONFIG)


class GroupConfigs:
    """Every group's config overrides, persisted in ``path`` (None: in memory only)."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        bounds: Bounds | None = None,
        share_defaults: ShareGroupConfig | None = None,
        consumer_session_timeout_ms: int = 45000,
        consumer_heartbeat_interval_ms: int = 5000,
    ) -> None:
        self.path = path
        self.share_defaults = share_defaults or ShareGroupConfig()
        self.bounds = bounds or Bounds()
        self.definitions = definitions(
            self.bounds,
            self.share_defaults,
            consumer_session_timeout_ms,
            consumer_heartbeat_interval_ms,
        )
        self._overrides: dict[str, dict[str, str]] = {}
        self.on_changed: list[Callable[[str], None]] = []  # group id
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path} is damaged: {exc}") from None
        for group_id, values in dict(document.get("groups", {})).items():
            known = {str(k): str(v) for k, v in dict(values).items() if k in self.definitions}
            if known:
                self._overrides[str(group_id)] = known

    def _save(self) -> None:
        if self.path is None:
            return
        document = {"groups": {g: dict(sorted(v.items())) for g, v in sorted(self._overrides.items())}}
        atomic_write(self.path, (json.dumps(document, indent=2) + "\n").encode())

    # -- reading -------------------------------------------------------------------------------

    def configured_groups(self) -> list[str]:
        """The groups that have group configs set (ListConfigResources lists them)."""
        return sorted(self._overrides)

    def overrides(self, group_id: str) -> dict[str, str]:
        return dict(self._overrides.get(group_id, {}))

    def describe(self, group_id: str, names: Iterable[str] | None = None) -> list[ConfigValue]:
        """The group's configs (``names``: only those; unknown names are left out, as Kafka)."""
        own = self._overrides.get(group_id, {})
        wanted = sorted(self.definitions) if names is None else [n for n in names if n in self.definitions]
        return [
            ConfigValue(n, own.get(n, self.definitions[n].default), self.definitions[n].type, n not in own)
            for n in wanted
        ]

    def value(self, group_id: str, name: str) -> str:
        return self._overrides.get(group_id, {}).get(name, self.definitions[name].default)

    def int_value(self, group_id: str, name: str) -> int:
        return int(self.value(group_id, name).strip())

    def share(self, group_id: str) -> ShareGroupConfig:
        """The effective share-group configs of ``group_id``."""
        if group_id not in self._overrides:
            return self.share_defaults
        return ShareGroupConfig(
            auto_offset_reset=self.value(group_id, SHARE_AUTO_OFFSET_RESET).strip().lower(),
            record_lock_duration_ms=self.int_value(group_id, SHARE_RECORD_LOCK_DURATION_MS),
            delivery_count_limit=self.int_value(group_id, SHARE_DELIVERY_COUNT_LIMIT),
            isolation_level=self.value(group_id, SHARE_ISOLATION_LEVEL).strip().lower(),
            session_timeout_ms=self.int_value(group_id, SHARE_SESSION_TIMEOUT_MS),
            heartbeat_interval_ms=self.int_value(group_id, SHARE_HEARTBEAT_INTERVAL_MS),
            partition_max_record_locks=self.int_value(group_id, SHARE_PARTITION_MAX_RECORD_LOCKS),
        )

    def consumer_timeouts(self, group_id: str) -> tuple[int, int]:
        """A consumer group's (consumer.session.timeout.ms, consumer.heartbeat.interval.ms)."""
        return (
            self.int_value(group_id, CONSUMER_SESSION_TIMEOUT_MS),
            self.int_value(group_id, CONSUMER_HEARTBEAT_INTERVAL_MS),
        )

    # -- changing ------------------------------------------------------------------------------

    def validate(self, group_id: str, new: Mapping[str, str]) -> None:
        """Raise :class:`GroupConfigError` unless ``new`` (the group's whole override set after
        the change) is valid: known names, values in range, session timeouts above intervals."""
        if not group_id:
            raise GroupConfigError("Group id must not be empty")
        for name, value in new.items():
            definition = self.definitions.get(name)
            if definition is None:
                if name.startswith("streams."):
                    raise GroupConfigError(
                        f"Group config {name} is not supported: this broker has no streams groups (KIP-1071)"
                    )
                raise GroupConfigError(f"Unknown group config name: {name}")
            complaint = definition.check(value)
            if complaint is not None:
                raise GroupConfigError(f"Invalid value {value} for configuration {name}: value {complaint}")
        merged = {n: new.get(n, d.default) for n, d in self.definitions.items()}
        for session, interval in (
            (CONSUMER_SESSION_TIMEOUT_MS, CONSUMER_HEARTBEAT_INTERVAL_MS),
            (SHARE_SESSION_TIMEOUT_MS, SHARE_HEARTBEAT_INTERVAL_MS),
        ):
            if int(merged[session]) <= int(merged[interval]):
                raise GroupConfigError(f"{session} must be greater than {interval}")

    def replace(self, group_id: str, values: Mapping[str, str], *, validate_only: bool = False) -> None:
        """AlterConfigs: the group's overrides become ``values`` (the rest go back to defaults)."""
        new = {str(k): str(v) for k, v in values.items()}
        self.validate(group_id, new)
        if not validate_only:
            self._set(group_id, new)

    def alter(
        self,
        group_id: str,
        set_: Mapping[str, str],
        delete: Iterable[str],
        *,
        validate_only: bool = False,
    ) -> None:
        """IncrementalAlterConfigs: SET and DELETE (back to the default) of some names."""
        new = self.overrides(group_id)
        for name in delete:
            if name not in self.definitions:
                self.validate(group_id, {name: ""})  # names the unknown config
            new.pop(name, None)
        new.update({str(k): str(v) for k, v in set_.items()})
        self.validate(group_id, new)
        if not validate_only:
            self._set(group_id, new)

    def _set(self, group_id: str, new: dict[str, str]) -> None:
        if new == self._overrides.get(group_id, {}):
            return
        if new:
            self._overrides[group_id] = new
        else:
            self._overrides.pop(group_id, None)
        self._save()
        log.info("group %s configs now %s", group_id, new or "the defaults")
        for callback in list(self.on_changed):
            callback(group_id)
