"""All the logs of one data directory, and the background work they need on an event loop.

The manager turns the :class:`~jackalope.storage.log.Log` durability hooks into group commit:
appends made during one event-loop iteration are flushed together at its end, and under the
``always`` policy a single ``fdatasync`` on a worker thread covers all of them, while the
next group accumulates.  It also runs the periodic ``interval`` syncs, retention, and
compaction of the logs whose ``cleanup_policy`` includes ``compact`` (its reading and writing on
a worker thread, the swap on the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Final

from jackalope.storage.compaction import CompactionResult
from jackalope.storage.config import Durability, LogConfig
from jackalope.storage.errors import StorageError
from jackalope.storage.log import Log, SyncJob

log = logging.getLogger(__name__)

CONFIG_FILE: Final = "config.json"


def dir_name(name: str) -> str:
    """A file-system-safe directory name for a log name (reversible)."""
    quoted = urllib.parse.quote(name, safe="-_")
    return quoted.replace(".", "%2E") if quoted.startswith(".") else quoted


class LogManager:
    def __init__(
        self,
        directory: Path,
        default_config: LogConfig | None = None,
        *,
        retention_check_interval_ms: int = 300_000,
    ) -> None:
        self.directory = directory
        self.default_config = default_config or LogConfig()
        self.retention_check_interval_ms = retention_check_interval_ms
        self._logs: dict[str, Log] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._dirty: set[Log] = set()
        self._flush_scheduled = False
        self._syncing: dict[Log, Future[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -----------------------------------------------------------------------------

    def open(self) -> None:
        """Open every log found in the directory (recovering each as needed)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for child in sorted(self.directory.iterdir()):
            if child.is_dir():
                name = urllib.parse.unquote(child.name)
                config = LogConfig.load(child / CONFIG_FILE, self.default_config)
                self._attach(name, Log.open(child, config))

    async def start(self) -> None:
        """Start background work on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="jackalope-fsync")
        self._tasks = [
            asyncio.create_task(self._interval_syncs(), name="jackalope-interval-sync"),
            asyncio.create_task(self._retention(), name="jackalope-retention"),
        ]
        if self._dirty and not self._flush_scheduled:
            # Logs appended to before the start: they will not report being dirty again.
            self._flush_scheduled = True
            self._loop.call_soon(self._flush_dirty)

    async def close(self) -> None:
        """Stop background work, wait for in-flight syncs, then flush, fsync and close every log."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        while self._syncing:
            await asyncio.wrap_future(next(iter(self._syncing.values())))
        logs = list(self._logs.values())
        self._logs.clear()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, _close_all, logs)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._loop = None

    async def discard(self) -> None:
        """Stop background work and delete every log, unsynced (a manager of logs that need
        not survive a restart: closing would only fsync what is about to be thrown away)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        while self._syncing:
            await asyncio.wrap_future(next(iter(self._syncing.values())))
        for name in list(self._logs):
            self.delete(name)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._loop = None

    def close_sync(self) -> None:
        """Close every log without an event loop (for synchronous callers)."""
        _close_all(list(self._logs.values()))
        self._logs.clear()

    # -- the logs ------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[tuple[str, Log]]:
        return iter(list(self._logs.items()))

    def __contains__(self, name: str) -> bool:
        return name in self._logs

    def get(self, name: str) -> Log | None:
        return self._logs.get(name)

    def create(self, name: str, config: LogConfig | None = None) -> Log:
        if not name:
            raise ValueError("a log needs a name")
        if name in self._logs:
            raise FileExistsError(f"log {name!r} exists")
        config = config or self.default_config
        path = self.directory / dir_name(name)
        path.mkdir(parents=True, exist_ok=True)
        config.save(path / CONFIG_FILE)
        return self._attach(name, Log.open(path, config))

    def get_or_create(self, name: str, config: LogConfig | None = None) -> Log:
        return self._logs.get(name) or self.create(name, config)

    def reconfigure(self, name: str, config: LogConfig) -> None:
        """Save ``config`` as the log's configuration and apply it to the open log at once.

        Raises KeyError for an unknown log."""
        log_ = self._logs[name]
        config.save(log_.directory / CONFIG_FILE)
        log_.reconfigure(config)

    def delete(self, name: str) -> None:
        log_ = self._logs.pop(name)
        self._dirty.discard(log_)
        log_.delete()

    def remove(self, log_: Log) -> None:
        """Delete ``log_`` (a log of this manager, found by identity)."""
        for name, candidate in self._logs.items():
            if candidate is log_:
                self.delete(name)
                return

    def _attach(self, name: str, log_: Log) -> Log:
        log_.on_dirty = self._mark_dirty
        self._logs[name] = log_
        return log_

    # -- group commit --------------------------------------------------------------------------

    def _mark_dirty(self, log_: Log) -> None:
        self._dirty.add(log_)
        if not self._flush_scheduled and self._loop is not None:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush_dirty)

    def _flush_dirty(self) -> None:
        """The end of a loop iteration: every dirty log's appends and settlements go to the OS
        (so they survive a crash of the process), and ``always`` logs start their fsync."""
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, set()
        for log_ in dirty:
            try:
                log_.flush()
                if log_.config.durability is Durability.ALWAYS and log_.needs_sync():
                    self._start_sync(log_)
            except StorageError:
                pass  # the log has already failed the affected waiters

    def _start_sync(self, log_: Log, *, acks: bool = False) -> None:
        if log_ in self._syncing or self._executor is None or self._loop is None:
            return  # the running sync's completion starts the next one
        job = log_.begin_sync(acks=acks)
        if job is None:
            return
        future = self._executor.submit(job.run)
        self._syncing[log_] = future
        loop = self._loop
        future.add_done_callback(lambda f: loop.call_soon_threadsafe(self._sync_done, log_, job, f))

    def _sync_done(self, log_: Log, job: SyncJob, future: Future[None]) -> None:
        del self._syncing[log_]
        log_.end_sync(job, future.exception())
        if log_.failed is None and log_.needs_sync() and log_.config.durability is Durability.ALWAYS:
            self._start_sync(log_)

    async def _interval_syncs(self) -> None:
        """``interval`` logs: fsync on their period.  ``always`` logs: their settlements on the
        same period (appends are synced as they come).  ``never`` logs: rolled segments only."""
        tick = 0.05
        elapsed: dict[Log, float] = {}
        while True:
            await asyncio.sleep(tick)
            waited, elapsed = elapsed, {}
            for _, log_ in self:
                due = waited.get(log_, 0.0) + tick
                elapsed[log_] = due
                if log_.failed is not None or log_ in self._syncing:
                    continue
                policy = log_.config.durability
                if policy is Durability.NEVER:
                    if log_.needs_sync():
                        with contextlib.suppress(StorageError):
                            self._start_sync(log_)
                    continue
                if due * 1000 < log_.config.fsync_interval_ms:
                    continue
                elapsed[log_] = 0.0
                if policy is Durability.INTERVAL or log_.acks_need_sync():
                    with contextlib.suppress(StorageError):
                        self._start_sync(log_, acks=True)

    async def _retention(self) -> None:
        while True:
            await asyncio.sleep(self.retention_check_interval_ms / 1000)
            self.enforce_retention()
            await self.compact_all()

    def enforce_retention(self) -> int:
        deleted = 0
        for name, log_ in self:
            try:
                deleted += log_.enforce_retention()
            except StorageError as exc:
                log.error("retention on %s failed: %s", name, exc)
        return deleted

    async def compact(self, name: str, *, now: int | None = None) -> CompactionResult:
        """Compact one log now (whatever its policy); the reading and writing run on a worker
        thread once the manager is started.  Raises KeyError for an unknown log."""
        log_ = self._logs[name]
        job = log_.begin_compaction(now)
        if job is None:
            return CompactionResult()
        if self._loop is None or self._executor is None:
            return log_.compact_job(job)
        future = self._loop.run_in_executor(self._executor, job.run)
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            # The worker stops at its next group and removes its files; the log forgets the job
            # once the worker is done with the descriptors.
            job.cancelled = True
            future.add_done_callback(lambda _: log_.end_compaction(job, asyncio.CancelledError()))
            raise
        except (OSError, StorageError) as exc:
            log_.end_compaction(job, exc)
            raise StorageError(f"compaction of {name} failed: {exc}") from exc
        return log_.end_compaction(job)

    async def compact_all(self) -> None:
        """Compact every log whose policy includes ``compact`` (errors are logged)."""
        for name, log_ in self:
            if not log_.config.compact:
                continue
            try:
                result = await self.compact(name)
            except (StorageError, KeyError) as exc:
                log.error("compaction of %s failed: %s", name, exc)
                continue
            if result.segments_cleaned:
                log.info(
                    "compacted %s: %d segments, %d records removed, %d -> %d bytes",
                    name,
                    result.segments_cleaned,
                    result.records_removed,
                    result.bytes_before,
                    result.bytes_after,
                )

    async def wait_durable(self, log_: Log, offset: int) -> None:
        """Wait until ``offset`` of ``log_`` is durable; raise the storage error if it never will be."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def done(error: BaseException | None) -> None:
            if _running_loop() is loop:
                _settle(future, error)
            else:  # called on a worker thread: close() closes (and so syncs) the logs there
                loop.call_soon_threadsafe(_settle, future, error)

        log_.when_durable(offset, done)
        await future


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if not future.done():
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


def _close_all(logs: list[Log]) -> None:
    for log_ in logs:
        try:
            log_.close()
        except StorageError as exc:
            log.error("closing %s: %s", log_.directory, exc)
