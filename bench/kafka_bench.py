"""Kafka protocol benchmark: producer and consumer throughput and end-to-end latency, with
confluent-kafka (librdkafka) clients, against the raw sequential write speed of the disk.

Run from the repository root::

    .venv/bin/python bench/kafka_bench.py [--bootstrap HOST:PORT] [--quick] [--producers N]
                                          [--partitions N] [--sizes 100,1K] [--counts 2M,500K] ...

Without ``--bootstrap`` the script starts its own broker, ``jackalope serve --data-dir <tmp>
--http-port 0 --amqp-port -1 --kafka-port 0 --kafka-num-partitions <--partitions>`` (plus
``--broker-args``), reads its address from the ``listening kafka kafka://HOST:PORT`` line,
stops it with SIGTERM at the end and removes the data directory.  The broker's log (stderr)
goes to a file; its warnings, errors and tracebacks are printed at the end.

In order:

* **raw disk**: ``os.write`` of 1 MB chunks to a file next to the broker's data directory
  (``--dir`` with ``--bootstrap``), for ``--disk-seconds`` (2): without any fsync (mostly the
  page cache for short runs), and with ``fdatasync`` after every 1 MB write; ``--disk-rounds``
  (3) rounds of the two, interleaved, with ``os.sync`` between; the median is reported (the
  figures vary by +-25 % from one measurement to the next on the VM this was written on).
  This is ``bench_raw`` of ``bench/storage_bench.py``.
* **produce**: for every value size (default 100 B and 1 KB = 1024 B) and ``acks`` (1 and all),
  ``--producers`` processes (default 1: two cores, and the broker needs one) produce a fixed
  count of records (default 2,000,000 of 100 B and 500,000 of 1 KB, split between the
  producers) into a new topic.  librdkafka batches: ``linger.ms`` ``--linger-ms`` (10),
  ``batch.size`` ``--batch-size`` (1,000,000), ``batch.num.messages`` 1,000,000, a local queue of
  10M records / 2 GiB, no compression, no idempotence.  The time runs from the common start
  until ``flush()`` returns in the last producer, that is until every delivery report is in;
  only records with a successful delivery report count (one ``on_delivery`` callback set in the
  configuration; with ``--delivery-reports errors``, ``delivery.report.only.error`` and success
  = produced - failed - left over).
* **consume**: right after each produce run, ``--consumers`` processes (default 1) read that
  topic back: ``assign()`` from the low watermark (no group join, nothing committed),
  ``Consumer.consume`` in batches of up to ``--consume-batch`` (1,000: a little faster than
  10,000, much faster than 100,000), ``fetch.min.bytes`` ``--fetch-min-bytes`` (1),
  ``fetch.max.bytes`` ``--fetch-max-bytes`` (50 MiB), ``max.partition.fetch.bytes``
  ``--partition-fetch-bytes`` (8 MiB), ``fetch.wait.max.ms`` ``--fetch-wait-ms`` (100), up to
  1M records / 1 GiB of prefetch, ``fetch.queue.backoff.ms`` 5 (librdkafka's default, 1000,
  pauses fetching for a second whenever the prefetch queue is full, which made 100 B runs
  bimodal: about 1.1M or 1.6M records/s).  The time runs from the start (when ``assign()`` is
  called) to the last record.  Checked: records = high - low watermark = delivered, consecutive
  offsets, value size.
* **latency**: one producer process sends ``--latency-rate`` records/s (10,000) for
  ``--latency-seconds`` (5) of ``--latency-size`` bytes (100), each starting with its sequence
  number and its send time (``time.monotonic_ns``, shared by all processes), with
  ``linger.ms`` ``--latency-linger-ms`` (1), for acks=all and acks=1.  A consumer process,
  assigned to the new topic at offset 0 before the start, takes the receive time as
  ``Consumer.poll`` returns each record.  End-to-end = receive - send; p50 / p99 / p99.9 / max.
  The producer also gives ``produce()`` -> delivery report (``Message.latency()``) percentiles.

Topics are created with the Admin API (CreateTopics, ``--partitions``, default 1); if the
broker refuses it they are auto-created by a Metadata request, and the broker decides the
partition count (``--kafka-num-partitions`` of the broker this script starts).

CPU columns give cores (CPU seconds / wall seconds) of the load processes, of the broker
(the process started here, or the local listener of ``--bootstrap``), and of the whole
machine.  MB = 10**6 bytes; MB/s counts record values only.  The exit status is 1 when a
target is missed or a check fails, 2 when the broker cannot be used.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import ipaddress
import multiprocessing
import os
import platform
import re
import secrets
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any, Final

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

import kafka_load as load
from amqp_load import sysstat
from bench_workers import Worker, spawn
from storage_bench import MEMORY_FILESYSTEMS, bench_raw, default_parent, mount_of

MB: Final = 1_000_000
MIB: Final = 1024 * 1024
DEFAULT_SIZES: Final = (100, 1024)
DEFAULT_COUNTS: Final = (2_000_000, 500_000)
QUICK_COUNTS: Final = (200_000, 50_000)
ACKS: Final = ("1", "all")
START_DELAY: Final = 0.2  # between "go" and the start time
RAW_CHUNK: Final = 1_000_000

TARGET_SMALL_RPS: Final = 1_000_000  # 100 B, acks=1
TARGET_LARGE_MBPS: Final = 300.0  # 1 KB, acks=1

_CTX = multiprocessing.get_context("spawn")
_KAFKA_LINE: Final = re.compile(r"listening\s+kafka\s+kafka://(\S+)")
_NOTABLE: Final = re.compile(r"WARNING|ERROR|CRITICAL|Traceback|Exception")


class BenchError(Exception):
    """The broker cannot be started or used."""


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the broker -----------------------------------------------------------------------------------


@dataclass
class Broker:
    bootstrap: str
    pid: int | None = None
    process: subprocess.Popen[bytes] | None = None
    command: list[str] = field(default_factory=list)
    stdout_path: Path | None = None
    stderr_path: Path | None = None
    exit_code: int | None = None

    def died(self) -> str | None:
        """Why the broker this script started is gone, or None (also None for --bootstrap)."""
        if self.process is None or self.process.poll() is None:
            return None
        return f"the broker exited with status {self.process.returncode}"

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                progress(f"broker pid {self.process.pid} did not stop in 60 s after SIGTERM: killing it")
                self.process.kill()
                self.process.wait(10)
        self.exit_code = self.process.returncode

    def notable_log_lines(self, limit: int = 30) -> tuple[int, list[str]]:
        """Warnings, errors and traceback lines of the broker's log: (how many, the first ``limit``)."""
        lines: list[str] = []
        for path in (self.stderr_path, self.stdout_path):
            if path is None or not path.exists():
                continue
            text = path.read_text(errors="replace").splitlines()
            in_traceback = False
            for line in text:
                if line.startswith("Traceback"):
                    in_traceback = True
                elif in_traceback and line and not line.startswith(" "):
                    lines.append(line)  # the exception line ends the traceback
                    in_traceback = False
                    continue
                if in_traceback or _NOTABLE.search(line):
                    lines.append(line)
        return len(lines), lines[:limit]


def jackalope_command() -> list[str]:
    exe = Path(sys.executable).with_name("jackalope")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("jackalope")
    return [found] if found else [sys.executable, "-m", "jackalope"]


def start_broker(root: Path, partitions: int, extra: Sequence[str], timeout: float = 60.0) -> Broker:
    data = root / "data"
    command = [
        *jackalope_command(),
        "serve",
        "--data-dir",
        str(data),
        "--http-port",
        "0",
        "--amqp-port",
        "-1",
        "--kafka-port",
        "0",
        "--kafka-num-partitions",
        str(partitions),
        *extra,
    ]
    out_path, err_path = root / "broker.stdout", root / "broker.stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    broker = Broker("", proc.pid, proc, command, out_path, err_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = _KAFKA_LINE.search(out_path.read_text(errors="replace"))
        if match:
            broker.bootstrap = match[1]
            return broker
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    broker.stop()
    tail = err_path.read_text(errors="replace").strip().splitlines()[-15:]
    status = "exited" if proc.returncode is not None else "did not print it"
    raise BenchError(
        f"no 'listening kafka' line from {shlex.join(command)} ({status}, status {proc.returncode})"
        + "".join(f"\n  {line}" for line in tail)
    )


def _is_local(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


def split_host_port(bootstrap: str) -> tuple[str, int]:
    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    return host.strip("[]"), int(port)


def error_of(exc: BaseException) -> KafkaError | None:
    arg = exc.args[0] if exc.args else None
    return arg if isinstance(arg, KafkaError) else None


def broker_versions(bootstrap: str) -> str:
    """The broker's API versions are not exposed by the Python client; report its name in metadata."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    md = admin.list_topics("__jackalope_kafka_bench_probe", timeout=15)
    brokers = ", ".join(f"id {b.id} at {b.host}:{b.port}" for b in md.brokers.values())
    return f"cluster {md.cluster_id or '?'}, controller {md.controller_id}, brokers: {brokers or 'none'}"


def ensure_topic(bootstrap: str, name: str, partitions: int) -> tuple[int, str]:
    """Create ``name`` (CreateTopics, else auto-creation by Metadata); its partitions and how."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    how = "CreateTopics"
    try:
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1)], request_timeout=15
        )
        futures[name].result(20)
    except KafkaException as exc:
        err = error_of(exc)
        if err is not None and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            raise BenchError(f"topic {name} exists already") from exc
        how = f"auto-created (CreateTopics: {err.name() if err is not None else exc})"
    deadline = time.monotonic() + 20
    last = "no metadata"
    while time.monotonic() < deadline:
        md = admin.list_topics(name, timeout=10)
        tmd = md.topics.get(name)
        if tmd is not None and tmd.error is None and tmd.partitions:
            if all(p.leader >= 0 and p.error is None for p in tmd.partitions.values()):
                return len(tmd.partitions), how
            last = "partitions without a leader"
        else:
            last = f"metadata error {tmd.error if tmd is not None else 'absent'}"
        time.sleep(0.2)
    raise BenchError(f"topic {name} not usable after 20 s: {last}")


def delete_topics(bootstrap: str, names: Sequence[str]) -> str:
    if not names:
        return ""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.delete_topics(list(names), request_timeout=15)
    failed = []
    for name, fut in futures.items():
        try:
            fut.result(20)
        except KafkaException as exc:
            err = error_of(exc)
            failed.append(f"{name} ({err.name() if err is not None else exc})")
    return ", ".join(failed)


# -- worker processes -----------------------------------------------------------------------------


def start(name: str, target: Callable[[Any, Pipe], None], cfg: Any) -> Worker:
    return spawn(_CTX, "kafka-bench", name, target, cfg)


@dataclass
class Outcome:
    results: dict[str, Any] = field(default_factory=dict)  # worker name -> result
    ready: dict[str, Any] = field(default_factory=dict)  # worker name -> what it sent with "ready"
    t_go: float = 0.0
    cpu: sysstat.CpuWindow | None = None
    problems: list[str] = field(default_factory=list)


def run_workers(
    broker: Broker,
    first: Sequence[tuple[str, Callable[[Any, Pipe], None], Any]],
    then: Sequence[tuple[str, Callable[[Any, Pipe], None], Any]] = (),
    limit: float = 900.0,
) -> Outcome:
    """Start every worker, release them together, collect the ``first`` ones' results, send
    ``then`` workers ("expect", records delivered by the first ones), collect theirs."""
    out = Outcome()
    workers: list[Worker] = []
    try:
        for name, target, cfg in [*then, *first]:
            workers.append(start(name, target, cfg))
        for w in workers:
            kind, value = w.receive(120)
            if kind == "ready":
                out.ready[w.name] = value
            else:
                out.problems.append(str(value) if kind == "error" else f"{w.name}: {kind} {value}")
        if out.problems:
            return out
        out.t_go = time.monotonic() + START_DELAY
        out.cpu = sysstat.CpuWindow(broker.pid, {os.getpid(), *(w.process.pid or 0 for w in workers)})
        for w in workers:
            w.pipe.send(("go", out.t_go))
        load.wait_until(out.t_go)
        out.cpu.start(time.monotonic())
        firsts = {name for name, _, _ in first}
        delivered, all_results = 0, True
        for w in workers:
            if w.name in firsts:
                kind, value = w.receive(limit)
                if kind == "result":
                    out.results[w.name] = value
                    delivered += getattr(value, "delivered", 0)
                else:
                    out.problems.append(str(value))
                    all_results = False
        for w in workers:
            if w.name not in firsts:
                w.pipe.send(("expect", delivered if all_results else -1))  # -1: stop now
                kind, value = w.receive(limit)
                if kind == "result":
                    out.results[w.name] = value
                else:
                    out.problems.append(str(value))
        out.cpu.stop(time.monotonic())
    finally:
        for w in workers:
            w.pipe.close()  # a worker still waiting for "go" or "expect" gets EOFError and exits
            w.process.join(15)
            if w.process.is_alive():
                w.process.terminate()
                w.process.join(5)
    return out


# -- the runs -------------------------------------------------------------------------------------


@dataclass
class Cpu:
    load: float | None = None  # the load processes together
    broker: float | None = None
    machine: float | None = None
    other: float | None = None

    @classmethod
    def of(cls, out: Outcome, load_seconds: float, wall: float) -> Cpu:
        cpu = cls(load=load_seconds / wall if wall > 0 else None)
        if out.cpu is not None:
            cpu.broker, cpu.machine, cpu.other = (
                out.cpu.broker_cores,
                out.cpu.machine_cores,
                out.cpu.others_cores,
            )
        return cpu


@dataclass
class ProduceRow:
    size: int
    acks: str
    topic: str
    partitions: int
    records: int
    delivered: int = 0
    seconds: float = 0.0
    enqueue_seconds: float = 0.0
    cpu: Cpu = field(default_factory=Cpu)
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds > 0 else 0.0

    @property
    def mbps(self) -> float:
        return self.rate * self.size / MB


@dataclass
class ConsumeRow:
    size: int
    acks: str  # of the run that produced the topic
    topic: str
    expected: int = 0
    received: int = 0
    seconds: float = 0.0
    cpu: Cpu = field(default_factory=Cpu)
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.received / self.seconds if self.seconds > 0 else 0.0

    @property
    def mbps(self) -> float:
        return self.rate * self.size / MB


@dataclass
class LatencyRow:
    acks: str
    size: int
    rate: float
    seconds: float
    sent: int = 0
    received: int = 0
    e2e: load.Percentiles = field(default_factory=load.Percentiles)
    ack: load.Percentiles = field(default_factory=load.Percentiles)
    behind_ms: float = 0.0
    cpu: Cpu = field(default_factory=Cpu)
    problems: list[str] = field(default_factory=list)


@dataclass
class Settings:
    bootstrap: str
    run_id: str
    producers: int
    consumers: int
    partitions: int
    linger_ms: float
    batch_size: int
    only_error_reports: bool
    fetch_min_bytes: int
    fetch_max_bytes: int
    partition_fetch_bytes: int
    fetch_wait_ms: int
    consume_batch: int
    latency_rate: float
    latency_seconds: float
    latency_size: int
    latency_linger_ms: float


class Bench:
    def __init__(self, s: Settings, broker: Broker) -> None:
        self.s = s
        self.broker = broker
        self.topics: list[str] = []
        self.topic_notes: set[str] = set()

    def new_topic(self, what: str) -> tuple[str, int]:
        name = f"kafka-bench-{self.s.run_id}-{what}"
        partitions, how = ensure_topic(self.s.bootstrap, name, self.s.partitions)
        self.topics.append(name)
        self.topic_notes.add(f"{how}; {partitions} partition(s)")
        return name, partitions

    def _check_broker(self, problems: list[str]) -> None:
        died = self.broker.died()
        if died:
            problems.append(died)

    def produce(self, size: int, count: int, acks: str) -> ProduceRow:
        topic, partitions = self.new_topic(f"{size}b-acks{acks}")
        row = ProduceRow(size, acks, topic, partitions, count)
        n = self.s.producers
        shares = [count // n + (1 if i < count % n else 0) for i in range(n)]
        workers = [
            (
                f"producer-{i}",
                load.producer_process,
                load.ProducerConfig(
                    self.s.bootstrap,
                    topic,
                    size,
                    share,
                    acks,
                    self.s.linger_ms,
                    self.s.batch_size,
                    self.s.only_error_reports,
                ),
            )
            for i, share in enumerate(shares)
            if share > 0
        ]
        out = run_workers(self.broker, workers)
        row.problems.extend(out.problems)
        results: list[load.ProducerResult] = list(out.results.values())
        if results:
            row.delivered = sum(r.delivered for r in results)
            row.seconds = max(r.t_end for r in results) - out.t_go
            row.enqueue_seconds = max(r.t_enqueued for r in results) - out.t_go
            row.cpu = Cpu.of(out, sum(r.cpu_seconds for r in results), row.seconds)
            failed = sum(r.failed for r in results)
            left = sum(r.undelivered for r in results)
            if failed:
                row.problems.append(f"{failed:,} delivery reports with an error")
            if left:
                row.problems.append(f"{left:,} records still queued after flush()")
            if row.delivered != count:
                row.problems.append(f"{row.delivered:,} of {count:,} records delivered")
            for i, r in enumerate(results):
                row.problems.extend(f"producer {i}: {p}" for p in r.problems)
        self._check_broker(row.problems)
        return row

    def consume(self, produced: ProduceRow) -> ConsumeRow:
        row = ConsumeRow(produced.size, produced.acks, produced.topic)
        n = min(self.s.consumers, produced.partitions)
        group = f"kafka-bench-{self.s.run_id}-{produced.size}b-acks{produced.acks}"
        workers = [
            (
                f"consumer-{i}",
                load.consumer_process,
                load.ConsumerConfig(
                    self.s.bootstrap,
                    produced.topic,
                    [p for p in range(produced.partitions) if p % n == i],
                    produced.size,
                    group,
                    self.s.fetch_min_bytes,
                    self.s.fetch_max_bytes,
                    self.s.partition_fetch_bytes,
                    self.s.fetch_wait_ms,
                    self.s.consume_batch,
                ),
            )
            for i in range(n)
        ]
        out = run_workers(self.broker, workers)
        row.problems.extend(out.problems)
        results: list[load.ConsumerResult] = list(out.results.values())
        if results:
            row.expected = sum(r.expected for r in results)
            row.received = sum(r.received for r in results)
            row.seconds = max(r.t_last for r in results) - out.t_go
            row.cpu = Cpu.of(out, sum(r.cpu_seconds for r in results), row.seconds)
            if row.expected != produced.delivered:
                row.problems.append(
                    f"watermarks give {row.expected:,} records, {produced.delivered:,} were delivered"
                )
            if row.received != produced.delivered:
                row.problems.append(f"{row.received:,} received, {produced.delivered:,} were delivered")
            gaps = sum(r.offset_gaps for r in results)
            if gaps:
                row.problems.append(f"{gaps:,} records not at the previous offset + 1")
            wrong = sum(r.wrong_size for r in results)
            if wrong:
                row.problems.append(f"{wrong:,} values not of {produced.size} B")
            for i, r in enumerate(results):
                row.problems.extend(f"consumer {i}: {p}" for p in r.problems)
        self._check_broker(row.problems)
        return row

    def latency(self, acks: str) -> LatencyRow:
        s = self.s
        row = LatencyRow(acks, s.latency_size, s.latency_rate, s.latency_seconds)
        topic, partitions = self.new_topic(f"latency-acks{acks}")
        pcfg = load.LatencyProducerConfig(
            s.bootstrap, topic, s.latency_size, s.latency_rate, s.latency_seconds, acks, s.latency_linger_ms
        )
        ccfg = load.LatencyConsumerConfig(
            s.bootstrap,
            topic,
            list(range(partitions)),
            f"kafka-bench-{s.run_id}-latency-acks{acks}",
            pcfg.total,
            s.fetch_wait_ms,
        )
        out = run_workers(
            self.broker,
            [("producer", load.latency_producer_process, pcfg)],
            [("consumer", load.latency_consumer_process, ccfg)],
        )
        row.problems.extend(out.problems)
        prod: load.LatencyProducerResult | None = out.results.get("producer")
        cons: load.LatencyConsumerResult | None = out.results.get("consumer")
        if prod is not None:
            row.sent, row.ack, row.behind_ms = prod.produced, prod.ack, prod.behind_ms
            if prod.delivered != pcfg.total:
                row.problems.append(f"{prod.delivered:,} of {pcfg.total:,} records delivered")
            row.problems.extend(f"producer: {p}" for p in prod.problems)
        if cons is not None:
            row.received, row.e2e = cons.received, cons.latency
            if prod is not None and cons.received != prod.delivered:
                row.problems.append(f"{cons.received:,} received, {prod.delivered:,} were delivered")
            if cons.duplicates or cons.bad:
                row.problems.append(f"{cons.duplicates:,} duplicates, {cons.bad:,} malformed records")
            row.problems.extend(f"consumer: {p}" for p in cons.problems)
        if prod is not None and cons is not None:
            wall = max(prod.t_end - prod.t_start, 1e-9)
            row.cpu = Cpu.of(out, prod.cpu_seconds + cons.cpu_seconds, wall)
        self._check_broker(row.problems)
        return row


# -- raw disk -------------------------------------------------------------------------------------


@dataclass
class Disk:
    no_sync: list[float] = field(default_factory=list)  # bytes/s, one per round
    fdatasync: list[float] = field(default_factory=list)

    @property
    def no_sync_bps(self) -> float:
        return statistics.median(self.no_sync) if self.no_sync else 0.0

    @property
    def fdatasync_bps(self) -> float:
        return statistics.median(self.fdatasync) if self.fdatasync else 0.0


def measure_disk(directory: Path, seconds: float, rounds: int) -> Disk:
    """``rounds`` x (no fsync, fdatasync after every write), interleaved, ``os.sync`` between."""
    chunk = os.urandom(RAW_CHUNK)
    disk = Disk()
    os.sync()
    for _ in range(rounds):
        disk.no_sync.append(bench_raw(directory / "raw-write", chunk, seconds))
        os.sync()
        disk.fdatasync.append(bench_raw(directory / "raw-write", chunk, seconds, group=1))
        os.sync()
    return disk


# -- report ---------------------------------------------------------------------------------------


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


def parse_count(text: str) -> int:
    t = text.strip().upper().replace(",", "").replace("_", "")
    for suffix, factor in (("K", 1_000), ("M", 1_000_000)):
        if t.endswith(suffix):
            return int(float(t[: -len(suffix)]) * factor)
    return int(t)


def _f(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([fmt(headers), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)])


def check(problems: Sequence[str]) -> str:
    return "ok" if not problems else "FAIL"


def report_produce(rows: Sequence[ProduceRow]) -> str:
    headers = ["value", "acks", "records", "seconds", "records/s", "MB/s", "enqueue s"]
    headers += ["producer CPU", "broker CPU", "machine CPU", "check"]
    out = [
        [
            size_label(r.size),
            r.acks,
            f"{r.delivered:,}",
            f"{r.seconds:.2f}",
            f"{r.rate:,.0f}",
            f"{r.mbps:,.1f}",
            f"{r.enqueue_seconds:.2f}",
            _f(r.cpu.load, ".2f"),
            _f(r.cpu.broker, ".2f"),
            _f(r.cpu.machine, ".2f"),
            check(r.problems),
        ]
        for r in rows
    ]
    return table(headers, out, left=2)


def report_consume(rows: Sequence[ConsumeRow]) -> str:
    headers = ["value", "topic of", "records", "seconds", "records/s", "MB/s"]
    headers += ["consumer CPU", "broker CPU", "machine CPU", "check"]
    out = [
        [
            size_label(r.size),
            f"acks={r.acks}",
            f"{r.received:,}",
            f"{r.seconds:.2f}",
            f"{r.rate:,.0f}",
            f"{r.mbps:,.1f}",
            _f(r.cpu.load, ".2f"),
            _f(r.cpu.broker, ".2f"),
            _f(r.cpu.machine, ".2f"),
            check(r.problems),
        ]
        for r in rows
    ]
    return table(headers, out, left=2)


def report_latency(rows: Sequence[LatencyRow]) -> str:
    headers = ["acks", "value", "rate/s", "received", "p50 ms", "p99 ms", "p99.9 ms", "max ms"]
    headers += ["ack p50", "ack p99", "ack p99.9", "load CPU", "broker CPU", "check"]
    out = [
        [
            r.acks,
            size_label(r.size),
            f"{r.rate:,.0f}",
            f"{r.received:,}",
            f"{r.e2e.p50:.2f}",
            f"{r.e2e.p99:.2f}",
            f"{r.e2e.p999:.2f}",
            f"{r.e2e.max:.1f}",
            f"{r.ack.p50:.2f}",
            f"{r.ack.p99:.2f}",
            f"{r.ack.p999:.2f}",
            _f(r.cpu.load, ".2f"),
            _f(r.cpu.broker, ".2f"),
            check(r.problems),
        ]
        for r in rows
    ]
    return table(headers, out, left=2)


def report_targets(
    produced: Sequence[ProduceRow], consumed: Sequence[ConsumeRow], disk: Disk
) -> tuple[list[str], bool]:
    lines: list[str] = []
    ok = True

    def find(size: int, acks: str) -> ProduceRow | None:
        return next((r for r in produced if r.size == size and r.acks == acks and not r.problems), None)

    def verdict(passed: bool) -> str:
        nonlocal ok
        ok &= passed
        return "PASS" if passed else "FAIL"

    small = find(100, "1")
    what = f">= {TARGET_SMALL_RPS:,} records/s of 100 B produced with acks=1"
    if small is None:
        lines.append(f"[----] {what}: not run (or failed its checks)")
        ok &= not any(r.size == 100 and r.acks == "1" for r in produced)
    else:
        lines.append(f"[{verdict(small.rate >= TARGET_SMALL_RPS)}] {what}: {small.rate:,.0f} records/s")

    large = find(1024, "1")
    what = f">= {TARGET_LARGE_MBPS:,.0f} MB/s of 1 KB records produced with acks=1"
    if large is None:
        lines.append(f"[----] {what}: not run (or failed its checks)")
        ok &= not any(r.size == 1024 and r.acks == "1" for r in produced)
    else:
        lines.append(f"[{verdict(large.mbps >= TARGET_LARGE_MBPS)}] {what}: {large.mbps:,.1f} MB/s")

    pairs = [(p, c) for c in consumed for p in produced if p.topic == c.topic]
    what = "consumer at least as fast as the producer (records/s, same topic)"
    if not pairs:
        lines.append(f"[----] {what}: not run")
    else:
        all_faster = all(c.rate >= p.rate and not c.problems for p, c in pairs)
        lines.append(f"[{verdict(all_faster)}] {what}")
        for p, c in pairs:
            tag = "ok" if c.rate >= p.rate and not c.problems else "FAIL"
            lines.append(
                f"    {tag:<4}  {size_label(p.size):>5} acks={p.acks:<3}  consume {c.rate:>12,.0f} "
                f"vs produce {p.rate:>12,.0f} records/s = {c.rate / p.rate if p.rate else 0:.2f}"
            )

    rows_1k = [r for r in produced if r.size == 1024]
    lines.append(
        "[INFO] 1 KB produce MB/s / raw sequential write MB/s (raw: 1 MB os.write chunks, same file system)"
    )
    if not rows_1k:
        lines.append("    not run")
    elif not disk.fdatasync_bps or not disk.no_sync_bps:
        lines.append("    raw write speed not measured")
        rows_1k = []
    for r in rows_1k:
        lines.append(
            f"    acks={r.acks:<3}  {r.mbps:8,.1f} MB/s = {r.mbps * MB / disk.fdatasync_bps:.2f} of raw with "
            f"fdatasync per MB ({disk.fdatasync_bps / MB:,.0f} MB/s), {r.mbps * MB / disk.no_sync_bps:.2f} "
            f"of raw without fsync ({disk.no_sync_bps / MB:,.0f} MB/s)"
        )
    return lines, ok


# -- main -----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument(
        "--bootstrap", default=None, help="HOST:PORT of a running broker (default: start one)"
    )
    parser.add_argument(
        "--broker-args",
        default="",
        help="extra arguments for the 'jackalope serve' started here (one string)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="parent of the scratch directory (broker data, raw write file); default: the system temp "
        "directory if it is on the current directory's file system and not tmpfs, else the current one",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short smoke run (10x fewer records, 1 s latency)"
    )
    parser.add_argument("--producers", type=int, default=1, help="producer processes (default 1)")
    parser.add_argument("--consumers", type=int, default=1, help="consumer processes (default 1)")
    parser.add_argument("--partitions", type=int, default=1, help="partitions per topic (default 1)")
    parser.add_argument("--sizes", default=None, help="value sizes, e.g. 100,1K (default; K = 1024)")
    parser.add_argument(
        "--counts", default=None, help="records per size, e.g. 2M,500K (default; --quick: 200K,50K)"
    )
    parser.add_argument("--acks", default="1,all", help="acks settings to produce with (default 1,all)")
    parser.add_argument("--linger-ms", type=float, default=10.0, help="producer linger.ms (default 10)")
    parser.add_argument(
        "--batch-size", type=int, default=1_000_000, help="producer batch.size (default 1000000)"
    )
    parser.add_argument(
        "--delivery-reports",
        choices=("each", "errors"),
        default="each",
        help="each: count every successful report (default); errors: delivery.report.only.error",
    )
    parser.add_argument("--fetch-min-bytes", type=int, default=1, help="consumer fetch.min.bytes (default 1)")
    parser.add_argument(
        "--fetch-max-bytes", type=int, default=50 * MIB, help="consumer fetch.max.bytes (default 50 MiB)"
    )
    parser.add_argument(
        "--partition-fetch-bytes",
        type=int,
        default=8 * MIB,
        help="consumer max.partition.fetch.bytes (default 8 MiB)",
    )
    parser.add_argument(
        "--fetch-wait-ms", type=int, default=100, help="consumer fetch.wait.max.ms (default 100)"
    )
    parser.add_argument(
        "--consume-batch", type=int, default=1000, help="Consumer.consume num_messages (default 1000)"
    )
    parser.add_argument("--latency-rate", type=float, default=10_000, help="records/s (default 10000)")
    parser.add_argument("--latency-seconds", type=float, default=None, help="default 5 (--quick: 1)")
    parser.add_argument("--latency-size", type=int, default=100, help="value bytes (default 100, >= 16)")
    parser.add_argument("--latency-linger-ms", type=float, default=1.0, help="producer linger.ms (default 1)")
    parser.add_argument("--disk-seconds", type=float, default=None, help="per raw write test (default 2)")
    parser.add_argument(
        "--disk-rounds", type=int, default=None, help="raw write rounds (default 3, --quick 1)"
    )
    parser.add_argument(
        "--skip",
        default="",
        help="comma list of parts to leave out: disk, produce, consume, latency",
    )
    args = parser.parse_args(argv)
    sizes = [parse_size(x) for x in args.sizes.split(",")] if args.sizes else list(DEFAULT_SIZES)
    if args.counts:
        counts = [parse_count(x) for x in args.counts.split(",")]
    else:
        base = QUICK_COUNTS if args.quick else DEFAULT_COUNTS
        by_size = dict(zip(DEFAULT_SIZES, base, strict=True))
        counts = [by_size.get(s, base[0] * 100 // max(s, 1)) for s in sizes]
    if len(counts) != len(sizes):
        parser.error("--counts needs one count per --sizes entry")
    args.size_list, args.count_list = sizes, counts
    args.acks_list = [a.strip() for a in args.acks.split(",") if a.strip()]
    if set(args.acks_list) - {"0", "1", "all", "-1"}:
        parser.error("acks are 0, 1, all")
    args.skip_set = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.skip_set - {"disk", "produce", "consume", "latency"}:
        parser.error("--skip takes disk, produce, consume, latency")
    if args.latency_seconds is None:
        args.latency_seconds = 1.0 if args.quick else 5.0
    if args.disk_seconds is None:
        args.disk_seconds = 0.5 if args.quick else 2.0
    if args.disk_rounds is None:
        args.disk_rounds = 1 if args.quick else 3
    positive = [args.producers, args.consumers, args.partitions, args.consume_batch, *sizes, *counts]
    positive += [args.latency_rate, args.latency_seconds, args.disk_seconds, args.disk_rounds]
    positive.append(args.batch_size)
    if min(positive) <= 0:
        parser.error("counts, sizes, processes, partitions, rates and durations must be positive")
    if args.latency_size < load.STAMP.size:
        parser.error(f"--latency-size must be at least {load.STAMP.size}")
    return args


def versions() -> str:
    try:
        client = importlib.metadata.version("confluent-kafka")
    except importlib.metadata.PackageNotFoundError:
        client = "?"
    lib = confluent_kafka.libversion()[0]
    try:
        uv = f"uvloop {importlib.metadata.version('uvloop')}"
    except importlib.metadata.PackageNotFoundError:
        uv = "no uvloop"
    py = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{py}, {uv}, confluent-kafka {client} (librdkafka {lib})"


def code_state() -> str:
    """The commit, how many tracked files differ from it, and the newest source file: the broker
    this script starts runs from the working tree.  Read-only git (no index refresh)."""
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, timeout=20, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    try:
        commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
        changed = len(git("status", "--porcelain", "--untracked-files=no").splitlines())
        listing = git("status", "--porcelain", "--untracked-files=all", "--", "src").splitlines()
        untracked = sum(line.startswith("??") for line in listing)
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not usable)"
    sources = [f for f in (repo / "src").rglob("*.py") if "__pycache__" not in f.parts]
    newest = max(sources, key=lambda f: f.stat().st_mtime, default=None)
    text = f"commit {commit}, {changed} tracked file(s) modified, {untracked} new under src"
    if newest is not None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(newest.stat().st_mtime))
        text += f"; newest source {newest.relative_to(repo)} ({stamp})"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    parent: Path = args.dir if args.dir is not None else default_parent()
    parent.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="jackalope-kafka-bench-", dir=parent))
    try:
        return run(args, root, started)
    except BaseException:  # a bug here: leave nothing behind (the broker is stopped by then)
        shutil.rmtree(root, ignore_errors=True)
        raise


def run(args: argparse.Namespace, root: Path, started: float) -> int:
    mount = mount_of(root)
    if mount.fstype in MEMORY_FILESYSTEMS:
        progress(f"warning: {root} is on {mount.fstype}: these are not disk figures")
    broker: Broker | None = None
    header = [
        ("CPU", sysstat.cpu_model()),
        ("cores", f"{sysstat.usable_cores()} usable of {os.cpu_count()}"),
        ("memory", sysstat.memory_gib()),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("python", versions()),
        ("code", code_state()),
        ("scratch", f"{root} ({mount.fstype} on {mount.source}, mounted at {mount.point})"),
    ]
    produced: list[ProduceRow] = []
    consumed: list[ConsumeRow] = []
    latencies: list[LatencyRow] = []
    disk = Disk()
    bench: Bench | None = None
    aborted = ""
    try:
        if "disk" not in args.skip_set:
            progress(f"raw sequential writes, {args.disk_rounds} x 2 x {args.disk_seconds:g} s ...")
            disk = measure_disk(root, args.disk_seconds, args.disk_rounds)
            progress(
                f"  no fsync {disk.no_sync_bps / MB:,.0f} MB/s, "
                f"fdatasync per MB {disk.fdatasync_bps / MB:,.0f} MB/s"
            )
        if args.bootstrap:
            broker = Broker(args.bootstrap)
            host, port = split_host_port(args.bootstrap)
            if _is_local(host):
                broker.pid = sysstat.listener_pid(port)
            where = f"pid {broker.pid} ({sysstat.process_name(broker.pid)})" if broker.pid else "no local pid"
            header.append(("broker", f"{args.bootstrap} (given), {where}"))
        else:
            broker = start_broker(root, args.partitions, shlex.split(args.broker_args))
            header.append(("broker", f"{broker.bootstrap}, pid {broker.pid}: {shlex.join(broker.command)}"))
        try:
            header.append(("metadata", broker_versions(broker.bootstrap)))
        except KafkaException as exc:
            raise BenchError(f"cannot get metadata from {broker.bootstrap}: {exc}") from exc
        skip = {os.getpid(), broker.pid or 0}
        header.append(
            ("other load", f"{sysstat.other_load(skip, 1.0):.2f} cores used by other processes (1 s)")
        )
        settings = Settings(
            bootstrap=broker.bootstrap,
            run_id=secrets.token_hex(3),
            producers=args.producers,
            consumers=args.consumers,
            partitions=args.partitions,
            linger_ms=args.linger_ms,
            batch_size=args.batch_size,
            only_error_reports=args.delivery_reports == "errors",
            fetch_min_bytes=args.fetch_min_bytes,
            fetch_max_bytes=args.fetch_max_bytes,
            partition_fetch_bytes=args.partition_fetch_bytes,
            fetch_wait_ms=args.fetch_wait_ms,
            consume_batch=args.consume_batch,
            latency_rate=args.latency_rate,
            latency_seconds=args.latency_seconds,
            latency_size=args.latency_size,
            latency_linger_ms=args.latency_linger_ms,
        )
        bench = Bench(settings, broker)
        if "produce" not in args.skip_set:
            for size, count in zip(args.size_list, args.count_list, strict=True):
                for acks in args.acks_list:
                    progress(f"produce {count:,} x {size_label(size)} acks={acks} ...")
                    p = bench.produce(size, count, acks)
                    produced.append(p)
                    progress(f"  {p.rate:,.0f} records/s {p.mbps:,.1f} MB/s {check(p.problems)} {p.problems}")
                    os.sync()
                    if broker.died():
                        aborted = broker.died() or ""
                        break
                    if "consume" not in args.skip_set and p.delivered:
                        progress(f"consume {p.delivered:,} x {size_label(size)} ...")
                        c = bench.consume(p)
                        consumed.append(c)
                        progress(
                            f"  {c.rate:,.0f} records/s {c.mbps:,.1f} MB/s {check(c.problems)} {c.problems}"
                        )
                        if broker.died():
                            aborted = broker.died() or ""
                            break
                if aborted:
                    break
        if "latency" not in args.skip_set and not aborted:
            for acks in ("all", "1"):
                progress(
                    f"latency acks={acks}, {args.latency_rate:,.0f}/s for {args.latency_seconds:g} s ..."
                )
                lat = bench.latency(acks)
                latencies.append(lat)
                progress(
                    f"  p50 {lat.e2e.p50:.2f} p99 {lat.e2e.p99:.2f} p99.9 {lat.e2e.p999:.2f} ms "
                    f"{check(lat.problems)} {lat.problems}"
                )
                if broker.died():
                    aborted = broker.died() or ""
                    break
    except BenchError as exc:
        print(f"kafka_bench: {exc}", file=sys.stderr)
        if broker is not None:
            broker.stop()
        shutil.rmtree(root, ignore_errors=True)
        return 2
    except KeyboardInterrupt:
        aborted = "interrupted"
    finally:
        if broker is not None and broker.process is None and bench is not None and bench.topics:
            left = ""
            with contextlib.suppress(KafkaException):
                left = delete_topics(broker.bootstrap, bench.topics)
            if left:
                progress(f"could not delete topics on {broker.bootstrap}: {left}")
        if broker is not None:
            broker.stop()

    print("Jackalope Kafka benchmark")
    print()
    width = max(len(k) for k, _ in header)
    for key, value in header:
        print(f"{key.ljust(width)}  {value}")
    if bench is not None:
        s = bench.s
        print(f"{'topics'.ljust(width)}  {'; '.join(sorted(bench.topic_notes)) or '-'}")
        print(
            f"{'producer'.ljust(width)}  {s.producers} process(es), linger.ms {s.linger_ms:g}, batch.size "
            f"{s.batch_size:,}, batch.num.messages 1,000,000, compression none, delivery reports "
            f"{'errors only' if s.only_error_reports else 'each'}"
        )
        print(
            f"{'consumer'.ljust(width)}  {s.consumers} process(es), assign() from the low watermark, "
            f"fetch.min.bytes {s.fetch_min_bytes:,}, fetch.max.bytes {s.fetch_max_bytes:,}, "
            f"max.partition.fetch.bytes {s.partition_fetch_bytes:,}, fetch.wait.max.ms {s.fetch_wait_ms}, "
            "fetch.queue.backoff.ms 5, "
            f"consume() batches of {s.consume_batch:,}"
        )
    print()
    if "disk" not in args.skip_set:
        print(
            "Raw sequential writes (os.write of 1 MB chunks for "
            f"{args.disk_seconds:g} s, same file system as the broker's data; median of {args.disk_rounds})"
        )
        print()

        def span(values: list[float]) -> str:
            return f"{min(values) / MB:,.0f} - {max(values) / MB:,.0f}"

        print(
            table(
                ["pattern", "MB/s", "range"],
                [
                    ["no fsync", f"{disk.no_sync_bps / MB:,.1f}", span(disk.no_sync)],
                    ["fdatasync after every 1 MB", f"{disk.fdatasync_bps / MB:,.1f}", span(disk.fdatasync)],
                ],
                left=1,
            )
        )
        print()
    if produced:
        print("Produce (records with a successful delivery report; MB/s of values)")
        print()
        print(report_produce(produced))
        print()
    if consumed:
        print("Consume (each topic read back right after it was produced)")
        print()
        print(report_consume(consumed))
        print()
    if latencies:
        lat0 = latencies[0]
        print(
            f"End-to-end latency ({lat0.rate:,.0f} records/s for {lat0.seconds:g} s, linger.ms "
            f"{args.latency_linger_ms:g}; e2e = send time in the record -> Consumer.poll returns it; "
            "ack = produce() -> delivery report)"
        )
        print()
        print(report_latency(latencies))
        behind = max(r.behind_ms for r in latencies)
        if behind > 5:
            print(f"(the send loop fell up to {behind:.1f} ms behind its schedule)")
        print()
    all_rows: list[tuple[str, list[str]]] = [
        *((f"produce {size_label(r.size)} acks={r.acks}", r.problems) for r in produced),
        *((f"consume {size_label(r.size)} (acks={r.acks} topic)", r.problems) for r in consumed),
        *((f"latency acks={r.acks}", r.problems) for r in latencies),
    ]
    failed = [(name, problems) for name, problems in all_rows if problems]
    print("Targets")
    print()
    lines, targets_ok = report_targets(produced, consumed, disk)
    print("\n".join(lines))
    print()
    if failed:
        print(f"{len(failed)} run(s) failed their checks:")
        for name, problems in failed:
            print(f"  {name}: {'; '.join(problems)}")
    elif all_rows:
        print(f"all {len(all_rows)} runs passed their checks")
    if aborted:
        print(f"stopped early: {aborted}")
    keep_logs = False
    if broker is not None and broker.process is not None:
        count, notable = broker.notable_log_lines()
        print(f"broker exit status {broker.exit_code}; {count} warning/error/traceback line(s) in its log")
        for line in notable:
            print(f"  {line}")
        if count > len(notable):
            print(f"  ... {count - len(notable)} more")
        keep_logs = bool(count or failed or aborted or broker.exit_code)
    print(f"total time {time.monotonic() - started:.0f} s")
    if keep_logs:
        shutil.rmtree(root / "data", ignore_errors=True)
        print(f"broker logs kept in {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if targets_ok and not failed and not aborted else 1


if __name__ == "__main__":
    sys.exit(main())
