"""Embedded brokers and helpers for the admin, SASL and TLS tests of the Kafka front-end.

Tests drive the broker with the real client libraries (confluent-kafka, kafka-python,
aiokafka) and, where a client hides what the broker answered, with hand-built frames over a
socket (:mod:`tests.kafka_frontend.wire`).  Brokers are module-scoped; topic names are unique.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jackalope import Broker

ALL_MECHANISMS = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_until(predicate: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(tmp_path_factory.mktemp("admin") / "data", kafka_port=0, amqp_port=-1).start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="module")
def bootstrap(broker: Broker) -> str:
    return broker.kafka_bootstrap


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(
        tmp_path_factory.mktemp("sasl") / "data",
        kafka_port=0,
        amqp_port=-1,
        kafka_sasl_mechanisms=ALL_MECHANISMS,
    ).start()
    try:
        yield b
    finally:
        b.stop()
