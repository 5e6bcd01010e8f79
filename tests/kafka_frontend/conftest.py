"""Embedded brokers and helpers for the admin, SASL and TLS tests of the Kafka front-end.

Tests drive the broker with the real client libraries (confluent-kafka, kafka-python,
aiokafka) and, where a client hides what the broker answered, with hand-built frames over a
socket (:mod:`tests.kafka_frontend.wire`).  Brokers are module-scoped; topic names are unique.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
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


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: ``(certfile, keyfile)``."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key
