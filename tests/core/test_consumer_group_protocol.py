"""The consumer group protocol (KIP-848): the state machine (member epochs, target assignment,
revocation before reassignment, fencing, static members), the uniform and range assignors,
and the coordinator around them (timers, persistence, group types, offsets by member epoch)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jackalope.core.groups import GroupCoordinator, GroupError, OffsetAndMetadata
from jackalope.core.groups.assignors import ASSIGNORS, MemberSpec, RangeAssignor, UniformAssignor
from jackalope.core.groups.consumer_group import (
    ConsumerGroup,
    ConsumerGroupState,
    HeartbeatRequest,
    HeartbeatResult,
    MemberState,
    validate_request,
)
from jackalope.storage import LogManager

Assignment = dict[str, frozenset[int]]


def fs(*ps: int) -> frozenset[int]:
    return frozenset(ps)


def hb(
    group: ConsumerGroup,
    member_id: str,
    epoch: int,
    topics: dict[str, int],
    *,
    owned: Assignment | None = None,
    names: tuple[str, ...] | None = None,
    regex: str | None = None,
    instance: str | None = None,
    assignor: str | None = None,
) -> HeartbeatResult:
    """One heartbeat as a client sends it (a join is a full request)."""
    if epoch == 0:
        owned = {} if owned is None else owned
        names = names if names is not None or regex is not None else ("t",)
    req = HeartbeatRequest(
        member_id=member_id,
        member_epoch=epoch,
        instance_id=instance,
        rebalance_timeout_ms=30_000 if epoch == 0 else -1,
        subscribed_topic_names=names,
        subscribed_topic_regex=regex,
        server_assignor=assignor,
        owned=owned,
    )
    error = validate_request(req, ASSIGNORS)
    if error is not None:
        return HeartbeatResult(error.error, error.message)
    result, _ = group.heartbeat(req, topics, ASSIGNORS, "uniform")
    return result


def owners_ok(group: ConsumerGroup) -> None:
    """No partition is held (assigned or pending revocation) by two members."""
    seen: dict[tuple[str, int], str] = {}
    for m in group.members.values():
        for part in (m.assigned, m.pending_revocation):
            for t, ps in part.items():
                for p in ps:
                    assert (t, p) not in seen, f"{t}-{p} held by {seen[(t, p)]} and {m.member_id}"
                    seen[(t, p)] = m.member_id


def count(a: Assignment) -> int:
    return sum(len(ps) for ps in a.values())


# -- the state machine ---------------------------------------------------------------------------


def test_a_first_member_gets_every_partition() -> None:
    g = ConsumerGroup("g")
    r = hb(g, "a", 0, {"t": 4})
    assert r.error is None and r.member_id == "a"
    assert r.member_epoch == 1 == g.group_epoch == g.assignment_epoch
    assert r.assignment == {"t": fs(0, 1, 2, 3)}
    assert g.state is ConsumerGroupState.STABLE
    # a plain heartbeat with nothing new: no assignment sent, same epoch
    r = hb(g, "a", 1, {"t": 4})
    assert r.error is None and r.member_epoch == 1 and r.assignment is None


def test_a_generated_member_id_when_none_is_sent() -> None:
    g = ConsumerGroup("g")
    r = hb(g, "", 0, {"t": 1})
    assert r.error is None and len(r.member_id) == 36
    assert r.member_id in g.members


def test_revocation_comes_before_reassignment() -> None:
    g = ConsumerGroup("g")
    topics = {"t": 4}
    hb(g, "a", 0, topics)
    r = hb(g, "b", 0, topics)
    assert g.group_epoch == 2
    # b's target is half the partitions, but a still holds them: b gets nothing yet
    assert r.member_epoch == 2 and r.assignment == {}
    assert g.members["b"].state is MemberState.UNRELEASED_PARTITIONS
    assert g.state is ConsumerGroupState.RECONCILING
    owners_ok(g)
    # a is asked to give up b's half; it stays at epoch 1 until it does
    r = hb(g, "a", 1, topics, owned={"t": fs(0, 1, 2, 3)})
    assert r.member_epoch == 1 and r.assignment is not None and count(r.assignment) == 2
    a = g.members["a"]
    assert a.state is MemberState.UNREVOKED_PARTITIONS and count(a.pending_revocation) == 2
    # b still cannot have them
    r = hb(g, "b", 2, topics, owned={})
    assert r.assignment is None and not g.members["b"].assigned
    owners_ok(g)
    # a heartbeats without them: it moves to epoch 2, the partitions are free
    kept = r_a = hb(g, "a", 1, topics, owned=a.assigned)
    assert r_a.member_epoch == 2 and g.members["a"].state is MemberState.STABLE
    assert kept.assignment is None  # unchanged since the last answer
    r = hb(g, "b", 2, topics, owned={})
    assert r.assignment is not None and count(r.assignment) == 2
    assert g.members["b"].state is MemberState.STABLE
    assert g.state is ConsumerGroupState.STABLE
    owners_ok(g)
    assert g.members["a"].assigned["t"] | g.members["b"].assigned["t"] == fs(0, 1, 2, 3)


def test_a_heartbeat_that_does_not_report_its_partitions_does_not_release_them() -> None:
    g = ConsumerGroup("g")
    topics = {"t": 2}
    hb(g, "a", 0, topics)
    hb(g, "b", 0, topics)
    hb(g, "a", 1, topics)  # owned=None: it did not say, so it still holds them
    assert g.members["a"].state is MemberState.UNREVOKED_PARTITIONS
    hb(g, "a", 1, topics)
    assert g.members["a"].state is MemberState.UNREVOKED_PARTITIONS
    hb(g, "a", 1, topics, owned={"t": g.members["a"].assigned["t"]})
    assert g.members["a"].state is MemberState.STABLE


def test_fencing_and_unknown_members() -> None:
    g = ConsumerGroup("g")
    topics = {"t": 2}
    hb(g, "a", 0, topics)
    assert hb(g, "a", 5, topics).error is GroupError.FENCED_MEMBER_EPOCH
    assert hb(g, "nobody", 1, topics).error is GroupError.UNKNOWN_MEMBER_ID
    hb(g, "b", 0, topics)
    hb(g, "a", 1, topics, owned={"t": fs(0, 1)})
    hb(g, "a", 1, topics, owned={"t": g.members["a"].assigned["t"]})
    assert g.members["a"].epoch == 2 and g.members["a"].previous_epoch == 1
    # the answer with epoch 2 was lost: epoch 1 with a subset of its partitions is accepted
    assert hb(g, "a", 1, topics, owned=g.members["a"].assigned).error is None
    assert hb(g, "a", 0 + 1, topics, owned={"t": fs(0, 1)}).error is GroupError.FENCED_MEMBER_EPOCH


def test_a_fenced_member_rejoins_with_epoch_zero() -> None:
    g = ConsumerGroup("g")
    topics = {"t": 2}
    hb(g, "a", 0, topics)
    r = hb(g, "a", 0, topics)  # it lost everything and joins again under its id
    assert r.error is None and r.member_epoch == 1 and r.assignment == {"t": fs(0, 1)}
    assert g.group_epoch == 1  # no rebalance: its target did not change


def test_leaving_frees_the_partitions_for_the_others() -> None:
    g = ConsumerGroup("g")
    topics = {"t": 4}
    hb(g, "a", 0, topics)
    hb(g, "b", 0, topics)
    hb(g, "a", 1, topics, owned={"t": fs(0, 1, 2, 3)})
    hb(g, "a", 1, topics, owned=g.members["a"].assigned)
    hb(g, "b", 2, topics, owned={})
    r = hb(g, "a", -1, topics)
    assert r.error is None and r.member_epoch == -1 and "a" not in g.members
    assert g.group_epoch == 3
    r = hb(g, "b", 2, topics, owned=g.members["b"].assigned)
    assert r.member_epoch == 3 and r.assignment == {"t": fs(0, 1, 2, 3)}
    assert hb(g, "a", -1, topics).error is GroupError.UNKNOWN_MEMBER_ID


def test_static_member_leaves_for_a_while_and_comes_back_with_its_partitions() -> None:
    g = ConsumerGroup("g")
    topics = {"t": 4}
    hb(g, "a", 0, topics, instance="i-a")
    hb(g, "b", 0, topics, instance="i-b")
    hb(g, "a", 1, topics, owned={"t": fs(0, 1, 2, 3)}, instance="i-a")
    hb(g, "a", 1, topics, owned=g.members["a"].assigned, instance="i-a")
    hb(g, "b", 2, topics, owned={}, instance="i-b")
    kept = g.members["b"].assigned
    epoch = g.group_epoch
    r = hb(g, "b", -2, topics, instance="i-b")
    assert r.error is None and r.member_epoch == -2
    assert g.group_epoch == epoch  # no rebalance: its partitions wait for it
    hb(g, "a", 2, topics, owned=g.members["a"].assigned, instance="i-a")
    assert count(g.members["a"].assigned) == 2
    # another process with the same instance id cannot join while the first holds it...
    hb(g, "b", 0, topics, instance="i-b")  # (this is the same member id rejoining)
    assert g.members["b"].epoch == 2
    assert hb(g, "c", 0, topics, instance="i-b").error is GroupError.UNRELEASED_INSTANCE_ID
    hb(g, "b", -2, topics, instance="i-b")
    # ...but it replaces it once it left with -2, and takes over its partitions
    r = hb(g, "b2", 0, topics, instance="i-b")
    assert r.error is None and r.member_id == "b2" and r.assignment == kept
    assert "b" not in g.members and g.static_members["i-b"] == "b2"
    assert g.group_epoch == epoch
    owners_ok(g)
    assert hb(g, "b", 2, topics, instance="i-b").error is GroupError.FENCED_INSTANCE_ID
    assert hb(g, "x", 1, topics, instance="i-x").error is GroupError.UNKNOWN_MEMBER_ID


def test_new_partitions_make_a_new_target_assignment() -> None:
    g = ConsumerGroup("g")
    hb(g, "a", 0, {"t": 2})
    r = hb(g, "a", 1, {"t": 3}, owned={"t": fs(0, 1)})
    assert g.group_epoch == 2 and r.member_epoch == 2 and r.assignment == {"t": fs(0, 1, 2)}
    # a deleted topic is taken away
    r = hb(g, "a", 2, {}, owned={"t": fs(0, 1, 2)})
    assert g.group_epoch == 3 and r.assignment == {} and r.member_epoch == 2
    assert g.members["a"].state is MemberState.UNREVOKED_PARTITIONS
    r = hb(g, "a", 2, {}, owned={})
    assert r.member_epoch == 3 and g.state is ConsumerGroupState.STABLE


def test_regex_subscription() -> None:
    g = ConsumerGroup("g")
    topics = {"orders-eu": 1, "orders-us": 2, "payments": 1}
    r = hb(g, "a", 0, topics, names=(), regex="orders-.*")
    assert r.assignment == {"orders-eu": fs(0), "orders-us": fs(0, 1)}
    # a topic created later that matches joins the subscription
    r = hb(g, "a", 1, {**topics, "orders-jp": 1}, owned=r.assignment)
    assert r.assignment is not None and "orders-jp" in r.assignment and "payments" not in r.assignment
    assert hb(g, "b", 0, topics, names=(), regex="orders-(").error is GroupError.INVALID_REGULAR_EXPRESSION
    assert g.members["a"].subscribed_topic_regex == "orders-.*"


def test_the_assignor_most_members_ask_for() -> None:
    g = ConsumerGroup("g")
    topics = {"t": 4}
    hb(g, "a", 0, topics, assignor="range")
    assert g.assignor_name == "range"
    assert hb(g, "b", 0, topics, assignor="sticky").error is GroupError.UNSUPPORTED_ASSIGNOR


@pytest.mark.parametrize(
    ("req", "message"),
    [
        (HeartbeatRequest("a", 0, owned={}, subscribed_topic_names=("t",)), "RebalanceTimeoutMs"),
        (HeartbeatRequest("a", 0, rebalance_timeout_ms=1, subscribed_topic_names=("t",)), "TopicPartitions"),
        (HeartbeatRequest("a", 0, rebalance_timeout_ms=1, owned={}), "SubscribedTopicNames"),
        (HeartbeatRequest("", 3), "MemberId"),
        (HeartbeatRequest("a", -2), "InstanceId"),
        (HeartbeatRequest("a", -3), "MemberEpoch"),
        (HeartbeatRequest("a", 1, instance_id=""), "InstanceId"),
    ],
)
def test_invalid_requests(req: HeartbeatRequest, message: str) -> None:
    error = validate_request(req, ASSIGNORS)
    assert error is not None and error.error is GroupError.INVALID_REQUEST and message in error.message


def test_offset_commits_carry_the_member_epoch() -> None:
    g = ConsumerGroup("g")
    assert g.validate_offset_commit("", -1) is None  # empty group: anyone
    hb(g, "a", 0, {"t": 1})
    assert g.validate_offset_commit("", -1) is GroupError.UNKNOWN_MEMBER_ID
    assert g.validate_offset_commit("a", 1) is None
    assert g.validate_offset_commit("a", 0) is GroupError.STALE_MEMBER_EPOCH
    assert g.validate_offset_fetch("a", 2) is GroupError.STALE_MEMBER_EPOCH
    assert g.validate_offset_fetch(None, -1) is None


def test_snapshot_round_trip() -> None:
    g = ConsumerGroup("g")
    topics = {"t": 4}
    hb(g, "a", 0, topics)
    hb(g, "b", 0, topics, instance="i")
    hb(g, "a", 1, topics, owned={"t": fs(0, 1, 2, 3)})
    back = ConsumerGroup.from_json("g", g.to_json())
    assert back.to_json() == g.to_json()
    assert back.owners == g.owners and back.static_members == {"i": "b"}
    assert back.state is g.state


# -- random runs: the invariants hold whatever happens -----------------------------------------


ops = st.lists(
    st.tuples(st.sampled_from(["join", "hb", "hb", "hb", "ack", "leave", "grow"]), st.integers(0, 4)),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(ops, st.sampled_from(["uniform", "range"]))
def test_random_runs_never_give_a_partition_two_owners(steps: list[tuple[str, int]], assignor: str) -> None:
    g = ConsumerGroup("g")
    topics = {"t": 3, "u": 2}
    for op, n in steps:
        mid = f"m{n}"
        member = g.members.get(mid)
        if op == "join":
            hb(g, mid, 0, topics, names=("t", "u") if n % 2 else ("t",), assignor=assignor)
        elif op == "grow":
            topics["t"] += 1
        elif member is None:
            continue
        elif op == "leave":
            hb(g, mid, -1, topics)
        elif op == "hb":
            hb(g, mid, member.epoch, topics)
        else:  # a heartbeat that reports the partitions it was last told to own
            hb(g, mid, member.epoch, topics, owned=dict(member.assigned))
        owners_ok(g)
    # then everyone heartbeats, acknowledging, until the group is stable
    for _ in range(6):
        for mid, member in list(g.members.items()):
            assert hb(g, mid, member.epoch, topics, owned=dict(member.assigned)).error is None
            owners_ok(g)
    if g.members:
        assert g.state is ConsumerGroupState.STABLE
        held = sorted((t, p) for m in g.members.values() for t, ps in m.assigned.items() for p in ps)
        subscribed = {t for m in g.members.values() for t in m.subscribed_topic_names}
        assert held == sorted((t, p) for t in subscribed for p in range(topics[t]))


# -- assignors -----------------------------------------------------------------------------------


topic_counts = st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 12), min_size=1)


def _all(assignment: dict[str, Assignment]) -> list[tuple[str, int]]:
    return sorted((t, p) for a in assignment.values() for t, ps in a.items() for p in ps)


@settings(max_examples=200, deadline=None)
@given(topic_counts, st.integers(1, 7), st.sampled_from(["uniform", "range"]))
def test_assignors_assign_every_partition_once(partitions: dict[str, int], n: int, name: str) -> None:
    members = [MemberSpec(f"m{i}", frozenset(partitions)) for i in range(n)]
    result = ASSIGNORS[name].assign(members, partitions)
    assert _all(result) == sorted((t, p) for t, k in partitions.items() for p in range(k))
    loads = [count(result.get(m.member_id, {})) for m in members]
    if name == "uniform":
        assert max(loads) - min(loads) <= 1
    else:  # range: per topic
        for t, k in partitions.items():
            per = [len(result.get(m.member_id, {}).get(t, ())) for m in members]
            assert max(per) - min(per) <= 1 and sum(per) == k


@settings(max_examples=200, deadline=None)
@given(
    topic_counts,
    st.lists(st.sets(st.sampled_from(["a", "b", "c", "d"]), min_size=1), min_size=1, max_size=6),
    st.sampled_from(["uniform", "range"]),
)
def test_assignors_with_different_subscriptions(
    partitions: dict[str, int], subscriptions: list[set[str]], name: str
) -> None:
    members = [MemberSpec(f"m{i}", frozenset(s)) for i, s in enumerate(subscriptions)]
    result = ASSIGNORS[name].assign(members, partitions)
    subscribed = set().union(*subscriptions) & partitions.keys()
    assert _all(result) == sorted((t, p) for t in subscribed for p in range(partitions[t]))
    for m in members:  # only subscribers get a topic
        assert set(result.get(m.member_id, {})) <= m.topics


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30), st.integers(1, 6))
def test_uniform_is_sticky_when_a_member_joins(k: int, n: int) -> None:
    partitions = {"t": k}
    before = UniformAssignor().assign([MemberSpec(f"m{i}", frozenset({"t"})) for i in range(n)], partitions)
    members = [MemberSpec(f"m{i}", frozenset({"t"}), current=before.get(f"m{i}", {})) for i in range(n)]
    after = UniformAssignor().assign([*members, MemberSpec("new", frozenset({"t"}))], partitions)
    moved = sum(len(before[m].get("t", fs()) - after[m].get("t", fs())) for m in before)
    # only what the newcomer takes moves
    assert moved == count(after["new"]) == k // (n + 1)


def test_range_gives_contiguous_ranges_by_instance_id() -> None:
    members = [
        MemberSpec("x", frozenset({"t", "u"}), instance_id="b"),
        MemberSpec("y", frozenset({"t", "u"}), instance_id="a"),
    ]
    result = RangeAssignor().assign(members, {"t": 5, "u": 5})
    assert result["y"] == {"t": fs(0, 1, 2), "u": fs(0, 1, 2)}
    assert result["x"] == {"t": fs(3, 4), "u": fs(3, 4)}


# -- the coordinator: timers, persistence, group types ---------------------------------------------

Factory = Callable[..., Awaitable[GroupCoordinator]]


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Factory]:
    opened: list[tuple[GroupCoordinator, LogManager]] = []

    async def factory(topics: dict[str, int] | None = None, **kwargs: Any) -> GroupCoordinator:
        logs = LogManager(tmp_path / "logs")
        logs.open()
        await logs.start()
        view = topics if topics is not None else {"t": 4}
        coordinator = GroupCoordinator(
            logs,
            min_session_timeout_ms=10,
            initial_rebalance_delay_ms=10,
            topic_partitions=lambda: view,
            **kwargs,
        )
        await coordinator.load()
        opened.append((coordinator, logs))
        return coordinator

    yield factory
    for coordinator, logs in opened:
        coordinator.close()
        await logs.close()


def join_req(member_id: str, instance: str | None = None) -> HeartbeatRequest:
    return HeartbeatRequest(
        member_id, 0, instance_id=instance, rebalance_timeout_ms=300, subscribed_topic_names=("t",), owned={}
    )


async def wait_for(predicate: Callable[[], Any], within: float = 5) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_persisted_groups_come_back_after_a_restart(make: Factory, tmp_path: Path) -> None:
    c = await make()
    assert c.consumer_heartbeat("g", join_req("a")).error is None
    c.consumer_heartbeat("g", join_req("b"))
    c.consumer_heartbeat("g", HeartbeatRequest("a", 1, owned={"t": fs(0, 1, 2, 3)}))
    await c.commit_offsets("g", 1, "a", None, {("t", 0): OffsetAndMetadata(7)})
    _, before = c.consumer_describe("g")
    assert before is not None
    snapshot = before.to_json()
    c.close()
    await c.logs.close()
    c2 = await make()
    error, after = c2.consumer_describe("g")
    assert error is None and after is not None and after.to_json() == snapshot
    assert c2.fetch_offsets("g")[1][("t", 0)].offset == 7
    # the members carry on where they were
    r = c2.consumer_heartbeat("g", HeartbeatRequest("a", 1, owned=dict(after.members["a"].assigned)))
    assert r.error is None and r.member_epoch == 2


async def test_a_silent_member_is_fenced_after_its_session_timeout(make: Factory) -> None:
    c = await make(consumer_session_timeout_ms=100, consumer_heartbeat_interval_ms=20)
    c.consumer_heartbeat("g", join_req("a"))
    _, group = c.consumer_describe("g")
    assert group is not None
    await wait_for(lambda: not group.members)
    assert group.group_epoch == 2
    assert c.list_groups()[1][0].state == "Empty"


async def test_a_member_that_does_not_revoke_in_time_is_fenced(make: Factory) -> None:
    c = await make()
    c.consumer_heartbeat("g", join_req("a"))
    c.consumer_heartbeat("g", join_req("b"))
    c.consumer_heartbeat("g", HeartbeatRequest("a", 1, owned={"t": fs(0, 1, 2, 3)}))
    _, group = c.consumer_describe("g")
    assert group is not None and group.members["a"].state is MemberState.UNREVOKED_PARTITIONS
    await wait_for(lambda: "a" not in group.members)  # its rebalance timeout is 300 ms
    r = c.consumer_heartbeat("g", HeartbeatRequest("b", 2, owned={}))
    assert r.assignment == {"t": fs(0, 1, 2, 3)}


async def test_classic_and_consumer_groups_do_not_mix(make: Factory) -> None:
    c = await make()
    c.consumer_heartbeat("g", join_req("a"))
    joined = await c.join("g", "", None, "c", "h", 10_000, 10_000, "consumer", [("range", b"")], False)
    assert joined.error is GroupError.INCONSISTENT_GROUP_PROTOCOL
    listing = c.list_groups()[1]
    assert [(g.group_id, g.group_type, g.protocol_type, g.state) for g in listing] == [
        ("g", "consumer", "consumer", "Stable")
    ]
    d = c.describe("g")
    assert (d.group_type, d.state, d.protocol_type, d.protocol) == (
        "consumer",
        "Stable",
        "consumer",
        "uniform",
    )
    assert [(m.member_id, m.partitions) for m in d.members] == [
        ("a", (("t", 0), ("t", 1), ("t", 2), ("t", 3)))
    ]
    # once empty, a classic member turns it back into a classic group
    c.consumer_heartbeat("g", HeartbeatRequest("a", -1))
    joined = await c.join("g", "", None, "c", "h", 10_000, 10_000, "consumer", [("range", b"")], False)
    assert joined.error is None
    assert c.consumer_describe("g")[0] is GroupError.GROUP_ID_NOT_FOUND
    r = c.consumer_heartbeat("g", join_req("x"))
    assert r.error is GroupError.GROUP_ID_NOT_FOUND and r.message is not None


async def test_offset_commits_of_consumer_members(make: Factory) -> None:
    c = await make()
    c.consumer_heartbeat("g", join_req("a"))
    ok = await c.commit_offsets("g", 1, "a", None, {("t", 0): OffsetAndMetadata(3)})
    assert ok == {("t", 0): None}
    stale = await c.commit_offsets("g", 0, "a", None, {("t", 0): OffsetAndMetadata(4)})
    assert stale == {("t", 0): GroupError.STALE_MEMBER_EPOCH}
    assert c.validate_offset_fetch("g", "a", 7) is GroupError.STALE_MEMBER_EPOCH
    assert c.validate_offset_fetch("g", "zz", 1) is GroupError.UNKNOWN_MEMBER_ID
    assert (await c.delete_groups(["g"])) == {"g": GroupError.NON_EMPTY_GROUP}
    c.consumer_heartbeat("g", HeartbeatRequest("a", -1))
    assert (await c.delete_groups(["g"])) == {"g": None}
    assert c.consumer_describe("g")[0] is GroupError.GROUP_ID_NOT_FOUND


async def test_heartbeat_of_an_unknown_group(make: Factory) -> None:
    c = await make()
    assert c.consumer_heartbeat("nope", HeartbeatRequest("a", 3)).error is GroupError.UNKNOWN_MEMBER_ID
    assert c.consumer_heartbeat("", join_req("a")).error is GroupError.INVALID_REQUEST


async def test_list_groups_filters_consumer_groups_by_their_own_state(make: Factory) -> None:
    c = await make()
    c.consumer_heartbeat("g", join_req("a"))
    assert [g.group_id for g in c.list_groups(["stable"])[1]] == ["g"]
    assert c.list_groups(["empty"])[1] == []


def test_settings_of_the_consumer_protocol() -> None:
    from jackalope.settings import Settings, SettingsError

    assert Settings().kafka_group_consumer_assignor_list() == ("uniform", "range")
    assert Settings(kafka_group_consumer_assignors="Range").kafka_group_consumer_assignor_list() == ("range",)
    with pytest.raises(SettingsError, match="assignors"):
        Settings(kafka_group_consumer_assignors="sticky")
    with pytest.raises(SettingsError, match="heartbeat_interval"):
        Settings(kafka_group_consumer_heartbeat_interval_ms=45000)


async def test_member_count_of_both_kinds_of_group(make: Factory) -> None:
    c = await make()
    c.consumer_heartbeat("g", join_req("a"))
    c.consumer_heartbeat("g", join_req("b"))
    assert c.member_count("g") == 2 and c.member_count("nope") == 0


async def test_members_that_do_not_come_back_after_a_restart_are_fenced(make: Factory) -> None:
    c = await make()
    c.consumer_heartbeat("g", join_req("a"))
    c.close()
    await c.logs.close()
    c2 = await make(consumer_session_timeout_ms=100, consumer_heartbeat_interval_ms=20)
    _, group = c2.consumer_describe("g")
    assert group is not None and list(group.members) == ["a"]
    await wait_for(lambda: not group.members)
    c2.close()
    await c2.logs.close()
    c3 = await make()  # the fencing was stored too
    _, again = c3.consumer_describe("g")
    assert again is not None and not again.members and again.group_epoch == 2


async def test_offset_delete_refuses_the_topics_members_subscribe_to(make: Factory) -> None:
    c = await make({"t": 1, "u": 1})
    c.consumer_heartbeat("g", join_req("a"))
    await c.commit_offsets(
        "g", 1, "a", None, {("t", 0): OffsetAndMetadata(1), ("u", 0): OffsetAndMetadata(1)}
    )
    error, results = await c.delete_offsets("g", [("t", 0), ("u", 0)], lambda _: None)
    assert error is None
    assert results == {("t", 0): GroupError.GROUP_SUBSCRIBED_TO_TOPIC, ("u", 0): None}
    assert set(c.fetch_offsets("g")[1]) == {("t", 0)}
