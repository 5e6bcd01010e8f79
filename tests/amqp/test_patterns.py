"""The messaging patterns of the lecture, one small test each, with pika.

Each test reads as an example: who declares what, who publishes, who receives. Publishers use
publisher confirms, so that once ``basic_publish`` returns the message is in its queue(s).
"""

from __future__ import annotations

from collections.abc import Callable

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from tests.amqp.support import WAIT, Names, consume, get_all, ready_count, wait_until


@pytest.fixture
def publisher(connection: BlockingConnection) -> BlockingChannel:
    ch = connection.channel()
    ch.confirm_delivery()
    return ch


def test_unicast_a_dedicated_queue_per_consumer(publisher: BlockingChannel, names: Names) -> None:
    """Unicast: each consumer has its own queue; a message addressed to one reaches only it."""
    inbox = {user: names.queue(f"inbox-{user}") for user in ("alice", "bob")}
    for queue in inbox.values():
        publisher.queue_declare(queue)

    # Through the default exchange the routing key is the queue's name: a direct address.
    publisher.basic_publish("", inbox["alice"], b"hi alice")
    publisher.basic_publish("", inbox["bob"], b"hi bob")
    publisher.basic_publish("", inbox["alice"], b"bye alice")

    assert get_all(publisher, inbox["alice"]) == [b"hi alice", b"bye alice"]
    assert get_all(publisher, inbox["bob"]) == [b"hi bob"]


def test_multicast_subscribers_of_a_topic(publisher: BlockingChannel, names: Names) -> None:
    """Multicast: a message goes to every subscriber of its topic, and only to those."""
    news = names.exchange("news")
    publisher.exchange_declare(news, exchange_type="topic")
    subscriptions = {
        "sports-fan": "sports.#",
        "football-fan": "sports.football.*",
        "weather-watcher": "weather.*",
    }
    queue_of = {}
    for subscriber, topic in subscriptions.items():
        queue_of[subscriber] = names.queue(subscriber)
        publisher.queue_declare(queue_of[subscriber])
        publisher.queue_bind(queue_of[subscriber], news, routing_key=topic)

    publisher.basic_publish(news, "sports.football.results", b"3-1")
    publisher.basic_publish(news, "sports.tennis", b"6-4 6-2")
    publisher.basic_publish(news, "weather.london", b"rain")

    assert get_all(publisher, queue_of["sports-fan"]) == [b"3-1", b"6-4 6-2"]
    assert get_all(publisher, queue_of["football-fan"]) == [b"3-1"]
    assert get_all(publisher, queue_of["weather-watcher"]) == [b"rain"]


def test_broadcast_every_subscriber_gets_every_message(publisher: BlockingChannel, names: Names) -> None:
    """Broadcast: a fanout exchange copies each message to every bound queue."""
    announcements = names.exchange("announcements")
    publisher.exchange_declare(announcements, exchange_type="fanout")
    subscribers = [names.queue(f"listener{i}") for i in range(3)]
    for queue in subscribers:
        publisher.queue_declare(queue)
        publisher.queue_bind(queue, announcements)

    for body in (b"first", b"second"):
        publisher.basic_publish(announcements, "", body)  # the routing key does not matter

    for queue in subscribers:
        assert get_all(publisher, queue) == [b"first", b"second"]


def test_anycast_competing_consumers_share_one_queue(
    connection: BlockingConnection, publisher: BlockingChannel, names: Names
) -> None:
    """Anycast: consumers of one queue compete; each message goes to exactly one of them,
    round-robin."""
    work = names.queue("work")
    publisher.queue_declare(work)
    received: dict[int, list[int]] = {0: [], 1: [], 2: []}
    for worker in received:
        ch = connection.channel()
        ch.basic_consume(
            work, lambda _ch, _m, _p, body, worker=worker: received[worker].append(int(body)), auto_ack=True
        )

    for job in range(9):
        publisher.basic_publish("", work, b"%d" % job)
    wait_until(lambda: sum(map(len, received.values())) == 9, "9 deliveries", connection)

    assert sorted(job for jobs in received.values() for job in jobs) == list(range(9))  # each exactly once
    # Round-robin: every consumer got every third job.
    for jobs in received.values():
        assert len(jobs) == 3 and jobs[1] - jobs[0] == jobs[2] - jobs[1] == 3, received


def test_push_the_broker_delivers_to_a_consumer(publisher: BlockingChannel, names: Names) -> None:
    """Push: with basic.consume the broker sends messages as they arrive."""
    queue = names.queue()
    publisher.queue_declare(queue)
    publisher.basic_publish("", queue, b"pushed")
    ((method, _, body),) = consume(publisher, queue, 1)
    assert body == b"pushed" and method.consumer_tag  # a delivery to a registered consumer


def test_pull_the_consumer_asks_for_one_message(publisher: BlockingChannel, names: Names) -> None:
    """Pull: with basic.get the consumer asks for one message; get-empty when there is none."""
    queue = names.queue()
    publisher.queue_declare(queue)
    assert publisher.basic_get(queue) == (None, None, None)  # basic.get-empty
    publisher.basic_publish("", queue, b"pulled")
    method, _, body = publisher.basic_get(queue, auto_ack=True)
    assert body == b"pulled" and method.message_count == 0
    assert publisher.basic_get(queue) == (None, None, None)


def test_bounded_buffer_rejects_publishes_when_full(publisher: BlockingChannel, names: Names) -> None:
    """Bounded buffer, back-pressure: a full queue (x-max-length, x-overflow=reject-publish)
    refuses new messages, and a publisher with confirms is told so by a basic.nack."""
    buffer = names.queue("bounded")
    publisher.queue_declare(buffer, arguments={"x-max-length": 3, "x-overflow": "reject-publish"})
    accepted, refused = [], []
    for i in range(5):
        try:
            publisher.basic_publish("", buffer, b"%d" % i)
            accepted.append(i)
        except pika.exceptions.NackError:
            refused.append(i)
    assert (accepted, refused) == ([0, 1, 2], [3, 4])

    assert get_all(publisher, buffer) == [b"0", b"1", b"2"]
    publisher.basic_publish("", buffer, b"room again")  # accepted now that there is space
    assert get_all(publisher, buffer) == [b"room again"]


def test_bounded_buffer_drops_the_oldest_when_full(publisher: BlockingChannel, names: Names) -> None:
    """Bounded buffer, lossy: with x-overflow=drop-head (the default) a full queue drops its
    oldest message to make room; every publish is confirmed."""
    buffer = names.queue("ring")
    publisher.queue_declare(buffer, arguments={"x-max-length": 3, "x-overflow": "drop-head"})
    for i in range(5):
        publisher.basic_publish("", buffer, b"%d" % i)
    assert ready_count(publisher, buffer) == 3
    assert get_all(publisher, buffer) == [b"2", b"3", b"4"]


def test_a_consumer_with_nothing_to_read_waits(
    connect_to: Callable[..., BlockingConnection], publisher: BlockingChannel, names: Names
) -> None:
    """A consumer of an empty queue is not an error: it simply waits until a message comes."""
    queue = names.queue()
    publisher.queue_declare(queue)
    consumer = connect_to().channel()
    waiting = consumer.consume(queue, auto_ack=True, inactivity_timeout=0.2)

    assert next(waiting) == (None, None, None)  # waited, nothing came: still consuming
    publisher.basic_publish("", queue, b"finally")
    for _ in range(int(WAIT / 0.2)):
        method, _, body = next(waiting)
        if method is not None:
            break
    assert body == b"finally"
    consumer.cancel()
