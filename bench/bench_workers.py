"""Load-generator processes for the benchmarks: start one, and wait for what it reports.

A worker runs ``target(*args, pipe)`` in a child process and sends ``(kind, value)`` tuples
over the pipe; :meth:`Worker.receive` turns a dead, silent or vanished child into an
``("error", message)`` report instead of a hang.
"""

from __future__ import annotations

import multiprocessing.context
import multiprocessing.process
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection as Pipe
from typing import Any


@dataclass
class Worker:
    name: str
    process: multiprocessing.process.BaseProcess
    pipe: Pipe

    def receive(self, timeout: float) -> tuple[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            if self.pipe.poll(0.2):
                try:
                    kind, value = self.pipe.recv()
                except EOFError:
                    return "error", f"{self.name} process exited (code {self.process.exitcode})"
                return str(kind), value
            if not self.process.is_alive() and not self.pipe.poll(0):
                return "error", f"{self.name} process died (exit code {self.process.exitcode})"
            if time.monotonic() > deadline:
                return "error", f"{self.name} process: no answer in {timeout:.0f} s"


def spawn(
    ctx: multiprocessing.context.BaseContext, prefix: str, name: str, target: Callable[..., None], *args: Any
) -> Worker:
    """Start ``target(*args, pipe)`` as process ``<prefix>-<name>``."""
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(*args, child), name=f"{prefix}-{name}", daemon=True)  # type: ignore[attr-defined]
    proc.start()
    child.close()
    return Worker(name, proc, parent)
