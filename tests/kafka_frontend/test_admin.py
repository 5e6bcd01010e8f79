"""Topic administration through confluent-kafka's AdminClient, kafka-python's KafkaAdminClient
and, for what those hide, hand-built requests."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not re-exported in its stubs
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from jackalope import Broker
from tests.kafka_frontend.conftest import unique
from tests.kafka_frontend.wire import WireClient, entity, request

CREATE_TOPICS, DELETE_TOPICS, CREATE_PARTITIONS = 19, 20, 37
DESCRIBE_CONFIGS, ALTER_CONFIGS, INCREMENTAL_ALTER_CONFIGS, DESCRIBE_CLUSTER = 32, 33, 44, 60
TIMEOUT = datetime.timedelta(seconds=10)


@pytest.fixture(scope="module")
def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


@pytest.fixture
def kp_admin(bootstrap: str) -> Iterator[Any]:
    from kafka.admin import KafkaAdminClient

    client = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    yield client
    client.close()


def partitions(broker: Broker, topic: str) -> int | None:
    """The partition count of ``topic`` in the broker's own topic registry (None: no topic)."""
    found = broker.server.core.topics.get(topic)  # type: ignore[union-attr]
    return None if found is None else len(found.partitions)


def error_of(future: Any) -> KafkaError:
    with pytest.raises(KafkaException) as exc:
        future.result(timeout=15)
    err = exc.value.args[0]
    assert isinstance(err, KafkaError)
    return err


def describe(admin: AdminClient, kind: ResourceType, name: str) -> dict[str, Any]:
    res = ConfigResource(kind, name)
    return dict(admin.describe_configs([res], request_timeout=10)[res].result(timeout=15))


# -- confluent-kafka --------------------------------------------------------------------------------


def test_create_describe_alter_and_delete(admin: AdminClient, broker: Broker) -> None:
    topic = unique("lifecycle")
    configs = {"retention.ms": "3600000", "cleanup.policy": "compact"}
    admin.create_topics([NewTopic(topic, 3, 1, config=configs)])[topic].result(timeout=15)
    assert partitions(broker, topic) == 3

    described = describe(admin, ResourceType.TOPIC, topic)
    assert described["retention.ms"].value == "3600000"
    assert described["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert described["cleanup.policy"].value == "compact"
    assert described["segment.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
    assert described["segment.bytes"].is_default
    assert not any(e.is_read_only for e in described.values())

    # legacy AlterConfigs replaces every override
    res = ConfigResource(ResourceType.TOPIC, topic, set_config={"max.message.bytes": "50000"})
    admin.alter_configs([res])[res].result(timeout=15)
    described = describe(admin, ResourceType.TOPIC, topic)
    assert described["max.message.bytes"].value == "50000"
    assert described["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert described["cleanup.policy"].value == "delete"

    # incremental: SET, DELETE, APPEND and SUBTRACT on a list config
    ops = [
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("max.message.bytes", None, incremental_operation=AlterConfigOpType.DELETE),
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
    ]
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=ops)
    admin.incremental_alter_configs([res])[res].result(timeout=15)
    described = describe(admin, ResourceType.TOPIC, topic)
    assert described["retention.ms"].value == "7200000"
    assert described["max.message.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
    assert described["cleanup.policy"].value == "delete,compact"  # appended: in order, as Kafka keeps it
    assert described["cleanup.policy"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    subtract = [ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT)]
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=subtract)
    admin.incremental_alter_configs([res])[res].result(timeout=15)
    assert describe(admin, ResourceType.TOPIC, topic)["cleanup.policy"].value == "compact"

    # a rejected change changes nothing
    bad = [
        ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("segment.bytes", "tiny", incremental_operation=AlterConfigOpType.SET),
    ]
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=bad)
    err = error_of(admin.incremental_alter_configs([res])[res])
    assert err.code() == KafkaError.INVALID_CONFIG and "segment.bytes" in err.str()
    assert describe(admin, ResourceType.TOPIC, topic)["retention.ms"].value == "7200000"

    admin.create_partitions([NewPartitions(topic, 5)])[topic].result(timeout=15)
    assert partitions(broker, topic) == 5
    err = error_of(admin.create_partitions([NewPartitions(topic, 4)])[topic])
    assert err.code() == KafkaError.INVALID_PARTITIONS

    admin.delete_topics([topic], operation_timeout=10)[topic].result(timeout=15)
    assert partitions(broker, topic) is None
    assert error_of(admin.delete_topics([topic])[topic]).code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    res = ConfigResource(ResourceType.TOPIC, topic)
    assert error_of(admin.describe_configs([res])[res]).code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_create_topic_errors(admin: AdminClient, broker: Broker) -> None:
    topic = unique("exists")
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=15)
    err = error_of(admin.create_topics([NewTopic(topic, 1, 1)])[topic])
    assert err.code() == KafkaError.TOPIC_ALREADY_EXISTS

    cases = [
        (NewTopic(unique("rf3"), 1, 3), KafkaError.INVALID_REPLICATION_FACTOR),
        (NewTopic(unique("zero"), 0, 1), KafkaError.INVALID_PARTITIONS),
        (NewTopic("bad name!", 1, 1), KafkaError.TOPIC_EXCEPTION),
        (NewTopic(unique("cfg"), 1, 1, config={"retention.ms": "soon"}), KafkaError.INVALID_CONFIG),
        (NewTopic(unique("cfg"), 1, 1, config={"no.such.thing": "1"}), KafkaError.INVALID_CONFIG),
    ]
    for new, code in cases:
        err = error_of(admin.create_topics([new])[new.topic])
        assert err.code() == code, (new.topic, err)
        assert err.str(), "the broker's error message reaches the client"
        assert partitions(broker, new.topic) is None

    # default partition count and replication factor
    default = unique("defaults")
    admin.create_topics([NewTopic(default)])[default].result(timeout=15)
    assert partitions(broker, default) == 1

    dry = unique("validate-only")
    admin.create_topics([NewTopic(dry, 2, 1)], validate_only=True)[dry].result(timeout=15)
    assert partitions(broker, dry) is None


def test_static_broker_configs_are_read_only(admin: AdminClient, broker: Broker) -> None:
    """The settings Kafka cannot change at run time are read-only; the log defaults are Kafka's
    dynamic broker configs (tests/kafka/test_broker_configs.py), shown at their static value."""
    described = describe(admin, ResourceType.BROKER, "0")
    for name, value, read_only in [
        ("num.partitions", "1", True),
        ("auto.create.topics.enable", "true", True),
        ("message.max.bytes", "1048588", False),
        ("log.retention.ms", str(7 * 24 * 3600 * 1000), False),
        ("log.segment.bytes", str(1 << 30), False),
    ]:
        assert described[name].value == value, name
        assert described[name].is_read_only == read_only, name
        assert described[name].source == ConfigSource.STATIC_BROKER_CONFIG.value

    res = ConfigResource(ResourceType.BROKER, "0", set_config={"num.partitions": "3"})
    err = error_of(admin.alter_configs([res])[res])
    assert err.code() == KafkaError.INVALID_REQUEST and "num.partitions" in err.str()
    ops = [ConfigEntry("auto.create.topics.enable", "false", incremental_operation=AlterConfigOpType.SET)]
    res = ConfigResource(ResourceType.BROKER, "0", incremental_configs=ops)
    assert error_of(admin.incremental_alter_configs([res])[res]).code() == KafkaError.INVALID_REQUEST


def test_describe_cluster(admin: AdminClient, bootstrap: str) -> None:
    cluster = admin.describe_cluster(request_timeout=10).result(timeout=15)
    assert [f"{n.host}:{n.port}" for n in cluster.nodes] == [bootstrap]
    assert cluster.controller is not None and cluster.controller.id == cluster.nodes[0].id == 0
    assert cluster.cluster_id


# -- kafka-python -----------------------------------------------------------------------------------


def test_kafka_python_admin(kp_admin: Any, broker: Broker) -> None:
    from kafka.admin import ConfigResource as KConfigResource
    from kafka.admin import ConfigResourceType
    from kafka.errors import InvalidReplicationAssignmentError

    topic = unique("kp")
    result = kp_admin.create_topics(
        {topic: {"num_partitions": 2, "replication_factor": 1, "configs": {"retention.ms": "60000"}}}
    )
    (created,) = result["topics"]
    assert created["error_code"] == 0 and created["num_partitions"] == 2
    assert created["replication_factor"] == 1
    assert created["configs"]["retention.ms"]["value"] == "60000"
    assert partitions(broker, topic) == 2

    # an explicit assignment is honoured when every replica is this broker
    assigned = unique("kp-assigned")
    kp_admin.create_topics({assigned: {"assignments": {0: [0], 1: [0], 2: [0]}}})
    assert partitions(broker, assigned) == 3
    with pytest.raises(InvalidReplicationAssignmentError):
        kp_admin.create_topics({unique("kp-elsewhere"): {"assignments": {0: [1]}}})

    res = KConfigResource(ConfigResourceType.TOPIC, topic)
    configs = kp_admin.describe_configs([res], config_filter="all")["topic"][topic]
    assert configs["retention.ms"]["value"] == "60000"
    kp_admin.alter_configs(
        [KConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "120000"})],
        incremental=True,
    )
    assert kp_admin.describe_configs([res], config_filter="all")["topic"][topic]["retention.ms"]["value"] == (
        "120000"
    )

    kp_admin.create_partitions({topic: 4})
    assert partitions(broker, topic) == 4

    cluster = kp_admin.describe_cluster()
    assert [b["broker_id"] for b in cluster["brokers"]] == [0] and cluster["controller_id"] == 0

    kp_admin.delete_topics([topic, assigned])
    assert partitions(broker, topic) is None and partitions(broker, assigned) is None


# -- on the wire ----------------------------------------------------------------------------------


def _creatable(version: int, name: str, num_partitions: int = -1, rf: int = -1, **extra: Any) -> Any:
    fields: dict[str, Any] = {"assignments": (), "configs": ()} | extra
    return entity(
        CREATE_TOPICS,
        version,
        "CreatableTopic",
        name=name,
        num_partitions=num_partitions,
        replication_factor=rf,
        **fields,
    )


def test_create_topics_v7_response(bootstrap: str, broker: Broker) -> None:
    name, dup, dry = unique("v7"), unique("dup"), unique("dry")
    with WireClient(bootstrap) as client:
        config = entity(CREATE_TOPICS, 7, "CreatableTopicConfig", name="retention.ms", value="1000")
        response = client.call(
            request(
                CREATE_TOPICS,
                7,
                topics=(
                    _creatable(7, name, 2, 1, configs=(config,)),
                    _creatable(7, dup),
                    _creatable(7, dup),
                ),
                timeout=TIMEOUT,
                validate_only=False,
            )
        )
        by_name = {t.name: t for t in response.topics}
        assert len(response.topics) == 2
        ok = by_name[name]
        assert ok.error_code == 0 and ok.num_partitions == 2 and ok.replication_factor == 1
        assert ok.topic_id == broker.server.core.topics.get(name).topic_id  # type: ignore[union-attr]
        configs = {c.name: c for c in ok.configs}
        assert configs["retention.ms"].value == "1000" and configs["retention.ms"].config_source == 1
        assert configs["segment.ms"].config_source == 5
        assert by_name[dup].error_code == 42 and by_name[dup].error_message  # INVALID_REQUEST
        assert partitions(broker, dup) is None

        response = client.call(
            request(CREATE_TOPICS, 7, topics=(_creatable(7, dry),), timeout=TIMEOUT, validate_only=True)
        )
        (result,) = response.topics
        assert (
            result.error_code == 0
            and result.num_partitions == 1
            and result.topic_id in (None, uuid.UUID(int=0))
        )
        assert partitions(broker, dry) is None

        # v2: the oldest CreateTopics offered
        old = unique("v2")
        response = client.call(
            request(
                CREATE_TOPICS, 2, topics=(_creatable(2, old, 1, 1),), timeout=TIMEOUT, validate_only=False
            )
        )
        assert [(t.name, t.error_code) for t in response.topics] == [(old, 0)]


def test_delete_topics_by_id(bootstrap: str, broker: Broker, admin: AdminClient) -> None:
    topic = unique("by-id")
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=15)
    topic_id = broker.server.core.topics.get(topic).topic_id  # type: ignore[union-attr]
    missing = uuid.uuid4()
    with WireClient(bootstrap) as client:
        states = (
            entity(DELETE_TOPICS, 6, "DeleteTopicState", name=None, topic_id=topic_id),
            entity(DELETE_TOPICS, 6, "DeleteTopicState", name=None, topic_id=missing),
        )
        response = client.call(request(DELETE_TOPICS, 6, topics=states, timeout=TIMEOUT))
    found, unknown = response.responses
    assert (found.name, found.topic_id, found.error_code) == (topic, topic_id, 0)
    assert (unknown.topic_id, unknown.error_code) == (missing, 100)  # UNKNOWN_TOPIC_ID
    assert partitions(broker, topic) is None


def test_describe_configs_filters_synonyms_and_documentation(bootstrap: str, admin: AdminClient) -> None:
    topic = unique("filter")
    admin.create_topics([NewTopic(topic, 1, 1, config={"retention.ms": "5000"})])[topic].result(timeout=15)
    with WireClient(bootstrap) as client:
        resources = (
            entity(
                DESCRIBE_CONFIGS,
                4,
                "DescribeConfigsResource",
                resource_type=2,
                resource_name=topic,
                configuration_keys=("retention.ms", "cleanup.policy", "no.such.key"),
            ),
            entity(
                DESCRIBE_CONFIGS,
                4,
                "DescribeConfigsResource",
                resource_type=4,
                resource_name="0",
                configuration_keys=("num.partitions",),
            ),
            entity(DESCRIBE_CONFIGS, 4, "DescribeConfigsResource", resource_type=4, resource_name="7"),
        )
        response = client.call(
            request(
                DESCRIBE_CONFIGS, 4, resources=resources, include_synonyms=True, include_documentation=True
            )
        )
    topic_result, broker_result, other_broker = response.results
    assert topic_result.error_code == 0
    configs = {c.name: c for c in topic_result.configs}
    assert set(configs) == {"retention.ms", "cleanup.policy"}
    retention = configs["retention.ms"]
    assert (retention.value, retention.config_source, retention.config_type) == ("5000", 1, 5)
    assert [(s.value, s.source) for s in retention.synonyms] == [("5000", 1), (str(7 * 24 * 3600 * 1000), 5)]
    assert configs["cleanup.policy"].config_type == 7  # LIST
    (num,) = broker_result.configs
    assert (num.name, num.value, num.read_only, num.config_source) == ("num.partitions", "1", True, 4)
    assert other_broker.error_code == 42 and other_broker.error_message


def test_alter_config_errors_on_the_wire(bootstrap: str, admin: AdminClient) -> None:
    topic = unique("alter")
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=15)

    def op(name: str, operation: int, value: str | None) -> Any:
        return entity(
            INCREMENTAL_ALTER_CONFIGS,
            1,
            "AlterableConfig",
            name=name,
            config_operation=operation,
            value=value,
        )

    def resource(*configs: Any, name: str = topic, kind: int = 2) -> Any:
        return entity(
            INCREMENTAL_ALTER_CONFIGS,
            1,
            "AlterConfigsResource",
            resource_type=kind,
            resource_name=name,
            configs=configs,
        )

    with WireClient(bootstrap) as client:
        response = client.call(
            request(
                INCREMENTAL_ALTER_CONFIGS,
                1,
                resources=(
                    resource(op("retention.ms", 2, "5")),  # APPEND to a non-list config
                    resource(op("retention.ms", 9, "5")),  # no such operation
                    resource(op("retention.ms", 0, "5"), op("retention.ms", 1, None)),  # duplicate keys
                    resource(op("retention.ms", 0, "5"), name=unique("missing")),
                    resource(op("retention.ms", 0, "5"), kind=8),  # BROKER_LOGGER
                    resource(op("retention.ms", 0, "5000")),
                ),
                validate_only=True,
            )
        )
        assert [r.error_code for r in response.responses] == [40, 42, 42, 3, 42, 0]
        assert all(r.error_message for r in response.responses[:5])

        cluster = client.call(
            request(DESCRIBE_CLUSTER, 1, include_cluster_authorized_operations=False, endpoint_type=2)
        )
        assert cluster.error_code == 115  # UNSUPPORTED_ENDPOINT_TYPE: no controller endpoints

    # validate_only changed nothing
    assert (
        describe(admin, ResourceType.TOPIC, topic)["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    )


def test_create_partitions_with_assignments(bootstrap: str, broker: Broker, admin: AdminClient) -> None:
    topic = unique("grow")
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=15)

    def grow(count: int, *assignments: tuple[int, ...], validate_only: bool = False) -> Any:
        entries = tuple(
            entity(CREATE_PARTITIONS, 3, "CreatePartitionsAssignment", broker_ids=a) for a in assignments
        )
        t = entity(
            CREATE_PARTITIONS, 3, "CreatePartitionsTopic", name=topic, count=count, assignments=entries
        )
        (result,) = client.call(
            request(CREATE_PARTITIONS, 3, topics=(t,), timeout=TIMEOUT, validate_only=validate_only)
        ).results
        return result

    with WireClient(bootstrap) as client:
        assert grow(3, (0,)).error_code == 39  # one assignment for two new partitions
        assert grow(2, (1,)).error_code == 39  # no broker 1
        assert grow(3, (0,), (0,), validate_only=True).error_code == 0
        assert partitions(broker, topic) == 1
        assert grow(3, (0,), (0,)).error_code == 0
    assert partitions(broker, topic) == 3
