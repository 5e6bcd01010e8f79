"""kill -9 loops: the broker's AMQP durability promises, checked across repeated SIGKILLs.

Each test runs a real ``jackalope serve`` on one data directory, drives it with real clients
(pika threads, aio-pika tasks), SIGKILLs it at a moment chosen at random while the clients are
busy, starts it again on the same directory, reads everything back and checks the promise:

1. transactions: a batch whose ``tx.commit-ok`` arrived survives, whole, in every queue it was
   routed to; a rolled-back (or never committed) batch is never delivered; a commit in flight at
   the kill is all or nothing per queue;
2. publisher confirms: every confirmed message survives;
3. consumer acknowledgements: an acknowledged message the broker has read comes back after a
   kill only if its ack was in the broker's last sync window, and no unacknowledged one is lost.

A cycle is start (on the data left by the previous kill), read back and check, load, kill;
every test ends with a restart that checks the last kill.  A kill is a SIGSTOP, a short pause
in which the clients read what the broker had sent until then, and a SIGKILL: the broker's
state is that of the SIGSTOP moment, and the clients know everything it promised.  Tests 1 and 2
freeze the broker right after a commit-ok (a confirm) arrives, look in its data files for the
messages it has promised, and kill it there if some are missing (that is what a SIGKILL at that
moment loses); else they let it go on and try again, up to ``*_FREEZES`` times, killing at the
last freeze anyway.  Which messages the files hold only chooses the moment of the kill; the
verdict is what a restarted broker delivers.

The random choices (batch sizes, routes, commit or rollback, prefetch, ack order, when to
freeze) come from ``SEED``; where a freeze lands still depends on the machine.  Failures name
the seed and every cycle's counts.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import aio_pika
import aio_pika.abc
import aio_pika.exceptions
import pika
import pytest

from tests.amqp.support import EXTERNAL_URL, EXTERNAL_URL_ENV, WAIT, connect
from tests.server.kill_loop import FREEZE_S, REAP_WAIT, DiskScan, KillLoop, Mid, drain

pytestmark = pytest.mark.skipif(
    EXTERNAL_URL is not None, reason=f"starts and kills Jackalope itself ({EXTERNAL_URL_ENV} is set)"
)

SEED = 20240611  # every random choice of the harness derives from it
PAD = 120  # bodies carry up to this many padding bytes after their id
PERSISTENT = pika.BasicProperties(delivery_mode=2)

# The topology of tests 1 and 2: route "a" and "b" go through the default exchange to one queue
# each, route "ab" through a durable fanout exchange bound to both.
QUEUES = {"a": "kill-loop.a", "b": "kill-loop.b"}
FANOUT = "kill-loop.fanout"
ROUTES = ("a", "b", "ab")
ROUTE_TO: dict[str, tuple[str, str]] = {"a": ("", QUEUES["a"]), "b": ("", QUEUES["b"]), "ab": (FANOUT, "")}

# 1. transactions
TX_CYCLES = 6  # SIGKILLs
TX_PUBLISHERS = 4  # threads, each with its own connection and transactional channel
TX_MAX_BATCH = 50  # messages per transaction: 1 to this many
TX_COMMIT_SHARE = 0.7  # the rest are rolled back
TX_MIN_COMMITS = 5  # commits every publisher has had answered before the first freeze
TX_FREEZES = 5  # freezes per cycle at most (see the module's docstring)
TX_FREEZE_DELAY = (0.05, 0.5)  # seconds before each freeze is armed (uniform)

# 2. publisher confirms
CONFIRM_CYCLES = 6
CONFIRM_PUBLISHERS = 4  # aio-pika connections, one confirming channel each
CONFIRM_WINDOW = 100  # unconfirmed publishes per publisher at most
CONFIRM_MIN_CONFIRMED = 300  # per publisher before the first freeze
CONFIRM_FREEZES = 3
CONFIRM_FREEZE_DELAY = (0.05, 0.5)

# 3. consumer acknowledgements
ACK_CYCLES = 5
ACK_QUEUE = "kill-loop.acks"
ACK_QUEUE_LEN = 20_000  # topped up to this many persistent messages before each cycle's consumers
ACK_CONSUMERS = 3  # aio-pika connections, one channel and consumer each
ACK_PREFETCH = (100, 500)  # each consumer's prefetch count: uniform in this range
ACK_HELD = 3  # the first deliveries of each consumer stay unacknowledged until the kill...
ACK_HOLD_EVERY = 997  # ... and so does every this-many-th one after them
ACK_CARRY = 0.1  # share of each chunk of deliveries whose acks wait for the next chunk
# Acked messages allowed to come back per kill: the acks written in the last ACK_WINDOW_S before
# it (the broker's sync window, generously) plus ACK_SLACK.
ACK_WINDOW_S = 0.5
ACK_SLACK = 1_000
# Acks the broker has read (all consumers) before the kill; and at least twice that bound, so
# that a broker which forgets every ack must fail.
ACK_KILL_AFTER = (3_000, 6_000)
ACK_PHASE_WAIT = 90.0  # seconds the consumers may take to reach the kill point

PHASE_WAIT = 60.0  # seconds a load phase may take to reach the point where a kill may come


@pytest.fixture
def kill_loop(tmp_path: Path) -> Iterator[KillLoop]:
    loop = KillLoop(tmp_path / "data")
    try:
        yield loop
    finally:
        loop.close()


def wait_for(condition: Callable[[], bool], what: str, timeout: float) -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.01)


def unwritten(scan: DiskScan, promised: Iterable[list[Mid]]) -> int:
    """How many of the messages the (frozen) broker has promised are not in its files."""
    on_disk = scan.scan()
    return sum(m not in on_disk for batch in promised for m in batch)


def declare_topology(url: str, first: bool) -> None:
    """Declare the durable queues and fanout of tests 1 and 2 (the first time), or check that
    they are still there (after a kill)."""
    conn = connect(url)
    try:
        ch = conn.channel()
        for name in QUEUES.values():
            ch.queue_declare(name, durable=True, passive=not first)
        ch.exchange_declare(FANOUT, "fanout", durable=True, passive=not first)
        if first:
            for name in QUEUES.values():
                ch.queue_bind(name, FANOUT)
    finally:
        conn.close()


# -- what must have survived -------------------------------------------------------------------


class Expect(Enum):
    ALL = "all"  # every message present in every queue it was routed to
    NONE = "none"  # no message delivered anywhere
    ALL_OR_NONE = "all or none"  # per queue, every message of the group or none of them
    ANY = "any"  # may or may not be there, each on its own


@dataclass
class Group:
    """Messages whose fate is tied: a transaction's batch, or one confirmed publish."""

    expect: Expect
    label: str  # e.g. "committed", "rolled back", "confirmed"
    mids: list[Mid]


def verify(cycle: int, groups: list[Group], received: dict[str, list[bytes]]) -> tuple[list[str], str]:
    """Check what the queues held after the kill of ``cycle`` against what was published in it;
    the problems, and a summary of what came back."""
    problems: list[str] = []
    known = {m for g in groups for m in g.mids}
    present: dict[str, set[Mid]] = {}
    for key, bodies in received.items():
        queue = QUEUES[key]
        mids = [Mid.parse(b) for b in bodies]
        counts = Counter(mids)
        present[key] = set(counts)
        if dups := sorted(m for m, n in counts.items() if n > 1):
            problems.append(f"{queue}: {len(dups)} messages delivered more than once, e.g. {dups[:3]}")
        if old := sorted(m for m in counts if m.cycle < cycle):
            problems.append(
                f"{queue}: {len(old)} messages of earlier cycles (drained and acked then, or never "
                f"committed) came back, e.g. {old[:3]}"
            )
        if unknown := sorted(m for m in counts if m.cycle >= cycle and m not in known):
            problems.append(f"{queue}: {len(unknown)} messages nobody published, e.g. {unknown[:3]}")
        if misrouted := sorted(m for m in counts if key not in m.route):
            problems.append(f"{queue}: {len(misrouted)} messages not routed to it, e.g. {misrouted[:3]}")
        by_publisher: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for m in mids:
            if m.cycle == cycle:
                by_publisher[m.publisher].append((m.batch, m.item))
        for publisher, order in sorted(by_publisher.items()):
            if order != sorted(order):
                problems.append(f"{queue}: publisher {publisher}'s messages are out of publishing order")
    kept: dict[str, Counter[str]] = defaultdict(Counter)  # label -> "a kept", "a of", ...
    bad: dict[str, list[str]] = defaultdict(list)
    for g in groups:
        for key in QUEUES:
            routed = [m for m in g.mids if key in m.route]
            if not routed:
                continue
            have = sum(m in present[key] for m in routed)
            kept[g.label][f"{key} of"] += 1
            kept[g.label][f"{key} kept"] += have == len(routed)
            first = g.mids[0]
            what = f"{first.publisher}#{first.batch}.{first.item} ({have} of {len(routed)} there)"
            if g.expect is Expect.ALL and have < len(routed):
                bad[f"{g.label} lost from {QUEUES[key]}"].append(what)
                kept[g.label][f"{key} messages lost"] += len(routed) - have
            elif g.expect is Expect.NONE and have:
                bad[f"{g.label} delivered from {QUEUES[key]}"].append(what)
            elif g.expect is Expect.ALL_OR_NONE and 0 < have < len(routed):
                bad[f"{g.label} partly kept in {QUEUES[key]}"].append(what)
    for what, examples in bad.items():
        problems.append(f"{len(examples)} {what}: {', '.join(examples[:4])}{', ...' * (len(examples) > 4)}")
    sizes = ", ".join(f"{QUEUES[k]} {len(v)}" for k, v in received.items())
    fates = "; ".join(
        f"{label} kept whole "
        + ", ".join(f"{k} {n[f'{k} kept']}/{n[f'{k} of']}" for k in QUEUES)
        + "".join(f" ({n[f'{k} messages lost']} lost from {k})" for k in QUEUES if n[f"{k} messages lost"])
        for label, n in kept.items()
    )
    return [f"cycle {cycle}: {p}" for p in problems], f"read back {sizes}; {fates}"


def drain_both(url: str) -> dict[str, list[bytes]]:
    return {key: drain(url, queue, ack=True).bodies for key, queue in QUEUES.items()}


def report(title: str, lines: Iterable[str], problems: list[str]) -> str:
    return "\n".join([f"{title} (SEED={SEED})", *lines, "problems:", *problems])


# -- 1. transactions -------------------------------------------------------------------------------


@dataclass
class TxPublisher:
    """One thread, connection and transactional channel; what became of each of its batches."""

    cycle: int
    number: int
    rng: random.Random
    committed: list[list[Mid]] = field(default_factory=list)
    rolled_back: list[list[Mid]] = field(default_factory=list)
    abandoned: list[list[Mid]] = field(default_factory=list)  # published, never committed
    undetermined: list[Mid] | None = None  # tx.commit sent, no commit-ok before the kill
    error: str | None = None  # how it ended, if not by the kill

    def run(self, url: str, loop: KillLoop, armed: threading.Event) -> None:
        current: list[Mid] = []
        phase = "connecting"
        conn: pika.BlockingConnection | None = None
        try:
            conn = connect(url)
            ch = conn.channel()
            ch.tx_select()
            batch = 0
            while True:  # until the broker dies
                batch += 1
                size = self.rng.randint(1, TX_MAX_BATCH)
                routes = [self.rng.choice(ROUTES) for _ in range(size)]
                current = [Mid(self.cycle, self.number, batch, i, r) for i, r in enumerate(routes)]
                commit = self.rng.random() < TX_COMMIT_SHARE
                phase = "publishing"
                for m in current:
                    exchange, routing_key = ROUTE_TO[m.route]
                    ch.basic_publish(exchange, routing_key, m.body(self.rng.randrange(PAD)), PERSISTENT)
                if commit:
                    phase = "committing"
                    ch.tx_commit()
                    if armed.is_set():
                        loop.freeze()  # right after a commit-ok, with other commits in flight
                    self.committed.append(current)
                else:
                    phase = "rolling back"
                    ch.tx_rollback()
                    self.rolled_back.append(current)
                current = []
        except Exception as exc:
            if not loop.killed:
                self.error = f"publisher {self.number} failed while {phase}, before the kill: {exc!r}"
            if phase == "committing":
                self.undetermined = current
            elif phase == "rolling back":
                self.rolled_back.append(current)
            elif current:
                self.abandoned.append(current)
        finally:
            if conn is not None and conn.is_open:
                with contextlib.suppress(Exception):
                    conn.close()

    def groups(self) -> list[Group]:
        out = [Group(Expect.ALL, "committed", b) for b in self.committed]
        out += [Group(Expect.NONE, "rolled back", b) for b in self.rolled_back]
        out += [Group(Expect.NONE, "never committed", b) for b in self.abandoned]
        if self.undetermined:
            out.append(Group(Expect.ALL_OR_NONE, "commit in flight", self.undetermined))
        return out


def run_tx_cycle(loop: KillLoop, url: str, cycle: int) -> tuple[list[TxPublisher], list[str], str]:
    """Publish transactions until a freeze finds committed messages missing from the broker's
    files, or until the last freeze; kill there.  The publishers, problems, and how it ended."""
    rng = random.Random(f"{SEED}/tx/{cycle}")
    publishers = [
        TxPublisher(cycle, p, random.Random(f"{SEED}/tx/{cycle}/{p}")) for p in range(TX_PUBLISHERS)
    ]
    armed = threading.Event()
    threads = [
        threading.Thread(target=p.run, args=(url, loop, armed), name=f"tx publisher {p.number}", daemon=True)
        for p in publishers
    ]
    for t in threads:
        t.start()
    scan = DiskScan(loop.data_dir)
    how = "killed before the first freeze"
    try:
        wait_for(
            lambda: (
                all(len(p.committed) >= TX_MIN_COMMITS for p in publishers)
                or not all(t.is_alive() for t in threads)
            ),
            f"{TX_MIN_COMMITS} commits of every publisher",
            PHASE_WAIT,
        )
        for freeze in range(1, TX_FREEZES + 1):
            time.sleep(rng.uniform(*TX_FREEZE_DELAY))
            armed.set()  # the next commit-ok any publisher gets freezes the broker
            wait_for(lambda: loop.frozen or not all(t.is_alive() for t in threads), "a commit-ok", PHASE_WAIT)
            armed.clear()
            time.sleep(FREEZE_S)  # the publishers read what the broker sent before it froze
            missing = unwritten(scan, [b for p in publishers for b in list(p.committed)])
            how = f"killed at freeze {freeze} of {TX_FREEZES}, {missing} committed not in its files"
            if missing or freeze == TX_FREEZES or not all(t.is_alive() for t in threads):
                break
            loop.thaw()
    finally:
        loop.kill()
        loop.wait_killed()
        for t in threads:
            t.join(REAP_WAIT)
    assert not any(t.is_alive() for t in threads), "a publisher did not notice the broker's death"
    return publishers, [f"cycle {cycle}: {p.error}" for p in publishers if p.error], how


@pytest.mark.timeout(240)
def test_committed_transactions_survive_sigkill_loop(kill_loop: KillLoop) -> None:
    lines: list[str] = []
    problems: list[str] = []
    previous: list[TxPublisher] = []
    for cycle in range(TX_CYCLES + 1):
        url = kill_loop.start()
        declare_topology(url, first=cycle == 0)
        if cycle:
            groups = [g for p in previous for g in p.groups()]
            found, summary = verify(cycle - 1, groups, drain_both(url))
            problems += found
            lines.append(f"after kill {cycle}: {summary}")
        if cycle == TX_CYCLES:
            kill_loop.stop()
            break
        previous, found, how = run_tx_cycle(kill_loop, url, cycle)
        problems += found
        committed = sum(len(p.committed) for p in previous)
        lines.append(
            f"cycle {cycle}: {how}; {committed} batches committed "
            f"({sum(len(b) for p in previous for b in p.committed)} messages), "
            f"{sum(len(p.rolled_back) for p in previous)} rolled back, "
            f"{sum(len(p.abandoned) for p in previous)} never committed, "
            f"{sum(p.undetermined is not None for p in previous)} commits in flight at the kill"
        )
    print(report("committed transactions after SIGKILLs", lines, problems))
    assert not problems, report("committed transactions after SIGKILLs", lines, problems)


# -- 2. publisher confirms ---------------------------------------------------------------------


@dataclass
class ConfirmPublisher:
    """One aio-pika connection with a confirming channel, up to CONFIRM_WINDOW unconfirmed."""

    cycle: int
    number: int
    rng: random.Random
    confirmed: list[Mid] = field(default_factory=list)
    nacked: list[Mid] = field(default_factory=list)
    unconfirmed: list[Mid] = field(default_factory=list)  # no answer before the kill
    error: str | None = None

    async def run(self, url: str, loop: KillLoop, armed: threading.Event) -> None:
        window = asyncio.Semaphore(CONFIRM_WINDOW)
        tasks: set[asyncio.Task[None]] = set()

        def settled(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            window.release()

        try:
            conn = await aio_pika.connect(url, timeout=WAIT)
        except Exception as exc:
            self.error = f"publisher {self.number} could not connect: {exc!r}"
            return
        try:
            ch = await conn.channel(publisher_confirms=True)
            exchanges = {"": ch.default_exchange, FANOUT: await ch.get_exchange(FANOUT, ensure=False)}
            seq = 0
            while True:
                await window.acquire()
                if loop.killed or not conn.connected.is_set():
                    break
                seq += 1
                mid = Mid(self.cycle, self.number, 0, seq, self.rng.choice(ROUTES))
                exchange, routing_key = ROUTE_TO[mid.route]
                message = aio_pika.Message(
                    mid.body(self.rng.randrange(PAD)), delivery_mode=aio_pika.DeliveryMode.PERSISTENT
                )
                publish = self.publish(exchanges[exchange], routing_key, mid, message, loop, armed)
                task = asyncio.create_task(publish)
                tasks.add(task)
                task.add_done_callback(settled)
        except Exception as exc:
            if not loop.killed:
                self.error = f"publisher {self.number} failed before the kill: {exc!r}"
        finally:
            if tasks:
                await asyncio.wait(tasks, timeout=REAP_WAIT)
            for t in tasks:
                t.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), REAP_WAIT)

    async def publish(
        self,
        exchange: aio_pika.abc.AbstractExchange,
        routing_key: str,
        mid: Mid,
        message: aio_pika.Message,
        loop: KillLoop,
        armed: threading.Event,
    ) -> None:
        try:
            await exchange.publish(message, routing_key, mandatory=False, timeout=PHASE_WAIT)
        except aio_pika.exceptions.DeliveryError:
            self.nacked.append(mid)
        except Exception as exc:
            self.unconfirmed.append(mid)
            if not loop.killed and self.error is None:
                self.error = f"publisher {self.number}: publish failed before the kill: {exc!r}"
        else:
            if armed.is_set():
                loop.freeze()  # right after a confirm, with others in flight
            self.confirmed.append(mid)

    def groups(self) -> list[Group]:
        out = [Group(Expect.ALL, "confirmed", [m]) for m in self.confirmed]
        out += [Group(Expect.ANY, "nacked", [m]) for m in self.nacked]
        out += [Group(Expect.ANY, "unconfirmed", [m]) for m in self.unconfirmed]
        return out


async def run_confirm_cycle(loop: KillLoop, url: str, cycle: int) -> tuple[list[ConfirmPublisher], str]:
    """Publish with confirms until a freeze finds confirmed messages missing from the broker's
    files, or until the last freeze; kill there."""
    rng = random.Random(f"{SEED}/confirm/{cycle}")
    publishers = [
        ConfirmPublisher(cycle, p, random.Random(f"{SEED}/confirm/{cycle}/{p}"))
        for p in range(CONFIRM_PUBLISHERS)
    ]
    armed = threading.Event()
    tasks = [asyncio.create_task(p.run(url, loop, armed)) for p in publishers]
    scan = DiskScan(loop.data_dir)
    how = "killed before the first freeze"

    async def until(condition: Callable[[], bool], what: str, within: float) -> None:
        deadline = time.monotonic() + within
        while not condition():
            errors = [p.error for p in publishers if p.error]
            assert not any(t.done() for t in tasks), f"a publisher stopped, waiting for {what}: {errors}"
            assert time.monotonic() < deadline, f"timed out after {within} s waiting for {what}"
            await asyncio.sleep(0.005)

    try:
        await until(
            lambda: all(len(p.confirmed) >= CONFIRM_MIN_CONFIRMED for p in publishers),
            f"{CONFIRM_MIN_CONFIRMED} confirms of every publisher",
            PHASE_WAIT,
        )
        for freeze in range(1, CONFIRM_FREEZES + 1):
            await asyncio.sleep(rng.uniform(*CONFIRM_FREEZE_DELAY))
            armed.set()  # the next confirm any publisher gets freezes the broker
            await until(lambda: loop.frozen, "a confirm", PHASE_WAIT)
            armed.clear()
            await asyncio.sleep(FREEZE_S)  # the publishers read what the broker sent before it froze
            missing = unwritten(scan, [list(p.confirmed) for p in publishers])
            how = f"killed at freeze {freeze} of {CONFIRM_FREEZES}, {missing} confirmed not in its files"
            if missing or freeze == CONFIRM_FREEZES:
                break
            loop.thaw()
    finally:
        loop.kill()  # with up to CONFIRM_WINDOW publishes of each publisher unconfirmed
        await asyncio.wait(tasks, timeout=2 * REAP_WAIT)
    assert all(t.done() for t in tasks), "a publisher did not notice the broker's death"
    return publishers, how


@pytest.mark.timeout(240)
def test_confirmed_publishes_survive_sigkill_loop(kill_loop: KillLoop) -> None:
    lines: list[str] = []
    problems: list[str] = []
    previous: list[ConfirmPublisher] = []
    for cycle in range(CONFIRM_CYCLES + 1):
        url = kill_loop.start()
        declare_topology(url, first=cycle == 0)
        if cycle:
            groups = [g for p in previous for g in p.groups()]
            found, summary = verify(cycle - 1, groups, drain_both(url))
            problems += found
            lines.append(f"after kill {cycle}: {summary}")
        if cycle == CONFIRM_CYCLES:
            kill_loop.stop()
            break
        previous, how = asyncio.run(run_confirm_cycle(kill_loop, url, cycle))
        kill_loop.wait_killed()
        problems += [f"cycle {cycle}: {p.error}" for p in previous if p.error]
        lines.append(
            f"cycle {cycle}: {how}; {sum(len(p.confirmed) for p in previous)} confirmed, "
            f"{sum(len(p.nacked) for p in previous)} nacked, "
            f"{sum(len(p.unconfirmed) for p in previous)} unanswered at the kill"
        )
    print(report("confirmed publishes after SIGKILLs", lines, problems))
    assert not problems, report("confirmed publishes after SIGKILLs", lines, problems)


# -- 3. consumer acknowledgements ------------------------------------------------------------------


@dataclass
class AckState:
    """One cycle of test 3: what the queue held, what was acked, when, and the kill."""

    in_queue: set[Mid]  # the queue's messages at the start of the cycle
    acked: set[Mid] = field(default_factory=set)  # acks the broker has read (a later round trip)
    sent: set[Mid] = field(default_factory=set)  # every ack written
    sent_at: list[float] = field(default_factory=list)  # when each was written, in that order
    delivered: Counter[Mid] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def recent(self, killed_at: float) -> int:
        """Acks written in the ACK_WINDOW_S before the kill."""
        times = self.sent_at
        return bisect.bisect_right(times, killed_at) - bisect.bisect_left(times, killed_at - ACK_WINDOW_S)

    def bound(self, killed_at: float) -> int:
        return self.recent(killed_at) + ACK_SLACK


class AckConsumer:
    """A consumer that acks out of order: each chunk of deliveries in shuffled order (a share of
    them only with the next chunk), and some deliveries not at all before the kill."""

    def __init__(self, number: int, rng: random.Random, state: AckState, loop: KillLoop) -> None:
        self.number = number
        self.rng = rng
        self.state = state
        self.loop = loop
        self.prefetch = rng.randint(*ACK_PREFETCH)
        self.inbox: list[aio_pika.abc.AbstractIncomingMessage] = []
        self.wake = asyncio.Event()
        self.kept_back: list[aio_pika.abc.AbstractIncomingMessage] = []  # never acked this cycle
        self.deliveries = 0

    async def on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self.deliveries += 1
        self.state.delivered[Mid.parse(message.body)] += 1
        if self.deliveries <= ACK_HELD or self.deliveries % ACK_HOLD_EVERY == 0:
            self.kept_back.append(message)
        else:
            self.inbox.append(message)
            self.wake.set()

    async def run(self, url: str) -> None:
        try:
            conn = await aio_pika.connect(url, timeout=WAIT)
        except Exception as exc:
            self.state.errors.append(f"consumer {self.number} could not connect: {exc!r}")
            return
        try:
            ch = await conn.channel(publisher_confirms=False)
            await ch.set_qos(prefetch_count=self.prefetch)
            queue = await ch.get_queue(ACK_QUEUE, ensure=False)
            await queue.consume(self.on_message, no_ack=False)
            carried: list[aio_pika.abc.AbstractIncomingMessage] = []
            while True:  # until the broker dies
                await self.wake.wait()
                await asyncio.sleep(0.01)  # let a few more deliveries in: a bigger chunk to shuffle
                self.wake.clear()
                if self.loop.killed:
                    return
                chunk, self.inbox = self.inbox, []
                self.rng.shuffle(chunk)
                later = chunk[: int(len(chunk) * ACK_CARRY)]
                chunk = chunk[len(later) :] + carried
                carried = later
                self.rng.shuffle(chunk)
                written: list[Mid] = []
                for message in chunk:
                    mid = Mid.parse(message.body)
                    self.state.sent.add(mid)
                    self.state.sent_at.append(time.monotonic())
                    await message.ack()
                    written.append(mid)
                # Answered: the broker has read those acks (one channel, one socket, in order).
                await asyncio.wait_for(ch.set_qos(prefetch_count=self.prefetch), REAP_WAIT)
                self.state.acked.update(written)
                if carried:
                    self.wake.set()
        except Exception as exc:
            if not self.loop.killed:
                self.state.errors.append(f"consumer {self.number} failed before the kill: {exc!r}")
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), REAP_WAIT)


async def top_up(url: str, cycle: int, count: int) -> list[Mid]:
    """Publish ``count`` new persistent messages to ACK_QUEUE, confirmed, 500 in flight."""
    mids = [Mid(cycle, 0, 0, i, "q") for i in range(count)]
    conn = await aio_pika.connect(url, timeout=WAIT)
    try:
        ch = await conn.channel(publisher_confirms=True)
        for start in range(0, count, 500):
            await asyncio.wait_for(
                asyncio.gather(
                    *(
                        ch.default_exchange.publish(
                            aio_pika.Message(m.body(16), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                            ACK_QUEUE,
                        )
                        for m in mids[start : start + 500]
                    )
                ),
                PHASE_WAIT,
            )
    finally:
        await conn.close()
    return mids


async def run_ack_cycle(loop: KillLoop, url: str, cycle: int, state: AckState) -> None:
    rng = random.Random(f"{SEED}/ack/{cycle}")
    target = rng.randint(*ACK_KILL_AFTER)
    consumers = [
        AckConsumer(c, random.Random(f"{SEED}/ack/{cycle}/{c}"), state, loop) for c in range(ACK_CONSUMERS)
    ]
    tasks = [asyncio.create_task(c.run(url)) for c in consumers]
    try:
        deadline = time.monotonic() + ACK_PHASE_WAIT
        # Kill once `target` acks have been read, and only once so many have been read that a
        # broker that forgets them all must exceed the bound (else the test could not fail).
        while len(state.acked) < max(target, 2 * state.bound(time.monotonic())):
            assert not any(t.done() for t in tasks), f"a consumer stopped before the kill: {state.errors}"
            assert time.monotonic() < deadline, (
                f"{len(state.acked)} acks read of the {target} wanted within {ACK_PHASE_WAIT} s"
            )
            await asyncio.sleep(0.005)
        loop.freeze()
        await asyncio.sleep(FREEZE_S)  # the consumers read the answers the broker sent before it froze
    finally:
        loop.kill()
        for c in consumers:
            c.wake.set()  # a consumer waiting for deliveries that will not come
        await asyncio.wait(tasks, timeout=2 * REAP_WAIT)
    assert all(t.done() for t in tasks), "a consumer did not notice the broker's death"


def check_acks(cycle: int, state: AckState, killed_at: float, back: list[Mid]) -> tuple[list[str], str]:
    problems: list[str] = []
    counts = Counter(back)
    there = set(counts)
    if dups := sorted(m for m, n in counts.items() if n > 1):
        problems.append(f"{len(dups)} messages are in the queue more than once, e.g. {dups[:3]}")
    if phantoms := sorted(there - state.in_queue):
        problems.append(f"{len(phantoms)} messages that were not in the queue, e.g. {phantoms[:3]}")
    if twice := sorted(m for m, n in state.delivered.items() if n > 1):
        problems.append(f"{len(twice)} messages delivered twice before the kill, e.g. {twice[:3]}")
    unknown_status = state.sent - state.acked  # ack written, no answer after it
    lost = sorted(state.in_queue - state.acked - unknown_status - there)
    if lost:
        problems.append(f"{len(lost)} messages never acked are gone, e.g. {lost[:3]}")
    came_back = len(state.acked & there)
    bound = state.bound(killed_at)
    if came_back > bound:
        problems.append(
            f"{came_back} of the {len(state.acked)} acked messages came back after the kill, more than "
            f"the {bound} allowed ({state.recent(killed_at)} acks written in the last {ACK_WINDOW_S} s "
            f"before it + {ACK_SLACK})"
        )
    summary = (
        f"{len(state.in_queue)} in the queue, {sum(state.delivered.values())} delivered, "
        f"{len(state.acked)} acks read, {len(unknown_status)} more written; after the kill {len(back)} "
        "in the queue: "
        f"{came_back} acked came back (bound {bound}), {len(unknown_status & there)} of the unanswered "
        f"acks' messages came back, {len(lost)} unacked lost"
    )
    return [f"cycle {cycle}: {p}" for p in problems], summary


@pytest.mark.timeout(300)
def test_acks_survive_sigkill_loop(kill_loop: KillLoop) -> None:
    lines: list[str] = []
    problems: list[str] = []
    state: AckState | None = None
    killed_at = 0.0
    for cycle in range(ACK_CYCLES + 1):
        url = kill_loop.start()
        if cycle == 0:
            conn = connect(url)
            conn.channel().queue_declare(ACK_QUEUE, durable=True)
            conn.close()
            there: set[Mid] = set()
        else:
            assert state is not None
            back = [Mid.parse(b) for b in drain(url, ACK_QUEUE, ack=False).bodies]
            found, summary = check_acks(cycle - 1, state, killed_at, back)
            problems += found
            lines.append(f"cycle {cycle - 1}: {summary}")
            there = set(back)
        if cycle == ACK_CYCLES:
            kill_loop.stop()
            break
        added = asyncio.run(top_up(url, cycle, ACK_QUEUE_LEN - len(there)))
        state = AckState(there | set(added))
        conn = connect(url)
        ready = conn.channel().queue_declare(ACK_QUEUE, passive=True).method.message_count
        conn.close()
        assert ready == len(state.in_queue), f"cycle {cycle}: {ready} ready, {len(state.in_queue)} expected"
        asyncio.run(run_ack_cycle(kill_loop, url, cycle, state))
        assert kill_loop.killed_at is not None
        killed_at = kill_loop.killed_at
        kill_loop.wait_killed()
        problems += [f"cycle {cycle}: {e}" for e in state.errors]
    print(report("acknowledged messages after SIGKILLs", lines, problems))
    assert not problems, report("acknowledged messages after SIGKILLs", lines, problems)
