"""KIP-848 online migration with real clients: classic consumers (confluent-kafka with
``group.protocol=classic``, kafka-python) and consumer-protocol ones (confluent-kafka with
``group.protocol=consumer``) in one group.  The group becomes a consumer group when the first
consumer-protocol member joins, the classic members stay and get their share, and it becomes
classic again when the last consumer-protocol member leaves."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, ConsumerGroupType

from tests.kafka.conftest import confluent_admin, create_topic, produce_confluent, unique
from tests.kafka.test_consumer_protocol import partitions as held
from tests.kafka.test_consumer_protocol import poll_until
from tests.kafka.test_consumer_protocol import split_evenly as split

HEARTBEAT_MS = 200  # the classic members' heartbeat.interval.ms and the brokers' KIP-848 one


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from jackalope import Broker

    started = Broker(
        tmp_path_factory.mktemp("migration") / "data",
        kafka_port=0,
        kafka_group_min_session_timeout_ms=1000,
        kafka_group_initial_delay_ms=0,
        kafka_group_consumer_heartbeat_interval_ms=HEARTBEAT_MS,
    ).start()
    try:
        yield str(started.kafka_bootstrap)
    finally:
        started.stop()


@pytest.fixture
def consumers() -> Iterator[Callable[..., Any]]:
    made: list[Any] = []

    def make(bootstrap: str, group: str, protocol: str, **extra: Any) -> Any:
        conf: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "group.protocol": protocol,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
        if protocol == "classic":
            conf.update({"session.timeout.ms": 6000, "heartbeat.interval.ms": HEARTBEAT_MS})
        conf.update(extra)
        c = Consumer(conf)
        made.append(c)
        return c

    yield make
    for c in made:
        with contextlib.suppress(RuntimeError):  # closed by the test
            c.close()


def describe(bootstrap: str, group: str) -> Any:
    admin = confluent_admin(bootstrap)  # kept until the answer is in
    return admin.describe_consumer_groups([group])[group].result(timeout=10)


def group_type(bootstrap: str, group: str) -> Any:
    return describe(bootstrap, group).type


def consume_once(members: list[Any], bootstrap: str, topic: str, n: int) -> None:
    """Produce ``n`` records; the members read each of them exactly once between them, and
    commit (classic members with their generation, the others with their member epoch)."""
    tag = unique("v").encode()
    wanted = sorted(b"%s-%d" % (tag, i) for i in range(n))
    produce_confluent(bootstrap, topic, [(b"k%d" % i, b"%s-%d" % (tag, i)) for i in range(n)])
    seen: list[bytes] = []
    deadline = time.monotonic() + 20
    while len(seen) < n and time.monotonic() < deadline:
        for m in members:
            msg = m.poll(0.05)
            if msg is not None and msg.error() is None:
                seen.append(msg.value())
    assert sorted(seen) == wanted
    for m in members:
        m.commit(asynchronous=False)


@pytest.mark.parametrize("strategy", ["roundrobin", "cooperative-sticky"])
def test_classic_group_upgraded_then_downgraded(bootstrap: str, consumers: Any, strategy: str) -> None:
    topic, group = unique("t-up"), unique("g-up")
    create_topic(bootstrap, topic, partitions=4)
    classic = consumers(bootstrap, group, "classic", **{"partition.assignment.strategy": strategy})
    classic.subscribe([topic])
    poll_until([classic], lambda: len(held(classic)) == 4, 20, "the classic member to get all 4")
    assert group_type(bootstrap, group) == ConsumerGroupType.CLASSIC
    new = consumers(bootstrap, group, "consumer")
    new.subscribe([topic])
    poll_until([classic, new], split([classic, new], topic, 4), 20, "2 partitions each")
    assert group_type(bootstrap, group) == ConsumerGroupType.CONSUMER
    consume_once([classic, new], bootstrap, topic, 40)
    new.close()  # the last consumer-protocol member leaves: the group is classic again
    poll_until([classic], lambda: len(held(classic)) == 4, 20, "the classic member to get all 4 back")
    assert group_type(bootstrap, group) == ConsumerGroupType.CLASSIC
    consume_once([classic], bootstrap, topic, 20)


def test_classic_member_joins_a_consumer_group(bootstrap: str, consumers: Any) -> None:
    topic, group = unique("t-mixed"), unique("g-mixed")
    create_topic(bootstrap, topic, partitions=4)
    new = consumers(bootstrap, group, "consumer")
    new.subscribe([topic])
    poll_until([new], lambda: len(held(new)) == 4, 20, "the consumer-protocol member to get all 4")
    classic = consumers(bootstrap, group, "classic", **{"partition.assignment.strategy": "range"})
    classic.subscribe([topic])
    poll_until([classic, new], split([classic, new], topic, 4), 20, "2 partitions each")
    assert group_type(bootstrap, group) == ConsumerGroupType.CONSUMER
    described = describe(bootstrap, group)
    assert len(described.members) == 2
    consume_once([classic, new], bootstrap, topic, 40)
    new.close()
    poll_until([classic], lambda: len(held(classic)) == 4, 20, "the classic member to get all 4")
    assert group_type(bootstrap, group) == ConsumerGroupType.CLASSIC


def test_kafka_python_member_beside_a_consumer_protocol_member(bootstrap: str, consumers: Any) -> None:
    from kafka import KafkaConsumer

    topic, group = unique("t-kp"), unique("g-kp")
    create_topic(bootstrap, topic, partitions=4)
    kp = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=HEARTBEAT_MS,
        consumer_timeout_ms=50,
        # a leader that joined before its metadata had the new topic assigns nothing; kafka-python
        # rejoins when a metadata refresh shows the topic, so refresh often (a busy machine)
        metadata_max_age_ms=500,
    )
    try:

        def kp_held() -> set[tuple[str, int]]:
            return {(tp.topic, tp.partition) for tp in kp.assignment()}

        def poll_all(members: list[Any], predicate: Callable[[], bool], what: str) -> None:
            deadline = time.monotonic() + 20
            while not predicate():
                assert time.monotonic() < deadline, f"timed out waiting for {what}"
                kp.poll(timeout_ms=50)
                for m in members:
                    m.poll(0.05)

        poll_all([], lambda: len(kp_held()) == 4, "kafka-python to get all 4")
        new = consumers(bootstrap, group, "consumer")
        new.subscribe([topic])

        def halves() -> bool:
            a, b = kp_held(), held(new)
            return len(a) == 2 and len(b) == 2 and not a & b

        poll_all([new], halves, "2 partitions each")
        assert group_type(bootstrap, group) == ConsumerGroupType.CONSUMER
        new.close()
        poll_all([], lambda: len(kp_held()) == 4, "kafka-python to get all 4 back")
        assert group_type(bootstrap, group) == ConsumerGroupType.CLASSIC
    finally:
        kp.close()
