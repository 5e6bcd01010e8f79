"""Credit flow: how fast the consumer receives *while* the publisher publishes, optionally A/B.

Run from the repository root, with a broker listening::

    .venv/bin/python bench/flow_bench.py [--url URL] [--compare-url URL] [--seconds S]
                                         [--sizes 16,1K] [--modes transient,persistent]
                                         [--rounds N] [--quick] [--json PATH]

``bench/amqp_bench.py`` reports publish-consume throughput as published / time to drain, which
cannot tell a broker that delivers while it accepts publishes from one that queues everything
and delivers once the publisher stops.  This script measures the consumer during the
publishing window itself, and what else a user feels meanwhile: queue depth, a side client's
latency, the broker's CPU and memory.

One run: one queue, one publisher, one consumer and one side client, each in its own process
on its own connection (``bench/amqp_load``: raw sockets, uvloop, precomputed frames).

* The consumer subscribes first, with basic.qos prefetch_count ``--prefetch`` (1000), and sends
  basic.ack(multiple=True) every prefetch / 4 (250) deliveries.  It records when deliveries
  arrive (per socket read: the time and the running count).
* The publisher publishes as fast as the broker takes them for ``--seconds`` (default 5): the
  publishing window, [start, last write].  Bodies of 16 B and 1 KB (KB = 1024 B), two modes:
  ``transient`` (delivery_mode 1, non-durable queue, no confirms) and ``persistent``
  (delivery_mode 2, durable queue, publisher confirms with at most ``--confirm-window`` (1000)
  unconfirmed messages).  When it stops, it records how many of the bytes it wrote the broker
  has not read yet: its own transport buffer, its socket's kernel send queue and the broker
  socket's receive queue (/proc/net/tcp; the broker must be on this host for the last one).
  A broker that pushes back on a publisher by not reading its socket (TCP flow control,
  RabbitMQ's credit flow) leaves megabytes there, and those messages are not published yet:
  they count as written, not as published.
* The side client sends queue.declare(passive=True) on the queue every 50 ms during the window
  and times each round trip (one that takes longer than 50 ms delays the next; missed slots are
  skipped, so a stall is one long sample).  At the end of the window it sends one more on a
  second channel, for the broker's own count of the queue.
* The parent samples the broker process (found by its listening port, or ``--broker-pid``)
  every 100 ms: VmRSS from /proc/<pid>/status and CPU time from /proc/<pid>/stat.
* After the window the publisher waits for its last confirms, the consumer drains the queue,
  and the run is checked: deliveries = published, body bytes = deliveries x size, no
  redelivered flag, consecutive delivery tags, confirms cover every publish with no nack, the
  queue is empty; then the queue is deleted.

With ``--compare-url`` (a reference broker, e.g. RabbitMQ) every case runs on both brokers in
the same run, alternating (A, B, A, B, ... for ``--rounds``), and the summary gives each side,
the ratio, and the comparison floors.  With several rounds every figure is the median of the
rounds.

Columns:
  size, mode     body size (16 B, 1 KB) and mode (transient / persistent, see above)
  written msg/s  messages the publisher handed to its socket during the window / window length
  in sockets     of those, the messages still unread by the broker at the end of the window
                 (bytes in the publisher's buffer and in both kernel socket queues / bytes per
                 message; "+" after it: the broker's receive queue could not be seen)
  pub msg/s      published = written - in sockets: what the broker took in during the window,
                 / window length (for persistent, the confirm window holds writes back, so this
                 is close to the confirmed rate)
  con msg/s      deliveries that arrived at the consumer during the window (arrival time in
                 [start, end of publishing]) / window length: the consumer's rate while
                 publishing
  con/pub        con msg/s / pub msg/s; 1.00 means the consumer kept pace with the publisher
  depth end      published by the end of the window - delivered by then: the messages the
                 broker had taken in but the consumer had not received (ready in the queue,
                 inside the broker, on their way to the consumer, in the prefetch window)
  passive        message_count of the side client's queue.declare(passive) sent at the end of
                 the window: the broker's own count of ready messages (unacknowledged deliveries
                 are not in it), as of when it answered
  passive +s     when that answer arrived, in seconds after the end of the window (a broker
                 that answers late has read more publishes by then)
  drain s        from the end of the window to the last delivery
  side p50/p99/max ms
                 the side client's queue.declare(passive) round trips during the window
                 (nearest-rank percentiles; n samples, about 20 per second when nothing stalls)
  confirm p50/p99 ms
                 persistent only: time from writing a message to its basic.ack (with up to
                 1000 outstanding, so this includes queueing in the confirm window)
  CPU mean/peak  broker CPU in cores (CPU seconds / wall seconds) over the window, and the
                 highest 100 ms interval in it (10 ms clock ticks: a 100 ms interval resolves
                 0.1 core)
  RSS peak/end/drained MiB
                 broker resident memory (VmRSS): highest 100 ms sample during the window, the
                 sample at the end of the window, and after the drain (once the consumer has
                 acked everything and closed)
  check          ok, or FAIL with the failed checks listed under the tables

Floors (a missed floor makes the exit status 1; per-run floors apply to the broker under test
and are shown for the reference broker for information):
  con/pub >= 0.9                          every case
  depth end <= 5 x prefetch               every case
  16 B transient con msg/s >= 1.0 x reference                (only with --compare-url)
  16 B persistent con msg/s >= 1.5 x reference (confirms)    (only with --compare-url)

MiB = 2**20 bytes.  A failed check also makes the exit status 1.  Every queue the script
declares is deleted before it exits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from amqp_bench import Broker, parse_size, probe, size_label
from amqp_load import report
from amqp_load.phase import run_phase
from amqp_load.report import Floor, fmt, median, mib, ms
from amqp_load.sysstat import ProcessSampler
from amqp_load.wire import AmqpError, AmqpUrl
from amqp_load.workers import (
    ConsumerConfig,
    ConsumerResult,
    ProberConfig,
    ProberResult,
    PublisherConfig,
    PublisherResult,
    consumer_process,
    prober_process,
    publisher_process,
)
from bench_workers import Worker

DEFAULT_URL: Final = "amqp://guest:guest@127.0.0.1:5673/"
MODES: Final = ("transient", "persistent")
DEFAULT_SIZES: Final = (16, 1024)
WRITE_BYTES: Final = 64 * 1024  # target size of one publisher write (as amqp_bench.py)
PROBE_INTERVAL: Final = 0.05
SAMPLE_INTERVAL: Final = 0.1
NO_LIMIT: Final = 1 << 62  # bytes: the window, not a volume, ends publishing

FLOOR_CON_SHARE: Final = 0.9  # con msg/s >= this x pub msg/s
FLOOR_DEPTH_PREFETCHES: Final = 5  # depth end <= this x prefetch
COMPARE_FLOORS: Final = ((16, "transient", 1.0), (16, "persistent", 1.5))  # con msg/s A / B


@dataclass
class FlowRun:
    broker: str
    size: int
    mode: str
    round: int
    window_s: float = 0.0
    written: int = 0  # messages handed to the publisher's socket
    written_rate: float | None = None
    in_sockets: int | None = None  # of the written, still unread by the broker at the window's end
    in_sockets_partial: bool = False  # the broker's receive queue was not visible
    published: int = 0  # written - in_sockets
    pub_rate: float | None = None
    con_in_window: int = 0
    con_rate: float | None = None
    con_share: float | None = None
    depth_end: int | None = None
    passive_depth: int | None = None
    passive_sent: float | None = None  # seconds after the window's end: passive count sent
    passive_answered: float | None = None  # and answered
    drain_s: float | None = None
    side_n: int = 0
    side_p50: float | None = None  # seconds
    side_p99: float | None = None
    side_max: float | None = None
    confirm_p50: float | None = None  # seconds
    confirm_p99: float | None = None
    cpu_mean: float | None = None  # cores
    cpu_peak: float | None = None
    rss_peak: int | None = None  # bytes
    rss_end: int | None = None
    rss_drained: int | None = None
    delivered: int = 0
    acked: int = 0
    nacked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Settings:
    seconds: float
    prefetch: int
    confirm_window: int


class FlowBench:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self._serial = 0

    def name(self, what: str) -> str:
        self._serial += 1
        return f"flow-bench-{os.getpid()}-{self._serial}-{what}"

    def run(self, broker: Broker, size: int, mode: str, rnd: int) -> FlowRun:
        persistent = mode == "persistent"
        row = FlowRun(broker.label, size, mode, rnd)
        q = self.name("q")
        try:
            broker.declare_queue(q, durable=persistent)
            self._measure(broker, q, row, size, persistent)
            left = broker.queue_depth(q)
            if left:
                row.problems.append(f"{left} messages left in the queue after the drain")
        except (AmqpError, OSError, TimeoutError) as exc:
            row.problems.append(f"{type(exc).__name__}: {exc}")
        finally:
            try:
                row.problems.extend(broker.delete([q]))
            except (AmqpError, OSError, TimeoutError) as exc:
                row.problems.append(f"cleanup: {exc}")
        return row

    def _measure(self, broker: Broker, q: str, row: FlowRun, size: int, persistent: bool) -> None:
        s = self.s
        msg_len = size + 90 + 8 * (size // max(1, broker.frame_max - 8))
        batch = max(1, WRITE_BYTES // msg_len)
        if persistent:
            batch = min(batch, max(1, s.confirm_window // 4))
        pub_cfg = PublisherConfig(
            url=broker.url,
            exchange="",
            routing_key=q,
            body_size=size,
            delivery_mode=2 if persistent else 1,
            seconds=s.seconds,
            max_bytes=NO_LIMIT,
            confirms=persistent,
            window=s.confirm_window,
            write_batch=batch,
            min_write=batch,
            record_latency=persistent,
            socket_snapshot=True,
        )
        con_cfg = ConsumerConfig(
            url=broker.url, queues=[q], prefetch=s.prefetch, ack_every=max(1, s.prefetch // 4), timeline=True
        )
        prb_cfg = ProberConfig(
            url=broker.url, queue=q, seconds=s.seconds, interval=PROBE_INTERVAL, snapshot_at=s.seconds
        )

        def on_report(name: str, kind: str, value: Any, workers: dict[str, Worker]) -> None:
            if name != "publisher":
                return
            expect = value.published if kind == "result" and value.published else -1
            with contextlib.suppress(OSError):  # a consumer that is gone reports why itself
                workers["consumer"].pipe.send(("expect", expect))

        sampler = ProcessSampler(broker.pid, SAMPLE_INTERVAL)
        out = run_phase(
            "flow-bench",
            [("consumer", consumer_process, con_cfg), ("prober", prober_process, prb_cfg),
             ("publisher", publisher_process, pub_cfg)],
            sampler,
            on_report,
            limit=s.seconds + 900,
            sample_at=[s.seconds],
        )  # fmt: skip
        drained = sampler.sample() if broker.pid else None
        row.problems.extend(out.problems)
        pub: PublisherResult | None = out.results.get("publisher")
        con: ConsumerResult | None = out.results.get("consumer")
        prb: ProberResult | None = out.results.get("prober")
        if pub is None or con is None:
            return
        t0, t1 = pub.t_start, pub.t_written
        row.window_s = t1 - t0
        row.written = pub.published
        unread = [pub.end_user_buffer, pub.end_send_queue, pub.end_peer_unread]
        row.in_sockets_partial = None in unread
        row.in_sockets = round(sum(b or 0 for b in unread) / max(1, pub.message_bytes))
        row.published = row.written - row.in_sockets
        timeline = con.timeline()
        delivered_by_end = timeline.delivered_by(t1)
        row.con_in_window = delivered_by_end - timeline.delivered_by(t0)
        if row.window_s > 0:
            row.written_rate = row.written / row.window_s
            row.pub_rate = row.published / row.window_s
            row.con_rate = row.con_in_window / row.window_s
            row.con_share = report.ratio(row.con_rate, row.pub_rate)
        row.depth_end = row.published - delivered_by_end
        if con.t_last:
            row.drain_s = max(0.0, con.t_last - t1)
        row.delivered, row.acked, row.nacked = con.delivered, pub.acked, pub.nacked
        if pub.latency_ms:
            row.confirm_p50, row.confirm_p99 = pub.latency_ms[0] / 1e3, pub.latency_ms[1] / 1e3
        if prb is not None:
            rtts = [rtt for sent, rtt in prb.samples if t0 <= sent <= t1]
            row.side_n = len(rtts)
            row.side_p50, row.side_p99 = report.percentiles(rtts, (0.50, 0.99))
            row.side_max = max(rtts) if rtts else None
            if prb.snapshot is not None and prb.snapshot[2] >= 0:
                row.passive_depth = prb.snapshot[2]
                row.passive_sent = prb.snapshot[0] - t1
                row.passive_answered = prb.snapshot[1] - t1
            else:
                row.problems.append("no queue.declare(passive) answer at the end of the window")
            row.problems.extend(f"side client: {p}" for p in prb.problems)
        if broker.pid:
            row.cpu_mean = sampler.cores(t0, t1)
            row.cpu_peak = sampler.peak_cores(t0, t1)
            row.rss_peak = sampler.peak_rss(t0, t1)
            row.rss_end = sampler.rss_at(t1)
            row.rss_drained = drained.rss if drained is not None else None
        self._check(row, pub, con, size, persistent)

    @staticmethod
    def _check(row: FlowRun, pub: PublisherResult, con: ConsumerResult, size: int, persistent: bool) -> None:
        p = row.problems
        p.extend(f"publisher: {x}" for x in pub.problems)
        p.extend(f"consumer: {x}" for x in con.problems)
        if pub.published == 0:
            p.append("nothing was published")
        if con.delivered != pub.published:
            p.append(f"{con.delivered} deliveries, {pub.published} published")
        if con.body_bytes != con.delivered * size:
            p.append(f"{con.body_bytes} body bytes for {con.delivered} deliveries of {size} B")
        if con.redelivered:
            p.append(f"{con.redelivered} redelivered")
        if con.tag_gaps:
            p.append(f"{con.tag_gaps} non-consecutive delivery tags")
        if persistent:
            if pub.acked != pub.published:
                p.append(f"confirms: {pub.acked} acked of {pub.published} published")
            if pub.nacked:
                p.append(f"confirms: {pub.nacked} nacked")
            if pub.confirm_problems:
                p.append(f"confirms: {pub.confirm_problems} duplicate or unknown")


# -- summary --------------------------------------------------------------------------------

Key = tuple[int, str]


def _group(runs: Sequence[FlowRun], label: str) -> dict[Key, list[FlowRun]]:
    groups: dict[Key, list[FlowRun]] = {}
    for r in runs:
        if r.broker == label:
            groups.setdefault((r.size, r.mode), []).append(r)
    return groups


def _med(rs: Sequence[FlowRun], attr: str) -> float | None:
    return median(getattr(r, attr) for r in rs)


def _check_cell(rs: Sequence[FlowRun]) -> str:
    failed = sum(not r.ok for r in rs)
    return "ok" if not failed else f"FAIL {failed}/{len(rs)}"


def _sockets(r: FlowRun) -> str:
    return fmt(r.in_sockets, ",") + ("+" if r.in_sockets_partial else "")


def live_line(r: FlowRun) -> str:
    conf = f" confirm {ms(r.confirm_p50)}/{ms(r.confirm_p99)} ms" if r.confirm_p50 is not None else ""
    return (
        f"  {r.broker:<10} r{r.round}  {size_label(r.size):>5} {r.mode:<10} "
        f"written {fmt(r.written_rate, ',.0f')}/s in sockets {_sockets(r)}  "
        f"pub {fmt(r.pub_rate, ',.0f')}/s  con {fmt(r.con_rate, ',.0f')}/s ({fmt(r.con_share, '.2f')})  "
        f"depth {fmt(r.depth_end, ',')} passive {fmt(r.passive_depth, ',')}  "
        f"side {ms(r.side_p50)}/{ms(r.side_p99)}/{ms(r.side_max)} ms{conf}  "
        f"cpu {fmt(r.cpu_mean, '.2f')}/{fmt(r.cpu_peak, '.2f')}  "
        f"rss {mib(r.rss_peak)}/{mib(r.rss_end)}/{mib(r.rss_drained)} MiB  "
        + ("ok" if r.ok else "FAIL: " + "; ".join(r.problems))
    )


def summary_tables(runs: Sequence[FlowRun], label: str) -> str:
    groups = _group(runs, label)
    rates = []
    side = []
    for (size, mode), rs in groups.items():
        depth = _med(rs, "depth_end")
        passive = _med(rs, "passive_depth")
        rates.append(
            [
                size_label(size),
                mode,
                fmt(_med(rs, "written_rate"), ",.0f"),
                fmt(_med(rs, "in_sockets"), ",.0f") + ("+" if any(r.in_sockets_partial for r in rs) else ""),
                fmt(_med(rs, "pub_rate"), ",.0f"),
                fmt(_med(rs, "con_rate"), ",.0f"),
                fmt(_med(rs, "con_share"), ".2f"),
                fmt(depth, ",.0f"),
                fmt(passive, ",.0f"),
                fmt(_med(rs, "passive_answered"), ".2f"),
                fmt(_med(rs, "drain_s"), ".2f"),
                _check_cell(rs),
            ]
        )
        side.append(
            [
                size_label(size),
                mode,
                f"{ms(_med(rs, 'side_p50'))} / {ms(_med(rs, 'side_p99'))} / {ms(_med(rs, 'side_max'))}",
                fmt(_med(rs, "side_n"), ".0f"),
                f"{ms(_med(rs, 'confirm_p50'))} / {ms(_med(rs, 'confirm_p99'))}"
                if mode == "persistent"
                else "-",
                f"{fmt(_med(rs, 'cpu_mean'), '.2f')} / {fmt(_med(rs, 'cpu_peak'), '.2f')}",
                f"{mib(_med(rs, 'rss_peak'))} / {mib(_med(rs, 'rss_end'))} / {mib(_med(rs, 'rss_drained'))}",
            ]
        )
    h1 = ["size", "mode", "written msg/s", "in sockets", "pub msg/s", "con msg/s", "con/pub",
          "depth end", "passive", "passive +s", "drain s", "check"]  # fmt: skip
    h2 = ["size", "mode", "side p50/p99/max ms", "n", "confirm p50/p99 ms", "CPU mean/peak",
          "RSS peak/end/drained MiB"]  # fmt: skip
    return report.table(h1, rates, left=2) + "\n\n" + report.table(h2, side, left=2)


def compare_table(runs: Sequence[FlowRun], a: str, b: str) -> str:
    ga, gb = _group(runs, a), _group(runs, b)
    rows = []
    for key, ra in ga.items():
        rb = gb.get(key)
        if not rb:
            continue
        ca, cb = _med(ra, "con_rate"), _med(rb, "con_rate")
        pa, pb = _med(ra, "pub_rate"), _med(rb, "pub_rate")
        rows.append(
            [
                size_label(key[0]),
                key[1],
                fmt(ca, ",.0f"),
                fmt(cb, ",.0f"),
                fmt(report.ratio(ca, cb), ".2f"),
                fmt(pa, ",.0f"),
                fmt(pb, ",.0f"),
                fmt(report.ratio(pa, pb), ".2f"),
                fmt(_med(ra, "depth_end"), ",.0f"),
                fmt(_med(rb, "depth_end"), ",.0f"),
            ]
        )
    headers = ["size", "mode", f"{a} con msg/s", f"{b} con msg/s", "ratio", f"{a} pub msg/s",
               f"{b} pub msg/s", "ratio", f"{a} depth end", f"{b} depth end"]  # fmt: skip
    return report.table(headers, rows, left=2)


def evaluate_floors(runs: Sequence[FlowRun], a: str, b: str | None, prefetch: int) -> list[Floor]:
    floors: list[Floor] = []
    for label, counts in ((a, True), *(((b, False),) if b else ())):
        for (size, mode), rs in _group(runs, label).items():
            case = f"{label} {size_label(size)} {mode}"
            share = _med(rs, "con_share")
            floors.append(
                Floor(
                    f"{case}: consumer rate during publishing >= {FLOOR_CON_SHARE} x publish rate",
                    None if share is None else share >= FLOOR_CON_SHARE,
                    f"{fmt(_med(rs, 'con_rate'), ',.0f')} / {fmt(_med(rs, 'pub_rate'), ',.0f')} msg/s "
                    f"= {fmt(share, '.2f')}",
                    counts,
                )
            )
            depth = _med(rs, "depth_end")
            bound = FLOOR_DEPTH_PREFETCHES * prefetch
            floors.append(
                Floor(
                    f"{case}: queue depth at the end of the window <= {FLOOR_DEPTH_PREFETCHES} x prefetch "
                    f"({bound:,})",
                    None if depth is None else depth <= bound,
                    f"published - delivered = {fmt(depth, ',.0f')} "
                    f"(broker's passive count {fmt(_med(rs, 'passive_depth'), ',.0f')}; "
                    f"{fmt(_med(rs, 'in_sockets'), ',.0f')} more written but still in socket buffers)",
                    counts,
                )
            )
    if b:
        ga, gb = _group(runs, a), _group(runs, b)
        for size, mode, minimum in COMPARE_FLOORS:
            what = "transient" if mode == "transient" else "persistent with confirms"
            text = f"{size_label(size)} consumer rate during publishing >= {minimum:.1f} x {b} ({what})"
            ra, rb = ga.get((size, mode)), gb.get((size, mode))
            if not ra or not rb:
                floors.append(Floor(text, None, "not run"))
                continue
            ca, cb = _med(ra, "con_rate"), _med(rb, "con_rate")
            r = report.ratio(ca, cb)
            floors.append(
                Floor(
                    text,
                    None if r is None else r >= minimum,
                    f"{fmt(ca, ',.0f')} / {fmt(cb, ',.0f')} msg/s = {fmt(r, '.2f')}",
                )
            )
    return floors


# -- main -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        epilog="Every column and floor is explained under the tables and in the module docstring.",
    )
    parser.add_argument("--url", default=DEFAULT_URL, help=f"broker under test (default {DEFAULT_URL})")
    parser.add_argument("--label", default=None, help="its name in the output (default jackalope)")
    parser.add_argument("--compare-url", default=None, help="reference broker, run in alternation")
    parser.add_argument("--compare-label", default=None, help="its name (default reference)")
    parser.add_argument("--broker-pid", type=int, default=None, help="process of --url (default: by port)")
    parser.add_argument("--compare-broker-pid", type=int, default=None, help="process of --compare-url")
    parser.add_argument("--seconds", type=float, default=None, help="publishing window per run (default 5)")
    parser.add_argument("--rounds", type=int, default=1, help="runs per broker and case (default 1)")
    parser.add_argument("--sizes", default=None, help="body sizes, e.g. 16,1K (default)")
    parser.add_argument("--modes", default=None, help="transient,persistent (default both)")
    parser.add_argument("--prefetch", type=int, default=1000, help="consumer basic.qos prefetch_count")
    parser.add_argument("--confirm-window", type=int, default=1000, help="persistent: unconfirmed max")
    parser.add_argument("--quick", action="store_true", help="2 s windows: a smoke test, not figures")
    parser.add_argument("--json", default=None, help="also write every run's figures here")
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 2.0 if args.quick else 5.0
    args.size_list = [parse_size(x) for x in args.sizes.split(",")] if args.sizes else list(DEFAULT_SIZES)
    args.mode_list = [m.strip() for m in args.modes.split(",")] if args.modes else list(MODES)
    if set(args.mode_list) - set(MODES):
        parser.error(f"modes are {', '.join(MODES)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    a = Broker(args.label or "jackalope", args.url, args.broker_pid)
    brokers = [a]
    if args.compare_url:
        b = Broker(args.compare_label or "reference", args.compare_url, args.compare_broker_pid)
        if b.label == a.label:
            b.label += "-2"
        brokers.append(b)
    for br in brokers:
        try:
            probe(br)
        except (OSError, AmqpError, TimeoutError) as exc:
            print(f"cannot use {br.label} at {AmqpUrl.parse(br.url).display()}: {exc}", file=sys.stderr)
            return 2
    lines = report.header_lines("AMQP credit-flow benchmark (consumer rate while publishing)", brokers)
    lines += [
        f"runs        {args.seconds:g} s publishing window, {args.rounds} round(s) per broker"
        + (", brokers alternating" if len(brokers) > 1 else ""),
        f"cases       sizes {', '.join(size_label(s) for s in args.size_list)}; "
        f"modes {', '.join(args.mode_list)}",
        f"settings    prefetch {args.prefetch} (ack multiple every {max(1, args.prefetch // 4)}), "
        f"confirm window {args.confirm_window} (persistent), side client every "
        f"{PROBE_INTERVAL * 1e3:.0f} ms, broker sampled every {SAMPLE_INTERVAL * 1e3:.0f} ms",
    ]
    print("\n".join(lines), flush=True)
    bench = FlowBench(Settings(args.seconds, args.prefetch, args.confirm_window))
    cases = [(size, mode) for mode in args.mode_list for size in args.size_list]
    print(f"\n{len(cases)} cases x {args.rounds} round(s) x {len(brokers)} broker(s)\n", flush=True)
    runs: list[FlowRun] = []
    try:
        for size, mode in cases:
            for rnd in range(1, args.rounds + 1):
                for br in brokers:
                    r = bench.run(br, size, mode, rnd)
                    runs.append(r)
                    print(live_line(r), flush=True)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        for br in brokers:
            try:
                left = br.cleanup()
            except (OSError, AmqpError, TimeoutError) as exc:
                left = [str(exc)]
            for problem in left:
                print(f"cleanup on {br.label}: {problem}", file=sys.stderr)

    print()
    for br in brokers:
        print(f"{br.label} ({br.server})" + (f": median of {args.rounds} rounds" if args.rounds > 1 else ""))
        print(summary_tables(runs, br.label))
        print()
    b_label = brokers[1].label if len(brokers) == 2 else None
    if b_label:
        print(f"{a.label} vs {b_label}: ratio = {a.label} / {b_label}")
        print(compare_table(runs, a.label, b_label))
        print()
    floors = evaluate_floors(runs, a.label, b_label, args.prefetch)
    print("Floors")
    print("\n".join(f.line() for f in floors))
    print()
    print(report.doc_section(__doc__, "Columns:"))
    print()
    failed = [r for r in runs if not r.ok]
    if failed:
        print(f"{len(failed)} run(s) failed their checks:")
        for r in failed:
            print(f"  {r.broker} r{r.round} {size_label(r.size)} {r.mode}: {'; '.join(r.problems)}")
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
                    "runs": [asdict(r) for r in runs],
                    "floors": [asdict(f) for f in floors],
                },
                fh,
                indent=1,
            )  # fmt: skip
    return 1 if failed or report.floors_failed(floors) else 0


if __name__ == "__main__":
    sys.exit(main())
