"""SASL PLAIN and SCRAM-SHA-256/512 with confluent-kafka, kafka-python and aiokafka, and what
the broker answers to a wrong password, an unknown mechanism and requests out of order."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer

from jackalope import Broker
from tests.kafka_frontend.conftest import unique
from tests.kafka_frontend.wire import WireClient, request

MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
SASL_HANDSHAKE, SASL_AUTHENTICATE, METADATA = 17, 36, 3


def confluent_config(broker: Broker, mechanism: str, password: str, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": broker.kafka_bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": mechanism,
        "sasl.username": "guest",
        "sasl.password": password,
        # the clients outlive the module's broker until collected: keep their reconnect
        # attempts out of the test output (errors reach the tests through error_cb)
        "log_level": 0,
        **extra,
    }


def kafka_python_config(broker: Broker, mechanism: str, password: str) -> dict[str, Any]:
    return {
        "bootstrap_servers": broker.kafka_bootstrap,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "guest",
        "sasl_plain_password": password,
    }


def produce_confluent(config: dict[str, Any], topic: str) -> None:
    p = Producer(config)
    p.produce(topic, value=b"confluent")
    assert p.flush(10) == 0


@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_each_client_authenticates(sasl_broker: Broker, mechanism: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from kafka import KafkaProducer

    topic = unique("sasl")
    produce_confluent(confluent_config(sasl_broker, mechanism, "guest"), topic)

    kp = KafkaProducer(**kafka_python_config(sasl_broker, mechanism, "guest"))
    kp.send(topic, b"kafka-python").get(timeout=10)
    kp.close()

    aio = AIOKafkaProducer(**kafka_python_config(sasl_broker, mechanism, "guest"))
    await aio.start()
    try:
        await aio.send_and_wait(topic, b"aiokafka")
    finally:
        await aio.stop()

    consumer = AIOKafkaConsumer(
        topic, auto_offset_reset="earliest", **kafka_python_config(sasl_broker, mechanism, "guest")
    )
    await consumer.start()
    try:
        got: list[bytes] = []
        while len(got) < 3:
            batch = await consumer.getmany(timeout_ms=5000)
            assert batch, "records within 5 s"
            got += [r.value for records in batch.values() for r in records]
    finally:
        await consumer.stop()
    assert sorted(got) == [b"aiokafka", b"confluent", b"kafka-python"]


@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_wrong_password_is_refused(
    sasl_broker: Broker, mechanism: str, caplog: pytest.LogCaptureFixture
) -> None:
    from aiokafka.conn import create_conn
    from aiokafka.errors import SaslAuthenticationFailed
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError as KafkaPythonError

    errors: list[KafkaError] = []
    p = Producer(confluent_config(sasl_broker, mechanism, "wrong", error_cb=errors.append))
    deadline = time.monotonic() + 10
    while not errors and time.monotonic() < deadline:
        p.poll(0.05)
    assert errors and errors[0].code() == KafkaError._AUTHENTICATION, errors
    assert "invalid credentials" in errors[0].str()

    host, port = sasl_broker.kafka_bootstrap.rsplit(":", 1)
    with pytest.raises(SaslAuthenticationFailed, match="invalid credentials"):
        await create_conn(
            host,
            int(port),
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism=mechanism,
            sasl_plain_username="guest",
            sasl_plain_password="wrong",
        )

    caplog.set_level(logging.ERROR, logger="kafka")
    with pytest.raises(KafkaPythonError):
        KafkaAdminClient(**kafka_python_config(sasl_broker, mechanism, "wrong"), bootstrap_timeout_ms=1000)
    assert "SaslAuthenticationFailedError" in caplog.text

    # the broker keeps serving everyone else
    produce_confluent(confluent_config(sasl_broker, mechanism, "guest"), unique("after-failure"))


def _handshake(client: WireClient, mechanism: str) -> Any:
    return client.call(request(SASL_HANDSHAKE, 1, mechanism=mechanism))


def _authenticate(client: WireClient, token: bytes, version: int = 2) -> Any:
    return client.call(request(SASL_AUTHENTICATE, version, auth_bytes=token))


def test_plain_on_the_wire(sasl_broker: Broker) -> None:
    with WireClient(sasl_broker.kafka_bootstrap) as client:
        response = _handshake(client, "PLAIN")
        assert response.error_code == 0
        assert set(response.mechanisms) == set(MECHANISMS)
        response = _authenticate(client, b"\0guest\0guest", version=0)
        assert response.error_code == 0 and response.auth_bytes == b""
        # authenticated: other APIs are served; a second handshake is out of place
        metadata = client.call(request(METADATA, 1, topics=()))
        assert [b.node_id for b in metadata.brokers] == [0]
        assert _handshake(client, "PLAIN").error_code == 34  # ILLEGAL_SASL_STATE

    with WireClient(sasl_broker.kafka_bootstrap) as client:
        assert _handshake(client, "PLAIN").error_code == 0
        response = _authenticate(client, b"\0guest\0nope")
        assert response.error_code == 58  # SASL_AUTHENTICATION_FAILED
        assert "invalid credentials" in response.error_message
        assert client.at_eof(), "the broker closes the connection after a failed authentication"

    with WireClient(sasl_broker.kafka_bootstrap) as client:
        assert _handshake(client, "PLAIN").error_code == 0
        response = _authenticate(client, b"admin\0guest\0guest")
        assert response.error_code == 58 and "authorization id" in response.error_message
        assert client.at_eof()


def test_scram_unknown_user_fails_at_the_proof(sasl_broker: Broker) -> None:
    import scramp

    with WireClient(sasl_broker.kafka_bootstrap) as client:
        assert _handshake(client, "SCRAM-SHA-256").error_code == 0
        scram = scramp.ScramClient(["SCRAM-SHA-256"], "nobody", "secret")
        first = _authenticate(client, scram.get_client_first().encode())
        assert first.error_code == 0, "an unknown user is not revealed by the first step"
        scram.set_server_first(first.auth_bytes.decode())
        final = _authenticate(client, scram.get_client_final().encode())
        assert final.error_code == 58 and "invalid credentials" in final.error_message
        assert client.at_eof()

    with WireClient(sasl_broker.kafka_bootstrap) as client:
        assert _handshake(client, "SCRAM-SHA-512").error_code == 0
        scram = scramp.ScramClient(["SCRAM-SHA-512"], "guest", "guest")
        first = _authenticate(client, scram.get_client_first().encode(), version=1)
        scram.set_server_first(first.auth_bytes.decode())
        final = _authenticate(client, scram.get_client_final().encode(), version=1)
        assert final.error_code == 0
        scram.set_server_final(final.auth_bytes.decode())  # verifies the server's signature


def test_unsupported_mechanism_and_out_of_order_requests(sasl_broker: Broker) -> None:
    with WireClient(sasl_broker.kafka_bootstrap) as client:
        response = _handshake(client, "GSSAPI")
        assert response.error_code == 33  # UNSUPPORTED_SASL_MECHANISM
        assert set(response.mechanisms) == set(MECHANISMS)
        assert client.at_eof()

    with WireClient(sasl_broker.kafka_bootstrap) as client:
        response = _authenticate(client, b"\0guest\0guest")
        assert response.error_code == 34  # ILLEGAL_SASL_STATE: no handshake yet
        assert client.at_eof()

    with WireClient(sasl_broker.kafka_bootstrap) as client:
        client.send(request(METADATA, 1, topics=()))
        assert client.at_eof(), "nothing but ApiVersions and SASL before authentication"


def test_handshake_without_sasl_enabled(bootstrap: str) -> None:
    with WireClient(bootstrap) as client:
        response = _handshake(client, "PLAIN")
        assert response.error_code == 34 and list(response.mechanisms) == []
        assert client.call(request(METADATA, 1, topics=())).brokers
