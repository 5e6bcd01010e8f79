"""Committed offsets: OffsetCommit and OffsetFetch, their deletion and expiry, and forgetting
groups (their offsets and membership go from the internal log together).

Offsets are committed against the group's generation (or by anyone with generation -1 while
the group has no members: simple/standalone consumers), appended to the internal log and
answered once durable.  :class:`OffsetManager` does not check that the coordinator is loaded
and open: the :class:`~jackalope.core.groups.coordinator.GroupCoordinator` does, before it
calls in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable, Mapping

from jackalope.core.groups import store
from jackalope.core.groups.group import Group, Groups, Member, now_ms
from jackalope.core.groups.offsets_log import OffsetsLog
from jackalope.core.groups.types import GroupError, GroupState, OffsetAndMetadata, TopicPartition
from jackalope.storage import Record, StorageError

log = logging.getLogger(__name__)


class OffsetManager:
    """The committed offsets of ``groups``, kept in ``offsets_log``.

    ``keep_alive`` is called for a member whose commit is accepted (a commit counts as a
    heartbeat).
    """

    def __init__(
        self,
        groups: Groups,
        offsets_log: OffsetsLog,
        *,
        keep_alive: Callable[[Group, Member], None],
        max_metadata_bytes: int,
        retention_ms: int,
        retention_check_interval_ms: int,
        partition_exists: Callable[[str, int], bool] | None,
    ) -> None:
        self.groups = groups
        self.offsets_log = offsets_log
        self.keep_alive = keep_alive
        self.max_metadata_bytes = max_metadata_bytes
        self.retention_ms = retention_ms
        self.retention_check_interval_ms = retention_check_interval_ms
        self.partition_exists = partition_exists
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cleanup_timer: asyncio.TimerHandle | None = None
        self._stopped = False
        # group id -> producer id -> partitions with offsets in the producer's open transaction
        self.pending_transactions: dict[str, dict[int, set[TopicPartition]]] = {}

    # -- commit and fetch ----------------------------------------------------------------------

    async def commit(
        self,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        offsets: Mapping[TopicPartition, OffsetAndMetadata],
    ) -> dict[TopicPartition, GroupError | None]:
        """OffsetCommit (see :meth:`GroupCoordinator.commit_offsets`)."""
        group = self.groups.get(group_id)
        if group is None:
            if generation_id >= 0:
                return dict.fromkeys(offsets, GroupError.ILLEGAL_GENERATION)
            group = self.groups.get_or_create(group_id)
        error = self._validate_commit(group, generation_id, member_id, group_instance_id)
        if error is None and group.is_(GroupState.COMPLETING_REBALANCE):
            error = GroupError.REBALANCE_IN_PROGRESS
        if error is not None:
            return dict.fromkeys(offsets, error)
        member = group.members.get(member_id)
        if member is not None:
            self.keep_alive(group, member)
        results: dict[TopicPartition, GroupError | None] = {}
        accepted: list[tuple[TopicPartition, store.CommittedOffset]] = []
        now = now_ms()
        for tp, om in offsets.items():
            if self.partition_exists is not None and not self.partition_exists(*tp):
                results[tp] = GroupError.UNKNOWN_TOPIC_OR_PARTITION
            elif len(om.metadata.encode()) > self.max_metadata_bytes:
                results[tp] = GroupError.OFFSET_METADATA_TOO_LARGE
            else:
                results[tp] = None
                accepted.append((tp, store.CommittedOffset(OffsetAndMetadata(*om), now)))
        if not accepted:
            return results
        failed = await self._store(group, accepted)
        for tp in failed:
            results[tp] = GroupError.NOT_COORDINATOR
        return results

    async def _store(
        self, group: Group, accepted: list[tuple[TopicPartition, store.CommittedOffset]]
    ) -> list[TopicPartition]:
        """Append the offsets, wait until durable, apply them; return those that failed."""
        group_id = group.group_id
        records = [store.offset_record(group_id, tp[0], tp[1], c) for tp, c in accepted]
        try:
            info = self.offsets_log.append(records)
        except StorageError as exc:
            log.error("committing offsets of group %s: %s", group_id, exc)
            return [tp for tp, _ in accepted]
        for i, (tp, _) in enumerate(accepted):
            group.pending_commits[tp] = info.base_offset + i
        try:
            await self.offsets_log.wait_durable(info)
        except StorageError as exc:
            log.error("committing offsets of group %s: %s", group_id, exc)
            failed = True
        else:
            failed = False
        for i, (tp, committed) in enumerate(accepted):
            position = info.base_offset + i
            if not failed and tp in group.pending_commits and group.offset_positions.get(tp, -1) < position:
                # Still wanted (not deleted meanwhile) and newer than what is applied.
                group.offsets[tp] = committed
                group.offset_positions[tp] = position
            if group.pending_commits.get(tp) == position:
                del group.pending_commits[tp]
        return [tp for tp, _ in accepted] if failed else []

    # -- transactional commits (TxnOffsetCommit, kept by the transaction coordinator) ----------

    def validate_transactional(
        self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None
    ) -> GroupError | None:
        """Whether a TxnOffsetCommit may commit for the group (Kafka's validateTxnOffsetCommit):
        without group metadata (generation -1, no member: TxnOffsetCommit v0-2) always."""
        group = self.groups.get(group_id)
        if generation_id < 0 and not member_id and group_instance_id is None:
            return (
                GroupError.COORDINATOR_NOT_AVAILABLE
                if group is not None and group.is_(GroupState.DEAD)
                else None
            )
        if group is None:
            return GroupError.ILLEGAL_GENERATION
        return self._validate_commit(group, generation_id, member_id, group_instance_id)

    def add_pending_transaction(
        self, group_id: str, producer_id: int, partitions: Iterable[TopicPartition]
    ) -> None:
        """The producer's transaction holds offsets of ``partitions`` for the group, not committed yet."""
        self.pending_transactions.setdefault(group_id, {}).setdefault(producer_id, set()).update(partitions)

    def end_pending_transaction(self, group_id: str, producer_id: int) -> None:
        pending = self.pending_transactions.get(group_id)
        if pending is not None:
            pending.pop(producer_id, None)
            if not pending:
                del self.pending_transactions[group_id]

    def unstable(self, group_id: str) -> set[TopicPartition]:
        """The partitions with offsets in an open transaction (OffsetFetch's require_stable)."""
        return set().union(*self.pending_transactions.get(group_id, {}).values())

    async def commit_transactional(
        self, group_id: str, offsets: Mapping[TopicPartition, OffsetAndMetadata]
    ) -> GroupError | None:
        """Materialize a committed transaction's offsets; answered once durable."""
        group = self.groups.get_or_create(group_id)
        now = now_ms()
        accepted = [(tp, store.CommittedOffset(OffsetAndMetadata(*om), now)) for tp, om in offsets.items()]
        return GroupError.NOT_COORDINATOR if await self._store(group, accepted) else None

    @staticmethod
    def _validate_commit(
        group: Group, generation_id: int, member_id: str, group_instance_id: str | None
    ) -> GroupError | None:
        if group.is_(GroupState.DEAD):
            return GroupError.COORDINATOR_NOT_AVAILABLE
        if group.consumer is not None:
            return group.consumer.validate_offset_commit(member_id, generation_id)
        if generation_id < 0 and group.is_(GroupState.EMPTY):
            # an admin client, or a consumer without group management (a KIP-848 client that
            # only assign()s still sends the member id it made up): an empty group takes it
            return None
        if generation_id >= 0 or member_id or group_instance_id is not None:
            error = group.validate_member(member_id, group_instance_id)
            if error is None and generation_id != group.generation_id:
                error = GroupError.ILLEGAL_GENERATION
            return error
        if not group.is_(GroupState.EMPTY):
            return GroupError.UNKNOWN_MEMBER_ID  # only members commit for a group with members
        return None

    def fetch(
        self, group_id: str, partitions: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        """OffsetFetch (see :meth:`GroupCoordinator.fetch_offsets`)."""
        group = self.groups.get(group_id)
        if group is None or group.is_(GroupState.DEAD):
            return {}
        if partitions is None:
            return {tp: c.offset for tp, c in group.offsets.items()}
        return {tp: group.offsets[tp].offset for tp in partitions if tp in group.offsets}

    # -- deletion ------------------------------------------------------------------------------

    def delete_topic(self, topic: str) -> int:
        """Forget every group's offsets of ``topic``; return how many (appended without waiting)."""
        records: list[Record] = []
        for group in self.groups.values():
            for tp in sorted({tp for tp in (*group.offsets, *group.pending_commits) if tp[0] == topic}):
                group.offsets.pop(tp, None)
                group.offset_positions.pop(tp, None)
                group.pending_commits.pop(tp, None)
                records.append(store.offset_tombstone(group.group_id, *tp))
        if records:
            self.offsets_log.write_later(records, f"deleting offsets of topic {topic}")
        return len(records)

    async def delete_offsets(
        self,
        group_id: str,
        partitions: Iterable[TopicPartition],
        subscribed_topics: Callable[[bytes], Collection[str] | None],
    ) -> tuple[GroupError | None, dict[TopicPartition, GroupError | None]]:
        """OffsetDelete (see :meth:`GroupCoordinator.delete_offsets`)."""
        wanted = list(partitions)
        group = self.groups.get(group_id)
        if group is None or group.is_(GroupState.DEAD):
            return GroupError.GROUP_ID_NOT_FOUND, {}
        if group.members and group.protocol_type != "consumer":
            return GroupError.NON_EMPTY_GROUP, {}
        in_use: set[str] | None = set()
        for member in group.members.values():
            metadata = dict(member.protocols).get(group.protocol_name or "")
            topics = subscribed_topics(metadata) if metadata is not None else None
            if topics is None or in_use is None:  # unreadable: taken as subscribed to everything
                in_use = None
                continue
            in_use.update(topics)
        if group.consumer is not None:  # KIP-848: the topics its members subscribe to
            in_use = group.consumer.subscribed_topic_names()
        results: dict[TopicPartition, GroupError | None] = {}
        records: list[Record] = []
        for tp in wanted:
            if in_use is None or tp[0] in in_use:
                results[tp] = GroupError.GROUP_SUBSCRIBED_TO_TOPIC
                continue
            results[tp] = None
            if tp in group.offsets or tp in group.pending_commits:
                group.offsets.pop(tp, None)
                group.offset_positions.pop(tp, None)
                group.pending_commits.pop(tp, None)
                records.append(store.offset_tombstone(group_id, *tp))
        if records:
            try:
                await self.offsets_log.write(records)
            except StorageError as exc:
                log.error("deleting offsets of group %s: %s", group_id, exc)
                return GroupError.NOT_COORDINATOR, {}
        return None, results

    async def delete_groups(self, group_ids: Iterable[str]) -> dict[str, GroupError | None]:
        """DeleteGroups (see :meth:`GroupCoordinator.delete_groups`)."""
        results: dict[str, GroupError | None] = {}
        records: list[Record] = []
        deleted: list[str] = []
        for group_id in group_ids:
            group = self.groups.get(group_id)
            if group is None or group.is_(GroupState.DEAD):
                results[group_id] = GroupError.GROUP_ID_NOT_FOUND
            elif not group.is_empty:
                results[group_id] = GroupError.NON_EMPTY_GROUP
            else:
                records.extend(self._forget_group(group))
                deleted.append(group_id)
                results[group_id] = None
        if records:
            try:
                await self.offsets_log.write(records)
            except StorageError as exc:
                log.error("deleting groups %s: %s", deleted, exc)
                results.update(dict.fromkeys(deleted, GroupError.NOT_COORDINATOR))
        return results

    def _forget_group(self, group: Group) -> list[Record]:
        """Mark ``group`` Dead and drop it; return the tombstones that delete it from the log."""
        group.transition(GroupState.DEAD)
        group.cancel_timers()
        del self.groups[group.group_id]
        partitions = set(group.offsets) | set(group.pending_commits)
        group.offsets.clear()
        group.pending_commits.clear()
        records = [store.offset_tombstone(group.group_id, t, p) for t, p in sorted(partitions)]
        records.append(store.group_tombstone(group.group_id))
        if group.consumer is not None:
            records.append(store.consumer_group_tombstone(group.group_id))
        return records

    # -- expiry --------------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Expire offsets every ``retention_check_interval_ms`` from now on."""
        self._loop = loop
        self._schedule_cleanup()

    def stop(self) -> None:
        self._stopped = True
        if self._cleanup_timer is not None:
            self._cleanup_timer.cancel()
            self._cleanup_timer = None

    def _schedule_cleanup(self) -> None:
        assert self._loop is not None
        self._cleanup_timer = self._loop.call_later(
            self.retention_check_interval_ms / 1000, self._cleanup_fired
        )

    def _cleanup_fired(self) -> None:
        self._cleanup_timer = None
        if self._stopped:
            return
        try:
            self.expire()
        finally:
            self._schedule_cleanup()

    def expire(self, now: int | None = None) -> int:
        """Expire offsets past ``retention_ms`` (see :meth:`GroupCoordinator.expire_offsets`)."""
        now = now_ms() if now is None else now
        records: list[Record] = []
        expired = 0
        for group in list(self.groups.values()):
            if not group.is_empty:
                continue
            for tp, committed in list(group.offsets.items()):
                base = committed.commit_timestamp
                if group.protocol_type is not None:
                    base = max(base, group.state_timestamp)
                if tp not in group.pending_commits and base + self.retention_ms <= now:
                    del group.offsets[tp]
                    group.offset_positions.pop(tp, None)
                    records.append(store.offset_tombstone(group.group_id, *tp))
                    expired += 1
            if (
                not group.offsets
                and not group.pending_commits
                and not group.pending_members
                and group.group_id not in self.pending_transactions
            ):
                records.extend(self._forget_group(group))
        if records:
            self.offsets_log.write_later(records, "expiring offsets")
        return expired
