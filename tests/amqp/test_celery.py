"""Celery with the broker as its transport (py-amqp via kombu) and the ``rpc://`` result backend
(replies over AMQP too): a real worker thread runs the tasks."""

from __future__ import annotations

import time
from collections.abc import Iterator

import celery.contrib.testing.tasks  # noqa: F401  (registers celery.ping for the worker's start check)
import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker

from tests.amqp.support import EXTERNAL_URL, WAIT, Names


class TaskFailedOnPurpose(ValueError):
    pass


@pytest.fixture
def app(amqp_url: str, names: Names) -> Iterator[Celery]:
    app = Celery("jackalope-test-" + names.suffix, broker=amqp_url, backend="rpc://", set_as_current=False)
    app.conf.update(
        task_default_queue=names.queue("celery"),
        task_default_exchange=names.exchange("celery"),
        task_default_routing_key="celery-tasks",
        worker_enable_remote_control=False,  # no shared celery.pidbox exchange
        broker_connection_retry_on_startup=False,
        broker_connection_max_retries=0,
        broker_connection_timeout=WAIT,
        result_expires=60,  # the rpc reply queue gets x-expires
        worker_hijack_root_logger=False,
        # The worker's event loop only notices the end of the test when a timer fires; with AMQP
        # heartbeats every second (checked twice per interval) that is soon enough to join it.
        broker_heartbeat=2,
    )

    @app.task(name="add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="fail")
    def fail(message: str) -> None:
        raise ValueError(message)

    yield app
    names.track_queue(app.thread_oid)  # the rpc backend's reply queue (auto-delete anyway)
    app.close()


def test_task_round_trip_and_error(app: Celery) -> None:
    with start_worker(
        app, pool="solo", perform_ping_check=True, ping_task_timeout=WAIT, shutdown_timeout=WAIT
    ):
        result = app.tasks["add"].delay(2, 3)
        assert result.get(timeout=WAIT) == 5
        assert result.successful()

        results = [app.tasks["add"].delay(i, i) for i in range(10)]
        assert [r.get(timeout=WAIT) for r in results] == [2 * i for i in range(10)]

        failing = app.tasks["fail"].delay("boom from the worker")
        with pytest.raises(ValueError, match="boom from the worker"):
            failing.get(timeout=WAIT)
        assert failing.failed()


@pytest.fixture
def quorum_app(app: Celery) -> Celery:
    """Celery on quorum queues, as Celery 5.5+ runs on RabbitMQ 4: countdowns go through its
    native delayed delivery (28 levels of quorum queues with TTLs, dead-lettering
    at-least-once from one to the next)."""
    app.conf.update(
        task_default_queue_type="quorum",
        worker_detect_quorum_queues=True,
        broker_transport_options={"confirm_publish": True},
    )
    return app


@pytest.mark.skipif(EXTERNAL_URL is not None, reason="declares Celery's 28 delayed-delivery queues for good")
def test_quorum_queues_and_native_delayed_delivery(quorum_app: Celery) -> None:
    with start_worker(
        quorum_app, pool="solo", perform_ping_check=True, ping_task_timeout=WAIT, shutdown_timeout=WAIT
    ):
        assert quorum_app.tasks["add"].delay(1, 2).get(timeout=WAIT) == 3
        sent = time.monotonic()
        later = quorum_app.tasks["add"].apply_async((20, 22), countdown=1)
        assert later.get(timeout=WAIT) == 42
        assert time.monotonic() - sent >= 1  # it waited out its countdown in the delay queues


def test_task_priorities(app: Celery) -> None:
    """Celery's task priorities: a queue with x-max-priority, and higher-priority tasks first."""
    app.conf.update(task_queue_max_priority=10, task_default_priority=0, worker_prefetch_multiplier=1)
    order: list[str] = []

    @app.task(name="record")
    def record(label: str) -> None:
        order.append(label)

    for label, priority in [("low-1", 1), ("low-2", 1), ("high", 9), ("mid", 5)]:
        app.tasks["record"].apply_async((label,), priority=priority, ignore_result=True)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=WAIT):
        deadline = time.monotonic() + WAIT
        while len(order) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert order == ["high", "mid", "low-1", "low-2"]
