"""The API versions a Kafka 4.2 broker offers: kafka-python infers 4.2 from them (it knows 4.2
by ListOffsets v11), no API is offered beyond what Kafka 4.2 offers, and ListOffsets v11's new
timestamp (-6, earliest pending upload, KIP-1023) is answered as Kafka answers it without tiered
storage."""

from __future__ import annotations

import datetime
from typing import Any

from confluent_kafka import Producer
from kafka.protocol.broker_version_data import BROKER_API_VERSIONS, infer_broker_version_from_api_versions

from jackalope import Broker
from tests.kafka_frontend.conftest import unique
from tests.kafka_frontend.wire import WireClient, entity, request

LIST_OFFSETS, API_VERSIONS = 2, 18


def offered(bootstrap: str) -> dict[int, tuple[int, int]]:
    with WireClient(bootstrap) as client:
        response = client.call(
            request(API_VERSIONS, 3, client_software_name="test", client_software_version="1")
        )
    assert response.error_code == 0
    return {int(k.api_key): (int(k.min_version), int(k.max_version)) for k in response.api_keys}


def test_kafka_python_infers_kafka_4_2(bootstrap: str) -> None:
    from kafka import KafkaAdminClient

    assert infer_broker_version_from_api_versions(offered(bootstrap)) == (4, 2)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        assert admin._client.check_version() == (4, 2)  # what its test_kafka_version_infer checks
    finally:
        admin.close()


def test_nothing_is_offered_beyond_kafka_4_2(bootstrap: str) -> None:
    """Each API served is one Kafka 4.2 serves, at versions it serves (kafka-python's table of
    Kafka 4.2's ApiVersions answer); ListOffsets and ListConfigResources at Kafka 4.2's newest."""
    kafka_4_2 = BROKER_API_VERSIONS[(4, 2)]
    ours = offered(bootstrap)
    for key, (low, high) in ours.items():
        assert key in kafka_4_2, f"API {key} is not a Kafka 4.2 API"
        kafka_low, kafka_high = kafka_4_2[key]
        assert kafka_low <= low <= high <= kafka_high, (
            f"API {key}: {low}-{high} vs Kafka {kafka_low}-{kafka_high}"
        )
    assert ours[LIST_OFFSETS] == (1, 11)
    assert ours[74] == kafka_4_2[74] == (0, 1)  # ListConfigResources (KIP-1142)


def list_offsets(bootstrap: str, version: int, topic: str, timestamp: int) -> Any:
    part = entity(LIST_OFFSETS, version, "ListOffsetsPartition", partition_index=0, timestamp=timestamp)
    topics = (entity(LIST_OFFSETS, version, "ListOffsetsTopic", name=topic, partitions=(part,)),)
    with WireClient(bootstrap) as client:
        response = client.call(
            request(
                LIST_OFFSETS,
                version,
                replica_id=-1,
                isolation_level=0,
                topics=topics,
                timeout=datetime.timedelta(seconds=5),
            )
        )
    return response.topics[0].partitions[0]


def test_list_offsets_v11(broker: Broker, bootstrap: str) -> None:
    topic = unique("v11")
    broker.server.core.topics.create(topic, 1)  # type: ignore[union-attr]

    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(3):
        producer.produce(topic, value=b"%d" % i)
    assert producer.flush(10) == 0
    latest = list_offsets(bootstrap, 11, topic, -1)
    assert (latest.error_code, latest.offset) == (0, 3)
    assert list_offsets(bootstrap, 11, topic, -2).offset == 0
    pending = list_offsets(bootstrap, 11, topic, -6)  # no tiered storage: nothing pending upload
    assert (pending.error_code, pending.timestamp, pending.offset) == (0, -1, -1)
    older = list_offsets(bootstrap, 10, topic, -6)  # before v11 -6 is no special timestamp
    assert older.error_code != 0
