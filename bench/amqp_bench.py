"""AMQP 0-9-1 broker benchmark: throughput and publisher-confirm latency, optionally A/B.

Run from the repository root, with a broker listening::

    .venv/bin/python bench/amqp_bench.py [--url URL] [--compare-url URL] [--rounds N]
                                         [--scenario LIST] [--sizes LIST] [--modes LIST]
                                         [--seconds S] [--quick] [--json PATH]

``--url`` is the broker under test (default ``amqp://guest:guest@127.0.0.1:5673/``, where
``jackalope serve --amqp-port 5673`` listens); ``--compare-url`` adds a second broker (say
RabbitMQ on 5672): every run is then done on both, alternating A, B, A, B for ``--rounds``
rounds, and the summary gives each broker's median and the ratio A / B.

Scenarios, each for every body size (default 16 B, 1 KB, 64 KB; KB = 1024 B) and mode:

* ``publish``          one publisher to one queue, no consumer, for ``--seconds`` (or until
                       ``--max-mb`` of bodies).  Ends when the broker holds every message: the
                       last confirm (persistent), or, for transient, when queue.declare(passive)
                       on the publishing channel reports all of them;
* ``consume``          one consumer draining the queue ``publish`` filled (run right after it,
                       so selecting ``consume`` alone still runs an unreported fill);
* ``publish-consume``  a publisher and a consumer on one queue at the same time; the publisher
                       stops after ``--seconds``, the run ends when everything is consumed (and
                       confirmed); msg/s = published / that time;
* ``confirm-1``        publisher confirms with one message outstanding at a time: p50 / p99 of
                       publish-to-confirm time, no consumer;
* ``confirm-window``   the same with ``--latency-window`` (default 64) messages outstanding;
* ``fanout``           a fanout exchange bound to 10 queues, one consumer process on all 10;
                       msg/s counts published messages (deliveries are 10 times that);
* ``pika``             (not in the default set) pika's BlockingConnection publishing 16 B
                       transient messages, as ``publish`` measures them: what a pure-Python
                       client library reaches against the same broker.

Modes: ``transient`` (delivery_mode 1, non-durable queue, no confirms except in the confirm-*
scenarios) and ``persistent`` (delivery_mode 2, durable queue, publisher confirms with up to
``--confirm-window`` messages outstanding, default 1000).

The generator (``bench/amqp_load``) runs the publisher and the consumer in separate processes,
each on uvloop over a raw socket: pamqp for the handshake, then precomputed frame bytes (many
messages per write) and a parser that only walks frame lengths.  The consumer uses basic.qos
``--prefetch`` (default 1000) and acks with multiple=True every prefetch / 4 deliveries.  Every
run is checked while it is measured: deliveries = published (per queue for fanout), no
redeliveries, consecutive delivery tags, body bytes, confirms cover every publish with no nack,
queue depth after publish and after consume.  A failed check marks the row and makes the exit
status 1, as does a missed target (targets are checked only with ``--compare-url``).

CPU columns: cores used during the run (CPU seconds / wall seconds) by the publisher process,
the consumer process, the broker process (found by its listening port, or ``--broker-pid``) and
the whole machine.  MB = 10**6 bytes; MB/s counts message bodies only.  Every queue and exchange
the script declares is deleted before it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import ipaddress
import json
import multiprocessing
import os
import platform
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final, TypeVar

from pamqp import commands

from amqp_load import sysstat
from amqp_load.wire import AmqpError, AmqpUrl, Connection
from amqp_load.workers import (
    ConsumerConfig,
    ConsumerResult,
    PublisherConfig,
    PublisherResult,
    consumer_process,
    pika_publisher_process,
    publisher_process,
)
from bench_workers import Worker, spawn

DEFAULT_URL: Final = "amqp://guest:guest@127.0.0.1:5673/"
SCENARIOS: Final = ("publish", "consume", "publish-consume", "confirm-1", "confirm-window", "fanout", "pika")
DEFAULT_SCENARIOS: Final = SCENARIOS[:-1]
MODES: Final = ("transient", "persistent")
DEFAULT_SIZES: Final = (16, 1024, 65536)
FANOUT_QUEUES: Final = 10
WRITE_BYTES: Final = 64 * 1024  # target size of one publisher write
MB: Final = 1_000_000
START_DELAY: Final = 0.05  # between "go" and the start time, so both processes start together
BUSY_CORES: Final = 0.2  # other processes using more than this during a run: flagged with "*"
QUIET_CORES: Final = 0.1  # --wait-quiet waits for other processes to use less than this

# --compare-url targets: (scenario, size, mode, lowest ratio A/B of msg/s)
TARGETS: Final = (
    ("publish-consume", 16, "transient", 0.5),
    ("publish-consume", 16, "persistent", 1.0),
)

T = TypeVar("T")


# -- brokers and their administration -------------------------------------------------------


@dataclass
class Broker:
    label: str
    url: str
    pid: int | None = None
    server: str = "?"
    frame_max: int = 0
    queues: set[str] = field(default_factory=set)
    exchanges: set[str] = field(default_factory=set)

    def admin(self, fn: Callable[[Connection], Awaitable[T]]) -> T:
        """Run ``fn`` on a fresh connection with channel 1 open (asyncio, in this process)."""

        async def go() -> T:
            conn = await Connection.open(AmqpUrl.parse(self.url), product="jackalope amqp_bench admin")
            try:
                await conn.open_channel(1)
                return await fn(conn)
            finally:
                await conn.close()

        return asyncio.run(go())

    def declare_queue(self, name: str, durable: bool) -> None:
        self.queues.add(name)

        async def fn(conn: Connection) -> None:
            await conn.rpc(1, commands.Queue.Declare(queue=name, durable=durable), commands.Queue.DeclareOk)

        self.admin(fn)

    def declare_fanout(self, exchange: str, queues: Sequence[str], durable: bool) -> None:
        self.exchanges.add(exchange)
        self.queues.update(queues)

        async def fn(conn: Connection) -> None:
            await conn.rpc(
                1,
                commands.Exchange.Declare(exchange=exchange, exchange_type="fanout", durable=durable),
                commands.Exchange.DeclareOk,
            )
            for q in queues:
                await conn.rpc(1, commands.Queue.Declare(queue=q, durable=durable), commands.Queue.DeclareOk)
                await conn.rpc(1, commands.Queue.Bind(queue=q, exchange=exchange), commands.Queue.BindOk)

        self.admin(fn)

    def queue_depth(self, name: str) -> int:
        async def fn(conn: Connection) -> int:
            ok = await conn.rpc(1, commands.Queue.Declare(queue=name, passive=True), commands.Queue.DeclareOk)
            return ok.message_count or 0

        return self.admin(fn)

    def delete(self, queues: Sequence[str] = (), exchanges: Sequence[str] = ()) -> list[str]:
        """Delete queues and exchanges; returns what went wrong (not found counts as deleted)."""

        async def fn(conn: Connection) -> list[str]:
            errors: list[str] = []
            for q in queues:
                try:
                    await conn.rpc(1, commands.Queue.Delete(queue=q), commands.Queue.DeleteOk)
                except AmqpError as exc:
                    if "404" not in str(exc):
                        errors.append(f"delete queue {q}: {exc}")
                    await conn.open_channel(1)
            for x in exchanges:
                try:
                    await conn.rpc(1, commands.Exchange.Delete(exchange=x), commands.Exchange.DeleteOk)
                except AmqpError as exc:
                    if "404" not in str(exc):
                        errors.append(f"delete exchange {x}: {exc}")
                    await conn.open_channel(1)
            return errors

        errors = self.admin(fn)
        self.queues.difference_update(queues)
        self.exchanges.difference_update(exchanges)
        return errors

    def cleanup(self) -> list[str]:
        if not self.queues and not self.exchanges:
            return []
        return self.delete(sorted(self.queues), sorted(self.exchanges))


def _is_local(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


def probe(broker: Broker) -> None:
    """Connect once: broker name and version, frame_max, and its process if it is local."""

    async def fn(conn: Connection) -> None:
        props = conn.server_properties
        broker.server = f"{_text(props.get('product'))} {_text(props.get('version'))}".strip()
        broker.frame_max = conn.frame_max

    broker.admin(fn)
    url = AmqpUrl.parse(broker.url)
    if broker.pid is None and _is_local(url.host):
        broker.pid = sysstat.listener_pid(url.port)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return "?" if value is None else str(value)


# -- one run: worker processes --------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    size: int
    mode: str
    broker: str
    round: int
    messages: int = 0
    seconds: float = 0.0
    rate: float = 0.0  # msg/s
    mbps: float = 0.0  # body MB/s
    p50_ms: float | None = None
    p99_ms: float | None = None
    pub_cores: float | None = None
    con_cores: float | None = None
    broker_cores: float | None = None
    machine_cores: float | None = None
    kernel_cores: float | None = None  # kernel threads (writeback, block I/O, softirq)
    other_cores: float | None = None  # every other user process (not the broker, not the generator)
    note: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def busy(self) -> bool:
        """Other processes used enough CPU during the run to have disturbed it."""
        return (self.other_cores or 0.0) > BUSY_CORES


@dataclass
class Outcome:
    pub: PublisherResult | None = None
    con: ConsumerResult | None = None
    t_go: float = 0.0
    cpu: sysstat.CpuWindow | None = None
    problems: list[str] = field(default_factory=list)


_CTX = multiprocessing.get_context("fork")


def _spawn(name: str, target: Callable[..., None], *args: Any) -> Worker:
    return spawn(_CTX, "amqp-bench", name, target, *args)


def run_workers(
    broker: Broker,
    seconds: float,
    pub: PublisherConfig | None = None,
    con: ConsumerConfig | None = None,
    pika_queue: str | None = None,
    fanout: int = 1,
    quiet_wait: float = 0.0,
) -> Outcome:
    """Start the processes, release them together, collect and join them."""
    out = Outcome()
    workers: list[Worker] = []
    if quiet_wait > 0:  # wait (a while) for other processes to leave the CPUs alone
        give_up = time.monotonic() + quiet_wait
        skip = {os.getpid(), broker.pid or 0}
        while sysstat.other_load(skip, 0.3) > QUIET_CORES and time.monotonic() < give_up:
            pass
    try:
        if con is not None:
            workers.append(_spawn("consumer", consumer_process, con))
        if pub is not None:
            workers.append(_spawn("publisher", publisher_process, pub))
        if pika_queue is not None:
            workers.append(_spawn("publisher", pika_publisher_process, broker.url, pika_queue, 16, seconds))
        for w in workers:
            kind, value = w.receive(60)
            if kind != "ready":
                out.problems.append(f"{w.name}: {value}")
        if out.problems:
            return out
        out.t_go = time.monotonic() + START_DELAY
        out.cpu = sysstat.CpuWindow(broker.pid, {os.getpid(), *(w.process.pid or 0 for w in workers)})
        for w in workers:
            w.pipe.send(("go", out.t_go))
        time.sleep(max(0.0, out.t_go - time.monotonic()))
        out.cpu.start(time.monotonic())
        limit = seconds + 180
        publisher = next((w for w in workers if w.name == "publisher"), None)
        consumer = next((w for w in workers if w.name == "consumer"), None)
        if publisher is not None:
            kind, value = publisher.receive(limit)
            if kind == "result":
                out.pub = value
            else:
                out.problems.append(f"publisher: {value}")
        if consumer is not None:
            if out.pub is not None and con is not None and not con.expected:
                consumer.pipe.send(("expect", out.pub.published * fanout))
            elif out.pub is None and pub is not None:
                consumer.pipe.send(("expect", -1))  # the publisher failed: stop
            kind, value = consumer.receive(limit + 600)
            if kind == "result":
                out.con = value
            else:
                out.problems.append(f"consumer: {value}")
        out.cpu.stop(time.monotonic())
    finally:
        for w in workers:
            w.process.join(10)
            if w.process.is_alive():
                w.process.terminate()
                w.process.join(5)
            w.pipe.close()
    return out


# -- scenarios ------------------------------------------------------------------------------


@dataclass
class Settings:
    seconds: float
    max_bytes: int
    confirm_window: int
    latency_window: int
    prefetch: int
    quiet_wait: float
    sizes: list[int]
    modes: list[str]


class Bench:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self._serial = 0

    def name(self, what: str) -> str:
        self._serial += 1
        return f"amqp-bench-{os.getpid()}-{self._serial}-{what}"

    # helpers --------------------------------------------------------------------------------

    def _pub_cfg(self, broker: Broker, exchange: str, key: str, size: int, mode: str) -> PublisherConfig:
        persistent = mode == "persistent"
        msg_len = size + 90 + 8 * (size // max(1, broker.frame_max - 8))
        batch = max(1, WRITE_BYTES // msg_len)
        window = self.s.confirm_window
        if persistent:
            batch = min(batch, max(1, window // 4))
        return PublisherConfig(
            url=broker.url,
            exchange=exchange,
            routing_key=key,
            body_size=size,
            delivery_mode=2 if persistent else 1,
            seconds=self.s.seconds,
            max_bytes=self.s.max_bytes,
            confirms=persistent,
            window=window,
            write_batch=batch,
            min_write=batch,
            record_latency=persistent,
        )

    def _con_cfg(self, broker: Broker, queues: list[str], expected: int = 0) -> ConsumerConfig:
        return ConsumerConfig(
            url=broker.url,
            queues=queues,
            prefetch=self.s.prefetch,
            ack_every=max(1, self.s.prefetch // 4),
            expected=expected,
            consume_at_go=expected > 0,
        )

    @staticmethod
    def _cpu(row: Row, out: Outcome) -> None:
        if out.pub is not None and out.pub.t_end > out.pub.t_start:
            row.pub_cores = out.pub.cpu_seconds / (out.pub.t_end - out.pub.t_start)
        if out.con is not None and out.con.t_last > out.con.t_start:
            row.con_cores = out.con.cpu_seconds / (out.con.t_last - out.con.t_start)
        if out.cpu is not None:
            row.broker_cores = out.cpu.broker_cores
            row.machine_cores = out.cpu.machine_cores
            row.other_cores = out.cpu.others_cores
            row.kernel_cores = out.cpu.kernel_cores

    @staticmethod
    def _check_pub(row: Row, pub: PublisherResult, confirms: bool, queue_expected: bool) -> None:
        p = row.problems
        p.extend(f"publisher: {x}" for x in pub.problems)
        if pub.published == 0:
            p.append("nothing was published")
        if confirms:
            if pub.acked != pub.published:
                p.append(f"confirms: {pub.acked} acked of {pub.published} published")
            if pub.nacked:
                p.append(f"confirms: {pub.nacked} nacked")
            if pub.confirm_problems:
                p.append(f"confirms: {pub.confirm_problems} duplicate or unknown")
        if queue_expected and pub.queue_count != pub.published:
            p.append(f"queue holds {pub.queue_count} messages, {pub.published} were published")

    @staticmethod
    def _check_con(row: Row, con: ConsumerResult, per_queue: dict[str, int], size: int) -> None:
        p = row.problems
        p.extend(f"consumer: {x}" for x in con.problems)
        expected = sum(per_queue.values())
        if con.delivered != expected:
            p.append(f"{con.delivered} deliveries, expected {expected}")
        for q, n in per_queue.items():
            got = con.per_queue.get(q, 0)
            if got != n and len(per_queue) > 1:
                p.append(f"queue {q.rsplit('-', 1)[-1]}: {got} deliveries, expected {n}")
        if con.body_bytes != con.delivered * size:
            p.append(f"{con.body_bytes} body bytes for {con.delivered} deliveries of {size} B")
        if con.redelivered:
            p.append(f"{con.redelivered} redelivered")
        if con.tag_gaps:
            p.append(f"{con.tag_gaps} non-consecutive delivery tags")

    def _cleanup(
        self, broker: Broker, row: Row, queues: Sequence[str], exchanges: Sequence[str] = ()
    ) -> None:
        try:
            row.problems.extend(broker.delete(queues, exchanges))
        except (AmqpError, OSError, TimeoutError) as exc:
            row.problems.append(f"cleanup: {exc}")

    # scenarios ------------------------------------------------------------------------------

    def publish_consume_separately(
        self, broker: Broker, size: int, mode: str, rnd: int, want: set[str]
    ) -> list[Row]:
        persistent = mode == "persistent"
        q = self.name("q")
        pub_row = Row("publish", size, mode, broker.label, rnd)
        con_row = Row("consume", size, mode, broker.label, rnd)
        rows = [r for r in (pub_row, con_row) if r.scenario in want]
        try:
            broker.declare_queue(q, durable=persistent)
            cfg = self._pub_cfg(broker, "", q, size, mode)
            cfg.sync_queue = q
            out = run_workers(broker, self.s.seconds, quiet_wait=self.s.quiet_wait, pub=cfg)
            pub_row.problems.extend(out.problems)
            if out.pub is not None:
                pub = out.pub
                self._check_pub(pub_row, pub, persistent, queue_expected=True)
                pub_row.messages = pub.published
                pub_row.seconds = pub.t_end - pub.t_start
                if pub.latency_ms:
                    pub_row.p50_ms, pub_row.p99_ms = pub.latency_ms[:2]
                pub_row.note = "end: last confirm" if persistent else "end: queue depth reached"
                self._cpu(pub_row, out)
            if "consume" in want:
                if out.pub is None or not out.pub.queue_count:
                    con_row.problems.append("no messages to consume (publish failed)")
                else:
                    n = out.pub.queue_count
                    out = run_workers(
                        broker,
                        self.s.seconds,
                        quiet_wait=self.s.quiet_wait,
                        con=self._con_cfg(broker, [q], expected=n),
                    )
                    con_row.problems.extend(out.problems)
                    if out.con is not None:
                        con = out.con
                        self._check_con(con_row, con, {q: out.pub.published if out.pub else n}, size)
                        con_row.messages = con.delivered
                        con_row.seconds = con.t_last - con.t_start
                        con_row.note = f"pre-filled {n:,}"
                        self._cpu(con_row, out)
                        left = broker.queue_depth(q)
                        if left:
                            con_row.problems.append(f"{left} messages left in the queue")
        finally:
            self._cleanup(broker, rows[0], [q])
        return rows

    def streaming(self, broker: Broker, size: int, mode: str, rnd: int, fanout: bool) -> Row:
        persistent = mode == "persistent"
        row = Row("fanout" if fanout else "publish-consume", size, mode, broker.label, rnd)
        exchanges: list[str] = []
        if fanout:
            x = self.name("fanout")
            queues = [self.name(f"f{i}") for i in range(FANOUT_QUEUES)]
            exchanges = [x]
        else:
            x = ""
            queues = [self.name("q")]
        try:
            if fanout:
                broker.declare_fanout(x, queues, durable=persistent)
            else:
                broker.declare_queue(queues[0], durable=persistent)
            pub_cfg = self._pub_cfg(broker, x, "" if fanout else queues[0], size, mode)
            out = run_workers(
                broker,
                self.s.seconds,
                pub=pub_cfg,
                con=self._con_cfg(broker, queues),
                fanout=len(queues),
                quiet_wait=self.s.quiet_wait,
            )
            row.problems.extend(out.problems)
            if out.pub is not None and out.con is not None:
                pub, con = out.pub, out.con
                self._check_pub(row, pub, persistent, queue_expected=False)
                self._check_con(row, con, dict.fromkeys(queues, pub.published), size)
                row.messages = pub.published
                row.seconds = max(con.t_last, pub.t_end) - out.t_go
                if pub.latency_ms:
                    row.p50_ms, row.p99_ms = pub.latency_ms[:2]
                pub_rate = pub.published / max(pub.t_written - pub.t_start, 1e-9)
                row.note = f"publisher alone {pub_rate:,.0f}/s"
                if fanout:
                    row.note = f"{len(queues)} deliveries each; " + row.note
                self._cpu(row, out)
        finally:
            self._cleanup(broker, row, queues, exchanges)
        return row

    def confirm_latency(self, broker: Broker, size: int, mode: str, rnd: int, window: int) -> Row:
        persistent = mode == "persistent"
        row = Row("confirm-1" if window == 1 else "confirm-window", size, mode, broker.label, rnd)
        q = self.name("q")
        try:
            broker.declare_queue(q, durable=persistent)
            cfg = self._pub_cfg(broker, "", q, size, mode)
            cfg.confirms = True
            cfg.record_latency = True
            cfg.window = window
            cfg.write_batch = window
            cfg.min_write = 1
            cfg.sync_queue = q
            out = run_workers(broker, self.s.seconds, quiet_wait=self.s.quiet_wait, pub=cfg)
            row.problems.extend(out.problems)
            if out.pub is not None:
                pub = out.pub
                self._check_pub(row, pub, True, queue_expected=True)
                row.messages = pub.acked
                row.seconds = pub.t_end - pub.t_start
                if pub.latency_ms:
                    row.p50_ms, row.p99_ms = pub.latency_ms[:2]
                    mean, worst = pub.latency_ms[2:]
                    row.note = f"{window} outstanding; mean {mean:.3f} ms, max {worst:.1f} ms"
                self._cpu(row, out)
        finally:
            self._cleanup(broker, row, [q])
        return row

    def pika(self, broker: Broker, rnd: int) -> Row:
        row = Row("pika", 16, "transient", broker.label, rnd)
        q = self.name("pika")
        try:
            broker.declare_queue(q, durable=False)
            out = run_workers(broker, self.s.seconds, quiet_wait=self.s.quiet_wait, pika_queue=q)
            row.problems.extend(out.problems)
            if out.pub is not None:
                pub = out.pub
                self._check_pub(row, pub, False, queue_expected=True)
                row.messages = pub.published
                row.seconds = pub.t_end - pub.t_start
                row.note = f"{pub.server} BlockingConnection.basic_publish; end: queue depth reached"
                self._cpu(row, out)
        finally:
            self._cleanup(broker, row, [q])
        return row


def finish(row: Row) -> Row:
    if row.seconds > 0:
        row.rate = row.messages / row.seconds
        row.mbps = row.rate * row.size / MB
    return row


# -- output ---------------------------------------------------------------------------------


def size_label(size: int) -> str:
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KB"
    return f"{size} B"


def parse_size(text: str) -> int:
    t = text.strip().upper().removesuffix("B").strip()
    for suffix, factor in (("K", 1024), ("M", 1024 * 1024)):
        if t.endswith(suffix):
            return int(float(t[: -len(suffix)]) * factor)
    return int(t)


def _f(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def live_line(row: Row) -> str:
    lat = f"p50 {_f(row.p50_ms, '.3f')} p99 {_f(row.p99_ms, '.3f')} ms" if row.p50_ms is not None else ""
    cpu = (
        f"cpu pub {_f(row.pub_cores, '.2f')} con {_f(row.con_cores, '.2f')} "
        f"broker {_f(row.broker_cores, '.2f')} kthreads {_f(row.kernel_cores, '.2f')} "
        f"other {_f(row.other_cores, '.2f')} machine {_f(row.machine_cores, '.2f')}"
    )
    check = ("ok" if row.ok else "FAIL: " + "; ".join(row.problems)) + ("*" if row.busy else "")
    return (
        f"  {row.broker:<10} r{row.round}  {row.scenario:<15} {size_label(row.size):>5}  {row.mode:<10} "
        f"{row.rate:>11,.0f} msg/s {row.mbps:>8.1f} MB/s  {lat:<28} {cpu}  {check}"
    )


def _stars(rows: Sequence[Row]) -> str:
    busy = sum(r.busy for r in rows)
    return f" *{busy}" if busy else ""


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([fmt(headers), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)])


Key = tuple[str, int, str]


def summary_single(rows: list[Row], label: str) -> str:
    groups: dict[Key, list[Row]] = {}
    for r in rows:
        if r.broker == label:
            groups.setdefault((r.scenario, r.size, r.mode), []).append(r)
    out = []
    for (scenario, size, mode), rs in groups.items():
        failed = sum(not r.ok for r in rs)
        out.append(
            [
                scenario,
                size_label(size),
                mode,
                f"{_median([r.rate for r in rs]) or 0:,.0f}",
                f"{_median([r.mbps for r in rs]) or 0:,.1f}",
                _f(_median([r.p50_ms for r in rs]), ".3f"),
                _f(_median([r.p99_ms for r in rs]), ".3f"),
                _f(_median([r.pub_cores for r in rs]), ".2f"),
                _f(_median([r.con_cores for r in rs]), ".2f"),
                _f(_median([r.broker_cores for r in rs]), ".2f"),
                _f(_median([r.kernel_cores for r in rs]), ".2f"),
                _f(_median([r.other_cores for r in rs]), ".2f"),
                f"{min(r.rate for r in rs):,.0f}-{max(r.rate for r in rs):,.0f}",
                ("ok" if not failed else f"FAIL {failed}/{len(rs)}") + _stars(rs),
            ]
        )
    headers = [
        "scenario", "size", "mode", "msg/s", "MB/s", "p50 ms", "p99 ms",
        "pub CPU", "con CPU", "broker CPU", "kthreads", "other CPU", "msg/s range", "check",
    ]  # fmt: skip
    return table(headers, out, left=3)


def ratios(rows: list[Row], a: str, b: str) -> dict[Key, tuple[float, float, float]]:
    by: dict[tuple[Key, str], list[float]] = {}
    for r in rows:
        by.setdefault(((r.scenario, r.size, r.mode), r.broker), []).append(r.rate)
    out: dict[Key, tuple[float, float, float]] = {}
    for (key, broker), _ in by.items():
        if broker != a or (key, b) not in by:
            continue
        ma = statistics.median(by[(key, a)])
        mb = statistics.median(by[(key, b)])
        out[key] = (ma, mb, ma / mb if mb else float("nan"))
    return out


def summary_compare(rows: list[Row], a: str, b: str) -> str:
    rat = ratios(rows, a, b)
    out = []
    for key, (ma, mb, ratio) in rat.items():
        ra = [r for r in rows if (r.scenario, r.size, r.mode) == key and r.broker == a]
        rb = [r for r in rows if (r.scenario, r.size, r.mode) == key and r.broker == b]

        def lat(rs: list[Row]) -> str:
            p50, p99 = _median([r.p50_ms for r in rs]), _median([r.p99_ms for r in rs])
            return "-" if p50 is None else f"{p50:.3f} / {_f(p99, '.3f')}"

        failed = sum(not r.ok for r in ra + rb)
        out.append(
            [
                key[0],
                size_label(key[1]),
                key[2],
                f"{ma:,.0f}",
                f"{mb:,.0f}",
                f"{ratio:.2f}",
                lat(ra),
                lat(rb),
                _f(_median([r.broker_cores for r in ra]), ".2f"),
                _f(_median([r.broker_cores for r in rb]), ".2f"),
                ("ok" if not failed else f"FAIL {failed}/{len(ra) + len(rb)}") + _stars(ra + rb),
            ]
        )
    headers = [
        "scenario", "size", "mode", f"{a} msg/s", f"{b} msg/s", "ratio",
        f"{a} p50/p99 ms", f"{b} p50/p99 ms", f"{a} CPU", f"{b} CPU", "check",
    ]  # fmt: skip
    return table(headers, out, left=3)


def check_targets(rows: list[Row], a: str, b: str) -> tuple[bool, list[str]]:
    rat = ratios(rows, a, b)
    lines = []
    ok = True
    for scenario, size, mode, minimum in TARGETS:
        what = f"{scenario} {size_label(size)} {mode}: {a} >= {minimum:.1f} x {b}"
        key = (scenario, size, mode)
        if key not in rat:
            lines.append(f"[----] {what}: not run")
            continue
        ma, mb, ratio = rat[key]
        passed = ratio >= minimum
        ok &= passed
        tag = "PASS" if passed else "FAIL"
        lines.append(f"[{tag}] {what}: {ma:,.0f} / {mb:,.0f} msg/s = {ratio:.2f}")
    return ok, lines


# -- main -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0], epilog="scenarios: " + ", ".join(SCENARIOS)
    )
    parser.add_argument("--url", default=DEFAULT_URL, help=f"broker under test (default {DEFAULT_URL})")
    parser.add_argument("--label", default=None, help="its name in the output (default jackalope)")
    parser.add_argument("--compare-url", default=None, help="second broker, run in alternation")
    parser.add_argument("--compare-label", default=None, help="its name (default other)")
    parser.add_argument("--broker-pid", type=int, default=None, help="process of --url, for CPU")
    parser.add_argument("--compare-broker-pid", type=int, default=None, help="process of --compare-url")
    parser.add_argument("--rounds", type=int, default=None, help="runs per broker and case (default 2)")
    parser.add_argument("--scenario", "--scenarios", default=None, help="comma list or 'all'")
    parser.add_argument("--sizes", default=None, help="body sizes, e.g. 16,1K,64K (default)")
    parser.add_argument("--modes", default=None, help="transient,persistent (default both)")
    parser.add_argument("--seconds", type=float, default=None, help="publishing time per run (default 3)")
    parser.add_argument("--quick", action="store_true", help="0.5 s runs, one round: a smoke test")
    parser.add_argument("--max-mb", type=float, default=1024, help="stop publishing a run after this many MB")
    parser.add_argument("--confirm-window", type=int, default=1000, help="persistent: unconfirmed max")
    parser.add_argument("--latency-window", type=int, default=64, help="confirm-window: outstanding")
    parser.add_argument("--prefetch", type=int, default=1000, help="consumer basic.qos prefetch_count")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help=f"before each run wait up to S seconds for other processes to use < {QUIET_CORES} cores",
    )
    parser.add_argument("--json", default=None, help="also write every run's figures here")
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 0.5 if args.quick else 3.0
    if args.rounds is None:
        args.rounds = 1 if args.quick else 2
    if args.scenario in (None, ""):
        args.scenario_list = list(DEFAULT_SCENARIOS)
    elif args.scenario == "all":
        args.scenario_list = list(SCENARIOS)
    else:
        args.scenario_list = [s.strip() for s in args.scenario.split(",") if s.strip()]
        unknown = set(args.scenario_list) - set(SCENARIOS)
        if unknown:
            parser.error(f"unknown scenario(s) {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    args.size_list = [parse_size(x) for x in args.sizes.split(",")] if args.sizes else list(DEFAULT_SIZES)
    args.mode_list = [m.strip() for m in args.modes.split(",")] if args.modes else list(MODES)
    if set(args.mode_list) - set(MODES):
        parser.error(f"modes are {', '.join(MODES)}")
    return args


def header(args: argparse.Namespace, brokers: list[Broker]) -> str:
    try:
        uv = f"uvloop {importlib.metadata.version('uvloop')}"
    except importlib.metadata.PackageNotFoundError:
        uv = "no uvloop"
    lines = [
        "AMQP 0-9-1 benchmark",
        "",
        f"CPU         {sysstat.cpu_model()}",
        f"cores       {sysstat.usable_cores()} usable of {os.cpu_count()}",
        f"memory      {sysstat.memory_gib()}",
        f"kernel      {platform.system()} {platform.release()}",
        f"python      {platform.python_implementation()} {platform.python_version()}, {uv}, "
        f"pamqp {importlib.metadata.version('pamqp')}",
    ]
    for b in brokers:
        where = (
            f"pid {b.pid} ({sysstat.process_name(b.pid)})" if b.pid else "process not found: no broker CPU"
        )
        lines.append(
            f"broker      {b.label}: {b.server} at {AmqpUrl.parse(b.url).display()}, "
            f"frame_max {b.frame_max}, {where}"
        )
    skip = {os.getpid(), *(b.pid or 0 for b in brokers)}
    lines.append(
        f"other load  {sysstat.other_load(skip, 1.0):.2f} cores used by other processes (1 s sample)"
    )
    lines += [
        f"runs        {args.seconds:g} s of publishing each, {args.rounds} round(s) per broker"
        + (", brokers alternating" if len(brokers) > 1 else ""),
        f"scenarios   {', '.join(args.scenario_list)}",
        f"sizes       {', '.join(size_label(s) for s in args.size_list)}; modes {', '.join(args.mode_list)}",
        f"settings    confirm window {args.confirm_window} (persistent), latency window "
        f"{args.latency_window}, prefetch {args.prefetch} (ack every {max(1, args.prefetch // 4)}), "
        f"at most {args.max_mb:g} MB per run",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    a = Broker(args.label or "jackalope", args.url, args.broker_pid)
    brokers = [a]
    if args.compare_url:
        b = Broker(args.compare_label or "other", args.compare_url, args.compare_broker_pid)
        if b.label == a.label:
            b.label += "-2"
        brokers.append(b)
    for br in brokers:
        try:
            probe(br)
        except (OSError, AmqpError, TimeoutError) as exc:
            print(f"cannot use {br.label} at {AmqpUrl.parse(br.url).display()}: {exc}", file=sys.stderr)
            return 2
    print(header(args, brokers), flush=True)
    bench = Bench(
        Settings(
            seconds=args.seconds,
            max_bytes=int(args.max_mb * MB),
            confirm_window=args.confirm_window,
            latency_window=args.latency_window,
            prefetch=args.prefetch,
            quiet_wait=args.wait_quiet,
            sizes=args.size_list,
            modes=args.mode_list,
        )
    )
    want = set(args.scenario_list)
    rows: list[Row] = []

    def record(new: list[Row]) -> None:
        for r in new:
            rows.append(finish(r))
            print(live_line(r), flush=True)

    cases: list[tuple[str, int, str]] = []
    for mode in args.mode_list:
        for size in args.size_list:
            if want & {"publish", "consume"}:
                cases.append(("publish+consume", size, mode))
            cases.extend((s, size, mode) for s in SCENARIOS[2:-1] if s in want)
    if "pika" in want:
        cases.append(("pika", 16, "transient"))
    print(f"\n{len(cases)} cases x {args.rounds} round(s) x {len(brokers)} broker(s)\n", flush=True)
    try:
        for kind, size, mode in cases:
            for rnd in range(1, args.rounds + 1):
                for br in brokers:
                    if kind == "publish+consume":
                        record(bench.publish_consume_separately(br, size, mode, rnd, want))
                    elif kind in ("publish-consume", "fanout"):
                        record([bench.streaming(br, size, mode, rnd, fanout=kind == "fanout")])
                    elif kind == "confirm-1":
                        record([bench.confirm_latency(br, size, mode, rnd, 1)])
                    elif kind == "confirm-window":
                        record([bench.confirm_latency(br, size, mode, rnd, args.latency_window)])
                    elif kind == "pika":
                        record([bench.pika(br, rnd)])
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
        print(f"{br.label} ({br.server}): median of {args.rounds} round(s)")
        print(summary_single(rows, br.label))
        print()
    all_ok = all(r.ok for r in rows)
    if len(brokers) == 2:
        print(f"{a.label} vs {brokers[1].label}: medians; ratio = {a.label} msg/s / {brokers[1].label} msg/s")
        print(summary_compare(rows, a.label, brokers[1].label))
        print()
        targets_ok, lines = check_targets(rows, a.label, brokers[1].label)
        print("Targets (ratio of median msg/s)")
        print("\n".join(lines))
        print()
        all_ok &= targets_ok
    if any(r.busy for r in rows):
        print(f"* runs during which other processes used more than {BUSY_CORES} cores (see --wait-quiet)\n")
    failed = [r for r in rows if not r.ok]
    if failed:
        print(f"{len(failed)} run(s) failed their checks:")
        for r in failed:
            print(
                f"  {r.broker} r{r.round} {r.scenario} {size_label(r.size)} {r.mode}: {'; '.join(r.problems)}"
            )
    else:
        print(f"all {len(rows)} runs passed their checks")
    print(f"total time {time.monotonic() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"brokers": [asdict(br) | {"queues": [], "exchanges": []} for br in brokers],
                       "rows": [asdict(r) for r in rows]}, fh, indent=1)  # fmt: skip
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
