"""The load generator's processes: publisher, consumer, side-client prober and the pika baseline.

Each runs in its own OS process (``multiprocessing``, fork) on its own uvloop event loop, and
talks to the parent over a pipe:

    child -> parent   ("ready", None)        connected, channel set up, consumers registered
    parent -> child   ("go", t)              start at time.monotonic() == t (same clock in
                                             every process on Linux)
    parent -> child   ("expect", n)          consumer only: stop after n deliveries in all
    child -> parent   ("result", result) or ("error", text)

The prober is the "side client" of ``flow_bench.py``: on a connection of its own it times
queue.declare(passive=True) round trips at a fixed interval while the others run.
"""

from __future__ import annotations

import asyncio
import os
import time
import traceback
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from typing import Any

from pamqp import commands

from amqp_load import sysstat
from amqp_load.wire import (
    AmqpError,
    AmqpUrl,
    ConfirmTracker,
    Connection,
    DeliveryTimeline,
    message_frames,
    weighted_percentiles,
)

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
    stall_timeout: float = 0.0  # > 0: stop publishing after this long with no write or confirm
    confirm_marks: tuple[int, ...] = ()  # acked counts whose time is reported in mark_times
    socket_snapshot: bool = False  # when publishing stops, record what the broker has not read yet


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
    stalled: bool = False  # stopped by stall_timeout
    mark_times: dict[int, float] = field(default_factory=dict)  # confirm_marks -> time reached
    blocked_events: list[tuple[float, bool, str]] = field(default_factory=list)  # connection.(un)blocked
    message_bytes: int = 0  # one message on the wire (method + header + body frames)
    # socket_snapshot, at t_written: bytes written but not yet read by the broker, in the
    # transport's buffer, in this socket's kernel send queue and in the broker socket's receive
    # queue (None: that socket is not visible from here, e.g. another host)
    end_user_buffer: int | None = None
    end_send_queue: int | None = None
    end_peer_unread: int | None = None
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
    timeline: bool = False  # record a DeliveryTimeline (returned as timeline_t / timeline_n)


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
    timeline_t: array[float] = field(default_factory=lambda: array("d"))  # read times
    timeline_n: array[int] = field(default_factory=lambda: array("q"))  # deliveries so far, then
    problems: list[str] = field(default_factory=list)

    def timeline(self) -> DeliveryTimeline:
        tl = DeliveryTimeline()
        tl.times, tl.counts = self.timeline_t, self.timeline_n
        return tl


def _run(main: Any, pipe: Pipe) -> None:
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover
        loop_factory = None
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            result = runner.run(main)
        report: tuple[str, Any] = ("result", result)
    except BaseException as exc:
        report = ("error", "".join(traceback.format_exception_only(type(exc), exc)).strip())
    try:
        # A loop's add_reader on the pipe (the consumer's) leaves it non-blocking (libuv), and a
        # report larger than the socket buffer (a delivery timeline) would then be cut short.
        os.set_blocking(pipe.fileno(), True)
        pipe.send(report)
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
        tracker = ConfirmTracker(cfg.record_latency, cfg.confirm_marks)
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
        ticker: asyncio.TimerHandle | None = None
        if cfg.stall_timeout > 0:

            def tick() -> None:  # wakes a publisher that waits, so that it notices a stall
                nonlocal ticker
                conn.wake()
                ticker = loop.call_later(min(1.0, cfg.stall_timeout), tick)

            tick()
        t_progress = t0
        while not conn.lost:
            now = monotonic()
            if now >= deadline or tracker.published >= max_msgs:
                break
            if cfg.stall_timeout > 0:
                t_progress = max(t_progress, tracker.t_last)
                if now - t_progress > cfg.stall_timeout:
                    res.stalled = True
                    res.problems.append(
                        f"stalled: no write or confirm for {cfg.stall_timeout:g} s "
                        f"({tracker.published} published, {tracker.outstanding} unconfirmed)"
                    )
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
            t_progress = now
            if not cfg.confirms or cfg.window - tracker.outstanding >= cfg.min_write:
                await asyncio.sleep(0)  # let the loop read confirms and flow control
        res.t_written = monotonic()
        res.t_end = res.t_written
        res.message_bytes = msg_len
        if cfg.socket_snapshot:
            _socket_snapshot(conn, res)
        timer.cancel()
        if ticker is not None:
            ticker.cancel()

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
        res.mark_times = dict(tracker.mark_times)
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
        res.blocked_events = list(conn.blocked_events)
    return res


def _socket_snapshot(conn: Connection, res: PublisherResult) -> None:
    transport = conn.transport
    if transport is None:
        return
    res.end_user_buffer = transport.get_write_buffer_size()
    local, peer = transport.get_extra_info("sockname"), transport.get_extra_info("peername")
    if not local or not peer:
        return
    mine = sysstat.tcp_queues(local[1], peer[1])
    theirs = sysstat.tcp_queues(peer[1], local[1])
    res.end_send_queue = None if mine is None else mine[0]
    res.end_peer_unread = None if theirs is None else theirs[1]


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
        if cfg.timeline:
            conn.timeline = DeliveryTimeline()
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
        if conn.timeline is not None:
            res.timeline_t, res.timeline_n = conn.timeline.times, conn.timeline.counts
        if conn.by_consumer is not None:
            res.per_queue = {tags[k.decode()]: v for k, v in conn.by_consumer.items()}
        else:
            res.per_queue = {cfg.queues[0]: conn.delivered}
    finally:
        await conn.close()
        res.problems.extend(conn.problems)
    return res


# -- side client -----------------------------------------------------------------------------


@dataclass
class ProberConfig:
    url: str
    queue: str
    seconds: float  # probe from go for this long
    interval: float = 0.05  # one queue.declare(passive) every interval (late ones are not bunched)
    snapshot_at: float | None = None  # seconds after go: one more queue.declare(passive) on channel 2
    max_wait: float = 120.0  # a round trip taking longer is recorded at this value, as a problem


@dataclass
class ProberResult:
    samples: list[tuple[float, float]] = field(default_factory=list)  # (send time, round trip s)
    snapshot: tuple[float, float, int] | None = None  # (sent, answered, message_count)
    problems: list[str] = field(default_factory=list)


def prober_process(cfg: ProberConfig, pipe: Pipe) -> None:
    _run(_probe(cfg, pipe), pipe)


async def _probe(cfg: ProberConfig, pipe: Pipe) -> ProberResult:
    """queue.declare(passive) on channel 1 at t_go, t_go + interval, ... until t_go + seconds.

    A probe that is still waiting at its successor's time delays it; the missed grid points are
    skipped, so a stall shows as one long round trip, not as a burst of short ones afterwards.
    The optional snapshot runs on channel 2 so that it is sent on time even then.
    """
    conn = await Connection.open(AmqpUrl.parse(cfg.url), product="jackalope bench side client")
    res = ProberResult()
    try:
        await conn.open_channel(1)
        await conn.open_channel(2)
        pipe.send(("ready", None))
        t_go = _wait_go(pipe)
        declare = commands.Queue.Declare(queue=cfg.queue, passive=True)

        async def timed(channel: int) -> tuple[float, float, int]:
            sent = time.monotonic()
            try:
                ok = await conn.rpc(channel, declare, commands.Queue.DeclareOk, cfg.max_wait)
            except TimeoutError:
                res.problems.append(f"a queue.declare(passive) got no answer in {cfg.max_wait:g} s")
                return sent, sent + cfg.max_wait, -1
            return sent, time.monotonic(), ok.message_count or 0

        async def periodic() -> None:
            end = t_go + cfg.seconds
            k = 0
            while not conn.lost:
                t = t_go + k * cfg.interval
                if t >= end:
                    break
                await _sleep_until(t)
                sent, answered, _ = await timed(1)
                res.samples.append((sent, answered - sent))
                k = max(k + 1, int((time.monotonic() - t_go) / cfg.interval) + 1)

        async def snapshot(at: float) -> None:
            await _sleep_until(t_go + at)
            res.snapshot = await timed(2)

        tasks = [periodic()]
        if cfg.snapshot_at is not None:
            tasks.append(snapshot(cfg.snapshot_at))
        try:
            await asyncio.gather(*tasks)
        except AmqpError as exc:
            res.problems.append(f"side client: {exc}")
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
