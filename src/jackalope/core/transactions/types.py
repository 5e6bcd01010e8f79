"""The transaction coordinator's vocabulary: states, errors and the metadata of one
transactional id.  Protocol-free; the Kafka front-end maps :class:`TxnError` names onto
Kafka's error codes (the names are Kafka's)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Final

from jackalope.core.groups.types import OffsetAndMetadata, TopicPartition

NO_PRODUCER_ID: Final = -1
NO_PRODUCER_EPOCH: Final = -1
MAX_EPOCH: Final = 32767  # Short.MAX_VALUE


def epoch_exhausted(epoch: int) -> bool:
    """Kafka's rule: an epoch at Short.MAX_VALUE - 1 or above cannot be bumped for a new session
    (one more is kept for fencing); the transactional id gets a new producer id instead."""
    return epoch >= MAX_EPOCH - 1


class TxnState(StrEnum):
    """Kafka's transaction states, spelled as DescribeTransactions/ListTransactions report them."""

    EMPTY = "Empty"
    ONGOING = "Ongoing"
    PREPARE_COMMIT = "PrepareCommit"
    PREPARE_ABORT = "PrepareAbort"
    COMPLETE_COMMIT = "CompleteCommit"
    COMPLETE_ABORT = "CompleteAbort"
    PREPARE_EPOCH_FENCE = "PrepareEpochFence"
    DEAD = "Dead"


COMPLETE: Final = frozenset({TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT})
PREPARED: Final = frozenset({TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT})


class TxnError(StrEnum):
    """Why the coordinator refused a call.  Member names are Kafka's error names."""

    COORDINATOR_LOAD_IN_PROGRESS = "COORDINATOR_LOAD_IN_PROGRESS"
    NOT_COORDINATOR = "NOT_COORDINATOR"
    INVALID_REQUEST = "INVALID_REQUEST"
    INVALID_TRANSACTION_TIMEOUT = "INVALID_TRANSACTION_TIMEOUT"
    INVALID_PRODUCER_ID_MAPPING = "INVALID_PRODUCER_ID_MAPPING"
    INVALID_PRODUCER_EPOCH = "INVALID_PRODUCER_EPOCH"
    PRODUCER_FENCED = "PRODUCER_FENCED"
    CONCURRENT_TRANSACTIONS = "CONCURRENT_TRANSACTIONS"
    INVALID_TXN_STATE = "INVALID_TXN_STATE"
    UNKNOWN_TOPIC_OR_PARTITION = "UNKNOWN_TOPIC_OR_PARTITION"
    OPERATION_NOT_ATTEMPTED = "OPERATION_NOT_ATTEMPTED"
    TRANSACTIONAL_ID_NOT_FOUND = "TRANSACTIONAL_ID_NOT_FOUND"
    # from the group coordinator, for TxnOffsetCommit
    INVALID_GROUP_ID = "INVALID_GROUP_ID"
    ILLEGAL_GENERATION = "ILLEGAL_GENERATION"
    UNKNOWN_MEMBER_ID = "UNKNOWN_MEMBER_ID"
    FENCED_INSTANCE_ID = "FENCED_INSTANCE_ID"
    COORDINATOR_NOT_AVAILABLE = "COORDINATOR_NOT_AVAILABLE"
    OFFSET_METADATA_TOO_LARGE = "OFFSET_METADATA_TOO_LARGE"
    REBALANCE_IN_PROGRESS = "REBALANCE_IN_PROGRESS"


@dataclass(slots=True)
class TxnMetadata:
    """Everything the coordinator knows of one transactional id (Kafka's TransactionMetadata).

    ``last_epoch`` is the epoch before the latest bump (-1 if none): a producer retrying its
    InitProducerId with it gets the current epoch back instead of being fenced (KIP-360).
    ``previous_producer_id`` is the id before an epoch exhaustion gave a new one.
    ``offsets`` are the pending transactional offset commits, per consumer group.
    """

    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState = TxnState.EMPTY
    last_epoch: int = NO_PRODUCER_EPOCH
    previous_producer_id: int = NO_PRODUCER_ID
    partitions: set[TopicPartition] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    offsets: dict[str, dict[TopicPartition, OffsetAndMetadata]] = field(default_factory=dict)
    start_ms: int = -1  # when the transaction began (its first AddPartitions/AddOffsets), -1 if none
    updated_ms: int = -1  # when this metadata last changed

    def copy(self) -> TxnMetadata:
        return replace(
            self,
            partitions=set(self.partitions),
            groups=set(self.groups),
            offsets={g: dict(o) for g, o in self.offsets.items()},
        )


@dataclass(frozen=True, slots=True)
class ProducerIdAndEpoch:
    producer_id: int
    producer_epoch: int


@dataclass(frozen=True, slots=True)
class TxnDescription:
    """DescribeTransactions of one transactional id (``error`` set: nothing else is)."""

    transactional_id: str
    error: TxnError | None
    state: str = TxnState.DEAD.value
    timeout_ms: int = 0
    start_ms: int = -1
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH
    partitions: tuple[TopicPartition, ...] = ()


@dataclass(frozen=True, slots=True)
class TxnListing:
    transactional_id: str
    producer_id: int
    state: str
