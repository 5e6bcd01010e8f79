"""The consumer-group coordinator: Kafka's classic group protocol (join, sync, heartbeat, leave,
static membership, MEMBER_ID_REQUIRED), committed offsets and their persistence."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from jackalope.core.groups import (
    GroupCoordinator,
    GroupError,
    GroupState,
    JoinResult,
    MemberMetadata,
    OffsetAndMetadata,
    SyncResult,
    store,
)
from jackalope.core.groups.group import Group, Groups, Member
from jackalope.core.groups.offsets_log import OffsetsLog
from jackalope.core.groups.store import CommittedOffset
from jackalope.storage import LogManager, Record

DELAY_MS = 50  # group.initial.rebalance.delay.ms
REBALANCE_MS = 400
PROTOCOLS = [("range", b"sub-range"), ("roundrobin", b"sub-rr")]

Factory = Callable[..., Awaitable[GroupCoordinator]]


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Factory]:
    """Build coordinators over LogManagers in ``tmp_path`` (each call opens a fresh manager)."""
    opened: list[tuple[GroupCoordinator, LogManager]] = []

    async def factory(directory: Path | None = None, **kwargs: Any) -> GroupCoordinator:
        logs = LogManager(directory or tmp_path / "logs")
        logs.open()
        await logs.start()
        settings: dict[str, Any] = {"min_session_timeout_ms": 10, "initial_rebalance_delay_ms": DELAY_MS}
        settings.update(kwargs)
        coordinator = GroupCoordinator(logs, **settings)
        await coordinator.load()
        opened.append((coordinator, logs))
        return coordinator

    yield factory
    for coordinator, logs in opened:
        coordinator.close()
        await logs.close()  # a second close (after stop()) does nothing


async def stop(coordinator: GroupCoordinator) -> None:
    """Close a coordinator and its LogManager, as a broker shutdown does."""
    coordinator.close()
    await coordinator.logs.close()


def join(
    coordinator: GroupCoordinator,
    member_id: str = "",
    *,
    group: str = "g",
    instance: str | None = None,
    client: str = "client",
    session_ms: int = 10_000,
    rebalance_ms: int = REBALANCE_MS,
    protocol_type: str = "consumer",
    protocols: list[tuple[str, bytes]] | None = None,
    require_known: bool = False,
) -> asyncio.Task[JoinResult]:
    return asyncio.ensure_future(
        coordinator.join(
            group,
            member_id,
            instance,
            client,
            "/127.0.0.1",
            session_ms,
            rebalance_ms,
            protocol_type,
            PROTOCOLS if protocols is None else protocols,
            require_known,
        )
    )


def sync(
    coordinator: GroupCoordinator,
    result: JoinResult,
    assignments: dict[str, bytes] | None = None,
    *,
    group: str = "g",
    instance: str | None = None,
) -> asyncio.Task[SyncResult]:
    return asyncio.ensure_future(
        coordinator.sync(
            group,
            result.generation_id,
            result.member_id,
            instance,
            "consumer",
            result.protocol_name,
            assignments or {},
        )
    )


async def stable_group(
    coordinator: GroupCoordinator,
    n: int,
    *,
    instances: list[str | None] | None = None,
    session_ms: int = 10_000,
) -> list[JoinResult]:
    """Join ``n`` members in one generation and complete the sync (assignment = member id)."""
    instances = instances or [None] * n
    tasks = [
        join(coordinator, client=f"c{i}", instance=instances[i], session_ms=session_ms) for i in range(n)
    ]
    results = list(await asyncio.gather(*tasks))
    await complete_sync(coordinator, results, instances)
    return results


async def complete_sync(
    coordinator: GroupCoordinator, results: list[JoinResult], instances: list[str | None] | None = None
) -> list[SyncResult]:
    instances = instances or [None] * len(results)
    leader = next(r for r in results if r.member_id == r.leader_id)
    assignments = {m.member_id: m.member_id.encode() for m in leader.members}
    tasks = [
        sync(coordinator, r, assignments if r is leader else None, instance=i)
        for r, i in zip(results, instances, strict=True)
    ]
    synced = list(await asyncio.gather(*tasks))
    assert all(s.error is None for s in synced), synced
    return synced


# -- joining -----------------------------------------------------------------------------------


async def test_single_member_join_and_sync(make: Factory) -> None:
    c = await make()
    result = await join(c)
    assert result.error is None
    assert result.generation_id == 1
    assert result.member_id.startswith("client-")
    assert result.leader_id == result.member_id
    assert result.protocol_type == "consumer"
    assert result.protocol_name == "range"
    assert result.members == [MemberMetadata(result.member_id, None, b"sub-range")]
    assert c.describe("g").state == "CompletingRebalance"
    synced = await sync(c, result, {result.member_id: b"a0"})
    assert synced == SyncResult(None, "consumer", "range", b"a0")
    desc = c.describe("g")
    assert desc.state == "Stable"
    assert desc.protocol == "range"
    assert [(m.member_id, m.client_id, m.metadata, m.assignment) for m in desc.members] == [
        (result.member_id, "client", b"sub-range", b"a0")
    ]
    assert c.heartbeat("g", 1, result.member_id) is None


async def test_three_members_share_one_generation_and_followers_wait_for_leader(make: Factory) -> None:
    c = await make()
    results = await asyncio.gather(*(join(c, client=f"c{i}") for i in range(3)))
    assert {r.generation_id for r in results} == {1}
    leaders = {r.leader_id for r in results}
    assert len(leaders) == 1
    (leader_id,) = leaders
    leader = next(r for r in results if r.member_id == leader_id)
    followers = [r for r in results if r is not leader]
    assert sorted(m.member_id for m in leader.members) == sorted(r.member_id for r in results)
    assert all(f.members == [] for f in followers)

    follower_syncs = [sync(c, f) for f in followers]
    await asyncio.sleep(0.05)
    assert not any(t.done() for t in follower_syncs)  # nothing to hand out before the leader syncs
    assignments = {r.member_id: f"part-{r.member_id}".encode() for r in results}
    leader_sync = await sync(c, leader, assignments)
    assert leader_sync.assignment == assignments[leader.member_id]
    for f, task in zip(followers, follower_syncs, strict=True):
        assert (await task).assignment == assignments[f.member_id]
    assert c.describe("g").state == "Stable"


async def test_initial_delay_is_extended_while_members_arrive(make: Factory) -> None:
    c = await make(initial_rebalance_delay_ms=200)
    first = join(c, client="a")
    await asyncio.sleep(0.1)
    second = join(c, client="b")  # arrives within the delay: another delay follows it
    await asyncio.sleep(0.15)
    assert not first.done()  # 250 ms in: the extension (up to 400 ms) holds the rebalance open
    a, b = await asyncio.gather(first, second)
    assert a.generation_id == b.generation_id == 1


async def test_protocol_everyone_supports_that_most_prefer(make: Factory) -> None:
    c = await make()
    results = await asyncio.gather(
        join(c, protocols=[("range", b"r"), ("roundrobin", b"x")]),
        join(c, protocols=[("roundrobin", b"y")]),
        join(c, protocols=[("sticky", b"s"), ("roundrobin", b"z"), ("range", b"q")]),
    )
    assert {r.protocol_name for r in results} == {"roundrobin"}
    leader = next(r for r in results if r.member_id == r.leader_id)
    assert sorted(m.metadata for m in leader.members) == [b"x", b"y", b"z"]


async def test_incompatible_joins_are_refused(make: Factory) -> None:
    c = await make()
    await stable_group(c, 1)
    assert (await join(c, protocol_type="connect")).error is GroupError.INCONSISTENT_GROUP_PROTOCOL
    assert (await join(c, protocols=[("sticky", b"")])).error is GroupError.INCONSISTENT_GROUP_PROTOCOL
    assert (await join(c, group="other", protocols=[])).error is GroupError.INCONSISTENT_GROUP_PROTOCOL
    assert (await join(c, session_ms=5)).error is GroupError.INVALID_SESSION_TIMEOUT
    assert (await join(c, session_ms=1_800_001)).error is GroupError.INVALID_SESSION_TIMEOUT
    assert (await join(c, group="")).error is GroupError.INVALID_GROUP_ID
    assert (await join(c, "someone", group="nope")).error is GroupError.UNKNOWN_MEMBER_ID
    assert (await join(c, "someone")).error is GroupError.UNKNOWN_MEMBER_ID


async def test_member_id_required_flow(make: Factory) -> None:
    c = await make()
    first = await join(c, client="app", require_known=True)
    assert first.error is GroupError.MEMBER_ID_REQUIRED
    assert first.member_id.startswith("app-")
    assert c.describe("g").members == []  # pending, not a member yet
    assert c.heartbeat("g", 0, first.member_id) is GroupError.UNKNOWN_MEMBER_ID
    joined = await join(c, first.member_id, client="app", require_known=True)
    assert joined.error is None
    assert joined.member_id == first.member_id
    assert joined.leader_id == first.member_id


async def test_pending_member_holds_the_rebalance_until_it_joins(make: Factory) -> None:
    c = await make()
    (a,) = await stable_group(c, 1)
    pending = await join(c, require_known=True)
    assert pending.error is GroupError.MEMBER_ID_REQUIRED
    rejoin_a = join(c, a.member_id)  # a's rejoin starts a rebalance; the pending id keeps it open
    await asyncio.sleep(0.05)
    assert not rejoin_a.done()
    b = await join(c, pending.member_id)
    a2 = await rejoin_a
    assert a2.generation_id == b.generation_id == 2


async def test_pending_member_expires_after_its_session_timeout(make: Factory) -> None:
    c = await make()
    pending = await join(c, require_known=True, session_ms=50)
    await asyncio.sleep(0.1)
    assert (await join(c, pending.member_id)).error is GroupError.UNKNOWN_MEMBER_ID


async def test_new_member_triggers_rebalance_and_heartbeat_says_so(make: Factory) -> None:
    c = await make()
    (a,) = await stable_group(c, 1)
    joining_b = join(c, client="b")
    await asyncio.sleep(0.01)
    assert c.describe("g").state == "PreparingRebalance"
    assert c.heartbeat("g", a.generation_id, a.member_id) is GroupError.REBALANCE_IN_PROGRESS
    assert (await sync(c, a)).error is GroupError.REBALANCE_IN_PROGRESS
    a2, b = await asyncio.gather(join(c, a.member_id), joining_b)
    assert a2.generation_id == b.generation_id == 2
    assert a2.leader_id == a.member_id  # the leader stays while it rejoins
    assert c.heartbeat("g", 1, a.member_id) is GroupError.ILLEGAL_GENERATION
    await complete_sync(c, [a2, b])
    assert c.heartbeat("g", 2, a.member_id) is None


async def test_rejoin_with_same_metadata_in_completing_rebalance_gets_current_answer(make: Factory) -> None:
    c = await make()
    (a,) = await asyncio.gather(join(c))
    again = await join(c, a.member_id)
    assert again == a
    assert c.describe("g").state == "CompletingRebalance"


async def test_changed_metadata_while_stable_rebalances(make: Factory) -> None:
    c = await make()
    a, b = await stable_group(c, 2)
    follower = b if a.member_id == a.leader_id else a
    leader = a if follower is b else b
    # A follower rejoining with unchanged metadata is simply answered.
    same = await join(c, follower.member_id)
    assert same.generation_id == 1 and same.members == []
    assert c.describe("g").state == "Stable"
    changed = join(c, follower.member_id, protocols=[("roundrobin", b"new")])
    await asyncio.sleep(0.01)
    assert c.describe("g").state == "PreparingRebalance"
    results = await asyncio.gather(changed, join(c, leader.member_id))
    assert {r.generation_id for r in results} == {2}
    assert {r.protocol_name for r in results} == {"roundrobin"}


# -- liveness ----------------------------------------------------------------------------------


async def test_heartbeat_errors(make: Factory) -> None:
    c = await make()
    (a,) = await stable_group(c, 1)
    assert c.heartbeat("g", 1, a.member_id) is None
    assert c.heartbeat("", 1, a.member_id) is GroupError.INVALID_GROUP_ID
    assert c.heartbeat("unknown", 1, a.member_id) is GroupError.UNKNOWN_MEMBER_ID
    assert c.heartbeat("g", 1, "nobody") is GroupError.UNKNOWN_MEMBER_ID
    assert c.heartbeat("g", 7, a.member_id) is GroupError.ILLEGAL_GENERATION
    assert c.heartbeat("g", 1, a.member_id, "instance") is GroupError.UNKNOWN_MEMBER_ID
    assert (await sync(c, JoinResult(None, a.member_id, 9, protocol_name="range"))).error is (
        GroupError.ILLEGAL_GENERATION
    )
    wrong_protocol = await c.sync("g", 1, a.member_id, None, "consumer", "roundrobin", {})
    assert wrong_protocol.error is GroupError.INCONSISTENT_GROUP_PROTOCOL


async def test_session_timeout_expires_member_and_rebalances(make: Factory) -> None:
    c = await make()
    a, b = await stable_group(c, 2, session_ms=150)
    deadline = asyncio.get_running_loop().time() + 2
    errors = []
    while asyncio.get_running_loop().time() < deadline:  # only a heartbeats
        error = c.heartbeat("g", 1, a.member_id)
        errors.append(error)
        if error is not None:
            break
        await asyncio.sleep(0.03)
    assert errors[-1] is GroupError.REBALANCE_IN_PROGRESS
    assert [m.member_id for m in c.describe("g").members] == [a.member_id]
    a2 = await join(c, a.member_id, session_ms=150)  # the only member: completes at once
    assert a2.generation_id == 2
    assert a2.leader_id == a.member_id
    assert c.heartbeat("g", 1, b.member_id) is GroupError.UNKNOWN_MEMBER_ID


async def test_rebalance_timeout_removes_members_that_do_not_rejoin(make: Factory) -> None:
    c = await make()
    a, b = await stable_group(c, 2)
    start = asyncio.get_running_loop().time()
    results = await asyncio.gather(join(c, client="c"), join(c, a.member_id))
    elapsed = asyncio.get_running_loop().time() - start
    assert REBALANCE_MS / 1000 * 0.9 <= elapsed < 2  # waited for b until the rebalance timeout
    assert {r.generation_id for r in results} == {2}
    members = {m.member_id for m in c.describe("g").members}
    assert members == {r.member_id for r in results}
    assert b.member_id not in members
    assert c.heartbeat("g", 2, b.member_id) is GroupError.UNKNOWN_MEMBER_ID


async def test_members_that_do_not_sync_are_removed(make: Factory) -> None:
    c = await make()
    a, b = await asyncio.gather(join(c), join(c))
    leader = a if a.member_id == a.leader_id else b
    follower = b if leader is a else a
    await sync(c, leader, {leader.member_id: b"x", follower.member_id: b"y"})
    # the follower never syncs nor heartbeats: after the rebalance timeout it is removed
    await asyncio.sleep(REBALANCE_MS / 1000 + 0.1)
    assert [m.member_id for m in c.describe("g").members] == [leader.member_id]
    assert c.heartbeat("g", 1, leader.member_id) is GroupError.REBALANCE_IN_PROGRESS


async def test_leave(make: Factory) -> None:
    c = await make()
    a, b = await stable_group(c, 2)
    error, per_member = c.leave("g", [(b.member_id, None), ("ghost", None)])
    assert error is None
    assert per_member == [None, GroupError.UNKNOWN_MEMBER_ID]
    assert c.heartbeat("g", 1, a.member_id) is GroupError.REBALANCE_IN_PROGRESS
    a2 = await join(c, a.member_id)
    assert a2.generation_id == 2
    await complete_sync(c, [a2])
    assert c.leave("g", [(a.member_id, None)]) == (None, [None])
    desc = c.describe("g")
    assert (desc.state, desc.members) == ("Empty", [])
    assert c.leave("nope", [("x", None)]) == (None, [GroupError.UNKNOWN_MEMBER_ID])
    assert c.leave("", [("x", None)]) == (GroupError.INVALID_GROUP_ID, [])


async def test_leave_answers_a_waiting_join(make: Factory) -> None:
    c = await make()
    a, b = await stable_group(c, 2)
    rejoin_a = join(c, a.member_id)
    await asyncio.sleep(0.01)
    assert c.leave("g", [(a.member_id, None)]) == (None, [None])
    assert (await rejoin_a).error is GroupError.UNKNOWN_MEMBER_ID
    b2 = await join(c, b.member_id)
    assert b2.generation_id == 2 and b2.leader_id == b.member_id


async def test_group_max_size(make: Factory) -> None:
    c = await make(group_max_size=2)
    await stable_group(c, 2)
    assert (await join(c)).error is GroupError.GROUP_MAX_SIZE_REACHED


# -- static membership -------------------------------------------------------------------------


async def test_static_member_rejoin_replaces_its_member_id_without_rebalance(make: Factory) -> None:
    c = await make()
    a, b = await stable_group(c, 2, instances=["i-a", "i-b"])
    old = a
    again = await join(c, instance="i-a", client="c0")
    assert again.error is None
    assert again.member_id != old.member_id
    assert again.generation_id == 1  # no rebalance
    assert again.leader_id == old.leader_id  # the previous leader id: nobody re-assigns
    assert again.members == []
    assert c.describe("g").state == "Stable"
    assert c.heartbeat("g", 1, old.member_id, "i-a") is GroupError.FENCED_INSTANCE_ID
    assert c.heartbeat("g", 1, again.member_id, "i-a") is None
    assert c.heartbeat("g", 1, b.member_id, "i-b") is None  # the other member carries on
    synced = await c.sync("g", 1, again.member_id, "i-a", "consumer", "range", {})
    assert synced.assignment == old.member_id.encode()  # its old assignment
    fenced = await c.commit_offsets("g", 1, old.member_id, "i-a", {("t", 0): OffsetAndMetadata(1)})
    assert fenced == {("t", 0): GroupError.FENCED_INSTANCE_ID}


async def test_static_member_rejoin_fences_a_waiting_join(make: Factory) -> None:
    c = await make()
    a, b = await stable_group(c, 2, instances=["i-a", "i-b"])
    waiting = join(c, a.member_id, instance="i-a", protocols=[("roundrobin", b"changed")])
    await asyncio.sleep(0.01)
    assert c.describe("g").state == "PreparingRebalance"
    replacement = join(c, instance="i-a", protocols=[("roundrobin", b"changed")])
    fenced = await waiting
    assert fenced.error is GroupError.FENCED_INSTANCE_ID
    b2 = await join(c, b.member_id, instance="i-b")
    new_a = await replacement
    assert new_a.generation_id == b2.generation_id == 2
    assert new_a.member_id in {m.member_id for m in c.describe("g").members}


async def test_static_members_survive_a_rebalance_timeout(make: Factory) -> None:
    c = await make()
    s, d = await stable_group(c, 2, instances=["static", None])
    newcomer = await join(c, client="n")  # neither s nor d rejoins
    assert newcomer.generation_id == 2
    assert newcomer.leader_id == newcomer.member_id  # the only member that joined leads
    members = {m.member_id for m in c.describe("g").members}
    assert members == {s.member_id, newcomer.member_id}
    assert d.member_id not in members
    assert sorted(m.member_id for m in newcomer.members) == sorted(members)


async def test_static_member_removed_by_instance_id(make: Factory) -> None:
    c = await make()
    await stable_group(c, 1, instances=["i-a"])
    assert c.leave("g", [("", "i-a"), ("", "i-zz")]) == (None, [None, GroupError.UNKNOWN_MEMBER_ID])
    assert c.describe("g").state == "Empty"


# -- offsets -----------------------------------------------------------------------------------


async def test_commit_and_fetch(make: Factory) -> None:
    c = await make(partition_exists=lambda topic, partition: topic == "t" and partition < 3)
    (a,) = await stable_group(c, 1)
    result = await c.commit_offsets(
        "g",
        1,
        a.member_id,
        None,
        {
            ("t", 0): OffsetAndMetadata(10, 3, "m"),
            ("t", 1): OffsetAndMetadata(20),
            ("t", 9): OffsetAndMetadata(1),
            ("t", 2): OffsetAndMetadata(5, -1, "x" * 5000),
        },
    )
    assert result == {
        ("t", 0): None,
        ("t", 1): None,
        ("t", 9): GroupError.UNKNOWN_TOPIC_OR_PARTITION,
        ("t", 2): GroupError.OFFSET_METADATA_TOO_LARGE,
    }
    assert c.fetch_offsets("g") == (
        None,
        {("t", 0): OffsetAndMetadata(10, 3, "m"), ("t", 1): OffsetAndMetadata(20)},
    )
    assert c.fetch_offsets("g", [("t", 1), ("t", 2)]) == (None, {("t", 1): OffsetAndMetadata(20)})
    await c.commit_offsets("g", 1, a.member_id, None, {("t", 0): OffsetAndMetadata(11)})
    assert c.fetch_offsets("g", [("t", 0)]) == (None, {("t", 0): OffsetAndMetadata(11)})
    assert c.fetch_offsets("unknown") == (None, {})


async def test_commit_validation(make: Factory) -> None:
    c = await make()
    tp = {("t", 0): OffsetAndMetadata(1)}
    # no group: a simple consumer may commit with generation -1, nobody with a generation
    assert await c.commit_offsets("solo", -1, "", None, tp) == {("t", 0): None}
    assert await c.commit_offsets("nogroup", 3, "m", None, tp) == {("t", 0): GroupError.ILLEGAL_GENERATION}
    assert c.describe("solo").state == "Empty"
    a, b = await asyncio.gather(join(c), join(c))
    # members and generation known, but the assignment is not out yet
    assert await c.commit_offsets("g", 1, a.member_id, None, tp) == {
        ("t", 0): GroupError.REBALANCE_IN_PROGRESS
    }
    await complete_sync(c, [a, b])
    assert await c.commit_offsets("g", 1, a.member_id, None, tp) == {("t", 0): None}
    assert await c.commit_offsets("g", 0, a.member_id, None, tp) == {("t", 0): GroupError.ILLEGAL_GENERATION}
    assert await c.commit_offsets("g", 1, "stranger", None, tp) == {("t", 0): GroupError.UNKNOWN_MEMBER_ID}
    # a group with members takes no anonymous commits
    assert await c.commit_offsets("g", -1, "", None, tp) == {("t", 0): GroupError.UNKNOWN_MEMBER_ID}
    # a commit during a rebalance, for the generation still current, is accepted
    rejoin = join(c, a.member_id)
    await asyncio.sleep(0.01)
    assert await c.commit_offsets("g", 1, b.member_id, None, tp) == {("t", 0): None}
    rejoin.cancel()


async def test_offsets_and_stable_groups_survive_restart(make: Factory, tmp_path: Path) -> None:
    c = await make()
    (a,) = await stable_group(c, 1)
    await c.commit_offsets("g", 1, a.member_id, None, {("t", 0): OffsetAndMetadata(42, 7, "meta")})
    await c.commit_offsets("g", 1, a.member_id, None, {("t", 0): OffsetAndMetadata(43, 7, "meta")})
    await c.commit_offsets("solo", -1, "", None, {("u", 1): OffsetAndMetadata(5)})
    await c.commit_offsets("gone", -1, "", None, {("u", 1): OffsetAndMetadata(6)})
    assert await c.delete_groups(["gone"]) == {"gone": None}
    await stop(c)

    c2 = await make()
    assert c2.fetch_offsets("g") == (None, {("t", 0): OffsetAndMetadata(43, 7, "meta")})
    assert c2.fetch_offsets("solo") == (None, {("u", 1): OffsetAndMetadata(5)})
    assert c2.fetch_offsets("gone") == (None, {})
    # the stable group carries on without a rebalance
    desc = c2.describe("g")
    assert (desc.state, desc.protocol, [m.assignment for m in desc.members]) == (
        "Stable",
        "range",
        [a.member_id.encode()],
    )
    assert c2.heartbeat("g", 1, a.member_id) is None
    assert sorted(g.group_id for g in c2.list_groups()[1]) == ["g", "solo"]


async def test_empty_group_after_restart_keeps_its_generation(make: Factory) -> None:
    c = await make()
    (a,) = await stable_group(c, 1)
    c.leave("g", [(a.member_id, None)])
    await c.commit_offsets("g", -1, "", None, {("t", 0): OffsetAndMetadata(1)})
    await stop(c)
    c2 = await make()
    desc = c2.describe("g")
    assert (desc.state, desc.protocol_type) == ("Empty", "consumer")
    assert (await join(c2)).generation_id == 3  # 1: stable, 2: empty, 3: this one


async def test_delete_groups(make: Factory) -> None:
    c = await make()
    await stable_group(c, 1)
    await c.commit_offsets("idle", -1, "", None, {("t", 0): OffsetAndMetadata(1)})
    result = await c.delete_groups(["g", "idle", "never"])
    assert result == {"g": GroupError.NON_EMPTY_GROUP, "idle": None, "never": GroupError.GROUP_ID_NOT_FOUND}
    assert c.fetch_offsets("idle") == (None, {})
    assert c.describe("idle").state == "Dead"
    assert [g.group_id for g in c.list_groups()[1]] == ["g"]
    assert await c.delete_groups(["idle"]) == {"idle": GroupError.GROUP_ID_NOT_FOUND}


async def test_delete_topic_offsets(make: Factory) -> None:
    c = await make()
    offsets = {("t", 0): OffsetAndMetadata(1), ("t", 1): OffsetAndMetadata(2), ("u", 0): OffsetAndMetadata(3)}
    await c.commit_offsets("a", -1, "", None, offsets)
    await c.commit_offsets("b", -1, "", None, {("t", 0): OffsetAndMetadata(4)})
    assert c.delete_topic_offsets("t") == 3
    assert c.fetch_offsets("a") == (None, {("u", 0): OffsetAndMetadata(3)})
    assert c.fetch_offsets("b") == (None, {})
    assert c.delete_topic_offsets("t") == 0


async def test_offsets_of_empty_groups_expire(make: Factory) -> None:
    c = await make(offsets_retention_ms=200)
    (a,) = await stable_group(c, 1)
    await c.commit_offsets("g", 1, a.member_id, None, {("t", 0): OffsetAndMetadata(1)})
    await c.commit_offsets("solo", -1, "", None, {("t", 0): OffsetAndMetadata(1)})
    await asyncio.sleep(0.3)
    assert c.expire_offsets() == 1  # "g" has a member: its offsets stay
    assert c.describe("solo").state == "Dead"  # nothing left: forgotten
    assert c.fetch_offsets("g")[1] == {("t", 0): OffsetAndMetadata(1)}
    c.leave("g", [(a.member_id, None)])
    # the commit is older than the retention, but the group has only just become empty
    assert c.expire_offsets() == 0
    assert c.expire_offsets(10**13) == 1
    assert c.list_groups() == (None, [])


# -- administration ----------------------------------------------------------------------------


async def test_list_and_describe(make: Factory) -> None:
    c = await make()
    await stable_group(c, 2)
    await c.commit_offsets("solo", -1, "", None, {("t", 0): OffsetAndMetadata(1)})
    pending = join(c, group="forming")
    await asyncio.sleep(0.01)
    error, groups = c.list_groups()
    assert error is None
    assert sorted(groups) == [
        ("forming", "consumer", "PreparingRebalance"),
        ("g", "consumer", "Stable"),
        ("solo", "", "Empty"),
    ]
    assert [g.group_id for g in c.list_groups({"stable", "empty"})[1]] == ["g", "solo"]
    desc = c.describe("forming")
    assert (desc.state, desc.protocol) == ("PreparingRebalance", "")
    assert [m.metadata for m in desc.members] == [b""]  # metadata only once stable
    unknown = c.describe("unknown")
    assert (unknown.state, unknown.error, unknown.members) == ("Dead", None, [])
    await pending


async def test_offsets_log_replays_snapshots_and_offsets_skipping_bad_records(tmp_path: Path) -> None:
    """OffsetsLog on its own: what it writes it reads back; malformed and unknown records are skipped."""
    logs = LogManager(tmp_path / "logs")
    logs.open()
    await logs.start()
    offsets_log = OffsetsLog(logs, "__consumer_offsets")
    with pytest.raises(RuntimeError):
        offsets_log.append([])  # before load
    assert await offsets_log.load(Groups()) == 0  # no log yet
    group = Group("g", generation_id=3, protocol_name="range", state_timestamp=1234)
    group.add(Member("m1", "i1", "c", "h", 10_000, 20_000, "consumer", [("range", b"sub")]))
    committed = CommittedOffset(OffsetAndMetadata(42, 1, "meta"), 99)
    assert await offsets_log.store_group(group, {"m1": b"assigned"}) is None
    await offsets_log.write(
        [
            store.offset_record("g", "t", 0, committed),
            Record(value=b"{}", key=b"not json"),
            Record(value=b"{}", key=b'["future-kind", "g"]'),
        ]
    )
    offsets_log.store_group_later(Group("gone"))
    await offsets_log.write([store.group_tombstone("gone")])

    groups = Groups()
    assert await OffsetsLog(logs, "__consumer_offsets").load(groups) == 6
    assert list(groups) == ["g"]
    restored = groups["g"]
    assert (restored.state, restored.generation_id, restored.protocol_name) == (GroupState.STABLE, 3, "range")
    assert (restored.leader_id, restored.static_members, restored.state_timestamp) == (
        "m1",
        {"i1": "m1"},
        1234,
    )
    m1 = restored.members["m1"]
    assert (m1.protocols, m1.assignment, m1.session_timeout_ms) == ([("range", b"sub")], b"assigned", 10_000)
    assert restored.offsets == {("t", 0): committed}
    await logs.close()


# -- lifecycle ---------------------------------------------------------------------------------


async def test_calls_before_load_and_after_close(tmp_path: Path) -> None:
    logs = LogManager(tmp_path / "logs")
    logs.open()
    await logs.start()
    c = GroupCoordinator(logs, min_session_timeout_ms=10, initial_rebalance_delay_ms=DELAY_MS)
    assert (await join(c)).error is GroupError.COORDINATOR_LOAD_IN_PROGRESS
    assert c.heartbeat("g", 1, "m") is None  # answered blindly while loading, as Kafka
    commit = await c.commit_offsets("g", -1, "", None, {("t", 0): OffsetAndMetadata(1)})
    assert commit == {("t", 0): GroupError.COORDINATOR_LOAD_IN_PROGRESS}
    await c.load()
    waiting = join(c)
    await asyncio.sleep(0.01)
    c.close()
    assert (await waiting).error is GroupError.NOT_COORDINATOR
    assert c.heartbeat("g", 1, "m") is GroupError.NOT_COORDINATOR
    await logs.close()


async def test_delete_offsets(make: Factory, tmp_path: Path) -> None:
    """OffsetDelete: the partitions of topics no member subscribes to lose their offsets (for good)."""
    c = await make()
    offsets = {("t", 0): OffsetAndMetadata(1), ("u", 0): OffsetAndMetadata(2), ("v", 0): OffsetAndMetadata(3)}
    await c.commit_offsets("g", -1, "", None, offsets)
    assert await c.delete_offsets("g", [("v", 0), ("w", 0)], lambda _: ["t"]) == (
        None,
        {("v", 0): None, ("w", 0): None},
    )
    await stable_group(c, 1)  # a member now, subscribed to "t" (as the callback reads it)
    error, results = await c.delete_offsets("g", [("t", 0), ("u", 0)], lambda _: ["t"])
    assert (error, results) == (None, {("t", 0): GroupError.GROUP_SUBSCRIBED_TO_TOPIC, ("u", 0): None})
    _, unreadable = await c.delete_offsets("g", [("t", 0)], lambda _: None)
    assert unreadable == {("t", 0): GroupError.GROUP_SUBSCRIBED_TO_TOPIC}, "unreadable: subscribed"
    assert await c.delete_offsets("nobody", [("t", 0)], lambda _: []) == (GroupError.GROUP_ID_NOT_FOUND, {})
    await stop(c)
    c2 = await make()
    assert c2.fetch_offsets("g") == (None, {("t", 0): OffsetAndMetadata(1)})


async def test_delete_offsets_of_a_non_consumer_group_with_members(make: Factory) -> None:
    c = await make()
    await join(c, protocol_type="connect")
    assert await c.delete_offsets("g", [("t", 0)], lambda _: []) == (GroupError.NON_EMPTY_GROUP, {})
