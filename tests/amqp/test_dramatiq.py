"""dramatiq's RabbitmqBroker (pika underneath) with a real Worker: an actor round trip, a retry
through dramatiq's delay queue, and a failure dead-lettered (x-dead-letter-exchange) to its XQ."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from dramatiq import Worker, actor
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.common import dq_name, xq_name

from tests.amqp.support import WAIT, Names, bounded, connect, ready_count, wait_until


@pytest.fixture
def broker(amqp_url: str) -> Iterator[RabbitmqBroker]:
    broker = RabbitmqBroker(url=amqp_url, confirm_delivery=True)
    yield broker
    bounded(broker.close, "closing dramatiq's connections")


@pytest.fixture
def queue_name(names: Names) -> str:
    name = names.queue("dramatiq")
    names.track_queue(dq_name(name))  # dramatiq declares its delay and dead-letter queues too
    names.track_queue(xq_name(name))
    return name


@pytest.fixture
def worker(broker: RabbitmqBroker) -> Iterator[Worker]:
    worker = Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    yield worker
    bounded(lambda: worker.stop(timeout=int(WAIT * 1000)), "stopping the dramatiq worker", 2 * WAIT)


def test_actor_round_trip(broker: RabbitmqBroker, queue_name: str, worker: Worker) -> None:
    done = threading.Event()
    seen: list[tuple[int, str]] = []

    @actor(broker=broker, queue_name=queue_name, actor_name="record_" + queue_name.replace(".", "_"))
    def record(n: int, text: str) -> None:
        seen.append((n, text))
        if len(seen) == 3:
            done.set()

    for n in range(3):
        record.send(n, "hello")
    assert done.wait(WAIT), f"the actor ran {len(seen)} of 3 times"
    assert sorted(seen) == [(0, "hello"), (1, "hello"), (2, "hello")]


def test_retry_goes_through_the_delay_queue(broker: RabbitmqBroker, queue_name: str, worker: Worker) -> None:
    done = threading.Event()
    attempts: list[int] = []

    @actor(
        broker=broker,
        queue_name=queue_name,
        actor_name="flaky_" + queue_name.replace(".", "_"),
        max_retries=3,
        min_backoff=10,
        max_backoff=50,
    )
    def flaky() -> None:
        attempts.append(1)
        if len(attempts) < 2:
            raise RuntimeError("first attempt fails on purpose")
        done.set()

    flaky.send()
    assert done.wait(WAIT), f"{len(attempts)} attempts"
    assert len(attempts) == 2


def test_failure_is_dead_lettered(
    broker: RabbitmqBroker, queue_name: str, worker: Worker, amqp_url: str
) -> None:
    ran = threading.Event()

    @actor(
        broker=broker,
        queue_name=queue_name,
        actor_name="doomed_" + queue_name.replace(".", "_"),
        max_retries=0,
    )
    def doomed() -> None:
        ran.set()
        raise RuntimeError("fails on purpose")

    doomed.send()
    assert ran.wait(WAIT)
    # dramatiq nacks without requeue; the queue's x-dead-letter-* arguments move it to the XQ.
    conn = connect(amqp_url)
    try:
        ch = conn.channel()
        wait_until(lambda: ready_count(ch, xq_name(queue_name)) == 1, "the message in the dead-letter queue")
        assert ready_count(ch, queue_name) == 0
    finally:
        conn.close()
