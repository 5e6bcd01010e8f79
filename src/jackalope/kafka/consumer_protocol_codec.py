"""Kafka's embedded consumer protocol, the bytes classic consumers put in JoinGroup metadata
(``ConsumerProtocolSubscription``) and SyncGroup assignments (``ConsumerProtocolAssignment``):
a big-endian int16 version, then the message of that version (v0-v3; a newer version is read
as v3, as Kafka's clients do).  The group coordinator uses it (as its ``ClassicCodec``) to
move classic members into and out of consumer groups (KIP-848 online migration).
"""

from __future__ import annotations

import importlib
import io
import struct
from typing import Any, Final

from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i32

from jackalope.core.groups.assignors import TopicAssignment
from jackalope.core.groups.migration import ClassicSubscription

_VERSION: Final = struct.Struct(">h")
_NEWEST: Final = 3


def _version(data: bytes) -> int | None:
    if len(data) < _VERSION.size:
        return None
    (version,) = _VERSION.unpack_from(data)
    return None if version < 0 else min(version, _NEWEST)


def _module(kind: str, version: int) -> Any:
    return importlib.import_module(f"kio.schema.consumer_protocol_{kind}.v{version}.data")


def _partitions(entries: Any) -> TopicAssignment:
    out: dict[str, frozenset[int]] = {}
    for entry in entries:
        topic = str(entry.topic)
        out[topic] = out.get(topic, frozenset()) | frozenset(int(p) for p in entry.partitions)
    return {t: ps for t, ps in sorted(out.items()) if ps}


class ConsumerProtocolCodec:
    """The coordinator's :class:`~jackalope.core.groups.migration.ClassicCodec` for Kafka."""

    def subscription(self, metadata: bytes) -> ClassicSubscription | None:
        version = _version(metadata)
        if version is None:
            return None
        try:
            cls = _module("subscription", version).ConsumerProtocolSubscription
            value, _ = entity_reader(cls)(metadata, _VERSION.size)
        except Exception:
            return None
        owned = _partitions(getattr(value, "owned_partitions", ()))
        return ClassicSubscription(
            tuple(str(t) for t in value.topics), owned, getattr(value, "rack_id", None) or None
        )

    def assignment(self, data: bytes) -> TopicAssignment | None:
        version = _version(data)
        if version is None:
            return None
        try:
            cls = _module("assignment", version).ConsumerProtocolAssignment
            value, _ = entity_reader(cls)(data, _VERSION.size)
        except Exception:
            return None
        return _partitions(value.assigned_partitions)

    def encode_assignment(self, partitions: TopicAssignment, metadata: bytes) -> bytes:
        version = _version(metadata) or 0
        module = _module("assignment", version)
        value = module.ConsumerProtocolAssignment(
            assigned_partitions=tuple(
                module.TopicPartition(topic=t, partitions=tuple(i32(p) for p in sorted(ps)))
                for t, ps in sorted(partitions.items())
                if ps
            ),
            user_data=None,
        )
        out = io.BytesIO()
        out.write(_VERSION.pack(version))
        entity_writer(type(value))(out, value)
        return out.getvalue()
