"""A coordinator's internal log: one compacted log of the storage engine, made on first write
(as Kafka makes ``__consumer_offsets`` and ``__transaction_state``), replayed at start.

The group coordinator (:mod:`jackalope.core.groups.offsets_log`) and the transaction
coordinator (:mod:`jackalope.core.transactions.state_log`) each keep their state in one; what
the records mean is theirs, reading, creating and appending is this module's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Final

from jackalope.storage import AppendInfo, Log, LogManager, Record

log = logging.getLogger(__name__)

_REPLAY_BYTES: Final = 1 << 20


class InternalLog:
    """The internal log named ``name`` in ``logs``, for the coordinator named ``owner``."""

    def __init__(self, logs: LogManager, name: str, owner: str) -> None:
        self.logs = logs
        self.name = name
        self.owner = owner
        self._log: Log | None = None
        self._loaded = False

    async def replay(self) -> AsyncIterator[Record]:
        """Every record of the log (if there is one) in offset order; writing is allowed once
        this ran.  Yields to the event loop between reads, so a large log does not hold it."""
        self._loaded = True
        self._log = log_ = self.logs.get(self.name)
        offset = log_.start_offset if log_ is not None else 0
        while log_ is not None and offset < log_.end_offset:
            records = log_.read_records(offset, _REPLAY_BYTES)
            if not records:  # a gap (compaction): continue after it
                offset = log_.read(offset, _REPLAY_BYTES).next_offset
                continue
            for record in records:
                yield record
            offset = records[-1].offset + 1
            await asyncio.sleep(0)

    def skip(self, record: Record, exc: Exception) -> None:
        """Log that the malformed ``record`` is passed over in the replay."""
        log.warning("skipping malformed record at offset %d of %s: %s", record.offset, self.name, exc)

    @property
    def log(self) -> Log:
        if not self._loaded:
            raise RuntimeError(f"{self.owner}.load() has not run")
        if self._log is None:
            config = self.logs.default_config.replace(cleanup_policy="compact", retention_ms=-1)
            self._log = self.logs.get_or_create(self.name, config)
        return self._log

    def append(self, records: Sequence[Record]) -> AppendInfo:
        """Append ``records`` (raises ``StorageError``); they are not durable yet."""
        return self.log.append(records)

    async def wait_durable(self, info: AppendInfo) -> None:
        """Wait until the append ``info`` is durable (raises ``StorageError`` if it never will be)."""
        await self.logs.wait_durable(self.log, info.last_offset)

    async def write(self, records: Sequence[Record]) -> None:
        """Append ``records`` and wait until they are durable (raises ``StorageError``)."""
        await self.wait_durable(self.append(records))
