"""Queue TTL in the core, with a hand-driven clock and timer: expiry from the head, the lower
of queue and message TTL, TTL 0, dead-letter reasons, and expiry kept in a durable queue's log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from jackalope.core import queue as queue_module
from jackalope.core.message import Message, QueueEntry
from jackalope.core.queue import EXPIRED, Queue
from jackalope.storage import Log, LogConfig


class Timers:
    """call_later by hand: ``run_due()`` fires what is due at the fake clock's time."""

    def __init__(self, clock: list[int]) -> None:
        self.clock = clock
        self.pending: list[tuple[float, Callable[[], None], Handle]] = []

    def __call__(self, delay: float, callback: Callable[[], None]) -> Handle:
        handle = Handle()
        self.pending.append((self.clock[0] / 1000 + delay, callback, handle))
        return handle

    def run_due(self) -> None:
        due = [(t, cb, h) for t, cb, h in self.pending if t <= self.clock[0] / 1000 and not h.cancelled]
        self.pending = [p for p in self.pending if p not in due and not p[2].cancelled]
        for _, callback, _ in due:
            callback()


class Handle:
    cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    now = [1_000_000]
    monkeypatch.setattr(queue_module, "now_ms", lambda: now[0])
    return now


def msg(body: bytes, ttl: int | None = None, persistent: bool = False) -> Message:
    return Message("ex", "rk", b"\x00\x00", body, persistent, ttl)


def dead_lettering(q: Queue) -> list[tuple[bytes, str]]:
    dead: list[tuple[bytes, str]] = []
    q.on_dead_letter = lambda _q, m, reason: dead.append((m.body, reason))
    return dead


def test_expired_messages_leave_the_head_when_the_timer_fires(clock: list[int]) -> None:
    timers = Timers(clock)
    q = Queue("q", arguments={"x-message-ttl": 100}, timer=timers)
    dead = dead_lettering(q)
    q.enqueue(msg(b"a"))
    clock[0] += 50
    q.enqueue(msg(b"b"))
    clock[0] += 60  # a is 110 ms old, b 60
    timers.run_due()
    assert dead == [(b"a", EXPIRED)]
    assert q.message_count == 1
    clock[0] += 50
    timers.run_due()
    assert dead == [(b"a", EXPIRED), (b"b", EXPIRED)]
    assert q.message_count == 0 and not timers.pending


def test_the_lower_ttl_wins_and_ttl_zero_is_now_or_never(clock: list[int]) -> None:
    q = Queue("q", arguments={"x-message-ttl": 1000}, timer=Timers(clock))
    dead = dead_lettering(q)
    q.enqueue(msg(b"short", ttl=10))
    q.enqueue(msg(b"gone", ttl=0))  # nobody can take it at once
    assert dead == [(b"gone", EXPIRED)]
    clock[0] += 20
    assert q.get() is None  # the short one expired on the way out
    assert dead[-1] == (b"short", EXPIRED)


def test_expiry_is_kept_in_a_durable_queues_log(clock: list[int], tmp_path: Path) -> None:
    config = LogConfig(durability="never")
    log = Log.open(tmp_path / "q", config)
    q = Queue("q", durable=True, log_=log)
    q.enqueue(msg(b"expires", ttl=100, persistent=True))
    q.enqueue(msg(b"stays", persistent=True))
    q.close()
    log.close()
    clock[0] += 200
    log = Log.open(tmp_path / "q", config)
    again = Queue("q", durable=True, log_=log)
    dead = dead_lettering(again)
    assert again.recover() == 2
    entry = again.get()
    assert entry is not None and entry.message.body == b"stays"
    assert dead == [(b"expires", EXPIRED)]
    log.close()


def test_a_requeued_message_keeps_its_expiry(clock: list[int]) -> None:
    q = Queue("q")
    dead = dead_lettering(q)
    consumer = Taker()
    q.add_consumer(consumer)
    q.enqueue(msg(b"handed over", ttl=100))  # straight to the consumer
    q.remove_consumer(consumer)
    clock[0] += 200
    q.requeue(consumer.got)
    assert q.get() is None
    assert dead == [(b"handed over", EXPIRED)]


class Taker:
    exclusive = False
    tag = "taker"
    priority = 0

    def __init__(self) -> None:
        self.got: list[QueueEntry] = []

    def can_deliver(self) -> bool:
        return True

    def deliver(self, queue: Queue, entry: QueueEntry) -> None:
        self.got.append(entry)

    def cancelled(self, queue: Queue) -> None:
        pass
