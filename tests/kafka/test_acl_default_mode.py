"""``--kafka-allow-everyone-if-no-acl-found`` (Kafka's allow.everyone.if.no.acl.found=true):
what confluent's ``test_describe_operations`` expects.  A resource no ACL names is open to
every principal; once a binding names it, only the bindings decide (the AMQP permissions of
the user, here all of them, are not consulted).  Without the setting a user without ACLs
falls back on its AMQP permissions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from jackalope import Broker
from tests.amqp.access_admin import HttpAdmin
from tests.kafka.conftest import unique

USER, PASSWORD = "sasl_user", "sasl_user"


def _broker(tmp: Any, **settings: Any) -> Broker:
    b = Broker(tmp / "data", kafka_port=0, amqp_port=-1, kafka_sasl_mechanisms="PLAIN", **settings).start()
    http = HttpAdmin(b.http_url)
    http.add_user(USER, PASSWORD)  # no tags: not a super user
    http.set_permissions("/", USER, ".*", ".*", ".*")
    return b


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = _broker(tmp_path_factory.mktemp("everyone"), kafka_allow_everyone_if_no_acl_found=True)
    try:
        yield b
    finally:
        b.stop()


def _admin(broker: Broker) -> AdminClient:
    return AdminClient(
        {
            "bootstrap.servers": broker.kafka_bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN",
            "sasl.username": USER,
            "sasl.password": PASSWORD,
            "log_level": 0,
        }
    )


def _allow(admin: AdminClient, restype: ResourceType, name: str, operation: AclOperation) -> None:
    binding = AclBinding(
        restype, name, ResourcePatternType.LITERAL, f"User:{USER}", "*", operation, AclPermissionType.ALLOW
    )
    admin.create_acls([binding])[binding].result(timeout=10)


def _delete(admin: AdminClient, restype: ResourceType, name: str) -> None:
    acl_filter = AclBindingFilter(
        restype, name, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
    )
    admin.delete_acls([acl_filter])[acl_filter].result(timeout=10)


def test_cluster_operations(broker: Broker) -> None:
    admin = _admin(broker)
    ops = admin.describe_cluster(include_authorized_operations=True, request_timeout=10).result()
    assert {AclOperation.ALTER, AclOperation.ALTER_CONFIGS} <= set(ops.authorized_operations)
    _allow(admin, ResourceType.BROKER, "kafka-cluster", AclOperation.ALTER)
    try:
        ops = admin.describe_cluster(include_authorized_operations=True, request_timeout=10).result()
        assert AclOperation.ALTER in ops.authorized_operations
        assert AclOperation.ALTER_CONFIGS not in ops.authorized_operations
    finally:
        _delete(admin, ResourceType.BROKER, "kafka-cluster")  # Alter on the cluster: the ACL
    ops = admin.describe_cluster(include_authorized_operations=True, request_timeout=10).result()
    assert AclOperation.ALTER_CONFIGS in ops.authorized_operations


def test_topic_operations(broker: Broker) -> None:
    admin = _admin(broker)
    topic = unique("everyone")
    admin.create_topics([NewTopic(topic, 1, 1)], request_timeout=10)[topic].result(timeout=15)

    def operations() -> set[Any]:
        described = admin.describe_topics(
            TopicCollection([topic]), include_authorized_operations=True, request_timeout=10
        )[topic].result()
        return set(described.authorized_operations)

    assert {AclOperation.READ, AclOperation.DELETE} <= operations()
    _allow(admin, ResourceType.TOPIC, topic, AclOperation.READ)
    # the AMQP permissions (configure on everything) would allow Delete: they are not asked
    assert AclOperation.READ in operations() and AclOperation.DESCRIBE in operations()
    assert AclOperation.DELETE not in operations()
    _delete(admin, ResourceType.TOPIC, topic)  # the cluster has no ACL: open to everyone
    assert AclOperation.DELETE in operations()
    admin.delete_topics([topic], request_timeout=10)[topic].result(timeout=15)


def test_group_operations(broker: Broker) -> None:
    admin = _admin(broker)
    group, topic = unique("everyone"), unique("group-topic")
    admin.create_topics([NewTopic(topic, 1, 1)], request_timeout=10)[topic].result(timeout=15)
    offsets = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 0)])
    admin.alter_consumer_group_offsets([offsets], request_timeout=10)[group].result(timeout=15)

    def operations() -> set[Any]:
        described = admin.describe_consumer_groups(
            [group], include_authorized_operations=True, request_timeout=10
        )[group].result()
        return set(described.authorized_operations)

    assert {AclOperation.READ, AclOperation.DELETE} <= operations()
    _allow(admin, ResourceType.GROUP, group, AclOperation.READ)
    assert AclOperation.READ in operations() and AclOperation.DELETE not in operations()
    _delete(admin, ResourceType.GROUP, group)


def test_a_binding_for_someone_else_closes_the_resource(broker: Broker) -> None:
    admin = _admin(broker)
    topic = unique("others")
    admin.create_topics([NewTopic(topic, 1, 1)], request_timeout=10)[topic].result(timeout=15)
    binding = AclBinding(
        ResourceType.TOPIC,
        topic,
        ResourcePatternType.LITERAL,
        "User:alice",
        "*",
        AclOperation.ALL,
        AclPermissionType.ALLOW,
    )
    admin.create_acls([binding])[binding].result(timeout=10)
    try:
        with pytest.raises(KafkaException) as info:
            admin.describe_topics(TopicCollection([topic]), request_timeout=10)[topic].result()
        assert info.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    finally:
        _delete(admin, ResourceType.TOPIC, topic)


def test_without_the_setting_the_amqp_permissions_decide(tmp_path: Any) -> None:
    b = _broker(tmp_path)
    try:
        admin = _admin(b)
        ops = admin.describe_cluster(include_authorized_operations=True, request_timeout=10).result()
        assert AclOperation.ALTER not in ops.authorized_operations  # cluster Alter: an ACL only
        topic = unique("amqp")
        admin.create_topics([NewTopic(topic, 1, 1)], request_timeout=10)[topic].result(timeout=15)
        described = admin.describe_topics(
            TopicCollection([topic]), include_authorized_operations=True, request_timeout=10
        )[topic].result()
        assert AclOperation.DELETE in set(described.authorized_operations)  # configure ".*"
    finally:
        b.stop()


def test_anonymous_follows_the_same_rule(tmp_path: Any) -> None:
    """On a listener without SASL (``User:ANONYMOUS``) too: open until a binding names the
    resource, then closed to whoever the bindings do not name."""
    b = Broker(
        tmp_path / "data", kafka_port=0, amqp_port=-1, kafka_allow_everyone_if_no_acl_found=True
    ).start()
    try:
        admin = AdminClient({"bootstrap.servers": b.kafka_bootstrap, "log_level": 0})
        topic = unique("anonymous")
        admin.create_topics([NewTopic(topic, 1, 1)], request_timeout=10)[topic].result(timeout=15)
        binding = AclBinding(
            ResourceType.TOPIC,
            topic,
            ResourcePatternType.LITERAL,
            "User:alice",
            "*",
            AclOperation.READ,
            AclPermissionType.ALLOW,
        )
        admin.create_acls([binding])[binding].result(timeout=10)
        with pytest.raises(KafkaException) as info:
            admin.describe_topics(TopicCollection([topic]), request_timeout=10)[topic].result()
        assert info.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        _delete(admin, ResourceType.TOPIC, topic)
        described = admin.describe_topics(TopicCollection([topic]), request_timeout=10)[topic].result()
        assert described.name == topic
    finally:
        b.stop()
