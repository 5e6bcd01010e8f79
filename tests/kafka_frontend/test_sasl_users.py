"""Kafka SASL logs in the broker's users (the same store as AMQP's and the HTTP API's): a user
made over the HTTP API with a password has SCRAM credentials; one imported with only a
RabbitMQ password hash logs in with PLAIN, and SCRAM fails for it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer

from jackalope import Broker
from tests.amqp.access_admin import HttpAdmin
from tests.kafka_frontend.conftest import unique

MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

RABBITMQ_HASH = "A2dFmf+ImwtiKO0ykz6fDNNjLNGlZ/M+6RrktTZ+DBZRLrkW"  # "s3cret", by RabbitMQ 3.10.8


def config(broker: Broker, mechanism: str, user: str, password: str, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": broker.kafka_bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": mechanism,
        "sasl.username": user,
        "sasl.password": password,
        "log_level": 0,
        **extra,
    }


def produces(broker: Broker, mechanism: str, user: str, password: str) -> KafkaError | None:
    """None if a record is produced as ``user``, else the client's authentication error."""
    errors: list[KafkaError] = []
    p = Producer(
        config(broker, mechanism, user, password, error_cb=errors.append, **{"message.timeout.ms": 10000})
    )
    p.produce(unique("users"), value=b"v")
    deadline = time.monotonic() + 10
    while p.flush(0.05) and not errors and time.monotonic() < deadline:
        pass
    auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
    if auth:
        return auth[0]
    assert p.flush(10) == 0, errors
    return None


@pytest.fixture(scope="module")
def admin(sasl_broker: Broker) -> HttpAdmin:
    return HttpAdmin(sasl_broker.http_url)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_a_user_made_over_http_logs_in_with_every_mechanism(
    sasl_broker: Broker, admin: HttpAdmin, mechanism: str
) -> None:
    name = unique("alice")
    admin.ok("PUT", f"/users/{name}", {"password": "alices-pw", "tags": ""})
    assert produces(sasl_broker, mechanism, name, "alices-pw") is None
    error = produces(sasl_broker, mechanism, name, "wrong")
    assert error is not None and "invalid credentials" in error.str()
    admin.ok("DELETE", f"/users/{name}")
    assert produces(sasl_broker, mechanism, name, "alices-pw") is not None


def test_a_user_with_only_a_rabbitmq_hash_has_plain_but_not_scram(
    sasl_broker: Broker, admin: HttpAdmin
) -> None:
    name = unique("imported")
    admin.ok(
        "PUT",
        f"/users/{name}",
        {"password_hash": RABBITMQ_HASH, "hashing_algorithm": "rabbit_password_hashing_sha256"},
    )
    assert produces(sasl_broker, "PLAIN", name, "s3cret") is None
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        error = produces(sasl_broker, mechanism, name, "s3cret")
        assert error is not None and "invalid credentials" in error.str()
    admin.ok("PUT", f"/users/{name}", {"password": "s3cret"})  # setting the password makes them
    assert produces(sasl_broker, "SCRAM-SHA-256", name, "s3cret") is None
