"""The records the coordinator keeps in its internal log (``__consumer_offsets``).

The log is compacted by key, so each record's key names what it describes and the newest
record per key is the truth; a record whose value is null (a tombstone) deletes it.  Keys and
values are compact UTF-8 JSON (``separators=(",", ":")``, so a key is byte-for-byte the same
every time it is written):

``["offset", group, topic, partition]``
    a committed offset: ``{"offset": int, "leader_epoch": int, "metadata": str,
    "commit_timestamp": int (ms)}``

``["group", group]``
    the group's membership after each completed rebalance (Kafka's GroupMetadata record), so a
    restart resumes a stable group without a rebalance: ``{"protocol_type": str|null,
    "generation": int, "protocol": str|null, "leader": str|null, "state_timestamp": int (ms),
    "members": [{"member_id", "group_instance_id", "client_id", "client_host",
    "session_timeout_ms", "rebalance_timeout_ms", "subscription": base64,
    "assignment": base64}]}``

``["consumer_group", group]``
    a group of the consumer protocol (KIP-848), written whenever its epochs, members or
    assignments change: ``{"group_epoch", "assignment_epoch", "assignor", "subscription":
    {topic: partitions}, "members": [...], "target": {member id: {topic: [partition]}}}``
    (the JSON of :meth:`ConsumerGroup.to_json`, read back by ``from_json``); a classic-protocol
    member of the group (online migration) has ``"classic": {"session_timeout_ms": int,
    "protocols": [[name, base64 metadata]]}``, the others ``null`` (or no such key).  Converting
    a group writes both records: upgraded, the consumer group's and an empty ``group`` one;
    downgraded, the ``consumer_group`` tombstone and the classic group's.

Unknown key kinds are skipped when replaying, so later versions can add kinds.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from jackalope.core.groups.types import OffsetAndMetadata
from jackalope.storage import Record


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    """A committed offset as stored, with when it was committed."""

    offset: OffsetAndMetadata
    commit_timestamp: int


@dataclass(frozen=True, slots=True)
class StoredMember:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    subscription: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class StoredGroup:
    protocol_type: str | None
    generation: int
    protocol: str | None
    leader: str | None
    state_timestamp: int
    members: list[StoredMember]


def offset_key(group_id: str, topic: str, partition: int) -> bytes:
    return _dumps(["offset", group_id, topic, partition])


def group_key(group_id: str) -> bytes:
    return _dumps(["group", group_id])


def offset_record(group_id: str, topic: str, partition: int, committed: CommittedOffset) -> Record:
    value = {
        "offset": committed.offset.offset,
        "leader_epoch": committed.offset.leader_epoch,
        "metadata": committed.offset.metadata,
        "commit_timestamp": committed.commit_timestamp,
    }
    return Record(value=_dumps(value), key=offset_key(group_id, topic, partition))


def offset_tombstone(group_id: str, topic: str, partition: int) -> Record:
    return Record(value=None, key=offset_key(group_id, topic, partition))


def group_record(group_id: str, group: StoredGroup) -> Record:
    value = {
        "protocol_type": group.protocol_type,
        "generation": group.generation,
        "protocol": group.protocol,
        "leader": group.leader,
        "state_timestamp": group.state_timestamp,
        "members": [
            {
                "member_id": m.member_id,
                "group_instance_id": m.group_instance_id,
                "client_id": m.client_id,
                "client_host": m.client_host,
                "session_timeout_ms": m.session_timeout_ms,
                "rebalance_timeout_ms": m.rebalance_timeout_ms,
                "subscription": base64.b64encode(m.subscription).decode(),
                "assignment": base64.b64encode(m.assignment).decode(),
            }
            for m in group.members
        ],
    }
    return Record(value=_dumps(value), key=group_key(group_id))


def group_tombstone(group_id: str) -> Record:
    return Record(value=None, key=group_key(group_id))


def consumer_group_key(group_id: str) -> bytes:
    return _dumps(["consumer_group", group_id])


def consumer_group_record(group_id: str, value: dict[str, Any]) -> Record:
    return Record(value=_dumps(value), key=consumer_group_key(group_id))


def consumer_group_tombstone(group_id: str) -> Record:
    return Record(value=None, key=consumer_group_key(group_id))


@dataclass(frozen=True, slots=True)
class OffsetEntry:
    """A decoded offset record; ``committed`` is None for a tombstone."""

    group_id: str
    topic: str
    partition: int
    committed: CommittedOffset | None


@dataclass(frozen=True, slots=True)
class GroupEntry:
    """A decoded group record; ``group`` is None for a tombstone."""

    group_id: str
    group: StoredGroup | None


@dataclass(frozen=True, slots=True)
class ConsumerGroupEntry:
    """A decoded consumer-protocol group record; ``value`` is None for a tombstone."""

    group_id: str
    value: dict[str, Any] | None


def decode(record: Record) -> OffsetEntry | GroupEntry | ConsumerGroupEntry | None:
    """Decode one record of the log; None for a kind this version does not know.

    Raises ``ValueError`` (``KeyError``, ``TypeError``) for a malformed record.
    """
    if record.key is None:
        raise ValueError("record without a key")
    key = json.loads(record.key)
    if not isinstance(key, list) or not key:
        raise ValueError("key is not a non-empty JSON array")
    value = None if record.value is None else json.loads(record.value)
    if key[0] == "offset":
        _, group_id, topic, partition = key
        committed = None
        if value is not None:
            committed = CommittedOffset(
                OffsetAndMetadata(int(value["offset"]), int(value["leader_epoch"]), str(value["metadata"])),
                int(value["commit_timestamp"]),
            )
        return OffsetEntry(str(group_id), str(topic), int(partition), committed)
    if key[0] == "group":
        group_id = str(key[1])
        if value is None:
            return GroupEntry(group_id, None)
        members = [
            StoredMember(
                member_id=str(m["member_id"]),
                group_instance_id=m["group_instance_id"],
                client_id=str(m["client_id"]),
                client_host=str(m["client_host"]),
                session_timeout_ms=int(m["session_timeout_ms"]),
                rebalance_timeout_ms=int(m["rebalance_timeout_ms"]),
                subscription=base64.b64decode(m["subscription"]),
                assignment=base64.b64decode(m["assignment"]),
            )
            for m in value["members"]
        ]
        stored = StoredGroup(
            protocol_type=value["protocol_type"],
            generation=int(value["generation"]),
            protocol=value["protocol"],
            leader=value["leader"],
            state_timestamp=int(value["state_timestamp"]),
            members=members,
        )
        return GroupEntry(group_id, stored)
    if key[0] == "consumer_group":
        if value is not None and not isinstance(value, dict):
            raise ValueError("consumer group record is not a JSON object")
        return ConsumerGroupEntry(str(key[1]), value)
    return None
