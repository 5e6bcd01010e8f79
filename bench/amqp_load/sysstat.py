"""CPU accounting from /proc, and a description of the machine."""

from __future__ import annotations

import itertools
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[float, int] | None:
    """(user + system CPU seconds used so far, parent pid) of process ``pid``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / _TICK, int(fields[1])


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds used so far by process ``pid`` (all its threads)."""
    st = _stat(pid)
    return None if st is None else st[0]


def machine_busy_seconds() -> float:
    """CPU seconds all cores together have spent busy since boot (idle and iowait excluded)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])  # guest time is already counted in user
    return (total - idle) / _TICK


def listener_pid(port: int) -> int | None:
    """The process that owns the listening TCP socket on ``port``, if this user may see it."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(entry.name)
        except OSError:
            continue
    return None


def process_rss_bytes(pid: int) -> int | None:
    """Resident set size of process ``pid`` in bytes (``VmRSS`` of /proc/<pid>/status)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass(frozen=True)
class ProcSample:
    t: float  # time.monotonic() of the sample
    rss: int | None  # bytes
    cpu: float | None  # user + system CPU seconds used so far


class ProcessSampler:
    """RSS and CPU time of one process, sampled by the caller's loop.

    :meth:`start` sets a grid of sampling times ``t0, t0 + interval, ...``; :meth:`at` adds
    exact times (the end of a measurement window, say).  The caller calls :meth:`poll` whenever
    it wakes and sleeps no longer than :meth:`next_due`.  CPU times come from /proc in clock
    ticks (10 ms), so one 100 ms interval resolves about a tenth of a core.
    """

    def __init__(self, pid: int | None, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[ProcSample] = []
        self._t0 = 0.0
        self._k = 0
        self._extra: list[float] = []

    def start(self, t0: float) -> None:
        self._t0, self._k = t0, 0

    def at(self, *times: float) -> None:
        self._extra = sorted([*self._extra, *times])

    def next_due(self) -> float:
        grid = self._t0 + self._k * self.interval
        return min(grid, self._extra[0]) if self._extra else grid

    def poll(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if now < self.next_due():
            return
        self.sample(now)
        while self._t0 + self._k * self.interval <= now:
            self._k += 1
        while self._extra and self._extra[0] <= now:
            self._extra.pop(0)

    def sample(self, now: float | None = None) -> ProcSample:
        if self.pid is None:
            smp = ProcSample(time.monotonic() if now is None else now, None, None)
        else:
            rss = process_rss_bytes(self.pid)
            cpu = process_cpu_seconds(self.pid)
            smp = ProcSample(time.monotonic() if now is None else now, rss, cpu)
        self.samples.append(smp)
        return smp

    def between(self, t0: float, t1: float) -> list[ProcSample]:
        return [s for s in self.samples if t0 <= s.t <= t1]

    def nearest(self, t: float) -> ProcSample | None:
        return min(self.samples, key=lambda s: abs(s.t - t), default=None)

    def peak_rss(self, t0: float, t1: float) -> int | None:
        values = [s.rss for s in self.between(t0, t1) if s.rss is not None]
        return max(values) if values else None

    def rss_at(self, t: float) -> int | None:
        smp = self.nearest(t)
        return None if smp is None else smp.rss

    def cores(self, t0: float, t1: float) -> float | None:
        """Mean CPU use between the samples nearest to ``t0`` and ``t1``, in cores."""
        a, b = self.nearest(t0), self.nearest(t1)
        if a is None or b is None or a.cpu is None or b.cpu is None or b.t <= a.t:
            return None
        return (b.cpu - a.cpu) / (b.t - a.t)

    def peak_cores(self, t0: float, t1: float) -> float | None:
        """The highest CPU use over one sampling interval inside [t0, t1], in cores."""
        points = [(s.t, s.cpu) for s in self.between(t0, t1) if s.cpu is not None]
        rates = [
            (cpu1 - cpu0) / (ta1 - ta0)
            for (ta0, cpu0), (ta1, cpu1) in itertools.pairwise(points)
            if ta1 - ta0 >= self.interval / 2
        ]
        return max(rates) if rates else None


def tcp_queues(local_port: int, remote_port: int) -> tuple[int, int] | None:
    """(send queue, receive queue) in bytes of the established TCP socket from ``local_port`` to
    ``remote_port`` on this host (/proc/net/tcp and tcp6: tx_queue is written but not yet
    acknowledged by the peer, rx_queue is received but not yet read by the socket's owner);
    None when there is no such socket in this network namespace."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if (
                len(fields) > 4
                and fields[3] == "01"  # ESTABLISHED
                and int(fields[1].rsplit(":", 1)[1], 16) == local_port
                and int(fields[2].rsplit(":", 1)[1], 16) == remote_port
            ):
                tx, rx = fields[4].split(":")
                return int(tx, 16), int(rx, 16)
    return None


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def all_process_cpu_seconds() -> dict[int, tuple[float, bool]]:
    """CPU seconds used so far by every process this user may see, and whether it is a kernel
    thread (kthreadd and its children: block-layer and writeback workers, ksoftirqd, ...)."""
    out: dict[int, tuple[float, bool]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            pid = int(entry.name)
            st = _stat(pid)
            if st is not None:
                out[pid] = (st[0], pid == 2 or st[1] == 2)
    return out


def _others(
    before: dict[int, tuple[float, bool]], after: dict[int, tuple[float, bool]], skip: set[int]
) -> tuple[float, float]:
    """CPU seconds used between two snapshots by (user processes, kernel threads) not in skip."""
    user = kernel = 0.0
    for pid, (seconds, kthread) in after.items():
        if pid in skip:
            continue
        used = seconds - before.get(pid, (0.0, kthread))[0]
        if kthread:
            kernel += used
        else:
            user += used
    return user, kernel


def other_load(skip: set[int], interval: float) -> float:
    """Cores used by user processes not in ``skip`` over the next ``interval`` seconds."""
    before = all_process_cpu_seconds()
    t0 = time.monotonic()
    time.sleep(interval)
    after = all_process_cpu_seconds()
    return _others(before, after, skip)[0] / max(time.monotonic() - t0, 1e-9)


@dataclass
class CpuWindow:
    """CPU used between start() and stop(), in cores (CPU seconds / wall seconds): by the broker
    process, by the other user processes and by kernel threads (the ``exclude`` processes, the
    generator's, are left out), and by the whole machine (interrupt work included)."""

    broker_pid: int | None
    exclude: set[int] = field(default_factory=set)
    _t0: float = 0.0
    _broker0: float | None = None
    _machine0: float = 0.0
    _procs0: dict[int, tuple[float, bool]] = field(default_factory=dict)
    broker_cores: float | None = None
    others_cores: float = 0.0
    kernel_cores: float = 0.0
    machine_cores: float = 0.0

    def start(self, now: float) -> None:
        self._t0 = now
        self._broker0 = process_cpu_seconds(self.broker_pid) if self.broker_pid else None
        self._machine0 = machine_busy_seconds()
        self._procs0 = all_process_cpu_seconds()

    def stop(self, now: float) -> None:
        wall = max(now - self._t0, 1e-9)
        if self.broker_pid and self._broker0 is not None:
            broker1 = process_cpu_seconds(self.broker_pid)
            self.broker_cores = None if broker1 is None else (broker1 - self._broker0) / wall
        self.machine_cores = (machine_busy_seconds() - self._machine0) / wall
        skip = self.exclude | {self.broker_pid or 0}
        user, kernel = _others(self._procs0, all_process_cpu_seconds(), skip)
        self.others_cores = user / wall
        self.kernel_cores = kernel / wall


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.0f} GiB"
    except (OSError, ValueError):
        pass
    return "unknown"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
