"""The consumer group protocol of KIP-848 (``group.protocol=consumer``): one group's state
machine, protocol-free and without timers (:mod:`.consumer_protocol` runs those).

The coordinator, not the clients, assigns partitions.  A group has

* a **group epoch**, bumped whenever what the assignment depends on changes: a member joins
  or leaves or changes its subscription, or the subscribed topics change (partitions added,
  a topic matching a regex created, a topic deleted);
* a **target assignment** computed by the group's assignor for the group epoch (its
  **assignment epoch**), lazily, on the next heartbeat after a bump;
* per member, a **member epoch** and the partitions it has now.  Each heartbeat moves the
  member towards its target (Kafka's CurrentAssignmentBuilder): partitions it must give up
  are first taken away and the member stays at its epoch (UNREVOKED_PARTITIONS) until a
  heartbeat reports it no longer owns them; only then does it get the new partitions and the
  new epoch.  A partition still held by another member (assigned or pending revocation) is
  not given out (UNRELEASED_PARTITIONS) until that member releases it.  So a partition never
  has two owners.

Member epochs: 0 joins (or rejoins, having dropped its partitions), -1 leaves, -2 is a static
member leaving for a while (its partitions wait for it until its session times out).  A
heartbeat with an epoch the coordinator does not expect is FENCED_MEMBER_EPOCH (except the
previous epoch with a subset of the current partitions: the answer was lost); a member id the
group does not know is UNKNOWN_MEMBER_ID.  Offsets are committed with the member epoch
(STALE_MEMBER_EPOCH otherwise).

Subscriptions are topic names or a regular expression (``subscribed_topic_regex``; Kafka uses
RE2/J, this uses Python's ``re``, matched against the whole topic name).

**Classic members** (KIP-848 online migration): a member of the classic protocol
(JoinGroup/SyncGroup/Heartbeat) may belong to a consumer group.  It carries its
:class:`ClassicMetadata` (session timeout, the protocols it joined with); its member epoch is
its generation.  It is reconciled only when it joins (:meth:`ConsumerGroup.classic_join`, with
the partitions its subscription says it owns) and told to rejoin through its heartbeat
(:meth:`ConsumerGroup.classic_must_rejoin`).
"""

from __future__ import annotations

import base64
import re
import uuid
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from jackalope.core.groups.assignors import Assignor, MemberSpec, TopicAssignment
from jackalope.core.groups.types import GroupError

JOIN_EPOCH: Final = 0
LEAVE_EPOCH: Final = -1
STATIC_LEAVE_EPOCH: Final = -2

Topics = Mapping[str, int]  # topic name -> partition count


class MemberState(StrEnum):
    STABLE = "stable"
    UNREVOKED_PARTITIONS = "unrevoked_partitions"
    UNRELEASED_PARTITIONS = "unreleased_partitions"


class ConsumerGroupState(StrEnum):
    EMPTY = "Empty"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"


class HeartbeatError(Exception):
    def __init__(self, error: GroupError, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


@dataclass(frozen=True, slots=True)
class HeartbeatRequest:
    """A ConsumerGroupHeartbeat; None fields did not change since the member's last heartbeat."""

    member_id: str
    member_epoch: int
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    client_id: str = ""
    client_host: str = ""
    subscribed_topic_names: tuple[str, ...] | None = None
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    owned: TopicAssignment | None = None  # the partitions it owns (by topic name)


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    error: GroupError | None
    message: str | None = None
    member_id: str = ""
    member_epoch: int = -1
    assignment: TopicAssignment | None = None  # None: unchanged, not sent


@dataclass(frozen=True, slots=True)
class ClassicMetadata:
    """What a classic-protocol member of a consumer group joined with."""

    session_timeout_ms: int
    protocols: tuple[tuple[str, bytes], ...]  # (name, metadata), in the member's order

    @property
    def protocol_name(self) -> str:
        return self.protocols[0][0] if self.protocols else ""

    @property
    def metadata(self) -> bytes:
        return self.protocols[0][1] if self.protocols else b""

    def to_json(self) -> dict[str, Any]:
        return {
            "session_timeout_ms": self.session_timeout_ms,
            "protocols": [[n, base64.b64encode(m).decode()] for n, m in self.protocols],
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> ClassicMetadata:
        return cls(
            int(value["session_timeout_ms"]),
            tuple((str(n), base64.b64decode(m)) for n, m in value["protocols"]),
        )


@dataclass(frozen=True, slots=True)
class ClassicJoinRequest:
    """A JoinGroup of a classic member to a consumer group, its subscription decoded."""

    member_id: str  # never empty: the coordinator names new members
    instance_id: str | None
    rebalance_timeout_ms: int
    client_id: str
    client_host: str
    subscribed_topic_names: tuple[str, ...]
    owned: TopicAssignment  # what its subscription says it still owns
    classic: ClassicMetadata
    rack_id: str | None = None
    new: bool = False  # it joined with an unknown (empty) member id


def _norm(assignment: Mapping[str, frozenset[int] | set[int]]) -> TopicAssignment:
    return {t: frozenset(ps) for t, ps in sorted(assignment.items()) if ps}


def _minus(a: TopicAssignment, b: Mapping[str, frozenset[int]]) -> TopicAssignment:
    return _norm({t: ps - b.get(t, frozenset()) for t, ps in a.items()})


def _intersect(a: TopicAssignment, b: Mapping[str, frozenset[int]]) -> TopicAssignment:
    return _norm({t: ps & b.get(t, frozenset()) for t, ps in a.items()})


def _subset(owned: TopicAssignment | None, of: TopicAssignment) -> bool:
    if owned is None:
        return False
    return all(ps <= of.get(t, frozenset()) for t, ps in owned.items())


def _owns_any(owned: TopicAssignment | None, revoking: TopicAssignment) -> bool:
    if owned is None:
        return True  # it did not say: assume it still does
    return any(ps & revoking.get(t, frozenset()) for t, ps in owned.items())


@dataclass(eq=False, slots=True)
class ConsumerMember:
    member_id: str
    instance_id: str | None = None
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    rebalance_timeout_ms: int = 300_000
    subscribed_topic_names: tuple[str, ...] = ()
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    epoch: int = 0
    previous_epoch: int = -1
    state: MemberState = MemberState.STABLE
    assigned: TopicAssignment = field(default_factory=dict)
    pending_revocation: TopicAssignment = field(default_factory=dict)
    classic: ClassicMetadata | None = None  # a member of the classic protocol

    def reconciled_to(self, epoch: int) -> bool:
        return self.state is MemberState.STABLE and self.epoch == epoch

    def subscription(self) -> tuple[tuple[str, ...], str | None]:
        return self.subscribed_topic_names, self.subscribed_topic_regex

    def subscribed_topics(self, topics: Topics) -> frozenset[str]:
        """The existing topics this member subscribes to, by name or by regex."""
        names = {t for t in self.subscribed_topic_names if t in topics}
        if self.subscribed_topic_regex:
            pattern = _compile(self.subscribed_topic_regex)
            names.update(t for t in topics if pattern.fullmatch(t))
        return frozenset(names)

    def set_epoch(self, epoch: int) -> None:
        self.previous_epoch, self.epoch = self.epoch, epoch

    def to_json(self) -> dict[str, Any]:
        return {
            "member_id": self.member_id,
            "instance_id": self.instance_id,
            "rack_id": self.rack_id,
            "client_id": self.client_id,
            "client_host": self.client_host,
            "rebalance_timeout_ms": self.rebalance_timeout_ms,
            "subscribed_topic_names": list(self.subscribed_topic_names),
            "subscribed_topic_regex": self.subscribed_topic_regex,
            "server_assignor": self.server_assignor,
            "epoch": self.epoch,
            "previous_epoch": self.previous_epoch,
            "state": self.state.value,
            "assigned": _assignment_json(self.assigned),
            "pending_revocation": _assignment_json(self.pending_revocation),
            "classic": self.classic.to_json() if self.classic is not None else None,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> ConsumerMember:
        return cls(
            member_id=str(value["member_id"]),
            instance_id=value["instance_id"],
            rack_id=value["rack_id"],
            client_id=str(value["client_id"]),
            client_host=str(value["client_host"]),
            rebalance_timeout_ms=int(value["rebalance_timeout_ms"]),
            subscribed_topic_names=tuple(str(t) for t in value["subscribed_topic_names"]),
            subscribed_topic_regex=value["subscribed_topic_regex"],
            server_assignor=value["server_assignor"],
            epoch=int(value["epoch"]),
            previous_epoch=int(value["previous_epoch"]),
            state=MemberState(value["state"]),
            assigned=_assignment_from_json(value["assigned"]),
            pending_revocation=_assignment_from_json(value["pending_revocation"]),
            classic=ClassicMetadata.from_json(value["classic"]) if value.get("classic") else None,
        )


def _assignment_json(assignment: TopicAssignment) -> dict[str, list[int]]:
    return {t: sorted(ps) for t, ps in assignment.items()}


def _assignment_from_json(value: Mapping[str, Any]) -> TopicAssignment:
    return _norm({str(t): frozenset(int(p) for p in ps) for t, ps in value.items()})


def validate_request(req: HeartbeatRequest, assignors: Mapping[str, Assignor]) -> HeartbeatError | None:
    """Kafka's checks of a ConsumerGroupHeartbeat before it touches the group (INVALID_REQUEST...)."""

    def invalid(message: str) -> HeartbeatError:
        return HeartbeatError(GroupError.INVALID_REQUEST, message)

    if req.instance_id == "":
        return invalid("InstanceId can't be empty.")
    if req.rack_id == "":
        return invalid("RackId can't be empty.")
    epoch = req.member_epoch
    if epoch > 0 or epoch == LEAVE_EPOCH:
        if not req.member_id:
            return invalid("MemberId can't be empty.")
    elif epoch == JOIN_EPOCH:
        if req.rebalance_timeout_ms == -1:
            return invalid("RebalanceTimeoutMs must be provided in first request.")
        if req.owned is None or req.owned:
            return invalid("TopicPartitions must be empty when (re-)joining.")
        if not req.subscribed_topic_names and not req.subscribed_topic_regex:
            return invalid("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.")
    elif epoch == STATIC_LEAVE_EPOCH:
        if not req.member_id:
            return invalid("MemberId can't be empty.")
        if req.instance_id is None:
            return invalid("InstanceId can't be null.")
    else:
        return invalid("MemberEpoch is invalid.")
    if req.server_assignor is not None and req.server_assignor not in assignors:
        return HeartbeatError(
            GroupError.UNSUPPORTED_ASSIGNOR,
            f"ServerAssignor {req.server_assignor} is not supported. Supported assignors: "
            f"{', '.join(assignors)}.",
        )
    if req.subscribed_topic_regex:
        why = validate_regex(req.subscribed_topic_regex)
        if why is not None:
            return HeartbeatError(GroupError.INVALID_REGULAR_EXPRESSION, why)
    return None


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _compile(regex: str) -> re.Pattern[str]:
    pattern = _PATTERNS.get(regex)
    if pattern is None:
        if len(_PATTERNS) > 1000:
            _PATTERNS.clear()
        pattern = _PATTERNS[regex] = re.compile(regex)
    return pattern


def validate_regex(regex: str) -> str | None:
    """Why ``regex`` is not a valid subscription (None: it is)."""
    try:
        _compile(regex)
    except re.error as exc:
        return f"invalid regular expression {regex!r}: {exc}"
    return None


@dataclass(eq=False)
class ConsumerGroup:
    """One group of the consumer protocol."""

    group_id: str
    group_epoch: int = 0
    assignment_epoch: int = 0
    members: dict[str, ConsumerMember] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)  # instance id -> member id
    target: dict[str, TopicAssignment] = field(default_factory=dict)  # member id -> target
    subscription: dict[str, int] = field(default_factory=dict)  # subscribed topic -> partitions
    assignor_name: str = ""
    # partition -> the member holding it (assigned or pending revocation)
    owners: dict[tuple[str, int], str] = field(default_factory=dict)

    # -- queries -------------------------------------------------------------------------------

    @property
    def state(self) -> ConsumerGroupState:
        if not self.members:
            return ConsumerGroupState.EMPTY
        if self.group_epoch > self.assignment_epoch:
            return ConsumerGroupState.ASSIGNING
        if any(not m.reconciled_to(self.assignment_epoch) for m in self.members.values()):
            return ConsumerGroupState.RECONCILING
        return ConsumerGroupState.STABLE

    def subscribed_topic_names(self) -> set[str]:
        """The topics members subscribe to: by name, and those their regexes matched lately."""
        names = set(self.subscription)
        for m in self.members.values():
            names.update(m.subscribed_topic_names)
        return names

    def validate_offset_commit(self, member_id: str, member_epoch: int) -> GroupError | None:
        """Kafka's validateOffsetCommit: -1 from anyone while empty; else a member at its epoch."""
        if member_epoch < 0 and not self.members:
            return None
        return self._validate_member_epoch(member_id, member_epoch)

    def _validate_member_epoch(self, member_id: str, member_epoch: int) -> GroupError | None:
        member = self.members.get(member_id)
        if member is None:
            return GroupError.UNKNOWN_MEMBER_ID
        if member_epoch != member.epoch:
            # a classic member's epoch is its generation
            return GroupError.ILLEGAL_GENERATION if member.classic else GroupError.STALE_MEMBER_EPOCH
        return None

    def validate_offset_fetch(self, member_id: str | None, member_epoch: int) -> GroupError | None:
        if member_id is None or member_epoch < 0:
            return None
        return self._validate_member_epoch(member_id, member_epoch)

    # -- heartbeat -----------------------------------------------------------------------------

    def heartbeat(
        self,
        req: HeartbeatRequest,
        topics: Topics,
        assignors: Mapping[str, Assignor],
        default_assignor: str,
    ) -> tuple[HeartbeatResult, list[str]]:
        """One heartbeat (epoch >= 0) or leave (-1, -2).  Returns the answer and the member ids
        that left the group with it (a static member replaced by its new incarnation)."""
        try:
            if req.member_epoch in (LEAVE_EPOCH, STATIC_LEAVE_EPOCH):
                return self._leave(req), []
            return self._heartbeat(req, topics, assignors, default_assignor)
        except HeartbeatError as exc:
            return HeartbeatResult(exc.error, exc.message, req.member_id, req.member_epoch), []

    def _heartbeat(
        self,
        req: HeartbeatRequest,
        topics: Topics,
        assignors: Mapping[str, Assignor],
        default_assignor: str,
    ) -> tuple[HeartbeatResult, list[str]]:
        joining = req.member_epoch == JOIN_EPOCH
        member_id = req.member_id or str(uuid.uuid4())
        removed: list[str] = []
        bump = False
        if req.instance_id is None:
            member = self.members.get(member_id)
            if member is None:
                if not joining:
                    raise HeartbeatError(
                        GroupError.UNKNOWN_MEMBER_ID, f"member {member_id} is not in group {self.group_id}"
                    )
                member = ConsumerMember(member_id)
                bump = True
            elif member.classic is not None and not joining:
                raise HeartbeatError(
                    GroupError.UNKNOWN_MEMBER_ID, f"member {member_id} uses the classic protocol"
                )
            elif joining:
                member.classic = None
                self._reset(member)
            else:
                self._check_epoch(member, req)
        else:
            member, bump, removed = self._static_member(req, member_id)
        before = (member.subscription(), dict(member.assigned))
        self._update(member, req)
        if member.subscription() != before[0]:
            bump = True
        self._place(member, bump, req.owned, topics, assignors, default_assignor)
        full = joining or (
            req.rebalance_timeout_ms != -1
            and req.subscribed_topic_names is not None
            and req.owned is not None
        )
        changed = member.assigned != before[1]
        return (
            HeartbeatResult(
                None,
                None,
                member.member_id,
                member.epoch,
                dict(member.assigned) if full or changed else None,
            ),
            removed,
        )

    def _place(
        self,
        member: ConsumerMember,
        bump: bool,
        owned: TopicAssignment | None,
        topics: Topics,
        assignors: Mapping[str, Assignor],
        default_assignor: str,
    ) -> None:
        """Put a heartbeating or joining member in the group: a new group epoch if it or the
        subscribed topics changed, a new target assignment if the epoch moved on, and the
        member reconciled against the partitions it owns."""
        self.members[member.member_id] = member
        if member.instance_id is not None:
            self.static_members[member.instance_id] = member.member_id
        if self._refresh_subscription(topics) or bump:
            self.group_epoch += 1
        if self.group_epoch > self.assignment_epoch:
            self.compute_target(topics, assignors, default_assignor)
        self._reconcile(member, owned)

    def _static_member(self, req: HeartbeatRequest, member_id: str) -> tuple[ConsumerMember, bool, list[str]]:
        assert req.instance_id is not None
        current_id = self.static_members.get(req.instance_id)
        current = self.members.get(current_id) if current_id is not None else None
        if req.member_epoch != JOIN_EPOCH:
            if current is None:
                raise HeartbeatError(
                    GroupError.UNKNOWN_MEMBER_ID, f"instance id {req.instance_id} is unknown"
                )
            if current.member_id != member_id:
                raise HeartbeatError(
                    GroupError.FENCED_INSTANCE_ID,
                    f"static member {member_id} with instance id {req.instance_id} was fenced by "
                    f"member {current.member_id}",
                )
            self._check_epoch(current, req)
            return current, False, []
        if current is None:
            return ConsumerMember(member_id, instance_id=req.instance_id), True, []
        if current.member_id == member_id:
            self._reset(current)
            return current, False, []
        if current.epoch != STATIC_LEAVE_EPOCH:
            raise HeartbeatError(
                GroupError.UNRELEASED_INSTANCE_ID,
                f"instance id {req.instance_id} is still held by member {current.member_id}",
            )
        # The static member is back under a new member id: it takes over the old one's place,
        # partitions and target, without a rebalance.
        return current, False, [self._take_over(current, member_id)]

    def _take_over(self, current: ConsumerMember, member_id: str) -> str:
        """A static member's new incarnation (``member_id``) replaces ``current``; the old id."""
        old_id = current.member_id
        self._drop(old_id)
        target = self.target.pop(old_id, None)
        current.member_id = member_id
        current.epoch = current.previous_epoch = 0
        current.state = MemberState.STABLE
        if target is not None:
            self.target[member_id] = target
        self._set_assignment(current, current.assigned, {})
        return old_id

    def _check_epoch(self, member: ConsumerMember, req: HeartbeatRequest) -> None:
        epoch = req.member_epoch
        if epoch > member.epoch:
            raise HeartbeatError(
                GroupError.FENCED_MEMBER_EPOCH,
                f"member epoch {epoch} is newer than the coordinator's ({member.epoch}): "
                "the member must abandon its partitions and rejoin",
            )
        if epoch < member.epoch and (
            epoch != member.previous_epoch or not _subset(req.owned, member.assigned)
        ):
            raise HeartbeatError(
                GroupError.FENCED_MEMBER_EPOCH,
                f"member epoch {epoch} is older than the coordinator's ({member.epoch}): "
                "the member must abandon its partitions and rejoin",
            )

    def _reset(self, member: ConsumerMember) -> None:
        """A known member joins again with epoch 0: it has dropped every partition."""
        member.epoch = member.previous_epoch = 0
        member.state = MemberState.STABLE
        self._set_assignment(member, {}, {})

    @staticmethod
    def _update(member: ConsumerMember, req: HeartbeatRequest) -> None:
        if req.rack_id is not None:
            member.rack_id = req.rack_id
        if req.rebalance_timeout_ms != -1:
            member.rebalance_timeout_ms = req.rebalance_timeout_ms
        if req.server_assignor is not None:
            member.server_assignor = req.server_assignor or None
        if req.subscribed_topic_names is not None:
            member.subscribed_topic_names = tuple(sorted(set(req.subscribed_topic_names)))
        if req.subscribed_topic_regex is not None:
            member.subscribed_topic_regex = req.subscribed_topic_regex or None
        member.client_id = req.client_id
        member.client_host = req.client_host

    # -- classic members (online migration) ----------------------------------------------------

    def uses_classic(self, member_id: str) -> bool:
        member = self.members.get(member_id)
        return member is not None and member.classic is not None

    def only_classic_besides(self, member_id: str) -> bool:
        """Every member but ``member_id`` uses the classic protocol, and there is one."""
        others = [m for mid, m in self.members.items() if mid != member_id]
        return bool(others) and all(m.classic is not None for m in others)

    def supports_classic_protocols(self, protocol_type: str, names: Collection[str]) -> bool:
        """Kafka's supportsClassicProtocols: type ``consumer`` and a protocol every classic member has."""
        if protocol_type != "consumer" or not names:
            return False
        classic = [m.classic for m in self.members.values() if m.classic is not None]
        return any(all(any(n == p for p, _ in c.protocols) for c in classic) for n in names)

    def classic_join(
        self,
        req: ClassicJoinRequest,
        topics: Topics,
        assignors: Mapping[str, Assignor],
        default_assignor: str,
    ) -> tuple[ConsumerMember, list[str]]:
        """A classic member joins or rejoins (Kafka's classicGroupJoinToConsumerGroup): it is
        reconciled against the partitions it says it owns.  Returns it and the member ids it
        replaced (a static member's previous incarnation); raises :class:`HeartbeatError`."""
        removed: list[str] = []
        bump = False
        if req.instance_id is None:
            found = self.members.get(req.member_id)
            if found is None:
                found, bump = ConsumerMember(req.member_id), True
            elif found.classic is None:
                raise HeartbeatError(
                    GroupError.UNKNOWN_MEMBER_ID, f"member {req.member_id} uses the consumer protocol"
                )
            member = found
        else:
            current_id = self.static_members.get(req.instance_id)
            current = self.members.get(current_id) if current_id is not None else None
            if current is None:
                member, bump = ConsumerMember(req.member_id, instance_id=req.instance_id), True
            elif current.member_id == req.member_id:
                member = current
            elif req.new:
                removed.append(self._take_over(current, req.member_id))
                member = current
            else:
                raise HeartbeatError(
                    GroupError.FENCED_INSTANCE_ID,
                    f"static member {req.member_id} with instance id {req.instance_id} was fenced by "
                    f"member {current.member_id}",
                )
        before = member.subscription()
        if req.rack_id is not None:
            member.rack_id = req.rack_id
        if req.rebalance_timeout_ms != -1:
            member.rebalance_timeout_ms = req.rebalance_timeout_ms
        member.subscribed_topic_names = tuple(sorted(set(req.subscribed_topic_names)))
        member.subscribed_topic_regex = None
        member.client_id = req.client_id
        member.client_host = req.client_host
        member.classic = req.classic
        if member.subscription() != before:
            bump = True
        self._place(member, bump, req.owned, topics, assignors, default_assignor)
        return member, removed

    def classic_must_rejoin(self, member: ConsumerMember) -> bool:
        """Whether a classic member's heartbeat answers REBALANCE_IN_PROGRESS: the group epoch
        moved on, it has partitions to give up, or the partitions it waits for are free."""
        return (
            member.epoch < self.group_epoch
            or member.state is MemberState.UNREVOKED_PARTITIONS
            or (member.state is MemberState.UNRELEASED_PARTITIONS and not self._waiting_on_unreleased(member))
        )

    def _waiting_on_unreleased(self, member: ConsumerMember) -> bool:
        for topic, parts in self.target.get(member.member_id, {}).items():
            for p in parts - member.assigned.get(topic, frozenset()):
                if self.owners.get((topic, p), member.member_id) != member.member_id:
                    return True
        return False

    def adopt(self, member: ConsumerMember) -> None:
        """Add a member of the classic group being converted: what it has is its target."""
        self.members[member.member_id] = member
        if member.instance_id is not None:
            self.static_members[member.instance_id] = member.member_id
        self.target[member.member_id] = dict(member.assigned)
        self._set_assignment(member, member.assigned, {})

    # -- leaving -------------------------------------------------------------------------------

    def _leave(self, req: HeartbeatRequest) -> HeartbeatResult:
        if req.instance_id is None:
            member = self.members.get(req.member_id)
            if member is None:
                raise HeartbeatError(
                    GroupError.UNKNOWN_MEMBER_ID, f"member {req.member_id} is not in group {self.group_id}"
                )
            self.remove(member.member_id)
            return HeartbeatResult(None, None, req.member_id, req.member_epoch)
        current_id = self.static_members.get(req.instance_id)
        if current_id is None or current_id not in self.members:
            raise HeartbeatError(GroupError.UNKNOWN_MEMBER_ID, f"instance id {req.instance_id} is unknown")
        if current_id != req.member_id:
            raise HeartbeatError(
                GroupError.FENCED_INSTANCE_ID,
                f"static member {req.member_id} with instance id {req.instance_id} was fenced by "
                f"member {current_id}",
            )
        if req.member_epoch == STATIC_LEAVE_EPOCH:
            # Gone for a while: it keeps its partitions (nobody else gets them) until it
            # comes back or its session times out.
            member = self.members[current_id]
            member.epoch = STATIC_LEAVE_EPOCH
            self._set_assignment(member, member.assigned, {})
            return HeartbeatResult(None, None, req.member_id, STATIC_LEAVE_EPOCH)
        self.remove(current_id)
        return HeartbeatResult(None, None, req.member_id, req.member_epoch)

    def remove(self, member_id: str) -> bool:
        """Fence or remove ``member_id``: its partitions are free, the group epoch is bumped."""
        if member_id not in self.members:
            return False
        self._drop(member_id)
        self.target.pop(member_id, None)
        self.group_epoch += 1
        return True

    def _drop(self, member_id: str) -> None:
        member = self.members.pop(member_id)
        if member.instance_id is not None and self.static_members.get(member.instance_id) == member_id:
            del self.static_members[member.instance_id]
        for tp in [tp for tp, owner in self.owners.items() if owner == member_id]:
            del self.owners[tp]

    def member_timed_out(self, member_id: str, epoch: int | None = None) -> bool:
        """The session (or, with ``epoch``, the revocation at that epoch) timed out: fence it."""
        member = self.members.get(member_id)
        if member is None:
            return False
        if epoch is not None and (
            member.epoch != epoch or member.state is not MemberState.UNREVOKED_PARTITIONS
        ):
            return False
        return self.remove(member_id)

    # -- assignment ----------------------------------------------------------------------------

    def _refresh_subscription(self, topics: Topics) -> bool:
        """Recompute the subscribed topics' partition counts; True if they changed."""
        subscribed: set[str] = set()
        for m in self.members.values():
            subscribed |= m.subscribed_topics(topics)
        subscription = {t: topics[t] for t in sorted(subscribed)}
        if subscription == self.subscription:
            return False
        self.subscription = subscription
        return True

    def preferred_assignor(self, assignors: Mapping[str, Assignor], default: str) -> str:
        votes = Counter(m.server_assignor for m in self.members.values() if m.server_assignor in assignors)
        if not votes:
            return default
        best = max(votes.values())
        return min(name for name, n in votes.items() if n == best and name is not None)

    def compute_target(self, topics: Topics, assignors: Mapping[str, Assignor], default: str) -> None:
        """A new target assignment for the group epoch."""
        self._refresh_subscription(topics)
        self.assignor_name = self.preferred_assignor(assignors, default)
        specs = [
            MemberSpec(
                member_id=m.member_id,
                topics=m.subscribed_topics(topics),
                instance_id=m.instance_id,
                current=self.target.get(m.member_id, {}),
            )
            for m in self.members.values()
        ]
        result = assignors[self.assignor_name].assign(specs, self.subscription)
        self.target = {m.member_id: _norm(result.get(m.member_id, {})) for m in self.members.values()}
        self.assignment_epoch = self.group_epoch

    def _reconcile(self, member: ConsumerMember, owned: TopicAssignment | None) -> None:
        """Move ``member`` towards its target (Kafka's CurrentAssignmentBuilder)."""
        if member.epoch < 0 or member.reconciled_to(self.assignment_epoch):
            return
        target = self.target.get(member.member_id, {})
        if member.state is MemberState.STABLE:
            self._next(member, member.epoch, target, owned)
        elif member.state is MemberState.UNREVOKED_PARTITIONS:
            if not _owns_any(owned, member.pending_revocation):
                self._next(member, member.epoch + 1, target, owned)
        else:
            self._next(member, member.epoch, target, owned)

    def _next(
        self, member: ConsumerMember, epoch: int, target: TopicAssignment, owned: TopicAssignment | None
    ) -> None:
        keep = _intersect(member.assigned, target)
        revoke = _minus(member.assigned, keep)
        wanted = _minus(target, keep)
        unreleased = False
        grant: dict[str, frozenset[int]] = {}
        for topic, parts in wanted.items():
            free = frozenset(
                p for p in parts if self.owners.get((topic, p), member.member_id) == member.member_id
            )
            unreleased = unreleased or len(free) < len(parts)
            if free:
                grant[topic] = free
        if revoke and _owns_any(owned, revoke):
            member.state = MemberState.UNREVOKED_PARTITIONS
            member.set_epoch(epoch)
            self._set_assignment(member, keep, revoke)
            return
        assigned = _norm({t: keep.get(t, frozenset()) | grant.get(t, frozenset()) for t in {*keep, *grant}})
        member.state = MemberState.UNRELEASED_PARTITIONS if unreleased else MemberState.STABLE
        member.set_epoch(self.assignment_epoch)
        self._set_assignment(member, assigned, {})

    def _set_assignment(
        self, member: ConsumerMember, assigned: TopicAssignment, revoking: TopicAssignment
    ) -> None:
        for tp in [tp for tp, owner in self.owners.items() if owner == member.member_id]:
            del self.owners[tp]
        member.assigned = _norm(assigned)
        member.pending_revocation = _norm(revoking)
        for part in (member.assigned, member.pending_revocation):
            for topic, ps in part.items():
                for p in ps:
                    self.owners[(topic, p)] = member.member_id

    # -- persistence ---------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "group_epoch": self.group_epoch,
            "assignment_epoch": self.assignment_epoch,
            "assignor": self.assignor_name,
            "subscription": self.subscription,
            "members": [m.to_json() for m in self.members.values()],
            "target": {mid: _assignment_json(a) for mid, a in self.target.items()},
        }

    @classmethod
    def from_json(cls, group_id: str, value: Mapping[str, Any]) -> ConsumerGroup:
        group = cls(
            group_id,
            group_epoch=int(value["group_epoch"]),
            assignment_epoch=int(value["assignment_epoch"]),
            assignor_name=str(value["assignor"]),
            subscription={str(t): int(n) for t, n in value["subscription"].items()},
        )
        for m in value["members"]:
            member = ConsumerMember.from_json(m)
            group.members[member.member_id] = member
            if member.instance_id is not None:
                group.static_members[member.instance_id] = member.member_id
            group._set_assignment(member, member.assigned, member.pending_revocation)
        group.target = {str(mid): _assignment_from_json(a) for mid, a in value["target"].items()}
        return group
