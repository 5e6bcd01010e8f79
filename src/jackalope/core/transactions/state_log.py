"""The transaction coordinator's internal log (``__transaction_state``): replayed into the
transactional ids' metadata at start, appended to (and fsync-awaited) at every state change."""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from jackalope.core.transactions import store
from jackalope.core.transactions.types import TxnMetadata
from jackalope.storage import Log, LogManager

log = logging.getLogger(__name__)

_REPLAY_BYTES: Final = 1 << 20


class TransactionLog:
    """The internal log named ``name`` in ``logs``; made on first write, as Kafka does."""

    def __init__(self, logs: LogManager, name: str) -> None:
        self.logs = logs
        self.name = name
        self._log: Log | None = None
        self._loaded = False

    async def load(self) -> dict[str, TxnMetadata]:
        """Replay the log (if there is one): the newest metadata of every transactional id."""
        self._loaded = True
        self._log = log_ = self.logs.get(self.name)
        txns: dict[str, TxnMetadata] = {}
        offset = log_.start_offset if log_ is not None else 0
        while log_ is not None and offset < log_.end_offset:
            records = log_.read_records(offset, _REPLAY_BYTES)
            if not records:  # a gap (compaction): continue after it
                offset = log_.read(offset, _REPLAY_BYTES).next_offset
                continue
            for record in records:
                try:
                    entry = store.decode(record)
                except (ValueError, KeyError, TypeError, IndexError) as exc:
                    log.warning(
                        "skipping malformed record at offset %d of %s: %s", record.offset, self.name, exc
                    )
                    continue
                if entry is None:
                    continue
                if entry.txn is None:
                    txns.pop(entry.transactional_id, None)
                else:
                    txns[entry.transactional_id] = entry.txn
            offset = records[-1].offset + 1
            await asyncio.sleep(0)  # let the loop breathe on a large log
        return txns

    @property
    def log(self) -> Log:
        if not self._loaded:
            raise RuntimeError("TransactionCoordinator.load() has not run")
        if self._log is None:
            config = self.logs.default_config.replace(cleanup_policy="compact", retention_ms=-1)
            self._log = self.logs.get_or_create(self.name, config)
        return self._log

    async def write(self, txn: TxnMetadata) -> None:
        """Append ``txn``'s record and wait until it is durable (raises ``StorageError``)."""
        info = self.log.append([store.txn_record(txn)])
        await self.logs.wait_durable(self.log, info.last_offset)

    async def forget(self, transactional_ids: list[str]) -> None:
        """Append tombstones for ``transactional_ids`` and wait until durable."""
        info = self.log.append([store.txn_tombstone(t) for t in transactional_ids])
        await self.logs.wait_durable(self.log, info.last_offset)
