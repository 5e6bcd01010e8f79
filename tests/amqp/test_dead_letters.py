"""Dead-lettering with RabbitMQ's ``x-death`` header, which Celery, dramatiq and retry libraries
count on: the reason (rejected, expired, maxlen), the queue, the original exchange and routing
keys, a count per queue and reason, ``x-first-death-*``.  Every test passes against RabbitMQ
too (``JACKALOPE_TEST_AMQP_URL``)."""

from __future__ import annotations

from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from tests.amqp.support import Names, dead_letter_pair, get_all, ready_count, wait_until


def dead_letter(channel: BlockingChannel, dead: str) -> tuple[pika.BasicProperties, bytes]:
    wait_until(lambda: ready_count(channel, dead) >= 1, "the dead letter")
    method, properties, body = channel.basic_get(dead, auto_ack=True)
    assert method is not None
    return properties, body


def deaths(properties: pika.BasicProperties) -> list[dict[str, Any]]:
    return list((properties.headers or {}).get("x-death") or [])


def test_a_rejected_message_carries_its_death(channel: BlockingChannel, names: Names) -> None:
    name, dead = dead_letter_pair(channel, names)
    channel.basic_publish("", name, b"no", pika.BasicProperties(headers={"mine": "kept"}))
    wait_until(lambda: ready_count(channel, name) == 1, "the message")
    method, _, _ = channel.basic_get(name)
    assert method is not None
    channel.basic_reject(method.delivery_tag, requeue=False)
    properties, body = dead_letter(channel, dead)
    assert body == b"no"
    (death,) = deaths(properties)
    assert death["count"] == 1
    assert death["reason"] == "rejected"
    assert death["queue"] == name
    assert death["exchange"] == ""
    assert death["routing-keys"] == [name]
    assert "time" in death
    headers = properties.headers
    assert headers["mine"] == "kept"
    assert (headers["x-first-death-queue"], headers["x-first-death-reason"]) == (name, "rejected")
    assert headers["x-first-death-exchange"] == ""


def test_an_expired_message_keeps_its_expiration_in_its_death(channel: BlockingChannel, names: Names) -> None:
    name, dead = dead_letter_pair(channel, names)
    channel.basic_publish("", name, b"late", pika.BasicProperties(expiration="50"))
    properties, _ = dead_letter(channel, dead)
    assert properties.expiration is None  # spent
    (death,) = deaths(properties)
    assert (death["reason"], death["original-expiration"]) == ("expired", "50")


def test_an_overflowed_message_dies_of_maxlen(channel: BlockingChannel, names: Names) -> None:
    name, dead = dead_letter_pair(channel, names, **{"x-max-length": 1})
    channel.basic_publish("", name, b"first")
    channel.basic_publish("", name, b"second")  # drops the head
    properties, body = dead_letter(channel, dead)
    assert body == b"first"
    assert deaths(properties)[0]["reason"] == "maxlen"


def test_retry_later_counts_every_round(channel: BlockingChannel, names: Names) -> None:
    """The common pattern: reject into a delay queue whose TTL dead-letters back to work."""
    work_x, retry_x = names.exchange("work"), names.exchange("retry")
    work, retry = names.queue("work"), names.queue("retry")
    channel.exchange_declare(work_x, "fanout")
    channel.exchange_declare(retry_x, "fanout")
    channel.queue_declare(work, arguments={"x-dead-letter-exchange": retry_x})
    channel.queue_declare(retry, arguments={"x-dead-letter-exchange": work_x, "x-message-ttl": 20})
    channel.queue_bind(work, work_x)
    channel.queue_bind(retry, retry_x)
    channel.basic_publish(work_x, "job", b"flaky")
    seen: list[list[dict[str, Any]]] = []
    for _ in range(3):
        wait_until(lambda: ready_count(channel, work) == 1, "the job back in the work queue")
        method, properties, _ = channel.basic_get(work)
        assert method is not None
        seen.append(deaths(properties))
        channel.basic_reject(method.delivery_tag, requeue=False)
    assert seen[0] == []
    counts = {(d["queue"], d["reason"]): d["count"] for d in seen[2]}
    assert counts == {(work, "rejected"): 2, (retry, "expired"): 2}
    assert seen[2][0]["queue"] == retry  # most recent first
    assert seen[2][1]["routing-keys"] == ["job"]


def test_a_dead_letter_is_routed_by_its_headers(channel: BlockingChannel, names: Names) -> None:
    dlx, matched, other = names.exchange("dlx"), names.queue("matched"), names.queue("other")
    channel.exchange_declare(dlx, "headers")
    channel.queue_declare(matched)
    channel.queue_declare(other)
    channel.queue_bind(matched, dlx, arguments={"x-match": "all", "kind": "invoice"})
    channel.queue_bind(other, dlx, arguments={"x-match": "all", "kind": "receipt"})
    source = names.queue()
    channel.queue_declare(source, arguments={"x-dead-letter-exchange": dlx})
    channel.confirm_delivery()
    channel.basic_publish("", source, b"doc", pika.BasicProperties(headers={"kind": "invoice"}))
    method, _, _ = channel.basic_get(source)
    assert method is not None
    channel.basic_reject(method.delivery_tag, requeue=False)
    wait_until(lambda: ready_count(channel, matched) == 1, "the dead letter routed by its headers")
    assert ready_count(channel, other) == 0


def test_a_rejected_message_may_be_dead_lettered_back_to_its_queue(
    channel: BlockingChannel, names: Names
) -> None:
    queue = names.queue()
    channel.queue_declare(queue, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue})
    channel.confirm_delivery()
    channel.basic_publish("", queue, b"again")
    method, _, _ = channel.basic_get(queue)
    assert method is not None
    channel.basic_reject(method.delivery_tag, requeue=False)
    wait_until(lambda: ready_count(channel, queue) == 1, "the rejected message back in its queue")
    _, props, body = channel.basic_get(queue, auto_ack=True)
    assert body == b"again" and deaths(props)[0]["count"] == 1


def test_an_expired_message_is_not_dead_lettered_back_to_its_queue(
    channel: BlockingChannel, names: Names
) -> None:
    dlx, queue, observer = names.exchange("dlx"), names.queue(), names.queue("observer")
    channel.exchange_declare(dlx, "fanout")
    channel.queue_declare(queue, arguments={"x-dead-letter-exchange": dlx, "x-message-ttl": 20})
    channel.queue_declare(observer)
    channel.queue_bind(queue, dlx)  # the dead letters come back here too: a cycle
    channel.queue_bind(observer, dlx)
    channel.confirm_delivery()
    channel.basic_publish("", queue, b"cycle")
    wait_until(lambda: ready_count(channel, observer) == 1, "the first dead letter")
    # Had the copy gone back to the queue, it would expire again before this one does.
    channel.basic_publish("", queue, b"marker")
    wait_until(lambda: ready_count(channel, observer) == 2, "the marker's dead letter")
    assert get_all(channel, observer) == [b"cycle", b"marker"]
    assert ready_count(channel, queue) == 0


def test_a_cycle_through_two_queues_is_broken_where_it_closes(channel: BlockingChannel, names: Names) -> None:
    """A expires into B, B into A: back at A with no rejection on the way, the message is
    dropped there (RabbitMQ's cycle rule, read from x-death)."""
    to_b, to_a = names.exchange("to-b"), names.exchange("to-a")
    a, b = names.queue("a"), names.queue("b")
    seen_a, seen_b = names.queue("left-a"), names.queue("left-b")
    for exchange in (to_b, to_a):
        channel.exchange_declare(exchange, "fanout")
    channel.queue_declare(a, arguments={"x-dead-letter-exchange": to_b, "x-message-ttl": 20})
    channel.queue_declare(b, arguments={"x-dead-letter-exchange": to_a, "x-message-ttl": 20})
    for observer in (seen_a, seen_b):
        channel.queue_declare(observer)
    for queue, exchange in ((b, to_b), (seen_a, to_b), (a, to_a), (seen_b, to_a)):
        channel.queue_bind(queue, exchange)
    channel.confirm_delivery()
    channel.basic_publish("", a, b"round")
    wait_until(lambda: ready_count(channel, seen_b) == 1, "the message leaving b")
    # Had it gone on into a, it would leave a again before this one does.
    channel.basic_publish("", a, b"marker")
    wait_until(lambda: ready_count(channel, seen_b) == 2, "the marker leaving b")
    assert get_all(channel, seen_a) == [b"round", b"marker"]
    assert get_all(channel, seen_b) == [b"round", b"marker"]
