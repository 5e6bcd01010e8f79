"""The coordinator's vocabulary: errors, states and the plain values its calls take and return.

Everything here is protocol-free; the Kafka front-end maps :class:`GroupError` names onto
Kafka's error codes (the names are Kafka's) and the dataclasses onto request/response fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple


class GroupError(StrEnum):
    """Why the coordinator refused (part of) a call.  Member names are Kafka's error names."""

    COORDINATOR_LOAD_IN_PROGRESS = "COORDINATOR_LOAD_IN_PROGRESS"
    COORDINATOR_NOT_AVAILABLE = "COORDINATOR_NOT_AVAILABLE"
    NOT_COORDINATOR = "NOT_COORDINATOR"
    INVALID_GROUP_ID = "INVALID_GROUP_ID"
    GROUP_ID_NOT_FOUND = "GROUP_ID_NOT_FOUND"
    NON_EMPTY_GROUP = "NON_EMPTY_GROUP"
    INVALID_SESSION_TIMEOUT = "INVALID_SESSION_TIMEOUT"
    INCONSISTENT_GROUP_PROTOCOL = "INCONSISTENT_GROUP_PROTOCOL"
    UNKNOWN_MEMBER_ID = "UNKNOWN_MEMBER_ID"
    MEMBER_ID_REQUIRED = "MEMBER_ID_REQUIRED"
    FENCED_INSTANCE_ID = "FENCED_INSTANCE_ID"
    ILLEGAL_GENERATION = "ILLEGAL_GENERATION"
    REBALANCE_IN_PROGRESS = "REBALANCE_IN_PROGRESS"
    GROUP_MAX_SIZE_REACHED = "GROUP_MAX_SIZE_REACHED"
    UNKNOWN_TOPIC_OR_PARTITION = "UNKNOWN_TOPIC_OR_PARTITION"
    OFFSET_METADATA_TOO_LARGE = "OFFSET_METADATA_TOO_LARGE"
    GROUP_SUBSCRIBED_TO_TOPIC = "GROUP_SUBSCRIBED_TO_TOPIC"
    # the consumer group protocol (KIP-848)
    INVALID_REQUEST = "INVALID_REQUEST"
    FENCED_MEMBER_EPOCH = "FENCED_MEMBER_EPOCH"
    STALE_MEMBER_EPOCH = "STALE_MEMBER_EPOCH"
    UNRELEASED_INSTANCE_ID = "UNRELEASED_INSTANCE_ID"
    UNSUPPORTED_ASSIGNOR = "UNSUPPORTED_ASSIGNOR"
    INVALID_REGULAR_EXPRESSION = "INVALID_REGULAR_EXPRESSION"


class GroupState(StrEnum):
    """The classic group protocol's states, spelled as Kafka reports them."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


TopicPartition = tuple[str, int]


class OffsetAndMetadata(NamedTuple):
    """A committed position: the next offset to consume, the leader epoch it was read under
    (-1 if unknown) and the client's free-form metadata string."""

    offset: int
    leader_epoch: int = -1
    metadata: str = ""


@dataclass(frozen=True, slots=True)
class MemberMetadata:
    """One member as the leader sees it in its JoinGroup result: metadata of the chosen protocol."""

    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(frozen=True, slots=True)
class JoinResult:
    """The outcome of :meth:`GroupCoordinator.join`.

    ``members`` is filled for the leader only.  With ``MEMBER_ID_REQUIRED`` (and
    ``GROUP_MAX_SIZE_REACHED``, ``UNKNOWN_MEMBER_ID``…) only ``error`` and ``member_id`` mean
    anything.
    """

    error: GroupError | None
    member_id: str = ""
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str = ""
    members: list[MemberMetadata] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SyncResult:
    """The outcome of :meth:`GroupCoordinator.sync`: this member's assignment."""

    error: GroupError | None
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""


@dataclass(frozen=True, slots=True)
class MemberDescription:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes  # of the group's protocol; empty unless the group is Stable (as Kafka)
    assignment: bytes  # empty unless the group is Stable
    # The member's partitions when the broker assigns them (a consumer-protocol group, KIP-848).
    partitions: tuple[TopicPartition, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupDescription:
    """What DescribeGroups reports; an unknown group is described as ``Dead`` without error."""

    group_id: str
    state: str
    protocol_type: str
    protocol: str
    members: list[MemberDescription]
    error: GroupError | None = None
    group_type: str = "classic"  # or "consumer" (KIP-848)


class GroupListing(NamedTuple):
    group_id: str
    protocol_type: str
    state: str

    @property
    def group_type(self) -> str:
        return "classic"


class ConsumerGroupListing(GroupListing):
    """The listing of a group of the consumer protocol (KIP-848)."""

    __slots__ = ()

    @property
    def group_type(self) -> str:
        return "consumer"
