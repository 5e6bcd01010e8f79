"""Real processes: SIGKILL in the middle of durable appends, and writes failing with EFBIG."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from storage_helpers import read_all

from jackalope.storage import Log, LogConfig, LogManager

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and rlimits")

GUARD = 60.0  # seconds: a hang guard for the child, not a timing assertion

# -- SIGKILL during group commit ------------------------------------------------------------------

CRASH_CHILD = r"""
import asyncio, os, sys
from pathlib import Path
from jackalope.storage import Durability, LogConfig, LogManager, Record

async def main(directory):
    manager = LogManager(Path(directory), LogConfig(durability=Durability.ALWAYS, segment_bytes=16384))
    manager.open()
    await manager.start()
    log = manager.get_or_create("crash")
    print("ready", log.end_offset, flush=True)

    async def appender(worker):
        n = 0
        while True:
            values = [os.urandom(4 + (worker * 37 + n * 11 + i) % 300) for i in range(1 + n % 3)]
            info = log.append([Record(v, key=b"w%d" % worker) for v in values])
            if n % 4 == worker % 4:
                await asyncio.sleep(0)  # some appends land while a sync is in flight
            await manager.wait_durable(log, info.last_offset)
            lines = "".join(f"durable {info.base_offset + i} {v.hex()}\n" for i, v in enumerate(values))
            sys.stdout.write(lines)
            sys.stdout.flush()
            n += 1

    await asyncio.gather(*(appender(w) for w in range(8)))

asyncio.run(main(sys.argv[1]))
"""


class Child:
    """A child Python process whose stdout is read line by line, with a deadline."""

    def __init__(self, script: str, *args: str, stderr: Path) -> None:
        self._stderr = stderr
        self._err = stderr.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=self._err
        )
        assert self.proc.stdout is not None
        self._fd = self.proc.stdout.fileno()
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._fd, selectors.EVENT_READ)

    def lines(self, deadline: float) -> list[str]:
        """Complete lines available now (waiting for some until ``deadline``); [] at EOF."""
        while True:
            if b"\n" in self._buffer:
                done, _, self._buffer = self._buffer.rpartition(b"\n")
                return done.decode().split("\n")
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise AssertionError(f"child stalled; stderr:\n{self.stderr()}")
            if not self._selector.select(left):
                continue
            chunk = os.read(self._fd, 1 << 16)
            if not chunk:
                return []
            self._buffer += chunk

    def rest(self) -> list[str]:
        """Every complete line left in the pipe (after the child died)."""
        out = []
        while chunk := os.read(self._fd, 1 << 16):
            self._buffer += chunk
        while b"\n" in self._buffer:
            line, _, self._buffer = self._buffer.partition(b"\n")
            out.append(line.decode())
        return out  # a torn last line (no newline) is not a report

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stderr(self) -> str:
        self._err.flush()
        return self._stderr.read_text(errors="replace")[-4000:]

    def close(self) -> None:
        self.kill()
        self._selector.close()
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self._err.close()


def _parse(lines: list[str], into: dict[int, bytes]) -> None:
    for line in lines:
        if line.startswith("durable "):
            _, offset, value = line.split(" ")
            assert int(offset) not in into, f"offset {offset} confirmed twice"
            into[int(offset)] = bytes.fromhex(value)


@pytest.mark.parametrize("kill_after", [300])
def test_sigkill_keeps_every_confirmed_append(tmp_path: Path, kill_after: int) -> None:
    data = tmp_path / "data"
    confirmed: dict[int, bytes] = {}
    for round_ in range(2):  # the second round crashes a log that was already recovered once
        child = Child(CRASH_CHILD, str(data), stderr=tmp_path / f"stderr-{round_}.txt")
        try:
            deadline = time.monotonic() + GUARD
            first = child.lines(deadline)
            assert first and first[0].startswith("ready"), child.stderr()
            start_end = int(first[0].split()[1])
            assert start_end >= len(confirmed)
            round_confirmed: dict[int, bytes] = {}
            _parse(first[1:], round_confirmed)
            while len(round_confirmed) < kill_after:
                lines = child.lines(deadline)
                assert lines, f"child exited early; stderr:\n{child.stderr()}"
                _parse(lines, round_confirmed)
            child.kill()  # SIGKILL, with the appenders' next batches in flight
            assert child.proc.returncode == -signal.SIGKILL
            _parse(child.rest(), round_confirmed)  # confirmed before the kill, read after it
        finally:
            child.close()
        assert all(offset >= start_end for offset in round_confirmed)
        confirmed.update(round_confirmed)

        manager = LogManager(data)
        manager.open()
        log = manager.get("crash")
        assert log is not None
        try:
            stored = read_all(log)  # readable end to end, every batch CRC-checked
            assert [r.offset for r in stored] == list(range(log.start_offset, log.end_offset))
            by_offset = {r.offset: r.value for r in stored}
            lost = [o for o, v in confirmed.items() if by_offset.get(o) != v]
            assert not lost, f"round {round_}: confirmed offsets lost or changed: {sorted(lost)[:10]}"
            assert log.end_offset >= max(confirmed) + 1
        finally:
            manager.close_sync()


# -- writes failing with EFBIG --------------------------------------------------------------------

EFBIG_CHILD = r"""
import asyncio, json, os, resource, signal, sys
from pathlib import Path
from jackalope.storage import Durability, Log, LogConfig, LogManager, Record, StorageError

LIMIT = int(sys.argv[2])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))
directory = Path(sys.argv[1])
report = {}

def value(n):
    return b"%06d" % n * 50  # 300 bytes

def outcome(fn):
    try:
        fn()
        return "ok"
    except StorageError as exc:
        return "StorageError"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"

def waiters(log, first, last, into):
    for offset in range(first, last + 1):
        log.when_durable(offset, lambda e, o=offset: into.append([o, type(e).__name__ if e else None]))

def snapshot(log):
    return {
        "start": log.start_offset, "durable": log.durable_offset,
        "flushed": log.flushed_offset, "end": log.end_offset,
        "records": [r.value.decode()[:6] for r in log.read_records(log.start_offset, 1 << 30)]
                   if log.end_offset > log.start_offset else [],
    }

# 1. Synchronous API: fill close to the limit durably, then overflow it three ways.
log = Log.open(directory / "sync", LogConfig(durability=Durability.ALWAYS))
n = 0
while log.size_bytes < LIMIT - 3000:
    log.append([Record(value(n))]); n += 1
log.sync()
report["durable_before"] = log.durable_offset

for how in ("flush", "sync", "read", "truncate_prefix"):
    first = log.end_offset
    for _ in range(15):  # 15 x ~370 bytes: past the limit, but within one write buffer
        log.append([Record(value(n))]); n += 1
    calls = []
    waiters(log, first, log.end_offset - 1, calls)
    if how == "flush":
        result = outcome(log.flush)
    elif how == "sync":
        result = outcome(log.sync)
    elif how == "read":
        result = outcome(lambda: log.read_records(first))
    else:
        result = outcome(lambda: log.truncate_prefix(log.end_offset))
    after = snapshot(log)
    later = outcome(log.sync)  # must not claim the lost appends are durable now
    report[how] = {"result": result, "after": after, "waiters": calls, "later_sync": later,
                   "after_sync": snapshot(log)}
report["file_size"] = os.path.getsize(directory / "sync" / "00000000000000000000.log")
log.close()

# 2. LogManager under group commit: concurrent appenders until the disk is "full".
async def manager_run():
    manager = LogManager(directory / "managed", LogConfig(durability=Durability.ALWAYS))
    manager.open()
    await manager.start()
    log = manager.create("m")
    confirmed, failed = [], []

    async def appender(worker):
        for i in range(10_000):
            info = log.append([Record(b"%d-%d " % (worker, i) * 20)])
            try:
                await manager.wait_durable(log, info.last_offset)
            except StorageError:
                failed.append(info.last_offset)
                return
            confirmed.append(info.last_offset)

    await asyncio.wait_for(asyncio.gather(*(appender(w) for w in range(6))), 60)
    report["managed"] = {"confirmed": confirmed, "failed": failed, "end": log.end_offset,
                         "durable": log.durable_offset, "failed_state": repr(log.failed)}
    await manager.close()

asyncio.run(manager_run())
print(json.dumps(report))
"""


def test_write_failures_fail_their_waiters_and_keep_what_was_durable(tmp_path: Path) -> None:
    limit = 48 * 1024
    data = tmp_path / "data"
    child = Child(EFBIG_CHILD, str(data), str(limit), stderr=tmp_path / "stderr.txt")
    try:
        out: list[str] = []
        deadline = time.monotonic() + GUARD
        while lines := child.lines(deadline):
            out += lines
        assert child.proc.wait(GUARD) == 0, child.stderr()
    finally:
        child.close()
    assert out, child.stderr()
    report = json.loads(out[-1])
    durable_before = report["durable_before"]
    assert durable_before > 50

    for how in ("flush", "sync", "read", "truncate_prefix"):
        case = report[how]
        assert case["result"] == "StorageError", (how, case["result"])
        after = case["after"]
        # The unflushed tail is gone, and the log says so: nothing past what the file holds.
        assert after["end"] == after["flushed"] == after["durable"] == durable_before, (how, after)
        assert after["start"] <= after["end"], (how, after)
        assert len(after["records"]) == after["end"] - after["start"]
        # Every waiter of a lost append heard the error, none was told it is durable.
        assert len(case["waiters"]) == 15, (how, case["waiters"])
        assert all(error == "StorageError" for _, error in case["waiters"]), (how, case["waiters"])
        assert case["later_sync"] == "ok"
        assert case["after_sync"]["end"] == durable_before, (how, case["after_sync"])
    assert report["file_size"] <= limit

    managed = report["managed"]
    assert managed["confirmed"], managed
    assert managed["failed"], managed
    assert set(managed["confirmed"]).isdisjoint(managed["failed"])
    assert managed["durable"] == managed["end"] > max(managed["confirmed"])

    # Reopened without the limit (an unclean-looking disk: a full disk, then a restart).
    log = Log.open(data / "sync", LogConfig())
    stored = read_all(log)
    assert [r.offset for r in stored] == list(range(durable_before))
    assert [r.value[:6] for r in stored if r.value] == [b"%06d" % i for i in range(durable_before)]
    log.close()
    manager = LogManager(data / "managed")
    manager.open()
    log_m = manager.get("m")
    assert log_m is not None
    stored_offsets = {r.offset for r in read_all(log_m)}
    assert set(managed["confirmed"]) <= stored_offsets
    assert log_m.end_offset == managed["end"]
    manager.close_sync()
