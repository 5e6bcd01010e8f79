"""LogManager: the logs of a data directory, group commit and background syncs on asyncio."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from storage_helpers import read_all

from jackalope.storage import Durability, LogClosedError, LogConfig, LogManager, Record
from jackalope.storage.log import SyncJob
from jackalope.storage.manager import CONFIG_FILE, dir_name

NAMES = ["plain", "with/slash", ".hidden", "..", ".", "ünï cødé", "a.b", "%41", "x" * 100]
GUARD = 30  # seconds: a hang guard, not a timing assertion


class SyncCounter:
    """Counts SyncJob.run calls (one per fsync group) while still running them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self._lock = threading.Lock()
        original = SyncJob.run

        def counting(job: SyncJob) -> None:
            with self._lock:
                self.calls += 1
            original(job)

        monkeypatch.setattr(SyncJob, "run", counting)


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> SyncCounter:
    return SyncCounter(monkeypatch)


# -- the logs of a directory ----------------------------------------------------------------------


def test_dir_name_is_safe_and_reversible() -> None:
    import urllib.parse

    for name in NAMES:
        d = dir_name(name)
        assert "/" not in d and not d.startswith(".")
        assert urllib.parse.unquote(d) == name
    assert len({dir_name(n) for n in NAMES}) == len(NAMES)


def test_create_get_delete_and_reopen(tmp_path: Path) -> None:
    default = LogConfig(segment_bytes=4096, durability=Durability.NEVER)
    manager = LogManager(tmp_path / "data", default)
    manager.open()
    configs = {
        name: LogConfig(segment_bytes=1024 + i, retention_ms=1000 * i, durability=list(Durability)[i % 3])
        for i, name in enumerate(NAMES)
    }
    for name, config in configs.items():
        log = manager.create(name, config)
        assert log.config == config
        log.append([Record(name.encode())], timestamp=1)
    plain = manager.create("defaults")
    assert plain.config == default
    plain.append([Record(b"d")], timestamp=1)
    for name in NAMES:
        assert name in manager
        log = manager.get(name)
        assert log is not None
        assert manager.get_or_create(name) is log
    assert manager.get("missing") is None
    assert "missing" not in manager
    assert {name for name, _ in manager} == {*NAMES, "defaults"}
    with pytest.raises(FileExistsError):
        manager.create("plain")
    with pytest.raises(ValueError):
        manager.create("")
    doomed = manager.get("with/slash")
    assert doomed is not None
    manager.delete("with/slash")
    assert "with/slash" not in manager
    assert not doomed.directory.exists()
    with pytest.raises(KeyError):
        manager.delete("with/slash")
    manager.close_sync()

    again = LogManager(tmp_path / "data", LogConfig())
    again.open()
    try:
        assert {name for name, _ in again} == ({*NAMES, "defaults"} - {"with/slash"})
        for name, config in configs.items():
            if name == "with/slash":
                continue
            log = again.get(name)
            assert log is not None
            assert log.config == config  # the per-log config was persisted
            assert read_all(log) == [Record(name.encode(), timestamp=1, offset=0)]
        defaults = again.get("defaults")
        assert defaults is not None and defaults.config == default
        # A log whose config.json is unreadable falls back to the manager's default.
        assert isinstance(again.get("plain"), object)
    finally:
        again.close_sync()


def test_unreadable_config_falls_back_to_the_default(tmp_path: Path) -> None:
    manager = LogManager(tmp_path, LogConfig())
    manager.open()
    manager.create("a", LogConfig(segment_bytes=2048)).append([Record(b"x")])
    manager.close_sync()
    (tmp_path / "a" / CONFIG_FILE).write_text("{not json")
    default = LogConfig(segment_bytes=8192)
    again = LogManager(tmp_path, default)
    again.open()
    log = again.get("a")
    assert log is not None and log.config == default
    assert [r.value for r in read_all(log)] == [b"x"]
    again.close_sync()


# -- group commit ---------------------------------------------------------------------------------


async def test_group_commit_many_concurrent_appenders(tmp_path: Path, counter: SyncCounter) -> None:
    manager = LogManager(tmp_path, LogConfig(durability=Durability.ALWAYS, segment_bytes=64 * 1024))
    manager.open()
    await manager.start()
    log = manager.create("orders")
    tasks, per_task = 40, 25
    confirmed: dict[int, bytes] = {}

    async def producer(task: int) -> None:
        for _ in range(task % 3):  # stagger the tasks so that groups do not line up exactly
            await asyncio.sleep(0)
        for n in range(per_task):
            value = f"{task}:{n}".encode()
            info = log.append([Record(value)])
            await manager.wait_durable(log, info.last_offset)
            assert log.durable_offset > info.last_offset
            confirmed[info.last_offset] = value

    async with asyncio.timeout(GUARD):
        await asyncio.gather(*(producer(t) for t in range(tasks)))
    appends = tasks * per_task
    assert len(confirmed) == appends
    assert log.durable_offset == log.flushed_offset == log.end_offset == appends
    assert 1 <= counter.calls * 5 <= appends, counter.calls  # far fewer fsyncs than appends
    stored = {r.offset: r.value for r in read_all(log)}
    assert stored == confirmed
    await manager.close()


async def test_appends_during_a_sync_are_synced_next(tmp_path: Path, counter: SyncCounter) -> None:
    """A free-running appender that never waits in between, next to appenders that do."""
    manager = LogManager(tmp_path, LogConfig(durability=Durability.ALWAYS))
    manager.open()
    await manager.start()
    log = manager.create("stream")

    async def free_runner() -> int:
        last = -1
        for n in range(300):
            last = log.append([Record(b"free %d" % n)]).last_offset
            await asyncio.sleep(0)
        await manager.wait_durable(log, last)
        return last

    async def waiter(task: int) -> None:
        for n in range(30):
            info = log.append([Record(b"wait %d %d" % (task, n)), Record(b"pair")])
            await manager.wait_durable(log, info.last_offset)

    async with asyncio.timeout(GUARD):
        last, *_ = await asyncio.gather(free_runner(), *(waiter(t) for t in range(5)))
    assert log.durable_offset > last
    # Whatever was appended last (the free runner's tail) becomes durable without more appends.
    info = log.append([Record(b"straggler")])
    async with asyncio.timeout(GUARD):
        await manager.wait_durable(log, info.last_offset)
    assert log.durable_offset == log.end_offset == 300 + 5 * 30 * 2 + 1
    await manager.close()


async def test_interval_becomes_durable_without_explicit_sync(tmp_path: Path, counter: SyncCounter) -> None:
    manager = LogManager(tmp_path, LogConfig(durability=Durability.INTERVAL, fsync_interval_ms=50))
    manager.open()
    await manager.start()
    log = manager.create("metrics")
    info = log.append([Record(b"a"), Record(b"b")])
    await asyncio.sleep(0)
    assert log.flushed_offset == 2  # written at the end of the loop iteration
    async with asyncio.timeout(GUARD):
        await manager.wait_durable(log, info.last_offset)
    assert log.durable_offset == 2
    assert counter.calls >= 1
    await manager.close()


async def test_never_is_durable_at_the_end_of_the_loop_iteration(
    tmp_path: Path, counter: SyncCounter
) -> None:
    manager = LogManager(tmp_path, LogConfig(durability=Durability.NEVER))
    manager.open()
    await manager.start()
    log = manager.create("cache")
    info = log.append([Record(b"a")])
    log.append([Record(b"b")])
    assert log.durable_offset == 0
    await asyncio.sleep(0)
    assert log.durable_offset == log.flushed_offset == 2
    await manager.wait_durable(log, info.last_offset)  # already durable: returns at once
    assert counter.calls == 0  # no fsync was needed for that
    await manager.close()


async def test_mixed_policies_in_one_manager(tmp_path: Path) -> None:
    manager = LogManager(tmp_path)
    manager.open()
    await manager.start()
    logs = {d: manager.create(d.value, LogConfig(durability=d, fsync_interval_ms=20)) for d in Durability}
    async with asyncio.timeout(GUARD):
        for _ in range(20):
            infos = {d: log.append([Record(d.value.encode())]) for d, log in logs.items()}
            await asyncio.gather(*(manager.wait_durable(logs[d], i.last_offset) for d, i in infos.items()))
    for log in logs.values():
        assert log.durable_offset == log.end_offset == 20
    await manager.close()


async def test_appends_made_before_start_are_synced_after_it(tmp_path: Path) -> None:
    manager = LogManager(tmp_path, LogConfig(durability=Durability.ALWAYS))
    manager.open()
    log = manager.create("early")
    info = log.append([Record(b"before start")])
    await manager.start()
    async with asyncio.timeout(GUARD):
        await manager.wait_durable(log, info.last_offset)
    assert log.durable_offset == 1
    await manager.close()


# -- closing --------------------------------------------------------------------------------------


async def test_close_then_reopen_sees_everything(tmp_path: Path) -> None:
    manager = LogManager(tmp_path, LogConfig(segment_bytes=1024))
    manager.open()
    await manager.start()
    logs = {
        "always": manager.create("always", LogConfig(segment_bytes=1024, durability=Durability.ALWAYS)),
        "slow": manager.create(
            "slow", LogConfig(segment_bytes=1024, durability=Durability.INTERVAL, fsync_interval_ms=3_600_000)
        ),
        "never": manager.create("never", LogConfig(segment_bytes=1024, durability=Durability.NEVER)),
    }
    expected: dict[str, list[bytes]] = {name: [] for name in logs}
    pending = []
    for n in range(50):
        for name, log in logs.items():
            value = f"{name}-{n}".encode() * 5
            info = log.append([Record(value)])
            expected[name].append(value)
            pending.append(asyncio.ensure_future(manager.wait_durable(log, info.last_offset)))
        if n % 10 == 0:
            await asyncio.sleep(0)
    await manager.close()
    # Waiters still pending at close (the hourly interval log) are settled by the final sync.
    async with asyncio.timeout(GUARD):
        results = await asyncio.gather(*pending, return_exceptions=True)
    assert all(r is None for r in results), [r for r in results if r is not None][:3]
    for log in logs.values():
        assert (log.directory / "clean-shutdown").exists()

    again = LogManager(tmp_path)
    again.open()
    for name in logs:
        log = again.get(name)
        assert log is not None
        assert log.config.segment_bytes == 1024
        assert [r.value for r in read_all(log)] == expected[name]
        assert log.segment_count > 1
    again.close_sync()


async def test_waiters_settled_by_close_are_settled_on_the_loop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """close() closes (and so syncs) the logs on a worker thread; their waiters' futures must
    still be completed on the event loop's thread.  Debug mode makes a loop refuse work from
    another thread, and the refusal is logged as a failed durability callback."""
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    manager = LogManager(tmp_path, LogConfig(durability=Durability.INTERVAL, fsync_interval_ms=3_600_000))
    manager.open()
    await manager.start()
    log = manager.create("slow")
    waits = []
    for n in range(5):
        info = log.append([Record(b"%d" % n)])
        # Run wait_durable up to the future it awaits, without a task: a future that is
        # completed wrongly must not leave a task behind that can never finish.
        coro = manager.wait_durable(log, info.last_offset)
        future = coro.send(None)
        future.add_done_callback(lambda f: None)  # as a task would: settling it schedules this
        waits.append((coro, future))
    await asyncio.sleep(0)
    assert not any(future.done() for _, future in waits)
    await manager.close()
    await asyncio.sleep(0)
    try:
        assert all(future.done() and future.exception() is None for _, future in waits)
        assert "durability callback failed" not in caplog.text
    finally:
        for coro, _ in waits:
            coro.close()
        loop.set_debug(False)


async def test_close_is_idempotent_enough_to_close_an_unstarted_manager(tmp_path: Path) -> None:
    manager = LogManager(tmp_path)
    manager.open()
    manager.create("a").append([Record(b"x")])
    await manager.close()
    again = LogManager(tmp_path)
    again.open()
    log = again.get("a")
    assert log is not None and [r.value for r in read_all(log)] == [b"x"]
    again.close_sync()


async def test_deleting_a_log_fails_its_waiters(tmp_path: Path) -> None:
    manager = LogManager(tmp_path, LogConfig(durability=Durability.INTERVAL, fsync_interval_ms=3_600_000))
    manager.open()
    await manager.start()
    log = manager.create("doomed")
    info = log.append([Record(b"x")])
    waiter = asyncio.ensure_future(manager.wait_durable(log, info.last_offset))
    await asyncio.sleep(0)
    manager.delete("doomed")
    with pytest.raises(LogClosedError):
        async with asyncio.timeout(GUARD):
            await waiter
    # Waiting on the deleted log afterwards fails at once instead of hanging.
    with pytest.raises(LogClosedError):
        async with asyncio.timeout(GUARD):
            await manager.wait_durable(log, info.last_offset + 1)
    assert not (tmp_path / "doomed").exists()
    await manager.close()


async def test_manager_retention(tmp_path: Path) -> None:
    manager = LogManager(tmp_path, LogConfig(segment_bytes=1024, retention_bytes=2048, retention_ms=-1))
    manager.open()
    log = manager.create("r")
    for n in range(50):
        log.append([Record(b"%d" % n * 30)])
    assert log.segment_count > 4
    deleted = manager.enforce_retention()
    assert deleted > 0
    assert log.start_offset > 0
    manager.close_sync()


async def test_reconfigure_saves_and_applies(tmp_path: Path) -> None:
    manager = LogManager(tmp_path)
    manager.open()
    log = manager.create("r", LogConfig(segment_bytes=1 << 20))
    new = LogConfig(segment_bytes=1024, cleanup_policy="compact", durability=Durability.NEVER)
    manager.reconfigure("r", new)
    assert log.config == new
    assert LogConfig.load(log.directory / CONFIG_FILE, LogConfig()) == new
    for n in range(30):
        log.append([Record(b"%d" % n * 60)])
    assert log.segment_count > 1
    with pytest.raises(KeyError):
        manager.reconfigure("missing", new)
    manager.close_sync()
    again = LogManager(tmp_path)
    again.open()
    reopened = again.get("r")
    assert reopened is not None and reopened.config == new
    again.close_sync()
