"""Writing transaction markers (COMMIT/ABORT control batches) into partition logs, and what the
coordinator needs of the consumer groups for transactional offset commits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Protocol

from jackalope.core.groups.types import GroupError, OffsetAndMetadata, TopicPartition
from jackalope.core.topics import Topics
from jackalope.storage import LogManager

# (partition, producer id, producer epoch, commit) -> durable; raises StorageError
MarkerWriter = Callable[[TopicPartition, int, int, bool], Awaitable[None]]

COORDINATOR_EPOCH = 0  # one broker, always its coordinator


class LogMarkers:
    """The marker writer of a broker: a marker into the partition's log, awaited until durable.

    Markers go through :meth:`Topics.append_control`, which wakes the partition's waiting
    readers (a marker moves the last stable offset) and routes a committed transaction's
    records to ``amq.kafka``.  A partition that no longer exists (its topic was deleted) is
    skipped.  A marker written again (a transaction completed again after a restart) is
    harmless: the storage engine writes a no-op marker for a producer without an open
    transaction, as Kafka does.
    """

    def __init__(self, topics: Topics, logs: LogManager) -> None:
        self.topics = topics
        self.logs = logs

    async def __call__(self, tp: TopicPartition, producer_id: int, producer_epoch: int, commit: bool) -> None:
        log_ = self.topics.partition(*tp)
        if log_ is None:
            return
        info = self.topics.append_control(
            log_, producer_id, producer_epoch, commit=commit, coordinator_epoch=COORDINATOR_EPOCH
        )
        await self.logs.wait_durable(log_, info.last_offset)


class TxnOffsetSink(Protocol):
    """What the transaction coordinator needs of the group coordinator
    (:class:`~jackalope.core.groups.GroupCoordinator` provides it)."""

    @property
    def max_metadata_bytes(self) -> int: ...

    def validate_transactional_commit(
        self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None
    ) -> GroupError | None: ...

    def add_pending_transaction(
        self, group_id: str, producer_id: int, partitions: Iterable[TopicPartition]
    ) -> None: ...

    def end_pending_transaction(self, group_id: str, producer_id: int) -> None: ...

    async def commit_transactional_offsets(
        self, group_id: str, offsets: Mapping[TopicPartition, OffsetAndMetadata]
    ) -> GroupError | None: ...
