"""The load generator's processes: publisher, consumer and the pika baseline.

Each runs in its own OS process (``multiprocessing``, fork) on its own uvloop event loop, and
talks to the parent over a pipe:

    child -> parent   ("ready", None)        connected, channel set up, consumers registered
    parent -> child   ("go", t)              start at time.monotonic() == t (same clock in
                                             every process on Linux)
    parent -> child   ("expect", n)          consumer only: stop after n deliveries in all
    child -> parent   ("result", result) or ("error", text)
"""

from __future__ import annotations

import asyncio
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from typing import Any

from pamqp import commands

from amqp_load.wire import AmqpUrl, ConfirmTracker, Connection, message_frames, weighted_percentiles

GO_TIMEOUT = 120.0
DRAIN_GRACE = 0.05  # after the last expected delivery, wait this long for any extra ones


@dataclass
class PublisherConfig:
    url: str
    exchange: str
    routing_key: str
    body_size: int
    delivery_mode: int
    seconds: float
    max_bytes: int
    confirms: bool
    window: int = 0  # most unconfirmed messages at a time (confirms only)
    write_batch: int = 1  # most messages per write
    min_write: int = 1  # with confirms: wait until this many fit in the window
    sync_queue: str | None = None  # after publishing, poll this queue until it holds them all
    record_latency: bool = False
    settle_timeout: float = 60.0


@dataclass
class PublisherResult:
    published: int = 0
    acked: int = 0
    nacked: int = 0
    confirm_problems: int = 0  # duplicate confirms, confirms of unpublished sequence numbers
    t_start: float = 0.0
    t_written: float = 0.0  # last write handed to the transport
    t_end: float = 0.0  # last confirm, or queue depth reached, or t_written
    cpu_seconds: float = 0.0  # between t_start and the end of measurement
    queue_count: int | None = None
    latency_ms: tuple[float, float, float, float] | None = None  # p50, p99, mean, max
    latency_messages: int = 0
    frame_max: int = 0
    server: str = ""
    problems: list[str] = field(default_factory=list)


@dataclass
class ConsumerConfig:
    url: str
    queues: list[str]
    prefetch: int
    ack_every: int
    expected: int = 0  # 0: told later with ("expect", n)
    consume_at_go: bool = False  # register consumers at go (consume-only) or before ready
    idle_timeout: float = 15.0
    overall_timeout: float = 600.0


@dataclass
class ConsumerResult:
    delivered: int = 0
    per_queue: dict[str, int] = field(default_factory=dict)
    body_bytes: int = 0
    redelivered: int = 0
    tag_gaps: int = 0
    t_start: float = 0.0
    t_first: float = 0.0
    t_last: float = 0.0
    cpu_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


def _run(main: Any, pipe: Pipe) -> None:
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover
        loop_factory = None
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            result = runner.run(main)
        pipe.send(("result", result))
    except BaseException as exc:
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        pipe.send(("error", text))
    finally:
        pipe.close()


def _wait_go(pipe: Pipe) -> float:
    if not pipe.poll(GO_TIMEOUT):
        raise TimeoutError("no go from the parent")
    kind, value = pipe.recv()
    if kind != "go":
        raise RuntimeError(f"expected go, got {kind}")
    return float(value)


async def _sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


# -- publisher -------------------------------------------------------------------------------


def publisher_process(cfg: PublisherConfig, pipe: Pipe) -> None:
    _run(_publish(cfg, pipe), pipe)


async def _publish(cfg: PublisherConfig, pipe: Pipe) -> PublisherResult:
    conn = await Connection.open(AmqpUrl.parse(cfg.url))
    res = PublisherResult(frame_max=conn.frame_max, server=_server_name(conn))
    try:
        await conn.open_channel(1)
        tracker = ConfirmTracker(cfg.record_latency)
        if cfg.confirms:
            await conn.rpc(1, commands.Confirm.Select(), commands.Confirm.SelectOk)
            conn.confirms = tracker
        msg = message_frames(
            1, cfg.exchange, cfg.routing_key, b"x" * cfg.body_size, cfg.delivery_mode, conn.frame_max
        )
        batch = max(1, cfg.write_batch)
        block = msg * batch
        view = memoryview(block)
        msg_len = len(msg)
        max_msgs = max(1, cfg.max_bytes // max(1, cfg.body_size))
        assert conn.transport is not None
        conn.transport.set_write_buffer_limits(high=max(4 * len(block), 1 << 20))
        pipe.send(("ready", None))

        t_go = _wait_go(pipe)
        await _sleep_until(t_go)
        cpu0 = time.process_time()
        t0 = time.monotonic()
        deadline = t0 + cfg.seconds
        res.t_start = t0
        loop = asyncio.get_running_loop()
        timer = loop.call_later(cfg.seconds, conn.wake)  # a publisher that waits stops on time
        monotonic = time.monotonic
        while not conn.lost:
            now = monotonic()
            if now >= deadline or tracker.published >= max_msgs:
                break
            if conn.paused:
                await conn.writable()
                continue
            if cfg.confirms:
                free = cfg.window - tracker.outstanding
                if free < cfg.min_write:
                    await conn.next_confirm()
                    continue
                n = min(free, batch, max_msgs - tracker.published)
            else:
                n = min(batch, max_msgs - tracker.published)
            tracker.sent(n, now)
            conn.write(block if n == batch else view[: n * msg_len])
            if not cfg.confirms or cfg.window - tracker.outstanding >= cfg.min_write:
                await asyncio.sleep(0)  # let the loop read confirms and flow control
        res.t_written = monotonic()
        res.t_end = res.t_written
        timer.cancel()

        if cfg.confirms:
            settle = res.t_written + cfg.settle_timeout
            timer = loop.call_later(cfg.settle_timeout, conn.wake)
            while tracker.outstanding and not conn.lost and monotonic() < settle:
                await conn.next_confirm()
            timer.cancel()
            if tracker.outstanding:
                res.problems.append(f"{tracker.outstanding} publishes never confirmed")
            res.t_end = tracker.t_last or res.t_written
        res.cpu_seconds = time.process_time() - cpu0

        if cfg.sync_queue is not None:
            count, t_full = await _wait_depth(conn, cfg.sync_queue, tracker.published, cfg.settle_timeout)
            res.queue_count = count
            if not cfg.confirms:
                res.t_end = t_full
                res.cpu_seconds = time.process_time() - cpu0

        res.published = tracker.published
        res.acked = tracker.acked
        res.nacked = tracker.nacked
        res.confirm_problems = tracker.duplicates + tracker.beyond
        if tracker.samples:
            p50, p99 = weighted_percentiles(tracker.samples, (0.50, 0.99))
            total = sum(c for _, c in tracker.samples)
            mean = sum(v * c for v, c in tracker.samples) / total
            worst = max(v for v, _ in tracker.samples)
            res.latency_ms = (p50 * 1e3, p99 * 1e3, mean * 1e3, worst * 1e3)
            res.latency_messages = total
    finally:
        await conn.close(cfg.settle_timeout)  # lets the broker read what is still in socket buffers
        res.problems.extend(conn.problems)
    return res


async def _wait_depth(conn: Connection, queue: str, expected: int, max_wait: float) -> tuple[int, float]:
    """Poll queue.declare(passive) on the publishing channel until ``expected`` messages are in.

    Sent on the channel that published, after the last publish, so a broker that handles a
    channel's methods in order has routed every earlier message by the time it answers; the
    polling covers brokers (RabbitMQ among them) that count what the queue has absorbed so far.
    """
    give_up = time.monotonic() + max_wait
    while True:
        ok = await conn.rpc(1, commands.Queue.Declare(queue=queue, passive=True), commands.Queue.DeclareOk)
        now = time.monotonic()
        count = ok.message_count or 0
        if count >= expected or now > give_up or conn.lost:
            return count, now
        await asyncio.sleep(0.001)


def _server_name(conn: Connection) -> str:
    props = conn.server_properties
    return f"{props.get('product', '?')} {props.get('version', '?')}"


# -- consumer --------------------------------------------------------------------------------


def consumer_process(cfg: ConsumerConfig, pipe: Pipe) -> None:
    _run(_consume(cfg, pipe), pipe)


async def _consume(cfg: ConsumerConfig, pipe: Pipe) -> ConsumerResult:
    conn = await Connection.open(AmqpUrl.parse(cfg.url))
    res = ConsumerResult()
    loop = asyncio.get_running_loop()
    tags = {f"c{i:02d}": q for i, q in enumerate(cfg.queues)}
    try:
        await conn.open_channel(1)
        await conn.rpc(1, commands.Basic.Qos(prefetch_count=cfg.prefetch), commands.Basic.QosOk)
        conn.ack_every = cfg.ack_every
        conn.expected = cfg.expected
        if len(cfg.queues) > 1:
            conn.by_consumer = {}

        async def subscribe() -> None:
            for tag, queue in tags.items():
                await conn.rpc(
                    1, commands.Basic.Consume(queue=queue, consumer_tag=tag), commands.Basic.ConsumeOk
                )

        if not cfg.consume_at_go:
            await subscribe()
        pipe.send(("ready", None))
        t_go = _wait_go(pipe)

        def on_pipe() -> None:
            if pipe.poll():
                kind, value = pipe.recv()
                if kind == "expect":
                    conn.set_expected(int(value))

        loop.add_reader(pipe.fileno(), on_pipe)
        await _sleep_until(t_go)
        cpu0 = time.process_time()
        res.t_start = time.monotonic()
        if cfg.consume_at_go:
            await subscribe()

        give_up = res.t_start + cfg.overall_timeout
        progress_at = time.monotonic()
        seen = 0
        while not conn.lost:
            if conn.expected and conn.delivered >= conn.expected:
                break
            now = time.monotonic()
            if conn.delivered != seen:
                seen, progress_at = conn.delivered, now
            elif conn.expected and now - progress_at > cfg.idle_timeout:
                res.problems.append(
                    f"stalled: {conn.delivered} of {conn.expected} deliveries, "
                    f"none for {cfg.idle_timeout:.0f} s"
                )
                break
            if now > give_up:
                res.problems.append(f"gave up after {cfg.overall_timeout:.0f} s")
                break
            await conn.all_delivered(0.25)
        t_done = conn.t_last_delivery
        cpu1 = time.process_time()
        await asyncio.sleep(DRAIN_GRACE)  # anything beyond `expected` would be a duplicate
        conn.ack_all()
        loop.remove_reader(pipe.fileno())

        res.delivered = conn.delivered
        res.body_bytes = conn.body_bytes
        res.redelivered = conn.redelivered
        res.tag_gaps = conn.tag_gaps
        res.t_first = conn.t_first_delivery
        res.t_last = t_done
        res.cpu_seconds = cpu1 - cpu0
        if conn.by_consumer is not None:
            res.per_queue = {tags[k.decode()]: v for k, v in conn.by_consumer.items()}
        else:
            res.per_queue = {cfg.queues[0]: conn.delivered}
    finally:
        await conn.close()
        res.problems.extend(conn.problems)
    return res


# -- pika, for comparison --------------------------------------------------------------------


def pika_publisher_process(url: str, queue: str, body_size: int, seconds: float, pipe: Pipe) -> None:
    """Publish transient messages with pika's BlockingConnection as fast as it goes."""
    try:
        import pika

        conn = pika.BlockingConnection(pika.URLParameters(url))
        channel = conn.channel()
        props = pika.BasicProperties(delivery_mode=1)
        body = b"x" * body_size
        pipe.send(("ready", None))
        t_go = _wait_go(pipe)
        time.sleep(max(0.0, t_go - time.monotonic()))
        res = PublisherResult(server=f"pika {pika.__version__}")
        cpu0 = time.process_time()
        res.t_start = t0 = time.monotonic()
        deadline = t0 + seconds
        published = 0
        publish = channel.basic_publish
        while True:
            for _ in range(256):
                publish("", queue, body, props)
            published += 256
            if time.monotonic() >= deadline:
                break
        res.t_written = time.monotonic()
        while True:  # same end point as the lean publisher: the queue holds every message
            count = channel.queue_declare(queue, passive=True).method.message_count
            if count >= published or time.monotonic() > res.t_written + 60:
                break
            time.sleep(0.001)
        res.t_end = time.monotonic()
        res.cpu_seconds = time.process_time() - cpu0
        res.published = published
        res.queue_count = count
        conn.close()
        pipe.send(("result", res))
    except BaseException as exc:
        pipe.send(("error", "".join(traceback.format_exception_only(type(exc), exc)).strip()))
    finally:
        pipe.close()
