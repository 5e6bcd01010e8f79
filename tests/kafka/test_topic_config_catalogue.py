"""Kafka 4's topic config catalogue: every name accepted, validated as Kafka validates it, described.

Names Jackalope gives no effect (one node, or not implemented) are still accepted and reported, as
docs/kafka.md lists them; unknown names stay refused with INVALID_CONFIG.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType

from tests.kafka.conftest import confluent_admin, create_topic, produce_confluent, unique

# Kafka 4.x LogConfig defaults of the names Jackalope accepts without effect.
WITHOUT_EFFECT_DEFAULTS = {
    "segment.jitter.ms": "0",
    "max.compaction.lag.ms": "9223372036854775807",
    "file.delete.delay.ms": "60000",
    "min.cleanable.dirty.ratio": "0.5",
    "compression.gzip.level": "-1",
    "compression.lz4.level": "9",
    "compression.zstd.level": "3",
    "message.timestamp.before.max.ms": "9223372036854775807",
    "message.timestamp.after.max.ms": "9223372036854775807",
    "leader.replication.throttled.replicas": "",
    "follower.replication.throttled.replicas": "",
    "message.downconversion.enable": "true",
    "local.retention.ms": "-2",
    "local.retention.bytes": "-2",
    "remote.storage.enable": "false",
    "preallocate": "false",
    "unclean.leader.election.enable": "false",
}

VALID = {
    "min.cleanable.dirty.ratio": "0.1",
    "max.compaction.lag.ms": "86400000",
    "file.delete.delay.ms": "0",
    "segment.jitter.ms": "1000",
    "message.timestamp.before.max.ms": "3600000",
    "message.timestamp.after.max.ms": "3600000",
    "compression.zstd.level": "-5",
    "compression.gzip.level": "9",
    "leader.replication.throttled.replicas": "0:1",
    "follower.replication.throttled.replicas": "*",
    "preallocate": "true",
}

INVALID = [
    ("min.cleanable.dirty.ratio", "1.5"),
    ("min.cleanable.dirty.ratio", "dirty"),
    ("max.compaction.lag.ms", "0"),
    ("file.delete.delay.ms", "-1"),
    ("segment.jitter.ms", "-1"),
    ("message.timestamp.before.max.ms", "-1"),
    ("compression.gzip.level", "0"),
    ("compression.lz4.level", "18"),
    ("compression.zstd.level", "23"),
    ("leader.replication.throttled.replicas", "zero"),
    ("preallocate", "maybe"),
    ("remote.storage.enable", "true"),  # tiered storage is not implemented
    ("no.such.config", "1"),
]


@pytest.fixture(scope="module")
def admin(bootstrap: str) -> Any:
    return confluent_admin(bootstrap)


def _describe(admin: Any, topic: str) -> dict[str, str]:
    res = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([res], request_timeout=10)[res].result(timeout=15)
    return {name: entry.value or "" for name, entry in entries.items()}


def _code(exc: pytest.ExceptionInfo[BaseException]) -> int:
    err = exc.value.args[0]
    assert isinstance(err, KafkaError), exc.value
    return int(err.code())


def test_defaults_of_the_whole_catalogue_are_described(admin: Any, bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic)
    described = _describe(admin, topic)
    for name, value in WITHOUT_EFFECT_DEFAULTS.items():
        assert described[name] == value, name


def test_create_with_configs_without_effect(admin: Any, topic: str) -> None:
    fs = admin.create_topics([NewTopic(topic, 1, 1, config=VALID)])
    fs[topic].result(timeout=15)
    described = _describe(admin, topic)
    for name, value in VALID.items():
        assert described[name] == value, name


@pytest.mark.parametrize(("name", "value"), INVALID)
def test_invalid_values_are_refused(admin: Any, name: str, value: str) -> None:
    topic = unique("bad-config")
    fs = admin.create_topics([NewTopic(topic, 1, 1, config={name: value})])
    with pytest.raises(KafkaException) as exc:
        fs[topic].result(timeout=15)
    assert _code(exc) == KafkaError.INVALID_CONFIG
    assert topic not in admin.list_topics(timeout=5).topics


def test_incremental_alter_of_configs_without_effect(admin: Any, bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic)
    res = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("min.cleanable.dirty.ratio", "0.9", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("segment.jitter.ms", "5", incremental_operation=AlterConfigOpType.SET),
        ],
    )
    admin.incremental_alter_configs([res])[res].result(timeout=15)
    described = _describe(admin, topic)
    assert described["min.cleanable.dirty.ratio"] == "0.9"
    assert described["segment.jitter.ms"] == "5"

    bad = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("min.cleanable.dirty.ratio", "2", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    with pytest.raises(KafkaException) as exc:
        admin.incremental_alter_configs([bad])[bad].result(timeout=15)
    assert _code(exc) == KafkaError.INVALID_CONFIG
    assert _describe(admin, topic)["min.cleanable.dirty.ratio"] == "0.9"


@pytest.fixture
def kp_admin(bootstrap: str) -> Iterator[Any]:
    from kafka.admin import KafkaAdminClient

    client = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    yield client
    client.close()


def test_kafka_python_legacy_alter_and_describe(kp_admin: Any, bootstrap: str, topic: str) -> None:
    from kafka.admin import ConfigResource as KpResource
    from kafka.admin import ConfigResourceType

    create_topic(bootstrap, topic)
    kp_admin.alter_configs(
        [KpResource(ConfigResourceType.TOPIC, topic, configs={"max.compaction.lag.ms": "600000"})],
        incremental=False,
    )
    res = [KpResource(ConfigResourceType.TOPIC, topic)]
    configs = kp_admin.describe_configs(res, config_filter="all")["topic"][topic]
    assert configs["max.compaction.lag.ms"]["value"] == "600000"
    assert configs["file.delete.delay.ms"]["value"] == "60000"


async def test_aiokafka_create_with_configs_without_effect(admin: Any, bootstrap: str, topic: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin import NewTopic as AioNewTopic

    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await client.start()
    try:
        await client.create_topics(
            [AioNewTopic(topic, 1, 1, topic_configs={"message.timestamp.after.max.ms": "1000"})]
        )
    finally:
        await client.close()
    assert _describe(admin, topic)["message.timestamp.after.max.ms"] == "1000"


def test_empty_cleanup_policy_keeps_every_record(
    admin: Any, kafka_broker: Any, bootstrap: str, topic: str
) -> None:
    fs = admin.create_topics(
        [NewTopic(topic, 1, 1, config={"cleanup.policy": "", "retention.ms": "1", "segment.bytes": "1024"})]
    )
    fs[topic].result(timeout=15)
    assert _describe(admin, topic)["cleanup.policy"] == ""
    for _ in range(4):  # a batch each, a segment each
        produce_confluent(bootstrap, topic, [(b"same-key", b"x" * 600)])
    log_ = kafka_broker.server.core.topics.partition(topic, 0)
    assert log_.segment_count > 1
    # neither retention (every segment is past retention.ms) nor compaction (one key) removes a record
    assert log_.enforce_retention(now=2**62) == 0
    assert not log_.config.compact  # the compactor passes the log by
    assert (log_.start_offset, log_.end_offset) == (0, 4)
