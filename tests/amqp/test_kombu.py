"""kombu over py-amqp (a second, independent AMQP client implementation): Producer and Consumer on
a declared exchange and queue, and SimpleQueue."""

from __future__ import annotations

from collections.abc import Iterator

import kombu
import pytest

from tests.amqp.support import WAIT, Names, bounded


@pytest.fixture
def kombu_connection(amqp_url: str) -> Iterator[kombu.Connection]:
    # confirm_publish: py-amqp waits for the broker's basic.ack on every publish.
    conn = kombu.Connection(amqp_url, connect_timeout=WAIT, transport_options={"confirm_publish": True})
    try:
        conn.ensure_connection(max_retries=1)
        yield conn
    finally:
        bounded(conn.release, "closing the kombu connection")


def test_producer_and_consumer(kombu_connection: kombu.Connection, names: Names) -> None:
    exchange = kombu.Exchange(names.exchange(), type="direct", durable=True)
    queue = kombu.Queue(names.queue(), exchange=exchange, routing_key="tasks", durable=True)
    producer = kombu_connection.Producer(serializer="json")
    for i in range(3):
        producer.publish(
            {"n": i, "text": "hello"},
            exchange=exchange,
            routing_key="tasks",
            declare=[queue],
            headers={"attempt": i},
            delivery_mode="persistent",
            retry=False,
        )
    received = []

    def on_message(body: dict, message: kombu.Message) -> None:
        received.append((body, message.headers["attempt"], message.delivery_info["routing_key"]))
        message.ack()

    with kombu.Consumer(kombu_connection, queues=[queue], callbacks=[on_message], accept=["json"]):
        while len(received) < 3:
            try:
                kombu_connection.drain_events(timeout=WAIT)
            except TimeoutError:  # socket.timeout too
                pytest.fail(f"only {len(received)} of 3 messages arrived")
    assert received == [({"n": i, "text": "hello"}, i, "tasks") for i in range(3)]
    assert queue.bind(kombu_connection.default_channel).queue_declare(passive=True).message_count == 0


def test_simple_queue(kombu_connection: kombu.Connection, names: Names) -> None:
    name = names.queue("simple")
    names.track_exchange(name)  # SimpleQueue declares a direct exchange named after the queue
    with kombu_connection.SimpleQueue(name) as queue:
        queue.put({"hello": "world"}, serializer="json")
        queue.put(b"raw bytes", content_type="application/octet-stream", content_encoding="binary")
        first = queue.get(block=True, timeout=WAIT)
        assert first.payload == {"hello": "world"}
        first.ack()
        second = queue.get(block=True, timeout=WAIT)
        assert second.body == b"raw bytes"
        second.requeue()
        again = queue.get(block=True, timeout=WAIT)
        assert again.body == b"raw bytes" and again.delivery_info["redelivered"]
        again.ack()
        assert queue.qsize() == 0
        with pytest.raises(queue.Empty):
            queue.get(block=False)
