"""The share-group assignor (Kafka's ``simple`` assignor for share groups, KIP-932).

Unlike a consumer group's, a share group's partition may go to several members: the records
of a partition are handed out record by record, so sharing one is safe.  The assignment

* gives every partition of every subscribed topic to at least one member subscribed to it;
* gives each partition to exactly one member while there are at least as many partitions as
  members (balanced: with one subscription for all, the members' counts differ by at most 1);
* when members outnumber the partitions they can have, gives each member one partition, the
  partitions shared as evenly as possible;
* is sticky: a member keeps the partitions it had as far as balance allows.

Protocol-free and deterministic (ties are broken by member id, topic and partition).
"""

from __future__ import annotations

from collections.abc import Mapping

TopicPartition = tuple[str, int]


def assign(
    subscriptions: Mapping[str, frozenset[str]],
    topics: Mapping[str, int],
    current: Mapping[str, frozenset[TopicPartition]] | None = None,
) -> dict[str, frozenset[TopicPartition]]:
    """``subscriptions``: member id -> subscribed topic names; ``topics``: topic -> partition
    count (topics missing or without partitions are skipped); ``current``: what members have
    now (for stickiness).  Returns member id -> its partitions, for every member."""
    current = current or {}
    members = sorted(subscriptions)
    candidates: dict[TopicPartition, list[str]] = {}
    for topic in sorted({t for subs in subscriptions.values() for t in subs}):
        subscribers = [m for m in members if topic in subscriptions[m]]
        for partition in range(max(topics.get(topic, 0), 0)):
            candidates[(topic, partition)] = subscribers
    owned: dict[str, set[TopicPartition]] = {m: set() for m in members}
    owner: dict[TopicPartition, str] = {}

    # 1. Each partition to one member: first sticky (up to a fair share), then the least loaded.
    fair = _fair_shares(candidates, members)
    for member in members:
        for tp in sorted(current.get(member, frozenset())):
            if (
                tp in candidates
                and tp not in owner
                and member in candidates[tp]
                and len(owned[member]) < fair[member]
            ):
                owner[tp] = member
                owned[member].add(tp)
    for tp in sorted(candidates, key=lambda tp: (len(candidates[tp]), tp)):
        if tp not in owner:
            member = min(candidates[tp], key=lambda m: (len(owned[m]), m))
            owner[tp] = member
            owned[member].add(tp)

    # 2. Even out: move partitions from a member with two more than another who may take them.
    moved = True
    while moved:
        moved = False
        for low in sorted(members, key=lambda m: (len(owned[m]), m)):
            for high in sorted(members, key=lambda m: (-len(owned[m]), m)):
                if len(owned[high]) - len(owned[low]) < 2:
                    break
                movable = sorted(tp for tp in owned[high] if low in candidates[tp])
                if movable:
                    tp = movable[-1]
                    owned[high].discard(tp)
                    owned[low].add(tp)
                    owner[tp] = low
                    moved = True
                    break
            if moved:
                break

    # 3. Members left without a partition share one: the one with the fewest members so far.
    sharers: dict[TopicPartition, int] = dict.fromkeys(candidates, 1)
    for member in members:
        if owned[member]:
            continue
        choices = [tp for tp, ms in candidates.items() if member in ms]
        if not choices:
            continue
        sticky = current.get(member, frozenset())
        tp = min(choices, key=lambda tp: (sharers[tp], tp not in sticky, tp))
        owned[member].add(tp)
        sharers[tp] += 1
    return {m: frozenset(owned[m]) for m in members}


def _fair_shares(candidates: Mapping[TopicPartition, list[str]], members: list[str]) -> dict[str, int]:
    """How many partitions each member may keep in the sticky pass: its partitions' share
    among their subscribers, rounded up."""
    share: dict[str, float] = dict.fromkeys(members, 0.0)
    for subscribers in candidates.values():
        for member in subscribers:
            share[member] += 1 / len(subscribers)
    return {m: max(int(share[m] + 0.999999), 0) for m in members}
