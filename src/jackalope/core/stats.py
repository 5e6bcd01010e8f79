"""Message counters and their rates, kept cheaply per object as RabbitMQ's management keeps
its ``message_stats``.

A :class:`MessageStats` is a handful of plain integers that the hot paths increment (one
attribute add each, nothing else); a :class:`RateSampler` reads every registered object's
counters once per interval (RabbitMQ's default is 5 s) and keeps the rate over the last
interval.  No history, no per-message allocation.  The names are RabbitMQ's
``message_stats`` fields.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Final

COUNTERS: Final = (
    "publish",
    "publish_in",
    "publish_out",
    "confirm",
    "deliver",
    "deliver_no_ack",
    "get",
    "get_no_ack",
    "get_empty",
    "redeliver",
    "ack",
    "return_unroutable",
    "drop_unroutable",
)
SAMPLE_INTERVAL_S: Final = 5.0  # RabbitMQ's collect_statistics_interval


class MessageStats:
    """Counts since the object was made, and the per-second rates of the last sample."""

    __slots__ = (*COUNTERS, "_last", "_last_at", "_rates")

    def __init__(self) -> None:
        self.publish = 0
        self.publish_in = 0  # exchanges: messages published to it
        self.publish_out = 0  # exchanges: messages it routed somewhere
        self.confirm = 0
        self.deliver = 0
        self.deliver_no_ack = 0
        self.get = 0
        self.get_no_ack = 0
        self.get_empty = 0
        self.redeliver = 0
        self.ack = 0
        self.return_unroutable = 0
        self.drop_unroutable = 0
        self._last: tuple[int, ...] | None = None
        self._last_at = 0.0
        self._rates: tuple[float, ...] = (0.0,) * len(COUNTERS)

    def counts(self) -> tuple[int, ...]:
        return tuple(getattr(self, name) for name in COUNTERS)

    def add(self, other: MessageStats) -> None:
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def set_sum(self, parts: Iterable[MessageStats]) -> None:
        """Set the counts to the sum of ``parts`` (the rates stay until the next sample)."""
        sums = [0] * len(COUNTERS)
        for part in parts:
            for i, value in enumerate(part.counts()):
                sums[i] += value
        for name, value in zip(COUNTERS, sums, strict=True):
            setattr(self, name, value)

    def sample(self, now: float) -> None:
        """Take the rates since the previous sample (none before the second)."""
        counts = self.counts()
        last = self._last
        if last is not None and now > self._last_at:
            dt = now - self._last_at
            self._rates = tuple((c - p) / dt for c, p in zip(counts, last, strict=True))
        self._last = counts
        self._last_at = now

    def rates(self) -> dict[str, float]:
        return dict(zip(COUNTERS, self._rates, strict=True))

    def as_json(self, names: Iterable[str] = COUNTERS) -> dict[str, Any]:
        """RabbitMQ's ``message_stats``: each nonzero count with its ``<name>_details``
        rate, and the derived ``deliver_get`` (deliver + deliver_no_ack + get + get_no_ack)."""
        out: dict[str, Any] = {}
        rates = self.rates()
        for name in names:
            value = getattr(self, name)
            if value or rates[name]:
                out[name] = value
                out[name + "_details"] = {"rate": round(rates[name], 1)}
        deliver_get = ("deliver", "deliver_no_ack", "get", "get_no_ack")
        total = sum(getattr(self, n) for n in deliver_get)
        if total:
            out["deliver_get"] = total
            out["deliver_get_details"] = {"rate": round(sum(rates[n] for n in deliver_get), 1)}
        return out


class RateSampler:
    """Samples every object ``sources`` yields, every :data:`SAMPLE_INTERVAL_S`, on the
    broker's timer (the event loop's ``call_later``)."""

    def __init__(
        self,
        sources: Callable[[], Iterable[MessageStats]],
        timer: Callable[[float, Callable[[], None]], Any] | None,
        interval: float = SAMPLE_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sources = sources
        self._timer = timer
        self._interval = interval
        self._clock = clock
        self._handle: Any = None
        self._stopped = False

    def start(self) -> None:
        if self._timer is not None and self._handle is None and not self._stopped:
            self.sample()
            self._handle = self._timer(self._interval, self._tick)

    def _tick(self) -> None:
        self._handle = None
        if self._stopped:
            return
        self.sample()
        assert self._timer is not None
        self._handle = self._timer(self._interval, self._tick)

    def sample(self) -> None:
        now = self._clock()
        for stats in self._sources():
            stats.sample(now)

    def stop(self) -> None:
        self._stopped = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class QueueCounts:
    """Queues declared (every non-passive queue.declare), created and deleted, broker-wide."""

    __slots__ = ("created", "declared", "deleted")

    def __init__(self) -> None:
        self.declared = 0
        self.created = 0
        self.deleted = 0
