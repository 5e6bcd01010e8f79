"""Topics: partitioned logs with Kafka-named configs, persisted in topics.json."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from jackalope.core.topics import (
    TOPICS_FILE,
    InvalidConfig,
    InvalidPartitions,
    InvalidTopicName,
    TopicExists,
    Topics,
    UnknownTopic,
    log_name,
)
from jackalope.storage import LogManager, Record


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path


def open_logs(data_dir: Path) -> LogManager:
    logs = LogManager(data_dir / "logs")
    logs.open()
    return logs


@pytest.fixture
def topics(data_dir: Path) -> Iterator[Topics]:
    logs = open_logs(data_dir)
    registry = Topics(logs, data_dir, default_partitions=2)
    registry.load()
    yield registry
    logs.close_sync()


def reopen(data_dir: Path, old: Topics) -> Topics:
    old.logs.close_sync()
    registry = Topics(open_logs(data_dir), data_dir)
    registry.load()
    return registry


def test_create_with_defaults_and_configs(topics: Topics) -> None:
    topic = topics.create("events")
    assert len(topic.partitions) == 2
    compacted = topics.create("users", 1, {"cleanup.policy": "compact", "retention.ms": "-1"})
    log_ = compacted.partitions[0]
    assert log_.config.compact and not log_.config.delete and log_.config.retention_ms == -1
    with pytest.raises(TopicExists):
        topics.create("events")


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "x" * 250, "ünï"])
def test_invalid_names(topics: Topics, name: str) -> None:
    with pytest.raises(InvalidTopicName):
        topics.create(name)


@pytest.mark.parametrize(
    "configs",
    [
        {"retention.ms": "soon"},
        {"cleanup.policy": "forever"},
        {"no.such.config": "1"},
        {"segment.bytes": "1"},
    ],
)
def test_invalid_configs_create_nothing(topics: Topics, configs: dict[str, str]) -> None:
    with pytest.raises(InvalidConfig):
        topics.create("t", 1, configs)
    assert "t" not in topics and log_name("t", 0) not in topics.logs


@pytest.mark.parametrize("version", ["0.10.0.0", "0.10.0", "2.8", "2.8.1", "3.0-IV1"])
def test_message_format_versions_as_kafka_parses_them(topics: Topics, version: str) -> None:
    # Kafka's MetadataVersion.fromVersionString keeps the first 3 segments of a 0.x version
    # and 2 of the others: "0.10.0.0" (librdkafka's 0092_mixed_msgver sets it) is 0.10.0.
    topics.create("t", 1, {"message.format.version": version})
    assert topics.get("t").configs == {"message.format.version": version}  # type: ignore[union-attr]


def test_partitions_only_grow(topics: Topics) -> None:
    topics.create("t", 2)
    with pytest.raises(InvalidPartitions):
        topics.add_partitions("t", 2)
    topics.add_partitions("t", 5)
    assert len(topics.get("t").partitions) == 5  # type: ignore[union-attr]
    with pytest.raises(UnknownTopic):
        topics.add_partitions("nope", 3)


def test_set_configs_replaces_overrides_and_reconfigures_the_logs(topics: Topics) -> None:
    topics.create("t", 1, {"retention.ms": "1000"})
    topics.set_configs("t", {"message.timestamp.type": "LogAppendTime"})
    log_ = topics.partition("t", 0)
    assert log_ is not None and log_.config.log_append_time
    assert log_.config.retention_ms == topics.base_config.retention_ms  # back to the default
    entries = {e.name: e for e in topics.describe_configs("t")}
    assert entries["message.timestamp.type"].value == "LogAppendTime"
    assert not entries["message.timestamp.type"].is_default
    assert entries["retention.ms"].is_default


def test_topics_survive_a_restart(data_dir: Path, topics: Topics) -> None:
    topic = topics.create("kept", 3, {"retention.bytes": "12345"})
    topic.partitions[2].append([Record(b"v")])
    again = reopen(data_dir, topics)
    kept = again.get("kept")
    assert (
        kept is not None and kept.topic_id == topic.topic_id and kept.configs == {"retention.bytes": "12345"}
    )
    assert kept.partitions[2].read_records(0)[0].value == b"v"
    assert again.by_id(topic.topic_id) is kept
    again.logs.close_sync()


def test_delete_removes_logs_and_tells_listeners(data_dir: Path, topics: Topics) -> None:
    deleted: list[str] = []
    topics.on_delete.append(deleted.append)
    topics.create("gone", 2)
    topics.delete("gone")
    assert deleted == ["gone"] and "gone" not in topics
    assert not any(name.startswith("topic/gone/") for name, _ in topics.logs)
    with pytest.raises(UnknownTopic):
        topics.delete("gone")


def test_topics_json_is_the_commit_point(data_dir: Path, topics: Topics) -> None:
    topics.create("a", 2)
    topics.create("b", 1)
    # a crash after b's logs were made but before topics.json listed b; and one in the middle
    # of growing a, before its new partition's log was made
    data = json.loads((data_dir / TOPICS_FILE).read_text())
    del data["b"]
    data["a"]["partitions"] = 3
    (data_dir / TOPICS_FILE).write_text(json.dumps(data))
    again = reopen(data_dir, topics)
    assert "b" not in again and log_name("b", 0) not in again.logs
    assert len(again.get("a").partitions) == 3  # type: ignore[union-attr]
    again.create("b", 1)  # a new topic, not the remains of the old one
    assert again.partition("b", 0).end_offset == 0  # type: ignore[union-attr]
    again.logs.close_sync()


async def test_append_waiters_wake_readers(topics: Topics) -> None:
    log_ = topics.create("w", 1).partitions[0]
    waiting = asyncio.ensure_future(topics.waiters.wait([log_], 5))
    await asyncio.sleep(0)
    topics.waiters.appended(log_)
    assert await waiting is True
    assert await topics.waiters.wait([log_], 0.01) is False


def test_keyless_records_on_a_compacted_topic_are_named_by_batch_index(topics: Topics) -> None:
    from jackalope.storage import InvalidRecordError
    from jackalope.storage.records import encode_batch

    log_ = topics.create("users", 1, {"cleanup.policy": "compact"}).partitions[0]
    batch = encode_batch([Record(b"a", key=b"k"), Record(b"b"), Record(b"c", key=b"k"), Record(b"d")])
    with pytest.raises(InvalidRecordError) as refused:
        topics.append_batches(log_, bytearray(batch))
    why = "Compacted topic cannot accept message without key in topic partition users-0"
    assert refused.value.record_errors == [(1, why), (3, why)]
    assert "2 record errors" in str(refused.value)
    assert log_.end_offset == 0  # nothing written
