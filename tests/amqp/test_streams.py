"""Stream queues over AMQP (pika, aio-pika), and the same streams as Kafka topics (kafka-python,
confluent-kafka): RabbitMQ's declaration and consumption rules, every ``x-stream-offset``
form, restarts, exchange routing, and the AMQP <-> Kafka mapping of docs/protocol-mapping.md.

Each test runs its own embedded Jackalope with a Kafka listener, so they are skipped against an
external broker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aio_pika
import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.spec import Basic, BasicProperties

from jackalope import Broker
from tests.amqp.support import EXTERNAL_URL, EXTERNAL_URL_ENV, WAIT, bounded, connect

pytestmark = pytest.mark.skipif(
    EXTERNAL_URL is not None, reason=f"needs Jackalope's Kafka listener ({EXTERNAL_URL_ENV} is set)"
)

STREAM = {"x-queue-type": "stream"}
Delivery = tuple[Basic.Deliver, BasicProperties, bytes]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "data", kafka_port=0).start()
    try:
        yield b
    finally:
        bounded(b.stop, "stopping the embedded broker", 2 * WAIT)


@pytest.fixture
def open_connection(broker: Broker) -> Iterator[Callable[[], BlockingConnection]]:
    opened: list[BlockingConnection] = []

    def factory() -> BlockingConnection:
        conn = connect(broker.amqp_url)
        opened.append(conn)
        return conn

    yield factory
    for conn in opened:
        if conn.is_open:
            conn.close()


@pytest.fixture
def ch(open_connection: Callable[[], BlockingConnection]) -> BlockingChannel:
    return open_connection().channel()


def declare(ch: BlockingChannel, name: str, **arguments: Any) -> None:
    ch.queue_declare(name, durable=True, arguments={**STREAM, **arguments})


def publish(ch: BlockingChannel, name: str, *bodies: bytes, exchange: str = "", **props: Any) -> None:
    for body in bodies:
        ch.basic_publish(exchange, name, body, BasicProperties(**props))


def consume(
    ch: BlockingChannel, name: str, n: int, offset: Any = "first", prefetch: int = 10
) -> list[Delivery]:
    """Exactly ``n`` deliveries from ``name`` (acked one by one) starting at ``offset``."""
    ch.basic_qos(prefetch_count=prefetch)
    got: list[Delivery] = []
    arguments = {} if offset is None else {"x-stream-offset": offset}
    deadline = time.monotonic() + WAIT
    try:
        for method, props, body in ch.consume(name, arguments=arguments, inactivity_timeout=0.1):
            if method is not None:
                got.append((method, props, body))
                ch.basic_ack(method.delivery_tag)
                if len(got) == n:
                    break
            assert time.monotonic() < deadline, f"got {len(got)} of {n} deliveries from {name}"
    finally:
        ch.cancel()
    return got


def bodies(deliveries: list[Delivery]) -> list[bytes]:
    return [body for _, _, body in deliveries]


def offsets(deliveries: list[Delivery]) -> list[int]:
    return [props.headers["x-stream-offset"] for _, props, _ in deliveries]


# -- declaration rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        ({"durable": False}, "invalid property 'non-durable'"),
        ({"durable": True, "exclusive": True}, "invalid property 'exclusive-owner'"),
        ({"durable": True, "auto_delete": True}, "invalid property 'auto-delete'"),
        ({"durable": True, "arguments": {**STREAM, "x-max-age": "soon"}}, "invalid arg 'x-max-age'"),
        ({"durable": True, "arguments": {**STREAM, "x-max-length": 5}}, "invalid arg 'x-max-length'"),
    ],
)
def test_declare_rules(ch: BlockingChannel, flags: dict[str, Any], reason: str) -> None:
    kwargs = {"arguments": STREAM, **flags}
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        ch.queue_declare("s", **kwargs)
    assert err.value.reply_code == 406
    assert reason in err.value.reply_text


def test_redeclare_with_another_type_fails(open_connection: Callable[[], BlockingConnection]) -> None:
    conn = open_connection()
    ch = conn.channel()
    declare(ch, "s", **{"x-max-age": "7D"})
    declare(ch, "s", **{"x-max-age": "7D"})  # the same: fine
    assert ch.queue_declare("s", passive=True).method.queue == "s"
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        ch.queue_declare("s", durable=True)
    assert err.value.reply_code == 406 and "inequivalent arg" in err.value.reply_text
    ch = conn.channel()
    ch.queue_declare("classic", durable=True)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        declare(ch, "classic")
    assert err.value.reply_code == 406


def test_declare_sets_the_topic_configs(broker: Broker, ch: BlockingChannel) -> None:
    declare(
        ch,
        "configured",
        **{"x-max-age": "12h", "x-max-length-bytes": 10_000_000, "x-stream-max-segment-size-bytes": 500_000},
    )
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient({"bootstrap.servers": broker.kafka_bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, "configured")
    configs = admin.describe_configs([resource])[resource].result(timeout=WAIT)
    assert configs["retention.ms"].value == str(12 * 3600 * 1000)
    assert configs["retention.bytes"].value == "10000000"
    assert configs["segment.bytes"].value == "500000"
    metadata = admin.list_topics("configured", timeout=WAIT)
    assert len(metadata.topics["configured"].partitions) == 1


@pytest.mark.parametrize(
    ("operation", "text"),
    [
        (lambda ch: ch.queue_purge("s"), "queue.purge not supported by stream queues"),
        (lambda ch: ch.basic_get("s"), "basic.get not supported by stream queues"),
        (
            lambda ch: (
                ch.basic_qos(prefetch_count=5),
                ch.basic_consume("s", lambda *a: None, auto_ack=True),
            ),
            "automatic acknowledgement not supported",
        ),
        (
            lambda ch: (
                ch.basic_qos(prefetch_count=5),
                ch.basic_qos(prefetch_count=5, global_qos=True),
                ch.basic_consume("s", lambda *a: None),
            ),
            "does not support global qos",
        ),
    ],
)
def test_what_streams_do_not_do_closes_the_connection(
    ch: BlockingChannel, operation: Callable[[BlockingChannel], object], text: str
) -> None:
    declare(ch, "s")
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as err:
        operation(ch)
    assert err.value.reply_code == 540
    assert text in err.value.reply_text


def test_consuming_needs_a_prefetch(ch: BlockingChannel) -> None:
    declare(ch, "s")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        ch.basic_consume("s", lambda *a: None)
    assert err.value.reply_code == 406
    assert "consumer prefetch count is not set" in err.value.reply_text


def test_bad_stream_offset_is_refused(ch: BlockingChannel) -> None:
    declare(ch, "s")
    ch.basic_qos(prefetch_count=1)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        ch.basic_consume("s", lambda *a: None, arguments={"x-stream-offset": "earliest"})
    assert err.value.reply_code == 406


def test_delete_deletes_the_topic(broker: Broker, ch: BlockingChannel) -> None:
    declare(ch, "gone")
    publish(ch, "gone", b"a", b"b")
    assert ch.queue_delete("gone").method.message_count == 2
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=broker.kafka_bootstrap)
    try:
        assert "gone" not in admin.list_topics()
    finally:
        admin.close()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        ch.queue_declare("gone", passive=True)
    assert err.value.reply_code == 404


# -- publishing and consuming ------------------------------------------------------------------


def test_publish_with_confirms_and_consume_from_first(ch: BlockingChannel) -> None:
    declare(ch, "s")
    ch.confirm_delivery()
    publish(ch, "s", *(b"m%d" % i for i in range(50)))
    got = consume(ch, "s", 50, "first", prefetch=7)
    assert bodies(got) == [b"m%d" % i for i in range(50)]
    assert offsets(got) == list(range(50))
    assert all(not method.redelivered and method.routing_key == "s" for method, _, _ in got)
    assert ch.queue_declare("s", passive=True).method.message_count == 50
    # acks removed nothing
    assert bodies(consume(ch, "s", 50, "first")) == [b"m%d" % i for i in range(50)]


def test_stream_offset_forms(open_connection: Callable[[], BlockingConnection]) -> None:
    conn = open_connection()
    ch = conn.channel()
    declare(ch, "s")
    ch.confirm_delivery()
    publish(ch, "s", b"a", b"b", b"c")  # one batch each: a confirmed publish waits for its batch
    before = datetime.now(tz=UTC)
    time.sleep(1.1)
    publish(ch, "s", b"d", b"e")

    assert bodies(consume(ch, "s", 5, "first")) == [b"a", b"b", b"c", b"d", b"e"]
    assert bodies(consume(ch, "s", 3, 2)) == [b"c", b"d", b"e"]
    assert bodies(consume(ch, "s", 1, "last")) == [b"e"]
    assert bodies(consume(ch, "s", 5, "1h")) == [b"a", b"b", b"c", b"d", b"e"]
    since = before.replace(microsecond=0) + timedelta(seconds=1)  # AMQP timestamps are whole seconds
    assert bodies(consume(ch, "s", 2, since)) == [b"d", b"e"]

    # "next" (also the default): only what comes after the subscription
    other = open_connection().channel()
    received: list[bytes] = []
    for offset in ("next", None):
        ch.basic_qos(prefetch_count=10)
        received.clear()
        arguments = {} if offset is None else {"x-stream-offset": offset}
        tag = ch.basic_consume(
            "s",
            lambda c, m, p, body: (received.append(body), c.basic_ack(m.delivery_tag)),
            arguments=arguments,
        )
        conn.process_data_events(time_limit=0.2)
        publish(other, "s", b"new")
        deadline = time.monotonic() + WAIT
        while not received and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.05)
        conn.process_data_events(time_limit=0.2)
        ch.basic_cancel(tag)
        assert received == [b"new"]


def test_two_consumers_each_get_everything(open_connection: Callable[[], BlockingConnection]) -> None:
    conn = open_connection()
    ch = conn.channel()
    declare(ch, "s")
    ch.basic_qos(prefetch_count=3)
    got: dict[str, list[bytes]] = {"a": [], "b": []}

    def on_message(name: str) -> Callable[..., None]:
        def handle(c: BlockingChannel, m: Basic.Deliver, p: BasicProperties, body: bytes) -> None:
            got[name].append(body)
            c.basic_ack(m.delivery_tag)

        return handle

    ch.basic_consume("s", on_message("a"), arguments={"x-stream-offset": "first"})
    ch2 = conn.channel()
    ch2.basic_qos(prefetch_count=1)
    ch2.basic_consume("s", on_message("b"), arguments={"x-stream-offset": "first"})
    publisher = open_connection().channel()
    publish(publisher, "s", *(b"%d" % i for i in range(30)))
    deadline = time.monotonic() + WAIT
    while (len(got["a"]) < 30 or len(got["b"]) < 30) and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.05)
    expected = [b"%d" % i for i in range(30)]
    assert got == {"a": expected, "b": expected}


def test_nack_and_reject_only_return_credit(ch: BlockingChannel) -> None:
    declare(ch, "s")
    publish(ch, "s", b"a", b"b", b"c")
    ch.basic_qos(prefetch_count=1)
    seen: list[bytes] = []
    for method, _, body in ch.consume("s", arguments={"x-stream-offset": "first"}, inactivity_timeout=WAIT):
        assert method is not None
        seen.append(body)
        if body == b"a":
            ch.basic_nack(method.delivery_tag, requeue=True)
        elif body == b"b":
            ch.basic_reject(method.delivery_tag, requeue=False)
        else:
            ch.basic_ack(method.delivery_tag)
            break
    ch.cancel()
    assert seen == [b"a", b"b", b"c"]  # nothing requeued, nothing redelivered


def test_exchange_routing_into_a_stream(ch: BlockingChannel) -> None:
    declare(ch, "s")
    ch.exchange_declare("orders", "topic", durable=True)
    ch.queue_bind("s", "orders", "eu.#")
    ch.confirm_delivery()
    publish(ch, "eu.fr", b"routed", exchange="orders")
    publish(ch, "us.ny", b"not routed", exchange="orders")
    ((method, _, body),) = consume(ch, "s", 1)
    assert (method.exchange, method.routing_key, body) == ("orders", "eu.fr", b"routed")


def test_properties_survive_the_stream(ch: BlockingChannel) -> None:
    declare(ch, "s")
    headers = {
        "text": "héllo",
        "int": 42,
        "neg": -7,
        "flag": True,
        "decimal": Decimal("3.14"),
        "when": datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
        "nested": {"a": [1, "two"]},
        "list": [1, 2],
        "none": None,
        "raw": b"\xff\x00",
    }
    props = BasicProperties(
        content_type="application/json",
        content_encoding="utf-8",
        headers=headers,
        delivery_mode=2,
        priority=3,
        correlation_id="corr",
        reply_to="replies",
        expiration="60000",
        message_id="id-1",
        timestamp=1_700_000_000,
        type="order.created",
        user_id="guest",
        app_id="tests",
    )
    ch.basic_publish("", "s", b"{}", props)
    ((_, got, body),) = consume(ch, "s", 1)
    assert body == b"{}"
    for name in (
        "content_type",
        "content_encoding",
        "delivery_mode",
        "priority",
        "correlation_id",
        "reply_to",
        "expiration",
        "message_id",
        "timestamp",
        "type",
        "user_id",
        "app_id",
    ):
        assert getattr(got, name) == getattr(props, name), name
    assert got.headers.pop("x-stream-offset") == 0
    assert got.headers == headers  # every value with its AMQP type


# -- restarts --------------------------------------------------------------------------------------


def test_streams_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "restart"
    b = Broker(data, kafka_port=0).start()
    try:
        conn = connect(b.amqp_url)
        ch = conn.channel()
        declare(ch, "kept", **{"x-max-age": "1D"})
        ch.exchange_declare("into", "fanout", durable=True)
        ch.queue_bind("kept", "into")
        ch.confirm_delivery()
        publish(ch, "kept", b"one", b"two")
        conn.close()
    finally:
        b.stop()
    b = Broker(data, kafka_port=0).start()
    try:
        conn = connect(b.amqp_url)
        ch = conn.channel()
        declare(ch, "kept", **{"x-max-age": "1D"})  # still equivalent
        ch.confirm_delivery()
        publish(ch, "", b"three", exchange="into")  # the binding is back
        assert bodies(consume(ch, "kept", 3)) == [b"one", b"two", b"three"]
        conn.close()
        assert _kafka_values(b, "kept", 3) == [b"one", b"two", b"three"]
    finally:
        b.stop()


# -- AMQP <-> Kafka -------------------------------------------------------------------------------


def _kafka_values(broker: Broker, topic: str, n: int) -> list[bytes]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=broker.kafka_bootstrap, consumer_timeout_ms=int(WAIT * 1000))
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        return [r.value for _, r in zip(range(n), consumer, strict=False)]
    finally:
        consumer.close()


def test_amqp_to_kafka_python(broker: Broker, ch: BlockingChannel) -> None:
    declare(ch, "s")
    ch.confirm_delivery()
    publish(
        ch,
        "s",
        b"payload",
        headers={"tenant": "acme", "attempt": 2, "ok": False},
        timestamp=1_700_000_123,
        content_type="text/plain",
        message_id="m-1",
    )
    ch.basic_publish("", "s", b"", BasicProperties())
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=broker.kafka_bootstrap, consumer_timeout_ms=int(WAIT * 1000))
    try:
        consumer.assign([TopicPartition("s", 0)])
        consumer.seek_to_beginning()
        first, second = (r for _, r in zip(range(2), consumer, strict=False))
    finally:
        consumer.close()
    assert (first.offset, first.key, first.value) == (0, b"s", b"payload")
    assert first.timestamp == 1_700_000_123_000
    headers = dict(first.headers)
    assert headers["tenant"] == b"acme"
    assert headers["attempt"] == b"2"
    assert headers["ok"] == b"false"
    assert headers["x-amqp-exchange"] == b""
    assert headers["x-amqp-content-type"] == b"text/plain"
    assert headers["x-amqp-message-id"] == b"m-1"
    assert (second.key, second.value) == (b"s", b"")
    assert abs(second.timestamp - time.time() * 1000) < 60_000  # no timestamp: the publish time


def test_amqp_to_confluent_kafka(broker: Broker, ch: BlockingChannel) -> None:
    declare(ch, "s")
    ch.exchange_declare("x", "fanout")
    ch.queue_bind("s", "x")
    ch.confirm_delivery()
    publish(ch, "", *(b"v%d" % i for i in range(5)), exchange="x", headers={"i": "same"})
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": broker.kafka_bootstrap, "group.id": "unused"})
    try:
        consumer.assign([TopicPartition("s", 0, OFFSET_BEGINNING)])
        got: list[Any] = []
        deadline = time.monotonic() + WAIT
        while len(got) < 5 and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None:
                assert msg.error() is None, msg.error()
                got.append(msg)
    finally:
        consumer.close()
    assert [m.value() for m in got] == [b"v%d" % i for i in range(5)]
    assert all(m.key() is None for m in got)  # an empty routing key is a null key
    assert all(dict(m.headers())["x-amqp-exchange"] == b"x" for m in got)
    assert all(dict(m.headers())["i"] == b"same" for m in got)


def test_kafka_producers_to_amqp_consumer(broker: Broker, ch: BlockingChannel) -> None:
    declare(ch, "s")
    from confluent_kafka import Producer

    from kafka import KafkaProducer

    producer = Producer({"bootstrap.servers": broker.kafka_bootstrap, "compression.type": "gzip"})
    producer.produce(
        "s", key=b"user-1", value=b"hello", headers=[("h", b"v"), ("n", None)], timestamp=1_234_000
    )
    producer.produce("s", key=None, value=None)
    producer.produce("s", key=b"\xff\xfe", value=b"binary key")
    assert producer.flush(WAIT) == 0
    kp = KafkaProducer(bootstrap_servers=broker.kafka_bootstrap, compression_type="gzip")
    kp.send("s", key=b"k", value=b"from kafka-python", headers=[("x", b"1")]).get(timeout=WAIT)
    kp.close()

    got = consume(ch, "s", 4)
    assert offsets(got) == [0, 1, 2, 3]
    (m0, p0, b0), (m1, p1, b1), (m2, p2, b2), (m3, p3, b3) = got
    assert (m0.exchange, m0.routing_key, b0) == ("", "user-1", b"hello")
    assert p0.headers == {"h": "v", "n": None, "x-stream-offset": 0}  # longstr values; pika decodes UTF-8
    assert p0.timestamp == 1_234
    assert (m1.routing_key, b1, p1.headers) == ("", b"", {"x-stream-offset": 1})
    assert (m2.routing_key, b2) == ("", b"binary key")
    assert p2.headers["x-kafka-key"] == b"\xff\xfe"
    assert (m3.routing_key, b3, p3.headers["x"]) == ("k", b"from kafka-python", "1")


def test_kafka_record_wakes_a_waiting_amqp_consumer(
    broker: Broker, open_connection: Callable[[], BlockingConnection]
) -> None:
    conn = open_connection()
    ch = conn.channel()
    declare(ch, "s")
    ch.basic_qos(prefetch_count=5)
    received: list[bytes] = []
    ch.basic_consume("s", lambda c, m, p, body: (received.append(body), c.basic_ack(m.delivery_tag)))
    conn.process_data_events(time_limit=0.2)
    from kafka import KafkaProducer

    kp = KafkaProducer(bootstrap_servers=broker.kafka_bootstrap)
    kp.send("s", value=b"late").get(timeout=WAIT)
    kp.close()
    deadline = time.monotonic() + WAIT
    while not received and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.05)
    assert received == [b"late"]


def test_declaring_attaches_to_a_kafka_topic(broker: Broker, ch: BlockingChannel) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.kafka_bootstrap})
    for name, partitions in (("one", 1), ("three", 3)):
        admin.create_topics([NewTopic(name, partitions)])[name].result(timeout=WAIT)
    from kafka import KafkaProducer

    kp = KafkaProducer(bootstrap_servers=broker.kafka_bootstrap)
    kp.send("one", value=b"before the stream", partition=0).get(timeout=WAIT)
    kp.close()
    declare(ch, "one")
    assert bodies(consume(ch, "one", 1)) == [b"before the stream"]
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        declare(ch, "three")
    assert err.value.reply_code == 406 and "3 partitions" in err.value.reply_text


def test_aio_pika_consumes_a_stream(broker: Broker) -> None:
    async def run() -> list[tuple[bytes, int]]:
        connection = await aio_pika.connect(broker.amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            await channel.set_qos(prefetch_count=4)
            queue = await channel.declare_queue("aio", durable=True, arguments=STREAM)
            for i in range(10):
                await channel.default_exchange.publish(aio_pika.Message(b"%d" % i), routing_key="aio")
            got: list[tuple[bytes, int]] = []
            async with queue.iterator(arguments={"x-stream-offset": 5}) as messages:
                async for message in messages:
                    async with message.process():
                        offset = message.headers["x-stream-offset"]
                        assert isinstance(offset, int)
                        got.append((message.body, offset))
                    if len(got) == 5:
                        break
            return got

    got = asyncio.run(asyncio.wait_for(run(), WAIT))
    assert got == [(b"%d" % i, i) for i in range(5, 10)]
