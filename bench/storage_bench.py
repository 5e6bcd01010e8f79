"""Storage-engine benchmark: append and read throughput of :class:`jackalope.storage.Log`.

Run from the repository root::

    .venv/bin/python bench/storage_bench.py [--dir DIR] [--seconds S] [--quick]

For 100 B and 1 KiB record values, in batches of 1, 100 and 1000 records per ``append``, it
measures appends under each durability policy:

* ``never``       a plain synchronous loop of ``Log.append`` and one final ``Log.flush``;
* ``interval``    one task on an asyncio loop (uvloop if importable) appending through a
                  ``LogManager`` and yielding to the loop after each append, as a server would;
* ``always-1``    one task that awaits ``LogManager.wait_durable`` after each append;
* ``always-32``   32 tasks doing the same concurrently, so group commit can share an fsync.

Each append scenario is followed by a raw baseline of the same duration in the same
directory: ``os.write`` of chunks the size of one encoded append batch (the batch itself),
with the same fsync pattern (none for ``never``; ``fdatasync`` every ``fsync_interval_ms``
for ``interval``, after each chunk for ``always-1``, after each group of N chunks for
``always-32``, N being the appends per fsync Jackalope achieved).  The ratio column is Jackalope / raw bytes per second.

Reads go through one whole log (batches of 100 records) sequentially, as raw batches with
``Log.read`` and as decoded records with ``Log.read_records``.  The log was just written, so
reads come from the page cache: they measure the engine's CPU cost, not the disk.

MB is 10**6 bytes; MB/s counts the bytes written to the segment files (encoded batches,
headers and framing included), which is also what the raw baseline writes.  Every scenario
deletes its files and calls ``sync`` before the next starts; the scratch directory is removed
at the end.  The exit status is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from jackalope.storage import Durability, Log, LogConfig, LogManager, Record
from jackalope.storage.log import SyncJob
from jackalope.storage.records import encode_batch

VALUE_SIZES: Final = (100, 1024)
BATCHES: Final = (1, 100, 1000)
CONCURRENT_APPENDERS: Final = 32
MODES: Final = ("never", "interval", "always-1", f"always-{CONCURRENT_APPENDERS}")
MEMORY_FILESYSTEMS: Final = frozenset({"tmpfs", "ramfs", "devtmpfs"})
MB: Final = 1_000_000

NEVER_TARGET_RPS: Final = 200_000
DURABLE_TARGET_RATIO: Final = 0.5

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


# -- the machine -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    point: str
    fstype: str
    source: str


def mount_of(path: Path) -> Mount:
    """The mount holding ``path`` (longest mount-point prefix in /proc/self/mountinfo)."""
    target = os.path.realpath(path)
    best = Mount("", "unknown", "unknown")
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return best
    for line in lines:
        left, _, right = line.partition(" - ")
        fields = left.split()
        extra = right.split()
        if len(fields) < 5 or len(extra) < 2:
            continue
        point = fields[4].encode().decode("unicode_escape")  # mountinfo escapes spaces as \040
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best.point):
            best = Mount(point, extra[0], extra[1])
    return best


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gb() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.0f} GiB"
    except (OSError, ValueError):
        pass
    return "unknown"


def default_parent() -> Path:
    """Where the bench directory goes by default: the system temp directory when it shares
    the current directory's file system (and is not in memory), else the current directory."""
    cwd = Path.cwd()
    tmp = Path(tempfile.gettempdir())
    try:
        same_fs = os.stat(tmp).st_dev == os.stat(cwd).st_dev
    except OSError:
        same_fs = False
    if same_fs and mount_of(tmp).fstype not in MEMORY_FILESYSTEMS:
        return tmp
    return cwd


def pick_loop() -> tuple[LoopFactory, str]:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop, "no (asyncio default loop)"
    return uvloop.new_event_loop, f"yes (uvloop {importlib.metadata.version('uvloop')})"


# -- results -----------------------------------------------------------------------------------


@dataclass
class AppendResult:
    value_size: int
    batch: int
    mode: str
    appends: int
    nbytes: int
    seconds: float
    syncs: int | None = None
    raw_bps: float = 0.0
    raw_note: str = ""

    @property
    def records_per_s(self) -> float:
        return self.appends * self.batch / self.seconds

    @property
    def bytes_per_s(self) -> float:
        return self.nbytes / self.seconds

    @property
    def appends_per_sync(self) -> float | None:
        return self.appends / self.syncs if self.syncs else None

    @property
    def ratio(self) -> float:
        return self.bytes_per_s / self.raw_bps if self.raw_bps else 0.0


@dataclass
class ReadBench:
    value_size: int
    method: str
    records: int
    nbytes: int
    seconds: float
    log_bytes: int
    log_records: int

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds

    @property
    def bytes_per_s(self) -> float:
        return self.nbytes / self.seconds


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- appends -----------------------------------------------------------------------------------


class CountingLogManager(LogManager):
    """A LogManager that counts completed fsync jobs (group commits and interval syncs)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.syncs = 0

    def _sync_done(self, log_: Log, job: SyncJob, future: Future[None]) -> None:
        self.syncs += 1
        super()._sync_done(log_, job, future)


def make_records(value_size: int, batch: int) -> list[Record]:
    value = os.urandom(value_size)
    return [Record(value) for _ in range(batch)]


def bench_never(directory: Path, records: Sequence[Record], seconds: float) -> AppendResult:
    log = Log.open(directory, LogConfig(durability=Durability.NEVER))
    try:
        append = log.append
        step = max(1, 256 // len(records))  # appends between clock reads
        appends = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(step):
                append(records)
            appends += step
            if time.perf_counter() >= deadline:
                break
        log.flush()
        elapsed = time.perf_counter() - start
        nbytes = log.size_bytes
    finally:
        log.delete()  # no close(): that would fsync everything just written
    return AppendResult(len(records[0].value or b""), len(records), "never", appends, nbytes, elapsed)


async def bench_managed(
    directory: Path, records: Sequence[Record], seconds: float, mode: str, config: LogConfig
) -> AppendResult:
    manager = CountingLogManager(directory)
    manager.open()
    log = manager.create("bench", config)
    await manager.start()
    try:
        start = time.perf_counter()
        deadline = start + seconds
        if config.durability is Durability.INTERVAL:
            appends = 0
            while time.perf_counter() < deadline:
                log.append(records)
                appends += 1
                await asyncio.sleep(0)  # one append per loop iteration: the manager flushes after each
            log.flush()
        else:
            tasks = CONCURRENT_APPENDERS if mode != "always-1" else 1

            async def appender() -> int:
                n = 0
                while time.perf_counter() < deadline:
                    info = log.append(records)
                    await manager.wait_durable(log, info.last_offset)
                    n += 1
                return n

            appends = sum(await asyncio.gather(*(appender() for _ in range(tasks))))
        elapsed = time.perf_counter() - start
        nbytes = log.size_bytes
        syncs = manager.syncs
    finally:
        await manager.close()
        shutil.rmtree(directory, ignore_errors=True)
    value_size = len(records[0].value or b"")
    return AppendResult(value_size, len(records), mode, appends, nbytes, elapsed, syncs)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def bench_raw(path: Path, chunk: bytes, seconds: float, *, group: int = 0, interval_s: float = 0.0) -> float:
    """Bytes/s of sequential ``os.write`` of ``chunk``: ``fdatasync`` after every ``group``
    writes if ``group``, or every ``interval_s`` if ``interval_s``, else never."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        step = group or max(1, 65536 // len(chunk))
        writes = 0
        start = last_sync = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(step):
                write_all(fd, chunk)
            writes += step
            now = time.perf_counter()
            if group:
                os.fdatasync(fd)
            elif interval_s and now - last_sync >= interval_s:
                os.fdatasync(fd)
                last_sync = now
            if now >= deadline:
                break
        elapsed = time.perf_counter() - start
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return writes * len(chunk) / elapsed


def run_appends(root: Path, seconds: float, raw_seconds: float, runner: asyncio.Runner) -> list[AppendResult]:
    results: list[AppendResult] = []
    interval_config = LogConfig(durability=Durability.INTERVAL)
    interval_s = interval_config.fsync_interval_ms / 1000
    for value_size in VALUE_SIZES:
        for mode in MODES:
            for batch in BATCHES:
                records = make_records(value_size, batch)
                chunk = bytes(encode_batch(records, now_ms=int(time.time() * 1000)))
                where = root / f"{mode}-{value_size}-{batch}"
                progress(f"  {mode:>10}  value {value_size:>5} B  batch {batch:>4} ...")
                if mode == "never":
                    result = bench_never(where, records, seconds)
                    result.raw_bps = bench_raw(root / "raw", chunk, raw_seconds)
                    result.raw_note = "no fsync"
                elif mode == "interval":
                    result = runner.run(bench_managed(where, records, seconds, mode, interval_config))
                    result.raw_bps = bench_raw(root / "raw", chunk, raw_seconds, interval_s=interval_s)
                    result.raw_note = f"fdatasync every {interval_config.fsync_interval_ms} ms"
                else:
                    config = LogConfig(durability=Durability.ALWAYS)
                    result = runner.run(bench_managed(where, records, seconds, mode, config))
                    if mode == "always-1":
                        group = 1
                    else:
                        per_sync = result.appends_per_sync
                        group = max(1, round(per_sync)) if per_sync else CONCURRENT_APPENDERS
                    result.raw_bps = bench_raw(root / "raw", chunk, raw_seconds, group=group)
                    result.raw_note = f"fdatasync every {group} write{'s' if group > 1 else ''}"
                results.append(result)
                os.sync()  # leave no writeback behind for the next scenario
    return results


# -- reads -------------------------------------------------------------------------------------


def build_log(directory: Path, value_size: int, target_bytes: int, max_seconds: float) -> Log:
    log = Log.open(directory, LogConfig(durability=Durability.NEVER))
    records = make_records(value_size, 100)
    deadline = time.perf_counter() + max_seconds
    while log.size_bytes < target_bytes and time.perf_counter() < deadline:
        for _ in range(16):
            log.append(records)
    log.flush()
    return log


def bench_reads(root: Path, value_size: int, seconds: float, target_bytes: int) -> list[ReadBench]:
    directory = root / f"read-{value_size}"
    log = build_log(directory, value_size, target_bytes, max(seconds * 3, 2.0))
    try:
        log_bytes = log.size_bytes
        log_records = log.end_offset - log.start_offset
        bytes_per_record = log_bytes / log_records
        results = []

        offset = log.start_offset
        nbytes = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:  # whole passes over the log until the time is up
            chunk = log.read(offset)
            nbytes += len(chunk.data)
            offset = chunk.next_offset
            if offset >= log.end_offset:
                offset = log.start_offset
                if time.perf_counter() >= deadline:
                    break
        elapsed = time.perf_counter() - start
        records = round(nbytes / bytes_per_record)
        results.append(ReadBench(value_size, "read", records, nbytes, elapsed, log_bytes, log_records))

        offset = log.start_offset
        count = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:  # may stop mid-pass: decoding a whole log can take longer than ``seconds``
            batch = log.read_records(offset)
            count += len(batch)
            offset = batch[-1].offset + 1
            if offset >= log.end_offset:
                offset = log.start_offset
            if time.perf_counter() >= deadline:
                break
        elapsed = time.perf_counter() - start
        nbytes = round(count * bytes_per_record)
        results.append(ReadBench(value_size, "read_records", count, nbytes, elapsed, log_bytes, log_records))
        return results
    finally:
        log.delete()
        os.sync()


# -- report ------------------------------------------------------------------------------------


def fmt_int(x: float) -> str:
    return f"{x:,.0f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """Columns left-aligned for the first ``left`` columns and right-aligned after."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    out.extend(line(r) for r in rows)
    return "\n".join(out)


def size_label(n: int) -> str:
    return f"{n} B" if n < 1024 else f"{n // 1024} KiB"


def report_appends(results: Sequence[AppendResult]) -> str:
    header = ["value", "batch", "policy", "records/s", "MB/s", "appends/fsync", "raw MB/s", "ratio"]
    header.append("raw pattern")
    rows = []
    for r in results:
        per_sync = r.appends_per_sync
        rows.append(
            [
                size_label(r.value_size),
                str(r.batch),
                r.mode,
                fmt_int(r.records_per_s),
                f"{r.bytes_per_s / MB:,.1f}",
                "-"
                if per_sync is None or r.mode == "never"
                else f"{per_sync:,.{1 if per_sync < 100 else 0}f}",
                f"{r.raw_bps / MB:,.1f}",
                f"{r.ratio:.2f}",
                r.raw_note,
            ]
        )
    return table(header, rows, left=3)


def report_reads(results: Sequence[ReadBench]) -> str:
    header = ["value", "method", "records/s", "MB/s", "log size"]
    rows = [
        [
            size_label(r.value_size),
            r.method,
            fmt_int(r.records_per_s),
            f"{r.bytes_per_s / MB:,.1f}",
            f"{r.log_bytes / MB:,.0f} MB, {r.log_records:,} records",
        ]
        for r in results
    ]
    return table(header, rows, left=2)


def report_targets(results: Sequence[AppendResult]) -> tuple[str, bool]:
    lines = []
    all_pass = True

    durable = [r for r in results if r.mode.startswith("always") and r.batch in (100, 1000)]
    ok = all(r.ratio >= DURABLE_TARGET_RATIO for r in durable)
    all_pass &= ok
    lines.append(
        f"[{'PASS' if ok else 'FAIL'}] batched durable appends >= {DURABLE_TARGET_RATIO:.0%} of raw "
        "sequential write speed (always, batch 100 and 1000, vs raw with the same fsync pattern)"
    )
    for r in durable:
        verdict = "PASS" if r.ratio >= DURABLE_TARGET_RATIO else "FAIL"
        lines.append(
            f"    {verdict}  {size_label(r.value_size):>5} x {r.batch:>4}  {r.mode:<9}  "
            f"{r.bytes_per_s / MB:8,.1f} / {r.raw_bps / MB:8,.1f} MB/s = {r.ratio:.2f}"
        )

    single = [r for r in results if r.mode == "never" and r.batch == 1]
    ok = all(r.records_per_s >= NEVER_TARGET_RPS for r in single)
    all_pass &= ok
    lines.append(
        f"[{'PASS' if ok else 'FAIL'}] single-record appends without fsync >= {NEVER_TARGET_RPS:,} records/s "
        "(never, batch 1)"
    )
    for r in single:
        verdict = "PASS" if r.records_per_s >= NEVER_TARGET_RPS else "FAIL"
        rps = fmt_int(r.records_per_s)
        lines.append(f"    {verdict}  {size_label(r.value_size):>5} x    1  never      {rps:>9} records/s")
    return "\n".join(lines), all_pass


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="parent of the scratch directory (default: the system temp directory if it is on the "
        "current directory's file system and not tmpfs, else the current directory)",
    )
    parser.add_argument("--seconds", type=float, default=None, help="duration of each scenario (default 2)")
    parser.add_argument("--quick", action="store_true", help="0.25 s scenarios, 8 MB read log")
    parser.add_argument("--read-mb", type=int, default=None, help="size of the log read back (default 64 MB)")
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 0.25 if args.quick else 2.0
    if args.read_mb is None:
        args.read_mb = 8 if args.quick else 64
    if args.seconds <= 0 or args.read_mb <= 0:
        parser.error("--seconds and --read-mb must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    parent: Path = args.dir if args.dir is not None else default_parent()
    parent.mkdir(parents=True, exist_ok=True)
    mount = mount_of(parent)
    loop_factory, uvloop_label = pick_loop()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    root = Path(tempfile.mkdtemp(prefix="jackalope-storage-bench-", dir=parent))
    machine = [
        ("CPU", cpu_model()),
        ("cores", f"{cpus} usable of {os.cpu_count()}"),
        ("memory", memory_gb()),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("bench dir", f"{root} ({mount.fstype} on {mount.source}, mounted at {mount.point})"),
        ("python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("uvloop", uvloop_label),
        ("seconds", f"{args.seconds:g} per scenario and per raw baseline"),
    ]
    if mount.fstype in MEMORY_FILESYSTEMS:
        progress(f"warning: {parent} is on {mount.fstype}: fsync is free there; these are not disk figures")

    started = time.perf_counter()
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            progress("appends:")
            appends = run_appends(root, args.seconds, args.seconds, runner)
        progress("reads:")
        reads = []
        for value_size in VALUE_SIZES:
            progress(f"  value {value_size:>5} B ...")
            reads.extend(bench_reads(root, value_size, args.seconds, args.read_mb * MB))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    total = time.perf_counter() - started

    width = max(len(k) for k, _ in machine)
    print("Jackalope storage benchmark")
    print()
    for key, value in machine:
        print(f"{key.ljust(width)}  {value}")
    print()
    print("Appends (MB/s: encoded batch bytes written; ratio: Jackalope / raw os.write, same fsync pattern)")
    print()
    print(report_appends(appends))
    print()
    print("Sequential reads of a whole log (batches of 100 records; page cache hot)")
    print()
    print(report_reads(reads))
    print()
    print("Targets")
    print()
    text, all_pass = report_targets(appends)
    print(text)
    print()
    print(f"total time {total:.0f} s")
    return 0 if all_pass else 1


if __name__ == "__main__":
    sys.exit(main())
