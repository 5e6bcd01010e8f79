"""Online migration between the classic group protocol and the consumer group protocol
(KIP-848), protocol-free: the policy, and turning a group of one type into the other.

* **Upgrade.**  A ConsumerGroupHeartbeat to a classic group with members (protocol type
  ``consumer``) makes it a consumer group, when the policy allows it: every classic member
  stays, with its subscription (from its JoinGroup metadata), the partitions of its last
  assignment (its target, too), the group's generation as its member epoch and its classic
  session timeout.  Joins and syncs under way are answered REBALANCE_IN_PROGRESS, so those
  members join again, now served by the consumer group.
* **Downgrade.**  When the last consumer-protocol member leaves (or is fenced from) a group
  whose other members all use the classic protocol, the group becomes classic again, when
  the policy allows it: the members keep their ids, their protocols and their target
  assignment, the generation is the group epoch, and a rebalance starts.  A classic static
  member replacing the last consumer-protocol member (same instance id) takes its place and
  partitions and the group becomes classic at once, without a rebalance.

What the classic members' metadata and assignments mean (Kafka's embedded consumer protocol,
ConsumerProtocolSubscription and ConsumerProtocolAssignment) is a :class:`ClassicCodec`'s
business: the front-end provides one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from jackalope.core.groups.assignors import TopicAssignment
from jackalope.core.groups.consumer_group import ClassicMetadata, ConsumerGroup, ConsumerMember, MemberState
from jackalope.core.groups.group import Group, Member
from jackalope.core.groups.types import GroupError, GroupState, JoinResult, SyncResult

CONSUMER_PROTOCOL_TYPE = "consumer"


class MigrationPolicy(StrEnum):
    """Kafka's ``group.consumer.migration.policy``."""

    BIDIRECTIONAL = "bidirectional"
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    DISABLED = "disabled"

    @property
    def upgrades(self) -> bool:
        return self in (MigrationPolicy.BIDIRECTIONAL, MigrationPolicy.UPGRADE)

    @property
    def downgrades(self) -> bool:
        return self in (MigrationPolicy.BIDIRECTIONAL, MigrationPolicy.DOWNGRADE)

    @classmethod
    def parse(cls, value: str) -> MigrationPolicy:
        try:
            return cls(value.strip().lower())
        except ValueError:
            known = ", ".join(p.value for p in cls)
            raise ValueError(f"unknown consumer group migration policy {value!r}; known: {known}") from None


@dataclass(frozen=True, slots=True)
class ClassicSubscription:
    """A classic member's subscription, as its JoinGroup metadata gives it."""

    topics: tuple[str, ...]
    owned: TopicAssignment  # the partitions it says it owns (empty before version 1)
    rack_id: str | None = None


class ClassicCodec(Protocol):
    """Reads and writes what classic consumers put in their JoinGroup and SyncGroup bytes."""

    def subscription(self, metadata: bytes) -> ClassicSubscription | None:
        """The subscription in a member's protocol metadata; None if it is none."""
        ...

    def assignment(self, data: bytes) -> TopicAssignment | None:
        """The partitions of an assignment; None if it is none."""
        ...

    def encode_assignment(self, partitions: TopicAssignment, metadata: bytes) -> bytes:
        """An assignment of ``partitions`` for the member that joined with ``metadata``
        (in the version of its subscription)."""
        ...


def can_upgrade(group: Group, policy: MigrationPolicy, max_size: int) -> str | None:
    """Why the classic ``group`` (with members) may not become a consumer group; None: it may."""
    if not policy.upgrades:
        return "online upgrade is disabled"
    if group.protocol_type != CONSUMER_PROTOCOL_TYPE:
        return f"it does not use the consumer protocol (protocol type {group.protocol_type!r})"
    if len(group.members) > max_size:
        return "it has more members than a consumer group may have"
    return None


def upgrade(group: Group, codec: ClassicCodec, topics: Mapping[str, int]) -> ConsumerGroup:
    """The consumer group the classic ``group`` becomes; ``group`` is left an empty classic
    group (the caller makes the result its ``consumer``).  Raises ``ValueError`` naming the
    member whose metadata or assignment is not the consumer protocol's (nothing changed)."""
    consumer = ConsumerGroup(
        group.group_id, group_epoch=group.generation_id, assignment_epoch=group.generation_id
    )
    converted = [_from_classic(group, m, codec, topics) for m in group.members.values()]
    for member in group.members.values():
        member.cancel_heartbeat()
        member.complete_join(JoinResult(GroupError.REBALANCE_IN_PROGRESS, member.member_id))
        member.complete_sync(SyncResult(GroupError.REBALANCE_IN_PROGRESS))
    group.cancel_timers()
    group.members.clear()
    group.static_members.clear()
    group.pending_sync.clear()
    group.leader_id = None
    group.protocol_name = None
    group.protocol_type = CONSUMER_PROTOCOL_TYPE
    group.transition(GroupState.EMPTY)
    for adopted in converted:
        consumer.adopt(adopted)
    return consumer


def _from_classic(group: Group, m: Member, codec: ClassicCodec, topics: Mapping[str, int]) -> ConsumerMember:
    names = [name for name, _ in m.protocols]
    protocol = group.protocol_name if group.protocol_name in names else (names[0] if names else "")
    subscription = codec.subscription(m.metadata(protocol)) if protocol else None
    if subscription is None:
        raise ValueError(f"member {m.member_id}'s metadata is not a consumer protocol subscription")
    assigned = codec.assignment(m.assignment) if m.assignment else {}
    if assigned is None:
        raise ValueError(f"member {m.member_id}'s assignment is not a consumer protocol assignment")
    valid = {t: frozenset(p for p in ps if 0 <= p < topics[t]) for t, ps in assigned.items() if t in topics}
    return ConsumerMember(
        member_id=m.member_id,
        instance_id=m.group_instance_id,
        rack_id=subscription.rack_id,
        client_id=m.client_id,
        client_host=m.client_host,
        rebalance_timeout_ms=m.rebalance_timeout_ms,
        subscribed_topic_names=tuple(sorted(set(subscription.topics))),
        epoch=group.generation_id,
        previous_epoch=group.generation_id,
        state=MemberState.STABLE,
        assigned={t: ps for t, ps in sorted(valid.items()) if ps},
        classic=ClassicMetadata(m.session_timeout_ms, tuple(m.protocols)),
    )


def can_downgrade(consumer: ConsumerGroup, leaving_id: str, policy: MigrationPolicy, max_size: int) -> bool:
    """Kafka's validateOnlineDowngradeWithFencedMember: ``leaving_id`` is the last member of the
    consumer protocol, others remain (all classic), and the policy and the size allow it."""
    leaving = consumer.members.get(leaving_id)
    return (
        leaving is not None
        and leaving.classic is None
        and consumer.only_classic_besides(leaving_id)
        and policy.downgrades
        and len(consumer.members) - 1 <= max_size
    )


def downgrade(group: Group, codec: ClassicCodec, generation: int) -> None:
    """Make ``group`` (a consumer group of classic members only) a Stable classic group of
    ``generation``; the caller schedules the members' timers and starts a rebalance."""
    consumer = group.consumer
    assert consumer is not None
    group.consumer = None
    group.cancel_timers()
    group.members.clear()
    group.static_members.clear()
    group.pending_sync.clear()
    group.leader_id = None
    group.generation_id = generation
    group.protocol_type = CONSUMER_PROTOCOL_TYPE
    for m in consumer.members.values():
        if m.classic is None:
            continue
        group.add(
            Member(
                member_id=m.member_id,
                group_instance_id=m.instance_id,
                client_id=m.client_id,
                client_host=m.client_host,
                session_timeout_ms=m.classic.session_timeout_ms,
                rebalance_timeout_ms=m.rebalance_timeout_ms,
                protocol_type=CONSUMER_PROTOCOL_TYPE,
                protocols=list(m.classic.protocols),
            )
        )
    group.protocol_name = group.select_protocol() if group.members else None
    for member in group.members.values():
        metadata = member.metadata(group.protocol_name or "")
        member.assignment = codec.encode_assignment(consumer.target.get(member.member_id, {}), metadata)
    group.transition(GroupState.STABLE if group.members else GroupState.EMPTY)
