"""Server-side partition assignors of the consumer group protocol (KIP-848), protocol-free.

Kafka's ``group.consumer.assignors`` offers ``uniform`` (the default) and ``range``; a member
names the one it wants in its heartbeat (``server_assignor``), and the group uses the one
most of its members name (else the broker's default).  Both take the members (each with the
topics it subscribes to that exist, and its current target assignment) and the partition
count of every subscribed topic, and answer member id -> topic -> partitions; every partition
of a topic that someone subscribes to goes to exactly one of its subscribers.

* :class:`UniformAssignor`: spreads all partitions as evenly as the subscriptions allow and
  is sticky: a member keeps what its current target assignment gives it unless that makes
  the spread uneven.  With identical subscriptions every member gets within one partition
  of every other.  (Kafka's uniform assignor also weighs racks; racks are ignored here.)
* :class:`RangeAssignor`: per topic, its subscribers sorted (by instance id, else member id)
  each take a contiguous range, the first ``n % k`` one more; members that subscribe to the
  same topics get the same partition numbers of each (co-partitioning).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

TopicAssignment = dict[str, frozenset[int]]  # topic -> partitions
GroupAssignment = dict[str, TopicAssignment]  # member id -> its assignment


@dataclass(frozen=True, slots=True)
class MemberSpec:
    """One member as an assignor sees it."""

    member_id: str
    topics: frozenset[str]  # subscribed topics that exist
    instance_id: str | None = None
    current: Mapping[str, frozenset[int]] = field(default_factory=dict)  # its current target


class Assignor(Protocol):
    name: str

    def assign(self, members: Sequence[MemberSpec], partitions: Mapping[str, int]) -> GroupAssignment:
        """Assign every partition of ``partitions`` (topic -> count) subscribed to by someone."""
        ...


def _pack(owned: Mapping[str, Iterable[tuple[str, int]]]) -> GroupAssignment:
    out: GroupAssignment = {}
    for member_id, tps in owned.items():
        by_topic: dict[str, set[int]] = {}
        for topic, partition in tps:
            by_topic.setdefault(topic, set()).add(partition)
        out[member_id] = {t: frozenset(ps) for t, ps in sorted(by_topic.items())}
    return out


class UniformAssignor:
    name = "uniform"

    def assign(self, members: Sequence[MemberSpec], partitions: Mapping[str, int]) -> GroupAssignment:
        ids = sorted(m.member_id for m in members)
        specs = {m.member_id: m for m in members}
        subscribers: dict[str, list[str]] = {}
        for member_id in ids:
            for topic in sorted(specs[member_id].topics):
                if topic in partitions:
                    subscribers.setdefault(topic, []).append(member_id)
        owned: dict[str, set[tuple[str, int]]] = {member_id: set() for member_id in ids}
        owner: dict[tuple[str, int], str] = {}
        # 1. Stickiness: keep what the current target gives, where it is still valid.
        for member_id in ids:
            spec = specs[member_id]
            for topic, parts in sorted(spec.current.items()):
                if topic not in spec.topics or topic not in partitions:
                    continue
                for p in sorted(parts):
                    tp = (topic, p)
                    if 0 <= p < partitions[topic] and tp not in owner:
                        owner[tp] = member_id
                        owned[member_id].add(tp)
        # 2. Whatever nobody holds goes to its least loaded subscriber.
        for topic in sorted(subscribers):
            for p in range(partitions[topic]):
                tp = (topic, p)
                if tp not in owner:
                    best = min(subscribers[topic], key=lambda m: (len(owned[m]), m))
                    owner[tp] = best
                    owned[best].add(tp)
        # 3. Even out: move a partition from a member to a subscriber of its topic holding at
        # least two fewer, until no such move is left (each move lowers the sum of squared loads).
        while self._move_one(ids, owned, subscribers):
            pass
        return _pack(owned)

    @staticmethod
    def _move_one(
        ids: list[str], owned: dict[str, set[tuple[str, int]]], subscribers: Mapping[str, list[str]]
    ) -> bool:
        for source in sorted(ids, key=lambda m: (-len(owned[m]), m)):
            load = len(owned[source])
            for tp in sorted(owned[source], reverse=True):
                candidates = [m for m in subscribers[tp[0]] if len(owned[m]) < load - 1]
                if candidates:
                    target = min(candidates, key=lambda m: (len(owned[m]), m))
                    owned[source].discard(tp)
                    owned[target].add(tp)
                    return True
        return False


class RangeAssignor:
    name = "range"

    def assign(self, members: Sequence[MemberSpec], partitions: Mapping[str, int]) -> GroupAssignment:
        ordered = sorted(members, key=lambda m: (m.instance_id or m.member_id, m.member_id))
        owned: dict[str, list[tuple[str, int]]] = {m.member_id: [] for m in ordered}
        for topic in sorted(partitions):
            subs = [m.member_id for m in ordered if topic in m.topics]
            if not subs:
                continue
            count = partitions[topic]
            quota, extra = divmod(count, len(subs))
            start = 0
            for i, member_id in enumerate(subs):
                size = quota + (1 if i < extra else 0)
                owned[member_id].extend((topic, p) for p in range(start, start + size))
                start += size
        return _pack(owned)


_ALL: Final[tuple[Assignor, ...]] = (UniformAssignor(), RangeAssignor())
ASSIGNORS: Final[dict[str, Assignor]] = {a.name: a for a in _ALL}
