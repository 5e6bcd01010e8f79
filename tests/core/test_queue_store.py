"""QueueStore and Queue on disk: the window and the paged run, order across both, restarts
and crashes of durable queues (settled acks, transient messages, redelivered flags), and a
deep backlog holding no Python object per message."""

from __future__ import annotations

import gc
import shutil
from pathlib import Path

import pytest

from jackalope.core.message import Message, QueueEntry
from jackalope.core.queue import Queue
from jackalope.core.queue_store import QueueStore
from jackalope.storage import Durability, Log, LogConfig, LogManager


def msg(i: int, persistent: bool = True, size: int = 10) -> Message:
    return Message(
        "ex",
        f"rk{i}",
        b"\x10\x00\x02" if persistent else b"\x10\x00\x01",
        b"%06d" % i + b"." * size,
        persistent,
    )


def number(entry: QueueEntry | None) -> int:
    assert entry is not None
    return int(entry.message.body[:6])


def durable(tmp_path: Path, name: str = "q", **config: object) -> Log:
    return Log.open(tmp_path / name, LogConfig(**config))  # type: ignore[arg-type]


class Transient:
    """A transient log manager (as the server makes one) for non-durable queues."""

    def __init__(self, directory: Path) -> None:
        self.manager = LogManager(directory, LogConfig(durability=Durability.NEVER))
        self.manager.open()
        self.created: list[Log] = []

    def __call__(self) -> Log:
        log = self.manager.create(f"t{len(self.created)}")
        self.created.append(log)
        return log


def drain(store: QueueStore) -> list[int]:
    out = []
    while (entry := store.pop()) is not None:
        out.append(number(entry))
        store.settle(entry)
    return out


# -- the window and the run -----------------------------------------------------------------------


def test_beyond_the_window_messages_are_paged_and_come_back_in_order(tmp_path: Path) -> None:
    pages = Transient(tmp_path / "t")
    store = QueueStore(log_factory=pages, window_messages=8)
    for i in range(100):
        store.push(msg(i, persistent=False))
    assert len(store) == 100 and store.paged == 92 and len(pages.created) == 1
    assert drain(store) == list(range(100))
    assert len(store) == 0 and store.paged == 0


def test_a_non_durable_queue_in_memory_never_touches_the_disk(tmp_path: Path) -> None:
    pages = Transient(tmp_path / "t")
    store = QueueStore(log_factory=pages, window_messages=8)
    for i in range(8):
        store.push(msg(i, persistent=False))
    assert pages.created == [] and store.log is None
    assert drain(store) == list(range(8))


def test_the_byte_budget_pages_too(tmp_path: Path) -> None:
    store = QueueStore(log_factory=Transient(tmp_path / "t"), window_bytes=1000)
    for i in range(20):
        store.push(msg(i, persistent=False, size=200))
    assert store.paged == 16  # four 206-byte bodies fit in 1000 bytes
    assert drain(store) == list(range(20))


def test_requeued_entries_go_back_before_the_rest_and_after_paging(tmp_path: Path) -> None:
    store = QueueStore(durable_log=durable(tmp_path), window_messages=4)
    for i in range(10):
        store.push(msg(i))
    taken = [store.pop() for _ in range(6)]  # pages in as the window drains
    store.requeue([e for e in taken if e is not None and number(e) in (1, 4)])
    rest = []
    while (entry := store.pop()) is not None:
        rest.append((number(entry), entry.redelivered))
    assert rest == [(1, True), (4, True), (6, False), (7, False), (8, False), (9, False)]


def test_the_mix_of_persistent_and_transient_keeps_each_message_s_kind(tmp_path: Path) -> None:
    store = QueueStore(durable_log=durable(tmp_path), window_messages=2)
    kinds = [i % 3 != 0 for i in range(12)]
    for i, persistent in enumerate(kinds):
        store.push(msg(i, persistent=persistent))
    got = []
    while (entry := store.pop()) is not None:
        got.append(entry.message.persistent)
    assert got == kinds


def test_purge_settles_the_run_without_reading_it(tmp_path: Path) -> None:
    log = durable(tmp_path, segment_bytes=4096)
    store = QueueStore(durable_log=log, window_messages=4)
    for i in range(500):
        store.push(msg(i))
    store.write_pending()
    assert len(store.purge()) == 4
    assert len(store) == 0 and log.head == 500
    assert log.segment_count == 1  # every settled segment but the active one is gone


def test_a_deep_backlog_holds_no_object_per_message(tmp_path: Path) -> None:
    store = QueueStore(log_factory=Transient(tmp_path / "t"), window_messages=100)
    gc.collect()
    before = len(gc.get_objects())
    for i in range(20_000):
        store.push(msg(i, persistent=False))
        if i % 1000 == 0:
            store.write_pending()  # as the end of each loop iteration would
    store.write_pending()
    gc.collect()
    assert len(store) == 20_000
    assert len(gc.get_objects()) - before < 2_000


# -- Queue over the store ---------------------------------------------------------------------------


def test_max_length_counts_the_paged_messages(tmp_path: Path) -> None:
    q = Queue("q", arguments={"x-max-length": 50}, log_factory=Transient(tmp_path / "t"))
    q.store.window_messages = 5
    for i in range(60):
        q.enqueue(msg(i, persistent=False))
    assert q.message_count == 50
    entry = q.get()
    assert number(entry) == 10  # drop-head dropped 0..9


def test_reject_publish_counts_the_paged_messages_too(tmp_path: Path) -> None:
    q = Queue("q", arguments={"x-max-length": 20, "x-overflow": "reject-publish"})
    q.store.window_messages = 5
    q.store._log_factory = Transient(tmp_path / "t")
    assert all(q.enqueue(msg(i, persistent=False)) is not None for i in range(20))
    assert q.enqueue(msg(20, persistent=False)) is None


# -- restarts and crashes -------------------------------------------------------------------------


def make_durable(directory: Path, window: int = 4) -> Queue:
    q = Queue("q", durable=True, log_=Log.open(directory, LogConfig(segment_bytes=4096)))
    q.store.window_messages = window
    return q


def test_a_restart_keeps_every_unsettled_persistent_message_in_order(tmp_path: Path) -> None:
    q = make_durable(tmp_path / "q")
    for i in range(40):
        q.enqueue(msg(i, persistent=i % 4 != 3))  # every fourth one transient
    q.write_pending()
    taken = [q.get() for _ in range(10)]
    for entry in taken:
        if entry is not None and number(entry) % 2 == 0:
            q.ack(entry)  # out of order: 0, 2, 4, 6, 8
    q.close()
    (log_,) = q.logs()
    log_.close()

    again = make_durable(tmp_path / "q")
    # 1, 5 and 9 (delivered, not acked) and the persistent ones of 10..39; no transient one
    expected = [(n, n < 10) for n in range(40) if n % 4 != 3 and not (n < 10 and n % 2 == 0)]
    assert again.recover() == again.message_count == len(expected) == 25
    got = []
    while (entry := again.get()) is not None:
        got.append((number(entry), entry.redelivered))
    assert got == expected  # delivered before the restart: redelivered


def test_after_a_crash_flushed_acks_stay_settled(tmp_path: Path) -> None:
    q = make_durable(tmp_path / "q", window=1000)
    for i in range(100):
        q.enqueue(msg(i))
    q.write_pending()
    entries = [q.get() for _ in range(100)]
    for entry in entries[1::2]:  # every odd one, with 0 left unacked at the head
        assert entry is not None
        q.ack(entry)
    (log_,) = q.logs()
    log_.flush()  # the end of the loop iteration
    for entry in entries[2:10:2]:
        assert entry is not None
        q.ack(entry)  # not flushed: these come back
    shutil.copytree(tmp_path / "q", tmp_path / "copy")  # what the OS has when the process dies
    again = make_durable(tmp_path / "copy", window=1000)
    assert again.recover() == 50
    got = []
    while (entry := again.get()) is not None:
        got.append(number(entry))
    assert got == list(range(0, 100, 2))


def test_exact_bytes_after_a_restart_for_max_length_bytes(tmp_path: Path) -> None:
    log = Log.open(tmp_path / "q", LogConfig())
    q = Queue("q", durable=True, arguments={"x-max-length-bytes": 10_000}, log_=log)
    for i in range(30):
        q.enqueue(msg(i, size=94))  # 100-byte bodies
    q.close()
    log.close()
    again = Queue(
        "q",
        durable=True,
        arguments={"x-max-length-bytes": 10_000},
        log_=Log.open(tmp_path / "q", LogConfig()),
    )
    assert again.recover() == 30
    assert again.store.ready_bytes == 3000


@pytest.mark.parametrize("window", [1, 3, 4096])
def test_get_and_dispatch_agree_across_the_boundary(tmp_path: Path, window: int) -> None:
    q = Queue("q", log_factory=Transient(tmp_path / "t"))
    q.store.window_messages = window
    for i in range(50):
        q.enqueue(msg(i, persistent=False))
    out = [number(q.get()) for _ in range(25)]
    out += [number(q.get()) for _ in range(25)]
    assert out == list(range(50)) and q.get() is None
