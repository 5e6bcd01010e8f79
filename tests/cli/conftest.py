"""Fixtures for the tests of the installed ``jackalope`` admin commands: one embedded broker
per test module (each test names its own objects), and a runner for the command itself as a
user runs it (a subprocess of the venv's ``jackalope`` script)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
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


Run = Callable[..., Result]


def run_cli(
    *args: str, url: str, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> Result:
    environment = {
        **os.environ,
        "JACKALOPE_URL": url,
        "COLUMNS": str(WIDTH),
        "LINES": "50",
        **(env or {}),
    }
    for name in ("JACKALOPE_USER", "JACKALOPE_PASSWORD", "JACKALOPE_VHOST"):
        if env is None or name not in env:
            environment.pop(name, None)
    done = subprocess.run(
        [str(JACKALOPE), *args],
        input=input,
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
    )
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    with Broker(tmp_path_factory.mktemp("cli") / "data") as running:
        yield running


@pytest.fixture
def cli(broker: Broker) -> Run:
    """``cli("queues", "list", "--json")``: the installed command against the module's broker."""

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return run_cli(*args, url=broker.http_url, input=input, env=env)

    return run


def table_lines(out: str) -> list[str]:
    """The lines of a table (each of which must fit the terminal), without their padding."""
    lines = out.rstrip("\n").splitlines()
    assert all(len(line) <= WIDTH for line in lines), out
    return [line.rstrip() for line in lines]
