"""What a Kafka 4 broker offers: its API versions (the clients see a 4.x broker), topic ids in
Produce v13 and Fetch v13+, ListOffsets v9/v10 and isolation levels, Metadata v13, and the
coordinators' logs shown as internal topics."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest

from tests.kafka.conftest import confluent_producer, create_topic, wait_until
from tests.kafka.wire import record_batch
from tests.kafka_frontend.wire import WireClient, entity, request

PRODUCE, FETCH, LIST_OFFSETS, METADATA, OFFSET_COMMIT, API_VERSIONS = 0, 1, 2, 3, 8, 18
UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC_EXCEPTION, UNKNOWN_TOPIC_ID = 3, 17, 100

# What Apache Kafka 4.2 offers of the APIs served here (KIP-896 removed the oldest versions).
KAFKA_4_2 = {
    0: (3, 13),  # Produce (v13: topic ids)
    1: (4, 18),  # Fetch (v13+: topic ids)
    2: (1, 11),  # ListOffsets (v11: earliest pending upload, KIP-1023)
    3: (0, 13),  # Metadata
    10: (0, 6),  # FindCoordinator
    12: (0, 4),  # Heartbeat
    13: (0, 5),  # LeaveGroup
    14: (0, 5),  # SyncGroup
    16: (0, 5),  # ListGroups
    17: (0, 1),  # SaslHandshake
    18: (0, 4),  # ApiVersions
    19: (2, 7),  # CreateTopics
    20: (1, 6),  # DeleteTopics
    21: (0, 2),  # DeleteRecords
    32: (1, 4),  # DescribeConfigs
    36: (0, 2),  # SaslAuthenticate
    60: (0, 2),  # DescribeCluster
}


def api_versions(bootstrap: str) -> dict[int, tuple[int, int]]:
    with WireClient(bootstrap) as client:
        response = client.call(
            request(API_VERSIONS, 3, client_software_name="test", client_software_version="1")
        )
    assert response.error_code == 0
    return {int(k.api_key): (int(k.min_version), int(k.max_version)) for k in response.api_keys}


def test_api_versions_are_kafka_4s(bootstrap: str) -> None:
    offered = api_versions(bootstrap)
    for key, versions in KAFKA_4_2.items():
        assert offered.get(key) == versions, f"API {key}"


def test_kafka_python_infers_a_kafka_4_broker(bootstrap: str) -> None:
    from kafka.protocol.broker_version_data import infer_broker_version_from_api_versions

    from kafka import KafkaAdminClient

    assert infer_broker_version_from_api_versions(api_versions(bootstrap)) >= (4, 0)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        assert admin._client.check_version() >= (4, 0)
    finally:
        admin.close()


def topic_id(client: WireClient, name: str) -> uuid.UUID:
    response = client.call(
        request(
            METADATA,
            12,
            topics=(entity(METADATA, 12, "MetadataRequestTopic", name=name, topic_id=None),),
            allow_auto_topic_creation=False,
            include_topic_authorized_operations=False,
        )
    )
    return uuid.UUID(str(response.topics[0].topic_id))


def produce_by_id(client: WireClient, tid: uuid.UUID, values: list[bytes]) -> Any:
    data = entity(PRODUCE, 13, "PartitionProduceData", index=0, records=record_batch(values))
    return client.call(
        request(
            PRODUCE,
            13,
            transactional_id=None,
            acks=-1,
            timeout=datetime.timedelta(seconds=10),
            topic_data=(entity(PRODUCE, 13, "TopicProduceData", topic_id=tid, partition_data=(data,)),),
        )
    )


def fetch_request(version: int, topics: list[tuple[Any, int, int]], **extra: Any) -> Any:
    """``topics``: (topic id or name, partition, fetch offset)."""
    ids = version >= 13
    fields: dict[str, Any] = {
        "max_wait": datetime.timedelta(milliseconds=0),
        "min_bytes": 0,
        "max_bytes": 1 << 20,
        "isolation_level": 0,
        "session_id": 0,
        "session_epoch": -1,
        "forgotten_topics_data": (),
        "rack_id": "",
        "replica_id": -1,
    }
    fields.update(extra)
    wanted = tuple(
        entity(
            FETCH,
            version,
            "FetchTopic",
            **({"topic_id": key} if ids else {"topic": key}),
            partitions=(
                entity(
                    FETCH, version, "FetchPartition", partition=p, fetch_offset=o, partition_max_bytes=1 << 20
                ),
            ),
        )
        for key, p, o in topics
    )
    return request(FETCH, version, topics=wanted, **_present(version, fields))


def _present(version: int, fields: dict[str, Any]) -> dict[str, Any]:
    from tests.kafka_frontend.wire import request_module

    cls = request_module(FETCH, version).FetchRequest
    return {k: v for k, v in fields.items() if k in cls.__dataclass_fields__}


def test_produce_and_fetch_by_topic_id(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic)
    with WireClient(bootstrap) as client:
        tid = topic_id(client, topic)
        produced = produce_by_id(client, tid, [b"a", b"b"])
        (result,) = produced.responses
        assert result.topic_id == tid and result.partition_responses[0].error_code == 0
        for version in (13, 15, 17, 18):
            response = client.call(fetch_request(version, [(tid, 0, 0)]))
            (t,) = response.responses
            assert t.topic_id == tid
            (p,) = t.partitions
            assert (p.error_code, p.high_watermark, p.last_stable_offset) == (0, 2, 2)
            assert p.aborted_transactions is None, "read_uncommitted: null, as Kafka sends"
            assert p.records, f"v{version} returns the batch"
        # v12 names topics
        response = client.call(fetch_request(12, [(topic, 0, 0)]))
        assert response.responses[0].topic == topic and response.responses[0].partitions[0].records


def test_unknown_topic_ids(bootstrap: str) -> None:
    stranger = uuid.uuid4()
    with WireClient(bootstrap) as client:
        produced = produce_by_id(client, stranger, [b"x"])
        assert produced.responses[0].partition_responses[0].error_code == UNKNOWN_TOPIC_ID
        response = client.call(fetch_request(17, [(stranger, 0, 0)]))
        (t,) = response.responses
        assert t.topic_id == stranger and t.partitions[0].error_code == UNKNOWN_TOPIC_ID


def test_fetch_read_committed_without_transactions(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic)
    p = confluent_producer(bootstrap)
    for i in range(3):
        p.produce(topic, value=b"v%d" % i)
    assert p.flush(10) == 0
    with WireClient(bootstrap) as client:
        response = client.call(fetch_request(12, [(topic, 0, 0)], isolation_level=1))
        part = response.responses[0].partitions[0]
        assert (part.high_watermark, part.last_stable_offset) == (3, 3)
        assert part.aborted_transactions == (), "read_committed: a list, empty without aborts"
        assert part.records


def list_offsets(client: WireClient, version: int, topic: str, timestamp: int, isolation: int = 0) -> Any:
    fields: dict[str, Any] = {"replica_id": -1, "isolation_level": isolation}
    if version >= 10:
        fields["timeout"] = datetime.timedelta(seconds=5)
    part = entity(LIST_OFFSETS, version, "ListOffsetsPartition", partition_index=0, timestamp=timestamp)
    response = client.call(
        request(
            LIST_OFFSETS,
            version,
            topics=(entity(LIST_OFFSETS, version, "ListOffsetsTopic", name=topic, partitions=(part,)),),
            **fields,
        )
    )
    return response.topics[0].partitions[0]


def test_list_offsets_v9_v10(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic)
    p = confluent_producer(bootstrap)
    for i in range(4):
        p.produce(topic, value=b"v%d" % i)
    assert p.flush(10) == 0
    with WireClient(bootstrap) as client:
        for version in (9, 10):
            latest = list_offsets(client, version, topic, -1)
            assert (latest.error_code, latest.offset) == (0, 4)
            committed = list_offsets(client, version, topic, -1, isolation=1)
            assert committed.offset == 4, "no open transaction: the last stable offset is the end"
            assert list_offsets(client, version, topic, -2).offset == 0
            assert list_offsets(client, version, topic, -4).offset == 0, "earliest local"
            tiered = list_offsets(client, version, topic, -5)
            assert (tiered.error_code, tiered.offset) == (0, -1), "no tiered storage: none"


def metadata_v13(client: WireClient, names: list[str] | None) -> Any:
    topics = (
        None
        if names is None
        else tuple(entity(METADATA, 13, "MetadataRequestTopic", name=n, topic_id=None) for n in names)
    )
    return client.call(
        request(
            METADATA,
            13,
            topics=topics,
            allow_auto_topic_creation=False,
            include_topic_authorized_operations=False,
        )
    )


def test_metadata_v13_and_internal_topics(bootstrap: str, topic: str, group: str) -> None:
    from confluent_kafka import Consumer, TopicPartition

    create_topic(bootstrap, topic)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
    finally:
        consumer.close()
    with WireClient(bootstrap) as client:
        response = metadata_v13(client, None)
        assert response.error_code == 0
        by_name = {t.name: t for t in response.topics}
        assert not by_name[topic].is_internal
        offsets = by_name["__consumer_offsets"]
        assert offsets.is_internal and offsets.error_code == 0 and len(offsets.partitions) == 1
        (named,) = metadata_v13(client, ["__consumer_offsets"]).topics
        assert named.is_internal and named.topic_id == offsets.topic_id
        # clients may not write to it
        data = entity(PRODUCE, 12, "PartitionProduceData", index=0, records=record_batch([b"x"]))
        produced = client.call(
            request(
                PRODUCE,
                12,
                transactional_id=None,
                acks=-1,
                timeout=datetime.timedelta(seconds=10),
                topic_data=(
                    entity(
                        PRODUCE, 12, "TopicProduceData", name="__consumer_offsets", partition_data=(data,)
                    ),
                ),
            )
        )
        assert produced.responses[0].partition_responses[0].error_code == INVALID_TOPIC_EXCEPTION
        # ...but may read it
        fetched = client.call(fetch_request(12, [("__consumer_offsets", 0, 0)]))
        assert fetched.responses[0].partitions[0].error_code == 0
        assert fetched.responses[0].partitions[0].records


def test_internal_topic_names_are_not_user_topics(kafka_broker: Any, bootstrap: str) -> None:
    """A user topic may not take an internal topic's name, by CreateTopics or by auto-creation."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for name in ("__consumer_offsets", "__transaction_state"):
        with pytest.raises(KafkaException) as refused:
            admin.create_topics([NewTopic(name, 1, 1)])[name].result(15)
        assert refused.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
        with WireClient(bootstrap) as client:
            entry = entity(METADATA, 12, "MetadataRequestTopic", name=name, topic_id=None)
            client.call(
                request(
                    METADATA,
                    12,
                    topics=(entry,),
                    allow_auto_topic_creation=True,
                    include_topic_authorized_operations=False,
                )
            )
        assert kafka_broker.server.core.topics.get(name) is None


@pytest.mark.parametrize("client_name", ["confluent", "kafka-python", "aiokafka"])
def test_clients_round_trip(bootstrap: str, topic: str, client_name: str) -> None:
    """Each client, at the versions it picks against a Kafka 4 broker, produces and consumes."""
    from confluent_kafka import Consumer

    create_topic(bootstrap, topic)
    values = [b"m%d" % i for i in range(5)]
    if client_name == "confluent":
        p = confluent_producer(bootstrap)
        for v in values:
            p.produce(topic, value=v)
        assert p.flush(10) == 0
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "auto.offset.reset": "earliest"})
        c.subscribe([topic])
        got: list[bytes] = []
        try:

            def poll() -> bool:
                m = c.poll(0.5)
                if m is not None and m.error() is None:
                    got.append(m.value())
                return len(got) >= len(values)

            wait_until(poll, 20, "confluent consumer")
        finally:
            c.close()
        assert got == values
    elif client_name == "kafka-python":
        from kafka import KafkaConsumer, KafkaProducer

        producer = KafkaProducer(bootstrap_servers=bootstrap)
        for v in values:
            producer.send(topic, v)
        producer.flush(10)
        producer.close()
        consumer = KafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=10000
        )
        try:
            got = [m.value for _, m in zip(values, consumer, strict=False)]
        finally:
            consumer.close()
        assert got == values
    else:
        import asyncio

        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        async def run() -> list[bytes]:
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
            await producer.start()
            try:
                for v in values:
                    await producer.send_and_wait(topic, v)
            finally:
                await producer.stop()
            consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
            await consumer.start()
            try:
                out = []
                async for m in consumer:
                    out.append(m.value)
                    if len(out) == len(values):
                        return out
            finally:
                await consumer.stop()
            return out

        assert asyncio.run(run()) == values


def test_kafka_python_consumes_through_an_incremental_fetch_session(bootstrap: str, topic: str) -> None:
    """kafka-python opens a fetch session (KIP-227) and keeps consuming with incremental
    fetches across partitions, some of which have nothing new in most responses."""
    from kafka import KafkaConsumer, KafkaProducer

    create_topic(bootstrap, topic, partitions=3)
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=100
    )
    try:
        got: list[bytes] = []
        for round_ in range(4):
            values = [b"r%d-%d" % (round_, i) for i in range(3)]
            for i, v in enumerate(values):
                producer.send(topic, v, partition=(round_ + i) % 2)  # partition 2 stays empty
            producer.flush(10)

            def poll(want: int = len(got) + len(values)) -> bool:
                for records in consumer.poll(timeout_ms=200).values():
                    got.extend(r.value for r in records)
                return len(got) >= want

            wait_until(poll, 20, f"round {round_}")
        assert sorted(got) == sorted(b"r%d-%d" % (r, i) for r in range(4) for i in range(3))
        handler = consumer._fetcher._session_handlers[0]
        assert handler.next_metadata.session_id != 0, "a session was opened"
        assert handler.next_metadata.epoch > 2, "and continued incrementally"
    finally:
        consumer.close()
        producer.close()


# -- OffsetForLeaderEpoch, DescribeTopicPartitions, OffsetDelete ---------------------------------

OFFSET_FOR_LEADER_EPOCH = 23
FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH = 74, 75


def test_offset_for_leader_epoch(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic)
    p = confluent_producer(bootstrap)
    for i in range(3):
        p.produce(topic, value=b"v%d" % i)
    assert p.flush(10) == 0

    def ask(version: int, name: str, leader_epoch: int, current: int = -1, partition: int = 0) -> Any:
        part = entity(
            OFFSET_FOR_LEADER_EPOCH,
            version,
            "OffsetForLeaderPartition",
            partition=partition,
            current_leader_epoch=current,
            leader_epoch=leader_epoch,
        )
        fields: dict[str, Any] = {"replica_id": -1} if version >= 3 else {}
        response = client.call(
            request(
                OFFSET_FOR_LEADER_EPOCH,
                version,
                topics=(
                    entity(
                        OFFSET_FOR_LEADER_EPOCH,
                        version,
                        "OffsetForLeaderTopic",
                        topic=name,
                        partitions=(part,),
                    ),
                ),
                **fields,
            )
        )
        r = response.topics[0].partitions[0]
        return (r.error_code, r.leader_epoch, r.end_offset)

    with WireClient(bootstrap) as client:
        for version in (2, 3, 4):
            assert ask(version, topic, 0) == (0, 0, 3), "epoch 0 ends at the log end"
            assert ask(version, topic, 0, current=0) == (0, 0, 3)
            assert ask(version, topic, 1) == (0, -1, -1), "an unknown (later) epoch: undefined"
            assert ask(version, topic, -1) == (0, -1, -1)
            assert ask(version, topic, 0, current=1)[0] == UNKNOWN_LEADER_EPOCH
            assert ask(version, topic, 0, partition=5)[0] == UNKNOWN_TOPIC_OR_PARTITION
            assert ask(version, "no-such-topic-here", 0)[0] == UNKNOWN_TOPIC_OR_PARTITION


def test_describe_topic_partitions_pages_with_a_cursor(bootstrap: str, topic: str) -> None:
    from kafka import KafkaAdminClient

    first, second = topic + "-a", topic + "-b"
    create_topic(bootstrap, first, partitions=3)
    create_topic(bootstrap, second, partitions=2)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        wanted = [second, first, topic + "-missing"]
        page = admin.describe_topic_partitions(wanted, response_partition_limit=2)
        assert [(t["name"], [p["partition_index"] for p in t["partitions"]]) for t in page["topics"]] == [
            (first, [0, 1])
        ]
        assert page["next_cursor"] == {"topic_name": first, "partition_index": 2}
        page = admin.describe_topic_partitions(wanted, response_partition_limit=1, cursor=page["next_cursor"])
        assert [(t["name"], [p["partition_index"] for p in t["partitions"]]) for t in page["topics"]] == [
            (first, [2])
        ]
        assert page["next_cursor"] == {"topic_name": second, "partition_index": 0}, "next topic, from 0"
        page = admin.describe_topic_partitions(wanted, cursor=page["next_cursor"])
        names = [(t["name"], t["error_code"], len(t["partitions"])) for t in page["topics"]]
        assert names == [(second, 0, 2), (topic + "-missing", UNKNOWN_TOPIC_OR_PARTITION, 0)]
        assert page["next_cursor"] is None
        described = page["topics"][0]
        assert described["partitions"][0]["leader_id"] == 0 and described["partitions"][0]["isr_nodes"] == [0]
        assert not described["is_internal"] and described["topic_id"]
    finally:
        admin.close()


def test_offset_delete(bootstrap: str, topic: str, group: str) -> None:
    from confluent_kafka import Consumer, TopicPartition
    from kafka.errors import GroupIdNotFoundError

    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KTP

    other = topic + "-other"
    create_topic(bootstrap, topic, partitions=2)
    create_topic(bootstrap, other)
    committer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    committer.commit(
        offsets=[TopicPartition(topic, 0, 5), TopicPartition(topic, 1, 6), TopicPartition(other, 0, 7)],
        asynchronous=False,
    )
    committer.close()
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        results = admin.delete_group_offsets(group, [KTP(topic, 0), KTP(topic + "-none", 0)])
        assert {tp: getattr(e, "errno", 0) for tp, e in results.items()} == {
            KTP(topic, 0): 0,
            KTP(topic + "-none", 0): UNKNOWN_TOPIC_OR_PARTITION,
        }
        reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
        left = reader.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
        reader.close()
        assert [tp.offset for tp in left] == [-1001, 6], "partition 0's offset is gone"

        # a member subscribed to the topic: its offsets stay
        member = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"}
        )
        member.subscribe([topic])
        try:
            wait_until(lambda: member.poll(0.2) is None and bool(member.assignment()), 20, "assignment")
            results = admin.delete_group_offsets(group, [KTP(topic, 1), KTP(other, 0)])
            assert {tp: getattr(e, "errno", 0) for tp, e in results.items()} == {
                KTP(topic, 1): 86,  # GROUP_SUBSCRIBED_TO_TOPIC
                KTP(other, 0): 0,
            }
        finally:
            member.close()
        with pytest.raises(GroupIdNotFoundError):
            admin.delete_group_offsets(group + "-none", [KTP(topic, 0)])
    finally:
        admin.close()


def test_describe_cluster_v2(bootstrap: str) -> None:
    with WireClient(bootstrap) as client:
        response = client.call(
            request(
                60,
                2,
                include_cluster_authorized_operations=False,
                endpoint_type=1,
                include_fenced_brokers=True,
            )
        )
    assert response.error_code == 0
    assert [(b.broker_id, b.is_fenced) for b in response.brokers] == [(0, False)]
