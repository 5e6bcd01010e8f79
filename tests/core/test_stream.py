"""Stream queues in the broker core: declaration rules, the topic beneath, publishing, readers
with their own offsets, wake-ups on appends from elsewhere, deletion and restarts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jackalope.core.errors import InvalidArgument, PreconditionFailed, ResourceLocked
from jackalope.core.message import Message
from jackalope.core.stream import (
    NEXT,
    OffsetSpec,
    Stream,
    parse_age,
    parse_offset_spec,
    plain_record,
    resolve_offset,
    topic_configs,
)
from jackalope.core.topics import Topics
from jackalope.core.vhost import VirtualHost
from jackalope.storage import LogManager, Record

STREAM = {"x-queue-type": "stream"}


class Reader:
    """A stream consumer with a credit limit that records what it was given."""

    def __init__(self, tag: str = "c", credit: int = 1_000_000, exclusive: bool = False) -> None:
        self.tag = tag
        self.exclusive = exclusive
        self.credit = credit
        self.got: list[Record] = []
        self.was_cancelled = False

    def can_deliver(self) -> bool:
        return len(self.got) < self.credit

    def deliver_record(self, stream: Stream, record: Record) -> None:
        self.got.append(record)

    def cancelled(self, stream: Stream) -> None:
        self.was_cancelled = True

    def values(self) -> list[bytes | None]:
        return [r.value for r in self.got]


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[LogManager]:
    manager = LogManager(tmp_path / "logs")
    manager.open()
    yield manager
    manager.close_sync()


@pytest.fixture
def topics(logs: LogManager) -> Topics:
    return Topics(logs, None)


@pytest.fixture
def vhost(logs: LogManager, topics: Topics) -> VirtualHost:
    return VirtualHost("/", logs, topics=topics)


def declare(vhost: VirtualHost, name: str = "s", **arguments: object) -> Stream:
    stream = vhost.declare_queue(name, owner=None, durable=True, arguments={**STREAM, **arguments})
    assert isinstance(stream, Stream)
    return stream


def publish(vhost: VirtualHost, stream: str, *bodies: bytes, exchange: str = "") -> None:
    for body in bodies:
        for target in vhost.route(exchange, stream, lambda: {}):
            target.enqueue(Message(exchange, stream, b"\x00\x00", body, False))


# -- arguments --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ms"),
    [("10s", 10_000), ("30m", 1_800_000), ("12h", 43_200_000), ("7D", 604_800_000), ("1M", 2_592_000_000)],
)
def test_parse_age(text: str, ms: int) -> None:
    assert parse_age(text) == ms
    assert parse_age("1Y") == 365 * 86_400_000


@pytest.mark.parametrize("bad", ["", "0s", "10", "h", "10x", "1.5h", "-1h", 10, None])
def test_parse_age_refuses(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_age(bad)


def test_topic_configs_map_rabbitmq_arguments_to_kafka_names() -> None:
    configs = topic_configs(
        {
            "x-queue-type": "stream",
            "x-max-length-bytes": 5_000_000,
            "x-max-age": "2h",
            "x-stream-max-segment-size-bytes": 100_000,
            "x-initial-cluster-size": 3,
        },
        "queue 's'",
    )
    assert configs == {"retention.bytes": "5000000", "retention.ms": "7200000", "segment.bytes": "100000"}


@pytest.mark.parametrize(
    "arguments",
    [
        {"x-max-age": "forever"},
        {"x-max-length-bytes": "big"},
        {"x-max-length-bytes": -1},
        {"x-max-length": 10},
        {"x-message-ttl": 1000},
        {"x-stream-max-segment-size-bytes": 4_000_000_000},
    ],
)
def test_topic_configs_refuse(arguments: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        topic_configs(arguments, "queue 's'")


def test_parse_offset_spec() -> None:
    assert parse_offset_spec(None) == NEXT
    assert parse_offset_spec("first") == OffsetSpec("first")
    assert parse_offset_spec(b"last") == OffsetSpec("last")
    assert parse_offset_spec("next") == OffsetSpec("next")
    assert parse_offset_spec(42) == OffsetSpec("offset", 42)
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_offset_spec(when) == OffsetSpec("timestamp", int(when.timestamp()) * 1000)
    assert parse_offset_spec("1h", now_ms=10_000_000) == OffsetSpec("timestamp", 10_000_000 - 3_600_000)
    for bad in ("earliest", True, 1.5, "0m"):
        with pytest.raises(InvalidArgument):
            parse_offset_spec(bad)


# -- declaration ------------------------------------------------------------------------------


def test_declare_creates_a_one_partition_topic_with_the_configs(vhost: VirtualHost, topics: Topics) -> None:
    stream = declare(vhost, "events", **{"x-max-age": "1D", "x-max-length-bytes": 1 << 30})
    topic = topics.get("events")
    assert topic is not None
    assert topic.partitions == [stream.log]
    assert topic.configs == {"retention.ms": "86400000", "retention.bytes": str(1 << 30)}
    assert stream.log.config.retention_ms == 86_400_000
    assert vhost.queue("events") is stream
    assert declare(vhost, "events", **{"x-max-age": "1D", "x-max-length-bytes": 1 << 30}) is stream


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        ({"durable": False}, "non-durable"),
        ({"exclusive": True}, "exclusive-owner"),
        ({"auto_delete": True}, "auto-delete"),
    ],
)
def test_declare_needs_durable_shared_and_kept(
    vhost: VirtualHost, flags: dict[str, bool], reason: str
) -> None:
    kwargs: dict[str, bool] = {"durable": True, **flags}
    with pytest.raises(PreconditionFailed, match=f"invalid property '{reason}'"):
        vhost.declare_queue("s", owner=object(), arguments=STREAM, **kwargs)
    assert "s" not in vhost.topics


def test_redeclare_with_another_type_or_arguments_fails(vhost: VirtualHost) -> None:
    declare(vhost, "s")
    with pytest.raises(PreconditionFailed, match="inequivalent arg"):
        vhost.declare_queue("s", owner=None, durable=True)
    with pytest.raises(PreconditionFailed, match="inequivalent arg"):
        declare(vhost, "s", **{"x-max-age": "1h"})
    vhost.declare_queue("classic", owner=None, durable=True)
    with pytest.raises(PreconditionFailed, match="inequivalent arg"):
        declare(vhost, "classic")


def test_streams_live_in_the_default_vhost_only(logs: LogManager, topics: Topics) -> None:
    other = VirtualHost("other", logs, topics=topics)
    with pytest.raises(PreconditionFailed, match="only in vhost '/'"):
        declare(other, "s")


def test_names_must_be_legal_topic_names(vhost: VirtualHost) -> None:
    with pytest.raises(PreconditionFailed, match="characters other than"):
        declare(vhost, "a stream")


def test_declare_attaches_to_an_existing_topic(vhost: VirtualHost, topics: Topics) -> None:
    topic = topics.create("from-kafka", 1)
    topic.partitions[0].append([Record(b"k0", b"key")])
    stream = declare(vhost, "from-kafka")
    assert stream.log is topic.partitions[0]
    assert stream.message_count == 1
    topics.create("wide", 3)
    with pytest.raises(PreconditionFailed, match="3 partitions"):
        declare(vhost, "wide")


def test_delete_deletes_the_topic_and_cancels_consumers(vhost: VirtualHost, topics: Topics) -> None:
    stream = declare(vhost, "s")
    publish(vhost, "s", b"a", b"b")
    reader = Reader()
    stream.add_consumer(reader)
    assert vhost.delete_queue("s", owner=None) == 2
    assert "s" not in topics
    assert "s" not in vhost.streams
    assert reader.was_cancelled
    assert stream.deleted


def test_a_topic_deleted_by_kafka_takes_its_stream(vhost: VirtualHost, topics: Topics) -> None:
    stream = declare(vhost, "s")
    vhost.declare_exchange("x", "fanout")
    vhost.bind_queue("s", "x", "", {}, None)
    reader = Reader()
    stream.add_consumer(reader)
    topics.delete("s")
    assert "s" not in vhost.streams
    assert reader.was_cancelled
    assert vhost.route("x", "", lambda: {}) == frozenset()


# -- publishing and reading -------------------------------------------------------------------


def test_publish_appends_one_record_per_message(vhost: VirtualHost) -> None:
    stream = declare(vhost, "s")
    vhost.declare_exchange("x", "direct")
    vhost.bind_queue("s", "x", "rk", {}, None)
    publish(vhost, "s", b"one")
    for target in vhost.route("x", "rk", lambda: {}):
        target.enqueue(Message("x", "rk", b"\x00\x00", b"two", True))
    records = stream.log.read_records(0)
    assert [(r.offset, r.key, r.value) for r in records] == [(0, b"s", b"one"), (1, b"rk", b"two")]
    assert records[1].headers == (("x-amqp-exchange", b"x"),)


def test_messages_of_one_iteration_are_one_batch(logs: LogManager, topics: Topics) -> None:
    deferred: list[object] = []
    vhost = VirtualHost("/", logs, defer=deferred.append, topics=topics)
    stream = declare(vhost, "s")
    entries = [stream.enqueue(Message("", "s", b"", b"m%d" % i, False)) for i in range(3)]
    assert stream.log.end_offset == 0
    assert len(deferred) == 1
    durable: list[BaseException | None] = []
    for entry in entries:
        assert entry is not None
        stream.when_durable(entry, durable.append)
    stream.write_pending()
    assert [e.offset for e in entries if e is not None] == [0, 1, 2]
    assert resolve_offset(stream.log, OffsetSpec("last")) == 0  # one batch: it starts at 0
    stream.log.sync()
    assert durable == [None, None, None]


def test_every_consumer_reads_everything_under_its_own_credit(vhost: VirtualHost) -> None:
    stream = declare(vhost, "s")
    publish(vhost, "s", b"a", b"b", b"c")
    first, slow = Reader("first"), Reader("slow", credit=1)
    stream.add_consumer(first, OffsetSpec("first"))
    stream.add_consumer(slow, OffsetSpec("first"))
    assert first.values() == [b"a", b"b", b"c"]
    assert slow.values() == [b"a"]
    publish(vhost, "s", b"d")
    assert first.values() == [b"a", b"b", b"c", b"d"]
    slow.credit = 10
    stream.dispatch()  # what an ack does
    assert slow.values() == [b"a", b"b", b"c", b"d"]
    assert [r.offset for r in slow.got] == [0, 1, 2, 3]


def test_start_offsets(vhost: VirtualHost) -> None:
    stream = declare(vhost, "s")
    publish(vhost, "s", b"a", b"b")  # two batches (no defer): 0 and 1
    stream.log.append([Record(b"c"), Record(b"d")])  # a batch of two: 2..3
    readers = {}
    for name, spec in [
        ("first", OffsetSpec("first")),
        ("last", OffsetSpec("last")),
        ("next", NEXT),
        ("offset", OffsetSpec("offset", 1)),
        ("past-end", OffsetSpec("offset", 99)),
        ("before-start", OffsetSpec("offset", -5)),
    ]:
        readers[name] = reader = Reader(name)
        stream.add_consumer(reader, spec)
    publish(vhost, "s", b"e")
    assert readers["first"].values() == [b"a", b"b", b"c", b"d", b"e"]
    assert readers["last"].values() == [b"c", b"d", b"e"]
    assert readers["next"].values() == [b"e"]
    assert readers["offset"].values() == [b"b", b"c", b"d", b"e"]
    assert readers["past-end"].values() == [b"e"]
    assert readers["before-start"].values() == [b"a", b"b", b"c", b"d", b"e"]


def test_start_at_a_timestamp(vhost: VirtualHost) -> None:
    stream = declare(vhost, "s")
    stream.log.append([Record(b"old", timestamp=1_000)])
    stream.log.append([Record(b"mid", timestamp=2_000)])
    stream.log.append([Record(b"new", timestamp=3_000)])
    reader, late = Reader("r"), Reader("late")
    stream.add_consumer(reader, OffsetSpec("timestamp", 1_500))
    stream.add_consumer(late, OffsetSpec("timestamp", 10_000))
    assert reader.values() == [b"mid", b"new"]
    assert late.values() == []


def test_readers_skip_what_retention_deleted(vhost: VirtualHost) -> None:
    stream = declare(vhost, "s")
    publish(vhost, "s", b"a", b"b", b"c")
    reader = Reader(credit=1)
    stream.add_consumer(reader, OffsetSpec("first"))
    assert reader.values() == [b"a"]
    stream.log.truncate_prefix(2)
    reader.credit = 5
    stream.dispatch()
    assert reader.values() == [b"a", b"b", b"c"]  # b was read ahead with a's batch read
    later = Reader("later")
    stream.add_consumer(later, OffsetSpec("offset", 0))
    assert later.values() == [b"c"]


def test_exclusive_consumers(vhost: VirtualHost) -> None:
    stream = declare(vhost, "s")
    stream.add_consumer(Reader("a"))
    with pytest.raises(ResourceLocked):
        stream.add_consumer(Reader("b", exclusive=True))


def test_default_encoding_is_plain() -> None:
    record = plain_record(Message("ex", "", b"\x00\x00", b"body", False))
    assert record.key is None
    assert record.value == b"body"
    assert record.headers == (("x-amqp-exchange", b"ex"),)


async def test_appends_from_elsewhere_wake_waiting_consumers(vhost: VirtualHost, topics: Topics) -> None:
    stream = declare(vhost, "s")
    reader = Reader()
    stream.add_consumer(reader)
    await asyncio.sleep(0)  # the watcher starts waiting
    log_ = topics.partition("s", 0)
    assert log_ is not None
    log_.append([Record(b"from kafka", b"k")])  # what Kafka's Produce does...
    topics.waiters.appended(log_)  # ...and then this
    for _ in range(10):
        if reader.got:
            break
        await asyncio.sleep(0.01)
    assert reader.values() == [b"from kafka"]
    stream.remove_consumer(reader)
    await asyncio.sleep(0)
    assert stream._watcher is None


def test_definitions_bring_streams_back(logs: LogManager, topics: Topics) -> None:
    vhost = VirtualHost("/", logs, topics=topics)
    declare(vhost, "s", **{"x-max-age": "1h"})
    vhost.declare_exchange("x", "fanout")
    vhost.bind_queue("s", "x", "", {}, None)
    publish(vhost, "s", b"kept")
    data = vhost.definitions()
    assert {"name": "s", "auto_delete": False, "arguments": {**STREAM, "x-max-age": "1h"}} in data["queues"]
    again = VirtualHost("/", logs, topics=topics)
    again.load_definitions(data)
    stream = again.streams["s"]
    assert stream.log is topics.partition("s", 0)
    assert list(again.route("x", "", lambda: {})) == [stream]
    reader = Reader()
    stream.add_consumer(reader, OffsetSpec("first"))
    assert reader.values() == [b"kept"]
