"""Admin APIs through confluent-kafka's AdminClient and kafka-python's KafkaAdminClient."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import ConsumerGroupState, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from tests.kafka.conftest import (
    confluent_admin,
    confluent_consumer,
    confluent_producer,
    create_topic,
    produce_confluent,
    unique,
    wait_until,
)

DEFAULT_SOURCES = (ConfigSource.DEFAULT_CONFIG, ConfigSource.STATIC_BROKER_CONFIG)


@pytest.fixture(scope="module")
def admin(bootstrap: str) -> Any:
    return confluent_admin(bootstrap)


def _error_code(exc_info: pytest.ExceptionInfo[BaseException]) -> int:
    err = exc_info.value.args[0]
    assert isinstance(err, KafkaError), exc_info.value
    return int(err.code())


def _describe(admin: Any, topic: str) -> dict[str, Any]:
    res = ConfigResource(ResourceType.TOPIC, topic)
    return dict(admin.describe_configs([res], request_timeout=10)[res].result(timeout=15))


def _partition_count(admin: Any, topic: str) -> int:
    md = admin.list_topics(topic, timeout=10)
    return len(md.topics[topic].partitions)


# -- confluent-kafka AdminClient ------------------------------------------------------------------


def test_create_topic_with_configs_and_describe(admin: Any, topic: str) -> None:
    configs = {"retention.ms": "3600000", "max.message.bytes": "200000", "cleanup.policy": "delete"}
    fs = admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1, config=configs)])
    fs[topic].result(timeout=15)
    wait_until(lambda: topic in admin.list_topics(timeout=5).topics, 10, "the new topic in metadata")
    assert _partition_count(admin, topic) == 4

    described = _describe(admin, topic)
    for name, value in configs.items():
        assert described[name].value == value, name
        assert ConfigSource(described[name].source) == ConfigSource.DYNAMIC_TOPIC_CONFIG, name
        assert not described[name].is_default
    # Kafka's documented defaults for what was not set.
    assert ConfigSource(described["segment.bytes"].source) in DEFAULT_SOURCES
    assert described["min.insync.replicas"].value == "1"
    assert described["message.timestamp.type"].value == "CreateTime"
    assert described["retention.bytes"].value == "-1"


def test_create_topic_errors(admin: Any, topic: str) -> None:
    create_topic(admin_bootstrap(admin), topic, partitions=1)
    fs = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    with pytest.raises(KafkaException) as exc:
        fs[topic].result(timeout=15)
    assert _error_code(exc) == KafkaError.TOPIC_ALREADY_EXISTS

    bad = unique("bad-config")
    fs = admin.create_topics([NewTopic(bad, 1, 1, config={"retention.ms": "soon"})])
    with pytest.raises(KafkaException) as exc:
        fs[bad].result(timeout=15)
    assert _error_code(exc) == KafkaError.INVALID_CONFIG

    fs = admin.create_topics([NewTopic(unique("no-such-config"), 1, 1, config={"no.such.config": "1"})])
    with pytest.raises(KafkaException) as exc:
        next(iter(fs.values())).result(timeout=15)
    assert _error_code(exc) == KafkaError.INVALID_CONFIG

    fs = admin.create_topics([NewTopic(unique("zero-parts"), num_partitions=0, replication_factor=1)])
    with pytest.raises(KafkaException) as exc:
        next(iter(fs.values())).result(timeout=15)
    assert _error_code(exc) == KafkaError.INVALID_PARTITIONS

    fs = admin.create_topics([NewTopic("bad/name", 1, 1)])
    with pytest.raises(KafkaException) as exc:
        fs["bad/name"].result(timeout=15)
    assert _error_code(exc) == KafkaError.TOPIC_EXCEPTION

    fs = admin.create_topics([NewTopic(unique("validate-only"), 1, 1)], validate_only=True)
    name = next(iter(fs))
    fs[name].result(timeout=15)
    assert name not in admin.list_topics(timeout=5).topics


def admin_bootstrap(admin: Any) -> str:
    md = admin.list_topics(timeout=5)
    b = next(iter(md.brokers.values()))
    return f"{b.host}:{b.port}"


def test_create_partitions(admin: Any, bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, partitions=2)
    admin.create_partitions([NewPartitions(topic, 5)])[topic].result(timeout=15)
    wait_until(lambda: _partition_count(admin, topic) == 5, 10, "5 partitions in metadata")

    # the new partitions take records
    p = confluent_producer(bootstrap)
    p.produce(topic, value=b"in-4", partition=4)
    assert p.flush(10) == 0

    with pytest.raises(KafkaException) as exc:
        admin.create_partitions([NewPartitions(topic, 3)])[topic].result(timeout=15)
    assert _error_code(exc) == KafkaError.INVALID_PARTITIONS

    missing = unique("missing")
    with pytest.raises(KafkaException) as exc:
        admin.create_partitions([NewPartitions(missing, 3)])[missing].result(timeout=15)
    assert _error_code(exc) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_incremental_alter_configs(admin: Any, bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, config={"max.message.bytes": "300000"})
    res = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("max.message.bytes", None, incremental_operation=AlterConfigOpType.DELETE),
        ],
    )
    admin.incremental_alter_configs([res])[res].result(timeout=15)
    described = _describe(admin, topic)
    assert described["retention.ms"].value == "7200000"
    assert ConfigSource(described["retention.ms"].source) == ConfigSource.DYNAMIC_TOPIC_CONFIG
    assert described["max.message.bytes"].value == "1048588"  # back to the default
    assert ConfigSource(described["max.message.bytes"].source) in DEFAULT_SOURCES

    bad = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[ConfigEntry("retention.ms", "abc", incremental_operation=AlterConfigOpType.SET)],
    )
    with pytest.raises(KafkaException) as exc:
        admin.incremental_alter_configs([bad])[bad].result(timeout=15)
    assert _error_code(exc) == KafkaError.INVALID_CONFIG
    assert _describe(admin, topic)["retention.ms"].value == "7200000", "a rejected change changes nothing"


def test_legacy_alter_configs_replaces_the_whole_set(admin: Any, bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, config={"max.message.bytes": "300000", "retention.ms": "100000"})
    res = ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.ms": "5000000"})
    admin.alter_configs([res])[res].result(timeout=15)
    described = _describe(admin, topic)
    assert described["retention.ms"].value == "5000000"
    # AlterConfigs (non-incremental) resets every dynamic config it does not name
    assert described["max.message.bytes"].value == "1048588"
    assert ConfigSource(described["max.message.bytes"].source) in DEFAULT_SOURCES


def test_topic_max_message_bytes_is_enforced(admin: Any, bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, config={"max.message.bytes": "100000"})
    producer = confluent_producer(bootstrap, **{"linger.ms": 0})
    reports: list[Any] = []
    producer.produce(topic, value=b"x" * 150_000, on_delivery=lambda e, m: reports.append(e))
    assert producer.flush(15) == 0  # flushed alone: a batch is accepted or rejected whole
    producer.produce(topic, value=b"small", on_delivery=lambda e, m: reports.append(e))
    assert producer.flush(15) == 0
    assert reports[0] is not None and reports[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, reports
    assert reports[1] is None, reports
    c = confluent_consumer(bootstrap)
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 1)
    finally:
        c.close()


def test_delete_topics(admin: Any, bootstrap: str, topic: str) -> None:
    produce_confluent(bootstrap, topic, [(None, b"doomed")])
    admin.delete_topics([topic], operation_timeout=10)[topic].result(timeout=15)
    wait_until(lambda: topic not in admin.list_topics(timeout=5).topics, 10, "the topic to leave metadata")

    with pytest.raises(KafkaException) as exc:
        admin.delete_topics([topic], operation_timeout=10)[topic].result(timeout=15)
    assert _error_code(exc) == KafkaError.UNKNOWN_TOPIC_OR_PART

    # a topic of the same name starts afresh
    create_topic(bootstrap, topic, partitions=1)
    c = confluent_consumer(bootstrap)
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 0)
    finally:
        c.close()


def test_describe_cluster(admin: Any, bootstrap: str) -> None:
    cluster = admin.describe_cluster(request_timeout=10).result(timeout=15)
    assert len(cluster.nodes) == 1
    node = cluster.nodes[0]
    assert f"{node.host}:{node.port}" == bootstrap
    assert cluster.controller is not None and cluster.controller.id == node.id
    assert cluster.cluster_id


def test_describe_topics(admin: Any, bootstrap: str, topic: str) -> None:
    from confluent_kafka import TopicCollection

    create_topic(bootstrap, topic, partitions=3)
    desc = admin.describe_topics(TopicCollection([topic]), request_timeout=10)[topic].result(timeout=15)
    assert desc.name == topic
    assert [p.id for p in desc.partitions] == [0, 1, 2]
    assert all(p.leader is not None and len(p.replicas) == 1 for p in desc.partitions)
    assert not desc.is_internal


def test_delete_records(admin: Any, bootstrap: str, topic: str) -> None:
    produce_confluent(bootstrap, topic, [(None, str(i).encode()) for i in range(10)])
    tp = TopicPartition(topic, 0, 4)
    result = admin.delete_records([tp], request_timeout=10)
    deleted = next(iter(result.values())).result(timeout=15)
    assert deleted.low_watermark == 4
    c = confluent_consumer(bootstrap)
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (4, 10)
        c.assign([TopicPartition(topic, 0, 0)])  # below the log start: reset to earliest
        deadline = time.monotonic() + 10
        msg = None
        while msg is None and time.monotonic() < deadline:
            msg = c.poll(0.2)
        assert msg is not None and msg.error() is None
        assert msg.offset() == 4 and msg.value() == b"4"
    finally:
        c.close()

    # -1 means "up to the high watermark"
    everything = admin.delete_records([TopicPartition(topic, 0, -1)], request_timeout=10)
    assert next(iter(everything.values())).result(timeout=15).low_watermark == 10

    with pytest.raises(KafkaException) as exc:
        beyond = admin.delete_records([TopicPartition(topic, 0, 50)], request_timeout=10)
        next(iter(beyond.values())).result(timeout=15)
    assert _error_code(exc) == KafkaError.OFFSET_OUT_OF_RANGE


def test_list_describe_and_delete_consumer_groups(admin: Any, bootstrap: str, topic: str, group: str) -> None:
    create_topic(bootstrap, topic, partitions=2)
    produce_confluent(bootstrap, topic, [(None, b"x")])
    member = confluent_consumer(bootstrap, group)
    try:
        member.subscribe([topic])
        wait_until(lambda: member.poll(0.1) is not None or len(member.assignment()) == 2, 20, "an assignment")
        listed = admin.list_consumer_groups(request_timeout=10).result(timeout=15)
        mine = [g for g in listed.valid if g.group_id == group]
        assert len(mine) == 1 and not mine[0].is_simple_consumer_group
        assert mine[0].state == ConsumerGroupState.STABLE

        desc = admin.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
        assert desc.state == ConsumerGroupState.STABLE
        assert len(desc.members) == 1
        assigned = {(tp.topic, tp.partition) for tp in desc.members[0].assignment.topic_partitions}
        assert assigned == {(topic, 0), (topic, 1)}
        assert desc.partition_assignor in ("range", "roundrobin")

        # deleting a group with members is refused
        with pytest.raises(KafkaException) as exc:
            admin.delete_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
        assert _error_code(exc) == KafkaError.NON_EMPTY_GROUP
        member.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
    finally:
        member.close()

    desc = admin.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
    assert desc.state == ConsumerGroupState.EMPTY and not desc.members

    admin.delete_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
    listed = admin.list_consumer_groups(request_timeout=10).result(timeout=15)
    assert group not in {g.group_id for g in listed.valid}
    probe = confluent_consumer(bootstrap, group)
    try:
        committed = probe.committed([TopicPartition(topic, 0)], timeout=10)
        assert committed[0].offset < 0, "a deleted group's offsets are gone"
    finally:
        probe.close()

    with pytest.raises(KafkaException) as exc:
        admin.delete_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
    assert _error_code(exc) == KafkaError.GROUP_ID_NOT_FOUND


def test_list_offsets(admin: Any, bootstrap: str, topic: str) -> None:
    from confluent_kafka.admin import OffsetSpec

    t0 = int(time.time() * 1000) - 60_000
    p = confluent_producer(bootstrap)
    for i in range(5):
        p.produce(topic, value=b"v", timestamp=t0 + i * 10)
    assert p.flush(10) == 0
    tp = TopicPartition(topic, 0)
    for spec, want in [
        (OffsetSpec.earliest(), 0),
        (OffsetSpec.latest(), 5),
        (OffsetSpec.for_timestamp(t0 + 15), 2),
        (OffsetSpec.max_timestamp(), 4),
    ]:
        got = admin.list_offsets({tp: spec}, request_timeout=10)[tp].result(timeout=15)
        assert got.offset == want, spec


# -- kafka-python KafkaAdminClient ----------------------------------------------------------------


@pytest.fixture
def kp_admin(bootstrap: str) -> Iterator[Any]:
    from kafka.admin import KafkaAdminClient

    client = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    yield client
    client.close()


def test_kafka_python_topics_and_partitions(kp_admin: Any, topic: str) -> None:
    kp_admin.create_topics(
        {topic: {"num_partitions": 2, "replication_factor": 1, "configs": {"retention.ms": "3600000"}}}
    )
    wait_until(lambda: topic in kp_admin.list_topics(), 10, "the topic in list_topics")
    described = kp_admin.describe_topics([topic])
    assert len(described) == 1 and len(described[0]["partitions"]) == 2

    kp_admin.create_partitions({topic: 4})
    wait_until(lambda: len(kp_admin.describe_topics([topic])[0]["partitions"]) == 4, 10, "4 partitions")

    kp_admin.delete_topics([topic])
    wait_until(lambda: topic not in kp_admin.list_topics(), 10, "the topic to go")


def test_kafka_python_configs(kp_admin: Any, bootstrap: str, topic: str) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType

    create_topic(bootstrap, topic, config={"retention.ms": "3600000"})
    res = [ConfigResource(ConfigResourceType.TOPIC, topic)]
    configs = kp_admin.describe_configs(res, config_filter="all")["topic"][topic]
    assert configs["retention.ms"]["value"] == "3600000"
    assert configs["cleanup.policy"]["value"] == "delete"

    kp_admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "7200000"})],
        incremental=True,
    )
    assert (
        kp_admin.describe_configs(res, config_filter="all")["topic"][topic]["retention.ms"]["value"]
        == "7200000"
    )

    kp_admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"segment.ms": "600000"})], incremental=False
    )
    after = kp_admin.describe_configs(res, config_filter="all")["topic"][topic]
    assert after["segment.ms"]["value"] == "600000"


def test_kafka_python_cluster_groups_and_records(
    kp_admin: Any, bootstrap: str, topic: str, group: str
) -> None:
    from kafka import TopicPartition as KTP

    cluster = kp_admin.describe_cluster()
    assert len(cluster["brokers"]) == 1
    broker = cluster["brokers"][0]
    assert f"{broker['host']}:{broker['port']}" == bootstrap
    assert cluster["controller_id"] == broker["broker_id"]

    produce_confluent(bootstrap, topic, [(None, str(i).encode()) for i in range(6)])
    out = kp_admin.delete_records({KTP(topic, 0): 3})
    assert [v["low_watermark"] for v in out.values()] == [3]

    c = confluent_consumer(bootstrap, group)
    c.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
    c.close()
    groups = {g["group_id"] for g in kp_admin.list_groups()}
    assert group in groups
    offsets = kp_admin.list_group_offsets({group: None})[group]
    assert offsets[KTP(topic, 0)].offset == 5
    described = kp_admin.describe_groups([group])
    assert described[group]["group_state"] == "Empty"
    assert kp_admin.delete_groups([group]) == {group: "OK"}
    assert group not in {g["group_id"] for g in kp_admin.list_groups()}
