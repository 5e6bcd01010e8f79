"""Share groups (KIP-932), membership: confluent-kafka's ShareConsumer joining and leaving,
ShareGroupHeartbeat/ShareGroupDescribe on the wire, the group-id namespace shared with classic
and consumer groups, ListGroups/DeleteGroups of share groups, ACLs, and group configs
(ConfigResource type GROUP) through the admin client, kept across a restart."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException, ShareConsumer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from jackalope import Broker
from tests.conftest import GUEST_AUTH
from tests.kafka.conftest import unique, wait_until
from tests.kafka_frontend.wire import WireClient, entity, request

HEARTBEAT, DESCRIBE, JOIN_GROUP, CONSUMER_HEARTBEAT, LIST_GROUPS = 76, 77, 11, 68, 16
GROUP_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_FAILED = 30, 29
INCONSISTENT_GROUP_PROTOCOL, GROUP_ID_NOT_FOUND, UNKNOWN_MEMBER_ID, INVALID_REQUEST = 23, 69, 25, 42


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(tmp_path_factory.mktemp("share") / "data", kafka_port=0, amqp_port=-1).start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="module")
def admin(broker: Broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.kafka_bootstrap})


def create_topic(admin: AdminClient, partitions: int = 3) -> str:
    name = unique("share-t")
    for f in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        f.result(timeout=10)
    return name


def heartbeat(bootstrap: str, group: str, member: str, epoch: int, topics: list[str] | None) -> Any:
    with WireClient(bootstrap) as c:
        return c.call(
            request(
                HEARTBEAT,
                1,
                group_id=group,
                member_id=member,
                member_epoch=epoch,
                rack_id=None,
                subscribed_topic_names=tuple(topics) if topics is not None else None,
            )
        )


def describe(bootstrap: str, *groups: str) -> Any:
    with WireClient(bootstrap) as c:
        return c.call(request(DESCRIBE, 1, group_ids=groups, include_authorized_operations=True)).groups


def commit_request(group_id: str, topic: str) -> Any:
    """OffsetCommit v9 of offset 0 of partition 0, outside any generation."""
    return request(
        8,
        9,
        group_id=group_id,
        generation_id_or_member_epoch=-1,
        member_id="",
        group_instance_id=None,
        topics=(
            entity(
                8,
                9,
                "OffsetCommitRequestTopic",
                name=topic,
                partitions=(
                    entity(
                        8,
                        9,
                        "OffsetCommitRequestPartition",
                        partition_index=0,
                        committed_offset=0,
                        committed_leader_epoch=-1,
                        committed_metadata=None,
                    ),
                ),
            ),
        ),
    )


def share_consumer(broker: Broker, group: str, topic: str) -> ShareConsumer:
    sc = ShareConsumer({"bootstrap.servers": broker.kafka_bootstrap, "group.id": group})
    sc.subscribe([topic])
    return sc


def members_of(broker: Broker, group: str, count: int) -> Any:
    def ready() -> Any:
        (g,) = describe(broker.kafka_bootstrap, group)
        return (
            g
            if g.error_code == 0
            and len(g.members) == count
            and all(m.assignment.topic_partitions for m in g.members)
            and all(m.member_epoch == g.assignment_epoch for m in g.members)  # settled
            else None
        )

    return wait_until(ready, 15, f"{count} members in share group {group}")


def test_share_consumers_join_share_partitions_and_leave(broker: Broker, admin: AdminClient) -> None:
    topic, group = create_topic(admin, 3), unique("sg")
    one = share_consumer(broker, group, topic)
    two = share_consumer(broker, group, topic)
    try:
        for _ in range(3):
            one.poll(timeout=0.1)
            two.poll(timeout=0.1)
        g = members_of(broker, group, 2)
        assert (g.group_state, g.assignor_name) == ("Stable", "simple")
        assigned = [
            {(tp.topic_name, p) for tp in m.assignment.topic_partitions for p in tp.partitions}
            for m in g.members
        ]
        assert assigned[0] | assigned[1] == {(topic, p) for p in range(3)}
        assert not assigned[0] & assigned[1]  # enough partitions for one owner each
        assert sorted(m.subscribed_topic_names for m in g.members) == [(topic,), (topic,)]
        assert all(m.member_epoch == g.assignment_epoch for m in g.members)
        # as Kafka's: the admin client lists consumer and classic groups only (types filter)
        listed = {x.group_id for x in admin.list_consumer_groups().result(timeout=10).valid}
        assert group not in listed
    finally:
        one.close()
    wait_until(lambda: len(describe(broker.kafka_bootstrap, group)[0].members) == 1, 10, "one member left")
    two.close()
    wait_until(
        lambda: describe(broker.kafka_bootstrap, group)[0].group_state == "Empty", 10, "an empty group"
    )
    (deleted,) = admin.delete_consumer_groups([group]).values()
    deleted.result(timeout=10)
    assert describe(broker.kafka_bootstrap, group)[0].error_code == GROUP_ID_NOT_FOUND


def test_heartbeat_on_the_wire(broker: Broker, admin: AdminClient) -> None:
    topic, group, member = create_topic(admin, 2), unique("sg"), uuid.uuid4().hex[:22]
    bs = broker.kafka_bootstrap
    joined = heartbeat(bs, group, member, 0, [topic])
    assert joined.error_code == 0 and joined.member_id == member and joined.member_epoch == 1
    assert joined.heartbeat_interval.total_seconds() == 5
    assert sorted(p for tp in joined.assignment.topic_partitions for p in tp.partitions) == [0, 1]
    again = heartbeat(bs, group, member, 1, None)
    assert (again.error_code, again.member_epoch, again.assignment) == (0, 1, None)
    # a second member: each gets one partition at the new epoch; when it leaves, both come back
    second = heartbeat(bs, group, "second", 0, [topic])
    assert second.member_epoch == 2 and len(second.assignment.topic_partitions[0].partitions) == 1
    moved = heartbeat(bs, group, member, 1, None)
    assert moved.member_epoch == 2 and len(moved.assignment.topic_partitions[0].partitions) == 1
    assert heartbeat(bs, group, "second", -1, None).error_code == 0
    back = heartbeat(bs, group, member, 2, None)
    assert back.member_epoch == 3 and sorted(back.assignment.topic_partitions[0].partitions) == [0, 1]
    assert heartbeat(bs, group, "other", 1, None).error_code == UNKNOWN_MEMBER_ID
    bad = heartbeat(bs, group, member + "x", 0, None)
    assert (bad.error_code, bad.error_message) == (
        INVALID_REQUEST,
        "SubscribedTopicNames must be set in first request.",
    )
    # a share group's member id must not be empty (KIP-1082: the client chooses it)
    assert heartbeat(bs, group, "", 0, [topic]).error_code == INVALID_REQUEST
    left = heartbeat(bs, group, member, -1, None)
    assert (left.error_code, left.member_epoch) == (0, -1)
    assert describe(bs, group)[0].group_state == "Empty"
    (missing,) = describe(bs, unique("nothing"))
    assert missing.error_code == GROUP_ID_NOT_FOUND


def test_deleting_a_group_with_members_is_refused(broker: Broker, admin: AdminClient) -> None:
    topic, group = create_topic(admin, 1), unique("sg")
    assert heartbeat(broker.kafka_bootstrap, group, "m1", 0, [topic]).error_code == 0
    (future,) = admin.delete_consumer_groups([group]).values()
    with pytest.raises(KafkaException) as info:
        future.result(timeout=10)
    assert info.value.args[0].name() == "NON_EMPTY_GROUP"
    heartbeat(broker.kafka_bootstrap, group, "m1", -1, None)


def test_one_group_id_namespace(broker: Broker, admin: AdminClient) -> None:
    topic, share, classic = create_topic(admin, 1), unique("sg"), unique("classic")
    bs = broker.kafka_bootstrap
    assert heartbeat(bs, share, "m1", 0, [topic]).error_code == 0
    with WireClient(bs) as c:
        join = c.call(
            request(
                JOIN_GROUP,
                9,
                group_id=share,
                session_timeout=timedelta(seconds=10),
                rebalance_timeout=timedelta(seconds=10),
                member_id="",
                group_instance_id=None,
                protocol_type="consumer",
                protocols=(entity(JOIN_GROUP, 9, "JoinGroupRequestProtocol", name="range", metadata=b""),),
                reason=None,
            )
        )
        assert join.error_code == INCONSISTENT_GROUP_PROTOCOL
        consumer = c.call(
            request(
                CONSUMER_HEARTBEAT,
                1,
                group_id=share,
                member_id="",
                member_epoch=0,
                instance_id=None,
                rack_id=None,
                rebalance_timeout=timedelta(seconds=10),
                subscribed_topic_names=(topic,),
                subscribed_topic_regex=None,
                server_assignor=None,
                topic_partitions=(),
            )
        )
        assert (consumer.error_code, consumer.error_message) == (
            GROUP_ID_NOT_FOUND,
            f"Group {share} is not a consumer group",
        )
        # the reverse: a classic group (here: one with committed offsets only) is not a share group;
        # and a share group has no committed offsets (GROUP_ID_NOT_FOUND)
        for group_id, expected in ((classic, 0), (share, GROUP_ID_NOT_FOUND)):
            committed = c.call(commit_request(group_id, topic))
            assert committed.topics[0].partitions[0].error_code == expected
    refused = heartbeat(bs, classic, "m1", 0, [topic])
    assert (refused.error_code, refused.error_message) == (
        GROUP_ID_NOT_FOUND,
        f"Group {classic} is not a share group.",
    )
    (described,) = describe(bs, classic)
    assert (described.error_code, described.error_message) == (
        GROUP_ID_NOT_FOUND,
        f"Group {classic} is not a share group.",
    )
    with WireClient(bs) as c:
        listed = c.call(request(LIST_GROUPS, 5, states_filter=(), types_filter=("share",))).groups
    shares = {g.group_id: g for g in listed}
    assert (
        classic not in shares
        and shares[share].protocol_type == "share"
        and shares[share].group_type == "share"
    )
    heartbeat(bs, share, "m1", -1, None)


def test_heartbeat_needs_read_on_the_group_and_describe_on_the_topics(
    broker: Broker, admin: AdminClient
) -> None:
    topic, secret, group = create_topic(admin, 1), create_topic(admin, 1), unique("denied")
    deny = [
        AclBinding(
            ResourceType.GROUP,
            group,
            ResourcePatternType.LITERAL,
            "User:ANONYMOUS",
            "*",
            AclOperation.READ,
            AclPermissionType.DENY,
        ),
        AclBinding(
            ResourceType.TOPIC,
            secret,
            ResourcePatternType.LITERAL,
            "User:ANONYMOUS",
            "*",
            AclOperation.DESCRIBE,
            AclPermissionType.DENY,
        ),
        AclBinding(
            ResourceType.GROUP,
            group,
            ResourcePatternType.LITERAL,
            "User:ANONYMOUS",
            "*",
            AclOperation.DESCRIBE,
            AclPermissionType.DENY,
        ),
    ]
    for f in admin.create_acls(deny).values():
        f.result(timeout=10)
    try:
        bs = broker.kafka_bootstrap
        assert heartbeat(bs, group, "m1", 0, [topic]).error_code == GROUP_AUTHORIZATION_FAILED
        refused = heartbeat(bs, unique("sg"), "m1", 0, [topic, secret])
        assert refused.error_code == TOPIC_AUTHORIZATION_FAILED and secret in refused.error_message
        assert describe(bs, group)[0].error_code == GROUP_AUTHORIZATION_FAILED
    finally:
        filters = [
            AclBindingFilter(
                *(
                    getattr(b, f)
                    for f in (
                        "restype",
                        "name",
                        "resource_pattern_type",
                        "principal",
                        "host",
                        "operation",
                        "permission_type",
                    )
                )
            )
            for b in deny
        ]
        for f in admin.delete_acls(filters).values():
            f.result(timeout=10)


# -- group configs ----------------------------------------------------------------------------------


def group_resource(group: str, **values: str) -> ConfigResource:
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in values.items()]
    return ConfigResource(ResourceType.GROUP, group, incremental_configs=entries)


def group_configs(admin: AdminClient, group: str) -> dict[str, ConfigEntry]:
    (future,) = admin.describe_configs([ConfigResource(ResourceType.GROUP, group)]).values()
    return dict(future.result(timeout=10))


def test_group_configs_set_described_and_validated(broker: Broker, admin: AdminClient) -> None:
    group = unique("cfg")  # configs may precede the group
    defaults = group_configs(admin, group)
    assert defaults["share.auto.offset.reset"].value == "latest"
    assert defaults["share.record.lock.duration.ms"].value == "30000"
    assert defaults["share.delivery.count.limit"].is_default
    for f in admin.incremental_alter_configs(
        [group_resource(group, **{"share.auto.offset.reset": "earliest", "share.delivery.count.limit": "3"})]
    ).values():
        f.result(timeout=10)
    after = group_configs(admin, group)
    assert after["share.auto.offset.reset"].value == "earliest"
    assert not after["share.auto.offset.reset"].is_default
    assert after["share.auto.offset.reset"].source == ConfigSource.GROUP_CONFIG.value
    assert after["share.delivery.count.limit"].value == "3"
    (bad,) = admin.incremental_alter_configs(
        [group_resource(group, **{"share.record.lock.duration.ms": "10"})]
    ).values()
    with pytest.raises(KafkaException) as info:
        bad.result(timeout=10)
    error = info.value.args[0]
    assert error.name() == "INVALID_CONFIG" and "Invalid value 10" in error.str()
    (unknown,) = admin.incremental_alter_configs([group_resource(group, **{"no.such.config": "1"})]).values()
    with pytest.raises(KafkaException, match="Unknown group config name"):
        unknown.result(timeout=10)
    reset = ConfigResource(
        ResourceType.GROUP,
        group,
        incremental_configs=[
            ConfigEntry("share.delivery.count.limit", None, incremental_operation=AlterConfigOpType.DELETE)
        ],
    )
    for f in admin.incremental_alter_configs([reset]).values():
        f.result(timeout=10)
    assert group_configs(admin, group)["share.delivery.count.limit"].is_default


def test_group_configs_and_share_groups_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    group = unique("persist")
    b = Broker(data, kafka_port=0, amqp_port=-1).start()
    try:
        admin = AdminClient({"bootstrap.servers": b.kafka_bootstrap})
        topic = create_topic(admin, 1)
        assert heartbeat(b.kafka_bootstrap, group, "m1", 0, [topic]).error_code == 0
        for f in admin.incremental_alter_configs(
            [group_resource(group, **{"share.isolation.level": "read_committed"})]
        ).values():
            f.result(timeout=10)
    finally:
        b.stop()
    b = Broker(data, kafka_port=0, amqp_port=-1).start()
    try:
        admin = AdminClient({"bootstrap.servers": b.kafka_bootstrap})
        assert group_configs(admin, group)["share.isolation.level"].value == "read_committed"
        (g,) = describe(b.kafka_bootstrap, group)
        assert (g.error_code, g.group_state) == (0, "Empty")
        assert heartbeat(b.kafka_bootstrap, group, "m1", 1, None).error_code == UNKNOWN_MEMBER_ID
    finally:
        b.stop()


def test_api_versions_advertise_share_group_apis(broker: Broker) -> None:
    with WireClient(broker.kafka_bootstrap) as c:
        keys = {
            k.api_key: (k.min_version, k.max_version)
            for k in c.call(request(18, 3, client_software_name="t", client_software_version="1")).api_keys
        }
    assert keys[HEARTBEAT] == (1, 1) and keys[DESCRIBE] == (1, 1)


def test_consumer_group_configs_apply_to_consumer_groups(broker: Broker, admin: AdminClient) -> None:
    topic, group = create_topic(admin, 1), unique("cg")
    values = {"consumer.heartbeat.interval.ms": "6000", "consumer.session.timeout.ms": "50000"}
    for f in admin.incremental_alter_configs([group_resource(group, **values)]).values():
        f.result(timeout=10)
    changed = {str(e) for e in group_configs(admin, group).values() if not e.is_default}
    assert changed == {'consumer.heartbeat.interval.ms="6000"', 'consumer.session.timeout.ms="50000"'}
    with WireClient(broker.kafka_bootstrap) as c:
        joined = c.call(
            request(
                CONSUMER_HEARTBEAT,
                1,
                group_id=group,
                member_id=uuid.uuid4().hex[:22],
                member_epoch=0,
                instance_id=None,
                rack_id=None,
                rebalance_timeout=timedelta(seconds=10),
                subscribed_topic_names=(topic,),
                subscribed_topic_regex=None,
                server_assignor=None,
                topic_partitions=(),
            )
        )
    assert joined.error_code == 0 and joined.heartbeat_interval == timedelta(seconds=6)


def test_the_http_api_shows_share_groups(broker: Broker, admin: AdminClient) -> None:
    topic, group = create_topic(admin, 2), unique("sg")
    assert heartbeat(broker.kafka_bootstrap, group, "m1", 0, [topic]).error_code == 0

    def get(path: str) -> Any:
        req = urllib.request.Request(broker.http_url + path, headers={"Authorization": GUEST_AUTH})
        with urllib.request.urlopen(req, timeout=10) as answer:
            return json.load(answer)

    (listed,) = [g for g in get("/api/kafka/groups") if g["group_id"] == group]
    assert (listed["state"], listed["protocol_type"], listed["members"]) == ("Stable", "share", 1)
    described = get(f"/api/kafka/groups/{group}")
    assert described["protocol"] == "simple" and described["members"][0]["member_id"] == "m1"
    heartbeat(broker.kafka_bootstrap, group, "m1", -1, None)
