"""Priority queues (x-max-priority: a store per level) and consumer priorities (x-priority)
in the broker core: order, capping, requeue, overflow, expiry and a durable restart."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from jackalope.core.message import Message, QueueEntry
from jackalope.core.priority_store import PriorityStore
from jackalope.core.queue import MAXLEN, Queue
from jackalope.core.queue_store import QueueStore
from jackalope.storage import Log, LogConfig
from tests.core.test_queue import Recorder


def msg(body: str, priority: int = 0, persistent: bool = False) -> Message:
    return Message("", "q", b"\x00\x00", body.encode(), persistent, None, priority)


def memory_levels(level: int, create: bool) -> QueueStore | None:
    return QueueStore() if create else None


def priority_queue(max_priority: int = 5, **kwargs: object) -> Queue:
    store = PriorityStore(max_priority, memory_levels)
    return Queue("pq", arguments={"x-max-priority": max_priority, **kwargs}, store=store)


def drain(q: Queue) -> list[str]:
    out = []
    while (entry := q.get()) is not None:
        out.append(entry.message.body.decode())
        q.ack(entry)
    return out


def test_higher_priorities_first_in_publish_order_within_one() -> None:
    q = priority_queue(5)
    for body, p in [("1", 1), ("9", 9), ("5", 5), ("none", 0), ("3", 3), ("7", 7), ("0", 0)]:
        q.enqueue(msg(body, p))
    # 9 and 7 are capped at 5, where they join 5 in publish order (what RabbitMQ answers)
    assert drain(q) == ["9", "5", "7", "3", "1", "none", "0"]


@given(st.lists(st.integers(0, 12), max_size=60))
def test_order_is_a_stable_sort_by_capped_priority(priorities: list[int]) -> None:
    q = priority_queue(8)
    for i, p in enumerate(priorities):
        q.enqueue(msg(f"{i}", p))
    expected = sorted(range(len(priorities)), key=lambda i: -min(priorities[i], 8))
    assert drain(q) == [str(i) for i in expected]


def test_requeued_messages_go_back_to_the_head_of_their_level() -> None:
    q = priority_queue(3)
    for body, p in [("a", 3), ("b", 3), ("c", 1), ("d", 1)]:
        q.enqueue(msg(body, p))
    taken = [q.get(), q.get(), q.get()]  # a, b, c
    assert all(t is not None for t in taken)
    q.requeue([t for t in taken if t is not None][::-1])
    assert drain(q) == ["a", "b", "c", "d"]


def test_consumers_are_given_the_highest_priority_first() -> None:
    q = priority_queue(9)
    for i in range(6):
        q.enqueue(msg(f"low{i}", 1))
    q.enqueue(msg("high", 9))
    consumer = Recorder("c", credit=3)
    q.add_consumer(consumer)
    assert [e.message.body for e in consumer.got] == [b"high", b"low0", b"low1"]


def test_drop_head_overflow_drops_the_next_to_be_delivered() -> None:
    dropped: list[tuple[bytes, str]] = []
    q = priority_queue(2, **{"x-max-length": 2})
    q.on_dead_letter = lambda _q, m, why: dropped.append((m.body, why))
    q.enqueue(msg("lo", 0))
    q.enqueue(msg("hi", 2))
    q.enqueue(msg("mid", 1))
    assert dropped == [(b"hi", MAXLEN)]  # RabbitMQ drops the head: the highest priority
    assert drain(q) == ["mid", "lo"]


def durable_queue(directory: Path, max_priority: int) -> Queue:
    def make(level: int, create: bool) -> QueueStore | None:
        path = directory / f"p{level}"
        if not create and not path.exists():
            return None
        return QueueStore(durable_log=Log.open(path, LogConfig()))

    return Queue(
        "pq",
        durable=True,
        arguments={"x-max-priority": max_priority},
        store=PriorityStore(max_priority, make),
    )


def test_a_durable_priority_queue_recovers_its_levels_in_order(tmp_path: Path) -> None:
    q = durable_queue(tmp_path, 4)
    for body, p in [("a", 0), ("b", 4), ("c", 2), ("d", 4), ("e", 9)]:
        q.enqueue(msg(body, p, persistent=True))
    first = q.get()
    assert first is not None and first.message.body == b"b"
    q.ack(first)
    q.close()
    for log_ in q.logs():
        log_.close()
    assert {p.name for p in tmp_path.iterdir()} == {"p0", "p2", "p4"}  # a log per level used

    again = durable_queue(tmp_path, 4)
    assert again.recover() == 4
    entries: list[QueueEntry] = []
    while (entry := again.get()) is not None:
        entries.append(entry)
    assert [e.message.body for e in entries] == [b"d", b"e", b"c", b"a"]
    assert [e.message.priority for e in entries] == [4, 9, 2, 0]  # kept for a dead letter


def test_higher_priority_consumers_are_served_first_while_they_have_credit() -> None:
    q = Queue("q")
    low, high, mid = (
        Recorder("low", priority=-1),
        Recorder("high", credit=2, priority=5),
        Recorder("mid", priority=1),
    )
    for consumer in (low, high, mid):
        q.add_consumer(consumer)
    for i in range(5):
        q.enqueue(msg(f"{i}"))
    assert [e.message.body for e in high.got] == [b"0", b"1"]
    assert [e.message.body for e in mid.got] == [b"2", b"3", b"4"]
    assert low.got == []


def test_consumers_of_one_priority_share_round_robin() -> None:
    q = Queue("q")
    a, b, c = Recorder("a", priority=2), Recorder("b", priority=2), Recorder("c", priority=0)
    for consumer in (c, a, b):
        q.add_consumer(consumer)
    for i in range(4):
        q.enqueue(msg(f"{i}"))
    assert ([e.message.body for e in a.got], [e.message.body for e in b.got]) == ([b"0", b"2"], [b"1", b"3"])
    assert c.got == []
    q.remove_consumer(a)
    q.remove_consumer(b)
    q.enqueue(msg("4"))
    assert [e.message.body for e in c.got] == [b"4"]
