"""Topics: named, partitioned logs with per-topic configuration.

A topic of N partitions is N logs of the storage engine, named ``topic/<name>/<partition>``.
Kafka producers and consumers reach them by name and partition; an AMQP stream queue is the
single-partition topic of the same name, so both protocols read and write the same log.

Topic configuration uses Kafka's names (``retention.ms``, ``cleanup.policy``...) because
that is what operators and admin clients speak; each name maps to a field of the storage
engine's :class:`LogConfig`.  ``topics.json`` in the data directory lists the topics, their
ids and their explicit configuration overrides.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jackalope.storage import AppendInfo, InvalidRecordError, Log, LogConfig, LogManager
from jackalope.storage.config import CLEANUP_POLICIES
from jackalope.storage.files import atomic_write
from jackalope.storage.log import now_ms
from jackalope.storage.records import (
    Record,
    check_producer_batches,
    encode_batch,
    iter_batches,
    keyless_records,
)

TOPICS_FILE = "topics.json"
MAX_NAME_LENGTH = 249
_LEGAL_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")
MAX_PARTITIONS = 10_000


class TopicError(Exception):
    """Base of the errors topic operations raise; the message is meant for the client."""


class TopicExists(TopicError):
    pass


class UnknownTopic(TopicError):
    pass


class InvalidTopicName(TopicError):
    pass


class InvalidPartitions(TopicError):
    pass


class InvalidConfig(TopicError):
    pass


def _int(low: int) -> Callable[[str], Any]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise InvalidConfig(f"{value!r} is not an integer") from None
        if number < low:
            raise InvalidConfig(f"{value!r} is below the minimum {low}")
        return number

    return parse


def _choice(*choices: str) -> Callable[[str], Any]:
    def parse(value: str) -> str:
        normalized = ",".join(sorted(v.strip() for v in value.split(",")))
        if normalized not in choices:
            raise InvalidConfig(f"{value!r} is not one of {', '.join(choices)}")
        return normalized

    return parse


def _cleanup_policy(value: str) -> str:
    """A list of ``delete`` and ``compact``, kept in the order given (as Kafka keeps it)."""
    items = list(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    if ",".join(items) not in CLEANUP_POLICIES:
        raise InvalidConfig(f"{value!r} is not a list of delete and compact")
    return ",".join(items)


def _bounded(parse: Callable[[str], Any], low: float, high: float) -> Callable[[str], Any]:
    def check(value: str) -> Any:
        number = parse(value)
        if not low <= number <= high:
            raise InvalidConfig(f"{value!r} is not in [{low}, {high}]")
        return number

    return check


def _double(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise InvalidConfig(f"{value!r} is not a number") from None


_THROTTLED = re.compile(r"^(\*|\s*\d+\s*:\s*\d+\s*(,\s*\d+\s*:\s*\d+\s*)*)?$")


def _throttled_replicas(value: str) -> str:
    """Kafka's ThrottledReplicaListValidator: empty, '*', or partition:broker pairs."""
    if not _THROTTLED.match(value.strip()):
        raise InvalidConfig(f"{value!r} is neither '*' nor a list of partition:broker pairs")
    return ",".join(v.strip().replace(" ", "") for v in value.split(",")) if value.strip() else ""


def _format_version(value: str) -> str:
    if not re.match(r"^\d+\.\d+(\.\d+)*(-IV\d+)?$", value):  # Kafka ignores segments past 0.x.y/x.y
        raise InvalidConfig(f"{value!r} is not a Kafka version")
    return value


def _timestamp_type(value: str) -> bool:
    if value not in ("CreateTime", "LogAppendTime"):
        raise InvalidConfig(f"{value!r} is neither CreateTime nor LogAppendTime")
    return value == "LogAppendTime"


def _gzip_level(value: str) -> int:
    level: int = _int(-(2**31))(value)
    if level != -1 and not 1 <= level <= 9:
        raise InvalidConfig(f"{value!r} is neither -1 nor in [1, 9]")
    return level


@dataclass(frozen=True)
class ConfigKey:
    """One Kafka topic config: the LogConfig field it sets (None: accepted, no effect here)."""

    name: str
    field: str | None
    parse: Callable[[str], Any]
    show: Callable[[Any], str] = str
    doc: str = ""


CONFIG_KEYS: dict[str, ConfigKey] = {
    k.name: k
    for k in (
        ConfigKey("retention.ms", "retention_ms", _int(-1)),
        ConfigKey("retention.bytes", "retention_bytes", _int(-1)),
        ConfigKey("segment.bytes", "segment_bytes", _int(1024)),
        ConfigKey("segment.ms", "segment_ms", _int(1)),
        ConfigKey("cleanup.policy", "cleanup_policy", _cleanup_policy),
        ConfigKey("delete.retention.ms", "delete_retention_ms", _int(0)),
        ConfigKey("min.compaction.lag.ms", "min_compaction_lag_ms", _int(0)),
        ConfigKey("max.message.bytes", "max_message_bytes", _int(0)),
        ConfigKey(
            "message.timestamp.type",
            "log_append_time",
            _timestamp_type,
            lambda v: "LogAppendTime" if v else "CreateTime",
        ),
        ConfigKey("segment.index.bytes", None, _int(4)),
        ConfigKey("index.interval.bytes", "index_interval_bytes", _int(1)),
        ConfigKey("flush.ms", None, _int(0)),
        ConfigKey("flush.messages", None, _int(1)),
        ConfigKey(
            "compression.type", None, _choice("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd")
        ),
        ConfigKey("min.insync.replicas", None, _int(1)),
        ConfigKey("unclean.leader.election.enable", None, _choice("true", "false")),
        ConfigKey("message.timestamp.difference.max.ms", None, _int(0)),
        ConfigKey("preallocate", None, _choice("true", "false")),
        ConfigKey("segment.jitter.ms", None, _int(0)),
        ConfigKey("max.compaction.lag.ms", None, _int(1)),
        ConfigKey("file.delete.delay.ms", None, _int(0)),
        ConfigKey("min.cleanable.dirty.ratio", None, _bounded(_double, 0, 1)),
        ConfigKey("compression.gzip.level", None, _gzip_level),
        ConfigKey("compression.lz4.level", None, _bounded(_int(-(2**31)), 1, 17)),
        ConfigKey("compression.zstd.level", None, _bounded(_int(-(2**31)), -131072, 22)),
        ConfigKey("message.format.version", None, _format_version),
        ConfigKey("message.timestamp.before.max.ms", None, _int(0)),
        ConfigKey("message.timestamp.after.max.ms", None, _int(0)),
        ConfigKey("leader.replication.throttled.replicas", None, _throttled_replicas),
        ConfigKey("follower.replication.throttled.replicas", None, _throttled_replicas),
        ConfigKey("message.downconversion.enable", None, _choice("true", "false")),
        ConfigKey("remote.storage.enable", None, _choice("false")),
        ConfigKey("local.retention.ms", None, _int(-2)),
        ConfigKey("local.retention.bytes", None, _int(-2)),
        ConfigKey("remote.log.copy.disable", None, _choice("true", "false")),
        ConfigKey("remote.log.delete.on.disable", None, _choice("true", "false")),
    )
}

# Shown by DescribeConfigs for keys without a LogConfig field, when not overridden.
_STATIC_DEFAULTS = {
    "segment.index.bytes": "10485760",
    "flush.ms": "9223372036854775807",
    "flush.messages": "9223372036854775807",
    "compression.type": "producer",
    "min.insync.replicas": "1",
    "unclean.leader.election.enable": "false",
    "message.timestamp.difference.max.ms": "9223372036854775807",
    "preallocate": "false",
    "segment.jitter.ms": "0",
    "max.compaction.lag.ms": "9223372036854775807",
    "file.delete.delay.ms": "60000",
    "min.cleanable.dirty.ratio": "0.5",
    "compression.gzip.level": "-1",
    "compression.lz4.level": "9",
    "compression.zstd.level": "3",
    "message.format.version": "3.0-IV1",
    "message.timestamp.before.max.ms": "9223372036854775807",
    "message.timestamp.after.max.ms": "9223372036854775807",
    "leader.replication.throttled.replicas": "",
    "follower.replication.throttled.replicas": "",
    "message.downconversion.enable": "true",
    "remote.storage.enable": "false",
    "local.retention.ms": "-2",
    "local.retention.bytes": "-2",
    "remote.log.copy.disable": "false",
    "remote.log.delete.on.disable": "false",
}


@dataclass(frozen=True)
class ConfigEntry:
    name: str
    value: str
    is_default: bool


def validate_name(name: str) -> None:
    if not name:
        raise InvalidTopicName("a topic name must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidTopicName(f"topic name is longer than {MAX_NAME_LENGTH} characters")
    if name in (".", ".."):
        raise InvalidTopicName(f"topic name cannot be {name!r}")
    if not _LEGAL_NAME.match(name):
        raise InvalidTopicName(
            f"topic name {name!r} has characters other than ASCII alphanumerics, '.', '_', '-'"
        )


def parse_configs(configs: dict[str, str]) -> dict[str, str]:
    """Validate Kafka config overrides; returns them normalized (raises InvalidConfig)."""
    out: dict[str, str] = {}
    for name, value in configs.items():
        key = CONFIG_KEYS.get(name)
        if key is None:
            raise InvalidConfig(f"unknown topic config name: {name}")
        try:
            out[name] = key.show(key.parse(value))
        except InvalidConfig as exc:
            raise InvalidConfig(f"invalid value for {name}: {exc}") from None
    return out


@dataclass
class Topic:
    name: str
    topic_id: uuid.UUID
    partitions: list[Log]
    configs: dict[str, str] = field(default_factory=dict)  # explicit overrides, Kafka names

    def log(self, partition: int) -> Log | None:
        return self.partitions[partition] if 0 <= partition < len(self.partitions) else None


LOG_PREFIX = "topic/"


def log_name(topic: str, partition: int) -> str:
    return f"{LOG_PREFIX}{topic}/{partition}"


class AppendWaiters:
    """Wakes readers (long-polling fetches, stream consumers) when a log gets new records.

    Whoever appends to a topic partition calls :meth:`appended`; waiting is never polling.
    """

    def __init__(self) -> None:
        self._waiters: dict[Log, set[asyncio.Future[None]]] = {}

    def appended(self, log_: Log) -> None:
        waiters = self._waiters.pop(log_, None)
        if waiters:
            for future in waiters:
                if not future.done():
                    future.set_result(None)

    async def wait(self, logs: Iterable[Log], seconds: float) -> bool:
        """Wait until one of ``logs`` is appended to, or ``seconds`` pass; True if appended."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        registered = []
        for log_ in logs:
            self._waiters.setdefault(log_, set()).add(future)
            registered.append(log_)
        try:
            async with asyncio.timeout(seconds):
                await future
            return True
        except TimeoutError:
            return False
        finally:
            for log_ in registered:
                waiters = self._waiters.get(log_)
                if waiters is not None:
                    waiters.discard(future)
                    if not waiters:
                        del self._waiters[log_]


class Topics:
    """The registry of topics over a :class:`LogManager`."""

    def __init__(
        self,
        logs: LogManager,
        data_dir: Path | None,
        *,
        default_partitions: int = 1,
        default_max_message_bytes: int = 1048588,
    ) -> None:
        self.logs = logs
        self.data_dir = data_dir
        self.default_partitions = default_partitions
        self.base_config = logs.default_config.replace(max_message_bytes=default_max_message_bytes)
        self._topics: dict[str, Topic] = {}
        self._by_id: dict[uuid.UUID, Topic] = {}
        self.on_delete: list[Callable[[str], object]] = []
        self.waiters = AppendWaiters()
        # Called after every append with the batches written (core.topic_routes' bridge).
        self.on_append: Callable[[Log, bytearray, AppendInfo], None] | None = None
        # Called after a COMMIT marker with (log, producer id, first offset of the transaction,
        # the marker's AppendInfo): the transaction's records are routed then (topic_routes).
        self.on_commit: Callable[[Log, int, int, AppendInfo], None] | None = None

    # -- lookup --------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Topic]:
        return iter(list(self._topics.values()))

    def __contains__(self, name: str) -> bool:
        return name in self._topics

    def __len__(self) -> int:
        return len(self._topics)

    def get(self, name: str) -> Topic | None:
        return self._topics.get(name)

    def by_id(self, topic_id: uuid.UUID) -> Topic | None:
        return self._by_id.get(topic_id)

    def partition(self, name: str, partition: int) -> Log | None:
        topic = self._topics.get(name)
        return topic.log(partition) if topic is not None else None

    # -- writing -------------------------------------------------------------------------------

    def append_batches(self, log_: Log, data: bytearray) -> AppendInfo:
        """Append a producer's record batches (Kafka's Produce, the HTTP API) to the topic
        partition ``log_``.  The batches are checked as Kafka checks a producer's (and a
        compacted topic takes no record without a key), then take :meth:`_append`'s path.
        Raises the storage engine's errors (InvalidRecordError for a keyless record on a
        compacted topic, CorruptRecordError, RecordTooLargeError, ...) having written nothing.
        """
        check_producer_batches(data)
        if log_.config.compact:
            for pos, _ in iter_batches(data):
                self.refuse_keyless(log_, keyless_records(data, pos))
        return self._append(log_, data)

    def append_records(
        self, log_: Log, records: Sequence[Record], *, timestamp: int | None = None, route: bool = True
    ) -> AppendInfo:
        """Append ``records`` (an AMQP stream's publishes) as one batch to the topic partition
        ``log_``, on the same path as a producer's batches; records without a timestamp get
        ``timestamp`` or now.  ``route=False``: not handed to ``on_append`` (records that came
        through ``amq.kafka`` into a stream)."""
        if log_.config.compact:
            self.refuse_keyless(log_, [i for i, r in enumerate(records) if r.key is None])
        now = now_ms() if timestamp is None else timestamp
        return self._append(log_, bytearray(encode_batch(records, now_ms=now)), route=route)

    def _append(self, log_: Log, data: bytearray, *, route: bool = True) -> AppendInfo:
        """The one write path of every writer of a topic partition: append, wake the readers
        waiting on the partition (Kafka fetches, AMQP stream consumers), and hand the batches to
        ``on_append`` (routing to ``amq.kafka``'s bound queues: :mod:`jackalope.core.topic_routes`)."""
        info = log_.append_batches(data)
        if not info.duplicate:  # a retried batch already written: nothing new to read
            self.waiters.appended(log_)
            if route and self.on_append is not None:
                self.on_append(log_, data, info)
        return info

    def append_control(
        self, log_: Log, producer_id: int, producer_epoch: int, *, commit: bool, coordinator_epoch: int
    ) -> AppendInfo:
        """Write the COMMIT or ABORT marker of ``producer_id``'s transaction on the topic partition
        ``log_`` (:meth:`Log.append_control`, whose errors it raises): the one way markers are
        written, as it wakes the partition's readers (the last stable offset may have moved) and
        hands a committed transaction's records to ``amq.kafka``'s bound queues."""
        first = next((t.first_offset for t in log_.open_transactions() if t.producer_id == producer_id), None)
        info = log_.append_control(
            producer_id, producer_epoch, commit=commit, coordinator_epoch=coordinator_epoch
        )
        self.waiters.appended(log_)
        if commit and first is not None and self.on_commit is not None:
            self.on_commit(log_, producer_id, first, info)
        return info

    def refuse_keyless(self, log_: Log, indexes: list[int]) -> None:
        """The compacted topic partition ``log_`` takes no record without a key: raise
        InvalidRecordError naming each such record (``indexes``, from the batch's first) as
        Kafka's LogValidator does; nothing if ``indexes`` is empty."""
        if not indexes:
            return
        where = self._partition_label(log_)
        errors = [
            (i, f"Compacted topic cannot accept message without key in topic partition {where}")
            for i in indexes
        ]
        shown = ", ".join(f"RecordError(batchIndex={i}, message='{m}')" for i, m in errors[:3])
        raise InvalidRecordError(
            f"One or more records have been rejected due to {len(errors)} record errors in total, "
            f"and only showing the first three errors at most: [{shown}]",
            errors,
        )

    def _partition_label(self, log_: Log) -> str:
        """``topic-partition``, as Kafka names a topic partition in messages."""
        for topic in self._topics.values():
            for i, p in enumerate(topic.partitions):
                if p is log_:
                    return f"{topic.name}-{i}"
        return "(unknown)"

    # -- changes -------------------------------------------------------------------------------

    def create(
        self,
        name: str,
        partitions: int = -1,
        configs: dict[str, str] | None = None,
        *,
        validate_only: bool = False,
    ) -> Topic:
        validate_name(name)
        if name in self._topics:
            raise TopicExists(f"topic {name!r} already exists")
        if partitions == -1:
            partitions = self.default_partitions
        if not 1 <= partitions <= MAX_PARTITIONS:
            raise InvalidPartitions(f"the number of partitions must be between 1 and {MAX_PARTITIONS}")
        overrides = parse_configs(configs or {})
        config = self._log_config(overrides)
        topic = Topic(name, uuid.uuid4(), [], overrides)
        if validate_only:
            return topic
        for p in range(partitions):
            topic.partitions.append(self.logs.get_or_create(log_name(name, p), config))
        self._add(topic)
        self.save()
        return topic

    def delete(self, name: str) -> None:
        topic = self._topics.pop(name, None)
        if topic is None:
            raise UnknownTopic(f"unknown topic {name!r}")
        del self._by_id[topic.topic_id]
        self.save()
        for p in range(len(topic.partitions)):
            if log_name(name, p) in self.logs:
                self.logs.delete(log_name(name, p))
        for callback in self.on_delete:
            callback(name)

    def add_partitions(self, name: str, total: int, *, validate_only: bool = False) -> None:
        topic = self._require(name)
        have = len(topic.partitions)
        if total <= have:
            raise InvalidPartitions(f"topic {name!r} has {have} partitions; the new count must be larger")
        if total > MAX_PARTITIONS:
            raise InvalidPartitions(f"a topic has at most {MAX_PARTITIONS} partitions")
        if validate_only:
            return
        config = self._log_config(topic.configs)
        for p in range(have, total):
            topic.partitions.append(self.logs.get_or_create(log_name(name, p), config))
        self.save()

    def set_configs(self, name: str, overrides: dict[str, str], *, validate_only: bool = False) -> None:
        """Replace the topic's overrides (AlterConfigs); unspecified keys revert to defaults."""
        topic = self._require(name)
        parsed = parse_configs(overrides)
        config = self._log_config(parsed)
        if validate_only:
            return
        topic.configs = parsed
        for p in range(len(topic.partitions)):
            self.logs.reconfigure(log_name(name, p), config)
        self.save()

    def set_base_config(self, config: LogConfig) -> None:
        """Change the broker-wide defaults (Kafka's dynamic broker configs): every topic's logs
        take them at once where the topic has no override of its own."""
        self.base_config = config
        for topic in self._topics.values():
            merged = self._log_config(topic.configs)
            for p, log_ in enumerate(topic.partitions):
                if log_.config != merged:
                    self.logs.reconfigure(log_name(topic.name, p), merged)

    def describe_configs(self, name: str) -> list[ConfigEntry]:
        return self.config_entries(self._require(name).configs)

    def config_entries(self, overrides: dict[str, str]) -> list[ConfigEntry]:
        """Every topic config with ``overrides`` (parsed) applied, the rest at their defaults."""
        base = self.base_config
        out = []
        for key in CONFIG_KEYS.values():
            if key.name in overrides:
                out.append(ConfigEntry(key.name, overrides[key.name], False))
            elif key.field is not None:
                out.append(ConfigEntry(key.name, key.show(getattr(base, key.field)), True))
            else:
                out.append(ConfigEntry(key.name, _STATIC_DEFAULTS[key.name], True))
        return out

    # -- internals -----------------------------------------------------------------------------

    def _require(self, name: str) -> Topic:
        topic = self._topics.get(name)
        if topic is None:
            raise UnknownTopic(f"unknown topic {name!r}")
        return topic

    def _add(self, topic: Topic) -> None:
        self._topics[topic.name] = topic
        self._by_id[topic.topic_id] = topic

    def _log_config(self, overrides: dict[str, str]) -> LogConfig:
        changes = {}
        for name, value in overrides.items():
            key = CONFIG_KEYS[name]
            if key.field is not None:
                changes[key.field] = key.parse(value)
        try:
            return self.base_config.replace(**changes)
        except ValueError as exc:
            raise InvalidConfig(str(exc)) from None

    # -- persistence ---------------------------------------------------------------------------

    def save(self) -> None:
        if self.data_dir is None:
            return
        data = {
            t.name: {"id": str(t.topic_id), "partitions": len(t.partitions), "configs": t.configs}
            for t in self._topics.values()
        }
        atomic_write(self.data_dir / TOPICS_FILE, (json.dumps(data, indent=2) + "\n").encode())

    def load(self) -> None:
        """Attach the stored topics to their logs.

        ``topics.json`` is the commit point of creating, growing and deleting topics: logs of
        partitions it lists but a crash left uncreated are created, and logs it does not list
        (a crash during a delete, or before a create was recorded) are deleted.
        """
        if self.data_dir is None:
            return
        try:
            data = json.loads((self.data_dir / TOPICS_FILE).read_text())
        except FileNotFoundError:
            data = {}
        listed: set[str] = set()
        for name, entry in data.items():
            configs = {str(k): str(v) for k, v in entry.get("configs", {}).items()}
            config = self._log_config(configs)
            count = int(entry["partitions"])
            listed.update(log_name(name, p) for p in range(count))
            partitions = [
                self.logs.get(log_name(name, p)) or self.logs.create(log_name(name, p), config)
                for p in range(count)
            ]
            self._add(Topic(name, uuid.UUID(entry["id"]), partitions, configs))
        for name, _ in self.logs:
            if name.startswith(LOG_PREFIX) and name not in listed:
                self.logs.delete(name)
