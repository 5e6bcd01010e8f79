"""The records of the transaction coordinator's internal log (``__transaction_state``).

The log is compacted by key, so the newest record of a transactional id is its truth; a record
whose value is null (a tombstone) forgets the id (it expired).  Keys and values are compact
UTF-8 JSON (``separators=(",", ":")``, so a key is the same bytes every time):

``["txn", transactional_id]``
    ``{"producer_id": int, "producer_epoch": int, "last_epoch": int, "previous_producer_id": int,
    "timeout_ms": int, "state": str (a TxnState value), "partitions": [[topic, partition]],
    "groups": [group_id], "offsets": [[group_id, topic, partition, offset, leader_epoch,
    metadata]], "start_ms": int, "updated_ms": int}``

Unknown key kinds are skipped when replaying, so later versions can add kinds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jackalope.core.groups.types import OffsetAndMetadata
from jackalope.core.transactions.types import TxnMetadata, TxnState
from jackalope.storage import Record


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def txn_key(transactional_id: str) -> bytes:
    return _dumps(["txn", transactional_id])


def txn_record(txn: TxnMetadata) -> Record:
    value = {
        "producer_id": txn.producer_id,
        "producer_epoch": txn.producer_epoch,
        "last_epoch": txn.last_epoch,
        "previous_producer_id": txn.previous_producer_id,
        "timeout_ms": txn.timeout_ms,
        "state": txn.state.value,
        "partitions": sorted([t, p] for t, p in txn.partitions),
        "groups": sorted(txn.groups),
        "offsets": [
            [g, t, p, om.offset, om.leader_epoch, om.metadata]
            for g, offsets in sorted(txn.offsets.items())
            for (t, p), om in sorted(offsets.items())
        ],
        "start_ms": txn.start_ms,
        "updated_ms": txn.updated_ms,
    }
    return Record(value=_dumps(value), key=txn_key(txn.transactional_id))


def txn_tombstone(transactional_id: str) -> Record:
    return Record(value=None, key=txn_key(transactional_id))


@dataclass(frozen=True, slots=True)
class TxnEntry:
    """A decoded record; ``txn`` is None for a tombstone."""

    transactional_id: str
    txn: TxnMetadata | None


def decode(record: Record) -> TxnEntry | None:
    """Decode one record; None for a kind this version does not know.

    Raises ``ValueError`` (``KeyError``, ``TypeError``) for a malformed record.
    """
    if record.key is None:
        raise ValueError("record without a key")
    key = json.loads(record.key)
    if not isinstance(key, list) or len(key) != 2:
        raise ValueError("key is not a JSON array of two")
    if key[0] != "txn":
        return None
    transactional_id = str(key[1])
    if record.value is None:
        return TxnEntry(transactional_id, None)
    v = json.loads(record.value)
    offsets: dict[str, dict[tuple[str, int], OffsetAndMetadata]] = {}
    for g, t, p, offset, leader_epoch, metadata in v["offsets"]:
        offsets.setdefault(str(g), {})[(str(t), int(p))] = OffsetAndMetadata(
            int(offset), int(leader_epoch), str(metadata)
        )
    txn = TxnMetadata(
        transactional_id=transactional_id,
        producer_id=int(v["producer_id"]),
        producer_epoch=int(v["producer_epoch"]),
        timeout_ms=int(v["timeout_ms"]),
        state=TxnState(v["state"]),
        last_epoch=int(v["last_epoch"]),
        previous_producer_id=int(v["previous_producer_id"]),
        partitions={(str(t), int(p)) for t, p in v["partitions"]},
        groups={str(g) for g in v["groups"]},
        offsets=offsets,
        start_ms=int(v["start_ms"]),
        updated_ms=int(v["updated_ms"]),
    )
    return TxnEntry(transactional_id, txn)
