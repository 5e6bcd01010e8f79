"""KIP-848 online migration at the coordinator: a classic group upgraded to a consumer group
when a consumer-protocol member joins, classic members served inside a consumer group
(JoinGroup/SyncGroup/Heartbeat/LeaveGroup, their assignment by the broker's assignor), the
downgrade when the last consumer-protocol member leaves, the policy, and persistence."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from jackalope.core.groups import GroupCoordinator, GroupError, OffsetAndMetadata
from jackalope.core.groups.consumer_group import HeartbeatRequest, MemberState
from jackalope.core.groups.migration import MigrationPolicy
from jackalope.kafka.consumer_protocol_codec import ConsumerProtocolCodec
from jackalope.settings import Settings, SettingsError
from jackalope.storage import LogManager

CODEC = ConsumerProtocolCodec()
Factory = Callable[..., Awaitable[GroupCoordinator]]


def fs(*ps: int) -> frozenset[int]:
    return frozenset(ps)


def _str(s: str) -> bytes:
    return struct.pack(">h", len(s)) + s.encode()


def subscription(topics: list[str], owned: dict[str, list[int]] | None = None) -> bytes:
    """ConsumerProtocolSubscription: v0 without owned partitions, v1 with them."""
    body = struct.pack(">i", len(topics)) + b"".join(_str(t) for t in topics) + struct.pack(">i", -1)
    if owned is None:
        return struct.pack(">h", 0) + body
    body += struct.pack(">i", len(owned))
    for t, ps in owned.items():
        body += _str(t) + struct.pack(">i", len(ps)) + b"".join(struct.pack(">i", p) for p in ps)
    return struct.pack(">h", 1) + body


def partitions(assignment: bytes) -> dict[str, frozenset[int]]:
    decoded = CODEC.assignment(assignment)
    assert decoded is not None
    return decoded


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Factory]:
    opened: list[tuple[GroupCoordinator, LogManager]] = []

    async def factory(**kwargs: Any) -> GroupCoordinator:
        logs = LogManager(tmp_path / "logs")
        logs.open()
        await logs.start()
        coordinator = GroupCoordinator(
            logs,
            min_session_timeout_ms=10,
            initial_rebalance_delay_ms=0,
            topic_partitions=lambda: {"t": 4},
            classic_codec=CODEC,
            **kwargs,
        )
        await coordinator.load()
        opened.append((coordinator, logs))
        return coordinator

    yield factory
    for coordinator, logs in opened:
        coordinator.close()
        await logs.close()


async def wait_for(predicate: Callable[[], Any], within: float = 5) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def classic_join(
    c: GroupCoordinator,
    member_id: str = "",
    owned: dict[str, list[int]] | None = None,
    *,
    session_ms: int = 10_000,
    protocol: str = "range",
) -> Any:
    return await c.join(
        "g",
        member_id,
        None,
        "cl",
        "/h",
        session_ms,
        10_000,
        "consumer",
        [(protocol, subscription(["t"], owned))],
        False,
    )


def consumer_join(member_id: str, **kw: Any) -> HeartbeatRequest:
    return HeartbeatRequest(
        member_id, 0, rebalance_timeout_ms=10_000, subscribed_topic_names=("t",), owned={}, **kw
    )


async def stable_classic_group(c: GroupCoordinator) -> str:
    """A classic group of one member ("range"), holding every partition; its member id."""
    joined = await classic_join(c)
    assert joined.error is None and joined.generation_id == 1
    everything = CODEC.encode_assignment({"t": fs(0, 1, 2, 3)}, subscription(["t"]))
    synced = await c.sync("g", 1, joined.member_id, None, "consumer", "range", {joined.member_id: everything})
    assert synced.error is None
    return str(joined.member_id)


async def test_a_consumer_member_upgrades_a_classic_group_and_both_get_partitions(make: Factory) -> None:
    c = await make()
    a = await stable_classic_group(c)
    r = c.consumer_heartbeat("g", consumer_join("b"))
    assert r.error is None and r.assignment == {}  # A still holds them all
    error, group = c.consumer_describe("g")
    assert error is None and group is not None
    member = group.members[a]
    assert member.classic is not None and member.classic.session_timeout_ms == 10_000
    assert member.epoch == 1 and member.assigned == {"t": fs(0, 1, 2, 3)}
    assert member.subscribed_topic_names == ("t",)
    assert c.describe("g").group_type == "consumer"
    # the classic member is told to rejoin; it joins as a follower with its epoch as generation
    assert c.heartbeat("g", 1, a) is GroupError.REBALANCE_IN_PROGRESS
    joined = await classic_join(c, a)
    assert joined.error is None and joined.leader_id == "" and joined.members == []
    assert (joined.protocol_type, joined.protocol_name) == ("consumer", "range")
    assert joined.generation_id == group.group_epoch
    synced = await c.sync("g", joined.generation_id, a, None, "consumer", "range", {})
    assert synced.error is None
    mine = partitions(synced.assignment)
    r = c.consumer_heartbeat("g", HeartbeatRequest("b", r.member_epoch, owned={}))
    assert r.error is None and r.assignment is not None
    theirs = r.assignment
    assert len(mine["t"]) == len(theirs["t"]) == 2 and not mine["t"] & theirs["t"]
    assert c.heartbeat("g", joined.generation_id, a) is None
    # a classic member commits with its generation; another generation is ILLEGAL_GENERATION
    ok = await c.commit_offsets("g", joined.generation_id, a, None, {("t", 0): OffsetAndMetadata(5)})
    assert ok == {("t", 0): None}
    stale = await c.commit_offsets("g", 1, a, None, {("t", 0): OffsetAndMetadata(6)})
    assert stale == {("t", 0): GroupError.ILLEGAL_GENERATION}
    assert c.heartbeat("g", 1, a) is GroupError.ILLEGAL_GENERATION


async def test_the_last_consumer_member_leaving_downgrades_the_group(make: Factory) -> None:
    c = await make()
    a = await stable_classic_group(c)
    r = c.consumer_heartbeat("g", consumer_join("b"))
    joined = await classic_join(c, a)
    await c.sync("g", joined.generation_id, a, None, None, None, {})
    r = c.consumer_heartbeat("g", HeartbeatRequest("b", r.member_epoch, owned={}))
    assert c.consumer_heartbeat("g", HeartbeatRequest("b", -1)).error is None
    assert c.consumer_describe("g")[0] is GroupError.GROUP_ID_NOT_FOUND
    d = c.describe("g")
    assert (d.group_type, d.state, d.protocol_type) == ("classic", "PreparingRebalance", "consumer")
    assert [m.member_id for m in d.members] == [a]
    # the classic member rejoins and, alone, gets everything as the leader of a classic group
    assert c.heartbeat("g", joined.generation_id, a) is GroupError.REBALANCE_IN_PROGRESS
    again = await classic_join(c, a)
    assert again.error is None and again.leader_id == a
    assignment = CODEC.encode_assignment({"t": fs(0, 1, 2, 3)}, subscription(["t"]))
    synced = await c.sync("g", again.generation_id, a, None, "consumer", "range", {a: assignment})
    assert synced.error is None and partitions(synced.assignment) == {"t": fs(0, 1, 2, 3)}
    assert c.describe("g").state == "Stable"


async def test_a_classic_member_joins_a_consumer_group_and_revokes_cooperatively(make: Factory) -> None:
    c = await make()
    r = c.consumer_heartbeat("g", consumer_join("b"))
    assert r.assignment == {"t": fs(0, 1, 2, 3)}
    # a different protocol type does not fit in
    wrong = await c.join("g", "", None, "x", "/h", 10_000, 10_000, "connect", [("v1", b"")], False)
    assert wrong.error is GroupError.INCONSISTENT_GROUP_PROTOCOL
    joined = await classic_join(c, protocol="cooperative-sticky", owned={})
    assert joined.error is None and joined.generation_id == 2
    a = joined.member_id
    synced = await c.sync("g", 2, a, None, "consumer", "cooperative-sticky", {})
    assert partitions(synced.assignment) == {}  # B still holds them
    r = c.consumer_heartbeat("g", HeartbeatRequest("b", r.member_epoch, owned={"t": fs(0, 1, 2, 3)}))
    kept = r.assignment
    assert kept is not None and len(kept["t"]) == 2
    r = c.consumer_heartbeat("g", HeartbeatRequest("b", r.member_epoch, owned=kept))
    # now free: the classic member must rejoin for them
    assert c.heartbeat("g", 2, a) is GroupError.REBALANCE_IN_PROGRESS
    joined = await classic_join(c, a, owned={}, protocol="cooperative-sticky")
    synced = await c.sync("g", joined.generation_id, a, None, None, None, {})
    assert partitions(synced.assignment) == {"t": fs(0, 1, 2, 3) - kept["t"]}
    assert c.heartbeat("g", joined.generation_id, a) is None
    # the consumer member leaves: the classic one is alone, the group classic again
    c.consumer_heartbeat("g", HeartbeatRequest("b", -1))
    assert c.describe("g").group_type == "classic"


async def test_a_cooperative_member_gives_partitions_up_before_rejoining(make: Factory) -> None:
    c = await make()
    joined = await classic_join(c, protocol="cooperative-sticky", owned={})
    a = joined.member_id
    everything = CODEC.encode_assignment({"t": fs(0, 1, 2, 3)}, subscription(["t"], {}))
    await c.sync("g", 1, a, None, None, None, {a: everything})
    c.consumer_heartbeat("g", consumer_join("b"))
    # it rejoins still owning everything: it keeps its epoch and is asked to revoke two
    joined = await classic_join(c, a, owned={"t": [0, 1, 2, 3]}, protocol="cooperative-sticky")
    assert joined.generation_id == 1
    _, group = c.consumer_describe("g")
    assert group is not None and group.members[a].state is MemberState.UNREVOKED_PARTITIONS
    synced = await c.sync("g", 1, a, None, None, None, {})
    kept = partitions(synced.assignment)
    assert len(kept["t"]) == 2
    assert c.heartbeat("g", 1, a) is GroupError.REBALANCE_IN_PROGRESS
    joined = await classic_join(c, a, owned={"t": sorted(kept["t"])}, protocol="cooperative-sticky")
    assert joined.generation_id == group.group_epoch
    assert group.members[a].state is MemberState.STABLE


async def test_classic_members_leave_and_time_out(make: Factory) -> None:
    c = await make()
    c.consumer_heartbeat("g", consumer_join("b"))
    x = (await classic_join(c)).member_id
    y = (await classic_join(c, session_ms=50)).member_id
    _, group = c.consumer_describe("g")
    assert group is not None and {x, y} <= set(group.members)
    error, errors = c.leave("g", [(x, None), ("nobody", None), ("b", None)])
    assert error is None and errors == [None, GroupError.UNKNOWN_MEMBER_ID, GroupError.UNKNOWN_MEMBER_ID]
    await wait_for(lambda: y not in group.members)  # its own session timeout (50 ms)
    assert list(group.members) == ["b"]


async def test_a_fenced_consumer_member_downgrades_the_group(make: Factory) -> None:
    c = await make(consumer_session_timeout_ms=100, consumer_heartbeat_interval_ms=20)
    a = await stable_classic_group(c)
    c.consumer_heartbeat("g", consumer_join("b"))
    assert c.describe("g").group_type == "consumer"
    # B goes silent (A keeps heartbeating): B is fenced and the group becomes classic
    deadline = time.monotonic() + 5
    while c.describe("g").group_type == "consumer":
        assert time.monotonic() < deadline, "not downgraded"
        assert c.heartbeat("g", 1, a) in (None, GroupError.REBALANCE_IN_PROGRESS)
        await asyncio.sleep(0.02)
    assert [m.member_id for m in c.describe("g").members] == [a]


async def test_the_policy_decides(make: Factory) -> None:
    c = await make(consumer_migration_policy="downgrade")
    await stable_classic_group(c)
    r = c.consumer_heartbeat("g", consumer_join("b"))
    assert r.error is GroupError.GROUP_ID_NOT_FOUND and r.message is not None and "disabled" in r.message
    c.close()
    await c.logs.close()
    c = await make(consumer_migration_policy="upgrade")
    assert c.consumer_heartbeat("g", consumer_join("b")).error is None
    c.consumer_heartbeat("g", HeartbeatRequest("b", -1))
    assert c.describe("g").group_type == "consumer"  # no downgrade: still a consumer group
    with pytest.raises(ValueError, match="bidirectional, upgrade, downgrade, disabled"):
        MigrationPolicy.parse("sideways")
    with pytest.raises(SettingsError, match="kafka_group_consumer_migration_policy"):
        Settings(kafka_group_consumer_migration_policy="sideways")
    Settings(kafka_group_consumer_migration_policy="DISABLED")


async def test_a_converted_group_survives_a_restart(make: Factory) -> None:
    c = await make()
    a = await stable_classic_group(c)
    c.consumer_heartbeat("g", consumer_join("b"))
    joined = await classic_join(c, a)
    _, before = c.consumer_describe("g")
    assert before is not None
    snapshot = before.to_json()
    c.close()
    await c.logs.close()
    c = await make()
    error, after = c.consumer_describe("g")
    assert error is None and after is not None and after.to_json() == snapshot
    assert after.members[a].classic is not None
    assert c.describe("g").members and c.describe("g").group_type == "consumer"
    assert c.heartbeat("g", joined.generation_id, a) is None
    synced = await c.sync("g", joined.generation_id, a, None, None, None, {})
    assert synced.error is None


async def test_a_classic_static_member_replacing_the_last_consumer_member_downgrades(make: Factory) -> None:
    c = await make()
    a = await stable_classic_group(c)
    r = c.consumer_heartbeat("g", consumer_join("b", instance_id="i1"))
    joined = await classic_join(c, a)
    await c.sync("g", joined.generation_id, a, None, None, None, {})
    r = c.consumer_heartbeat("g", HeartbeatRequest("b", r.member_epoch, instance_id="i1", owned={}))
    theirs = r.assignment
    assert theirs is not None and len(theirs["t"]) == 2
    # the same instance comes back as a classic consumer (a rollback): it takes B's place and
    # partitions, and the group is classic again without a rebalance
    back = await c.join(
        "g", "", "i1", "cl", "/h", 10_000, 10_000, "consumer", [("range", subscription(["t"]))], False
    )
    assert back.error is None
    d = c.describe("g")
    assert (d.group_type, d.state) == ("classic", "Stable")
    assert sorted(m.member_id for m in d.members) == sorted([a, back.member_id])
    synced = await c.sync("g", back.generation_id, back.member_id, "i1", "consumer", "range", {})
    assert synced.error is None and partitions(synced.assignment) == theirs
    assert c.heartbeat("g", back.generation_id, back.member_id, "i1") is None
