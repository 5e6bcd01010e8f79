"""The in-memory state of one consumer group and its members (Kafka's GroupMetadata and
MemberMetadata), and :class:`Groups`, all of a broker's groups by id.  Plain data, queries and
bookkeeping; the rules that move it live in the coordinator."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

from jackalope.core.groups.consumer_group import ConsumerGroup
from jackalope.core.groups.store import CommittedOffset
from jackalope.core.groups.types import (
    ConsumerGroupListing,
    GroupDescription,
    GroupError,
    GroupListing,
    GroupState,
    JoinResult,
    MemberDescription,
    MemberMetadata,
    SyncResult,
    TopicPartition,
)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(eq=False, slots=True)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    assignment: bytes = b""
    # A member that joined during the current rebalance and never completed one: it is
    # expired by the new-member timeout rather than kept alive by waiting for the join.
    is_new: bool = False
    join_future: asyncio.Future[JoinResult] | None = None
    sync_future: asyncio.Future[SyncResult] | None = None
    heartbeat_timer: asyncio.TimerHandle | None = None

    @property
    def awaiting_join(self) -> bool:
        # A join whose caller went away (the future was cancelled) does not count as joined.
        return self.join_future is not None and not self.join_future.done()

    @property
    def awaiting_sync(self) -> bool:
        return self.sync_future is not None and not self.sync_future.done()

    def metadata(self, protocol: str) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        raise KeyError(protocol)

    def matches(self, protocols: list[tuple[str, bytes]]) -> bool:
        return self.protocols == protocols

    def vote(self, candidates: set[str]) -> str:
        """This member's most preferred protocol among ``candidates``."""
        return next(name for name, _ in self.protocols if name in candidates)

    def complete_join(self, result: JoinResult) -> None:
        if self.join_future is not None and not self.join_future.done():
            self.join_future.set_result(result)
        self.join_future = None

    def complete_sync(self, result: SyncResult) -> None:
        if self.sync_future is not None and not self.sync_future.done():
            self.sync_future.set_result(result)
        self.sync_future = None

    def cancel_heartbeat(self) -> None:
        if self.heartbeat_timer is not None:
            self.heartbeat_timer.cancel()
            self.heartbeat_timer = None


@dataclass(eq=False, slots=True)
class Group:
    group_id: str
    state: GroupState = GroupState.EMPTY
    state_timestamp: int = 0  # ms, when the group entered its current state
    generation_id: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)  # group.instance.id -> member id
    # Member ids handed out with MEMBER_ID_REQUIRED, not yet joined with, and their expiry.
    pending_members: dict[str, asyncio.TimerHandle | None] = field(default_factory=dict)
    # Members given the new generation that have not sent SyncGroup yet.
    pending_sync: set[str] = field(default_factory=set)
    join_timer: asyncio.TimerHandle | None = None
    sync_timer: asyncio.TimerHandle | None = None
    initial_delay: bool = False  # the rebalance is a new group's group.initial.rebalance.delay
    new_member_added: bool = False
    offsets: dict[TopicPartition, CommittedOffset] = field(default_factory=dict)
    # Commits appended but not yet durable: partition -> log offset of the newest such record.
    pending_commits: dict[TopicPartition, int] = field(default_factory=dict)
    # Log offset of the record each entry in ``offsets`` came from (to apply only newer ones).
    offset_positions: dict[TopicPartition, int] = field(default_factory=dict)
    # The group's state under the consumer protocol (KIP-848) when it is of that type; it then
    # has no classic members (a group is one type or the other).
    consumer: ConsumerGroup | None = None

    @property
    def is_empty(self) -> bool:
        """No members of either protocol (offsets expire, the group may be deleted)."""
        return self.is_(GroupState.EMPTY) and (self.consumer is None or not self.consumer.members)

    def is_(self, state: GroupState) -> bool:
        return self.state is state

    def has(self, member_id: str) -> bool:
        return member_id in self.members

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id == member_id

    def transition(self, state: GroupState) -> None:
        self.state = state
        self.state_timestamp = now_ms()

    def cancel_timers(self) -> None:
        """Cancel the join and sync timers and forget the pending members (and their timers)."""
        for timer in (self.join_timer, self.sync_timer, *self.pending_members.values()):
            if timer is not None:
                timer.cancel()
        self.join_timer = self.sync_timer = None
        self.pending_members.clear()

    def validate_member(self, member_id: str, group_instance_id: str | None) -> GroupError | None:
        """Kafka's validateCurrentMember: a static member must hold its instance id; the member must exist."""
        if group_instance_id is not None:
            current = self.static_members.get(group_instance_id)
            if current is None:
                return GroupError.UNKNOWN_MEMBER_ID
            if current != member_id:
                return GroupError.FENCED_INSTANCE_ID
            return None
        if member_id not in self.members:
            return GroupError.UNKNOWN_MEMBER_ID
        return None

    def add(self, member: Member) -> None:
        if not self.members:
            self.protocol_type = member.protocol_type
        self.members[member.member_id] = member
        if self.leader_id is None:
            self.leader_id = member.member_id
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id
        self.pending_members.pop(member.member_id, None)

    def remove(self, member_id: str) -> Member | None:
        member = self.members.pop(member_id, None)
        if member is None:
            return None
        member.cancel_heartbeat()
        if (
            member.group_instance_id is not None
            and self.static_members.get(member.group_instance_id) == member_id
        ):
            del self.static_members[member.group_instance_id]
        self.pending_sync.discard(member_id)
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        return member

    def static_member_id(self, group_instance_id: str | None) -> str | None:
        return None if group_instance_id is None else self.static_members.get(group_instance_id)

    @property
    def awaiting_join_count(self) -> int:
        return sum(1 for m in self.members.values() if m.awaiting_join)

    def all_members_joined(self) -> bool:
        return not self.pending_members and all(m.awaiting_join for m in self.members.values())

    def accepts_joining(self, member_id: str, max_size: int) -> bool:
        """Kafka's acceptJoiningMember: group.max.size counts members awaiting join while preparing."""
        if self.state in (GroupState.EMPTY, GroupState.DEAD):
            return True
        existing = self.members.get(member_id)
        if self.is_(GroupState.PREPARING_REBALANCE):
            awaiting = self.awaiting_join_count + len(self.pending_members)
            return (existing is not None and existing.awaiting_join) or awaiting < max_size
        return existing is not None or len(self.members) < max_size

    @property
    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def supports_protocols(self, protocol_type: str, protocols: list[tuple[str, bytes]]) -> bool:
        """Whether a member joining with these protocols fits the group (Kafka's rule)."""
        if self.is_(GroupState.EMPTY) or not self.members:
            return bool(protocol_type) and bool(protocols)
        if protocol_type != self.protocol_type:
            return False
        counts = self._protocol_counts()
        return any(counts[name] == len(self.members) for name, _ in protocols)

    def _protocol_counts(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for member in self.members.values():
            counts.update({name for name, _ in member.protocols})
        return counts

    def select_protocol(self) -> str:
        """The protocol every member supports that most members prefer (ties: first member's order)."""
        counts = self._protocol_counts()
        candidates = {name for name, n in counts.items() if n == len(self.members)}
        if not candidates:
            raise ValueError(f"no protocol common to all members of {self.group_id}")
        votes = Counter(m.vote(candidates) for m in self.members.values())
        best = max(votes.values())
        first = next(iter(self.members.values()))
        return next(name for name, _ in first.protocols if votes.get(name) == best)

    def member_metadata(self) -> list[MemberMetadata]:
        """The members and their metadata for the selected protocol (the leader's JoinGroup result)."""
        assert self.protocol_name is not None
        return [
            MemberMetadata(m.member_id, m.group_instance_id, m.metadata(self.protocol_name))
            for m in self.members.values()
        ]

    def elect_joined_leader(self) -> bool:
        """Keep the leader if it rejoined, else make the first member that did leader; False: none did."""
        leader = self.members.get(self.leader_id or "")
        if leader is not None and leader.awaiting_join:
            return True
        for member_id, member in self.members.items():
            if member.awaiting_join:
                self.leader_id = member_id
                return True
        return False

    def join_result(self, member: Member) -> JoinResult:
        """The JoinGroup answer for ``member`` in the current generation (the members for the leader)."""
        return JoinResult(
            error=None,
            member_id=member.member_id,
            generation_id=self.generation_id,
            protocol_type=self.protocol_type,
            protocol_name=self.protocol_name,
            leader_id=self.leader_id or "",
            members=self.member_metadata() if self.is_leader(member.member_id) else [],
        )

    def describe(self) -> GroupDescription:
        """The DescribeGroups answer; members' metadata and assignments only when Stable."""
        if self.consumer is not None:
            return self._describe_consumer(self.consumer)
        stable = self.is_(GroupState.STABLE) and self.protocol_name is not None
        protocol = self.protocol_name or ""
        members = [
            MemberDescription(
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                client_id=m.client_id,
                client_host=m.client_host,
                metadata=m.metadata(protocol) if stable else b"",
                assignment=m.assignment if stable else b"",
            )
            for m in self.members.values()
        ]
        return GroupDescription(
            group_id=self.group_id,
            state=self.state.value,
            protocol_type=self.protocol_type or "",
            protocol=protocol if stable else "",
            members=members,
        )

    def _describe_consumer(self, consumer: ConsumerGroup) -> GroupDescription:
        members = [
            MemberDescription(
                member_id=m.member_id,
                group_instance_id=m.instance_id,
                client_id=m.client_id,
                client_host=m.client_host,
                metadata=b"",
                assignment=b"",
                partitions=tuple((t, p) for t, ps in sorted(m.assigned.items()) for p in sorted(ps)),
            )
            for m in consumer.members.values()
        ]
        return GroupDescription(
            group_id=self.group_id,
            state=consumer.state.value,
            protocol_type="consumer",
            protocol=consumer.assignor_name,
            members=members,
            group_type="consumer",
        )

    def listing(self) -> GroupListing:
        if self.consumer is not None:
            return ConsumerGroupListing(self.group_id, "consumer", self.consumer.state.value)
        return GroupListing(self.group_id, self.protocol_type or "", self.state.value)


class Groups(dict[str, Group]):
    """All of a broker's groups, by id."""

    def get_or_create(self, group_id: str) -> Group:
        group = self.get(group_id)
        if group is None:
            group = self[group_id] = Group(group_id, state_timestamp=now_ms())
        return group
