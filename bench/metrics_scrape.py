"""What a Prometheus scrape costs with many queues: ``/metrics`` and ``/metrics/per-object``.

Run from the repository root::

    .venv/bin/python bench/metrics_scrape.py [--queues 10000] [--scrapes 50]
                                             [--http-url URL --amqp-url URL --broker-pid PID]

Without ``--http-url`` it starts ``jackalope serve`` on ephemeral ports in a temporary data
directory (and stops it at the end).  It declares ``--queues`` non-durable queues over one
AMQP channel (``queue.declare`` with ``nowait``, all pipelined, then one synchronous declare
to know the broker has done them all) and publishes one message to every tenth queue, then
scrapes each endpoint ``--scrapes`` times, one at a time, on one keep-alive HTTP connection
with basic auth (the broker's default guest user unless ``--user``/``--password``).

Per endpoint it prints the median and p99 of the wall time of a scrape (request sent to the
last byte read), the broker's CPU time per scrape (from /proc/<pid>/stat over all scrapes,
with ``--broker-pid`` or the process it started) and the response size.  It checks the first
answer of each endpoint: ``rabbitmq_queues`` must count every queue, and per-object must
have one ``rabbitmq_queue_messages_ready`` sample per queue.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pamqp import body, commands, frame, header
from prometheus_client.parser import text_string_to_metric_families

from amqp_load.report import percentiles
from amqp_load.sysstat import process_cpu_seconds
from amqp_load.wire import AmqpUrl, Connection

LISTENING = re.compile(r"listening (\w+)\s+(\S+)")
ENDPOINTS = ("/metrics", "/metrics/per-object")


@dataclass
class Broker:
    http_url: str
    amqp_url: str
    pid: int | None
    process: subprocess.Popen[str] | None = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)


def start_broker(data_dir: Path) -> Broker:
    cmd = [sys.executable, "-m", "jackalope", "serve", "--data-dir", str(data_dir)]
    cmd += ["--http-port", "0", "--amqp-port", "0", "--kafka-port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    urls: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not {"http", "amqp", "kafka"} <= urls.keys():
        line = proc.stdout.readline()
        if not line:
            break
        m = LISTENING.search(line)
        if m:
            urls[m.group(1)] = m.group(2)
    if not {"http", "amqp"} <= urls.keys():
        proc.kill()
        raise SystemExit("jackalope serve did not start")
    proc.stdout.close()  # the broker logs little once started; nothing blocks on the pipe
    amqp = urls["amqp"].replace("amqp://", "amqp://guest:guest@", 1) + "/"
    return Broker(urls["http"], amqp, proc.pid, proc)


async def declare_queues(amqp_url: str, count: int) -> None:
    """``count`` queues over one channel, pipelined (nowait), and one message in every tenth."""
    conn = await Connection.open(AmqpUrl.parse(amqp_url), product="jackalope metrics_scrape")
    try:
        await conn.open_channel(1)
        chunk: list[bytes] = []
        for i in range(count):
            name = f"bench.q.{i:05d}"
            chunk.append(frame.marshal(commands.Queue.Declare(queue=name, nowait=True), 1))
            if i % 10 == 0:
                chunk.append(frame.marshal(commands.Basic.Publish(exchange="", routing_key=name), 1))
                chunk.append(frame.marshal(header.ContentHeader(0, 1, commands.Basic.Properties()), 1))
                chunk.append(frame.marshal(body.ContentBody(b"m"), 1))
            if len(chunk) >= 1000:
                conn.write(b"".join(chunk))
                chunk.clear()
                await conn.writable()
        conn.write(b"".join(chunk))
        # the broker does a channel's methods in order: this answer means every one is done
        last = commands.Queue.Declare(queue=f"bench.q.{count - 1:05d}", passive=True)
        await conn.rpc(1, last, commands.Queue.DeclareOk)
    finally:
        await conn.close()


@dataclass
class Series:
    median: float  # seconds
    p99: float
    cpu: float | None  # broker CPU seconds per scrape
    size: int  # bytes of the last answer
    first: str  # the first answer


def scrape_series(http_url: str, path: str, auth: str, scrapes: int, pid: int | None) -> Series:
    parts = urlsplit(http_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=120)
    headers = {"Authorization": auth}
    times: list[float] = []
    size = 0
    first = ""
    cpu_before = process_cpu_seconds(pid) if pid else None
    for i in range(scrapes):
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        times.append(time.perf_counter() - started)
        if resp.status != 200:
            raise SystemExit(f"{path}: HTTP {resp.status}: {data[:200]!r}")
        size = len(data)
        if i == 0:
            first = data.decode()
    cpu_after = process_cpu_seconds(pid) if pid else None
    conn.close()
    (p99,) = percentiles(times, [0.99])
    cpu = (cpu_after - cpu_before) / scrapes if cpu_before is not None and cpu_after is not None else None
    return Series(statistics.median(times), p99 or 0.0, cpu, size, first)


def check(path: str, text: str, queues: int) -> None:
    samples: dict[str, list[float]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            samples.setdefault(s.name, []).append(s.value)
    counted = samples.get("rabbitmq_queues", [0])[0]
    if counted != queues:
        raise SystemExit(f"{path}: rabbitmq_queues is {counted}, not {queues}")
    ready = samples.get("rabbitmq_queue_messages_ready", [])
    expected = queues if path.endswith("per-object") else 1
    if len(ready) != expected:
        raise SystemExit(f"{path}: {len(ready)} rabbitmq_queue_messages_ready samples, not {expected}")
    if sum(ready) != (queues + 9) // 10:
        raise SystemExit(f"{path}: {sum(ready)} messages ready, not {(queues + 9) // 10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queues", type=int, default=10_000)
    parser.add_argument("--scrapes", type=int, default=50)
    parser.add_argument("--http-url", help="a running broker's HTTP API (default: start one)")
    parser.add_argument("--amqp-url", help="its AMQP URL, with credentials")
    parser.add_argument("--broker-pid", type=int, help="its pid, for CPU time per scrape")
    parser.add_argument("--user", default="guest")
    parser.add_argument("--password", default="guest")
    args = parser.parse_args()

    tmp: tempfile.TemporaryDirectory[str] | None = None
    if args.http_url:
        if not args.amqp_url:
            parser.error("--http-url needs --amqp-url")
        broker = Broker(args.http_url, args.amqp_url, args.broker_pid)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="jackalope-metrics-")
        broker = start_broker(Path(tmp.name) / "data")
    try:
        started = time.perf_counter()
        asyncio.run(declare_queues(broker.amqp_url, args.queues))
        print(f"declared {args.queues} queues in {time.perf_counter() - started:.2f} s")
        auth = "Basic " + base64.b64encode(f"{args.user}:{args.password}".encode()).decode()
        print(f"{'endpoint':<22}{'median ms':>11}{'p99 ms':>9}{'CPU ms':>9}{'bytes':>12}")
        for path in ENDPOINTS:
            series = scrape_series(broker.http_url, path, auth, args.scrapes, broker.pid)
            check(path, series.first, args.queues)
            cpu = "-" if series.cpu is None else f"{series.cpu * 1000:.1f}"
            print(
                f"{path:<22}{series.median * 1000:>11.1f}{series.p99 * 1000:>9.1f}{cpu:>9}{series.size:>12,}"
            )
        print(f"({args.scrapes} scrapes each, {args.queues} queues, {os.cpu_count()} CPUs)")
    finally:
        broker.stop()
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
