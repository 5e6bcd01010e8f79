"""Message counters and their rates (core/stats.py), and the client registry's totals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jackalope.core.clients import Clients
from jackalope.core.message import Message
from jackalope.core.queue import Queue
from jackalope.core.stats import COUNTERS, MessageStats, RateSampler


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rates_are_the_change_over_the_last_interval() -> None:
    stats = MessageStats()
    clock = Clock()
    sampler = RateSampler(lambda: [stats], None, clock=clock)
    sampler.sample()
    assert stats.rates()["publish"] == 0
    stats.publish += 50
    clock.now += 5
    sampler.sample()
    assert stats.rates()["publish"] == 10.0
    clock.now += 5
    sampler.sample()  # nothing since: the rate falls to zero
    assert stats.rates()["publish"] == 0


def test_message_stats_json_is_rabbitmqs_shape() -> None:
    stats = MessageStats()
    stats.publish = 3
    stats.deliver = 2
    stats.get_no_ack = 1
    out = stats.as_json()
    assert out["publish"] == 3
    assert out["publish_details"] == {"rate": 0.0}
    assert out["deliver_get"] == 3
    assert "ack" not in out  # zero counts are left out, as RabbitMQ leaves them out


def test_sampler_reschedules_itself_on_the_timer_and_stops() -> None:
    calls: list[tuple[float, Callable[[], None]]] = []

    class Handle:
        cancelled = False

        def cancel(self) -> None:
            self.cancelled = True

    handles: list[Handle] = []

    def timer(delay: float, callback: Callable[[], None]) -> Any:
        calls.append((delay, callback))
        handles.append(Handle())
        return handles[-1]

    sampled: list[int] = []
    sampler = RateSampler(lambda: sampled.append(1) or [], timer, interval=5.0)
    sampler.start()
    assert len(calls) == 1 and calls[0][0] == 5.0
    calls[0][1]()  # the timer fires
    assert len(calls) == 2 and len(sampled) == 2
    sampler.stop()
    assert handles[-1].cancelled


def test_queue_counts_publish_deliver_get_and_ack() -> None:
    queue = Queue("q")
    for i in range(3):
        queue.enqueue(Message("", "q", b"\x00\x00", b"m%d" % i, False))
    entry = queue.get()
    assert entry is not None
    queue.ack(entry)
    again = queue.get()
    assert again is not None
    queue.requeue([again])
    redelivered = queue.get()
    assert redelivered is not None and redelivered.redelivered
    assert (queue.stats.publish, queue.stats.get, queue.stats.ack, queue.stats.redeliver) == (3, 3, 1, 1)


class FakeChannel:
    """A channel as a front-end registers it: only its stats are summed."""

    def __init__(self) -> None:
        self.stats = MessageStats()


def test_totals_keep_the_counts_of_closed_channels() -> None:
    clients = Clients()
    live = FakeChannel()
    gone = FakeChannel()
    gone.stats.publish = 7
    live.stats.publish = 2

    class Connection:
        name = "c"

        def client_channels(self) -> list[FakeChannel]:
            return [live]

    clients.opened(Connection())  # type: ignore[arg-type]
    clients.channel_opened()
    clients.channel_opened()
    clients.channel_closed(gone.stats)
    totals = clients.totals()
    assert totals.publish == 9
    assert totals is clients.totals()  # one object, so its rates survive between reads
    assert (clients.channels_opened, clients.channels_closed, clients.connections_opened) == (2, 1, 1)
    assert set(COUNTERS) >= {"publish", "confirm", "deliver", "ack"}
