"""Output helpers shared by ``flow_bench.py`` and ``backlog_bench.py``.

Nearest-rank percentiles, MiB and millisecond formatting, floors (a figure against a bound,
PASS / FAIL, or not applicable), the header that describes the machine and the brokers, and
the section of a module docstring that explains the columns (printed under the tables).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from amqp_load import sysstat
from amqp_load.wire import AmqpUrl, weighted_percentiles

MIB: Final = 1024 * 1024


class BrokerInfo(Protocol):
    label: str
    url: str
    pid: int | None
    server: str
    frame_max: int


def percentiles(values: Sequence[float], quantiles: Sequence[float]) -> list[float | None]:
    """Nearest-rank percentiles of ``values`` (None for each when there are none)."""
    if not values:
        return [None] * len(quantiles)
    return list(weighted_percentiles([(v, 1) for v in values], quantiles))


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def mib(value: float | None) -> str:
    """Bytes as MiB, no decimals ("-" when unknown)."""
    return "-" if value is None else f"{value / MIB:,.0f}"


def ms(value: float | None) -> str:
    """Seconds as milliseconds with a precision that suits the value."""
    if value is None:
        return "-"
    v = value * 1e3
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 1000 else f"{v:,.0f}"


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


@dataclass
class Floor:
    """One bound: ``passed`` is None when it could not be evaluated (not run, figure missing)."""

    text: str
    passed: bool | None
    detail: str
    counts: bool = True  # False: shown for information only (the reference broker's figures)

    def line(self) -> str:
        tag = "----" if self.passed is None else "PASS" if self.passed else "FAIL"
        note = "" if self.counts else "  (reference broker, informative)"
        return f"[{tag}] {self.text}: {self.detail}{note}"


def floors_failed(floors: Iterable[Floor]) -> bool:
    return any(f.counts and f.passed is False for f in floors)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int) -> str:
    """Columns padded to their widest cell; the first ``left`` are left-aligned, the others right."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def doc_section(doc: str | None, title: str) -> str:
    """The line ``title`` of ``doc`` and the indented (or empty) lines after it: a section such as
    ``Columns:``, which ends at the next line that starts in the first column."""
    lines = (doc or "").splitlines()
    try:
        start = lines.index(title)
    except ValueError:
        return ""
    out = [lines[start]]
    for line in lines[start + 1 :]:
        if line and not line[0].isspace():
            break
        out.append(line)
    return "\n".join(out).rstrip()


def header_lines(title: str, brokers: Sequence[BrokerInfo]) -> list[str]:
    try:
        uv = f"uvloop {importlib.metadata.version('uvloop')}"
    except importlib.metadata.PackageNotFoundError:
        uv = "no uvloop"
    lines = [
        title,
        "",
        f"CPU         {sysstat.cpu_model()}",
        f"cores       {sysstat.usable_cores()} usable of {os.cpu_count()}",
        f"memory      {sysstat.memory_gib()}",
        f"kernel      {platform.system()} {platform.release()}",
        f"python      {platform.python_implementation()} {platform.python_version()}, {uv}, "
        f"pamqp {importlib.metadata.version('pamqp')}",
    ]
    for b in brokers:
        if b.pid:
            rss = sysstat.process_rss_bytes(b.pid)
            where = f"pid {b.pid} ({sysstat.process_name(b.pid)}, RSS now {mib(rss)} MiB)"
        else:
            where = "process not found: no broker CPU or RSS (give --broker-pid)"
        lines.append(
            f"broker      {b.label}: {b.server} at {AmqpUrl.parse(b.url).display()}, "
            f"frame_max {b.frame_max}, {where}"
        )
    skip = {os.getpid(), *(b.pid or 0 for b in brokers)}
    lines.append(
        f"other load  {sysstat.other_load(skip, 1.0):.2f} cores used by other processes (1 s sample)"
    )
    return lines
