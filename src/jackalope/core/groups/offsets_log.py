"""The coordinator's internal log (``__consumer_offsets``): replayed into the groups on load,
appended to afterwards with committed offsets, group snapshots and tombstones.

What the records hold is :mod:`jackalope.core.groups.store`'s business; this module reads and
writes them and turns a :class:`~jackalope.core.groups.group.Group` into its snapshot and back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from jackalope.core.groups import store
from jackalope.core.groups.consumer_group import ConsumerGroup
from jackalope.core.groups.group import Group, Groups, Member
from jackalope.core.groups.types import GroupError, GroupState
from jackalope.core.internal_log import InternalLog
from jackalope.storage import LogManager, Record, StorageError

log = logging.getLogger(__name__)


class OffsetsLog(InternalLog):
    """The internal log named ``name`` in ``logs``; made on first append, as Kafka does."""

    def __init__(self, logs: LogManager, name: str) -> None:
        super().__init__(logs, name, "GroupCoordinator")

    # -- reading -------------------------------------------------------------------------------

    async def load(self, groups: Groups) -> int:
        """Replay the log (if there is one) into ``groups``; return how many records it held."""
        replayed = 0
        async for record in self.replay():
            self._replay(groups, record)
            replayed += 1
        return replayed

    def _replay(self, groups: Groups, record: Record) -> None:
        try:
            entry = store.decode(record)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            self.skip(record, exc)
            return
        if isinstance(entry, store.OffsetEntry):
            tp = (entry.topic, entry.partition)
            if entry.committed is None:
                group_ = groups.get(entry.group_id)
                if group_ is not None:
                    group_.offsets.pop(tp, None)
                    group_.offset_positions.pop(tp, None)
                return
            group_ = groups.get_or_create(entry.group_id)
            group_.offsets[tp] = entry.committed
            group_.offset_positions[tp] = record.offset
        elif isinstance(entry, store.ConsumerGroupEntry):
            if entry.value is None:
                group_ = groups.get(entry.group_id)
                if group_ is not None:
                    group_.consumer = None
                return
            try:
                consumer = ConsumerGroup.from_json(entry.group_id, entry.value)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                self.skip(record, exc)
                return
            groups.get_or_create(entry.group_id).consumer = consumer
        elif isinstance(entry, store.GroupEntry):
            if entry.group is None:
                groups.pop(entry.group_id, None)
                return
            _restore(groups.get_or_create(entry.group_id), entry.group)

    # -- writing -------------------------------------------------------------------------------

    def write_later(self, records: Sequence[Record], doing: str) -> None:
        """Append ``records`` without waiting; a failure is logged as ``"<doing>: <error>"``."""
        try:
            self.append(records)
        except StorageError as exc:
            log.error("%s: %s", doing, exc)

    async def store_group(
        self, group: Group, assignments: Mapping[str, bytes] | None = None
    ) -> GroupError | None:
        """Append the group's membership and wait until it is durable."""
        try:
            await self.write([snapshot(group, assignments)])
        except StorageError as exc:
            log.error("storing group %s: %s", group.group_id, exc)
            return GroupError.NOT_COORDINATOR
        return None

    def store_group_later(self, group: Group) -> None:
        """Append the group's membership without waiting (it has just become Empty)."""
        self.write_later([snapshot(group)], f"storing group {group.group_id}")


def snapshot(group: Group, assignments: Mapping[str, bytes] | None = None) -> Record:
    """The group record of ``group``, with ``assignments`` (member id -> bytes) if given."""
    protocol = group.protocol_name
    members = [
        store.StoredMember(
            member_id=m.member_id,
            group_instance_id=m.group_instance_id,
            client_id=m.client_id,
            client_host=m.client_host,
            session_timeout_ms=m.session_timeout_ms,
            rebalance_timeout_ms=m.rebalance_timeout_ms,
            subscription=m.metadata(protocol) if protocol is not None else b"",
            assignment=m.assignment if assignments is None else assignments.get(m.member_id, b""),
        )
        for m in group.members.values()
    ]
    stored = store.StoredGroup(
        protocol_type=group.protocol_type,
        generation=group.generation_id,
        protocol=protocol,
        leader=group.leader_id,
        state_timestamp=group.state_timestamp,
        members=members,
    )
    return store.group_record(group.group_id, stored)


def _restore(group: Group, stored: store.StoredGroup) -> None:
    """Make ``group`` the stable (or empty) group a snapshot describes."""
    group.generation_id = stored.generation
    group.protocol_type = stored.protocol_type
    group.protocol_name = stored.protocol if stored.members else None
    group.state = GroupState.STABLE if stored.members else GroupState.EMPTY
    group.state_timestamp = stored.state_timestamp
    group.members.clear()
    group.static_members.clear()
    group.leader_id = None
    for m in stored.members:
        group.add(
            Member(
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                client_id=m.client_id,
                client_host=m.client_host,
                session_timeout_ms=m.session_timeout_ms,
                rebalance_timeout_ms=m.rebalance_timeout_ms,
                protocol_type=stored.protocol_type or "",
                protocols=[(stored.protocol or "", m.subscription)],
                assignment=m.assignment,
            )
        )
    group.protocol_type = stored.protocol_type
    if stored.leader in group.members:
        group.leader_id = stored.leader
