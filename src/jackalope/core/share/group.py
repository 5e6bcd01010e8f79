"""One share group (KIP-932): members, subscriptions, epochs and the target assignment.
Protocol-free and without timers (:mod:`.coordinator` runs those).

* Members choose their own member id (KIP-1082) and join with epoch 0; -1 leaves.
* The **group epoch** is bumped when a member joins or leaves, changes its subscription, or
  the subscribed topics change (created, deleted, partitions added).
* The **target assignment** (:mod:`.assignor`) is computed for the group epoch on the next
  heartbeat after a bump; its **assignment epoch** is then the group epoch.
* A share group has nothing to revoke (partitions may be shared), so a member heartbeating
  gets its target at once and the assignment epoch as its **member epoch**.  A heartbeat with
  an epoch other than the member's (or its previous one: the answer was lost) is
  FENCED_MEMBER_EPOCH; a member id the group does not know is UNKNOWN_MEMBER_ID.
* States: Empty (no members) or Stable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from jackalope.core.groups.types import GroupError
from jackalope.core.share.assignor import TopicPartition, assign

JOIN_EPOCH: Final = 0
LEAVE_EPOCH: Final = -1
ASSIGNOR_NAME: Final = "simple"

Assignment = frozenset[TopicPartition]


class ShareGroupState(StrEnum):
    EMPTY = "Empty"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(frozen=True, slots=True)
class ShareHeartbeat:
    """A ShareGroupHeartbeat; None fields did not change since the member's last heartbeat."""

    member_id: str
    member_epoch: int
    rack_id: str | None = None
    subscribed_topic_names: tuple[str, ...] | None = None
    client_id: str = ""
    client_host: str = ""


@dataclass(frozen=True, slots=True)
class ShareHeartbeatResult:
    error: GroupError | None
    message: str | None = None
    member_id: str = ""
    member_epoch: int = 0
    assignment: Assignment | None = None  # None: unchanged, not sent


@dataclass(eq=False, slots=True)
class ShareMember:
    member_id: str
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    subscribed_topic_names: tuple[str, ...] = ()
    epoch: int = 0
    previous_epoch: int = -1
    assigned: Assignment = frozenset()


def invalid(group_id: str, hb: ShareHeartbeat) -> str | None:
    """Why the request is malformed (INVALID_REQUEST), as Kafka words it; None if it is not."""
    if not group_id:
        return "GroupId can't be empty."
    if hb.rack_id is not None and not hb.rack_id.strip():
        return "RackId can't be empty."
    if not hb.member_id.strip():
        return "MemberId can't be empty."
    if hb.member_epoch == JOIN_EPOCH:
        if not hb.subscribed_topic_names:
            return "SubscribedTopicNames must be set in first request."
    elif hb.member_epoch < LEAVE_EPOCH:
        return "MemberEpoch is invalid."
    return None


@dataclass(eq=False)
class ShareGroup:
    group_id: str
    group_epoch: int = 0
    assignment_epoch: int = 0
    members: dict[str, ShareMember] = field(default_factory=dict)
    target: dict[str, Assignment] = field(default_factory=dict)
    # what the target was computed from: subscribed topic -> partition count
    subscribed_metadata: dict[str, int] = field(default_factory=dict)
    created_ms: int = 0

    @property
    def state(self) -> ShareGroupState:
        return ShareGroupState.STABLE if self.members else ShareGroupState.EMPTY

    def subscribed_topics(self) -> frozenset[str]:
        return frozenset(t for m in self.members.values() for t in m.subscribed_topic_names)

    def _metadata(self, topics: Mapping[str, int]) -> dict[str, int]:
        return {t: topics[t] for t in sorted(self.subscribed_topics()) if t in topics}

    def assignment(self, member_id: str) -> Assignment:
        member = self.members.get(member_id)
        return member.assigned if member is not None else frozenset()

    # -- heartbeat -----------------------------------------------------------------------------

    def heartbeat(self, hb: ShareHeartbeat, topics: Mapping[str, int]) -> ShareHeartbeatResult:
        """A join, heartbeat (epoch > 0) or leave (-1) of a well-formed request (:func:`invalid`)."""
        if hb.member_epoch == LEAVE_EPOCH:
            return self.leave(hb.member_id)
        member = self.members.get(hb.member_id)
        if member is None:
            if hb.member_epoch != JOIN_EPOCH:
                return ShareHeartbeatResult(
                    GroupError.UNKNOWN_MEMBER_ID,
                    f"Member {hb.member_id} is not a member of group {self.group_id}.",
                    hb.member_id,
                    hb.member_epoch,
                )
            member = ShareMember(hb.member_id)
            bump = True
        else:
            bump = False
            stale = hb.member_epoch > member.epoch or hb.member_epoch != member.previous_epoch
            if hb.member_epoch not in (JOIN_EPOCH, member.epoch) and stale:
                which = "greater" if hb.member_epoch > member.epoch else "smaller"
                return ShareHeartbeatResult(
                    GroupError.FENCED_MEMBER_EPOCH,
                    f"The share group member has a {which} member epoch ({hb.member_epoch}) than the one "
                    f"known by the group coordinator ({member.epoch}). The member must abandon all its "
                    "partitions and rejoin.",
                    hb.member_id,
                    hb.member_epoch,
                )
        before = member.assigned
        if hb.rack_id is not None:
            member.rack_id = hb.rack_id
        member.client_id, member.client_host = hb.client_id, hb.client_host
        if hb.subscribed_topic_names is not None:
            names = tuple(sorted(set(hb.subscribed_topic_names)))
            if names != member.subscribed_topic_names:
                member.subscribed_topic_names = names
                bump = True
        self.members[member.member_id] = member
        metadata = self._metadata(topics)
        if metadata != self.subscribed_metadata:
            self.subscribed_metadata = metadata
            bump = True
        if bump:
            self.group_epoch += 1
        if self.group_epoch > self.assignment_epoch:
            self._compute_target(topics)
        target = self.target.get(member.member_id, frozenset())
        if member.epoch != self.assignment_epoch or member.assigned != target:
            member.previous_epoch, member.epoch = member.epoch, self.assignment_epoch
            member.assigned = target
        send = hb.member_epoch == JOIN_EPOCH or member.assigned != before
        return ShareHeartbeatResult(
            None, None, member.member_id, member.epoch, member.assigned if send else None
        )

    def _compute_target(self, topics: Mapping[str, int]) -> None:
        subscriptions = {m.member_id: frozenset(m.subscribed_topic_names) for m in self.members.values()}
        self.target = assign(subscriptions, topics, self.target)
        self.assignment_epoch = self.group_epoch

    def leave(self, member_id: str) -> ShareHeartbeatResult:
        """Epoch -1 (or the coordinator fencing the member): it goes, the group epoch is bumped."""
        if self.remove(member_id) is None:
            return ShareHeartbeatResult(
                GroupError.UNKNOWN_MEMBER_ID,
                f"Member {member_id} is not a member of group {self.group_id}.",
                member_id,
                LEAVE_EPOCH,
            )
        return ShareHeartbeatResult(None, None, member_id, LEAVE_EPOCH)

    def remove(self, member_id: str) -> ShareMember | None:
        member = self.members.pop(member_id, None)
        if member is not None:
            self.target.pop(member_id, None)
            self.group_epoch += 1
        return member

    def forget_topic(self, topic: str) -> bool:
        """``topic`` was deleted: its partitions leave every member's assignment and the target,
        so that the next heartbeat hands out the rest (or a topic of that name created since,
        under its new id).  True if the group subscribed to it."""
        if topic not in self.subscribed_topics():
            return False
        for member in self.members.values():
            member.assigned = frozenset(tp for tp in member.assigned if tp[0] != topic)
        self.target = {m: frozenset(tp for tp in ps if tp[0] != topic) for m, ps in self.target.items()}
        self.subscribed_metadata.pop(topic, None)
        self.group_epoch += 1
        return True

    def topics_changed(self, topics: Mapping[str, int]) -> bool:
        """The subscribed topics changed (a topic created, deleted or grown): bump the group
        epoch so that the next heartbeat computes a new target.  True if it did."""
        metadata = self._metadata(topics)
        if metadata == self.subscribed_metadata:
            return False
        self.subscribed_metadata = metadata
        self.group_epoch += 1
        return True
