"""The lecture note's messaging patterns in the Kafka model, with confluent-kafka against Jackalope.

A Kafka topic is an append-only log split into partitions. Producers append; consumers pull and
keep their own position (offset) in each partition, so reading removes nothing. Run a broker
(``jackalope serve``) and then::

    python examples/kafka_patterns.py [127.0.0.1:9092] [amqp://guest:guest@127.0.0.1:5672/]

Every pattern prints what each consumer received. The two patterns with consumer groups wait
for the broker's initial rebalance delay (3 s by default) before the group's first assignment.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Sequence

import pika
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

BOOTSTRAP = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9092"
AMQP_URL = sys.argv[2] if len(sys.argv) > 2 else "amqp://guest:guest@127.0.0.1:5672/"

admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
created: list[str] = []  # topics to delete when the example ends


def name(kind: str) -> str:
    return f"example.{kind}.{uuid.uuid4().hex[:8]}"


def new_topic(kind: str, partitions: int = 1) -> str:
    topic = name(kind)
    admin.create_topics([NewTopic(topic, num_partitions=partitions)])[topic].result(timeout=10)
    created.append(topic)
    return topic


def produce(topic: str, records: Sequence[tuple[str | None, str]], timestamps: Sequence[int] = ()) -> None:
    """Append ``(key, value)`` records in order; flush() waits until the broker has them all.
    Records with a key go to the partition the key hashes to (crc32(key) % partitions)."""
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all"})
    for i, (key, value) in enumerate(records):
        producer.produce(topic, key=key, value=value, timestamp=timestamps[i] if timestamps else 0)
    assert producer.flush(10) == 0, "records not delivered"


def consumer(group: str) -> Consumer:
    """A consumer that starts at the beginning of the log when its group has no saved offset."""
    return Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group, "auto.offset.reset": "earliest"})


def pull(consumers: dict[str, Consumer], count: int, timeout: float = 15) -> dict[str, list[Message]]:
    """Poll every consumer in turn until ``count`` records have arrived in all."""
    got: dict[str, list[Message]] = {who: [] for who in consumers}
    deadline = time.monotonic() + timeout
    while sum(map(len, got.values())) < count and time.monotonic() < deadline:
        for who, c in consumers.items():
            msg = c.poll(0.1)
            if msg is not None and msg.error() is None:
                got[who].append(msg)
    return got


def values(messages: list[Message]) -> list[str]:
    return [(m.value() or b"").decode() for m in messages]


def publish_subscribe() -> dict[str, list[str]]:
    """Broadcast: every consumer *group* gets every record. Each group keeps its own offsets, so
    adding a subscriber is adding a group; the producer knows nothing about either."""
    topic = new_topic("orders")
    produce(topic, [(None, "order 1 placed"), (None, "order 2 placed"), (None, "order 3 placed")])
    groups = {"billing": consumer(name("billing")), "shipping": consumer(name("shipping"))}
    for c in groups.values():
        c.subscribe([topic])
    got = pull(groups, 6)
    for c in groups.values():
        c.close()
    return {who: values(messages) for who, messages in got.items()}


def competing_consumers() -> dict[str, list[str]]:
    """Anycast: consumers in *one* group share the partitions of a topic, so each record goes to
    exactly one of them. (A partition has one reader per group: two partitions, two workers.)"""
    topic = new_topic("jobs", partitions=2)
    group = name("workers")
    workers = {"worker-1": consumer(group), "worker-2": consumer(group)}
    for c in workers.values():
        c.subscribe([topic])
    deadline = time.monotonic() + 15  # both join, then the group hands out the partitions
    while not all(c.assignment() for c in workers.values()) and time.monotonic() < deadline:
        for c in workers.values():
            c.poll(0.1)
    # alice and carol hash to partition 1, bob and dave to partition 0
    produce(topic, [(who, f"resize image of {who}") for who in ("alice", "bob", "carol", "dave")])
    got = pull(workers, 4)
    result = {}
    for who, c in workers.items():
        partitions = ",".join(str(tp.partition) for tp in c.assignment())
        result[f"{who} p{partitions}"] = sorted(values(got[who]))
        c.close()
    return result


def replay() -> dict[str, list[str]]:
    """Pull, then read again: the log keeps records after they are read (a queue deletes them on
    ack), and the consumer chooses where to read from: an offset, or a point in time."""
    topic = new_topic("clicks")
    start_ms = int(time.time() * 1000) - 60_000
    produce(topic, [(None, f"click {i}") for i in range(1, 4)], [start_ms + i * 1000 for i in range(3)])
    c = consumer(name("replayer"))
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])  # no group rebalance: we pick the partition
    first = values(pull({"c": c}, 3)["c"])
    c.seek(TopicPartition(topic, 0, 0))  # back to offset 0
    again = values(pull({"c": c}, 3)["c"])
    [at] = c.offsets_for_times([TopicPartition(topic, 0, start_ms + 1000)], timeout=10)
    c.seek(at)  # the first record at or after that time: offset 1
    since = values(pull({"c": c}, 2)["c"])
    c.close()
    return {"first read": first, "from offset 0": again, "from time +1s": since}


def keyed_ordering() -> dict[str, list[str]]:
    """Order is kept within a partition, and all records of one key go to one partition: each
    user's events stay in order, while different users' events spread over partitions."""
    topic = new_topic("user-events", partitions=2)
    events = [(user, f"{user}:{step}") for step in (1, 2, 3) for user in ("alice", "bob", "carol")]
    produce(topic, events)
    c = consumer(name("reader"))
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in (0, 1)])
    got = pull({"c": c}, len(events))["c"]
    c.close()
    return {f"partition {p}": values([m for m in got if m.partition() == p]) for p in (0, 1)}


def one_log_two_protocols() -> dict[str, list[str]]:
    """An AMQP stream queue is the Kafka topic of the same name: one log, read and written by
    both protocols. AMQP stream consumers, like Kafka consumers, read without deleting."""
    stream = name("stream")
    with pika.BlockingConnection(pika.URLParameters(AMQP_URL)) as connection:
        ch = connection.channel()
        ch.confirm_delivery()
        ch.queue_declare(stream, durable=True, arguments={"x-queue-type": "stream"})
        for i in (1, 2):
            ch.basic_publish("", stream, f"from amqp {i}".encode())

        c = consumer(name("kafka-reader"))  # a Kafka consumer of the topic `stream`
        c.assign([TopicPartition(stream, 0, OFFSET_BEGINNING)])
        kafka_got = values(pull({"c": c}, 2)["c"])
        c.close()

        produce(stream, [(None, "from kafka 1")])

        ch.basic_qos(prefetch_count=10)  # stream consumers need a prefetch and manual acks
        amqp_got = []
        for method, _, body in ch.consume(
            stream, arguments={"x-stream-offset": "first"}, inactivity_timeout=5
        ):
            if method is None:
                break
            amqp_got.append(body.decode())
            ch.basic_ack(method.delivery_tag)  # frees prefetch credit; the log keeps the record
            if len(amqp_got) == 3:
                break
        ch.cancel()
        ch.queue_delete(stream)  # deletes the topic too
    return {"kafka-consumer": kafka_got, "amqp-consumer": amqp_got}


PATTERNS = [publish_subscribe, competing_consumers, replay, keyed_ordering, one_log_two_protocols]


def main() -> dict[str, dict[str, list[str]]]:
    try:
        return {pattern.__name__: pattern() for pattern in PATTERNS}
    finally:
        if created:
            for future in admin.delete_topics(created).values():
                future.result(timeout=10)


if __name__ == "__main__":
    for pattern, received in main().items():
        print(f"{pattern}:")
        for who, messages in received.items():
            print(f"  {who:<15} {messages}")
