"""Kafka topics feed AMQP work queues: records confluent-kafka produces to a topic reach the
queues bound to ``amq.kafka`` (key = topic name), where pika consumes them with acks,
requeue, prefetch, TTL and dead-lettering, while Kafka consumers still read every record."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest

from jackalope import Broker
from tests.kafka.conftest import consume_confluent, create_topic, produce_confluent, unique, wait_until

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    with Broker(tmp_path_factory.mktemp("routes") / "data", kafka_port=0) as b:
        yield b


@pytest.fixture
def channel(broker: Broker) -> Iterator[Any]:
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    yield connection.channel()
    connection.close()


def bound_queue(channel: Any, topic: str, **arguments: Any) -> str:
    queue = unique("q")
    channel.queue_declare(queue, durable=True, arguments=arguments or None)
    channel.queue_bind(queue, "amq.kafka", routing_key=topic)
    return queue


def take(channel: Any, queue: str, count: int) -> list[tuple[Any, Any, bytes]]:
    """``count`` deliveries (method, properties, body) of a manual-ack consumer."""
    got: list[tuple[Any, Any, bytes]] = []
    for method, props, body in channel.consume(queue, inactivity_timeout=15):
        assert method is not None, f"only {len(got)} of {count} deliveries"
        got.append((method, props, body))
        if len(got) == count:
            break
    return got


def test_records_reach_a_work_queue_and_are_acked(broker: Broker, channel: Any) -> None:
    topic = unique("t")
    create_topic(broker.kafka_bootstrap, topic)
    produce_confluent(broker.kafka_bootstrap, topic, [(b"before", b"not routed")])
    queue = bound_queue(channel, topic)
    delivered = produce_confluent(
        broker.kafka_bootstrap,
        topic,
        [(b"order-1", b"one"), (None, b"two")],
        **{"linger.ms": 0},
    )
    timestamp = delivered[0].timestamp()[1]
    got = take(channel, queue, 2)
    (m1, p1, b1), (m2, p2, b2) = got
    assert (b1, b2) == (b"one", b"two")  # the record produced before the binding is not there
    assert m1.exchange == "amq.kafka" and m1.routing_key == "order-1" and m2.routing_key == ""
    assert p1.headers["x-kafka-topic"] == topic and p1.headers["x-kafka-partition"] == 0
    assert p1.headers["x-stream-offset"] == 1 and p2.headers["x-stream-offset"] == 2
    assert p1.timestamp == timestamp // 1000
    channel.basic_ack(m1.delivery_tag)
    channel.basic_nack(m2.delivery_tag, requeue=True)
    channel.cancel()
    ((again, _, body),) = take(channel, queue, 1)
    assert body == b"two" and again.redelivered
    channel.basic_ack(again.delivery_tag)
    channel.cancel()
    assert channel.queue_declare(queue, passive=True).method.message_count == 0
    # Kafka consumers still read every record by offset.
    records = consume_confluent(broker.kafka_bootstrap, topic, 3)
    assert [r.value() for r in records] == [b"not routed", b"one", b"two"]


def test_headers_arrive_as_the_mapping_says(broker: Broker, channel: Any) -> None:
    topic = unique("t")
    create_topic(broker.kafka_bootstrap, topic)
    queue = bound_queue(channel, topic)
    from tests.kafka.conftest import confluent_producer

    producer = confluent_producer(broker.kafka_bootstrap)
    producer.produce(topic, value=b"v", key=b"k", headers=[("trace", b"abc")])
    assert producer.flush(20) == 0
    ((method, props, _),) = take(channel, queue, 1)
    assert props.headers["trace"] == "abc"  # a long string (pika decodes it as text)
    assert method.routing_key == "k" and props.headers["x-kafka-topic"] == topic
    channel.basic_ack(method.delivery_tag)
    channel.cancel()


def test_prefetch_ttl_and_dead_letters(broker: Broker, channel: Any) -> None:
    topic = unique("t")
    create_topic(broker.kafka_bootstrap, topic)
    dead = unique("dead")
    channel.queue_declare(dead, durable=True)
    ttl_queue = bound_queue(
        channel,
        topic,
        **{"x-message-ttl": 0, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead},
    )
    work = bound_queue(channel, topic)
    produce_confluent(broker.kafka_bootstrap, topic, [(b"k", f"r{i}".encode()) for i in range(5)])
    # TTL 0 and no consumer: every copy is dead-lettered, with x-death naming the queue.
    got = take(channel, dead, 5)
    assert [b for _, _, b in got] == [f"r{i}".encode() for i in range(5)]
    assert got[0][1].headers["x-death"][0]["queue"] == ttl_queue
    assert got[0][1].headers["x-death"][0]["reason"] == "expired"
    channel.cancel()
    # Prefetch 2: two deliveries outstanding, the rest wait for acks.
    channel.basic_qos(prefetch_count=2)
    seen: list[Any] = []
    channel.basic_consume(work, lambda ch, m, p, b: seen.append(m))
    while len(seen) < 2:
        channel.connection.process_data_events(time_limit=1)
    channel.connection.process_data_events(time_limit=0.3)
    assert len(seen) == 2
    for _ in range(4):
        channel.basic_ack(seen[-1].delivery_tag, multiple=True)
        want = min(len(seen) + 2, 5)
        while len(seen) < want:
            channel.connection.process_data_events(time_limit=1)
        if len(seen) == 5:
            break
    assert len(seen) == 5


def test_the_binding_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Broker(data, kafka_port=0) as b:
        topic = unique("t")
        create_topic(b.kafka_bootstrap, topic)
        connection = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        queue = bound_queue(connection.channel(), topic)
        connection.close()
    with Broker(data, kafka_port=0) as b:
        produce_confluent(b.kafka_bootstrap, topic, [(b"k", b"after restart")])
        connection = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ((_, _, body),) = take(connection.channel(), queue, 1)
        assert body == b"after restart"
        connection.close()


def test_the_example(broker: Broker) -> None:
    import subprocess
    import sys

    example = Path(__file__).resolve().parents[2] / "examples" / "kafka_to_amqp_worker.py"
    result = subprocess.run(
        [sys.executable, str(example), broker.kafka_bootstrap, broker.amqp_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # A requeued message goes back to its place at the head, as in RabbitMQ.
    assert result.stdout.splitlines() == [
        "worker    did 'resize image 0' key job-0 offset 0",
        "worker    failed 'resize image 1' (offset 1), requeued",
        "worker    did 'resize image 1' key job-1 offset 1 (redelivered)",
        "worker    did 'resize image 2' key job-2 offset 2",
    ]


def test_stream_publishes_take_the_same_append_path(broker: Broker, channel: Any) -> None:
    """An AMQP publish to a stream queue appends to the topic of that name on the one append
    path: the queues bound to ``amq.kafka`` get it too, and Kafka consumers read it."""
    stream = unique("s")
    channel.queue_declare(stream, durable=True, arguments={"x-queue-type": "stream"})
    queue = bound_queue(channel, stream)
    channel.confirm_delivery()
    channel.basic_publish("", stream, b"published over AMQP", pika.BasicProperties(message_id="m-1"))
    ((method, props, body),) = take(channel, queue, 1)
    assert body == b"published over AMQP" and props.message_id == "m-1"
    assert method.exchange == "amq.kafka" and props.headers["x-kafka-topic"] == stream
    channel.basic_ack(method.delivery_tag)
    channel.cancel()
    (record,) = consume_confluent(broker.kafka_bootstrap, stream, 1)
    assert record.value() == b"published over AMQP"


def test_streams_bound_to_each_others_topics_do_not_pass_records_round(broker: Broker, channel: Any) -> None:
    """What reaches a stream through ``amq.kafka`` is appended to its topic but not routed
    through ``amq.kafka`` again: two streams bound to each other's topics hold one copy each."""
    a, b = unique("sa"), unique("sb")
    for name in (a, b):
        channel.queue_declare(name, durable=True, arguments={"x-queue-type": "stream"})
    channel.queue_bind(a, "amq.kafka", routing_key=b)
    channel.queue_bind(b, "amq.kafka", routing_key=a)
    channel.confirm_delivery()
    channel.basic_publish("", a, b"ping")
    topics = broker.server.core.topics
    wait_until(lambda: topics.partition(b, 0).end_offset == 1, 15, "the copy in the other stream")
    # a loop would append again within milliseconds; a second passes without one
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        assert (topics.partition(a, 0).end_offset, topics.partition(b, 0).end_offset) == (1, 1)
        time.sleep(0.05)
