"""AMQP streams and Kafka topics are one log: a message published over AMQP into a stream
queue is a record of the topic of the same name, and a Kafka record is delivered to AMQP
consumers of the stream queue, as RabbitMQ streams deliver (basic.qos prefetch, the
``x-stream-offset`` consumer argument, manual acks that do not remove anything)."""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from typing import Any

import pika
import pytest

from tests.kafka.conftest import confluent_producer, consume_confluent, unique

pytestmark = pytest.mark.cross_protocol

WAIT = 5


@pytest.fixture(scope="module")
def broker() -> Iterator[Any]:
    from jackalope import Broker

    b = Broker().start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def channel(broker: Any) -> Iterator[Any]:
    p = pika.URLParameters(broker.amqp_url)
    p.connection_attempts = 1
    p.socket_timeout = WAIT
    p.blocked_connection_timeout = WAIT
    conn = pika.BlockingConnection(p)
    try:
        yield conn.channel()
    finally:
        if conn.is_open:
            conn.close()


def declare_stream(channel: Any, name: str) -> None:
    channel.queue_declare(name, durable=True, arguments={"x-queue-type": "stream"})


def consume_stream(channel: Any, name: str, count: int, offset: Any, prefetch: int = 10) -> list[Any]:
    """Consume ``count`` deliveries (or until WAIT seconds of silence) and ack each."""
    channel.basic_qos(prefetch_count=prefetch)
    got: list[Any] = []
    for method, props, body in channel.consume(
        name, auto_ack=False, arguments={"x-stream-offset": offset}, inactivity_timeout=WAIT
    ):
        if method is None:
            break
        got.append((method, props, body))
        channel.basic_ack(method.delivery_tag)
        if len(got) >= count:
            break
    channel.cancel()
    return got


def test_amqp_publish_is_read_by_a_kafka_consumer(broker: Any, channel: Any) -> None:
    name = unique("stream-a2k")
    declare_stream(channel, name)
    ts = int(time.time()) - 100
    channel.confirm_delivery()
    for i in range(3):
        channel.basic_publish(
            "",
            name,
            f"body-{i}".encode(),
            pika.BasicProperties(headers={"h": f"v{i}", "n": "x"}, timestamp=ts + i),
        )
    got = consume_confluent(broker.kafka_bootstrap, name, 3)
    for i, m in enumerate(got):
        assert m.offset() == i
        assert m.key() == name.encode(), "the routing key is the record key"
        assert m.value() == f"body-{i}".encode()
        headers = dict(m.headers() or [])
        assert headers["h"] == f"v{i}".encode() and headers["n"] == b"x"
        assert m.timestamp()[1] == (ts + i) * 1000, "the AMQP timestamp is the record's CreateTime"


def test_amqp_exchange_routes_into_a_stream_read_over_kafka(broker: Any, channel: Any) -> None:
    name = unique("stream-routed")
    exchange = unique("x-routed")
    declare_stream(channel, name)
    channel.exchange_declare(exchange, "direct")
    channel.queue_bind(name, exchange, routing_key="orders.eu")
    channel.confirm_delivery()
    before = int(time.time() * 1000)
    channel.basic_publish(exchange, "orders.eu", b"routed")
    channel.basic_publish(exchange, "orders.us", b"not routed")
    after = int(time.time() * 1000)
    (m,) = consume_confluent(broker.kafka_bootstrap, name, 1)
    assert (m.key(), m.value()) == (b"orders.eu", b"routed")
    assert before - 1000 <= m.timestamp()[1] <= after + 1000


def _produce_records(broker: Any, name: str, values: list[bytes], key: bytes = b"k") -> None:
    p = confluent_producer(broker.kafka_bootstrap)
    for v in values:
        p.produce(name, key=key, value=v, headers=[("origin", b"kafka")], partition=0)
    assert p.flush(10) == 0


def test_kafka_record_is_consumed_over_amqp_from_first(broker: Any, channel: Any) -> None:
    name = unique("stream-k2a")
    declare_stream(channel, name)
    values = [f"r{i}".encode() for i in range(20)]
    _produce_records(broker, name, values)

    got = consume_stream(channel, name, 20, "first", prefetch=5)
    assert [body for _, _, body in got] == values
    assert [props.headers["x-stream-offset"] for _, props, _ in got] == list(range(20))
    assert all(
        props.headers["origin"] == b"kafka" or props.headers["origin"] == "kafka" for _, props, _ in got
    )

    # acks on a stream remove nothing: a second consumer reads it all again
    again = consume_stream(channel, name, 20, "first")
    assert [body for _, _, body in again] == values


def test_stream_offset_integer_next_and_last(broker: Any, channel: Any) -> None:
    name = unique("stream-offsets")
    declare_stream(channel, name)
    values = [f"r{i}".encode() for i in range(10)]
    _produce_records(broker, name, values)

    from_7 = consume_stream(channel, name, 3, 7)
    assert [body for _, _, body in from_7] == values[7:]

    last = consume_stream(channel, name, 10, "last")
    assert last and last[-1][2] == b"r9"  # from the start of the last chunk: at least the last record
    assert [b for _, _, b in last] == values[len(values) - len(last) :]

    # "next": only what is published after the consumer attached
    channel.basic_qos(prefetch_count=10)
    received: list[bytes] = []
    tag = channel.basic_consume(
        name,
        lambda ch, method, props, body: (received.append(body), ch.basic_ack(method.delivery_tag)),
        arguments={"x-stream-offset": "next"},
    )
    channel.connection.process_data_events(time_limit=0.5)
    _produce_records(broker, name, [b"new-1", b"new-2"])
    deadline = time.monotonic() + WAIT
    while len(received) < 2 and time.monotonic() < deadline:
        channel.connection.process_data_events(time_limit=0.2)
    channel.basic_cancel(tag)
    assert received == [b"new-1", b"new-2"]


def test_stream_offset_timestamp(broker: Any, channel: Any) -> None:
    name = unique("stream-ts")
    declare_stream(channel, name)
    _produce_records(broker, name, [b"old-1", b"old-2"])
    time.sleep(1.5)
    since = datetime.datetime.now(tz=datetime.UTC).replace(microsecond=0)
    time.sleep(1.0)
    _produce_records(broker, name, [b"new-1", b"new-2"])

    got = [body for _, _, body in consume_stream(channel, name, 4, since)]
    assert got[-2:] == [b"new-1", b"new-2"]
    assert got in (
        [b"new-1", b"new-2"],
        [b"old-2", b"new-1", b"new-2"],
        [b"old-1", b"old-2", b"new-1", b"new-2"],
    )
