"""The protocol-independent broker: today the named logs of the storage engine.

Queues, exchanges and topics will be built here on the same logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jackalope.storage import AppendInfo, Log, LogConfig, LogManager, Record


class LogNotFound(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"no log named {self.name!r}"


class BrokerCore:
    def __init__(self, logs: LogManager) -> None:
        self.logs = logs

    def log(self, name: str) -> Log:
        found = self.logs.get(name)
        if found is None:
            raise LogNotFound(name)
        return found

    def create_log(self, name: str, overrides: dict[str, Any] | None = None) -> tuple[Log, bool]:
        """Create ``name`` (default config with ``overrides``); return it and whether it is new."""
        existing = self.logs.get(name)
        if existing is not None:
            return existing, False
        config: LogConfig = self.logs.default_config.replace(**(overrides or {}))
        return self.logs.create(name, config), True

    def delete_log(self, name: str) -> None:
        self.log(name)
        self.logs.delete(name)

    async def append(self, name: str, records: Sequence[Record]) -> AppendInfo:
        """Append and wait until the records are durable under the log's policy."""
        target = self.log(name)
        info = target.append(records)
        await self.logs.wait_durable(target, info.last_offset)
        return info

    def describe(self, name: str) -> dict[str, Any]:
        target = self.log(name)
        return {
            "name": name,
            "start_offset": target.start_offset,
            "end_offset": target.end_offset,
            "durable_offset": target.durable_offset,
            "size_bytes": target.size_bytes,
            "segments": target.segment_count,
            "config": target.config.to_json(),
        }
