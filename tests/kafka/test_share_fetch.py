"""Share groups' delivery (KIP-932) with confluent-kafka's ShareConsumer over real sockets:
ShareFetch and ShareAcknowledge, acknowledge types, delivery counts, lock timeouts, two members,
the share offsets admin APIs, and the acknowledged state surviving kill -9."""

from __future__ import annotations

import datetime
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import AcknowledgeType, Producer, ShareConsumer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from jackalope.kafka.protocol import ErrorCode
from tests.kafka.conftest import create_topic, kafka_address, wait_until
from tests.kafka_frontend.wire import WireClient, entity, request

LOCK_MS = 1000  # the broker's share.record.lock.duration.ms default in this module


@pytest.fixture(scope="module")
def share_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from jackalope import Broker

    broker = Broker(
        tmp_path_factory.mktemp("share") / "data",
        kafka_port=0,
        kafka_share_record_lock_duration_ms=LOCK_MS,
        kafka_share_min_record_lock_duration_ms=LOCK_MS,
    ).start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def bs(share_broker: Any) -> str:
    return str(share_broker.kafka_bootstrap)


def set_group_config(bootstrap: str, group: str, name: str, value: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    res = ConfigResource(
        ConfigResource.Type.GROUP,
        group,
        incremental_configs=[ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)],
    )
    for future in admin.incremental_alter_configs([res]).values():
        future.result(10)


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for value in values:
        producer.produce(topic, value=value)
    assert producer.flush(10) == 0


def share_consumer(bootstrap: str, group: str, topic: str, **extra: Any) -> ShareConsumer:
    set_group_config(bootstrap, group, "share.auto.offset.reset", "earliest")
    conf = {"bootstrap.servers": bootstrap, "group.id": group, "share.acknowledgement.mode": "explicit"}
    sc = ShareConsumer({**conf, **extra})
    sc.subscribe([topic])
    return sc


def consume(
    sc: ShareConsumer,
    count: int,
    ack: Callable[[Any], AcknowledgeType] | None = lambda m: AcknowledgeType.ACCEPT,
    timeout: float = 15,
) -> list[Any]:
    """Poll until ``count`` records came (acknowledging each with ``ack``) or the timeout."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        for m in sc.poll(timeout=0.2):
            if m.error() is None:
                got.append(m)
                if ack is not None:
                    sc.acknowledge(m, ack(m))
    return got


def nothing_more(sc: ShareConsumer, seconds: float = 1.5) -> list[Any]:
    """What arrives within ``seconds`` (accepted): longer than the lock, so a record that would
    come back has."""
    return consume(sc, 1_000_000, timeout=seconds)


def test_consume_and_accept(bs: str, topic: str, group: str) -> None:
    create_topic(bs, topic, 1)
    produce(bs, topic, [b"m%d" % i for i in range(5)])
    sc = share_consumer(bs, group, topic)
    try:
        got = consume(sc, 5)
        assert sorted(m.value() for m in got) == [b"m%d" % i for i in range(5)]
        assert all(m.delivery_count() == 1 for m in got)
        assert sc.commit_sync(timeout=10)
    finally:
        sc.close()
    again = share_consumer(bs, group, topic)
    try:
        assert nothing_more(again) == []
    finally:
        again.close()


def test_release_redelivers_with_the_delivery_count(bs: str, topic: str, group: str) -> None:
    create_topic(bs, topic, 1)
    produce(bs, topic, [b"x"])
    sc = share_consumer(bs, group, topic)
    try:
        first = consume(sc, 1, ack=lambda m: AcknowledgeType.RELEASE)
        assert [m.delivery_count() for m in first] == [1]
        second = consume(sc, 1)
        assert [(m.offset(), m.delivery_count()) for m in second] == [(first[0].offset(), 2)]
    finally:
        sc.close()


def test_reject_is_never_redelivered(bs: str, topic: str, group: str) -> None:
    create_topic(bs, topic, 1)
    produce(bs, topic, [b"poison", b"fine"])
    sc = share_consumer(bs, group, topic)
    try:
        got = consume(
            sc, 2, ack=lambda m: AcknowledgeType.REJECT if m.value() == b"poison" else AcknowledgeType.ACCEPT
        )
        assert len(got) == 2
        assert nothing_more(sc) == []
    finally:
        sc.close()


def test_two_consumers_get_disjoint_records(bs: str, topic: str, group: str) -> None:
    create_topic(bs, topic, 2)
    values = [b"v%d" % i for i in range(40)]
    produce(bs, topic, values)
    a = share_consumer(bs, group, topic)
    b = share_consumer(bs, group, topic)
    try:
        seen: dict[tuple[int, int], str] = {}
        deadline = time.monotonic() + 20
        while len(seen) < len(values) and time.monotonic() < deadline:
            for name, sc in (("a", a), ("b", b)):
                for m in sc.poll(timeout=0.1):
                    if m.error() is None:
                        key = (m.partition(), m.offset())
                        assert key not in seen, f"{key} delivered to {seen[key]} and {name}"
                        seen[key] = name
                        sc.acknowledge(m, AcknowledgeType.ACCEPT)
        assert len(seen) == len(values)
    finally:
        a.close()
        b.close()


def test_lock_timeout_redelivers(bs: str, topic: str, group: str) -> None:
    create_topic(bs, topic, 1)
    produce(bs, topic, [b"slow"])
    holder = share_consumer(bs, group, topic)
    other = share_consumer(bs, group, topic)
    try:
        first = consume(holder, 1, ack=None)  # acquired, never acknowledged
        assert len(first) == 1
        # once the lock lapses (1 s) the other member gets it, delivered a second time
        again = consume(other, 1, timeout=20)
        assert [(m.offset(), m.delivery_count()) for m in again] == [(first[0].offset(), 2)]
    finally:
        other.close()
        holder.close()


def test_delivery_count_limit_archives(bs: str, topic: str, group: str) -> None:
    create_topic(bs, topic, 1)
    produce(bs, topic, [b"bad"])
    set_group_config(bs, group, "share.delivery.count.limit", "2")
    sc = share_consumer(bs, group, topic)
    try:
        got = consume(sc, 2, ack=lambda m: AcknowledgeType.RELEASE)
        assert [m.delivery_count() for m in got] == [1, 2]
        assert nothing_more(sc) == []
    finally:
        sc.close()


def _describe(client: WireClient, group: str, topic: str) -> Any:
    body = request(
        90,
        1,
        groups=(
            entity(
                90,
                1,
                "DescribeShareGroupOffsetsRequestGroup",
                group_id=group,
                topics=(
                    entity(90, 1, "DescribeShareGroupOffsetsRequestTopic", topic_name=topic, partitions=(0,)),
                ),
            ),
        ),
    )
    return client.call(body).groups[0]


def test_share_group_offsets(bs: str, topic: str, group: str) -> None:
    create_topic(bs, topic, 1)
    produce(bs, topic, [b"a", b"b", b"c", b"d"])
    sc = share_consumer(bs, group, topic)
    try:
        consume(sc, 4, ack=lambda m: AcknowledgeType.ACCEPT if m.offset() < 3 else AcknowledgeType.RELEASE)
        sc.commit_sync(timeout=10)
        with WireClient(bs) as client:
            described = _describe(client, group, topic)
            part = described.topics[0].partitions[0]
            assert (described.error_code, part.start_offset) == (0, 3)
            altering = request(
                91,
                0,
                group_id=group,
                topics=(
                    entity(
                        91,
                        0,
                        "AlterShareGroupOffsetsRequestTopic",
                        topic_name=topic,
                        partitions=(
                            entity(
                                91,
                                0,
                                "AlterShareGroupOffsetsRequestPartition",
                                partition_index=0,
                                start_offset=1,
                            ),
                        ),
                    ),
                ),
            )
            assert client.call(altering).error_code == ErrorCode.non_empty_group  # a member is in it
    finally:
        sc.close()
    with WireClient(bs) as client:
        wait_until(lambda: client.call(altering).error_code == 0, 10, "the group to be empty")
        assert _describe(client, group, topic).topics[0].partitions[0].start_offset == 1
        deleting = request(
            92,
            0,
            group_id=group,
            topics=(entity(92, 0, "DeleteShareGroupOffsetsRequestTopic", topic_name=topic),),
        )
        answer = client.call(deleting)
        assert (answer.error_code, answer.responses[0].error_code) == (0, 0)
        assert _describe(client, group, topic).topics[0].partitions[0].start_offset == -1


def _share_fetch(
    group: str, member: str, epoch: int, topic_id: Any = None, acks: tuple[Any, ...] = ()
) -> Any:
    topics = ()
    if topic_id is not None:
        partition = entity(78, 1, "FetchPartition", partition_index=0, acknowledgement_batches=acks)
        topics = (entity(78, 1, "FetchTopic", topic_id=topic_id, partitions=(partition,)),)
    return request(
        78,
        1,
        group_id=group,
        member_id=member,
        share_session_epoch=epoch,
        max_wait=datetime.timedelta(0),
        min_bytes=1,
        max_records=10,
        batch_size=10,
        topics=topics,
        forgotten_topics_data=(),
    )


def test_share_session_epochs(bs: str, topic: str, group: str) -> None:
    create_topic(bs, topic, 1)
    member = uuid.uuid4().hex[:22]
    with WireClient(bs) as client:
        assert client.call(_share_fetch(group, member, 0)).error_code == ErrorCode.group_id_not_found
        joined = client.call(
            request(76, 1, group_id=group, member_id=member, member_epoch=0, subscribed_topic_names=(topic,))
        )
        assert joined.error_code == 0
        assert client.call(_share_fetch(group, "stranger", 0)).error_code == ErrorCode.unknown_member_id
        assert client.call(_share_fetch(group, member, 3)).error_code == ErrorCode.share_session_not_found
        metadata = client.call(
            request(
                3, 12, topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False
            )
        )
        topic_id = next(t.topic_id for t in metadata.topics if t.name == topic)
        ack = entity(78, 1, "AcknowledgementBatch", first_offset=0, last_offset=0, acknowledge_types=(1,))
        assert (
            client.call(_share_fetch(group, member, 0, topic_id, (ack,))).error_code
            == ErrorCode.invalid_request
        )
        opened = client.call(_share_fetch(group, member, 0, topic_id))
        assert opened.error_code == 0 and opened.acquisition_lock_timeout.total_seconds() * 1000 == LOCK_MS
        assert client.call(_share_fetch(group, member, 5)).error_code == ErrorCode.invalid_share_session_epoch
        assert client.call(_share_fetch(group, member, 1)).error_code == 0
        # acknowledging what the member does not hold: INVALID_RECORD_STATE on the partition
        answer = client.call(_share_fetch(group, member, 2, topic_id, (ack,)))
        assert answer.responses[0].partitions[0].acknowledge_error_code == ErrorCode.invalid_record_state
        assert client.call(_share_fetch(group, member, -1)).error_code == 0
        assert client.call(_share_fetch(group, member, 3)).error_code == ErrorCode.share_session_not_found


def test_acknowledged_state_survives_sigkill(serve_kafka: Callable[..., Any], tmp_path: Path) -> None:
    data = tmp_path / "data"
    served = serve_kafka("--kafka-share-record-lock-duration-ms", "30000", data_dir=data)
    bootstrap = kafka_address(served)
    topic, group = "sigkill-share", "sigkill-group"
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, [b"r%d" % i for i in range(4)])
    sc = share_consumer(bootstrap, group, topic)
    fetched = consume(sc, 4, ack=None)
    assert len(fetched) == 4
    for m in fetched:
        if m.offset() < 2:
            sc.acknowledge(m, AcknowledgeType.ACCEPT)
    result = sc.commit_sync(timeout=10)  # answered once durable
    assert result and all(e is None for e in result.values())
    os.kill(served.proc.pid, signal.SIGKILL)  # offsets 2 and 3 are acquired, unacknowledged
    assert served.proc.wait(10) == -signal.SIGKILL
    again = serve_kafka(data_dir=data)
    bootstrap = kafka_address(again)
    sc2 = share_consumer(bootstrap, group, topic)
    try:
        got = consume(sc2, 2)
        assert sorted((m.offset(), m.delivery_count()) for m in got) == [(2, 2), (3, 2)]
        assert nothing_more(sc2, 1.0) == []
    finally:
        sc2.close()
        del sc  # its broker is gone: not closed (close would wait for it)
