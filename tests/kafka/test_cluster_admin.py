"""The cluster admin APIs of one node: SCRAM credentials (KIP-554), DescribeLogDirs,
ElectLeaders, partition reassignments, DescribeQuorum, and the broker's DescribeConfigs.

Answers are those of a one-node KRaft Kafka 4 cluster: node 0 is the only replica, leader and
voter, so elections are never needed and no reassignment is ever in progress."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    ConfigResource,
    NewTopic,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from jackalope import Broker
from tests.amqp.access_admin import HttpAdmin
from tests.kafka.conftest import sasl, unique
from tests.kafka_frontend.wire import WireClient, entity, request


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(
        tmp_path_factory.mktemp("cluster") / "data",
        kafka_port=0,
        amqp_port=-1,
        kafka_sasl_mechanisms="PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
    ).start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="module")
def admin(broker: Broker) -> AdminClient:
    return AdminClient(sasl(broker, "guest", "guest"))


def kafka_python_admin(broker: Broker, user: str = "guest", password: str = "guest") -> Any:
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(
        bootstrap_servers=broker.kafka_bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_plain_username=user,
        sasl_plain_password=password,
    )


@pytest.fixture(scope="module")
def topic(broker: Broker, admin: AdminClient) -> str:
    name = unique("cl")
    admin.create_topics([NewTopic(name, 2)])[name].result(timeout=15)
    p = Producer({**sasl(broker, "guest", "guest"), "log_level": 0})
    for _ in range(10):
        p.produce(name, b"x" * 100, partition=0)
    assert p.flush(15) == 0
    return name


def logs_in(broker: Broker, user: str, password: str, mechanism: str) -> bool:
    """Whether a producer logged in as ``user`` delivers a record (False: authentication failed)."""
    errors: list[KafkaError] = []
    delivered: list[KafkaError | None] = []
    p = Producer(
        {
            **sasl(broker, user, password, mechanism),
            "error_cb": errors.append,
            "message.timeout.ms": 8000,
            "log_level": 0,
        }
    )
    p.produce(unique("scram"), b"v", on_delivery=lambda err, msg: delivered.append(err))
    deadline = time.monotonic() + 10
    while not delivered and time.monotonic() < deadline:
        p.poll(0.05)
        if any(e.code() == KafkaError._AUTHENTICATION for e in errors):
            return False
    assert delivered == [None], (delivered, errors)
    return True


# -- SCRAM credentials -----------------------------------------------------------------------------


def test_altered_scram_credentials_log_in(broker: Broker, admin: AdminClient) -> None:
    name = unique("scram")
    HttpAdmin(broker.http_url).ok("PUT", f"/users/{name}", {"tags": ""})  # no password
    HttpAdmin(broker.http_url).set_permissions("/", name, ".*", ".*", ".*")
    assert not logs_in(broker, name, "secret-256", "SCRAM-SHA-256")
    up256 = UserScramCredentialUpsertion(
        name, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192), b"secret-256"
    )
    up512 = UserScramCredentialUpsertion(
        name, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"secret-512", b"sixteen-byte-slt"
    )
    # one user twice in a request: DUPLICATE_RESOURCE
    futures = admin.alter_user_scram_credentials([up256, up512])
    with pytest.raises(KafkaException) as info:
        futures[name].result(timeout=15)
    assert info.value.args[0].code() == KafkaError.DUPLICATE_RESOURCE
    for up in (up256, up512):
        admin.alter_user_scram_credentials([up])[name].result(timeout=15)
    assert logs_in(broker, name, "secret-256", "SCRAM-SHA-256")
    assert logs_in(broker, name, "secret-512", "SCRAM-SHA-512")
    assert not logs_in(broker, name, "secret-512", "SCRAM-SHA-256")

    described = {u: f.result(timeout=15) for u, f in admin.describe_user_scram_credentials([name]).items()}
    infos = {(i.mechanism, i.iterations) for i in described[name].scram_credential_infos}
    assert infos == {(ScramMechanism.SCRAM_SHA_256, 8192), (ScramMechanism.SCRAM_SHA_512, 4096)}
    every = admin.describe_user_scram_credentials().result(timeout=15)
    assert name in every and "guest" in every

    deletion = UserScramCredentialDeletion(name, ScramMechanism.SCRAM_SHA_512)
    admin.alter_user_scram_credentials([deletion])[name].result(timeout=15)
    assert not logs_in(broker, name, "secret-512", "SCRAM-SHA-512")
    with pytest.raises(KafkaException) as info:
        admin.alter_user_scram_credentials([deletion])[name].result(timeout=15)
    assert info.value.args[0].code() == KafkaError.RESOURCE_NOT_FOUND


def test_scram_credential_errors_kafka_python(broker: Broker) -> None:
    from kafka.admin import ScramMechanism as KPMechanism
    from kafka.admin import UserScramCredentialUpsertion as KPUpsertion

    kp = kafka_python_admin(broker)
    try:
        few = unique("few")
        result = kp.alter_user_scram_credentials(
            [KPUpsertion(few, KPMechanism.SCRAM_SHA_256, "pw", iterations=1000)]
        )
        assert result == {few: "Too few iterations"}
        many = unique("many")
        result = kp.alter_user_scram_credentials(
            [KPUpsertion(many, KPMechanism.SCRAM_SHA_256, "pw", iterations=20000)]
        )
        assert result == {many: "Too many iterations"}
        missing = unique("missing")
        described = kp.describe_user_scram_credentials([missing])
        assert (
            described[missing]["error"]
            == f"Attempt to describe a user credential that does not exist: {missing}"
        )
        # a new user made by its credential logs in with it (Kafka's users exist by them)
        fresh = unique("fresh")
        assert kp.alter_user_scram_credentials([KPUpsertion(fresh, KPMechanism.SCRAM_SHA_512, "pw")]) == {
            fresh: None
        }
        assert described != kp.describe_user_scram_credentials([fresh])
        assert kp.describe_user_scram_credentials([fresh])[fresh]["credential_infos"] == [
            {"mechanism": KPMechanism.SCRAM_SHA_512, "iterations": 4096}
        ]
    finally:
        kp.close()


def test_scram_apis_need_cluster_rights(broker: Broker) -> None:
    from kafka.admin import ScramMechanism as KPMechanism
    from kafka.admin import UserScramCredentialUpsertion as KPUpsertion
    from kafka.errors import ClusterAuthorizationFailedError

    name = unique("plain")
    HttpAdmin(broker.http_url).ok("PUT", f"/users/{name}", {"password": "pw", "tags": ""})
    kp = kafka_python_admin(broker, name, "pw")
    try:
        with pytest.raises(ClusterAuthorizationFailedError):
            kp.describe_user_scram_credentials()
        result = kp.alter_user_scram_credentials([KPUpsertion(name, KPMechanism.SCRAM_SHA_256, "other")])
        assert result == {name: "Cluster authorization failed."}
    finally:
        kp.close()


# -- DescribeLogDirs -------------------------------------------------------------------------------


def test_describe_log_dirs_kafka_python(broker: Broker, topic: str) -> None:
    kp = kafka_python_admin(broker)
    try:
        [answer] = kp.describe_log_dirs()
        assert answer["broker"] == 0
        [log_dir] = answer["log_dirs"]
        assert log_dir["error_code"] == 0
        assert log_dir["log_dir"].startswith(str(broker.data_dir))
        assert log_dir["total_bytes"] >= log_dir["usable_bytes"] > 0
        [mine] = [t for t in log_dir["topics"] if t["name"] == topic]
        sizes = {p["partition_index"]: p["partition_size"] for p in mine["partitions"]}
        assert sizes.keys() == {0, 1} and sizes[0] > 1000 and sizes[1] == 0
        [only] = kp.describe_log_dirs({topic: [1, 7]})
        [part] = only["log_dirs"][0]["topics"][0]["partitions"]
        assert part["partition_index"] == 1 and part["offset_lag"] == 0 and not part["is_future_key"]
    finally:
        kp.close()


def test_alter_replica_log_dirs_kafka_python(broker: Broker, topic: str) -> None:
    """One log directory: a replica moved where it is stays (no error), elsewhere is refused."""
    from kafka.errors import LogDirNotFoundError, NoError, ReplicaNotAvailableError
    from kafka.structs import TopicPartitionReplica

    kp = kafka_python_admin(broker)
    try:
        [answer] = kp.describe_log_dirs()
        here = answer["log_dirs"][0]["log_dir"]
        replica = TopicPartitionReplica(topic, 0, 0)
        assert kp.alter_replica_log_dirs({replica: here}) == {replica: NoError}
        moved = kp.alter_replica_log_dirs({replica: "/elsewhere"})[replica]
        assert moved is LogDirNotFoundError, moved
        missing = TopicPartitionReplica(topic, 9, 0)
        assert kp.alter_replica_log_dirs({missing: here})[missing] is ReplicaNotAvailableError
    finally:
        kp.close()


# -- ElectLeaders ----------------------------------------------------------------------------------


def test_elect_leaders_is_never_needed(admin: AdminClient, topic: str) -> None:
    from confluent_kafka import ElectionType

    partitions = [TopicPartition(topic, 0), TopicPartition(topic, 1), TopicPartition(topic, 9)]
    result = admin.elect_leaders(ElectionType.PREFERRED, partitions).result(timeout=15)
    codes = {tp.partition: (err.code() if err is not None else None) for tp, err in result.items()}
    assert codes == {
        0: KafkaError.ELECTION_NOT_NEEDED,
        1: KafkaError.ELECTION_NOT_NEEDED,
        9: KafkaError.UNKNOWN_TOPIC_OR_PART,
    }


def test_elect_leaders_kafka_python(broker: Broker, topic: str) -> None:
    kp = kafka_python_admin(broker)
    try:
        response = kp.elect_leaders(1, {topic: [0]})  # unclean: the leader is there
        [result] = response.replica_election_results
        assert [(p.partition_id, p.error_code) for p in result.partition_result] == [(0, 84)]
        everything = kp.elect_leaders(0)  # kafka-python lists every partition it knows
        codes = {p.error_code for r in everything.replica_election_results for p in r.partition_result}
        assert codes == {84}
    finally:
        kp.close()


# -- partition reassignments -----------------------------------------------------------------------


def test_partition_reassignments_kafka_python(broker: Broker, topic: str) -> None:
    from kafka.errors import (
        InvalidReplicationAssignmentError,
        NoReassignmentInProgressError,
        UnknownTopicOrPartitionError,
    )

    from kafka import TopicPartition as KPTopicPartition

    kp = kafka_python_admin(broker)
    try:
        assert kp.list_partition_reassignments() == {}
        assert kp.list_partition_reassignments({topic: [0, 1]}) == {}
        p0, p1 = KPTopicPartition(topic, 0), KPTopicPartition(topic, 1)
        missing = KPTopicPartition(topic, 5)
        result = kp.alter_partition_reassignments({p0: [0], p1: [1], missing: [0]})
        assert result[p0] is None  # already so: a no-op
        assert result[p1] is InvalidReplicationAssignmentError
        assert result[missing] is UnknownTopicOrPartitionError
        assert kp.alter_partition_reassignments({p0: None}) == {p0: NoReassignmentInProgressError}
        assert kp.alter_partition_reassignments({p0: [0, 0]}) == {p0: InvalidReplicationAssignmentError}
        assert kp.list_partition_reassignments() == {}
    finally:
        kp.close()


# -- DescribeQuorum --------------------------------------------------------------------------------


def test_describe_quorum_kafka_python(broker: Broker) -> None:
    kp = kafka_python_admin(broker)
    try:
        quorum = kp.describe_metadata_quorum()
    finally:
        kp.close()
    [metadata] = quorum["topics"]
    assert metadata["topic_name"] == "__cluster_metadata"
    [partition] = metadata["partitions"]
    assert partition["error"] is None and partition["leader_id"] == 0 and partition["leader_epoch"] >= 1
    assert [v["replica_id"] for v in partition["current_voters"]] == [0]
    assert partition["observers"] == []
    assert partition["high_watermark"] >= 0


@pytest.fixture(scope="module")
def plain_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(tmp_path_factory.mktemp("plain") / "data", kafka_port=0, amqp_port=-1).start()
    try:
        yield b
    finally:
        b.stop()


def quorum_request(version: int, topic: str = "__cluster_metadata", partition: int = 0) -> Any:
    part = entity(55, version, "PartitionData", partition_index=partition)
    return request(
        55, version, topics=(entity(55, version, "TopicData", topic_name=topic, partitions=(part,)),)
    )


@pytest.mark.parametrize("version", [0, 1, 2])
def test_describe_quorum_raw_frames(plain_broker: Broker, version: int) -> None:
    with WireClient(plain_broker.kafka_bootstrap) as client:
        response = client.call(quorum_request(version))
    assert response.error_code == 0
    [topic] = response.topics
    [partition] = topic.partitions
    assert (partition.leader_id, partition.error_code) == (0, 0)
    assert [v.replica_id for v in partition.current_voters] == [0]
    if version >= 2:
        [node] = response.nodes
        assert node.node_id == 0 and node.listeners[0].port == int(
            plain_broker.kafka_bootstrap.rsplit(":")[1]
        )


def test_describe_quorum_of_another_partition_is_unknown(plain_broker: Broker) -> None:
    with WireClient(plain_broker.kafka_bootstrap) as client:
        response = client.call(quorum_request(2, "__cluster_metadata", 1))
    assert response.error_code == KafkaError.UNKNOWN_TOPIC_OR_PART and response.topics == ()


# -- broker configs --------------------------------------------------------------------------------


def test_broker_describe_configs_lists_the_real_settings(broker: Broker, admin: AdminClient) -> None:
    resource = ConfigResource(ConfigResource.Type.BROKER, "0")
    configs = admin.describe_configs([resource])[resource].result(timeout=15)
    assert configs["log.dirs"].value.startswith(str(broker.data_dir))
    assert configs["offsets.retention.minutes"].value == str(7 * 24 * 60)
    assert configs["group.min.session.timeout.ms"].value == "6000"
    assert configs["group.max.session.timeout.ms"].value == "1800000"
    assert configs["super.users"].value == "User:guest"
    assert configs["process.roles"].value == "broker,controller"
    # the settings Kafka cannot change at run time are read-only, its dynamic broker configs not
    dynamic = {
        "log.retention.ms",
        "log.retention.bytes",
        "log.segment.bytes",
        "log.roll.ms",
        "log.cleanup.policy",
    }
    for name in ("log.dirs", "process.roles", "super.users", "group.min.session.timeout.ms", *dynamic):
        assert configs[name].is_read_only == (name not in dynamic), name


def test_kafka_named_settings_are_held_to_kafkas_ranges(tmp_path: Any) -> None:
    from jackalope.settings import Settings, SettingsError

    for field, value in (
        ("segment_bytes", 13),
        ("segment_bytes", 1 << 31),
        ("kafka_max_request_bytes", 0),
        ("kafka_max_message_bytes", -1),
        ("retention_check_interval_ms", 0),
    ):
        with pytest.raises(SettingsError):
            Settings(data_dir=tmp_path, **{field: value})
    Settings(data_dir=tmp_path, segment_bytes=1024)


def test_broker_configs_through_aiokafka_and_the_cluster_check(broker: Broker) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource as AioResource
    from aiokafka.admin.config_resource import ConfigResourceType

    name = unique("nomon")
    HttpAdmin(broker.http_url).ok("PUT", f"/users/{name}", {"password": "pw", "tags": ""})

    async def describe(user: str, password: str) -> dict[str, Any]:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=broker.kafka_bootstrap,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="PLAIN",
            sasl_plain_username=user,
            sasl_plain_password=password,
        )
        await admin.start()
        try:
            [response] = await admin.describe_configs([AioResource(ConfigResourceType.BROKER, "0")])
        finally:
            await admin.close()
        [(error, _, _, _, entries)] = [r[:5] for r in response.resources]
        return {"error": error, "configs": {e[0]: e[1] for e in entries}}

    found = asyncio.run(describe("guest", "guest"))
    assert found["error"] == 0 and found["configs"]["num.partitions"] == "1"
    assert found["configs"]["log.dirs"].startswith(str(broker.data_dir))
    denied = asyncio.run(describe(name, "pw"))  # no monitoring tag: no DescribeConfigs on the cluster
    assert denied["error"] == KafkaError.CLUSTER_AUTHORIZATION_FAILED and denied["configs"] == {}
