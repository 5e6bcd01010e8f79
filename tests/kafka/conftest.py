"""Fixtures and helpers for the Kafka-protocol integration tests.

Every test here drives Jackalope's Kafka port with real client libraries (kafka-python,
aiokafka, confluent-kafka) or hand-encoded frames over real sockets.  Expected behaviour is
Kafka's documented behaviour as the clients see it; nothing here imports the broker's Kafka
front-end.

Brokers:

* ``kafka_broker``: one embedded broker per test module (its own thread, ephemeral ports, a
  temporary data directory).  Tests name their topics uniquely (``topic`` fixture), so they
  can share it.
* ``start_serve_kafka``: ``jackalope serve`` as a real process (for SIGKILL and restarts).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import START_TIMEOUT, ServeProcess

HERE = Path(__file__).resolve().parent
TEST_TIMEOUT = 45  # seconds per test unless a test says otherwise: a hang fails, never blocks
URL = re.compile(r"listening (\w+)\s+(\S+)")

# Consumer-group timings used throughout (Kafka's minimum session timeout is 6 s by default).
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_MS = 1000


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cross_protocol: AMQP <-> Kafka interoperation (streams)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT))


# -- brokers -------------------------------------------------------------------------------------

# The module brokers' settings for tests: a new group rebalances at once (Kafka's 3 s
# group.initial.rebalance.delay.ms is for production clusters; jackalope.pytest_plugin does the same).
TEST_SETTINGS: dict[str, Any] = {"kafka_group_initial_delay_ms": 0}


@pytest.fixture(scope="module")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from jackalope import Broker

    broker = Broker(tmp_path_factory.mktemp("kafka") / "data", kafka_port=0, **TEST_SETTINGS).start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def bootstrap(kafka_broker: Any) -> str:
    return str(kafka_broker.kafka_bootstrap)


MULTI_PARTITIONS = 6


@pytest.fixture(scope="module")
def multi_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker whose auto-created topics have MULTI_PARTITIONS partitions: tests of
    partitioning need no admin API (CreateTopics is tested on its own in test_admin)."""
    from jackalope import Broker

    broker = Broker(
        tmp_path_factory.mktemp("multi") / "data", kafka_num_partitions=MULTI_PARTITIONS, **TEST_SETTINGS
    ).start()
    try:
        yield str(broker.kafka_bootstrap)
    finally:
        broker.stop()


def ensure_topic(bootstrap: str, topic: str, partitions: int = MULTI_PARTITIONS) -> None:
    """Auto-create ``topic`` through a producer's metadata request and wait for its partitions."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap})
    wait_until(
        lambda: (
            topic in (md := p.list_topics(topic, timeout=5)).topics
            and md.topics[topic].error is None
            and len(md.topics[topic].partitions) == partitions
        ),
        10,
        f"{topic} auto-created with {partitions} partitions",
        interval=0.2,
    )


def start_serve_kafka(data_dir: Path, *args: str, timeout: float = START_TIMEOUT) -> ServeProcess:
    """Start `jackalope serve` on ephemeral ports and wait until its http, amqp and kafka
    listeners are announced; ``urls["kafka"]`` is ``kafka://host:port``."""
    cmd = [sys.executable, "-m", "jackalope", "serve", "--data-dir", str(data_dir)]
    cmd += ["--http-port", "0", "--amqp-port", "0", "--kafka-port", "0", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ)
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
            if {"http", "amqp", "kafka"} <= served.urls.keys():
                # keep draining its output so that a chatty broker never blocks on a full pipe
                import threading

                threading.Thread(target=_drain, args=(served,), daemon=True).start()
                return served
    proc.kill()
    proc.wait()
    raise AssertionError("jackalope serve did not announce a kafka listener:\n" + "".join(served.output))


def _drain(served: ServeProcess) -> None:
    assert served.proc.stdout is not None
    for line in served.proc.stdout:
        served.output.append(line)


def kafka_address(served: ServeProcess) -> str:
    return served.urls["kafka"].split("://", 1)[1]


@pytest.fixture
def serve_kafka(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    started: list[ServeProcess] = []

    def factory(*args: str, data_dir: Path | None = None) -> ServeProcess:
        p = start_serve_kafka(data_dir or tmp_path / "data", *args)
        started.append(p)
        return p

    yield factory
    for p in started:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()


# -- names and waiting ---------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{re.sub(r'[^a-zA-Z0-9._-]', '-', prefix)[:60]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> str:
    """A topic name no other test uses."""
    return unique("t-" + request.node.name)


@pytest.fixture
def group(request: pytest.FixtureRequest) -> str:
    return unique("g-" + request.node.name)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def recent_ms(offset_s: float = 0) -> int:
    """A timestamp within retention (now minus an hour, plus ``offset_s``), milliseconds."""
    return int((time.time() - 3600 + offset_s) * 1000)


# -- confluent-kafka helpers (used by many modules to set things up) -----------------------------


def sasl(broker: Any, user: str, password: str, mechanism: str = "PLAIN") -> dict[str, Any]:
    """A confluent-kafka configuration authenticating as ``user`` over SASL_PLAINTEXT."""
    return {
        "bootstrap.servers": broker.kafka_bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }


def confluent_admin(bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    # a bound for a busy machine (a module broker may still be starting), not a pace
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 30000})


def create_topic(
    bootstrap: str, name: str, partitions: int = 1, config: dict[str, str] | None = None
) -> None:
    """Create a topic with CreateTopics (confluent-kafka's AdminClient) and wait for it."""
    from confluent_kafka.admin import NewTopic

    admin = confluent_admin(bootstrap)
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=10,
        request_timeout=10,
    )
    futures[name].result(timeout=15)
    wait_until(
        lambda: (
            name in admin.list_topics(timeout=5).topics
            and len(admin.list_topics(timeout=5).topics[name].partitions) == partitions
        ),
        10,
        f"topic {name} in metadata",
    )


def confluent_producer(bootstrap: str, **extra: Any) -> Any:
    from confluent_kafka import Producer

    conf = {"bootstrap.servers": bootstrap, "linger.ms": 5, "message.timeout.ms": 15000}
    conf.update(extra)
    return Producer(conf)


def confluent_consumer(bootstrap: str, group_id: str | None = None, **extra: Any) -> Any:
    from confluent_kafka import Consumer

    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group_id or unique("g"),
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": SESSION_TIMEOUT_MS,
        "heartbeat.interval.ms": HEARTBEAT_MS,
    }
    conf.update(extra)
    return Consumer(conf)


def produce_confluent(
    bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None]], **kw: Any
) -> list[Any]:
    """Produce ``(key, value)`` pairs in order, flush, and return the delivered messages
    (raising on any delivery error)."""
    producer = confluent_producer(bootstrap, **kw)
    delivered: list[Any] = []
    errors: list[Any] = []

    def report(err: Any, msg: Any) -> None:
        (errors if err is not None else delivered).append(err if err is not None else msg)

    for key, value in records:
        producer.produce(topic, value=value, key=key, on_delivery=report)
        producer.poll(0)
    assert producer.flush(20) == 0, "records still undelivered after 20 s"
    assert not errors, errors
    return delivered


def consume_confluent(
    bootstrap: str,
    topic: str,
    count: int,
    partitions: list[int] | None = None,
    timeout: float = 15,
    **kw: Any,
) -> list[Any]:
    """Read ``count`` records from the start of ``topic`` (all partitions unless told) by
    assignment, no group membership."""
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    consumer = confluent_consumer(bootstrap, **kw)
    try:
        if partitions is None:
            md = consumer.list_topics(topic, timeout=10)
            partitions = sorted(md.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            out.append(msg)
        assert len(out) == count, f"read {len(out)} of {count} records from {topic}"
        return out
    finally:
        consumer.close()
