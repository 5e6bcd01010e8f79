"""Storage-engine benchmark: append and read throughput of :class:`jackalope.storage.Log`.

Run from the repository root::

    .venv/bin/python bench/storage_bench.py [--dir DIR] [--seconds S] [--quick]

Appends go two ways, for 100 B and 1 KiB record values:

* encode + append   ``Log.append(records)``: the log encodes ``Record`` objects into one
                    RecordBatch v2 per call (batches of 1, 100 and 1000 records);
* pre-encoded       ``Log.append_batches(bytearray(encoded))``: a batch of 100 or 1000 records
                    is encoded once before the clock starts, and each append passes a fresh
                    copy (the log assigns offsets in place), as the Kafka produce path does.
                    This is the engine's write path without the Python encoder.

under each durability policy:

* ``never``       a plain synchronous loop of appends and one final ``Log.flush``;
* ``interval``    one task on an asyncio loop (uvloop if importable) appending through a
                  ``LogManager`` and yielding to the loop after each append, as a server would
                  (encode + append only);
* ``always-1``    one task that awaits ``LogManager.wait_durable`` after each append;
* ``always-32``   32 tasks doing the same concurrently, so group commit can share an fsync.

Each case is followed by a raw baseline of the same duration in the same directory:
``os.write`` of the encoded batch over and over, with the same fsync pattern (none for
``never``; ``fdatasync`` every ``fsync_interval_ms`` for ``interval``, after each write for
``always-1``, after each group of N writes for ``always-32``, N being the appends per fsync
Jackalope achieved).  Both ways of appending write the same batch, so they share the baseline
when they need the same pattern.  The ratio column is Jackalope / raw bytes per second.  The
encoder is also timed alone (``encode_batch``, 100 B x 100), as it bounds encode + append.

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
import re
import shutil
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Final

from amqp_load.sysstat import cpu_model, memory_gib
from jackalope.storage import Durability, Log, LogConfig, LogManager, Record
from jackalope.storage.log import AppendInfo, SyncJob
from jackalope.storage.records import encode_batch

VALUE_SIZES: Final = (100, 1024)
BATCHES: Final = (1, 100, 1000)
CONCURRENT_APPENDERS: Final = 32
MODES: Final = ("never", "interval", "always-1", f"always-{CONCURRENT_APPENDERS}")
PRE_ENCODED_BATCHES: Final = (100, 1000)  # pre-encoded: all modes but interval
ENCODE: Final = "encode + append"
PRE_ENCODED: Final = "pre-encoded"
MEMORY_FILESYSTEMS: Final = frozenset({"tmpfs", "ramfs", "devtmpfs"})
MB: Final = 1_000_000

NEVER_TARGET_RPS: Final = 200_000
DURABLE_TARGET_RATIO: Final = 0.5

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
_OCTAL_ESCAPE: Final = re.compile(r"\\([0-7]{3})")


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
        point = _OCTAL_ESCAPE.sub(lambda m: chr(int(m[1], 8)), fields[4])  # spaces come as \040
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best.point):
            best = Mount(point, extra[0], extra[1])
    return best


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


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


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- appends -----------------------------------------------------------------------------------

Append = Callable[[], AppendInfo]  # one append of one batch
Appender = Callable[[Log], Append]  # how a scenario appends to the log it is given


@dataclass
class AppendResult:
    path: str  # ENCODE or PRE_ENCODED
    value_size: int
    batch: int
    mode: str
    appends: int = 0
    nbytes: int = 0
    seconds: float = 1.0
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


def encoding(records: list[Record]) -> Appender:
    """``Log.append(records)``: encode the records into a batch, then append it."""
    return lambda log: partial(log.append, records)


def pre_encoded(encoded: bytes) -> Appender:
    """``Log.append_batches`` of a fresh copy of ``encoded`` (offsets are assigned in place)."""

    def appender(log: Log) -> Append:
        append_batches = log.append_batches
        return lambda: append_batches(bytearray(encoded))

    return appender


def bench_never(directory: Path, result: AppendResult, appender: Appender, seconds: float) -> None:
    log = Log.open(directory, LogConfig(durability=Durability.NEVER))
    try:
        append = appender(log)
        step = max(1, 256 // result.batch)  # appends between clock reads
        appends = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(step):
                append()
            appends += step
            if time.perf_counter() >= deadline:
                break
        log.flush()
        result.seconds = time.perf_counter() - start
        result.appends, result.nbytes = appends, log.size_bytes
    finally:
        log.delete()  # no close(): that would fsync everything just written


async def bench_managed(
    directory: Path, result: AppendResult, appender: Appender, seconds: float, config: LogConfig
) -> None:
    manager = CountingLogManager(directory)
    manager.open()
    log = manager.create("bench", config)
    append = appender(log)
    await manager.start()
    try:
        start = time.perf_counter()
        deadline = start + seconds
        if config.durability is Durability.INTERVAL:
            appends = 0
            while time.perf_counter() < deadline:
                append()
                appends += 1
                await asyncio.sleep(0)  # one append per loop iteration: the manager flushes after each
            log.flush()
        else:

            async def appender_task() -> int:
                n = 0
                while time.perf_counter() < deadline:
                    await manager.wait_durable(log, append().last_offset)
                    n += 1
                return n

            tasks = 1 if result.mode == "always-1" else CONCURRENT_APPENDERS
            appends = sum(await asyncio.gather(*(appender_task() for _ in range(tasks))))
        result.seconds = time.perf_counter() - start
        result.appends, result.nbytes, result.syncs = appends, log.size_bytes, manager.syncs
    finally:
        await manager.close()
        shutil.rmtree(directory, ignore_errors=True)


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


def run_appends(root: Path, seconds: float, runner: asyncio.Runner) -> list[AppendResult]:
    """Every scenario, each followed by its raw baseline; the two paths of one case share a
    baseline when they need the same fsync pattern (the chunk is the same encoded batch)."""
    results: list[AppendResult] = []
    interval = LogConfig(durability=Durability.INTERVAL)
    always = LogConfig(durability=Durability.ALWAYS)
    for value_size in VALUE_SIZES:
        for mode in MODES:
            for batch in BATCHES:
                records = make_records(value_size, batch)
                chunk = bytes(encode_batch(records, now_ms=int(time.time() * 1000)))
                paths = {ENCODE: encoding(records)}
                if batch in PRE_ENCODED_BATCHES and mode != "interval":
                    paths[PRE_ENCODED] = pre_encoded(chunk)
                raw: dict[int, float] = {}  # bytes/s by fsync group (0: no group)
                for i, (path, appender) in enumerate(paths.items()):
                    progress(f"  {path:>15}  {mode:>10}  value {value_size:>5} B  batch {batch:>4} ...")
                    result = AppendResult(path, value_size, batch, mode)
                    where = root / f"{mode}-{value_size}-{batch}-{i}"
                    if mode == "never":
                        bench_never(where, result, appender, seconds)
                        group, result.raw_note = 0, "no fsync"
                    elif mode == "interval":
                        runner.run(bench_managed(where, result, appender, seconds, interval))
                        group, result.raw_note = 0, f"fdatasync every {interval.fsync_interval_ms} ms"
                    else:
                        runner.run(bench_managed(where, result, appender, seconds, always))
                        per_sync = result.appends_per_sync
                        group = max(1, round(per_sync)) if per_sync else CONCURRENT_APPENDERS
                        group = 1 if mode == "always-1" else group
                        result.raw_note = f"fdatasync every {group} write{'s' if group > 1 else ''}"
                    os.sync()  # leave no writeback behind for the next measurement
                    if group not in raw:
                        interval_s = interval.fsync_interval_ms / 1000 if mode == "interval" else 0.0
                        raw[group] = bench_raw(
                            root / "raw", chunk, seconds, group=group, interval_s=interval_s
                        )
                        os.sync()
                    result.raw_bps = raw[group]
                    results.append(result)
    return results


def encoder_rate() -> tuple[float, float]:
    """Records/s and bytes/s of ``encode_batch`` alone, 100 B values in batches of 100 (best of 7)."""
    records = make_records(100, 100)
    encode = partial(encode_batch, records, now_ms=0)
    number = 100
    per_s = number / min(timeit.repeat(encode, number=number, repeat=7))
    return per_s * len(records), per_s * len(encode())


# -- reads -------------------------------------------------------------------------------------


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


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def ratio_line(r: AppendResult, prefix: str) -> str:
    return (
        f"    {prefix:<4}  {size_label(r.value_size):>5} x {r.batch:>4}  {r.mode:<9}  "
        f"{r.bytes_per_s / MB:8,.1f} / {r.raw_bps / MB:8,.1f} MB/s = {r.ratio:.2f}"
    )


def report_targets(results: Sequence[AppendResult], encoder: tuple[float, float]) -> tuple[str, bool]:
    lines = []

    def durable(path: str) -> list[AppendResult]:
        return [r for r in results if r.path == path and r.mode.startswith("always") and r.batch > 1]

    write_path = durable(PRE_ENCODED)
    durable_ok = all(r.ratio >= DURABLE_TARGET_RATIO for r in write_path)
    lines.append(
        f"[{verdict(durable_ok)}] batched durable appends >= {DURABLE_TARGET_RATIO:.0%} of raw sequential "
        "write speed (the write path: pre-encoded batches through Log.append_batches, always-1 and "
        f"always-{CONCURRENT_APPENDERS}, batch 100 and 1000, vs raw with the same fsync pattern)"
    )
    lines.extend(ratio_line(r, verdict(r.ratio >= DURABLE_TARGET_RATIO)) for r in write_path)
    lines.append("  informative, not the target: encode + append (Log.append of Record objects), same cases")
    lines.extend(ratio_line(r, "") for r in durable(ENCODE))
    lines.append(
        "  encode + append is bounded by the pure-Python encoder's CPU cost: encode_batch alone runs "
        f"at {fmt_int(encoder[0])} records/s ({encoder[1] / MB:,.0f} MB/s) for 100 B x 100"
    )

    single = [r for r in results if r.path == ENCODE and r.mode == "never" and r.batch == 1]
    single_ok = all(r.records_per_s >= NEVER_TARGET_RPS for r in single)
    lines.append(
        f"[{verdict(single_ok)}] single-record appends without fsync >= {NEVER_TARGET_RPS:,} records/s "
        "(never, batch 1)"
    )
    for r in single:
        rps = fmt_int(r.records_per_s)
        ok = r.records_per_s >= NEVER_TARGET_RPS
        lines.append(
            f"    {verdict(ok)}  {size_label(r.value_size):>5} x    1  never      {rps:>9} records/s"
        )
    return "\n".join(lines), durable_ok and single_ok


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
    parser.add_argument("--quick", action="store_true", help="0.2 s scenarios, 8 MB read log")
    parser.add_argument("--read-mb", type=int, default=None, help="size of the log read back (default 64 MB)")
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 0.2 if args.quick else 2.0
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
        ("memory", memory_gib()),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("bench dir", f"{root} ({mount.fstype} on {mount.source}, mounted at {mount.point})"),
        ("python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("uvloop", uvloop_label),
        ("seconds", f"{args.seconds:g} per scenario and per raw baseline"),
    ]
    if mount.fstype in MEMORY_FILESYSTEMS:
        progress(f"warning: {parent} is on {mount.fstype}: fsync is free there; these are not disk figures")

    started = time.perf_counter()
    busy0, own0 = busy_cpu_seconds(), own_cpu_seconds()
    try:
        progress("encoder alone ...")
        encoder = encoder_rate()
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            progress("appends:")
            appends = run_appends(root, args.seconds, runner)
        progress("reads:")
        reads = []
        for value_size in VALUE_SIZES:
            progress(f"  value {value_size:>5} B ...")
            reads.extend(bench_reads(root, value_size, args.seconds, args.read_mb * MB))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    total = time.perf_counter() - started
    other = max(0.0, (busy_cpu_seconds() - busy0) - (own_cpu_seconds() - own0)) / total
    machine.append(
        ("other load", f"{other:.2f} cores busy outside this process on average (kernel included)")
    )

    width = max(len(k) for k, _ in machine)
    print("Jackalope storage benchmark")
    print()
    for key, value in machine:
        print(f"{key.ljust(width)}  {value}")
    for path, title in (
        (ENCODE, "Appends of Record objects: encode + append (Log.append encodes each batch in Python)"),
        (
            PRE_ENCODED,
            "Appends of pre-encoded batches: the write path (Log.append_batches, as Kafka produce)",
        ),
    ):
        print()
        print(title)
        print("(MB/s: encoded batch bytes written; ratio: Jackalope / raw os.write, same fsync pattern)")
        print()
        print(report_appends([r for r in appends if r.path == path]))
    print()
    print("Sequential reads of a whole log (batches of 100 records; page cache hot)")
    print()
    print(report_reads(reads))
    print()
    print("Targets")
    print()
    text, all_pass = report_targets(appends, encoder)
    print(text)
    print()
    print(f"total time {total:.0f} s")
    return 0 if all_pass else 1


if __name__ == "__main__":
    sys.exit(main())
