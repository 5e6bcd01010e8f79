"""Shared helpers for tests that run `jackalope serve` as a real process."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

import jackalope.kafka.protocol
from tests.certs import TestCA

# Kafka responses built with a field no version of the message has fail the test (in this
# process and in every `jackalope serve` it starts), rather than losing the field silently.
os.environ["JACKALOPE_STRICT_KAFKA_FIELDS"] = "1"
jackalope.kafka.protocol.STRICT_FIELDS = True

URL = re.compile(r"listening (\w+)\s+(\S+)")

# -- parallel runs (pytest-xdist: `-n` in pyproject.toml's addopts) ------------------------------
#
# Each xdist worker is a process of its own that imports this file, so the settings above hold in
# every worker.  Tests take ephemeral ports and temporary directories only, so any two may run side
# by side, with one exception: the SIGKILL crash tests each drive a broker flat out with fsyncs and
# check what survives a kill, and they are the longest tests of the suite.  They run in one
# xdist group (one worker, one after another), so that no two of them compete with each other, and
# that group starts first (loadgroup runs its biggest groups first); then come the other long tests,
# so that no long test is left for the end of a run.
SIGKILL_GROUP = "sigkill"
SIGKILL_TESTS = (
    "tests/server/test_kill_loops.py",
    "tests/server/test_crash.py::test_acknowledged_appends_survive_sigkill",
    "tests/kafka/test_transactions_crash.py",
    "tests/kafka/test_exactly_once_crash.py",
    "tests/kafka/test_durability.py::test_acknowledged_records_survive_sigkill",
)
LONG_TESTS = (
    "tests/test_code_quality.py::test_mypy",
    "tests/kafka/test_groups.py",
    "tests/server/test_alarms.py",
    "tests/kafka/test_session_timeout_bounds.py",
    "tests/cli/test_kafka.py",
    "tests/cli/test_access.py",
)


def _listed(nodeid: str, prefixes: Sequence[str]) -> bool:
    return any(nodeid == p or nodeid.startswith((p + "::", p + "[")) for p in prefixes)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # schemathesis names its items after the operation (test[GET /api/...]) but gives them all
    # the test's node id, and xdist's loadgroup schedules by node id: it would run one of them
    # and drop the rest.  Each gets its name as its node id (pytest keeps the id in ``_id``).
    seen = Counter(item.nodeid for item in items)
    for item in items:
        if seen[item.nodeid] > 1 and not item.nodeid.endswith(item.name):
            nodeid = item.nodeid.rpartition("::")[0] + "::" + item.name
            if hasattr(item, "_id"):  # pytest >= 9
                from _pytest.nodeid import NodeId

                item._id = NodeId.parse(nodeid)
            else:
                item._nodeid = nodeid
    if hasattr(config, "workerinput"):
        twice = [nodeid for nodeid, n in Counter(item.nodeid for item in items).items() if n > 1]
        if twice:
            raise pytest.UsageError(f"tests sharing a node id, which xdist would run once: {twice}")
    for item in items:
        if _listed(item.nodeid, SIGKILL_TESTS):
            item.add_marker(pytest.mark.xdist_group(SIGKILL_GROUP))
    if hasattr(config, "workerinput"):  # an xdist worker: the long tests first (a stable sort)
        items.sort(key=lambda item: not _listed(item.nodeid, (*SIGKILL_TESTS, *LONG_TESTS)))


# How long a `jackalope serve` may take to announce its listeners: a bound for a busy machine
# (several test workers and other load on two cores), not a pace; a healthy start takes a second.
START_TIMEOUT = 60.0
GUEST_AUTH = "Basic " + base64.b64encode(b"guest:guest").decode()


def http_json(url: str, method: str = "GET", payload: object = None, auth: str = GUEST_AUTH) -> object:
    """One HTTP API request as guest (the API authenticates every request); the JSON answer,
    or None for an empty one."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Authorization": auth})
    with urllib.request.urlopen(request, timeout=10) as resp:
        body = resp.read()
    return json.loads(body) if body else None


@dataclass
class ServeProcess:
    proc: subprocess.Popen[str]
    urls: dict[str, str] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout)

    def kill9(self) -> None:
        """SIGKILL, as a crash: nothing is flushed or closed."""
        self.proc.kill()
        self.proc.wait()


def start_serve(
    data_dir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = START_TIMEOUT,
    wrap: Sequence[str] = (),
) -> ServeProcess:
    """Start `jackalope serve` on ephemeral ports and wait until it prints its listeners.

    ``wrap`` goes in front of the command (a program that runs it, e.g. in a namespace)."""
    cmd = [*wrap, sys.executable, "-m", "jackalope", "serve", "--data-dir", str(data_dir), "--http-port", "0"]
    for flag in ("--amqp-port", "--amqp-tls-port", "--kafka-port"):
        if flag == "--kafka-port" and "--kafka-listeners" in args:
            continue  # the listeners give their own ports
        if flag not in args:
            cmd += [flag, "0"]
    cmd += args
    wanted = {"http"}
    for flag, name in (("--amqp-port", "amqp"), ("--amqp-tls-port", "amqps"), ("--kafka-port", "kafka")):
        if name == "amqps" and "--amqp-tls-certfile" not in args:
            continue  # amqps listens only with a certificate
        if not (flag in args and args[args.index(flag) + 1] == "-1"):
            wanted.add(name)
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    served = ServeProcess(proc)
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        served.output.append(line)
        m = URL.search(line)
        if m:
            served.urls[m.group(1)] = m.group(2)
            if wanted <= served.urls.keys():
                # Keep reading its output, so that a chatty broker never blocks on a full pipe.
                threading.Thread(target=_drain, args=(proc.stdout, served.output), daemon=True).start()
                return served
    proc.kill()
    proc.wait()
    raise AssertionError("jackalope serve did not start:\n" + "".join(served.output))


def run_serve(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """`jackalope serve` run to its end (for start-up errors): its exit status and output."""
    return subprocess.run(
        [sys.executable, "-m", "jackalope", "serve", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _drain(stream: IO[str], into: list[str]) -> None:
    for line in stream:
        into.append(line)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[type[ServeProcess]]:
    started: list[ServeProcess] = []

    def factory(*args: str, data_dir: Path | None = None, env: dict[str, str] | None = None) -> ServeProcess:
        p = start_serve(data_dir or tmp_path / "data", *args, env=env)
        started.append(p)
        return p

    yield factory  # type: ignore[misc]
    for p in started:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()


@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """One test CA for the session: server and client certificates on demand."""
    return TestCA(tmp_path_factory.mktemp("tls-ca"))
