"""Per-log settings: segment rolling, retention and the durability policy."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from jackalope.storage.files import atomic_write

DAY_MS = 24 * 3600 * 1000
# "": neither deletion nor compaction, records are kept forever (as Kafka 4.1 accepts)
CLEANUP_POLICIES = frozenset({"", "delete", "compact", "compact,delete", "delete,compact"})


class Durability(StrEnum):
    """When an append counts as durable (what confirms and ``acks`` wait for)."""

    ALWAYS = "always"  # fdatasync after each group of appends (group commit), off the event loop
    INTERVAL = "interval"  # fdatasync every ``fsync_interval_ms``
    NEVER = "never"  # durable once written to the OS; it survives a process crash, not a power cut


@dataclass(frozen=True)
class LogConfig:
    segment_bytes: int = 1 << 30
    segment_ms: int = 7 * DAY_MS
    retention_ms: int = 7 * DAY_MS  # -1: keep forever
    retention_bytes: int = -1  # -1: no size limit
    durability: Durability = Durability.ALWAYS
    fsync_interval_ms: int = 1000
    index_interval_bytes: int = 4096
    cleanup_policy: str = "delete"  # "delete", "compact", both (either order) or "" (keep all)
    delete_retention_ms: int = DAY_MS  # how long compaction keeps tombstones (null values)
    min_compaction_lag_ms: int = 0  # records younger than this are not compacted
    max_message_bytes: int = 1048588  # largest batch an append accepts
    log_append_time: bool = False  # stamp batches with the broker's clock instead of the producer's

    def __post_init__(self) -> None:
        object.__setattr__(self, "durability", Durability(self.durability))
        if self.segment_bytes < 1024:
            raise ValueError("segment_bytes must be at least 1024")
        if self.segment_ms < 1 or self.fsync_interval_ms < 1 or self.index_interval_bytes < 1:
            raise ValueError("segment_ms, fsync_interval_ms and index_interval_bytes must be positive")
        if self.cleanup_policy not in CLEANUP_POLICIES:
            raise ValueError(f"cleanup_policy must be one of {sorted(CLEANUP_POLICIES)}")
        if self.max_message_bytes < 0:
            raise ValueError("max_message_bytes must not be negative")

    @property
    def compact(self) -> bool:
        return "compact" in self.cleanup_policy

    @property
    def delete(self) -> bool:
        return "delete" in self.cleanup_policy

    def replace(self, **changes: Any) -> LogConfig:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["durability"] = self.durability.value
        return d

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LogConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: Path) -> None:
        atomic_write(path, (json.dumps(self.to_json(), indent=2) + "\n").encode())

    @classmethod
    def load(cls, path: Path, default: LogConfig) -> LogConfig:
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return default
