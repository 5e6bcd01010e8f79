"""Deep queues and memory: what a broker does with a backlog it cannot deliver, optionally A/B.

Run from the repository root, with a broker listening::

    .venv/bin/python bench/backlog_bench.py [--url URL] [--compare-url URL]
                                            [--scenario flood,deep,deep-transient]
                                            [--flood-mb MB] [--deep-messages N] [--span N]
                                            [--watermark-mb MB] [--quick] [--json PATH]

Every scenario fills one queue that has no consumer, then drains it with one consumer, while the
parent samples the broker process (found by its listening port, or ``--broker-pid``) every
100 ms: VmRSS from /proc/<pid>/status and CPU time from /proc/<pid>/stat.  Messages have 1 KB
bodies (KB = 1024 B, MiB = 2**20 B).  The publisher and the consumer are the processes of
``bench/amqp_load`` (raw sockets, uvloop, precomputed frames); the publisher always uses
publisher confirms with at most ``--confirm-window`` (1000) unconfirmed messages, and the
consumer basic.qos prefetch_count ``--prefetch`` (1000) with basic.ack(multiple=True) every
prefetch / 4 (250) deliveries.

Scenarios (``--scenario``, a comma list; default all three):

* ``flood``           ``--flood-mb`` (default 2048) MiB of transient messages (delivery_mode 1)
                      into a non-durable queue, as fast as the broker confirms them.  The client
                      announces the ``connection.blocked`` capability and records when the
                      broker sends connection.blocked / connection.unblocked.  A publisher that
                      gets no confirm for ``--stall-timeout`` s (a broker that blocks until
                      someone consumes) stops there.  Then the queue is drained and every
                      confirmed message must be delivered.
* ``deep``            ``--deep-messages`` (default 5,000,000) persistent messages (delivery_mode
                      2) into a durable queue; the publish rate over the first and over the
                      last ``--span`` (100,000) messages; then, with the queue deep and idle, a
                      side client's round trips; then the drain.
* ``deep-transient``  the same with transient messages into a non-durable queue.

With ``--compare-url`` (a reference broker, e.g. RabbitMQ) each scenario runs on one broker and
then on the other, and the table has a column for each and their ratio.

Rows:
  Each scenario's table has a row per figure and a column per broker; with --compare-url the
  "ratio" column is broker under test / reference, for the figures where a ratio means something.
  messages                  messages the publisher wrote (the target unless it stalled)
  confirmed / nacked        publisher confirms received: basic.ack and basic.nack (messages)
  fill s, fill msg/s, fill MiB/s
                            from the first write to the last confirm; messages (bodies) per second
  first-span msg/s          deep: confirmed messages per second over the first --span messages
                            (the queue nearly empty): span / time of the span-th confirm
  last-span msg/s           deep: over the last --span messages (the queue deep): span / (time of
                            the last confirm - time of the (N - span)-th)
  last / first              last-span msg/s / first-span msg/s
  connection.blocked        flood: when the broker blocked / unblocked the publisher, seconds after
                            the first write ("never" when it did not)
  broker CPU fill / drain   broker cores (CPU seconds / wall seconds) while filling and draining
  RSS before MiB            broker VmRSS right before the fill (as the previous scenario left the
                            broker: give one --scenario per freshly started broker for the
                            strictest reading of the "RSS deleted" floor)
  RSS peak (fill) MiB       highest 100 ms sample from the first write to the last confirm
  RSS filled MiB            right after the fill (deep: at the deep point)
  peak / watermark          flood: RSS peak (fill) / --watermark-mb (--compare-watermark-mb for
                            the reference), the memory high watermark the broker was started with
  queue depth               queue.declare(passive) message_count once the fill has settled
  side declare p50/p99 ms   deep: a side client's queue.declare(passive) on the deep queue, while
                            it is deep and idle (--side-samples, default 50; nearest rank)
  side consume+cancel p50/p99 ms
                            deep: on the same connection, basic.consume then basic.cancel on
                            another (empty) queue: both round trips, timed as one sample
  drain first-span msg/s    deep: the consumer's first --span deliveries / time since it
                            subscribed
  drain msg/s, drain MiB/s  deliveries / (last delivery - subscription)
  delivered / body MiB      deliveries and body bytes the consumer received
  RSS peak (drain) MiB      highest sample while draining
  RSS drained MiB           --settle (1) s after the consumer has acked everything and closed
  RSS deleted MiB           --settle s after queue.delete-ok
  check                     ok, or FAIL with the failed checks listed under the tables

Checks (a failed check makes the exit status 1): deliveries = the queue depth after the fill;
every confirmed message delivered (deliveries >= confirmed, <= written); body bytes =
deliveries x 1 KB; no redelivered flag; consecutive delivery tags; the queue empty after the
drain; and unless the publisher stalled: confirms cover every message with no nack and no
duplicate.

Floors (a missed floor makes the exit status 1; they apply to the broker under test, and are
shown for the reference broker for information):
  flood   RSS peak (fill) <= 1.5 x --watermark-mb         (only when --watermark-mb is given)
  deep    last / first >= 1 - --rate-noise (0.10): the deep queue publishes as fast as the empty
          one, within noise
  deep    RSS filled < 1 GiB
  deep    drain msg/s >= 0.5 x drain from memory (the same broker draining a queue that never
          left its memory window, measured before the fill)
  deep    RSS deleted <= 2 x RSS before
  (deep-transient has the same four floors)

Every queue the script declares is deleted before it exits.  Sizes: a real run (2 GiB flood,
5M x 1 KB deep) takes minutes per broker and needs the memory a broker uses for it; ``--quick``
is a smoke run (64 MiB, 50,000 messages, span 10,000).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Final

from pamqp import commands

from amqp_bench import Broker, probe
from amqp_load import report
from amqp_load.phase import run_phase
from amqp_load.report import MIB, Floor, fmt, mib
from amqp_load.sysstat import ProcessSampler
from amqp_load.wire import AmqpError, AmqpUrl, Connection
from amqp_load.workers import (
    ConsumerConfig,
    ConsumerResult,
    PublisherConfig,
    PublisherResult,
    consumer_process,
    publisher_process,
)

DEFAULT_URL: Final = "amqp://guest:guest@127.0.0.1:5673/"
SCENARIOS: Final = ("flood", "deep", "deep-transient")
BODY: Final = 1024
SAMPLE_INTERVAL: Final = 0.1
FOREVER: Final = 7 * 86400.0  # the publisher's time limit: volume, not time, ends a fill
ADMIN_WAIT: Final = 600.0  # deleting a deep queue may take a while
SIDE_INTERVAL: Final = 0.02

FLOOR_WATERMARK: Final = 1.5  # flood: RSS peak <= this x watermark
FLOOR_DEEP_RSS: Final = 1 << 30  # deep: RSS filled < 1 GiB
FLOOR_DELETED: Final = 2.0  # deep: RSS deleted <= this x RSS before
FLOOR_PAGED_DRAIN: Final = 0.5  # deep: drain of the deep queue >= this x drain of one held in memory
MEMORY_MESSAGES: Final = 3000  # deep: a queue this short stays in the broker's memory
MEMORY_ROUNDS: Final = 20


@dataclass
class BacklogRun:
    scenario: str
    broker: str
    target: int  # messages to publish
    span: int = 0
    written: int = 0
    acked: int = 0
    nacked: int = 0
    stalled: bool = False
    fill_s: float | None = None
    fill_rate: float | None = None
    first_rate: float | None = None
    last_rate: float | None = None
    blocked: list[tuple[float, bool, str]] = field(default_factory=list)  # (s after start, blocked?, reason)
    cpu_fill: float | None = None
    cpu_drain: float | None = None
    rss_before: int | None = None
    rss_fill_peak: int | None = None
    rss_filled: int | None = None
    watermark_mb: float | None = None
    depth: int | None = None
    side_declare: list[float] = field(default_factory=list)  # seconds
    side_consume: list[float] = field(default_factory=list)
    delivered: int = 0
    body_bytes: int = 0
    drain_s: float | None = None
    drain_rate: float | None = None
    drain_first_rate: float | None = None
    rss_drain_peak: int | None = None
    rss_drained: int | None = None
    rss_deleted: int | None = None
    memory_drain_rate: float | None = None  # deep: the drain of a queue short enough to stay in memory
    notes: list[str] = field(default_factory=list)  # what happened that is not a failure (a stall)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def last_first(self) -> float | None:
        return report.ratio(self.last_rate, self.first_rate)

    @property
    def watermark_multiple(self) -> float | None:
        if self.rss_fill_peak is None or not self.watermark_mb:
            return None
        return self.rss_fill_peak / (self.watermark_mb * MIB)


@dataclass
class Settings:
    flood_mb: float
    deep_messages: int
    span: int
    confirm_window: int
    prefetch: int
    stall_timeout: float
    side_samples: int
    settle: float


# -- broker administration with long waits --------------------------------------------------


def declare(broker: Broker, name: str, durable: bool) -> None:
    broker.declare_queue(name, durable)


def depth(broker: Broker, name: str) -> int:
    async def fn(conn: Connection) -> int:
        ok = await conn.rpc(
            1, commands.Queue.Declare(queue=name, passive=True), commands.Queue.DeclareOk, ADMIN_WAIT
        )
        return ok.message_count or 0

    return broker.admin(fn)


def settled_depth(broker: Broker, name: str, at_least: int, max_wait: float = 30.0) -> int:
    """The queue's message count once it holds ``at_least`` and stops changing (or max_wait)."""
    give_up = time.monotonic() + max_wait
    last = -1
    while True:
        count = depth(broker, name)
        if (count >= at_least and count == last) or time.monotonic() > give_up:
            return count
        last = count
        time.sleep(0.2)


def delete(broker: Broker, names: Sequence[str]) -> list[str]:
    async def fn(conn: Connection) -> list[str]:
        errors = []
        for q in names:
            try:
                await conn.rpc(1, commands.Queue.Delete(queue=q), commands.Queue.DeleteOk, ADMIN_WAIT)
            except (AmqpError, TimeoutError) as exc:
                if "404" not in str(exc):
                    errors.append(f"delete queue {q}: {exc or 'timeout'}")
                await conn.open_channel(1)
        return errors

    errors = broker.admin(fn)
    broker.queues.difference_update(names)
    return errors


def side_probes(broker: Broker, deep_q: str, other_q: str, n: int) -> tuple[list[float], list[float]]:
    """n x (queue.declare(passive) on deep_q; basic.consume + basic.cancel on other_q), timed."""

    async def go() -> tuple[list[float], list[float]]:
        conn = await Connection.open(AmqpUrl.parse(broker.url), product="jackalope bench side client")
        declares: list[float] = []
        consumes: list[float] = []
        try:
            await conn.open_channel(1)
            for i in range(n):
                t0 = time.monotonic()
                await conn.rpc(
                    1,
                    commands.Queue.Declare(queue=deep_q, passive=True),
                    commands.Queue.DeclareOk,
                    ADMIN_WAIT,
                )
                t1 = time.monotonic()
                tag = f"side-{i}"
                await conn.rpc(
                    1, commands.Basic.Consume(queue=other_q, consumer_tag=tag), commands.Basic.ConsumeOk
                )
                await conn.rpc(1, commands.Basic.Cancel(consumer_tag=tag), commands.Basic.CancelOk)
                t2 = time.monotonic()
                declares.append(t1 - t0)
                consumes.append(t2 - t1)
                await asyncio.sleep(SIDE_INTERVAL)
        finally:
            await conn.close()
        return declares, consumes

    return asyncio.run(go())


# -- the scenarios --------------------------------------------------------------------------


class BacklogBench:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self._serial = 0

    def name(self, what: str) -> str:
        self._serial += 1
        return f"backlog-bench-{os.getpid()}-{self._serial}-{what}"

    def run(self, broker: Broker, scenario: str, watermark_mb: float | None) -> BacklogRun:
        s = self.s
        flood = scenario == "flood"
        persistent = scenario == "deep"
        target = int(s.flood_mb * MIB) // BODY if flood else s.deep_messages
        row = BacklogRun(scenario, broker.label, target, span=0 if flood else min(s.span, target // 2))
        row.watermark_mb = watermark_mb if flood else None
        q = self.name(scenario)
        side_q = self.name("side")
        queues = [q] if flood else [q, side_q]
        sampler = ProcessSampler(broker.pid, SAMPLE_INTERVAL)
        try:
            declare(broker, q, durable=persistent)
            if not flood:
                declare(broker, side_q, durable=False)
            row.rss_before = sampler.sample().rss if broker.pid else None
            if not flood:
                row.memory_drain_rate = self._memory_drain(broker, q, sampler, persistent)
            pub = self._fill(broker, q, row, sampler, persistent)
            if pub is None:
                return row
            row.depth = settled_depth(broker, q, at_least=pub.acked)
            if not flood:
                print(f"    {broker.label}: side client on the deep queue", flush=True)
                row.side_declare, row.side_consume = side_probes(broker, q, side_q, s.side_samples)
            self._drain(broker, q, row, sampler, pub)
            left = depth(broker, q)
            if left:
                row.problems.append(f"{left} messages left in the queue after the drain")
        except (AmqpError, OSError, TimeoutError) as exc:
            row.problems.append(f"{type(exc).__name__}: {exc}")
        finally:
            try:
                row.problems.extend(delete(broker, queues))
            except (AmqpError, OSError, TimeoutError) as exc:
                row.problems.append(f"cleanup: {exc}")
            if broker.pid and row.rss_before is not None:
                time.sleep(s.settle)
                row.rss_deleted = sampler.sample().rss
        return row

    def _memory_drain(
        self, broker: Broker, q: str, sampler: ProcessSampler, persistent: bool
    ) -> float | None:
        """The drain rate of a queue short enough to stay in memory (MEMORY_MESSAGES, filled and
        drained MEMORY_ROUNDS times): what the deep queue's drain is set against."""
        print(
            f"    {broker.label}: {MEMORY_ROUNDS} x {MEMORY_MESSAGES:,} messages drained from memory",
            flush=True,
        )
        delivered = 0
        seconds = 0.0
        for _ in range(MEMORY_ROUNDS):
            small = BacklogRun("memory", broker.label, MEMORY_MESSAGES)
            pub = self._fill(broker, q, small, sampler, persistent, quiet=True)
            if pub is None or small.problems:
                return None
            small.depth = settled_depth(broker, q, at_least=pub.acked)
            self._drain(broker, q, small, sampler, pub, quiet=True)
            if small.problems or small.drain_s is None:
                return None
            delivered += small.delivered
            seconds += small.drain_s
        return delivered / seconds if seconds > 0 else None

    def _fill(
        self,
        broker: Broker,
        q: str,
        row: BacklogRun,
        sampler: ProcessSampler,
        persistent: bool,
        quiet: bool = False,
    ) -> PublisherResult | None:
        s = self.s
        window = s.confirm_window
        batch = max(1, window // 4)
        marks = () if not row.span else (row.span, row.target - row.span, row.target)
        cfg = PublisherConfig(
            url=broker.url,
            exchange="",
            routing_key=q,
            body_size=BODY,
            delivery_mode=2 if persistent else 1,
            seconds=FOREVER,
            max_bytes=row.target * BODY,
            confirms=True,
            window=window,
            write_batch=batch,
            min_write=batch,
            settle_timeout=s.stall_timeout,
            stall_timeout=s.stall_timeout,
            confirm_marks=marks,
        )
        mode = "persistent" if persistent else "transient"
        if not quiet:
            print(
                f"    {broker.label}: filling with {row.target:,} x 1 KB {mode} "
                f"({row.target * BODY / MIB:,.0f} MiB)",
                flush=True,
            )
        out = run_phase(
            "backlog-bench",
            [("publisher", publisher_process, cfg)],
            sampler,
            limit=FOREVER,
            progress=None if quiet else _progress(broker, sampler),
        )
        filled = sampler.sample() if broker.pid else None
        row.problems.extend(out.problems)
        pub: PublisherResult | None = out.results.get("publisher")
        if pub is None:
            return None
        row.written, row.acked, row.nacked, row.stalled = pub.published, pub.acked, pub.nacked, pub.stalled
        row.blocked = [(t - pub.t_start, blocked, reason) for t, blocked, reason in pub.blocked_events]
        t0, t1 = pub.t_start, pub.t_end
        row.fill_s = t1 - t0
        if row.fill_s > 0:
            row.fill_rate = pub.acked / row.fill_s
        times = pub.mark_times
        if row.span and {row.span, row.target - row.span, row.target} <= times.keys():
            first = times[row.span] - t0
            last = times[row.target] - times[row.target - row.span]
            row.first_rate = row.span / first if first > 0 else None
            row.last_rate = row.span / last if last > 0 else None
        if broker.pid:
            row.cpu_fill = sampler.cores(t0, t1)
            row.rss_fill_peak = sampler.peak_rss(t0, t1)
            row.rss_filled = filled.rss if filled is not None else None
        p = row.problems
        for x in pub.problems:
            # a broker that blocks publishers until someone consumes is allowed to: after a stall
            # the unconfirmed tail and a close the blocked broker did not read are expected
            expected = pub.stalled and x.startswith(("stalled:", "no connection.close-ok", "connection lost"))
            expected |= pub.stalled and x.endswith("publishes never confirmed")
            (row.notes if expected else p).append(f"publisher: {x}")
        if not pub.stalled:
            if pub.acked != pub.published:
                p.append(f"confirms: {pub.acked} acked of {pub.published} published")
            if pub.nacked:
                p.append(f"confirms: {pub.nacked} nacked")
            if pub.confirm_problems:
                p.append(f"confirms: {pub.confirm_problems} duplicate or unknown")
            if pub.published != row.target:
                p.append(f"{pub.published} published of {row.target}")
        return pub

    def _drain(
        self,
        broker: Broker,
        q: str,
        row: BacklogRun,
        sampler: ProcessSampler,
        pub: PublisherResult,
        quiet: bool = False,
    ) -> None:
        s = self.s
        expected = row.depth or 0
        if not expected:
            row.problems.append("nothing to drain: the queue is empty after the fill")
            return
        if not quiet:
            print(f"    {broker.label}: draining {expected:,} messages", flush=True)
        cfg = ConsumerConfig(
            url=broker.url,
            queues=[q],
            prefetch=s.prefetch,
            ack_every=max(1, s.prefetch // 4),
            expected=expected,
            consume_at_go=True,
            idle_timeout=max(60.0, s.stall_timeout),
            overall_timeout=FOREVER,
            timeline=bool(row.span),
        )
        out = run_phase(
            "backlog-bench",
            [("consumer", consumer_process, cfg)],
            sampler,
            limit=FOREVER,
            progress=None if quiet else _progress(broker, sampler),
        )
        row.problems.extend(out.problems)
        con: ConsumerResult | None = out.results.get("consumer")
        if broker.pid and not quiet:
            time.sleep(s.settle)
            row.rss_drained = sampler.sample().rss
        if con is None:
            return
        row.delivered, row.body_bytes = con.delivered, con.body_bytes
        t0, t1 = con.t_start, con.t_last
        if t1 > t0:
            row.drain_s = t1 - t0
            row.drain_rate = con.delivered / row.drain_s
        if row.span:
            t_span = con.timeline().time_of(row.span)
            if t_span is not None and t_span > t0:
                row.drain_first_rate = row.span / (t_span - t0)
        if broker.pid:
            row.cpu_drain = sampler.cores(t0, t1)
            row.rss_drain_peak = sampler.peak_rss(t0, t1)
        p = row.problems
        p.extend(f"consumer: {x}" for x in con.problems)
        if con.delivered != expected:
            p.append(f"{con.delivered} deliveries, the queue held {expected}")
        if con.delivered < pub.acked:
            p.append(f"only {con.delivered} of {pub.acked} confirmed messages delivered")
        if con.delivered > pub.published:
            p.append(f"{con.delivered} deliveries of {pub.published} written")
        if con.body_bytes != con.delivered * BODY:
            p.append(f"{con.body_bytes} body bytes for {con.delivered} deliveries of {BODY} B")
        if con.redelivered:
            p.append(f"{con.redelivered} redelivered")
        if con.tag_gaps:
            p.append(f"{con.tag_gaps} non-consecutive delivery tags")


def _progress(broker: Broker, sampler: ProcessSampler) -> Callable[[float], None]:
    def show(elapsed: float) -> None:
        last = sampler.samples[-1] if sampler.samples else None
        rss = f", broker RSS {mib(last.rss)} MiB" if last is not None and last.rss is not None else ""
        print(f"      {broker.label}: +{elapsed:.0f} s{rss}", flush=True)

    return show


# -- output ---------------------------------------------------------------------------------


def _blocked_text(r: BacklogRun) -> str:
    if not r.blocked:
        return "never"
    parts = [f"{'blocked' if b else 'unblocked'} +{t:.1f} s" for t, b, _ in r.blocked]
    return ", ".join(parts[:4]) + (f" (+{len(parts) - 4} more)" if len(parts) > 4 else "")


def _pct(values: Sequence[float]) -> str:
    p50, p99 = report.percentiles(values, (0.50, 0.99))
    return f"{report.ms(p50)} / {report.ms(p99)}"


# (label, value for the cell, number for the ratio or None, which scenarios)
Metric = tuple[str, Callable[[BacklogRun], str], Callable[[BacklogRun], float | None] | None, str]
ALL, DEEP, FLOOD = "all", "deep", "flood"


def _n(v: float | None) -> str:
    return fmt(v, ",.0f")


def _paged_ratio(r: BacklogRun) -> float | None:
    return report.ratio(r.drain_rate, r.memory_drain_rate)


def _mibps(rate: float | None) -> float | None:
    return None if rate is None else rate * BODY / MIB


METRICS: Final[list[Metric]] = [
    ("messages", lambda r: f"{r.written:,}", None, ALL),
    ("confirmed / nacked", lambda r: f"{r.acked:,} / {r.nacked:,}", None, ALL),
    ("fill s", lambda r: fmt(r.fill_s, ".1f"), lambda r: r.fill_s, ALL),
    ("fill msg/s", lambda r: _n(r.fill_rate), lambda r: r.fill_rate, ALL),
    ("fill MiB/s", lambda r: fmt(_mibps(r.fill_rate), ".1f"), None, ALL),
    ("first-span msg/s", lambda r: _n(r.first_rate), lambda r: r.first_rate, DEEP),
    ("last-span msg/s", lambda r: _n(r.last_rate), lambda r: r.last_rate, DEEP),
    ("last / first", lambda r: fmt(r.last_first, ".2f"), None, DEEP),
    ("connection.blocked", _blocked_text, None, FLOOD),
    ("broker CPU fill / drain", lambda r: f"{fmt(r.cpu_fill, '.2f')} / {fmt(r.cpu_drain, '.2f')}", None, ALL),
    ("RSS before MiB", lambda r: mib(r.rss_before), None, ALL),
    ("RSS peak (fill) MiB", lambda r: mib(r.rss_fill_peak), lambda r: r.rss_fill_peak, ALL),
    ("RSS filled MiB", lambda r: mib(r.rss_filled), lambda r: r.rss_filled, ALL),
    ("peak / watermark", lambda r: fmt(r.watermark_multiple, ".2f"), None, FLOOD),
    ("queue depth", lambda r: _n(r.depth), None, ALL),
    ("side declare p50/p99 ms", lambda r: _pct(r.side_declare), None, DEEP),
    ("side consume+cancel p50/p99 ms", lambda r: _pct(r.side_consume), None, DEEP),
    ("drain first-span msg/s", lambda r: _n(r.drain_first_rate), lambda r: r.drain_first_rate, DEEP),
    ("drain msg/s", lambda r: _n(r.drain_rate), lambda r: r.drain_rate, ALL),
    ("drain MiB/s", lambda r: fmt(_mibps(r.drain_rate), ".1f"), None, ALL),
    ("drain from memory msg/s", lambda r: _n(r.memory_drain_rate), lambda r: r.memory_drain_rate, DEEP),
    (
        "drain / from memory",
        lambda r: fmt(report.ratio(r.drain_rate, r.memory_drain_rate), ".2f"),
        None,
        DEEP,
    ),
    ("delivered / body MiB", lambda r: f"{r.delivered:,} / {r.body_bytes / MIB:,.1f}", None, ALL),
    ("RSS peak (drain) MiB", lambda r: mib(r.rss_drain_peak), lambda r: r.rss_drain_peak, ALL),
    ("RSS drained MiB", lambda r: mib(r.rss_drained), lambda r: r.rss_drained, ALL),
    ("RSS deleted MiB", lambda r: mib(r.rss_deleted), lambda r: r.rss_deleted, ALL),
    ("check", lambda r: "ok" if r.ok else "FAIL", None, ALL),
]


def scenario_table(runs: Sequence[BacklogRun]) -> str:
    """One scenario: a row per metric, a column per broker (and the ratio of the first two)."""
    kind = DEEP if runs[0].scenario.startswith("deep") else FLOOD
    headers = ["", *(r.broker for r in runs)]
    if len(runs) == 2:
        headers.append("ratio")
    rows = []
    for label, cell, number, where in METRICS:
        if where not in (ALL, kind):
            continue
        line = [label, *(cell(r) for r in runs)]
        if len(runs) == 2:
            line.append("-" if number is None else fmt(report.ratio(number(runs[0]), number(runs[1])), ".2f"))
        rows.append(line)
    return report.table(headers, rows, left=1)


def evaluate_floors(runs: Sequence[BacklogRun], under_test: str, noise: float) -> list[Floor]:
    floors: list[Floor] = []
    for r in runs:
        counts = r.broker == under_test
        case = f"{r.broker} {r.scenario}"
        if r.scenario == "flood":
            if r.watermark_mb:
                m = r.watermark_multiple
                floors.append(
                    Floor(
                        f"{case}: RSS peak <= {FLOOR_WATERMARK} x watermark ({r.watermark_mb:g} MiB)",
                        None if m is None else m <= FLOOR_WATERMARK,
                        f"{mib(r.rss_fill_peak)} MiB = {fmt(m, '.2f')} x",
                        counts,
                    )
                )
            elif counts:
                floors.append(Floor(f"{case}: RSS peak <= {FLOOR_WATERMARK} x watermark", None,
                                    "give --watermark-mb (the broker's memory high watermark)"))  # fmt: skip
            continue
        lf = r.last_first
        floors.append(
            Floor(
                f"{case}: publish rate over the last {r.span:,} >= first {r.span:,} (within {noise:.0%})",
                None if lf is None else lf >= 1 - noise,
                f"{_n(r.last_rate)} / {_n(r.first_rate)} msg/s = {fmt(lf, '.2f')}",
                counts,
            )
        )
        floors.append(
            Floor(
                f"{case}: RSS at the end of the fill < 1 GiB",
                None if r.rss_filled is None else r.rss_filled < FLOOR_DEEP_RSS,
                f"{mib(r.rss_filled)} MiB for {r.written:,} messages",
                counts,
            )
        )
        paged = _paged_ratio(r)
        floors.append(
            Floor(
                f"{case}: drain of the deep queue >= {FLOOR_PAGED_DRAIN:g} x drain from memory",
                None if paged is None else paged >= FLOOR_PAGED_DRAIN,
                f"{_n(r.drain_rate)} / {_n(r.memory_drain_rate)} msg/s = {fmt(paged, '.2f')}",
                counts,
            )
        )
        bound = None if r.rss_before is None else FLOOR_DELETED * r.rss_before
        floors.append(
            Floor(
                f"{case}: RSS after deleting the queue <= {FLOOR_DELETED:g} x RSS before",
                None if r.rss_deleted is None or bound is None else r.rss_deleted <= bound,
                f"{mib(r.rss_deleted)} MiB after, {mib(r.rss_before)} MiB before",
                counts,
            )
        )
    return floors


# -- main -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        epilog="Every row and floor is explained under the tables and in the module docstring.",
    )
    parser.add_argument("--url", default=DEFAULT_URL, help=f"broker under test (default {DEFAULT_URL})")
    parser.add_argument("--label", default=None, help="its name in the output (default jackalope)")
    parser.add_argument("--compare-url", default=None, help="reference broker, run after each scenario")
    parser.add_argument("--compare-label", default=None, help="its name (default reference)")
    parser.add_argument("--broker-pid", type=int, default=None, help="process of --url (default: by port)")
    parser.add_argument("--compare-broker-pid", type=int, default=None, help="process of --compare-url")
    parser.add_argument(
        "--scenario", "--scenarios", default=None, help=f"comma list of {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--flood-mb", type=float, default=None, help="flood: MiB of 1 KB bodies (2048)")
    parser.add_argument("--deep-messages", type=int, default=None, help="deep: messages (5,000,000)")
    parser.add_argument("--span", type=int, default=None, help="deep: first/last span (100,000)")
    parser.add_argument("--watermark-mb", type=float, default=None, help="the broker's memory watermark")
    parser.add_argument("--compare-watermark-mb", type=float, default=None, help="the reference's")
    parser.add_argument("--rate-noise", type=float, default=0.10, help="deep: last/first tolerance")
    parser.add_argument("--confirm-window", type=int, default=1000, help="unconfirmed messages at most")
    parser.add_argument("--prefetch", type=int, default=1000, help="consumer basic.qos prefetch_count")
    parser.add_argument("--stall-timeout", type=float, default=60.0, help="s without a confirm: stop")
    parser.add_argument("--side-samples", type=int, default=None, help="deep: side-client samples (50)")
    parser.add_argument("--settle", type=float, default=1.0, help="s before the drained/deleted RSS")
    parser.add_argument("--quick", action="store_true", help="64 MiB, 50,000 messages: a smoke test")
    parser.add_argument("--json", default=None, help="also write every run's figures here")
    args = parser.parse_args(argv)
    q = args.quick
    if args.flood_mb is None:
        args.flood_mb = 64.0 if q else 2048.0
    if args.deep_messages is None:
        args.deep_messages = 50_000 if q else 5_000_000
    if args.span is None:
        args.span = 10_000 if q else 100_000
    if args.side_samples is None:
        args.side_samples = 20 if q else 50
    if args.scenario in (None, "", "all"):
        args.scenario_list = list(SCENARIOS)
    else:
        args.scenario_list = [s.strip() for s in args.scenario.split(",") if s.strip()]
        unknown = set(args.scenario_list) - set(SCENARIOS)
        if unknown:
            parser.error(f"unknown scenario(s) {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    a = Broker(args.label or "jackalope", args.url, args.broker_pid)
    brokers = [a]
    watermarks = {a.label: args.watermark_mb}
    if args.compare_url:
        b = Broker(args.compare_label or "reference", args.compare_url, args.compare_broker_pid)
        if b.label == a.label:
            b.label += "-2"
        brokers.append(b)
        watermarks[b.label] = args.compare_watermark_mb
    for br in brokers:
        try:
            probe(br)
        except (OSError, AmqpError, TimeoutError) as exc:
            print(f"cannot use {br.label} at {AmqpUrl.parse(br.url).display()}: {exc}", file=sys.stderr)
            return 2
    lines = report.header_lines("AMQP backlog benchmark (deep queues and memory)", brokers)
    wm = ", ".join(f"{label} {fmt(w, 'g')} MiB" for label, w in watermarks.items() if w)
    lines += [
        f"scenarios   {', '.join(args.scenario_list)}" + (", brokers in turn" if len(brokers) > 1 else ""),
        f"sizes       flood {args.flood_mb:g} MiB; deep {args.deep_messages:,} messages, span "
        f"{args.span:,}; 1 KB bodies",
        f"settings    confirm window {args.confirm_window}, prefetch {args.prefetch} (ack multiple every "
        f"{max(1, args.prefetch // 4)}), stall timeout {args.stall_timeout:g} s, watermark "
        f"{wm or 'not given'}, broker sampled every {SAMPLE_INTERVAL * 1e3:.0f} ms",
    ]
    print("\n".join(lines) + "\n", flush=True)
    bench = BacklogBench(
        Settings(
            flood_mb=args.flood_mb,
            deep_messages=args.deep_messages,
            span=args.span,
            confirm_window=args.confirm_window,
            prefetch=args.prefetch,
            stall_timeout=args.stall_timeout,
            side_samples=args.side_samples,
            settle=args.settle,
        )
    )
    runs: list[BacklogRun] = []
    try:
        for scenario in args.scenario_list:
            print(f"{scenario}", flush=True)
            for br in brokers:
                r = bench.run(br, scenario, watermarks[br.label])
                runs.append(r)
                print(f"    {br.label}: {'ok' if r.ok else 'FAIL: ' + '; '.join(r.problems)}", flush=True)
                for note in r.notes:
                    print(f"    {br.label}: note: {note}", flush=True)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        for br in brokers:
            try:
                left = delete(br, sorted(br.queues)) if br.queues else []
            except (OSError, AmqpError, TimeoutError) as exc:
                left = [str(exc)]
            for problem in left:
                print(f"cleanup on {br.label}: {problem}", file=sys.stderr)

    titles = {
        "flood": f"flood: {args.flood_mb:g} MiB of 1 KB transient messages with confirms, no consumer, "
        "then a drain",
        "deep": f"deep: {args.deep_messages:,} x 1 KB persistent messages into a durable queue, then a drain",
        "deep-transient": f"deep-transient: {args.deep_messages:,} x 1 KB transient messages into a "
        "non-durable queue, then a drain",
    }
    for scenario in args.scenario_list:
        rs = [r for r in runs if r.scenario == scenario]
        if rs:
            print()
            print(titles[scenario])
            print(scenario_table(rs))
    floors = evaluate_floors(runs, a.label, args.rate_noise)
    print("\nFloors")
    print("\n".join(f.line() for f in floors))
    print()
    print(report.doc_section(__doc__, "Rows:"))
    print()
    noted = [r for r in runs if r.notes]
    if noted:
        print("Notes (not failures):")
        for r in noted:
            print(f"  {r.broker} {r.scenario}: {'; '.join(r.notes)}")
    failed = [r for r in runs if not r.ok]
    if failed:
        print(f"{len(failed)} run(s) failed their checks:")
        for r in failed:
            print(f"  {r.broker} {r.scenario}: {'; '.join(r.problems)}")
    else:
        print(f"all {len(runs)} runs passed their checks")
    print(f"total time {time.monotonic() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "settings": {k: v for k, v in vars(args).items() if k != "json"},
                    "brokers": [{"label": br.label, "url": AmqpUrl.parse(br.url).display(),
                                 "server": br.server, "pid": br.pid} for br in brokers],
                    "runs": [asdict(r) | {"last_first": r.last_first,
                                          "watermark_multiple": r.watermark_multiple} for r in runs],
                    "floors": [asdict(f) for f in floors],
                },
                fh,
                indent=1,
            )  # fmt: skip
    return 1 if failed or report.floors_failed(floors) else 0


if __name__ == "__main__":
    sys.exit(main())
