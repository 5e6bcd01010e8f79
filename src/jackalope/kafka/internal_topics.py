"""The broker's internal logs as Kafka's internal topics (``is_internal`` in Metadata).

Kafka shows ``__consumer_offsets`` and ``__transaction_state`` as topics; here they are the
group and transaction coordinators' logs, one partition each, which exist once the
coordinator first wrote to them (Kafka creates them on first use too).  Clients may read
them; only the coordinators write to them (Produce answers INVALID_TOPIC_EXCEPTION).  Their
topic ids are derived from the cluster id, so they stay the same across restarts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from jackalope.kafka.context import KafkaBroker
from jackalope.storage import Log

CONSUMER_OFFSETS: Final = "__consumer_offsets"
TRANSACTION_STATE: Final = "__transaction_state"
SHARE_GROUP_STATE: Final = "__share_group_state"
NAMES: Final = (CONSUMER_OFFSETS, TRANSACTION_STATE, SHARE_GROUP_STATE)


@dataclass(frozen=True, slots=True)
class InternalTopic:
    name: str
    topic_id: uuid.UUID
    log: Log


def is_internal(name: str | None) -> bool:
    return name in NAMES


def topic_id(broker: KafkaBroker, name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"jackalope:{broker.cluster_id}:{name}")


def all_topics(broker: KafkaBroker) -> Iterator[InternalTopic]:
    for name in NAMES:
        log_ = broker.topics.logs.get(name)
        if log_ is not None:
            yield InternalTopic(name, topic_id(broker, name), log_)


def find(broker: KafkaBroker, key: str | uuid.UUID | None) -> InternalTopic | None:
    """The internal topic named ``key`` (or with that topic id), if its log exists."""
    for topic in all_topics(broker):
        if key in (topic.name, topic.topic_id):
            return topic
    return None


def partition(broker: KafkaBroker, name: str, index: int) -> Log | None:
    """Partition ``index`` of topic ``name``: a topic's, or an internal topic's (one partition)."""
    log_ = broker.topics.partition(name, index)
    if log_ is None and (internal := find(broker, name)) is not None and index == 0:
        log_ = internal.log
    return log_
