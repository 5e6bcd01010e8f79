"""CPU accounting from /proc, and a description of the machine."""

from __future__ import annotations

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
