"""Quorum queues in the core, with a hand-driven clock and timer: delivery counts (a reject
counts, a nack does not), the delivery limit, delayed retries and at-least-once
dead-lettering."""

from __future__ import annotations

from pathlib import Path

import pytest

from jackalope.core.message import Message, QueueEntry
from jackalope.core.queue import DELIVERY_LIMIT
from jackalope.core.quorum import QuorumQueue
from jackalope.storage import Log, LogConfig
from tests.core.test_queue_ttl import Timers, clock

__all__ = ["clock"]


def msg(body: bytes, persistent: bool = False) -> Message:
    return Message("ex", "rk", b"\x00\x00", body, persistent)


def take(q: QuorumQueue) -> QueueEntry:
    entry = q.get()
    assert entry is not None
    return entry


def test_rejects_count_and_nacks_do_not() -> None:
    q = QuorumQueue("qq", durable=True)
    q.enqueue(msg(b"m"))
    entry = take(q)
    assert entry.delivery_count == 0
    q.requeue([entry], failed=True)  # basic.reject
    entry = take(q)
    assert (entry.delivery_count, entry.redelivered) == (1, True)
    q.requeue([entry], failed=False)  # basic.nack
    entry = take(q)
    assert (entry.delivery_count, entry.returns) == (1, 1)


def test_a_poison_message_is_dead_lettered_past_the_limit() -> None:
    dead: list[tuple[bytes, str]] = []
    q = QuorumQueue("qq", durable=True, arguments={"x-delivery-limit": 2})
    q.on_dead_letter = lambda _q, m, reason: dead.append((m.body, reason)) or []
    q.enqueue(msg(b"poison"))
    deliveries = 0
    while (entry := q.get()) is not None:
        deliveries += 1
        q.requeue([entry], failed=True)
    assert deliveries == 3  # the limit is of redeliveries: 1 + 2
    assert dead == [(b"poison", DELIVERY_LIMIT)]
    assert q.message_count == q.unacked_count == 0


def test_the_default_limit_is_20_and_minus_one_is_none() -> None:
    q = QuorumQueue("qq", durable=True)
    assert q.delivery_limit == 20
    unlimited = QuorumQueue("qq", durable=True, arguments={"x-delivery-limit": -1})
    unlimited.enqueue(msg(b"m"))
    for _ in range(100):
        unlimited.requeue([take(unlimited)], failed=True)
    assert take(unlimited).delivery_count == 100


def test_nacks_never_reach_the_limit() -> None:
    q = QuorumQueue("qq", durable=True, arguments={"x-delivery-limit": 0})
    q.enqueue(msg(b"m"))
    for _ in range(5):
        q.requeue([take(q)], failed=False)
    assert take(q).returns == 5


def test_delayed_retry_waits_a_linearly_growing_delay(clock: list[int]) -> None:
    timers = Timers(clock)
    q = QuorumQueue(
        "qq",
        durable=True,
        timer=timers,
        arguments={"x-delayed-retry-type": "failed", "x-delayed-retry-min": 100, "x-delayed-retry-max": 250},
    )
    q.enqueue(msg(b"m"))
    waits = []
    for _ in range(4):
        q.requeue([take(q)], failed=True)
        assert q.get() is None and q.message_count == 1  # waiting, and counted
        start = clock[0]
        while q.store.peek() is None:
            clock[0] += 1
            timers.run_due()
        waits.append(clock[0] - start)
    assert waits == [101, 201, 251, 251]  # min * count, capped at max (+1 ms: the timer's margin)


def test_delayed_retry_of_returned_only_leaves_rejects_alone(clock: list[int]) -> None:
    timers = Timers(clock)
    q = QuorumQueue(
        "qq",
        durable=True,
        timer=timers,
        arguments={"x-delayed-retry-type": "returned", "x-delayed-retry-min": 50},
    )
    q.enqueue(msg(b"m"))
    q.requeue([take(q)], failed=True)
    entry = take(q)  # a reject is ready at once
    q.requeue([entry], failed=False)
    assert q.get() is None
    clock[0] += 60
    timers.run_due()
    assert take(q).returns == 1


def test_at_least_once_settles_the_source_only_when_the_copy_is_safe(tmp_path: Path) -> None:
    log_ = Log.open(tmp_path / "qq", LogConfig())
    q = QuorumQueue(
        "qq",
        durable=True,
        log_=log_,
        arguments={"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"},
    )
    assert q.dead_letter_at_least_once
    copies: list[object] = []
    q.on_dead_letter = lambda _q, m, reason: [copies.append]
    q.enqueue(msg(b"m", persistent=True))
    entry = take(q)
    q.discard([entry])
    assert not log_.is_settled(entry.offset)  # the copy is not safe yet
    (copied,) = copies
    copied(None)  # type: ignore[operator]
    assert log_.is_settled(entry.offset)
    log_.close()


def test_at_least_once_needs_reject_publish_as_in_rabbitmq() -> None:
    q = QuorumQueue("qq", durable=True, arguments={"x-dead-letter-strategy": "at-least-once"})
    assert not q.dead_letter_at_least_once


@pytest.mark.parametrize("failed", [True, False])
def test_a_deleted_queue_drops_its_waiting_retries(clock: list[int], failed: bool) -> None:
    timers = Timers(clock)
    q = QuorumQueue(
        "qq", durable=True, timer=timers, arguments={"x-delayed-retry-type": "all", "x-delayed-retry-min": 50}
    )
    q.enqueue(msg(b"m"))
    q.requeue([take(q)], failed=failed)
    q.delete()
    clock[0] += 100
    timers.run_due()
    assert q.message_count == 0
