"""The delayed-message exchange in the core, with a hand-driven clock and timer: which messages
are held and which pass at once, release in due order with one timer armed at a time, routing by
the bindings of release time (alternate exchange included), the log of a durable exchange across
a restart (a released message never comes back), deletion, and the declaration's refusals."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from jackalope.core import queue as queue_module
from jackalope.core.delayed import Holding, delayed_log_name
from jackalope.core.errors import InvalidArgument, PreconditionFailed
from jackalope.core.exchanges import DelayedMessageExchange, UnknownExchangeType
from jackalope.core.exchanges.delayed import MAX_DELAY_MS, delay_of
from jackalope.core.message import Message
from jackalope.core.queue import Queue
from jackalope.core.vhost import VirtualHost
from jackalope.storage import LogManager
from tests.core.test_queue_ttl import Timers

DIRECT = {"x-delayed-type": "direct"}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The core's wall clock (ms), moved by hand."""
    now = [1_000_000]
    monkeypatch.setattr(queue_module, "now_ms", lambda: now[0])
    return now


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[LogManager]:
    manager = LogManager(tmp_path / "logs")
    manager.open()
    yield manager
    manager.close_sync()


def make_vhost(logs: LogManager, timers: Timers) -> VirtualHost:
    return VirtualHost("/", logs, timer=timers)


def headers(table: Mapping[str, Any]) -> Any:
    return lambda: table


def publish(vhost: VirtualHost, exchange: str, key: str, body: bytes, delay: Any = None) -> list[Any]:
    """Route and enqueue as the publish path does; return where the message went."""
    table = {} if delay is None else {"x-delay": delay}
    targets = list(vhost.route(exchange, key, headers(table)))
    message = Message(exchange, key, b"\x00\x00", body, True)
    for target in targets:
        target.enqueue(message)
    return targets


def bodies(queue: Any) -> list[bytes]:
    assert isinstance(queue, Queue)
    got = []
    while (entry := queue.get()) is not None:
        got.append(entry.message.body)
        queue.ack(entry)
    return got


def setup(vhost: VirtualHost, durable: bool = True, **arguments: Any) -> Queue:
    vhost.declare_exchange("dx", "x-delayed-message", durable=durable, arguments={**DIRECT, **arguments})
    queue = vhost.declare_queue("q", owner=None, durable=True)
    assert isinstance(queue, Queue)
    vhost.bind_queue("q", "dx", "k", {}, None)
    return queue


# -- which messages wait -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (1, 1),
        (5000, 5000),
        (0, None),
        (-5000, None),  # what a released message carries
        (MAX_DELAY_MS, MAX_DELAY_MS),
        (MAX_DELAY_MS + 1, None),  # longer than the plugin's timers: routed at once
        ("250", 250),
        (b"250", 250),
        ("+7", 7),
        (99.9, 99),
        (Decimal("12.5"), 12),
        (True, None),
        ({"a": 1}, None),
        ([1], None),
    ],
)
def test_delay_of(value: Any, expected: int | None) -> None:
    assert delay_of({} if value is None else {"x-delay": value}) == expected


@pytest.mark.parametrize("value", ["soon", "1.5", "", b"12ms"])
def test_a_delay_that_is_not_an_integer_is_refused(value: Any) -> None:
    with pytest.raises(PreconditionFailed, match="invalid 'x-delay' header"):
        delay_of({"x-delay": value})


def test_a_message_without_a_delay_is_routed_at_once(logs: LogManager, clock: list[int]) -> None:
    vhost = make_vhost(logs, Timers(clock))
    queue = setup(vhost)
    for delay in (None, 0, -10):
        assert publish(vhost, "dx", "k", b"now", delay) == [queue]
    assert publish(vhost, "dx", "other", b"unrouted") == []
    assert bodies(queue) == [b"now"] * 3


# -- holding and releasing ---------------------------------------------------------------------


def test_held_messages_are_released_in_due_order_by_one_timer(logs: LogManager, clock: list[int]) -> None:
    timers = Timers(clock)
    vhost = make_vhost(logs, timers)
    queue = setup(vhost)
    targets = publish(vhost, "dx", "k", b"late", 300)
    assert len(targets) == 1 and isinstance(targets[0], Holding)
    publish(vhost, "dx", "k", b"early", 100)
    publish(vhost, "dx", "k", b"early too", 100)  # same due time: publish order
    held = vhost.delayed[vhost.exchanges["dx"]]
    assert len(held) == 3 and queue.message_count == 0
    live = [p for p in timers.pending if not p[2].cancelled]
    assert len(live) == 1  # re-armed for the earlier message, never one timer per message
    clock[0] += 99
    timers.run_due()
    assert queue.message_count == 0
    clock[0] += 2
    timers.run_due()
    assert bodies(queue) == [b"early", b"early too"]
    assert len(held) == 1
    clock[0] += 200
    timers.run_due()
    assert bodies(queue) == [b"late"]
    assert len(held) == 0 and not [p for p in timers.pending if not p[2].cancelled]


def test_release_routes_by_the_bindings_of_that_time(logs: LogManager, clock: list[int]) -> None:
    timers = Timers(clock)
    vhost = make_vhost(logs, timers)
    vhost.declare_exchange("ae", "fanout")
    vhost.declare_queue("lost", owner=None)
    vhost.bind_queue("lost", "ae", "", {}, None)
    queue = setup(vhost, **{"alternate-exchange": "ae"})
    publish(vhost, "dx", "later", b"bound meanwhile", 10)
    publish(vhost, "dx", "k", b"unbound meanwhile", 10)
    publish(vhost, "dx", "nowhere", b"to the alternate", 10)
    vhost.declare_queue("q2", owner=None)
    vhost.bind_queue("q2", "dx", "later", {}, None)
    vhost.unbind_queue("q", "dx", "k", {}, None)
    clock[0] += 20
    timers.run_due()
    assert bodies(vhost.queues["q2"]) == [b"bound meanwhile"]
    assert bodies(queue) == []
    assert bodies(vhost.queues["lost"]) == [b"unbound meanwhile", b"to the alternate"]


def test_topic_and_headers_routing_after_the_delay(logs: LogManager, clock: list[int]) -> None:
    timers = Timers(clock)
    vhost = make_vhost(logs, timers)
    vhost.declare_exchange("tx", "x-delayed-message", arguments={"x-delayed-type": "topic"})
    vhost.declare_queue("t", owner=None)
    vhost.bind_queue("t", "tx", "a.*", {}, None)
    publish(vhost, "tx", "a.b", b"matches", 5)
    publish(vhost, "tx", "b.b", b"does not", 5)
    clock[0] += 10
    timers.run_due()
    assert bodies(vhost.queues["t"]) == [b"matches"]


def test_the_front_ends_stamp_rewrites_the_released_message(logs: LogManager, clock: list[int]) -> None:
    timers = Timers(clock)
    vhost = make_vhost(logs, timers)
    seen: list[bytes] = []

    def stamp(properties: bytes) -> tuple[bytes, Any]:
        seen.append(properties)
        return b"released", lambda: {"x-delay": -5}

    vhost.release_stamp = stamp
    queue = setup(vhost)
    publish(vhost, "dx", "k", b"m", 5)
    clock[0] += 10
    timers.run_due()
    entry = queue.get()
    assert entry is not None and entry.message.properties == b"released"
    assert entry.message.exchange == "dx" and entry.message.routing_key == "k"
    assert seen == [b"\x00\x00"]


def test_a_delayed_exchange_bound_to_another_passes_released_messages(
    logs: LogManager, clock: list[int]
) -> None:
    """A released message carries x-delay negated, so the next delayed exchange passes it."""
    timers = Timers(clock)
    vhost = make_vhost(logs, timers)
    vhost.release_stamp = lambda properties: (properties, lambda: {"x-delay": -5})
    queue = setup(vhost)
    vhost.declare_exchange("front", "x-delayed-message", arguments={"x-delayed-type": "fanout"})
    vhost.bind_exchange("dx", "front", "", {})
    assert [type(t) for t in publish(vhost, "front", "k", b"m", 5)] == [Holding]
    clock[0] += 10
    timers.run_due()
    assert bodies(queue) == [b"m"]  # through dx at once: not held a second time
    assert len(vhost.delayed[vhost.exchanges["dx"]]) == 0


# -- durability --------------------------------------------------------------------------------


def test_a_durable_exchange_keeps_held_messages_across_a_restart(
    tmp_path: Path, logs: LogManager, clock: list[int]
) -> None:
    timers = Timers(clock)
    vhost = make_vhost(logs, timers)
    setup(vhost)
    publish(vhost, "dx", "k", b"routed before", 10)
    publish(vhost, "dx", "k", b"held", 1000)
    publish(vhost, "dx", "k", b"due while down", 50)
    held = vhost.delayed[vhost.exchanges["dx"]]
    assert held.log is logs.get(delayed_log_name("/", "dx"))
    clock[0] += 20
    timers.run_due()
    assert bodies(vhost.queues["q"]) == [b"routed before"]
    definitions = vhost.definitions()
    vhost.close()
    logs.close_sync()

    clock[0] += 100  # "due while down" falls due while the broker is down
    again_logs = LogManager(tmp_path / "logs")
    again_logs.open()
    timers = Timers(clock)
    again = make_vhost(again_logs, timers)
    again.load_definitions(definitions)
    assert len(again.delayed[again.exchanges["dx"]]) == 2
    clock[0] += 1  # the timer's millisecond of slack
    timers.run_due()
    assert bodies(again.queues["q"]) == [b"due while down"]
    clock[0] += 1000
    timers.run_due()
    assert bodies(again.queues["q"]) == [b"held"]
    again.close()
    again_logs.close_sync()


def test_a_new_exchange_does_not_take_over_a_leftover_log(logs: LogManager, clock: list[int]) -> None:
    vhost = make_vhost(logs, Timers(clock))
    setup(vhost)
    publish(vhost, "dx", "k", b"of an exchange whose definition was never saved", 10)
    vhost.close()
    timers = Timers(clock)
    again = make_vhost(logs, timers)  # no definitions loaded: the exchange is declared anew
    queue = setup(again)
    held_log = logs.get(delayed_log_name("/", "dx"))
    assert held_log is not None and held_log.end_offset == 0
    clock[0] += 20
    timers.run_due()
    assert bodies(queue) == []


def test_a_non_durable_exchange_holds_in_memory(logs: LogManager, clock: list[int]) -> None:
    vhost = make_vhost(logs, Timers(clock))
    setup(vhost, durable=False)
    publish(vhost, "dx", "k", b"m", 10)
    held = vhost.delayed[vhost.exchanges["dx"]]
    assert held.log is None and len(held) == 1
    assert logs.get(delayed_log_name("/", "dx")) is None


def test_a_held_message_waits_for_its_log_before_it_is_confirmed(logs: LogManager, clock: list[int]) -> None:
    deferred: list[Any] = []
    vhost = VirtualHost("/", logs, timer=Timers(clock), defer=deferred.append)
    setup(vhost)
    (holding,) = vhost.route("dx", "k", headers({"x-delay": 10}))
    entry = holding.enqueue(Message("dx", "k", b"\x00\x00", b"m", True))
    assert entry is not None and entry.offset != -1  # the publish path waits for it
    durable: list[object] = []
    holding.when_durable(entry, durable.append)
    assert durable == []
    for write in deferred:
        write()
    held_log = logs.get(delayed_log_name("/", "dx"))
    assert held_log is not None and held_log.end_offset == 1 and entry.offset == 0
    assert durable == []  # written, not yet on disk
    held_log.sync()
    assert durable == [None]


def test_deleting_the_exchange_drops_its_messages_and_its_log(logs: LogManager, clock: list[int]) -> None:
    timers = Timers(clock)
    vhost = make_vhost(logs, timers)
    queue = setup(vhost)
    publish(vhost, "dx", "k", b"m", 10)
    assert logs.get(delayed_log_name("/", "dx")) is not None
    vhost.delete_exchange("dx")
    assert logs.get(delayed_log_name("/", "dx")) is None
    assert not vhost.delayed
    assert all(handle.cancelled for _, _, handle in timers.pending)
    clock[0] += 20
    timers.run_due()
    assert bodies(queue) == []
    setup(vhost)  # the same name again: a new, empty exchange
    assert len(vhost.delayed[vhost.exchanges["dx"]]) == 0


def test_an_auto_deleted_exchange_drops_its_log_too(logs: LogManager, clock: list[int]) -> None:
    vhost = make_vhost(logs, Timers(clock))
    vhost.declare_exchange("ad", "x-delayed-message", auto_delete=True, arguments=DIRECT)
    vhost.declare_queue("q", owner=None)
    vhost.bind_queue("q", "ad", "k", {}, None)
    publish(vhost, "ad", "k", b"m", 10)
    vhost.unbind_queue("q", "ad", "k", {}, None)
    assert "ad" not in vhost.exchanges and not vhost.delayed
    assert logs.get(delayed_log_name("/", "ad")) is None


# -- declaring ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "Invalid argument, 'x-delayed-type' must be an existing exchange type"),
        ({"x-delayed-type": 5}, "Invalid argument, 'x-delayed-type' must be an existing exchange type"),
        (
            {"x-delayed-type": "x-delayed-message"},
            "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'",
        ),
    ],
)
def test_declare_refusals(
    logs: LogManager, clock: list[int], arguments: dict[str, Any], message: str
) -> None:
    vhost = make_vhost(logs, Timers(clock))
    with pytest.raises(PreconditionFailed) as caught:
        vhost.declare_exchange("dx", "x-delayed-message", arguments=arguments)
    assert str(caught.value) == message
    assert "dx" not in vhost.exchanges and not vhost.delayed


def test_an_unknown_delayed_type_is_an_unknown_exchange_type(logs: LogManager, clock: list[int]) -> None:
    vhost = make_vhost(logs, Timers(clock))
    with pytest.raises(UnknownExchangeType) as caught:
        vhost.declare_exchange("dx", "x-delayed-message", arguments={"x-delayed-type": "x-foo"})
    assert caught.value.type_name == "x-foo"


def test_bindings_are_checked_by_the_delayed_type(logs: LogManager, clock: list[int]) -> None:
    vhost = make_vhost(logs, Timers(clock))
    vhost.declare_exchange("dx", "x-delayed-message", arguments={"x-delayed-type": "headers"})
    vhost.declare_queue("q", owner=None)
    with pytest.raises(PreconditionFailed, match="x-match"):
        vhost.bind_queue("q", "dx", "", {"x-match": "some"}, None)
    exchange = vhost.exchanges["dx"]
    assert isinstance(exchange, DelayedMessageExchange) and not exchange.has_bindings()


def test_a_broker_without_timers_refuses_the_type(logs: LogManager) -> None:
    vhost = VirtualHost("/", logs)
    with pytest.raises(InvalidArgument, match="no timers"):
        vhost.declare_exchange("dx", "x-delayed-message", arguments=DIRECT)
