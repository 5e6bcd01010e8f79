"""The Kafka side of the metrics, named, typed, labelled and described as kafka_exporter
(danielqsj/kafka_exporter) does, so its dashboards and alerts work: brokers, topics and
partitions (log-end and log-start offsets), and each consumer group's members, committed
offsets and lag.  Lag is :mod:`jackalope.core.groups.lag`'s, never recomputed here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from prometheus_client.metrics_core import Metric

from jackalope.core import BrokerCore
from jackalope.core.groups.lag import all_lags
from jackalope.http.metrics_text import Labels, family, gauge

KAFKA_NODE_ID: Final = "0"


def kafka_families(core: BrokerCore, kafka_address: str) -> Iterator[Metric]:
    groups = core.groups
    assert groups is not None
    topics = core.topics
    yield gauge("kafka_brokers", "Number of Brokers in the Kafka Cluster.", 1)
    yield family(
        "kafka_broker_info",
        "gauge",
        "Information about the Kafka Broker.",
        [({"id": KAFKA_NODE_ID, "address": kafka_address}, 1)],
    )
    partitions: list[tuple[Labels, float]] = []
    current: list[tuple[Labels, float]] = []
    oldest: list[tuple[Labels, float]] = []
    leader: list[tuple[Labels, float]] = []
    replicas: list[tuple[Labels, float]] = []
    in_sync: list[tuple[Labels, float]] = []
    preferred: list[tuple[Labels, float]] = []
    under: list[tuple[Labels, float]] = []
    partition_labels: dict[tuple[str, int], Labels] = {}
    for topic in sorted(topics, key=lambda t: t.name):
        partitions.append(({"topic": topic.name}, len(topic.partitions)))
        for p, log in enumerate(topic.partitions):
            labels = partition_labels[topic.name, p] = {"topic": topic.name, "partition": str(p)}
            current.append((labels, log.end_offset))
            oldest.append((labels, log.start_offset))
            leader.append((labels, 0))
            replicas.append((labels, 1))
            in_sync.append((labels, 1))
            preferred.append((labels, 1))
            under.append((labels, 0))
    yield family("kafka_topic_partitions", "gauge", "Number of partitions for this Topic", partitions)
    yield family(
        "kafka_topic_partition_current_offset",
        "gauge",
        "Current Offset of a Broker at Topic/Partition",
        current,
    )
    yield family(
        "kafka_topic_partition_oldest_offset",
        "gauge",
        "Oldest Offset of a Broker at Topic/Partition",
        oldest,
    )
    yield family("kafka_topic_partition_leader", "gauge", "Leader Broker ID of this Topic/Partition", leader)
    yield family(
        "kafka_topic_partition_replicas", "gauge", "Number of Replicas for this Topic/Partition", replicas
    )
    yield family(
        "kafka_topic_partition_in_sync_replica",
        "gauge",
        "Number of In-Sync Replicas for this Topic/Partition",
        in_sync,
    )
    yield family(
        "kafka_topic_partition_leader_is_preferred",
        "gauge",
        "1 if Topic/Partition is using the Preferred Broker",
        preferred,
    )
    yield family(
        "kafka_topic_partition_under_replicated_partition",
        "gauge",
        "1 if Topic/Partition is under Replicated",
        under,
    )
    yield from _consumer_groups(core, partition_labels)


def _consumer_groups(core: BrokerCore, partition_labels: dict[tuple[str, int], Labels]) -> Iterator[Metric]:
    """kafka_exporter's group families (as with its default ``--offset.show-all``): every
    partition of each topic a group has committed offsets for, -1 where it has none."""
    groups = core.groups
    assert groups is not None
    topics = core.topics
    members: list[tuple[Labels, float]] = []
    offset: list[tuple[Labels, float]] = []
    offset_sum: list[tuple[Labels, float]] = []
    lag: list[tuple[Labels, float]] = []
    lag_sum: list[tuple[Labels, float]] = []
    error, listings = groups.list_groups()
    for listing in [] if error is not None else sorted(listings, key=lambda g: g.group_id):
        group_id = listing.group_id
        members.append(({"consumergroup": group_id}, groups.member_count(group_id)))
    by_topic: dict[tuple[str, str], dict[int, tuple[int, int]]] = {}
    for row in all_lags(groups, topics):
        by_topic.setdefault((row.group_id, row.topic), {})[row.partition] = (
            row.committed_offset,
            row.lag,
        )
    for (group_id, topic_name), committed in by_topic.items():
        topic = topics.get(topic_name)
        if topic is None:
            continue
        total_offset = total_lag = 0
        for p in range(len(topic.partitions)):
            labels = {"consumergroup": group_id, **partition_labels[topic_name, p]}
            committed_offset, partition_lag = committed.get(p, (-1, -1))
            offset.append((labels, committed_offset))
            lag.append((labels, partition_lag))
            total_offset += committed_offset
            if p in committed:
                total_lag += partition_lag
        group_topic = {"consumergroup": group_id, "topic": topic_name}
        offset_sum.append((group_topic, total_offset))
        lag_sum.append((group_topic, total_lag))
    yield family("kafka_consumergroup_members", "gauge", "Amount of members in a consumer group", members)
    yield family(
        "kafka_consumergroup_current_offset",
        "gauge",
        "Current Offset of a ConsumerGroup at Topic/Partition",
        offset,
    )
    yield family(
        "kafka_consumergroup_current_offset_sum",
        "gauge",
        "Current Offset of a ConsumerGroup at Topic for all partitions",
        offset_sum,
    )
    yield family(
        "kafka_consumergroup_lag",
        "gauge",
        "Current Approximate Lag of a ConsumerGroup at Topic/Partition",
        lag,
    )
    yield family(
        "kafka_consumergroup_lag_sum",
        "gauge",
        "Current Approximate Lag of a ConsumerGroup at Topic for all partitions",
        lag_sum,
    )
