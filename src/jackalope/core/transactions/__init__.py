"""Kafka transactions (KIP-98): the transaction coordinator, protocol-free.

:class:`TransactionCoordinator` (:mod:`.coordinator`, the state machine) is the entry point;
:mod:`.types` holds its states, errors and values, :mod:`.state_log` reads and writes the
internal log ``__transaction_state``, :mod:`.store` is the format of its records, and
:mod:`.markers` writes the COMMIT/ABORT markers and says what it needs of the group coordinator.
"""

from jackalope.core.transactions.coordinator import TransactionCoordinator
from jackalope.core.transactions.markers import LogMarkers, MarkerWriter, TxnOffsetSink
from jackalope.core.transactions.types import (
    ProducerIdAndEpoch,
    TxnDescription,
    TxnError,
    TxnListing,
    TxnMetadata,
    TxnState,
)

__all__ = [
    "LogMarkers",
    "MarkerWriter",
    "ProducerIdAndEpoch",
    "TransactionCoordinator",
    "TxnDescription",
    "TxnError",
    "TxnListing",
    "TxnMetadata",
    "TxnOffsetSink",
    "TxnState",
]
