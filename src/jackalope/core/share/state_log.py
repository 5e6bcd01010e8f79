"""The share-partitions' internal log (``__share_group_state``): one compacted record per share
group and topic partition, replayed at start, appended to (and fsync-awaited) whenever an
acknowledgement settles or releases records, before the acknowledgement is answered.

The log is compacted by key, so the newest record of a share-partition is its truth; a null
value (a tombstone) forgets it (the group or the topic was deleted, or its offsets).  Keys and
values are compact UTF-8 JSON (``separators=(",", ":")``, so a key is the same bytes every time):

``["share", group_id, topic, partition]``
    ``{"start": int, "end": int, "runs": [[first, last, delivery_count]]}``: the
    share-partition start offset, the end offset, and the unsettled runs of offsets between
    them with their delivery counts (every other offset of the window is settled).

Unknown key kinds are skipped when replaying, so later versions can add kinds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jackalope.core.internal_log import InternalLog
from jackalope.storage import LogManager, Record

NAME = "__share_group_state"

Key = tuple[str, str, int]  # group, topic, partition


@dataclass(frozen=True, slots=True)
class State:
    start: int
    end: int
    runs: list[tuple[int, int, int]]


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def state_record(key: Key, state: State | None) -> Record:
    group, topic, partition = key
    raw_key = _dumps(["share", group, topic, partition])
    if state is None:
        return Record(value=None, key=raw_key)
    value = {"start": state.start, "end": state.end, "runs": [list(r) for r in state.runs]}
    return Record(value=_dumps(value), key=raw_key)


def decode(record: Record) -> tuple[Key, State | None] | None:
    """One record: its key and state (None: a tombstone); None for a kind this version does
    not know.  Raises ``ValueError`` (``KeyError``, ``TypeError``) for a malformed record."""
    if record.key is None:
        raise ValueError("record without a key")
    key = json.loads(record.key)
    if not isinstance(key, list) or not key:
        raise ValueError("key is not a JSON array")
    if key[0] != "share":
        return None
    parsed: Key = (str(key[1]), str(key[2]), int(key[3]))
    if record.value is None:
        return parsed, None
    v = json.loads(record.value)
    runs = [(int(a), int(b), int(c)) for a, b, c in v["runs"]]
    return parsed, State(int(v["start"]), int(v["end"]), runs)


class ShareStateLog(InternalLog):
    def __init__(self, logs: LogManager, name: str = NAME) -> None:
        super().__init__(logs, name, "SharePartitions")

    async def load(self) -> dict[Key, State]:
        states: dict[Key, State] = {}
        async for record in self.replay():
            try:
                entry = decode(record)
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                self.skip(record, exc)
                continue
            if entry is None:
                continue
            key, state = entry
            if state is None:
                states.pop(key, None)
            else:
                states[key] = state
        return states
