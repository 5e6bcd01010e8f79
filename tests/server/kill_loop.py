"""The harness of the kill -9 loop tests (``test_kill_loops.py``).

:class:`KillLoop` owns one data directory and at most one ``jackalope serve`` on it at a time,
started with the suite's one launcher (:func:`tests.conftest.start_serve`): start it, freeze it
(SIGSTOP) from any thread at the moment a test chooses, then let it go on (SIGCONT) or SIGKILL
it, check that it died of that signal, start it again on the same directory.  :class:`Mid` is
a message id that says where a message came from (cycle, publisher, batch, item, the queues it
was routed to), carried at the head of its body so that a verifier can reason about what must
have survived; :class:`DiskScan` finds the ids in the broker's files, and :func:`drain` reads a
queue back.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import pika
import pika.exceptions

from tests.amqp.support import connect
from tests.conftest import ServeProcess, start_serve

REAP_WAIT = 20.0  # seconds: a SIGKILLed broker is reaped, a client notices its socket died
DRAIN_WAIT = 90.0  # seconds: the longest a read-back of one queue may take on a busy machine
TAIL = 40  # lines of the broker's output quoted when it misbehaves
FREEZE_S = 0.3  # seconds a frozen broker's clients get to read what it sent before the freeze


class KillLoop:
    """``jackalope serve`` on one data directory, killed with SIGKILL and restarted on it."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.data_dir = data_dir
        self.args = ("--kafka-port", "-1", *args)  # AMQP and HTTP only
        self.server: ServeProcess | None = None
        self.frozen_at: float | None = None  # time.monotonic() of the SIGSTOP, while frozen
        self.killed_at: float | None = None  # when the kill took effect (the freeze before it)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The running broker's AMQP URL, with the default user."""
        assert self.server is not None, "the broker is not started"
        parts = urlsplit(self.server.urls["amqp"])
        return f"amqp://guest:guest@{parts.hostname}:{parts.port}/"

    def start(self) -> str:
        """Start the broker on the data directory (fresh or after a kill); its AMQP URL."""
        assert self.server is None or self.server.proc.poll() is not None, "already running"
        server = start_serve(self.data_dir, *self.args)  # which keeps draining its output
        with self._lock:
            self.server = server
            self.frozen_at = self.killed_at = None
        return self.url

    def freeze(self) -> bool:
        """SIGSTOP the running broker now: from here on it runs no instruction, so a SIGKILL
        later has the effect of a SIGKILL now, while its clients still receive what it had sent
        (commit-oks, confirms, answers) instead of losing it to a connection reset.  Safe from
        any thread; only the first call while running freezes (the others return False)."""
        with self._lock:
            server = self.server
            if server is None or self.frozen_at is not None or server.proc.poll() is not None:
                return False
            self.frozen_at = time.monotonic()
            server.proc.send_signal(signal.SIGSTOP)
            return True

    def thaw(self) -> None:
        """Let a frozen broker go on (SIGCONT), as if nothing had happened."""
        with self._lock:
            assert self.server is not None and self.frozen_at is not None and self.killed_at is None
            self.server.proc.send_signal(signal.SIGCONT)
            self.frozen_at = None

    def kill(self) -> None:
        """SIGKILL the broker: at the moment it was frozen, or now if it is not."""
        with self._lock:
            server = self.server
            assert server is not None
            if self.killed_at is not None:
                return
            # Set before the signal: whoever sees a socket die sees that the kill came first.
            self.killed_at = self.frozen_at if self.frozen_at is not None else time.monotonic()
            server.proc.kill()  # ends a stopped process too; nothing once it has been reaped

    @property
    def frozen(self) -> bool:
        return self.frozen_at is not None

    @property
    def killed(self) -> bool:
        return self.killed_at is not None

    def wait_killed(self) -> None:
        """Wait for the killed broker to be gone; fail if it died of anything but our SIGKILL."""
        assert self.server is not None and self.killed, "wait_killed() before kill()"
        rc = self.server.proc.wait(REAP_WAIT)
        assert rc == -signal.SIGKILL, f"the broker ended with {rc}, not by our SIGKILL:\n{self.tail()}"

    def stop(self) -> None:
        """A clean stop (SIGTERM), which must succeed."""
        assert self.server is not None
        rc = self.server.stop(REAP_WAIT)
        assert rc == 0, f"the broker stopped with {rc}:\n{self.tail()}"

    def tail(self) -> str:
        if self.server is None:
            return ""
        time.sleep(0.1)  # let the output thread catch up with a dead process's last lines
        return "".join(self.server.output[-TAIL:])

    def close(self) -> None:
        """Teardown: kill whatever still runs and reap it."""
        server = self.server
        if server is not None and server.proc.poll() is None:
            server.proc.kill()  # SIGKILL ends a stopped process too
            server.proc.wait(REAP_WAIT)


# -- message ids -----------------------------------------------------------------------------


class Mid(NamedTuple):
    """Where a message came from; ``route`` names the queues it was routed to ("a", "b", "ab")."""

    cycle: int
    publisher: int
    batch: int
    item: int
    route: str

    @property
    def tag(self) -> bytes:
        """The head of the message's body: ``<cycle.publisher.batch.item.route|``."""
        return f"<{self.cycle}.{self.publisher}.{self.batch}.{self.item}.{self.route}|".encode()

    def body(self, pad: int) -> bytes:
        return self.tag + b"." * pad

    @classmethod
    def parse(cls, body: bytes) -> Mid:
        m = TAG.match(body)
        assert m is not None and body[m.end() :].strip(b".") == b"", f"not a kill-loop body: {body[:80]!r}"
        return cls.of(m)

    @classmethod
    def of(cls, m: re.Match[bytes]) -> Mid:
        return cls(int(m[1]), int(m[2]), int(m[3]), int(m[4]), m[5].decode())


TAG = re.compile(rb"<(\d+)\.(\d+)\.(\d+)\.(\d+)\.([a-z]+)\|")


class DiskScan:
    """The message ids in the broker's files under ``root``: what a SIGKILL now would leave on
    disk, if messages are stored as written (the tests use it only to choose when to kill, so a
    storage format that hides bodies makes the kill come at the first chance, nothing worse).

    Files are read incrementally (they are append-only while a broker runs; a shorter file is
    read again from its start); make a new one after each restart."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.seen: set[Mid] = set()
        self._read: dict[Path, int] = {}

    def scan(self) -> set[Mid]:
        for path in sorted(self.root.rglob("*")):
            try:
                with path.open("rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    start = self._read.get(path, 0)
                    start = 0 if size < start else max(0, start - 128)  # a tag cut at the last read
                    f.seek(start)
                    data = f.read(size - start)
            except (IsADirectoryError, FileNotFoundError, PermissionError):
                continue
            self._read[path] = start + len(data)
            self.seen.update(Mid.of(m) for m in TAG.finditer(data))
        return self.seen


# -- reading queues back ---------------------------------------------------------------------


@dataclass
class Drained:
    """What :func:`drain` read from a queue, in delivery order."""

    bodies: list[bytes] = field(default_factory=list)
    redelivered: int = 0


def drain(url: str, queue: str, *, ack: bool, prefetch: int = 1000) -> Drained:
    """Consume every message ready in ``queue`` (nobody else may be using it).

    With ``ack`` the messages are acknowledged, in delivery order (so contiguously from the
    queue's head) and the queue is then checked to be empty; without it the channel is closed
    unacknowledged, so that they all go back to the queue (a read that leaves it as it was).
    """
    conn = connect(url)
    try:
        ch = conn.channel()
        try:
            count = ch.queue_declare(queue, passive=True).method.message_count
        except pika.exceptions.ChannelClosedByBroker as exc:
            raise AssertionError(f"durable queue {queue!r} is gone after a restart: {exc}") from None
        ch.basic_qos(prefetch_count=prefetch if ack else 0)  # a read-back without acks takes all
        got = Drained()
        deadline = time.monotonic() + DRAIN_WAIT
        if count:
            for method, props, body in ch.consume(queue, inactivity_timeout=0.25):
                if method is None:
                    assert time.monotonic() < deadline, (
                        f"read {len(got.bodies)} of the {count} messages of {queue!r} in {DRAIN_WAIT} s"
                    )
                    continue
                got.bodies.append(body)
                got.redelivered += bool(method.redelivered)
                assert props.delivery_mode == 2, f"{body[:40]!r} lost its delivery_mode=2: {props}"
                if ack and (len(got.bodies) % 250 == 0 or len(got.bodies) == count):
                    ch.basic_ack(method.delivery_tag, multiple=True)
                if len(got.bodies) == count:
                    break
            ch.cancel()
        if ack:
            left = ch.queue_declare(queue, passive=True).method.message_count
            assert left == 0, f"{queue!r} still has {left} messages after {count} were drained"
        ch.close()
        return got
    finally:
        if conn.is_open:
            conn.close()
