"""Load processes for ``bench/kafka_bench.py``: confluent-kafka (librdkafka) producers and consumers.

Every worker runs in a process of its own (multiprocessing, spawn context: librdkafka's threads
and fork do not mix) and talks to the parent over a pipe:

1. it sets up its client (metadata, connection, watermarks) and sends ``("ready", info)``;
2. it waits for ``("go", t_go)`` and sleeps until ``t_go``, a ``time.monotonic()`` value: that
   clock is CLOCK_MONOTONIC on Linux, the same in every process, so the workers start together
   and a send time taken by one process can be compared with a receive time taken by another;
3. it runs and sends ``("result", result)``, or ``("error", text)`` if anything raised.

The latency consumer also waits for ``("expect", n)``: how many records the latency producer
had delivered, so it knows when it has seen them all.
"""

from __future__ import annotations

import os
import struct
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from typing import Any, Final

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

# the head of every latency record: sequence number, send time (time.monotonic_ns)
STAMP: Final = struct.Struct("<qq")
MAX_PROBLEMS: Final = 5  # distinct problems kept per worker
IDLE_TIMEOUT: Final = 30.0  # a consumer gives up after this long without a record
POLL_EVERY: Final = 1024  # producer: Producer.poll(0) (serves delivery reports) every N records


# -- configurations and results -------------------------------------------------------------------


@dataclass
class ProducerConfig:
    bootstrap: str
    topic: str
    size: int  # value bytes per record (no key, no headers)
    count: int  # records to produce
    acks: str  # "1" or "all"
    linger_ms: float
    batch_size: int
    only_error_reports: bool  # delivery.report.only.error: success = not failed and not left over


@dataclass
class ProducerResult:
    produced: int = 0  # produce() calls that were accepted
    delivered: int = 0  # successful delivery reports
    failed: int = 0  # delivery reports with an error
    undelivered: int = 0  # still queued when flush() gave up
    t_start: float = 0.0
    t_enqueued: float = 0.0  # the last produce() returned
    t_end: float = 0.0  # flush() returned: every delivery report is in
    cpu_seconds: float = 0.0  # this process, librdkafka's threads included
    problems: list[str] = field(default_factory=list)


@dataclass
class ConsumerConfig:
    bootstrap: str
    topic: str
    partitions: list[int]
    size: int  # expected value size of every record
    group: str
    fetch_min_bytes: int
    fetch_max_bytes: int
    partition_fetch_bytes: int
    fetch_wait_ms: int
    batch: int = 1_000  # Consumer.consume(num_messages)


@dataclass
class ConsumerResult:
    expected: int = 0  # high - low watermark summed over the partitions, read before "go"
    received: int = 0
    nbytes: int = 0  # value bytes
    offset_gaps: int = 0  # records whose offset was not the previous one + 1
    wrong_size: int = 0
    t_start: float = 0.0  # "go": assign() is called then
    t_last: float = 0.0  # the last record arrived
    cpu_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


@dataclass
class LatencyProducerConfig:
    bootstrap: str
    topic: str
    size: int  # >= STAMP.size
    rate: float  # records/s
    seconds: float
    acks: str
    linger_ms: float

    @property
    def total(self) -> int:
        return max(1, round(self.rate * self.seconds))


@dataclass
class Percentiles:
    count: int = 0
    p50: float = 0.0  # all in ms
    p99: float = 0.0
    p999: float = 0.0
    max: float = 0.0
    mean: float = 0.0


@dataclass
class LatencyProducerResult:
    produced: int = 0
    delivered: int = 0
    failed: int = 0
    undelivered: int = 0
    t_start: float = 0.0
    t_end: float = 0.0
    behind_ms: float = 0.0  # most the send loop ever lagged behind its schedule
    ack: Percentiles = field(default_factory=Percentiles)  # produce() -> delivery report
    cpu_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


@dataclass
class LatencyConsumerConfig:
    bootstrap: str
    topic: str
    partitions: list[int]
    group: str
    total: int  # records the producer will send (sequence numbers 0 .. total-1)
    fetch_wait_ms: int


@dataclass
class LatencyConsumerResult:
    received: int = 0
    duplicates: int = 0
    bad: int = 0  # too short, or a sequence number out of range
    latency: Percentiles = field(default_factory=Percentiles)  # send time -> receive time
    cpu_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


# -- helpers --------------------------------------------------------------------------------------


class Problems:
    """Distinct problem texts with a count each, capped at ``MAX_PROBLEMS`` kinds."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, text: str) -> None:
        if text in self.counts or len(self.counts) < MAX_PROBLEMS:
            self.counts[text] = self.counts.get(text, 0) + 1

    def as_list(self) -> list[str]:
        return [t if n == 1 else f"{t} (x{n})" for t, n in self.counts.items()]


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def wait_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def percentiles(values_ns: array[int] | list[float], scale: float) -> Percentiles:
    """Percentiles of ``values`` in ms (``scale``: ms per unit); nearest rank."""
    if not values_ns:
        return Percentiles()
    ordered = sorted(values_ns)
    n = len(ordered)

    def rank(q: float) -> float:
        return ordered[min(n - 1, max(0, round(q * n + 0.5) - 1))] * scale

    return Percentiles(n, rank(0.50), rank(0.99), rank(0.999), ordered[-1] * scale, sum(ordered) / n * scale)


def producer_conf(bootstrap: str, acks: str, linger_ms: float, batch_size: int) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "client.id": "jackalope-kafka-bench",
        "acks": acks,
        "linger.ms": linger_ms,
        "batch.size": batch_size,
        "batch.num.messages": 1_000_000,  # the maximum: let batch.size decide
        "queue.buffering.max.messages": 10_000_000,
        "queue.buffering.max.kbytes": 2_097_151,  # 2 GiB
        "compression.type": "none",
        "enable.idempotence": False,
        "socket.send.buffer.bytes": 4 * 1024 * 1024,
    }


def consumer_conf(
    bootstrap: str, group: str, fetch_min: int, fetch_max: int, partition_max: int, wait_ms: int
) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "client.id": "jackalope-kafka-bench",
        "group.id": group,  # never joined: partitions are assigned, offsets never committed
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "fetch.min.bytes": fetch_min,
        "fetch.max.bytes": fetch_max,
        "max.partition.fetch.bytes": partition_max,
        "fetch.wait.max.ms": wait_ms,
        "queued.min.messages": 1_000_000,
        "queued.max.messages.kbytes": 1_048_576,  # 1 GiB of prefetch
        # when the prefetch queue is over either limit, librdkafka stops fetching for this long
        # (default 1000 ms): with 100 B records that stalled the consumer for most of a second
        "fetch.queue.backoff.ms": 5,
        "socket.receive.buffer.bytes": 4 * 1024 * 1024,
    }


def _ready_and_wait(pipe: Pipe, info: object = None) -> float:
    pipe.send(("ready", info))
    kind, t_go = pipe.recv()
    if kind != "go":
        raise RuntimeError(f"expected 'go' from the parent, got {kind!r}")
    wait_until(float(t_go))
    return float(t_go)


def _error_cb(problems: Problems, what: str) -> Any:
    """librdkafka's error_cb: global errors (transport failures, all brokers down, ...)."""

    def on_error(err: KafkaError) -> None:
        problems.add(f"{what} client error: {err.str()}")

    return on_error


def _ensure_metadata(client: Producer | Consumer, topic: str) -> int:
    """Fetch the topic's metadata (connecting to the broker); its partition count."""
    md = client.list_topics(topic, timeout=15)
    tmd = md.topics.get(topic)
    if tmd is None or tmd.error is not None:
        raise RuntimeError(f"topic {topic}: {'absent' if tmd is None else tmd.error} in metadata")
    return len(tmd.partitions)


def _run(pipe: Pipe, body: Any) -> None:
    try:
        body()
    except BaseException as exc:
        try:
            pipe.send(("error", f"{type(exc).__name__}: {exc}"))
        finally:
            pipe.close()
        if not isinstance(exc, Exception):
            raise


# -- throughput producer --------------------------------------------------------------------------


def producer_process(cfg: ProducerConfig, pipe: Pipe) -> None:
    _run(pipe, lambda: _producer(cfg, pipe))


def _producer(cfg: ProducerConfig, pipe: Pipe) -> None:
    res = ProducerResult()
    problems = Problems()
    counts = [0, 0]  # delivered, failed

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            counts[0] += 1
        else:
            counts[1] += 1
            problems.add(f"delivery failed: {err.str()}")

    conf = producer_conf(cfg.bootstrap, cfg.acks, cfg.linger_ms, cfg.batch_size)
    conf["on_delivery"] = on_delivery  # one callback for all: cheaper than one per produce()
    conf["error_cb"] = _error_cb(problems, "producer")
    if cfg.only_error_reports:
        conf["delivery.report.only.error"] = True
    producer = Producer(conf)
    _ensure_metadata(producer, cfg.topic)
    value = os.urandom(cfg.size)
    topic = cfg.topic
    produce, poll = producer.produce, producer.poll

    def blocked() -> None:  # the local queue is full: serve reports until produce() fits
        while True:
            poll(0.005)
            try:
                produce(topic, value)
                return
            except BufferError:
                continue

    _ready_and_wait(pipe)
    cpu0 = cpu_seconds()
    res.t_start = time.monotonic()
    mask = POLL_EVERY - 1
    for i in range(cfg.count):
        try:
            produce(topic, value)
        except BufferError:
            blocked()
        if not i & mask:
            poll(0)
    res.t_enqueued = time.monotonic()
    res.produced = cfg.count
    res.undelivered = producer.flush(300)
    res.t_end = time.monotonic()
    res.cpu_seconds = cpu_seconds() - cpu0
    res.failed = counts[1]
    if cfg.only_error_reports:
        res.delivered = res.produced - res.failed - res.undelivered
    else:
        res.delivered = counts[0]
    res.problems = problems.as_list()
    pipe.send(("result", res))


# -- throughput consumer --------------------------------------------------------------------------


def consumer_process(cfg: ConsumerConfig, pipe: Pipe) -> None:
    _run(pipe, lambda: _consumer(cfg, pipe))


def _consumer(cfg: ConsumerConfig, pipe: Pipe) -> None:
    res = ConsumerResult()
    problems = Problems()
    conf = consumer_conf(
        cfg.bootstrap,
        cfg.group,
        cfg.fetch_min_bytes,
        cfg.fetch_max_bytes,
        cfg.partition_fetch_bytes,
        cfg.fetch_wait_ms,
    )
    conf["error_cb"] = _error_cb(problems, "consumer")
    consumer = Consumer(conf)
    try:
        _ensure_metadata(consumer, cfg.topic)
        start: dict[int, int] = {}
        for p in cfg.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(cfg.topic, p), timeout=15)
            start[p] = low
            res.expected += high - low
        t_go = _ready_and_wait(pipe, res.expected)
        cpu0 = cpu_seconds()
        res.t_start = res.t_last = t_go
        consumer.assign([TopicPartition(cfg.topic, p, start[p]) for p in cfg.partitions])
        consume = consumer.consume
        size = cfg.size
        next_offset = dict(start)
        single: int | None = start[cfg.partitions[0]] if len(cfg.partitions) == 1 else None
        received = nbytes = gaps = wrong = 0
        expected = res.expected
        idle_since = time.monotonic()
        while received < expected:
            # never ask for more than is left: consume() waits for a full batch or the timeout
            batch = consume(min(cfg.batch, expected - received), 1.0)
            if not batch:
                if time.monotonic() - idle_since > IDLE_TIMEOUT:
                    problems.add(f"nothing received for {IDLE_TIMEOUT:.0f} s")
                    break
                continue
            if single is not None:  # one partition: the cheap loop (~60 ns a record in Python)
                for m in batch:
                    v = m.value()
                    if v is None:  # our records all have values: this is an error event
                        err = m.error()
                        problems.add(f"consume error: {err.str() if err is not None else 'no value'}")
                        continue
                    n = len(v)
                    if n != size:
                        wrong += 1
                    nbytes += n
                    off = m.offset()
                    if off != single:
                        gaps += 1
                    single = (off or 0) + 1
                    received += 1
            else:
                for m in batch:
                    v = m.value()
                    if v is None:
                        err = m.error()
                        problems.add(f"consume error: {err.str() if err is not None else 'no value'}")
                        continue
                    n = len(v)
                    if n != size:
                        wrong += 1
                    nbytes += n
                    part, off = m.partition(), m.offset()
                    if part is None or off is None or next_offset.get(part) != off:
                        gaps += 1
                    if part is not None and off is not None:
                        next_offset[part] = off + 1
                    received += 1
            res.t_last = idle_since = time.monotonic()
        res.cpu_seconds = cpu_seconds() - cpu0
        res.received, res.nbytes, res.offset_gaps, res.wrong_size = received, nbytes, gaps, wrong
        res.problems = problems.as_list()
        pipe.send(("result", res))
    finally:
        consumer.close()


# -- end-to-end latency ---------------------------------------------------------------------------


def latency_producer_process(cfg: LatencyProducerConfig, pipe: Pipe) -> None:
    _run(pipe, lambda: _latency_producer(cfg, pipe))


def _latency_producer(cfg: LatencyProducerConfig, pipe: Pipe) -> None:
    res = LatencyProducerResult()
    problems = Problems()
    counts = [0, 0]
    ack_s: list[float] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is None:
            counts[0] += 1
            latency = msg.latency()
            if latency is not None:
                ack_s.append(latency)
        else:
            counts[1] += 1
            problems.add(f"delivery failed: {err.str()}")

    conf = producer_conf(cfg.bootstrap, cfg.acks, cfg.linger_ms, 1_000_000)
    conf["on_delivery"] = on_delivery
    conf["error_cb"] = _error_cb(problems, "producer")
    producer = Producer(conf)
    _ensure_metadata(producer, cfg.topic)
    pad = os.urandom(max(0, cfg.size - STAMP.size))
    topic, total, rate = cfg.topic, cfg.total, cfg.rate
    produce, poll, pack, now_ns = producer.produce, producer.poll, STAMP.pack, time.monotonic_ns

    _ready_and_wait(pipe)
    cpu0 = cpu_seconds()
    res.t_start = time.monotonic()
    start_ns = now_ns()
    behind_ns = 0
    sent = 0
    while sent < total:
        now = now_ns()
        due = min(total, int((now - start_ns) * rate / 1e9) + 1)  # records that should be out by now
        if due - sent > 1:
            behind_ns = max(behind_ns, now - (start_ns + int((sent + 1) / rate * 1e9)))
        while sent < due:
            produce(topic, pack(sent, now_ns()) + pad)
            sent += 1
        poll(0)  # serve delivery reports
        delay = start_ns + int(sent / rate * 1e9) - now_ns()
        if delay > 0:
            time.sleep(delay / 1e9)
    res.produced = sent
    res.undelivered = producer.flush(60)
    res.t_end = time.monotonic()
    res.cpu_seconds = cpu_seconds() - cpu0
    res.delivered, res.failed = counts
    res.behind_ms = behind_ns / 1e6
    res.ack = percentiles(ack_s, 1e3)
    res.problems = problems.as_list()
    pipe.send(("result", res))


def latency_consumer_process(cfg: LatencyConsumerConfig, pipe: Pipe) -> None:
    _run(pipe, lambda: _latency_consumer(cfg, pipe))


def _latency_consumer(cfg: LatencyConsumerConfig, pipe: Pipe) -> None:
    res = LatencyConsumerResult()
    problems = Problems()
    conf = consumer_conf(cfg.bootstrap, cfg.group, 1, 52_428_800, 1_048_576, cfg.fetch_wait_ms)
    conf["error_cb"] = _error_cb(problems, "consumer")
    consumer = Consumer(conf)
    try:
        _ensure_metadata(consumer, cfg.topic)
        # the topic is new and empty: fetch from offset 0, already waiting when the first record comes
        consumer.assign([TopicPartition(cfg.topic, p, 0) for p in cfg.partitions])
        _ready_and_wait(pipe)
        cpu0 = cpu_seconds()
        seen = bytearray(cfg.total)
        latencies: array[int] = array("q")
        poll, now_ns, unpack = consumer.poll, time.monotonic_ns, STAMP.unpack_from
        expected: int | None = None
        deadline = 0.0
        received = duplicates = bad = 0
        while True:
            m = poll(0.05)
            if m is not None:
                t = now_ns()
                err = m.error()
                v = m.value()
                if err is not None:
                    problems.add(f"consume error: {err.str()}")
                elif v is None or len(v) < STAMP.size:
                    bad += 1
                else:
                    seq, sent_ns = unpack(v)
                    if not 0 <= seq < cfg.total:
                        bad += 1
                    elif seen[seq]:
                        duplicates += 1
                    else:
                        seen[seq] = 1
                        received += 1
                        latencies.append(t - sent_ns)
            if expected is None and pipe.poll():
                kind, value = pipe.recv()
                if kind != "expect":
                    raise RuntimeError(f"expected 'expect' from the parent, got {kind!r}")
                expected = int(value)
                deadline = time.monotonic() + 10.0
            if expected is not None and (received >= expected or time.monotonic() > deadline):
                break
        res.cpu_seconds = cpu_seconds() - cpu0
        res.received, res.duplicates, res.bad = received, duplicates, bad
        res.latency = percentiles(latencies, 1e-6)
        res.problems = problems.as_list()
        pipe.send(("result", res))
    finally:
        consumer.close()
