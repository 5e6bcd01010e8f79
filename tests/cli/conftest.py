"""Fixtures for the tests of the installed ``jackalope`` admin commands: one embedded broker
per test module (each test names its own objects), and a runner for the command itself as a
user runs it (a subprocess of the venv's ``jackalope`` script)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from jackalope import Broker

JACKALOPE = Path(sys.executable).parent / "jackalope"
WIDTH = 100  # the terminal width the tables must fit


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def environment(url: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """The command's environment: the broker's URL, a fixed terminal width, and no
    credentials or vhost from the test runner's own environment unless given."""
    base = {k: v for k, v in os.environ.items() if k not in CREDENTIALS}
    return {**base, "JACKALOPE_URL": url, "COLUMNS": str(WIDTH), "LINES": "50", **(env or {})}


CREDENTIALS = ("JACKALOPE_USER", "JACKALOPE_PASSWORD", "JACKALOPE_VHOST")


def run_cli(
    *args: str, url: str, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> Result:
    done = subprocess.run(
        [str(JACKALOPE), *args],
        input=input,
        capture_output=True,
        text=True,
        env=environment(url, env),
        timeout=timeout,
    )
    return Result(done.returncode, done.stdout, done.stderr)


class Cli:
    """``cli("queues", "list", "--json")``: the installed command against one broker."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return run_cli(*args, url=self.url, input=input, env=env)

    def bytes_in(self, *args: str, input: bytes) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [str(JACKALOPE), *args], input=input, capture_output=True, env=environment(self.url), timeout=60
        )

    def on_terminal(self, *args: str) -> Result:
        """The command with its stderr on a pseudo-terminal (where progress is drawn) and its
        stdout on a pipe; ``err`` is what the terminal received, escape codes and all."""
        controller, terminal = pty.openpty()
        try:
            proc = subprocess.Popen(
                [str(JACKALOPE), *args],
                stdout=subprocess.PIPE,
                stderr=terminal,
                text=True,
                env=environment(self.url),
            )
        finally:
            os.close(terminal)
        assert proc.stdout is not None
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.append(proc.stdout.read()))  # type: ignore[union-attr]
        reader.start()
        seen = bytearray()
        while True:  # until the command closes the terminal (EIO once it has exited)
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        os.close(controller)
        reader.join(timeout=60)
        proc.stdout.close()
        return Result(proc.wait(timeout=60), "".join(out), seen.decode("utf-8", "replace"))

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(JACKALOPE), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment(self.url),
        )


Run = Cli


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    with Broker(tmp_path_factory.mktemp("cli") / "data") as running:
        yield running


@pytest.fixture
def cli(broker: Broker) -> Cli:
    return Cli(broker.http_url)


def table_lines(out: str) -> list[str]:
    """The lines of a table (each of which must fit the terminal), without their padding."""
    lines = out.rstrip("\n").splitlines()
    assert all(len(line) <= WIDTH for line in lines), out
    return [line.rstrip() for line in lines]
