"""One phase of a benchmark: worker processes released together while the parent samples the broker.

:func:`run_phase` starts the workers (publisher, consumer, prober, ... from
:mod:`amqp_load.workers`), waits until each says it is ready, sends them all the same start time
(``("go", t)``) and, until every one has reported, samples the broker process's RSS and CPU time
with a :class:`~amqp_load.sysstat.ProcessSampler`.  A worker that dies, or says nothing within
the phase's time limit, becomes a problem of the phase instead of a hang.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from multiprocessing.connection import wait
from typing import Any, Final

from amqp_load.sysstat import ProcessSampler
from bench_workers import Worker, spawn

START_DELAY: Final = 0.05  # between "go" and the start time, so that every worker starts together
READY_TIMEOUT: Final = 60.0

_CTX = multiprocessing.get_context("fork")

# called as on_report(name, kind, value, workers) when a worker reports its result or an error
OnReport = Callable[[str, str, Any, dict[str, Worker]], None]


@dataclass
class PhaseOutcome:
    t_go: float = 0.0
    results: dict[str, Any] = field(default_factory=dict)  # worker name -> its result
    problems: list[str] = field(default_factory=list)


def run_phase(
    prefix: str,
    specs: Sequence[tuple[str, Callable[..., None], Any]],
    sampler: ProcessSampler | None = None,
    on_report: OnReport | None = None,
    limit: float = 3600.0,
    sample_at: Sequence[float] = (),
    progress: Callable[[float], None] | None = None,
    progress_every: float = 10.0,
) -> PhaseOutcome:
    """Run ``target(config, pipe)`` for each ``(name, target, config)`` of ``specs`` and collect
    their results.  ``sample_at`` are extra sampling times, in seconds after the start;
    ``progress(seconds since the start)`` is called every ``progress_every`` seconds."""
    out = PhaseOutcome()
    workers: list[Worker] = []
    try:
        for name, target, cfg in specs:
            workers.append(spawn(_CTX, prefix, name, target, cfg))
        for w in workers:
            kind, value = w.receive(READY_TIMEOUT)
            if kind != "ready":
                out.problems.append(f"{w.name}: {value}")
        if out.problems:
            return out
        out.t_go = time.monotonic() + START_DELAY
        for w in workers:
            w.pipe.send(("go", out.t_go))
        if sampler is not None:
            sampler.start(out.t_go)
            sampler.at(*(out.t_go + s for s in sample_at))
        by_name = {w.name: w for w in workers}
        pending: dict[Pipe, Worker] = {w.pipe: w for w in workers}
        give_up = out.t_go + limit
        next_progress = out.t_go + progress_every

        def report(w: Worker, kind: str, value: Any) -> None:
            if kind == "result":
                out.results[w.name] = value
            else:
                out.problems.append(f"{w.name}: {value}")
            if on_report is not None:
                on_report(w.name, kind, value, by_name)

        while pending:
            now = time.monotonic()
            if sampler is not None:
                sampler.poll(now)
            if progress is not None and now >= next_progress:
                progress(now - out.t_go)
                next_progress += progress_every
            wake = give_up if sampler is None else min(give_up, sampler.next_due())
            for ready in wait(list(pending), timeout=min(max(0.0, wake - now), 0.5)):
                assert isinstance(ready, Pipe)
                w = pending.pop(ready)
                try:
                    kind, value = ready.recv()
                except (EOFError, OSError) as exc:
                    kind, value = "error", f"{w.name} process: {exc or 'exited'} (code {w.process.exitcode})"
                report(w, str(kind), value)
            for pipe, w in list(pending.items()):
                if not w.process.is_alive() and not pipe.poll(0):
                    del pending[pipe]
                    report(w, "error", f"{w.name} process died (exit code {w.process.exitcode})")
            if time.monotonic() > give_up:
                for w in pending.values():
                    report(w, "error", f"{w.name} process: no result in {limit:.0f} s")
                break
    finally:
        for w in workers:
            w.process.join(10)
            if w.process.is_alive():
                w.process.terminate()
                w.process.join(5)
            w.pipe.close()
    return out
