"""Kafka transactions benchmark: what a transactional producer, a read_committed consumer and an
exactly-once consume-transform-produce loop get from Jackalope, with confluent-kafka clients.

Run from the repository root::

    .venv/bin/python bench/txn_bench.py [--bootstrap HOST:PORT] [--transactions 200]
                                        [--records-per-txn 10,100,1000] [--size 100] [--eos 100000]

Without ``--bootstrap`` the script starts its own ``jackalope serve`` (as ``bench/kafka_bench.py``
does: a temporary data directory, ephemeral ports, the default durability ``always``) and stops
it at the end.  No reference broker runs here (Apache Kafka is not installable on this machine),
so the ratio printed is against the same broker without transactions.

* **transactions**: for each ``--records-per-txn`` N, one producer process runs
  ``--transactions`` transactions of N records of ``--size`` bytes (``begin_transaction``,
  N ``produce``, ``commit_transaction``) into a new topic, while a ``read_committed`` consumer
  process reads that topic.  Reported: transactions/s and records/s of the producer, the
  ``commit_transaction`` latency percentiles, the consumer's rate *while* the producer runs
  (records it received between the producer's start and end, over that time) and end-to-end
  latency (send time stamped in the record, to the consumer's poll; a record becomes visible only
  at its transaction's commit, so this includes the wait for the commit).
* **baseline**: the same records from an idempotent ``acks=all`` producer that calls
  ``flush()`` every N records (the same sync points without a transaction): the ratio
  transactional / baseline says what the transaction costs.
* **exactly-once**: ``--eos`` records are put in an input topic, then one process consumes them
  (group, ``read_committed``, no auto commit) and, per poll of up to ``--eos-batch`` records,
  produces each record transformed into an output topic and commits the input offsets in the same
  transaction (``send_offsets_to_transaction``).  Reported: records/s from the first batch (the
  group join before it is not counted); checked: the output holds
  exactly the input count for a ``read_committed`` reader.
"""

from __future__ import annotations

import argparse
import multiprocessing
import struct
import sys
import tempfile
import time
import uuid
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any, Final

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

import kafka_bench as kb
from bench_workers import Worker, spawn
from kafka_load import Percentiles, percentiles

STAMP: Final = struct.Struct("<qq")  # sequence number, send time (time.monotonic_ns)
_CTX = multiprocessing.get_context("spawn")
IDLE_TIMEOUT: Final = 30.0


@dataclass
class Run:
    bootstrap: str
    topic: str
    transactions: int
    per_txn: int
    size: int
    transactional: bool


@dataclass
class ProducerResult:
    seconds: float
    records: int
    commits: Percentiles
    start: float
    end: float


@dataclass
class ConsumerResult:
    records: int
    during: int  # records received between the producer's start and end
    latency: Percentiles
    duplicates: int


def _value(seq: int, size: int) -> bytes:
    stamp = STAMP.pack(seq, time.monotonic_ns())
    return stamp + b"x" * max(0, size - len(stamp))


def producer_process(run: Run, pipe: Pipe) -> None:
    try:
        conf: dict[str, Any] = {
            "bootstrap.servers": run.bootstrap,
            "linger.ms": 5,
            "acks": "all",
            "enable.idempotence": True,
        }
        if run.transactional:
            conf["transactional.id"] = f"bench-{uuid.uuid4().hex[:8]}"
        producer = Producer(conf)
        if run.transactional:
            producer.init_transactions(30)
        errors: list[str] = []

        def report(err: KafkaError | None, _msg: Any) -> None:
            if err is not None and len(errors) < 5:
                errors.append(err.str())

        pipe.send(("ready", None))
        pipe.recv()
        commits = array("q")
        start = time.monotonic()
        seq = 0
        for _ in range(run.transactions):
            if run.transactional:
                producer.begin_transaction()
            for _ in range(run.per_txn):
                producer.produce(run.topic, _value(seq, run.size), on_delivery=report)
                seq += 1
                producer.poll(0)
            t0 = time.monotonic_ns()
            if run.transactional:
                producer.commit_transaction(60)
            else:
                producer.flush(60)
            commits.append(time.monotonic_ns() - t0)
        end = time.monotonic()
        if errors:
            raise RuntimeError(f"delivery errors: {errors}")
        pipe.send(("result", ProducerResult(end - start, seq, percentiles(commits, 1e-6), start, end)))
    except BaseException as exc:
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))


def consumer_process(bootstrap: str, topic: str, expected: int, pipe: Pipe) -> None:
    try:
        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "bench-never-joined",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 100,
                "enable.partition.eof": False,
            }
        )
        consumer.assign([TopicPartition(topic, 0, 0)])
        pipe.send(("ready", None))
        latencies = array("q")
        received: list[tuple[float, int]] = []
        seen: set[int] = set()
        duplicates = 0
        last = time.monotonic()
        while len(received) < expected and time.monotonic() - last < IDLE_TIMEOUT:
            msg = consumer.poll(0.2)  # returns as soon as a record is there (consume(n) waits for n)
            if msg is None or msg.error() is not None:
                continue
            now_ns = time.monotonic_ns()
            seq, sent = STAMP.unpack_from(msg.value() or b"")
            if seq in seen:
                duplicates += 1
                continue
            seen.add(seq)
            latencies.append(now_ns - sent)
            received.append((now_ns / 1e9, seq))
            last = time.monotonic()
        pipe.send(("received", None))
        start, end = pipe.recv()  # the producer's run
        during = sum(1 for t, _ in received if start <= t <= end)
        consumer.close()
        pipe.send(("result", ConsumerResult(len(received), during, percentiles(latencies, 1e-6), duplicates)))
    except BaseException as exc:
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))


def _expect(worker: Worker, kind: str, timeout: float) -> Any:
    got, value = worker.receive(timeout)
    if got != kind:
        raise kb.BenchError(f"{worker.name}: {value}")
    return value


def run_pair(run: Run) -> tuple[ProducerResult, ConsumerResult]:
    kb.ensure_topic(run.bootstrap, run.topic, 1)
    total = run.transactions * run.per_txn
    consumer = spawn(_CTX, "txn-bench", "consumer", consumer_process, run.bootstrap, run.topic, total)
    producer = spawn(_CTX, "txn-bench", "producer", producer_process, run)
    try:
        _expect(consumer, "ready", 60)
        _expect(producer, "ready", 60)
        producer.pipe.send("go")
        produced: ProducerResult = _expect(producer, "result", 600)
        _expect(consumer, "received", 600)
        consumer.pipe.send((produced.start, produced.end))
        consumed: ConsumerResult = _expect(consumer, "result", 60)
    finally:
        for w in (producer, consumer):
            w.process.join(5)
            if w.process.is_alive():
                w.process.kill()
    return produced, consumed


def eos_process(bootstrap: str, source: str, sink: str, count: int, batch: int, pipe: Pipe) -> None:
    try:
        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"eos-{uuid.uuid4().hex[:8]}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "transactional.id": f"eos-{uuid.uuid4().hex[:8]}",
                "linger.ms": 5,
            }
        )
        producer.init_transactions(30)
        consumer.subscribe([source])
        pipe.send(("ready", None))
        pipe.recv()
        start = None  # the clock starts at the first batch, once the group is joined
        done = 0
        last = time.monotonic()
        while done < count and time.monotonic() - last < IDLE_TIMEOUT:
            msgs = [m for m in consumer.consume(batch, 0.5) if m.error() is None]
            if not msgs:
                continue
            last = time.monotonic()
            start = start or last
            producer.begin_transaction()
            for m in msgs:
                producer.produce(sink, (m.value() or b"")[::-1], key=m.key())
            producer.send_offsets_to_transaction(
                consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), 30
            )
            producer.commit_transaction(60)
            done += len(msgs)
        seconds = time.monotonic() - (start or time.monotonic())
        consumer.close()
        pipe.send(("result", (done, seconds)))
    except BaseException as exc:
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))


def count_committed(bootstrap: str, topic: str, expected: int) -> int:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bench-count", "isolation.level": "read_committed"}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    seen = 0
    last = time.monotonic()
    while time.monotonic() - last < 5 and seen <= expected:
        msgs = [m for m in consumer.consume(10_000, 0.5) if m.error() is None]
        if msgs:
            seen += len(msgs)
            last = time.monotonic()
    consumer.close()
    return seen


def run_eos(bootstrap: str, count: int, batch: int, size: int) -> tuple[int, float, int]:
    source, sink = f"eos-in-{uuid.uuid4().hex[:6]}", f"eos-out-{uuid.uuid4().hex[:6]}"
    kb.ensure_topic(bootstrap, source, 1)
    kb.ensure_topic(bootstrap, sink, 1)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    for i in range(count):
        producer.produce(source, b"v" * size, key=str(i).encode())
        if i % 10_000 == 0:
            producer.poll(0)
    if producer.flush(120):
        raise kb.BenchError("the input topic was not filled")
    worker = spawn(_CTX, "txn-bench", "eos", eos_process, bootstrap, source, sink, count, batch)
    try:
        _expect(worker, "ready", 60)
        worker.pipe.send("go")
        done, seconds = _expect(worker, "result", 900)
    finally:
        worker.process.join(5)
        if worker.process.is_alive():
            worker.process.kill()
    return done, seconds, count_committed(bootstrap, sink, count)


def _ms(p: Percentiles) -> str:
    return f"{p.p50:.1f} / {p.p99:.1f} / {p.max:.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", help="an existing broker (default: start jackalope serve)")
    parser.add_argument("--transactions", type=int, default=200)
    parser.add_argument("--records-per-txn", default="10,100,1000")
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--eos", type=int, default=100_000, help="records through the EOS loop (0: skip)")
    parser.add_argument("--eos-batch", type=int, default=500)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="txn-bench-"))
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        broker = kb.start_broker(root, 1, [])
        bootstrap = broker.bootstrap
    try:
        rows = []
        for n in (int(x) for x in args.records_per_txn.split(",")):
            txns = max(1, min(args.transactions, 200_000 // n))
            results = {}
            for transactional in (True, False):
                topic = f"txn-{'t' if transactional else 'b'}{n}-{uuid.uuid4().hex[:6]}"
                results[transactional] = run_pair(Run(bootstrap, topic, txns, n, args.size, transactional))
            rows.append((n, txns, results))
        print(f"\nbroker: {kb.broker_versions(bootstrap)}; {args.size} B records, one partition\n")
        header = (
            f"{'records/txn':>11} {'txns':>6} {'txn/s':>8} {'records/s':>10} {'vs plain':>8} "
            f"{'commit ms p50/p99/max':>22} {'consumer rec/s while producing':>31} "
            f"{'end-to-end ms p50/p99/max':>26} {'dup':>4}"
        )
        print(header)
        for n, txns, results in rows:
            (tp, tc), (bp, _) = results[True], results[False]
            rate = tp.records / tp.seconds
            plain = bp.records / bp.seconds
            during = tc.during / (tp.end - tp.start)
            print(
                f"{n:>11} {txns:>6} {txns / tp.seconds:>8.0f} {rate:>10.0f} {rate / plain:>8.2f} "
                f"{_ms(tp.commits):>22} {during:>31.0f} {_ms(tc.latency):>26} {tc.duplicates:>4}"
            )
            if tc.records != tp.records:
                print(f"  !! the read_committed consumer got {tc.records} of {tp.records} records")
        if args.eos:
            done, seconds, out = run_eos(bootstrap, args.eos, args.eos_batch, args.size)
            print(
                f"\nexactly-once consume-transform-produce: {done} records in {seconds:.1f} s = "
                f"{done / seconds:.0f} records/s (batches of up to {args.eos_batch}); "
                f"output for read_committed: {out} records ({'exact' if out == args.eos else 'MISMATCH'})"
            )
    finally:
        if broker is not None:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
