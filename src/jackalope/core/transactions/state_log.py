"""The transaction coordinator's internal log (``__transaction_state``): replayed into the
transactional ids' metadata at start, appended to (and fsync-awaited) at every state change."""

from __future__ import annotations

from jackalope.core.internal_log import InternalLog
from jackalope.core.transactions import store
from jackalope.core.transactions.types import TxnMetadata
from jackalope.storage import LogManager


class TransactionLog(InternalLog):
    """The internal log named ``name`` in ``logs``; made on first write, as Kafka does."""

    def __init__(self, logs: LogManager, name: str) -> None:
        super().__init__(logs, name, "TransactionCoordinator")

    async def load(self) -> dict[str, TxnMetadata]:
        """Replay the log (if there is one): the newest metadata of every transactional id."""
        txns: dict[str, TxnMetadata] = {}
        async for record in self.replay():
            try:
                entry = store.decode(record)
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                self.skip(record, exc)
                continue
            if entry is None:
                continue
            if entry.txn is None:
                txns.pop(entry.transactional_id, None)
            else:
                txns[entry.transactional_id] = entry.txn
        return txns

    async def save(self, txn: TxnMetadata) -> None:
        """Append ``txn``'s record and wait until it is durable (raises ``StorageError``)."""
        await self.write([store.txn_record(txn)])

    async def forget(self, transactional_ids: list[str]) -> None:
        """Append tombstones for ``transactional_ids`` and wait until durable."""
        await self.write([store.txn_tombstone(t) for t in transactional_ids])
