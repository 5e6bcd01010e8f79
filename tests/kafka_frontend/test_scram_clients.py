"""SCRAM-SHA-256/512 with short salts: credentials set by AlterUserScramCredentials with a
4-byte salt (confluent's ``test_user_scram_credentials`` uses ``b"salt"``; Kafka takes any
salt), then confluent-kafka, kafka-python and aiokafka log in with them over SASL_PLAINTEXT."""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from jackalope import Broker
from tests.kafka_frontend.conftest import unique
from tests.kafka_frontend.wire import WireClient, request

MECHANISMS = {"SCRAM-SHA-256": ScramMechanism.SCRAM_SHA_256, "SCRAM-SHA-512": ScramMechanism.SCRAM_SHA_512}
ALTER_USER_SCRAM_CREDENTIALS = 51
SASL_HANDSHAKE, SASL_AUTHENTICATE = 17, 36


def _admin(broker: Broker) -> AdminClient:
    return AdminClient(
        {
            "bootstrap.servers": broker.kafka_bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN",
            "sasl.username": "guest",
            "sasl.password": "guest",
            "log_level": 0,
        }
    )


@pytest.fixture(scope="module")
def short_salt_user(sasl_broker: Broker) -> str:
    """A user whose SCRAM credentials (both mechanisms) have the salt ``b"salt"``."""
    name = unique("short-salt")
    admin = _admin(sasl_broker)
    for mechanism in MECHANISMS:
        info = ScramCredentialInfo(MECHANISMS[mechanism], 10000)
        upsertion = UserScramCredentialUpsertion(name, info, _password(mechanism).encode(), b"salt")
        admin.alter_user_scram_credentials([upsertion])[name].result(timeout=15)
    return name


def _password(mechanism: str) -> str:
    return "pw-256" if mechanism == "SCRAM-SHA-256" else "pw-512"


@pytest.mark.parametrize("mechanism", sorted(MECHANISMS))
async def test_each_client_logs_in_with_a_short_salt(
    sasl_broker: Broker, short_salt_user: str, mechanism: str
) -> None:
    from aiokafka.conn import create_conn
    from confluent_kafka import Producer
    from kafka.admin import KafkaAdminClient

    password = _password(mechanism)
    errors: list[Any] = []
    producer = Producer(
        {
            "bootstrap.servers": sasl_broker.kafka_bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": mechanism,
            "sasl.username": short_salt_user,
            "sasl.password": password,
            "error_cb": errors.append,
            "log_level": 0,
        }
    )
    metadata = producer.list_topics(timeout=10)  # raises unless authenticated
    assert metadata.brokers and not errors, errors

    kafka_python = KafkaAdminClient(
        bootstrap_servers=sasl_broker.kafka_bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_plain_username=short_salt_user,
        sasl_plain_password=password,
    )
    try:
        assert kafka_python.describe_cluster()["brokers"]
    finally:
        kafka_python.close()

    host, port = sasl_broker.kafka_bootstrap.rsplit(":", 1)
    conn = await create_conn(
        host,
        int(port),
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_plain_username=short_salt_user,
        sasl_plain_password=password,
    )
    conn.close()


def test_wrong_password_with_a_short_salt_is_refused(sasl_broker: Broker, short_salt_user: str) -> None:
    from confluent_kafka import KafkaError, Producer

    errors: list[Any] = []
    producer = Producer(
        {
            "bootstrap.servers": sasl_broker.kafka_bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": short_salt_user,
            "sasl.password": "pw-512",
            "error_cb": errors.append,
            "log_level": 0,
        }
    )
    deadline = time.monotonic() + 10
    while not errors and time.monotonic() < deadline:
        producer.poll(0.05)
    assert errors and errors[0].code() == KafkaError._AUTHENTICATION, errors
    assert "invalid credentials" in errors[0].str()


def _plain_login(client: WireClient) -> None:
    assert client.call(request(SASL_HANDSHAKE, 1, mechanism="PLAIN")).error_code == 0
    assert client.call(request(SASL_AUTHENTICATE, 2, auth_bytes=b"\0guest\0guest")).error_code == 0


def test_an_empty_salt_is_refused(sasl_broker: Broker) -> None:
    from kio.schema.alter_user_scram_credentials.v0.request import ScramCredentialUpsertion

    name = unique("empty-salt")
    with WireClient(sasl_broker.kafka_bootstrap) as client:
        _plain_login(client)
        upsertion = ScramCredentialUpsertion(
            name=name, mechanism=1, iterations=4096, salt=b"", salted_password=b"x" * 32
        )
        response = client.call(
            request(ALTER_USER_SCRAM_CREDENTIALS, 0, deletions=(), upsertions=(upsertion,))
        )
    (result,) = response.results
    assert result.error_code == 93  # UNACCEPTABLE_CREDENTIAL
    assert result.error_message == "Salt must not be empty"
