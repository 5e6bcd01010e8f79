"""Queue semantics of the broker core: order, round-robin, prefetch credit, requeue order,
overflow, and persistence of durable queues across a restart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from jackalope.core.errors import InvalidArgument, ResourceLocked
from jackalope.core.message import Message, QueueEntry
from jackalope.core.queue import Queue
from jackalope.storage import Log, LogConfig


class Recorder:
    """A consumer with a credit limit that records what it was given."""

    def __init__(self, tag: str, credit: int = 1_000_000, exclusive: bool = False, priority: int = 0) -> None:
        self.tag = tag
        self.exclusive = exclusive
        self.priority = priority
        self.credit = credit
        self.got: list[QueueEntry] = []
        self.was_cancelled = False

    def can_deliver(self) -> bool:
        return len(self.got) < self.credit

    def deliver(self, queue: Queue, entry: QueueEntry) -> None:
        self.got.append(entry)

    def cancelled(self, queue: Queue) -> None:
        self.was_cancelled = True


def msg(body: bytes, persistent: bool = False) -> Message:
    return Message("ex", "rk", b"\x00\x00", body, persistent)


def bodies(entries: list[QueueEntry]) -> list[bytes]:
    return [e.message.body for e in entries]


def test_round_robin_and_credit() -> None:
    q = Queue("q")
    a, b = Recorder("a", credit=2), Recorder("b", credit=1)
    q.add_consumer(a)
    q.add_consumer(b)
    for i in range(5):
        q.enqueue(msg(b"%d" % i))
    assert bodies(a.got) == [b"0", b"2"]
    assert bodies(b.got) == [b"1"]
    assert q.message_count == 2
    assert q.unacked_count == 3
    q.ack(a.got[0])
    a.credit = 3
    q.dispatch()
    assert bodies(a.got) == [b"0", b"2", b"3"]


def test_requeue_restores_original_order_and_marks_redelivered() -> None:
    q = Queue("q")
    c = Recorder("c", credit=3)
    q.add_consumer(c)
    for i in range(5):
        q.enqueue(msg(b"%d" % i))
    q.remove_consumer(c)
    q.requeue([c.got[2], c.got[0]])
    got = [q.get() for _ in range(4)]
    assert bodies([e for e in got if e]) == [b"0", b"2", b"3", b"4"]
    assert [e.redelivered for e in got if e] == [True, True, False, False]


def test_exclusive_consumer() -> None:
    q = Queue("q")
    q.add_consumer(Recorder("a", exclusive=True))
    with pytest.raises(ResourceLocked):
        q.add_consumer(Recorder("b"))


def test_overflow_reject_publish_and_drop_head() -> None:
    reject = Queue("r", arguments={"x-max-length": 2, "x-overflow": "reject-publish"})
    assert reject.enqueue(msg(b"1")) and reject.enqueue(msg(b"2"))
    assert reject.enqueue(msg(b"3")) is None
    drop = Queue("d", arguments={"x-max-length": 2})
    for i in range(4):
        drop.enqueue(msg(b"%d" % i))
    assert [drop.get().message.body for _ in range(2)] == [b"2", b"3"]  # type: ignore[union-attr]
    with pytest.raises(InvalidArgument):
        Queue("bad", arguments={"x-max-length": "ten"})
    with pytest.raises(InvalidArgument):
        Queue("bad", arguments={"x-overflow": "explode"})


def test_delete_cancels_consumers() -> None:
    q = Queue("q")
    c = Recorder("c")
    q.add_consumer(c)
    q.delete()
    assert c.was_cancelled


def test_durable_queue_survives_restart_with_out_of_order_acks(tmp_path: Path) -> None:
    config = LogConfig(durability="never", segment_bytes=4096)
    log = Log.open(tmp_path / "q", config)
    q = Queue("q", durable=True, log_=log)
    for i in range(600):
        q.enqueue(msg(b"m%d" % i, persistent=i % 10 != 0))  # every 10th is transient
    q.enqueue(msg(b"transient", persistent=False))
    c = Recorder("c", credit=10_000)
    q.add_consumer(c)
    for entry in c.got[:300]:  # in order: the head moves
        q.ack(entry)
    for entry in c.got[400:450]:  # out of order: remembered at close
        q.ack(entry)
    q.remove_consumer(c)
    q.close()
    log.close()
    assert log.start_offset > 0  # acknowledged segments were released

    log = Log.open(tmp_path / "q", config)
    again = Queue("q", durable=True, log_=log)
    recovered = again.recover()
    expected = [b"m%d" % i for i in range(600) if i % 10 != 0 and not (i < 300 or 400 <= i < 450)]
    got = [again.get() for _ in range(recovered)]
    assert bodies([e for e in got if e]) == expected
    log.close()


def test_persistent_messages_of_one_iteration_share_one_batch(tmp_path: Path) -> None:
    from jackalope.storage.records import iter_batches

    deferred: list[Callable[[], None]] = []
    log = Log.open(tmp_path / "q", LogConfig(durability="always"))
    q = Queue("q", durable=True, log_=log, defer=deferred.append)
    entries = [q.enqueue(msg(b"m%d" % i, persistent=True)) for i in range(3)]
    q.enqueue(msg(b"transient"))
    confirmed: list[BaseException | None] = []
    for entry in entries:
        assert entry is not None
        q.when_durable(entry, confirmed.append)
    assert log.end_offset == 0 and len(deferred) == 1  # nothing written yet, one write scheduled
    deferred.pop()()
    assert log.end_offset == 3
    assert len(list(iter_batches(log.read(0).data))) == 1
    assert confirmed == []
    log.sync()
    assert confirmed == [None, None, None]
    # Settling an entry whose batch is not written yet writes it first.
    late = q.enqueue(msg(b"late", persistent=True))
    assert late is not None and log.end_offset == 3
    for _ in range(5):
        got = q.get()
        assert got is not None
        q.ack(got)
    assert log.end_offset == 4
    log.close()
