"""Consumer lag: how far each group's committed offsets trail the log end, as
``kafka-consumer-groups --describe`` and kafka_exporter report it.

One place computes it for every reader (the HTTP API, the CLI through it, the Prometheus
metrics).  A partition's lag is its log-end offset minus the committed offset; a partition
whose committed offset has fallen below the log start (retention moved past it) lags by
the whole log, and a topic deleted since the commit is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from jackalope.core.groups.coordinator import GroupCoordinator
from jackalope.core.topics import Topics


@dataclass(frozen=True, slots=True)
class PartitionLag:
    group_id: str
    topic: str
    partition: int
    committed_offset: int  # the next offset the group will read
    log_start_offset: int
    log_end_offset: int
    metadata: str

    @property
    def lag(self) -> int:
        return max(0, self.log_end_offset - max(self.committed_offset, self.log_start_offset))


def group_lag(coordinator: GroupCoordinator, topics: Topics, group_id: str) -> list[PartitionLag]:
    """The committed partitions of ``group_id`` that still exist, sorted by topic and partition."""
    error, offsets = coordinator.fetch_offsets(group_id)
    if error is not None:
        return []
    out = []
    for (topic, partition), committed in sorted(offsets.items()):
        log = topics.partition(topic, partition)
        if log is None:
            continue
        out.append(
            PartitionLag(
                group_id,
                topic,
                partition,
                committed.offset,
                log.start_offset,
                log.end_offset,
                committed.metadata,
            )
        )
    return out


def all_lags(coordinator: GroupCoordinator, topics: Topics) -> list[PartitionLag]:
    """Every group's :func:`group_lag`, groups in name order."""
    error, listings = coordinator.list_groups()
    if error is not None:
        return []
    return [
        lag
        for g in sorted(listings, key=lambda g: g.group_id)
        for lag in group_lag(coordinator, topics, g.group_id)
    ]
