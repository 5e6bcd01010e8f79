"""The resource monitor: memory use and free disk space against their limits, as RabbitMQ's
``vm_memory_high_watermark`` and ``disk_free_limit``.

Every ``INTERVAL`` seconds (sooner as the disk nears its limit) it reads the broker's
resident memory (``/proc/self/statm``) and the free space of the file system holding the data
directory (``statvfs``) and raises or clears the :class:`~jackalope.core.alarms.Alarms`.
A limit is given as RabbitMQ gives it:

* memory: a fraction of the machine's memory (``0.4``, the default) or an absolute size
  (``512MiB``); the machine's memory is the smaller of RAM and a cgroup limit;
* disk: an absolute size (``50MB``, the default) or a multiple of the machine's memory
  (``mem_relative:1.5``).

Sizes take RabbitMQ's units: ``k``/``kiB``/``KiB``, ``M``/``MiB``, ``G``/``GiB``, ``T``/``TiB``
(powers of 1024) and ``kB``/``KB``, ``MB``, ``GB``, ``TB`` (powers of 1000); a bare number is
bytes.  Before it raises the memory alarm the monitor asks the C allocator to give freed
memory back (``malloc_trim``), so the alarm measures what is in use, not what was.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import re
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from jackalope.core.alarms import DISK, MEMORY, Alarms

log = logging.getLogger(__name__)

DEFAULT_MEMORY_HIGH_WATERMARK: Final = "0.4"
DEFAULT_DISK_FREE_LIMIT: Final = "50MB"
INTERVAL: Final = 0.1
MIN_INTERVAL: Final = 0.01
FAST_WRITES: Final = 1 << 30  # bytes/s: how fast the disk might fill (to time the next check)
TRIM_EVERY: Final = 1.0  # seconds between malloc_trim calls at most

_UNITS: Final = {
    "": 1,
    "k": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tib": 1024**4,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
}
_SIZE: Final = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")
_MEM_RELATIVE: Final = re.compile(r"^\s*mem_relative\s*[:=]\s*([0-9]+(?:\.[0-9]+)?)\s*$")


def parse_size(text: str) -> int:
    """Bytes in a RabbitMQ information unit ("512MiB", "50MB", "2G", "1024"); ValueError if not one."""
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(
            f"{text!r} is not a size (a number and one of k, M, G, T, kB, MB, GB, TB, KiB, MiB, GiB)"
        )
    # "KB" and "kB" are both 1000 in RabbitMQ; lowercase "k" alone is 1024.
    return int(float(match.group(1)) * _UNITS[unit])


@dataclass(frozen=True)
class Limit:
    """A limit as configured: a multiple of the machine's memory, or bytes."""

    relative: float | None = None
    absolute: int | None = None

    def bytes(self, memory: int) -> int:
        return int(self.relative * memory) if self.relative is not None else int(self.absolute or 0)

    def __str__(self) -> str:
        return f"{self.relative:g} of memory" if self.relative is not None else f"{self.absolute} bytes"


def parse_memory_watermark(text: str) -> Limit:
    """``0.4`` (a fraction of memory) or a size such as ``512MiB``."""
    try:
        fraction = float(text)
    except ValueError:
        return Limit(absolute=parse_size(text))
    if not 0 <= fraction <= 1:
        raise ValueError(f"a relative memory watermark is a fraction of memory from 0 to 1, not {text}")
    return Limit(relative=fraction)


def parse_disk_limit(text: str) -> Limit:
    """A size such as ``50MB``, or ``mem_relative:1.5`` (a multiple of memory)."""
    match = _MEM_RELATIVE.match(text)
    if match:
        return Limit(relative=float(match.group(1)))
    return Limit(absolute=parse_size(text))


def machine_memory() -> int:
    """RAM, or the cgroup's memory limit if that is lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            limit = int(Path(path).read_text().strip())
        except (OSError, ValueError):
            continue
        if 0 < limit < total:
            total = limit
    return total


_PAGE: Final = os.sysconf("SC_PAGE_SIZE")


def resident_memory() -> int:
    """This process's resident set size, in bytes."""
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE


def free_disk(directory: Path) -> int:
    """Bytes an unprivileged process may still write to the file system of ``directory``."""
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def open_fds() -> int:
    """File descriptors this process has open."""
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # less the one listdir opened
    except OSError:
        return 0


def max_fds() -> int:
    """The soft limit on open file descriptors."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if soft != resource.RLIM_INFINITY else 0


def _malloc_trim() -> None:
    """Return freed heap memory to the OS (glibc); nothing elsewhere."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_LIBC: Final = _load_libc()


class ResourceMonitor:
    def __init__(self, alarms: Alarms, data_dir: Path, memory: Limit, disk: Limit) -> None:
        self.alarms = alarms
        self.data_dir = data_dir
        self.machine_memory = machine_memory()
        self.memory_limit = memory.bytes(self.machine_memory)
        self.disk_limit = disk.bytes(self.machine_memory)
        self.memory_used = 0
        self.disk_free = 0
        self._started = time.monotonic()
        self._last_trim = 0.0
        self._task: asyncio.Task[None] | None = None

    # Read when asked, for the metrics and the API (with the last memory_used and disk_free).
    @property
    def open_fds(self) -> int:
        return open_fds()

    @property
    def max_fds(self) -> int:
        return max_fds()

    @property
    def uptime_seconds(self) -> float:
        return time.monotonic() - self._started

    def start(self) -> None:
        self.check()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="jackalope-resource-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.next_check())
            try:
                self.check()
            except OSError as exc:
                log.error("resource monitor: %s", exc)

    def next_check(self) -> float:
        """Seconds to the next check: INTERVAL, or sooner while the free disk space above the
        limit is less than FAST_WRITES could fill in that time (as RabbitMQ's disk monitor)."""
        headroom = self.disk_free - self.disk_limit
        return max(MIN_INTERVAL, min(INTERVAL, headroom / FAST_WRITES))

    def check(self) -> None:
        """Measure now and set or clear the alarms."""
        used = resident_memory()
        if used > self.memory_limit and time.monotonic() - self._last_trim >= TRIM_EVERY:
            self._last_trim = time.monotonic()
            _malloc_trim()
            used = resident_memory()
        self.memory_used = used
        self.alarms.set(
            MEMORY, used > self.memory_limit, f"memory used {used} bytes, watermark {self.memory_limit}"
        )
        free = self.disk_free = free_disk(self.data_dir)
        self.alarms.set(DISK, free < self.disk_limit, f"free disk {free} bytes, limit {self.disk_limit}")
