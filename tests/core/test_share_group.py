"""Share groups (KIP-932), membership: the group state machine (epochs, target assignment,
fencing, leave), the coordinator (session expiry, callbacks, namespace, persistence, delete)
and the group configs (validation, persistence)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from jackalope.core.groups import GroupError
from jackalope.core.share import (
    GroupConfigError,
    GroupConfigs,
    ShareCoordinator,
    ShareGroupConfig,
    ShareHeartbeat,
)
from jackalope.core.share.configs import Bounds, parse_duration_ms
from jackalope.core.share.group import ShareGroup, ShareGroupState, invalid

TOPICS = {"t": 4, "u": 1}


def join(group: ShareGroup, member: str, topics: tuple[str, ...] = ("t",)) -> int:
    result = group.heartbeat(ShareHeartbeat(member, 0, subscribed_topic_names=topics), TOPICS)
    assert result.error is None and result.assignment is not None
    return int(result.member_epoch)


# -- the state machine -----------------------------------------------------------------------------


def test_join_gets_everything_then_heartbeats_unchanged() -> None:
    g = ShareGroup("g")
    assert g.state.value == "Empty"
    epoch = join(g, "m1")
    assert epoch == 1 and g.group_epoch == 1 and g.assignment_epoch == 1
    assert g.assignment("m1") == {("t", p) for p in range(4)}
    assert g.state is ShareGroupState.STABLE
    again = g.heartbeat(ShareHeartbeat("m1", epoch), TOPICS)
    assert (again.error, again.member_epoch, again.assignment) == (None, 1, None)


def test_second_member_rebalances_both() -> None:
    g = ShareGroup("g")
    e1 = join(g, "m1")
    e2 = join(g, "m2")
    assert e2 == 2 and len(g.assignment("m2")) == 2
    r = g.heartbeat(ShareHeartbeat("m1", e1), TOPICS)
    assert r.member_epoch == 2 and r.assignment is not None and len(r.assignment) == 2
    assert g.assignment("m1") | g.assignment("m2") == {("t", p) for p in range(4)}


def test_subscription_and_topic_changes_bump_the_epoch() -> None:
    g = ShareGroup("g")
    e = join(g, "m1")
    r = g.heartbeat(ShareHeartbeat("m1", e, subscribed_topic_names=("t", "u")), TOPICS)
    assert r.member_epoch == 2 and ("u", 0) in (r.assignment or ())
    grown = {"t": 5, "u": 1}
    assert g.topics_changed(grown)
    r = g.heartbeat(ShareHeartbeat("m1", 2), grown)
    assert r.member_epoch == 3 and ("t", 4) in (r.assignment or ())


def test_fencing_unknown_and_leave() -> None:
    g = ShareGroup("g")
    join(g, "m1")
    join(g, "m2")  # group epoch 2; m1 still at 1
    assert g.heartbeat(ShareHeartbeat("m1", 5), TOPICS).error is GroupError.FENCED_MEMBER_EPOCH
    assert g.heartbeat(ShareHeartbeat("m9", 1), TOPICS).error is GroupError.UNKNOWN_MEMBER_ID
    assert g.heartbeat(ShareHeartbeat("m1", 1), TOPICS).member_epoch == 2
    # the previous epoch is accepted once (the answer may have been lost), older ones are fenced
    assert g.heartbeat(ShareHeartbeat("m1", 1), TOPICS).error is None
    assert g.heartbeat(ShareHeartbeat("m1", 0 + 3), TOPICS).error is GroupError.FENCED_MEMBER_EPOCH
    left = g.heartbeat(ShareHeartbeat("m2", -1), TOPICS)
    assert (left.error, left.member_epoch) == (None, -1)
    assert "m2" not in g.members and g.group_epoch == 3
    assert g.heartbeat(ShareHeartbeat("m2", -1), TOPICS).error is GroupError.UNKNOWN_MEMBER_ID


def test_rejoin_with_epoch_zero_gets_the_full_assignment() -> None:
    g = ShareGroup("g")
    join(g, "m1")
    r = g.heartbeat(ShareHeartbeat("m1", 0, subscribed_topic_names=("t",)), TOPICS)
    assert r.error is None and r.assignment == frozenset(("t", p) for p in range(4))


@pytest.mark.parametrize(
    ("group_id", "hb", "message"),
    [
        ("", ShareHeartbeat("m", 0, subscribed_topic_names=("t",)), "GroupId can't be empty."),
        ("g", ShareHeartbeat("", 0, subscribed_topic_names=("t",)), "MemberId can't be empty."),
        ("g", ShareHeartbeat("m", 0), "SubscribedTopicNames must be set in first request."),
        ("g", ShareHeartbeat("m", -2), "MemberEpoch is invalid."),
        ("g", ShareHeartbeat("m", 0, rack_id="", subscribed_topic_names=("t",)), "RackId can't be empty."),
    ],
)
def test_invalid_requests(group_id: str, hb: ShareHeartbeat, message: str) -> None:
    assert invalid(group_id, hb) == message


# -- the coordinator -------------------------------------------------------------------------------


def coordinator(tmp_path: Path, **kwargs: Any) -> ShareCoordinator:
    configs = GroupConfigs(
        tmp_path / "group-configs.json",
        bounds=Bounds(share_session_timeout_ms=(50, 60000), share_heartbeat_interval_ms=(10, 15000)),
    )
    return ShareCoordinator(tmp_path / "share-groups.json", configs=configs, topics=lambda: TOPICS, **kwargs)


async def test_session_expiry_fires_on_member_left(tmp_path: Path) -> None:
    share = coordinator(tmp_path)
    share.start()
    share.configs.alter("g", {"share.session.timeout.ms": "60", "share.heartbeat.interval.ms": "10"}, ())
    left: list[tuple[str, str]] = []
    gone = asyncio.Event()

    def member_left(group_id: str, member_id: str) -> None:
        left.append((group_id, member_id))
        gone.set()

    share.on_member_left.append(member_left)
    r = share.heartbeat("g", ShareHeartbeat("m1", 0, subscribed_topic_names=("t",)))
    assert r.error is None and share.member_error("g", "m1") is None
    assert share.assignment("g", "m1") == {("t", p) for p in range(4)}
    await asyncio.wait_for(gone.wait(), 5)
    assert left == [("g", "m1")]
    assert share.member_error("g", "m1") is GroupError.UNKNOWN_MEMBER_ID
    assert share.exists("g")  # an empty share group stays until deleted
    share.close()


async def test_leave_delete_and_callbacks(tmp_path: Path) -> None:
    share = coordinator(tmp_path)
    share.start()
    events: list[object] = []
    share.on_member_left.append(lambda g, m: events.append(("left", g, m)))
    share.on_group_deleted.append(lambda g: events.append(("deleted", g)))
    share.on_config_changed.append(lambda g: events.append(("config", g)))
    share.heartbeat("g", ShareHeartbeat("m1", 0, subscribed_topic_names=("t",)))
    assert share.delete_groups(["g", "nope"]) == {
        "g": GroupError.NON_EMPTY_GROUP,
        "nope": GroupError.GROUP_ID_NOT_FOUND,
    }
    share.heartbeat("g", ShareHeartbeat("m1", -1))
    share.configs.alter("g", {"share.record.lock.duration.ms": "20000"}, ())
    assert share.config("g").record_lock_duration_ms == 20000
    assert share.delete_groups(["g"]) == {"g": None}
    assert events == [("left", "g", "m1"), ("config", "g"), ("deleted", "g")]
    assert not share.exists("g") and share.member_error("g", "m1") is GroupError.GROUP_ID_NOT_FOUND
    share.close()


async def test_namespace_and_unknown_group(tmp_path: Path) -> None:
    share = coordinator(tmp_path, other_group=lambda g: g == "classic")
    share.start()
    r = share.heartbeat("classic", ShareHeartbeat("m", 0, subscribed_topic_names=("t",)))
    assert (r.error, r.message) == (GroupError.GROUP_ID_NOT_FOUND, "Group classic is not a share group.")
    assert share.heartbeat("new", ShareHeartbeat("m", 3)).error is GroupError.UNKNOWN_MEMBER_ID
    assert not share.exists("new")
    share.close()


async def test_max_size(tmp_path: Path) -> None:
    share = coordinator(tmp_path, max_size=1)
    share.start()
    assert share.heartbeat("g", ShareHeartbeat("a", 0, subscribed_topic_names=("t",))).error is None
    r = share.heartbeat("g", ShareHeartbeat("b", 0, subscribed_topic_names=("t",)))
    assert r.error is GroupError.GROUP_MAX_SIZE_REACHED
    share.close()


async def test_groups_and_configs_survive_a_restart(tmp_path: Path) -> None:
    share = coordinator(tmp_path)
    share.start()
    share.heartbeat("g", ShareHeartbeat("m1", 0, subscribed_topic_names=("t",)))
    share.configs.alter("g", {"share.auto.offset.reset": "earliest"}, ())
    share.close()
    again = coordinator(tmp_path)
    again.start()
    assert again.exists("g") and again.config("g").auto_offset_reset == "earliest"
    assert again.member_error("g", "m1") is GroupError.UNKNOWN_MEMBER_ID  # members rejoin
    r = again.heartbeat("g", ShareHeartbeat("m1", 0, subscribed_topic_names=("t",)))
    assert r.error is None and r.member_epoch > 1
    again.close()


# -- group configs ---------------------------------------------------------------------------------


def test_config_defaults_are_kafkas() -> None:
    c = GroupConfigs()
    assert c.share("g") == ShareGroupConfig()
    assert ShareGroupConfig() == ShareGroupConfig(
        auto_offset_reset="latest",
        record_lock_duration_ms=30000,
        delivery_count_limit=5,
        isolation_level="read_uncommitted",
        session_timeout_ms=45000,
        heartbeat_interval_ms=5000,
    )
    described = {v.name: v for v in c.describe("g")}
    assert (
        described["share.delivery.count.limit"].value == "5"
        and described["share.delivery.count.limit"].default
    )
    assert described["consumer.session.timeout.ms"].type == "INT"


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        (
            "share.record.lock.duration.ms",
            "999",
            "Invalid value 999 for configuration share.record.lock.duration.ms",
        ),
        ("share.delivery.count.limit", "11", "Invalid value 11"),
        ("share.delivery.count.limit", "many", "is not a number"),
        ("share.isolation.level", "dirty", "Invalid value dirty"),
        ("share.auto.offset.reset", "by_duration:1h", "Invalid value by_duration:1h"),
        ("share.session.timeout.ms", "5", "Invalid value 5"),
        ("bogus.config", "1", "Unknown group config name: bogus.config"),
        ("streams.session.timeout.ms", "45000", "streams.session.timeout.ms is not supported"),
    ],
)
def test_invalid_configs_name_the_value(name: str, value: str, fragment: str) -> None:
    with pytest.raises(GroupConfigError, match=fragment.replace(".", r"\.").replace("(", r"\(")):
        GroupConfigs().alter("g", {name: value}, ())


def test_session_timeout_must_exceed_heartbeat_interval() -> None:
    c = GroupConfigs(bounds=Bounds(share_session_timeout_ms=(1000, 60000)))
    with pytest.raises(GroupConfigError, match=r"share\.session\.timeout\.ms must be greater than"):
        c.alter("g", {"share.session.timeout.ms": "5000", "share.heartbeat.interval.ms": "5000"}, ())


def test_alter_replace_delete_and_validate_only(tmp_path: Path) -> None:
    c = GroupConfigs(tmp_path / "gc.json")
    c.alter("g", {"share.auto.offset.reset": "by_duration:PT1H30M"}, (), validate_only=True)
    assert c.overrides("g") == {}
    c.alter("g", {"share.auto.offset.reset": "by_duration:PT1H30M", "share.delivery.count.limit": "3"}, ())
    assert c.share("g").auto_offset_reset_duration_ms == 90 * 60_000
    c.alter("g", {}, ["share.delivery.count.limit"])
    assert c.overrides("g") == {"share.auto.offset.reset": "by_duration:PT1H30M"}
    c.replace("g", {"share.isolation.level": "read_committed"})
    assert c.overrides("g") == {"share.isolation.level": "read_committed"}
    assert GroupConfigs(tmp_path / "gc.json").share("g").isolation_level == "read_committed"


def test_durations() -> None:
    assert parse_duration_ms("P1DT2H") == 26 * 3600_000
    assert parse_duration_ms("PT0.5S") == 500
    for bad in ("P", "PT", "1H", "P1H"):
        with pytest.raises(ValueError):
            parse_duration_ms(bad)


def test_a_deleted_topic_leaves_the_assignment_and_a_recreated_one_is_sent_again() -> None:
    g = ShareGroup("g")
    e = join(g, "m1", ("t", "u"))
    assert g.forget_topic("t") and not g.forget_topic("never-subscribed")
    assert g.assignment("m1") == {("u", 0)}
    r = g.heartbeat(ShareHeartbeat("m1", e), TOPICS)  # recreated under the same name
    assert r.assignment is not None and ("t", 0) in r.assignment and r.member_epoch > e
