"""A share consumer's connection closing releases what its member acquired (KIP-932): another
member of the group gets those records at once, not when their acquisition locks lapse.  The
group's lock duration is set to its maximum (60 s) and every wait here is well below it, so a
record that arrives was released by the disconnect."""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import AcknowledgeType

from tests.kafka.conftest import create_topic
from tests.kafka.test_share_fetch import produce, set_group_config, share_consumer
from tests.kafka_frontend.wire import WireClient, entity, request

LOCK_MS = 60000  # the group's share.record.lock.duration.ms: its maximum
DEADLINE = 20.0  # seconds: well below the lock


@pytest.fixture(scope="module")
def bs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from jackalope import Broker

    broker = Broker(tmp_path_factory.mktemp("share-disconnect") / "data", kafka_port=0).start()
    try:
        yield str(broker.kafka_bootstrap)
    finally:
        broker.stop()


def _prepare(bs: str, topic: str, group: str, count: int) -> None:
    create_topic(bs, topic, 1)
    produce(bs, topic, [b"r%d" % i for i in range(count)])
    set_group_config(bs, group, "share.auto.offset.reset", "earliest")
    set_group_config(bs, group, "share.record.lock.duration.ms", str(LOCK_MS))


def _topic_id(client: WireClient, topic: str) -> uuid.UUID:
    metadata = client.call(
        request(
            3, 12, topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False
        )
    )
    return next(t.topic_id for t in metadata.topics if t.name == topic)


def _join(client: WireClient, group: str, member: str, topic: str) -> None:
    joined = client.call(
        request(76, 1, group_id=group, member_id=member, member_epoch=0, subscribed_topic_names=(topic,))
    )
    assert joined.error_code == 0


def _open(client: WireClient, group: str, member: str, topic_id: uuid.UUID) -> list[tuple[int, int]]:
    """ShareFetch epoch 0 of partition 0: opens the member's session on this connection;
    returns the (first, last) offsets acquired."""
    partition = entity(78, 1, "FetchPartition", partition_index=0, acknowledgement_batches=())
    answer = client.call(
        request(
            78,
            1,
            group_id=group,
            member_id=member,
            share_session_epoch=0,
            max_wait=datetime.timedelta(0),
            min_bytes=1,
            max_records=100,
            batch_size=100,
            topics=(entity(78, 1, "FetchTopic", topic_id=topic_id, partitions=(partition,)),),
            forgotten_topics_data=(),
        )
    )
    assert answer.error_code == 0
    assert answer.acquisition_lock_timeout.total_seconds() * 1000 == LOCK_MS
    return [
        (a.first_offset, a.last_offset)
        for t in answer.responses
        for p in t.partitions
        for a in p.acquired_records
    ]


def _receive(sc: Any, count: int, timeout: float = DEADLINE) -> list[tuple[int, int]]:
    """(offset, delivery count) of the records ``sc`` gets (accepting each) until ``count``
    came or the timeout."""
    got: list[tuple[int, int]] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        for m in sc.poll(timeout=0.2):
            if m.error() is None:
                got.append((m.offset(), m.delivery_count()))
                sc.acknowledge(m, AcknowledgeType.ACCEPT)
    return got


def test_closed_connection_releases_its_records(bs: str, topic: str, group: str) -> None:
    _prepare(bs, topic, group, 3)
    client = WireClient(bs)
    member = uuid.uuid4().hex[:22]
    _join(client, group, member, topic)
    assert _open(client, group, member, _topic_id(client, topic)) == [(0, 2)]
    other = share_consumer(bs, group, topic)
    try:
        client.close()  # no closing epoch, no leaving heartbeat: the member is still in the group
        assert sorted(_receive(other, 3)) == [(0, 2), (1, 2), (2, 2)]  # delivered a second time
    finally:
        other.close()


def test_reopened_session_belongs_to_the_new_connection(bs: str, topic: str, group: str) -> None:
    _prepare(bs, topic, group, 2)
    first, second = WireClient(bs), WireClient(bs)
    member = uuid.uuid4().hex[:22]
    _join(first, group, member, topic)
    topic_id = _topic_id(first, topic)
    assert _open(first, group, member, topic_id) == [(0, 1)]
    assert _open(second, group, member, topic_id) == []  # the member holds them already
    other = share_consumer(bs, group, topic)
    try:
        first.close()  # the session is the second connection's now: nothing is released
        assert _receive(other, 1, timeout=1.5) == []  # a release would come within a poll or two
        second.close()
        assert sorted(_receive(other, 2)) == [(0, 2), (1, 2)]
    finally:
        other.close()


_HOLDER = """
import sys
from confluent_kafka import ShareConsumer
sc = ShareConsumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2],
                    "share.acknowledgement.mode": "explicit"})
sc.subscribe([sys.argv[3]])
got = 0
while got < int(sys.argv[4]):
    got += sum(1 for m in sc.poll(timeout=0.2) if m.error() is None)
print("acquired", got, flush=True)
sys.stdin.read()
"""


def test_killed_consumer_process_releases_its_records(
    bs: str, topic: str, group: str, tmp_path: Path
) -> None:
    _prepare(bs, topic, group, 4)
    script = tmp_path / "holder.py"
    script.write_text(_HOLDER)
    holder = subprocess.Popen(
        [sys.executable, str(script), bs, group, topic, "4"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().split() == ["acquired", "4"]
        other = share_consumer(bs, group, topic)
        try:
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(10)
            assert sorted(_receive(other, 4)) == [(o, 2) for o in range(4)]
        finally:
            other.close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
