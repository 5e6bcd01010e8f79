"""The consumer group protocol (KIP-848) with confluent-kafka consumers that set
``group.protocol=consumer``: the broker assigns the partitions (ConsumerGroupHeartbeat),
members split them, a member that closes hands its partitions over, offsets are committed
with the member epoch, and the AdminClient describes the group (ConsumerGroupDescribe)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, ConsumerGroupState, ConsumerGroupType, KafkaError, TopicPartition

from tests.conftest import ServeProcess, http_json
from tests.kafka.conftest import (
    confluent_admin,
    create_topic,
    kafka_address,
    produce_confluent,
    unique,
    wait_until,
)

HEARTBEAT_MS = 300  # the broker's group.consumer.heartbeat.interval.ms for these tests


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from jackalope import Broker

    started = Broker(
        tmp_path_factory.mktemp("kip848") / "data",
        kafka_port=0,
        kafka_group_consumer_heartbeat_interval_ms=HEARTBEAT_MS,
    ).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def bootstrap(broker: Any) -> str:
    return str(broker.kafka_bootstrap)


@pytest.fixture
def consumers() -> Iterator[Callable[..., Any]]:
    made: list[Any] = []

    def make(bootstrap: str, group: str, **extra: Any) -> Any:
        conf = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "group.protocol": "consumer",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
        conf.update(extra)
        c = Consumer(conf)
        made.append(c)
        return c

    yield make
    for c in made:
        with contextlib.suppress(RuntimeError):  # closed by the test
            c.close()


def partitions(consumer: Any) -> set[tuple[str, int]]:
    return {(tp.topic, tp.partition) for tp in consumer.assignment()}


def poll_until(members: list[Any], predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll every consumer (they reconcile in poll) until ``predicate`` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        for m in members:
            msg = m.poll(0.05)
            if (
                msg is not None
                and msg.error() is not None
                and msg.error().code() != KafkaError._PARTITION_EOF
            ):
                raise AssertionError(msg.error())


def split_evenly(members: list[Any], topic: str, count: int) -> Callable[[], bool]:
    def check() -> bool:
        held = [partitions(m) for m in members]
        every = set().union(*held)
        return (
            every == {(topic, p) for p in range(count)}
            and sum(len(h) for h in held) == count  # nobody shares a partition
            and max(map(len, held)) - min(map(len, held)) <= 1
        )

    return check


def test_two_then_three_members_split_the_partitions(bootstrap: str, consumers: Any) -> None:
    topic, group = unique("t-split"), unique("g-split")
    create_topic(bootstrap, topic, partitions=6)
    a = consumers(bootstrap, group)
    a.subscribe([topic])
    poll_until([a], lambda: len(partitions(a)) == 6, 20, "the first member to get every partition")
    b = consumers(bootstrap, group)
    b.subscribe([topic])
    poll_until([a, b], split_evenly([a, b], topic, 6), 20, "two members with 3 partitions each")
    c = consumers(bootstrap, group)
    c.subscribe([topic])
    poll_until([a, b, c], split_evenly([a, b, c], topic, 6), 20, "three members with 2 partitions each")


def test_a_member_closing_hands_over_its_partitions(bootstrap: str, consumers: Any) -> None:
    topic, group = unique("t-close"), unique("g-close")
    create_topic(bootstrap, topic, partitions=4)
    a, b = consumers(bootstrap, group), consumers(bootstrap, group)
    a.subscribe([topic])
    b.subscribe([topic])
    poll_until([a, b], split_evenly([a, b], topic, 4), 20, "two members with 2 partitions each")
    b.close()  # leaves the group (member epoch -1)
    poll_until([a], lambda: len(partitions(a)) == 4, 20, "the remaining member to get all 4")


def test_committed_offsets_are_where_the_next_member_resumes(bootstrap: str, consumers: Any) -> None:
    topic, group = unique("t-commit"), unique("g-commit")
    create_topic(bootstrap, topic, partitions=2)
    produce_confluent(bootstrap, topic, [(b"k%d" % i, b"v%d" % i) for i in range(20)])
    a = consumers(bootstrap, group)
    a.subscribe([topic])
    seen: list[bytes] = []
    deadline = time.monotonic() + 20
    while len(seen) < 20 and time.monotonic() < deadline:
        msg = a.poll(0.1)
        if msg is not None and msg.error() is None:
            seen.append(msg.value())
    assert sorted(seen) == sorted(b"v%d" % i for i in range(20))
    a.commit(asynchronous=False)  # OffsetCommit v9 with the member epoch
    committed = a.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
    assert sum(tp.offset for tp in committed) == 20
    a.close()
    produce_confluent(bootstrap, topic, [(b"later", b"w%d" % i) for i in range(3)])
    b = consumers(bootstrap, group)
    b.subscribe([topic])
    later: list[bytes] = []
    deadline = time.monotonic() + 20
    while len(later) < 3 and time.monotonic() < deadline:
        msg = b.poll(0.1)
        if msg is not None and msg.error() is None:
            later.append(msg.value())
    assert sorted(later) == [b"w0", b"w1", b"w2"]  # nothing before the committed offsets


def test_admin_client_describes_and_lists_a_consumer_group(bootstrap: str, consumers: Any) -> None:
    topic, group = unique("t-describe"), unique("g-describe")
    create_topic(bootstrap, topic, partitions=3)
    a = consumers(bootstrap, group, **{"client.id": "member-a"})
    b = consumers(bootstrap, group, **{"client.id": "member-b"})
    a.subscribe([topic])
    b.subscribe([topic])
    poll_until([a, b], split_evenly([a, b], topic, 3), 20, "two members sharing 3 partitions")
    admin = confluent_admin(bootstrap)

    def described() -> Any:
        d = admin.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
        return d if d.state == ConsumerGroupState.STABLE else None

    d = wait_until(described, 20, "the group to be described as Stable", interval=0.2)
    assert d.type == ConsumerGroupType.CONSUMER
    assert d.partition_assignor == "uniform"
    assert sorted(m.client_id for m in d.members) == ["member-a", "member-b"]
    assigned = sorted(tp.partition for m in d.members for tp in m.assignment.topic_partitions)
    assert assigned == [0, 1, 2]
    assert all(tp.topic == topic for m in d.members for tp in m.assignment.topic_partitions)
    listed = admin.list_consumer_groups(request_timeout=10).result(timeout=15)
    mine = [g for g in listed.valid if g.group_id == group]
    assert len(mine) == 1 and mine[0].type == ConsumerGroupType.CONSUMER
    classic_only = admin.list_consumer_groups(types={ConsumerGroupType.CLASSIC}, request_timeout=10)
    assert group not in {g.group_id for g in classic_only.result(timeout=15).valid}


def test_http_api_and_describe_groups_of_a_consumer_group(
    broker: Any, bootstrap: str, consumers: Any
) -> None:
    from kafka.admin import KafkaAdminClient

    topic, group = unique("t-http"), unique("g-http")
    create_topic(bootstrap, topic, partitions=2)
    a = consumers(bootstrap, group, **{"client.id": "http-member"})
    a.subscribe([topic])
    poll_until([a], lambda: len(partitions(a)) == 2, 20, "the member's assignment")
    described = http_json(f"{broker.http_url}/api/kafka/groups/{group}")
    assert isinstance(described, dict)
    assert (described["state"], described["protocol_type"], described["protocol"]) == (
        "Stable",
        "consumer",
        "uniform",
    )
    (member,) = described["members"]
    assert member["client_id"] == "http-member"
    assert sorted(x["partition"] for x in member["assignments"]) == [0, 1]
    # DescribeGroups (the classic API) does not describe it, as Kafka: it is not a classic group
    old_admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        assert old_admin.describe_groups([group])[group]["group_state"] == "Dead"
    finally:
        old_admin.close()


def test_a_classic_consumer_joins_a_consumer_group(bootstrap: str, consumers: Any) -> None:
    # KIP-848 online migration (tests/kafka/test_group_migration.py has the rest)
    topic, group = unique("t-mixed"), unique("g-mixed")
    create_topic(bootstrap, topic, partitions=1)
    a = consumers(bootstrap, group)
    a.subscribe([topic])
    poll_until([a], lambda: len(partitions(a)) == 1, 20, "the consumer-protocol member's assignment")
    classic = consumers(bootstrap, group, **{"group.protocol": "classic", "session.timeout.ms": 6000})
    classic.subscribe([topic])
    admin = confluent_admin(bootstrap)

    def both_members() -> bool:
        described = admin.describe_consumer_groups([group])[group].result(timeout=10)
        return described.type == ConsumerGroupType.CONSUMER and len(described.members) == 2

    poll_until([a, classic], both_members, 20, "the classic member in the consumer group")
    assert len(partitions(a)) + len(partitions(classic)) == 1


def test_regex_subscription_picks_up_matching_topics(bootstrap: str, consumers: Any) -> None:
    prefix = unique("rx")
    group = unique("g-regex")
    create_topic(bootstrap, f"{prefix}-a", partitions=2)
    create_topic(bootstrap, f"{prefix}-other", partitions=1)
    a = consumers(bootstrap, group, **{"topic.metadata.refresh.interval.ms": 1000})
    a.subscribe([f"^{prefix}-a.*"])
    poll_until(
        [a], lambda: partitions(a) == {(f"{prefix}-a", 0), (f"{prefix}-a", 1)}, 20, "the regex's topic"
    )
    create_topic(bootstrap, f"{prefix}-ab", partitions=1)
    poll_until([a], lambda: (f"{prefix}-ab", 0) in partitions(a), 30, "a topic created later that matches")
    assert not any(t == f"{prefix}-other" for t, _ in partitions(a))


def test_new_partitions_are_assigned(bootstrap: str, consumers: Any) -> None:
    from confluent_kafka.admin import NewPartitions

    topic, group = unique("t-grow"), unique("g-grow")
    create_topic(bootstrap, topic, partitions=1)
    a = consumers(bootstrap, group)
    a.subscribe([topic])
    poll_until([a], lambda: len(partitions(a)) == 1, 20, "the first assignment")
    admin = confluent_admin(bootstrap)
    admin.create_partitions([NewPartitions(topic, 3)])[topic].result(timeout=15)
    poll_until([a], lambda: len(partitions(a)) == 3, 30, "the new partitions to be assigned")


def test_the_group_survives_a_broker_restart(
    tmp_path: Path, serve_kafka: Callable[..., ServeProcess]
) -> None:
    served = serve_kafka()
    address = kafka_address(served)
    topic, group = unique("t-restart"), unique("g-restart")
    create_topic(address, topic, partitions=2)
    conf = {"bootstrap.servers": address, "group.id": group, "group.protocol": "consumer"}
    a = Consumer({**conf, "client.id": "survivor"})
    try:
        a.subscribe([topic])
        poll_until([a], lambda: len(partitions(a)) == 2, 20, "the member's assignment")
        admin = confluent_admin(address)
        before = admin.describe_consumer_groups([group])[group].result(timeout=15)
        assert served.stop() == 0
    finally:
        a.close()  # the broker is gone: the leave is never heard
    again = serve_kafka(data_dir=tmp_path / "data")
    admin = confluent_admin(kafka_address(again))
    after = admin.describe_consumer_groups([group])[group].result(timeout=15)
    assert after.type == ConsumerGroupType.CONSUMER
    assert [m.client_id for m in after.members] == ["survivor"]
    assert [m.member_id for m in after.members] == [m.member_id for m in before.members]
    got = sorted(tp.partition for tp in after.members[0].assignment.topic_partitions)
    assert got == [0, 1]


def test_a_static_member_comes_back_to_its_partitions(bootstrap: str, consumers: Any) -> None:
    topic, group = unique("t-static"), unique("g-static")
    create_topic(bootstrap, topic, partitions=4)
    a = consumers(bootstrap, group, **{"group.instance.id": "instance-a"})
    b = consumers(bootstrap, group, **{"group.instance.id": "instance-b"})
    a.subscribe([topic])
    b.subscribe([topic])
    poll_until([a, b], split_evenly([a, b], topic, 4), 20, "two static members with 2 partitions each")
    held = partitions(b)
    admin = confluent_admin(bootstrap)
    before = admin.describe_consumer_groups([group])[group].result(timeout=15)
    b.close()  # a static member leaves with epoch -2: its partitions wait for it
    b2 = consumers(bootstrap, group, **{"group.instance.id": "instance-b"})
    b2.subscribe([topic])
    poll_until([a, b2], lambda: partitions(b2) == held, 20, "the new incarnation to get the same partitions")
    assert len(partitions(a)) == 2
    after = admin.describe_consumer_groups([group])[group].result(timeout=15)
    assert {m.member_id for m in after.members} != {m.member_id for m in before.members}
    assert sorted(m.group_instance_id for m in after.members) == ["instance-a", "instance-b"]


def test_an_empty_classic_group_becomes_a_consumer_group(bootstrap: str, consumers: Any) -> None:
    topic, group = unique("t-upgrade"), unique("g-upgrade")
    create_topic(bootstrap, topic, partitions=1)
    produce_confluent(bootstrap, topic, [(None, b"old"), (None, b"new")])
    classic = consumers(bootstrap, group, **{"group.protocol": "classic", "session.timeout.ms": 6000})
    classic.subscribe([topic])
    first = None
    deadline = time.monotonic() + 20
    while first is None and time.monotonic() < deadline:
        msg = classic.poll(0.1)
        if msg is not None and msg.error() is None:
            first = msg
    assert first is not None and first.value() == b"old"
    classic.commit(message=first, asynchronous=False)
    classic.close()
    upgraded = consumers(bootstrap, group)
    upgraded.subscribe([topic])
    msg = None
    deadline = time.monotonic() + 20
    while msg is None and time.monotonic() < deadline:
        msg = upgraded.poll(0.1)
        if msg is not None and msg.error() is not None:
            raise AssertionError(msg.error())
    assert msg is not None and msg.value() == b"new"  # from the classic group's committed offset
    admin = confluent_admin(bootstrap)  # kept alive until the answer is in
    listed = admin.list_consumer_groups(request_timeout=10).result(timeout=15)
    assert [g.type for g in listed.valid if g.group_id == group] == [ConsumerGroupType.CONSUMER]


def test_members_may_ask_for_the_range_assignor(bootstrap: str, consumers: Any) -> None:
    first, second, group = unique("t-range1"), unique("t-range2"), unique("g-range")
    create_topic(bootstrap, first, partitions=2)
    create_topic(bootstrap, second, partitions=2)
    members = [consumers(bootstrap, group, **{"group.remote.assignor": "range"}) for _ in range(2)]
    for m in members:
        m.subscribe([first, second])
    poll_until(members, lambda: all(len(partitions(m)) == 2 for m in members), 20, "2 partitions each")
    for m in members:  # range: the same partition number of both topics (co-partitioning)
        assert len({p for _, p in partitions(m)}) == 1
    admin = confluent_admin(bootstrap)
    d = admin.describe_consumer_groups([group])[group].result(timeout=15)
    assert d.partition_assignor == "range"


MEMBER_SCRIPT = """
import sys, time
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2], "group.protocol": "consumer"})
c.subscribe([sys.argv[3]])
last = None
while True:
    c.poll(0.05)
    now = sorted(tp.partition for tp in c.assignment())
    if now != last:
        print(",".join(map(str, now)), flush=True)
        last = now
"""


def test_a_silent_member_is_fenced_and_rejoins(tmp_path: Path, consumers: Any) -> None:
    import signal
    import subprocess
    import sys
    import threading

    from jackalope import Broker

    broker = Broker(
        tmp_path / "data",
        kafka_port=0,
        kafka_group_consumer_heartbeat_interval_ms=HEARTBEAT_MS,
        kafka_group_consumer_session_timeout_ms=2000,
    ).start()
    proc = None
    try:
        address = str(broker.kafka_bootstrap)
        topic, group = unique("t-fence"), unique("g-fence")
        create_topic(address, topic, partitions=2)
        a = consumers(address, group)
        a.subscribe([topic])
        poll_until([a], lambda: len(partitions(a)) == 2, 20, "the first member's assignment")
        proc = subprocess.Popen(
            [sys.executable, "-c", MEMBER_SCRIPT, address, group, topic], stdout=subprocess.PIPE, text=True
        )
        lines: list[str] = []  # the member's assignments as it prints them

        def read(stream: Any) -> None:
            lines.extend(line.strip() for line in iter(stream.readline, ""))

        threading.Thread(target=read, args=(proc.stdout,), daemon=True).start()

        def split() -> bool:
            return (
                len(partitions(a)) == 1 and bool(lines) and len(lines[-1].split(",")) == 1 and lines[-1] != ""
            )

        poll_until([a], split, 20, "the second member to take one partition")
        proc.send_signal(signal.SIGSTOP)  # no more heartbeats: fenced after the session timeout
        poll_until(
            [a], lambda: len(partitions(a)) == 2, 20, "the partitions of the fenced member to come back"
        )
        proc.send_signal(signal.SIGCONT)  # it finds out it was fenced, rejoins and gets one again
        poll_until([a], split, 20, "the fenced member to rejoin and take one partition again")
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait()
        broker.stop()


def test_a_consumer_that_only_assigns_commits(bootstrap: str, consumers: Callable[..., Any]) -> None:
    """A ``group.protocol=consumer`` client that assign()s and commits never joins the group: it
    sends epoch -1 (with a member id of its own making), which an empty group takes, as Kafka's
    does for admin clients and consumers without group management."""
    topic, group = unique("assign"), unique("assign-group")
    create_topic(bootstrap, topic)
    consumer = consumers(bootstrap, group)
    consumer.assign([TopicPartition(topic, 0, 0)])
    consumer.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
    (committed,) = consumer.committed([TopicPartition(topic, 0)], 10)
    assert committed.offset == 5
