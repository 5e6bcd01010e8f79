"""Kafka ACLs: CreateAcls / DescribeAcls / DeleteAcls through the clients' admin APIs, kept
across a restart, and enforced on Kafka requests with the broker's users as principals.

Principals are ``User:<broker user>`` (SASL), ``User:ANONYMOUS`` without SASL.  Users tagged
administrator are super users; a user no ACL speaks for falls back on its AMQP permissions
in vhost "/" (see docs/kafka.md)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
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
from tests.kafka.conftest import sasl, unique

ANY_FILTER = AclBindingFilter(
    ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
)


def acl(
    name: str,
    principal: str,
    operation: AclOperation,
    permission: AclPermissionType = AclPermissionType.ALLOW,
    resource: ResourceType = ResourceType.TOPIC,
    pattern: ResourcePatternType = ResourcePatternType.LITERAL,
    host: str = "*",
) -> AclBinding:
    return AclBinding(resource, name, pattern, principal, host, operation, permission)


def create(admin: AdminClient, *bindings: AclBinding) -> None:
    for future in admin.create_acls(list(bindings)).values():
        future.result(timeout=15)


def delete_all(admin: AdminClient) -> None:
    admin.delete_acls([ANY_FILTER])[ANY_FILTER].result(timeout=15)


# -- the admin APIs, on a broker without SASL (principal User:ANONYMOUS) ---------------------------


@pytest.fixture(scope="module")
def plain_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(tmp_path_factory.mktemp("acls") / "data", kafka_port=0, amqp_port=-1).start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def plain_admin(plain_broker: Broker) -> Iterator[AdminClient]:
    admin = AdminClient({"bootstrap.servers": plain_broker.kafka_bootstrap})
    yield admin
    delete_all(admin)


def test_create_describe_delete_with_filters(plain_admin: AdminClient) -> None:
    topic = unique("t")
    literal = acl(topic, "User:alice", AclOperation.READ)
    prefixed = acl(topic[:4], "User:bob", AclOperation.WRITE, pattern=ResourcePatternType.PREFIXED)
    wildcard = acl("*", "User:carol", AclOperation.DESCRIBE, AclPermissionType.DENY, host="10.0.0.1")
    group = acl("g1", "User:alice", AclOperation.READ, resource=ResourceType.GROUP)
    cluster = acl("kafka-cluster", "User:alice", AclOperation.ALTER, resource=ResourceType.BROKER)
    txn = acl("tx", "User:alice", AclOperation.WRITE, resource=ResourceType.TRANSACTIONAL_ID)
    create(plain_admin, literal, prefixed, wildcard, group, cluster, txn)
    create(plain_admin, literal)  # again: no duplicate

    def described(f: AclBindingFilter) -> set[AclBinding]:
        return set(plain_admin.describe_acls(f).result(timeout=15))

    assert described(ANY_FILTER) == {literal, prefixed, wildcard, group, cluster, txn}
    # MATCH: every binding that applies to the topic (literal, prefix, wildcard)
    match = AclBindingFilter(
        ResourceType.TOPIC,
        topic,
        ResourcePatternType.MATCH,
        None,
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    assert described(match) == {literal, prefixed, wildcard}
    exact = AclBindingFilter(
        ResourceType.TOPIC,
        topic,
        ResourcePatternType.LITERAL,
        None,
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    assert described(exact) == {literal}
    by_principal = AclBindingFilter(
        ResourceType.ANY,
        None,
        ResourcePatternType.ANY,
        "User:alice",
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    assert described(by_principal) == {literal, group, cluster, txn}
    denies = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.DENY
    )
    assert described(denies) == {wildcard}
    prefixed_only = AclBindingFilter(
        ResourceType.TOPIC,
        None,
        ResourcePatternType.PREFIXED,
        None,
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    assert described(prefixed_only) == {prefixed}

    groups = AclBindingFilter(
        ResourceType.GROUP, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
    )
    deleted = plain_admin.delete_acls([groups])[groups].result(timeout=15)
    assert deleted == [group]
    assert described(ANY_FILTER) == {literal, prefixed, wildcard, cluster, txn}


def test_invalid_bindings_are_refused(plain_admin: AdminClient) -> None:
    bad_cluster = acl("my-cluster", "User:a", AclOperation.ALTER, resource=ResourceType.BROKER)
    bad_principal = acl("t", "alice", AclOperation.READ)
    for binding in (bad_cluster, bad_principal):
        with pytest.raises(KafkaException) as info:
            plain_admin.create_acls([binding])[binding].result(timeout=15)
        assert info.value.args[0].code() == KafkaError.INVALID_REQUEST
    assert plain_admin.describe_acls(ANY_FILTER).result(timeout=15) == []


def test_delegation_token_and_user_acls_are_refused_kafka_python(plain_broker: Broker) -> None:
    from kafka.admin import (
        ACL,
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        KafkaAdminClient,
        ResourcePattern,
        ResourcePatternFilter,
    )
    from kafka.admin import ResourceType as KPResourceType

    admin = KafkaAdminClient(bootstrap_servers=plain_broker.kafka_bootstrap)
    try:
        token = ACL(
            "User:a",
            "*",
            ACLOperation.DESCRIBE,
            ACLPermissionType.ALLOW,
            ResourcePattern(KPResourceType.DELEGATION_TOKEN, "tok"),
        )
        topic = unique("kp")
        ok = ACL(
            "User:kp",
            "*",
            ACLOperation.WRITE,
            ACLPermissionType.ALLOW,
            ResourcePattern(KPResourceType.TOPIC, topic, ACLResourcePatternType.PREFIXED),
        )
        user = ACL(
            "User:a",
            "*",
            ACLOperation.CREATE_TOKENS,
            ACLPermissionType.ALLOW,
            ResourcePattern(KPResourceType.USER, "User:b"),
        )
        result = admin.create_acls([token, ok])
        assert result["succeeded"] == [ok]
        assert [e.__name__ for e in result["failed"]] == ["InvalidRequestError"]
        result = admin.create_acls([user])  # CreateAcls v3
        assert [e.__name__ for e in result["failed"]] == ["InvalidRequestError"]
        filt = ACLFilter(
            principal=None,
            host=None,
            operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(KPResourceType.TOPIC, None, ACLResourcePatternType.ANY),
        )
        found, _ = admin.describe_acls(filt)
        assert found == [ok]
        [(_, deleted, _)] = admin.delete_acls([filt])
        assert deleted == [ok]
        assert admin.describe_acls(filt)[0] == []
    finally:
        admin.close()


def test_acls_survive_a_restart(tmp_path: Path) -> None:
    binding = acl("kept", "User:alice", AclOperation.READ, pattern=ResourcePatternType.PREFIXED)
    b = Broker(tmp_path / "data", kafka_port=0, amqp_port=-1).start()
    try:
        create(AdminClient({"bootstrap.servers": b.kafka_bootstrap}), binding)
    finally:
        b.stop()
    b = Broker(tmp_path / "data", kafka_port=0, amqp_port=-1).start()
    try:
        admin = AdminClient({"bootstrap.servers": b.kafka_bootstrap})
        assert admin.describe_acls(ANY_FILTER).result(timeout=15) == [binding]
    finally:
        b.stop()


def produce_error(config: dict[str, Any], topic: str) -> int | None:
    """The error code of producing one record to ``topic`` (None: delivered)."""
    results: list[KafkaError | None] = []
    p = Producer({**config, "message.timeout.ms": 8000, "log_level": 0})
    p.produce(topic, b"v", on_delivery=lambda err, msg: results.append(err))
    p.flush(15)
    assert results, "no delivery report"
    return None if results[0] is None else results[0].code()


def test_a_deny_acl_holds_anonymous_back(plain_broker: Broker, plain_admin: AdminClient) -> None:
    config = {"bootstrap.servers": plain_broker.kafka_bootstrap}
    closed, other = unique("closed"), unique("open")
    plain_admin.create_topics([NewTopic(closed, 1), NewTopic(other, 1)])[closed].result(timeout=15)
    create(plain_admin, acl(closed, "User:ANONYMOUS", AclOperation.WRITE, AclPermissionType.DENY))
    assert produce_error(config, closed) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert produce_error(config, other) is None


# -- enforcement with SASL users -------------------------------------------------------------------


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(
        tmp_path_factory.mktemp("acls-sasl") / "data",
        kafka_port=0,
        amqp_port=-1,
        kafka_sasl_mechanisms="PLAIN,SCRAM-SHA-256",
    ).start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="module")
def http(sasl_broker: Broker) -> HttpAdmin:
    return HttpAdmin(sasl_broker.http_url)


@pytest.fixture
def super_admin(sasl_broker: Broker) -> Iterator[AdminClient]:
    admin = AdminClient(sasl(sasl_broker, "guest", "guest"))
    yield admin
    delete_all(admin)


def new_user(http: HttpAdmin, tags: str = "") -> str:
    name = unique("u")
    http.ok("PUT", f"/users/{name}", {"password": "pw", "tags": tags})
    return name


def consume_error(config: dict[str, Any], topic: str, group: str) -> int | None:
    """None once a record of ``topic`` is consumed, else the first error code seen."""
    c = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest", "log_level": 0})
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error() is None:
                return None
            return int(msg.error().code())
        raise AssertionError("neither a record nor an error")
    finally:
        c.close()


def test_a_user_without_rights_gets_access_by_acls(
    sasl_broker: Broker, http: HttpAdmin, super_admin: AdminClient
) -> None:
    topic = unique("acl-t")
    super_admin.create_topics([NewTopic(topic, 1)])[topic].result(timeout=15)
    assert produce_error(sasl(sasl_broker, "guest", "guest"), topic) is None  # super user
    bob = new_user(http)  # no AMQP permissions, no ACLs
    config = sasl(sasl_broker, bob, "pw", "SCRAM-SHA-256")
    assert produce_error(config, topic) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    group = unique("g")
    assert consume_error(config, topic, group) in (
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
    )

    create(super_admin, acl(topic, f"User:{bob}", AclOperation.WRITE))
    assert produce_error(config, topic) is None
    create(super_admin, acl(group, f"User:{bob}", AclOperation.READ, resource=ResourceType.GROUP))
    assert consume_error(config, topic, group) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    create(super_admin, acl(topic, f"User:{bob}", AclOperation.READ))
    assert consume_error(config, topic, group) is None


def test_metadata_hides_topics_the_user_may_not_describe(
    sasl_broker: Broker, http: HttpAdmin, super_admin: AdminClient
) -> None:
    seen, hidden = unique("seen"), unique("hidden")
    for name in (seen, hidden):
        super_admin.create_topics([NewTopic(name, 1)])[name].result(timeout=15)
    user = new_user(http)
    create(super_admin, acl(seen, f"User:{user}", AclOperation.READ))  # Read implies Describe
    admin = AdminClient(sasl(sasl_broker, user, "pw"))
    topics = admin.list_topics(timeout=10).topics
    assert seen in topics and hidden not in topics
    named = admin.list_topics(hidden, timeout=10).topics[hidden]
    assert named.error is not None and named.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_amqp_permissions_apply_and_deny_acls_override_them(
    sasl_broker: Broker, http: HttpAdmin, super_admin: AdminClient
) -> None:
    prefix = unique("orders")
    allowed, other = f"{prefix}.eu", unique("billing")
    for name in (allowed, other):
        super_admin.create_topics([NewTopic(name, 1)])[name].result(timeout=15)
    carol = new_user(http)
    http.set_permissions("/", carol, "", f"^{prefix}", f"^{prefix}")
    config = sasl(sasl_broker, carol, "pw")
    assert produce_error(config, allowed) is None
    assert produce_error(config, other) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert consume_error(config, allowed, unique("g")) is None  # groups: any permission in "/"
    # configure is empty: no CreateTopics
    admin = AdminClient(config)
    fresh = f"{prefix}.new"
    with pytest.raises(KafkaException) as info:
        admin.create_topics([NewTopic(fresh, 1)])[fresh].result(timeout=15)
    assert info.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    create(
        super_admin,
        acl(
            prefix,
            f"User:{carol}",
            AclOperation.WRITE,
            AclPermissionType.DENY,
            pattern=ResourcePatternType.PREFIXED,
        ),
    )
    assert produce_error(config, allowed) == KafkaError.TOPIC_AUTHORIZATION_FAILED


def describe_acls_kafka_python(broker: Broker, user: str) -> str:
    """The name of the error kafka-python's describe_acls raises as ``user`` ("" if none)."""
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        KafkaAdminClient,
        ResourcePatternFilter,
    )
    from kafka.admin import ResourceType as KPResourceType

    admin = KafkaAdminClient(
        bootstrap_servers=broker.kafka_bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_plain_username=user,
        sasl_plain_password="pw",
    )
    try:
        pattern = ResourcePatternFilter(KPResourceType.ANY, None, ACLResourcePatternType.ANY)
        admin.describe_acls(ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY, pattern))
    except Exception as exc:
        return type(exc).__name__
    finally:
        admin.close()
    return ""


def test_acl_apis_need_cluster_rights(sasl_broker: Broker, http: HttpAdmin, super_admin: AdminClient) -> None:
    user = new_user(http)
    http.set_permissions("/", user, ".*", ".*", ".*")
    admin = AdminClient(sasl(sasl_broker, user, "pw"))
    binding = acl("x", "User:x", AclOperation.READ)
    with pytest.raises(KafkaException) as info:
        admin.create_acls([binding])[binding].result(timeout=15)
    assert info.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    assert describe_acls_kafka_python(sasl_broker, user) == "ClusterAuthorizationFailedError"
    # (librdkafka drops DescribeAcls' top-level error and answers an empty list)
    create(
        super_admin, acl("kafka-cluster", f"User:{user}", AclOperation.ALTER, resource=ResourceType.BROKER)
    )
    create(admin, binding)  # Alter on the cluster: allowed now
    assert binding in admin.describe_acls(ANY_FILTER).result(timeout=15)  # Alter implies Describe
    assert describe_acls_kafka_python(sasl_broker, user) == ""


def test_group_and_offset_admin_calls_are_checked(
    sasl_broker: Broker, http: HttpAdmin, super_admin: AdminClient
) -> None:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicCollection, TopicPartition
    from confluent_kafka.admin import OffsetSpec

    topic, mine, theirs = unique("off"), unique("mine"), unique("theirs")
    super_admin.create_topics([NewTopic(topic, 1)])[topic].result(timeout=15)
    for group in (mine, theirs):  # two groups with committed offsets, no members
        offsets = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 0)])]
        super_admin.alter_consumer_group_offsets(offsets)[group].result(timeout=15)
    dave = new_user(http)
    create(super_admin, acl(mine, f"User:{dave}", AclOperation.ALL, resource=ResourceType.GROUP))
    admin = AdminClient(sasl(sasl_broker, dave, "pw"))

    listed = {g.group_id for g in admin.list_consumer_groups().result(timeout=15).valid}
    assert mine in listed and theirs not in listed
    described = admin.describe_consumer_groups([mine, theirs])
    assert described[mine].result(timeout=15).group_id == mine
    with pytest.raises(KafkaException) as info:
        described[theirs].result(timeout=15)
    assert info.value.args[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED
    with pytest.raises(KafkaException) as info:
        admin.delete_consumer_groups([theirs])[theirs].result(timeout=15)
    assert info.value.args[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED

    def committed(group: str, partitions: list[TopicPartition] | None = None) -> list[TopicPartition]:
        request = [ConsumerGroupTopicPartitions(group, partitions)]
        return list(admin.list_consumer_group_offsets(request)[group].result(timeout=15).topic_partitions)

    assert committed(mine) == []  # the topic is not described: left out
    [hidden] = committed(mine, [TopicPartition(topic, 0)])
    assert hidden.error is not None and hidden.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    with pytest.raises(KafkaException) as info:
        committed(theirs)
    assert info.value.args[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED

    tp = TopicPartition(topic, 0)
    # librdkafka asks Metadata for the leader first, which refuses the topic (raw frames below
    # check ListOffsets and DeleteRecords themselves)
    with pytest.raises(KafkaException) as info:
        admin.list_offsets({tp: OffsetSpec.latest()})[tp].result(timeout=15)
    assert "No leaders found" in info.value.args[0].str()
    [described] = admin.describe_topics(TopicCollection([topic])).values()
    with pytest.raises(KafkaException) as info:
        described.result(timeout=15)
    assert info.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    create(super_admin, acl(topic, f"User:{dave}", AclOperation.DELETE))  # Delete implies Describe
    admin = AdminClient(sasl(sasl_broker, dave, "pw"))  # librdkafka remembers the refused metadata
    assert [(p.topic, p.offset) for p in committed(mine)] == [(topic, 0)]
    assert admin.list_offsets({tp: OffsetSpec.latest()})[tp].result(timeout=15).offset == 0
    admin.delete_records([TopicPartition(topic, 0, 0)])[tp].result(timeout=15)
    admin.delete_consumer_groups([mine])[mine].result(timeout=15)


def test_an_idempotent_producer_needs_write_somewhere(
    sasl_broker: Broker, http: HttpAdmin, super_admin: AdminClient
) -> None:
    topic = unique("idem")
    super_admin.create_topics([NewTopic(topic, 1)])[topic].result(timeout=15)
    erin = new_user(http)
    errors: list[KafkaError] = []
    p = Producer(
        {
            **sasl(sasl_broker, erin, "pw"),
            "enable.idempotence": True,
            "error_cb": errors.append,
            "log_level": 0,
        }
    )
    p.produce(topic, b"v")
    deadline = time.monotonic() + 10
    while not errors and time.monotonic() < deadline:
        try:
            p.poll(0.1)
        except KafkaException as exc:  # librdkafka raises the fatal error from poll
            errors.append(exc.args[0])
    assert any(e.code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED for e in errors), errors
    create(super_admin, acl(topic, f"User:{erin}", AclOperation.WRITE))
    assert produce_error({**sasl(sasl_broker, erin, "pw"), "enable.idempotence": True}, topic) is None


def test_describe_cluster_reports_the_authorized_operations(tmp_path: Path) -> None:

    broker = Broker(tmp_path / "data", kafka_port=0, amqp_port=-1).start()  # its own: it gets locked
    try:
        check_authorized_operations(broker, AdminClient({"bootstrap.servers": broker.kafka_bootstrap}))
    finally:
        broker.stop()


def check_authorized_operations(broker: Broker, admin: AdminClient) -> None:
    from tests.kafka_frontend.wire import WireClient, request

    def operations() -> int:
        with WireClient(broker.kafka_bootstrap) as client:
            answer = client.call(request(60, 1, include_cluster_authorized_operations=True, endpoint_type=1))
        assert answer.error_code == 0
        return int(answer.cluster_authorized_operations)

    every = {
        AclOperation.CREATE,
        AclOperation.CLUSTER_ACTION,
        AclOperation.DESCRIBE_CONFIGS,
        AclOperation.ALTER_CONFIGS,
        AclOperation.IDEMPOTENT_WRITE,
        AclOperation.ALTER,
        AclOperation.DESCRIBE,
    }
    assert operations() == sum(1 << op.value for op in every)
    deny = acl(
        "kafka-cluster", "User:ANONYMOUS", AclOperation.ALTER, AclPermissionType.DENY, ResourceType.BROKER
    )
    create(admin, deny)
    assert operations() == sum(1 << op.value for op in every - {AclOperation.ALTER})
    # the anonymous admin has locked itself out of the ACL APIs (docs/kafka.md: acls.json)
    with pytest.raises(KafkaException):
        delete_all(admin)


def test_a_denied_transactional_id_cannot_init(
    sasl_broker: Broker, http: HttpAdmin, super_admin: AdminClient
) -> None:
    frank = new_user(http)
    http.set_permissions("/", frank, ".*", ".*", ".*")
    txn = unique("tx")
    create(
        super_admin,
        acl(
            txn,
            f"User:{frank}",
            AclOperation.WRITE,
            AclPermissionType.DENY,
            resource=ResourceType.TRANSACTIONAL_ID,
        ),
    )
    p = Producer({**sasl(sasl_broker, frank, "pw"), "transactional.id": txn, "log_level": 0})
    with pytest.raises(KafkaException) as info:
        p.init_transactions(15)
    assert info.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED


def test_list_offsets_and_delete_records_raw_frames(plain_broker: Broker, plain_admin: AdminClient) -> None:
    import datetime

    from tests.kafka_frontend.wire import WireClient, entity, request

    topic = unique("raw")
    plain_admin.create_topics([NewTopic(topic, 1)])[topic].result(timeout=15)
    create(plain_admin, acl(topic, "User:ANONYMOUS", AclOperation.DESCRIBE, AclPermissionType.DENY))
    create(plain_admin, acl(topic, "User:ANONYMOUS", AclOperation.DELETE, AclPermissionType.DENY))
    part = entity(2, 7, "ListOffsetsPartition", partition_index=0, current_leader_epoch=-1, timestamp=-1)
    list_offsets = request(
        2,
        7,
        replica_id=-1,
        isolation_level=0,
        topics=(entity(2, 7, "ListOffsetsTopic", name=topic, partitions=(part,)),),
    )
    record = entity(21, 2, "DeleteRecordsPartition", partition_index=0, offset=0)
    delete = request(
        21,
        2,
        topics=(entity(21, 2, "DeleteRecordsTopic", name=topic, partitions=(record,)),),
        timeout=datetime.timedelta(seconds=5),
    )
    with WireClient(plain_broker.kafka_bootstrap) as client:
        [listed] = client.call(list_offsets).topics
        [deleted] = client.call(delete).topics
    assert (listed.name, [(p.partition_index, p.error_code) for p in listed.partitions]) == (
        topic,
        [(0, KafkaError.TOPIC_AUTHORIZATION_FAILED)],
    )
    assert (deleted.name, [(p.partition_index, p.error_code) for p in deleted.partitions]) == (
        topic,
        [(0, KafkaError.TOPIC_AUTHORIZATION_FAILED)],
    )
    assert topic not in plain_admin.list_topics(timeout=10).topics  # Metadata hides it from anonymous


def test_offset_delete_needs_read_on_each_topic(plain_broker: Broker, plain_admin: AdminClient) -> None:
    """OffsetDelete: Delete on the group (the whole request) and Read on each topic (its partitions
    TOPIC_AUTHORIZATION_FAILED), as Kafka checks it; the allowed topic's offset goes."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    from tests.kafka_frontend.wire import WireClient, entity, request

    hidden, open_, group = unique("od-hidden"), unique("od-open"), unique("od-g")
    for name in (hidden, open_):
        plain_admin.create_topics([NewTopic(name, 1)])[name].result(timeout=15)
    offsets = [
        ConsumerGroupTopicPartitions(group, [TopicPartition(hidden, 0, 3), TopicPartition(open_, 0, 3)])
    ]
    plain_admin.alter_consumer_group_offsets(offsets)[group].result(timeout=15)
    create(plain_admin, acl(hidden, "User:ANONYMOUS", AclOperation.READ, AclPermissionType.DENY))
    part = entity(47, 0, "OffsetDeleteRequestPartition", partition_index=0)
    delete = request(
        47,
        0,
        group_id=group,
        topics=tuple(
            entity(47, 0, "OffsetDeleteRequestTopic", name=n, partitions=(part,)) for n in (hidden, open_)
        ),
    )
    with WireClient(plain_broker.kafka_bootstrap) as client:
        answer = client.call(delete)
    assert answer.error_code == 0
    errors = {t.name: [(p.partition_index, p.error_code) for p in t.partitions] for t in answer.topics}
    assert errors == {hidden: [(0, KafkaError.TOPIC_AUTHORIZATION_FAILED)], open_: [(0, 0)]}
    left = plain_admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(15)
    assert {(tp.topic, tp.offset) for tp in left.topic_partitions} == {(hidden, 3)}


def test_describe_topic_partitions_hides_or_refuses(plain_broker: Broker, plain_admin: AdminClient) -> None:
    """DescribeTopicPartitions: a topic the principal may not describe is left out of the list of
    all topics, and answered TOPIC_AUTHORIZATION_FAILED (no id, no partitions) when named."""
    from kafka import KafkaAdminClient

    hidden, shown = unique("dtp-hidden"), unique("dtp-shown")
    for name in (hidden, shown):
        plain_admin.create_topics([NewTopic(name, 2)])[name].result(timeout=15)
    create(plain_admin, acl(hidden, "User:ANONYMOUS", AclOperation.DESCRIBE, AclPermissionType.DENY))
    kp = KafkaAdminClient(bootstrap_servers=plain_broker.kafka_bootstrap)
    try:
        named = kp.describe_topic_partitions([hidden, shown])["topics"]
        everything = kp.describe_topic_partitions([])["topics"]  # none named: all topics
    finally:
        kp.close()
    by_name = {t["name"]: t for t in named}
    assert by_name[hidden]["error_code"] == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert by_name[hidden]["partitions"] == []
    assert by_name[shown]["error_code"] == 0 and len(by_name[shown]["partitions"]) == 2
    names = {t["name"] for t in everything}
    assert shown in names and hidden not in names


def test_the_consumer_group_protocol_needs_group_read(
    sasl_broker: Broker, http: HttpAdmin, super_admin: AdminClient
) -> None:
    topic, group = unique("cgp"), unique("cgp-g")
    super_admin.create_topics([NewTopic(topic, 1)])[topic].result(timeout=15)
    assert produce_error(sasl(sasl_broker, "guest", "guest"), topic) is None
    gina = new_user(http)
    create(super_admin, acl(topic, f"User:{gina}", AclOperation.READ))
    config = {**sasl(sasl_broker, gina, "pw"), "group.protocol": "consumer"}
    assert consume_error(config, topic, group) == KafkaError.GROUP_AUTHORIZATION_FAILED
    create(super_admin, acl(group, f"User:{gina}", AclOperation.READ, resource=ResourceType.GROUP))
    assert consume_error(config, topic, group) is None


def test_transactions_need_the_transactional_id_and_the_topics(
    sasl_broker: Broker, http: HttpAdmin, super_admin: AdminClient
) -> None:
    topic, other, txn = unique("txt"), unique("txo"), unique("tx")
    for name in (topic, other):
        super_admin.create_topics([NewTopic(name, 1)])[name].result(timeout=15)
    hank = new_user(http)
    create(
        super_admin,
        acl(txn, f"User:{hank}", AclOperation.WRITE, resource=ResourceType.TRANSACTIONAL_ID),
        acl(topic, f"User:{hank}", AclOperation.WRITE),
    )
    p = Producer({**sasl(sasl_broker, hank, "pw"), "transactional.id": txn, "log_level": 0})
    p.init_transactions(15)
    p.begin_transaction()
    p.produce(topic, b"in a transaction")
    p.commit_transaction(15)

    # a topic without Write (nor Describe): its record fails, the transaction cannot commit
    reports: list[KafkaError | None] = []
    p.begin_transaction()
    p.produce(other, b"refused", on_delivery=lambda err, msg: reports.append(err))
    with pytest.raises(KafkaException):
        p.commit_transaction(15)
    assert [e.code() if e is not None else None for e in reports] == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
