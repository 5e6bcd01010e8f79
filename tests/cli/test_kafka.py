"""Topics and consumer groups through the installed ``jackalope`` command, with records and
committed offsets made by kafka-python."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from kafka.structs import OffsetAndMetadata

from jackalope import Broker
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from tests.cli.conftest import Run, table_lines


@pytest.fixture(scope="module")
def producer(broker: Broker) -> Iterator[KafkaProducer]:
    p = KafkaProducer(bootstrap_servers=broker.kafka_bootstrap, request_timeout_ms=10000, max_block_ms=10000)
    yield p
    p.close(timeout=5)


def _consumer(broker: Broker, **kw: Any) -> KafkaConsumer:
    return KafkaConsumer(
        bootstrap_servers=broker.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=10000,
        **kw,
    )


def _fill(cli: Run, producer: KafkaProducer, topic: str, count: int, partitions: int = 1) -> None:
    assert cli("topics", "create", topic, "--partitions", str(partitions)).code == 0
    for i in range(count):
        producer.send(topic, value=f"v{i}".encode(), partition=i % partitions)
    producer.flush(timeout=15)


def _commit(broker: Broker, group: str, topic: str, offset: int) -> None:
    """Commit ``offset`` for partition 0 as a group without members (as a tool does)."""
    consumer = _consumer(broker, group_id=group)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.commit({tp: OffsetAndMetadata(offset, "", -1)})
    finally:
        consumer.close()


def _committed(cli: Run, group: str) -> dict[tuple[str, int], int]:
    described = cli("groups", "describe", group, "--json").json()
    return {(o["topic"], o["partition"]): o["current_offset"] for o in described["offsets"]}


def test_topics_create_alter_describe_delete(cli: Run, broker: Broker, producer: KafkaProducer) -> None:
    created = cli("topics", "create", "cli-t1", "--partitions", "3", "--config", "retention.ms=600000")
    assert created.code == 0, created.err
    assert "3 partitions" in created.out
    consumer = _consumer(broker)
    try:
        assert consumer.partitions_for_topic("cli-t1") == {0, 1, 2}  # a Kafka client sees it
    finally:
        consumer.close()
    for i in range(6):
        producer.send("cli-t1", value=b"x", partition=i % 3)
    producer.flush(timeout=15)
    listed = {t["name"]: t for t in cli("topics", "list", "--json").json()}
    assert (listed["cli-t1"]["partitions"], listed["cli-t1"]["messages"]) == (3, 6)
    table = table_lines(cli("topics", "list").out)
    assert table[0].split() == ["NAME", "PARTITIONS", "MESSAGES", "INTERNAL"]
    assert ["cli-t1", "3", "6", "no"] in [line.split() for line in table]
    described = cli("topics", "describe", "cli-t1", "--json").json()
    assert [p["high_watermark"] for p in described["partitions"]] == [2, 2, 2]
    assert str(described["configs"]["retention.ms"]) == "600000"
    text = table_lines(cli("topics", "describe", "cli-t1").out)
    assert any(line.split()[:4] == ["0", "0", "2", "2"] for line in text)
    assert cli("topics", "alter", "cli-t1", "--partitions", "4", "--config", "retention.ms=1000").code == 0
    altered = cli("topics", "describe", "cli-t1", "--json").json()
    assert len(altered["partitions"]) == 4 and str(altered["configs"]["retention.ms"]) == "1000"
    assert cli("topics", "alter", "cli-t1", "--delete-config", "retention.ms").code == 0
    assert str(cli("topics", "describe", "cli-t1", "--json").json()["configs"]["retention.ms"]) != "1000"
    assert cli("topics", "alter", "cli-t1").code == 2  # nothing to alter
    exists = cli("topics", "create", "cli-t1")
    assert exists.code == 1 and "409" in exists.err
    assert cli("delete", "topic", "cli-t1").code == 0
    gone = cli("topics", "describe", "cli-t1")
    assert gone.code == 1 and "404" in gone.err
    assert cli("topics", "delete", "cli-t1").code == 1


def test_groups_describe_shows_lag_per_partition(cli: Run, broker: Broker, producer: KafkaProducer) -> None:
    _fill(cli, producer, "cli-lag", 10)
    _commit(broker, "cli-g1", "cli-lag", 4)
    listed = {g["group_id"]: g for g in cli("groups", "list", "--json").json()}
    assert (listed["cli-g1"]["lag"], listed["cli-g1"]["members"]) == (6, 0)
    described = cli("groups", "describe", "cli-g1")
    assert described.code == 0, described.err
    lines = table_lines(described.out)
    assert lines[0].split() == [
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]
    assert lines[1].split() == ["cli-g1", "cli-lag", "0", "4", "10", "6", "-", "-", "-"]
    assert "has no active members" in described.err
    unknown = cli("groups", "describe", "cli-no-such-group")
    assert unknown.code == 1 and "404" in unknown.err


def test_groups_reset_offsets_is_a_dry_run_without_execute(
    cli: Run, broker: Broker, producer: KafkaProducer
) -> None:
    _fill(cli, producer, "cli-reset", 10)
    _commit(broker, "cli-g2", "cli-reset", 5)
    planned = cli("groups", "reset-offsets", "cli-g2", "--to-earliest", "--topic", "cli-reset")
    assert planned.code == 0, planned.err
    assert "--execute" in planned.err
    lines = table_lines(planned.out)
    assert lines[0].split() == ["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"]
    assert lines[1].split() == ["cli-g2", "cli-reset", "0", "0"]
    assert _committed(cli, "cli-g2") == {("cli-reset", 0): 5}  # nothing applied
    dry = cli("groups", "reset-offsets", "cli-g2", "--to-latest", "--all-topics", "--dry-run", "--json")
    assert dry.json()["offsets"] == [{"topic": "cli-reset", "partition": 0, "offset": 10}]
    assert _committed(cli, "cli-g2") == {("cli-reset", 0): 5}
    for args, expected in (
        (("--to-earliest",), 0),
        (("--shift-by", "3"), 3),
        (("--to-offset", "7"), 7),
        (("--shift-by", "-2"), 5),
        (("--to-latest",), 10),
        (("--to-datetime", "2000-01-01T00:00:00.000"), 0),
    ):
        done = cli("groups", "reset-offsets", "cli-g2", *args, "--topic", "cli-reset:0", "--execute")
        assert done.code == 0, (args, done.err)
        assert _committed(cli, "cli-g2") == {("cli-reset", 0): expected}, args
    # a Kafka consumer of the group resumes where the reset put it
    _commit(broker, "cli-g2", "cli-reset", 5)
    assert cli("groups", "reset-offsets", "cli-g2", "--to-offset", "8", "--all-topics", "--execute").code == 0
    consumer = _consumer(broker, group_id="cli-g2")
    try:
        assert consumer.committed(TopicPartition("cli-reset", 0)) == 8
    finally:
        consumer.close()


def test_groups_reset_offsets_usage_errors(cli: Run) -> None:
    group = ("groups", "reset-offsets", "cli-g2")
    for args in (
        ("--topic", "cli-reset"),  # no scenario
        ("--to-earliest", "--to-latest", "--topic", "cli-reset"),
        ("--to-earliest",),  # no scope
        ("--to-earliest", "--topic", "t", "--all-topics"),
        ("--to-earliest", "--all-topics", "--dry-run", "--execute"),
        ("--to-datetime", "yesterday", "--all-topics"),
        ("--to-offset", "ten", "--all-topics"),
    ):
        result = cli(*group, *args)
        assert result.code == 2, (args, result.err)


def test_a_group_with_a_live_member(cli: Run, broker: Broker, producer: KafkaProducer) -> None:
    _fill(cli, producer, "cli-live", 3)
    member = _consumer(
        broker, group_id="cli-g3", client_id="cli-member", session_timeout_ms=6000, heartbeat_interval_ms=1000
    )
    try:
        member.subscribe(["cli-live"])
        deadline = time.monotonic() + 30
        got = 0
        while got < 3 and time.monotonic() < deadline:
            got += sum(len(r) for r in member.poll(timeout_ms=500).values())
        assert got == 3
        member.commit()
        described = cli("groups", "describe", "cli-g3", "--json").json()
        row = described["offsets"][0]
        assert (row["current_offset"], row["log_end_offset"], row["lag"]) == (3, 3, 0)
        assert row["client_id"] == "cli-member" and row["consumer_id"]
        table = table_lines(cli("groups", "describe", "cli-g3").out)
        assert "cli-member" in table[1]
        refused = cli("groups", "reset-offsets", "cli-g3", "--to-earliest", "--all-topics", "--execute")
        assert refused.code == 1 and "409" in refused.err
        assert cli("groups", "delete", "cli-g3").code == 1
    finally:
        member.close()
