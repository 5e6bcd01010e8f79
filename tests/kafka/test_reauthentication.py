"""KIP-368 SASL re-authentication (``--kafka-connections-max-reauth-ms``, Kafka's
connections.max.reauth.ms): the session lifetime in SaslAuthenticate v1+, a new
SaslHandshake + SaslAuthenticate on an authenticated connection, the refusals (another
principal, another mechanism, more than once a second), the close of a connection used after
its session ended, and real clients that keep working across several lifetimes."""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from kio.schema.describe_configs.v1.request import DescribeConfigsResource

from jackalope import Broker
from tests.amqp.access_admin import HttpAdmin
from tests.kafka.conftest import unique, wait_until
from tests.kafka_frontend.wire import WireClient, request

MECHANISMS = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
LIFETIME_MS = 3000  # clients re-authenticate at 85-95 % of it: 150 to 450 ms before the end
WIRE_LIFETIME_MS = 60_000
SASL_HANDSHAKE, SASL_AUTHENTICATE, METADATA, DESCRIBE_CONFIGS = 17, 36, 3, 32
SASL_AUTHENTICATION_FAILED, ILLEGAL_SASL_STATE = 58, 34
REAUTH_LOGGER = "jackalope.kafka.handlers.sasl"


def _start(tmp: Any, lifetime_ms: int) -> Broker:
    b = Broker(
        tmp / "data",
        kafka_port=0,
        amqp_port=-1,
        kafka_sasl_mechanisms=MECHANISMS,
        kafka_connections_max_reauth_ms=lifetime_ms,
    ).start()
    HttpAdmin(b.http_url).add_user("other", "other-pw", tags="administrator")
    return b


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """Sessions of LIFETIME_MS: the real clients re-authenticate within the test."""
    b = _start(tmp_path_factory.mktemp("reauth"), LIFETIME_MS)
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="module")
def wire_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """Sessions of a minute: no session of the hand-made exchanges ends under them."""
    b = _start(tmp_path_factory.mktemp("reauth-wire"), WIRE_LIFETIME_MS)
    try:
        yield b
    finally:
        b.stop()


def _login(client: WireClient, user: str = "guest", password: str = "guest", mechanism: str = "PLAIN") -> Any:
    assert client.call(request(SASL_HANDSHAKE, 1, mechanism=mechanism)).error_code == 0
    return client.call(request(SASL_AUTHENTICATE, 2, auth_bytes=f"\0{user}\0{password}".encode()))


def _metadata_ok(client: WireClient) -> bool:
    return bool(client.call(request(METADATA, 1, topics=())).brokers)


def test_session_lifetime_and_reauthentication_on_the_wire(wire_broker: Broker) -> None:
    lifetime = timedelta(milliseconds=WIRE_LIFETIME_MS)
    with WireClient(wire_broker.kafka_bootstrap) as client:
        response = _login(client)
        assert response.error_code == 0 and response.session_lifetime == lifetime
        assert _metadata_ok(client)
        started = time.monotonic()  # before the broker's start of the re-authentication
        again = _login(client)  # the same principal: the session starts over
        assert again.error_code == 0 and again.session_lifetime == lifetime
        assert _metadata_ok(client)
        response = client.call(request(SASL_HANDSHAKE, 1, mechanism="PLAIN"))
        if time.monotonic() - started < 1:
            # a second re-authentication within a second is out of place, as in Kafka
            assert response.error_code == ILLEGAL_SASL_STATE
            assert _metadata_ok(client)


def test_v0_authenticate_has_no_lifetime_field_but_the_session_expires(wire_broker: Broker) -> None:
    with WireClient(wire_broker.kafka_bootstrap) as client:
        assert client.call(request(SASL_HANDSHAKE, 1, mechanism="PLAIN")).error_code == 0
        response = client.call(request(SASL_AUTHENTICATE, 0, auth_bytes=b"\0guest\0guest"))
        assert response.error_code == 0
        assert _login(client).error_code == 0  # re-authenticating with v2 is allowed too


def test_reauthentication_with_bare_tokens(wire_broker: Broker) -> None:
    """After SaslHandshake v0 the re-authentication's tokens are bare frames, as the first
    authentication's are; a wrong one closes the connection."""
    with WireClient(wire_broker.kafka_bootstrap) as client:
        assert _login(client).error_code == 0
        assert client.call(request(SASL_HANDSHAKE, 0, mechanism="PLAIN")).error_code == 0
        assert _raw(client, b"\0guest\0guest") == b""
        assert _metadata_ok(client)
    with WireClient(wire_broker.kafka_bootstrap) as client:
        assert _login(client).error_code == 0
        assert client.call(request(SASL_HANDSHAKE, 0, mechanism="PLAIN")).error_code == 0
        token = b"\0other\0other-pw"
        client.sock.sendall(struct.pack(">i", len(token)) + token)
        assert client.at_eof(), "another principal: the connection is closed"


def _raw(client: WireClient, token: bytes) -> bytes:
    client.sock.sendall(struct.pack(">i", len(token)) + token)
    (size,) = struct.unpack(">i", client._read(4))
    return client._read(size)


def test_another_principal_is_refused_and_the_connection_closed(wire_broker: Broker) -> None:
    with WireClient(wire_broker.kafka_bootstrap) as client:
        assert _login(client).error_code == 0
        response = _login(client, "other", "other-pw")
        assert response.error_code == SASL_AUTHENTICATION_FAILED
        assert response.error_message == (
            "Cannot change principals during re-authentication from User:guest: User:other"
        )
        assert client.at_eof()


def test_another_mechanism_is_refused(wire_broker: Broker) -> None:
    with WireClient(wire_broker.kafka_bootstrap) as client:
        assert _login(client).error_code == 0
        assert client.call(request(SASL_HANDSHAKE, 1, mechanism="SCRAM-SHA-256")).error_code == 0
        response = client.call(request(SASL_AUTHENTICATE, 2, auth_bytes=b"n,,n=guest,r=abc"))
        assert response.error_code == SASL_AUTHENTICATION_FAILED
        assert "not supported for re-authentication of mechanism 'PLAIN'" in response.error_message
        assert client.at_eof()


def test_a_wrong_password_at_reauthentication_closes(wire_broker: Broker) -> None:
    with WireClient(wire_broker.kafka_bootstrap) as client:
        assert _login(client).error_code == 0
        response = _login(client, "guest", "wrong")
        assert response.error_code == SASL_AUTHENTICATION_FAILED
        assert "during re-authentication due to invalid credentials" in response.error_message
        assert client.at_eof()


@pytest.fixture(scope="module")
def short_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(
        tmp_path_factory.mktemp("short") / "data",
        kafka_port=0,
        amqp_port=-1,
        kafka_sasl_mechanisms="PLAIN",
        kafka_connections_max_reauth_ms=1,
    ).start()
    try:
        yield b
    finally:
        b.stop()


def test_a_request_after_the_session_ended_closes_the_connection(short_broker: Broker) -> None:
    with WireClient(short_broker.kafka_bootstrap) as client:
        response = _login(client)
        assert response.error_code == 0 and response.session_lifetime == timedelta(milliseconds=1)
        time.sleep(0.01)  # the 1 ms session is over
        client.send(request(METADATA, 1, topics=()))
        assert client.at_eof()
    with WireClient(short_broker.kafka_bootstrap) as client:
        assert _login(client).error_code == 0
        time.sleep(0.01)
        assert _login(client).error_code == 0, "re-authenticating is allowed after the end"


def test_the_setting_is_a_broker_config(wire_broker: Broker) -> None:
    with WireClient(wire_broker.kafka_bootstrap) as client:
        assert _login(client).error_code == 0
        response = client.call(
            request(
                DESCRIBE_CONFIGS,
                1,
                resources=(
                    DescribeConfigsResource(
                        resource_type=4, resource_name="0", configuration_keys=("connections.max.reauth.ms",)
                    ),
                ),
                include_synonyms=False,
            )
        )
    (result,) = response.results
    assert [(c.name, c.value) for c in result.configs] == [
        ("connections.max.reauth.ms", str(WIRE_LIFETIME_MS))
    ]


def _reauthentications(caplog: pytest.LogCaptureFixture, mechanism: str) -> int:
    return sum(
        1
        for r in caplog.records
        if r.name == REAUTH_LOGGER
        and r.getMessage() == "kafka SASL re-authentication"
        and getattr(r, "mechanism", None) == mechanism
    )


def test_clients_keep_working_across_lifetimes(broker: Broker, caplog: pytest.LogCaptureFixture) -> None:
    """confluent-kafka (librdkafka) over SCRAM-SHA-512 and kafka-python over SCRAM-SHA-256
    produce until the broker has seen each re-authenticate and their first sessions would
    have ended, with no delivery failing and no connection closed for an expired session."""
    from confluent_kafka import Producer

    from kafka import KafkaProducer

    caplog.set_level(logging.INFO, logger="jackalope.kafka")
    topic = unique("reauth")
    confluent = Producer(
        {
            "bootstrap.servers": broker.kafka_bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "guest",
            "sasl.password": "guest",
            "linger.ms": 0,
            "log_level": 0,
        }
    )
    kafka_python = KafkaProducer(
        bootstrap_servers=broker.kafka_bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_plain_username="guest",
        sasl_plain_password="guest",
    )
    kafka_python.send(topic, b"first").get(timeout=10)  # both are connected and authenticated now
    confluent.list_topics(timeout=10)
    past_first_sessions = time.monotonic() + LIFETIME_MS / 1000 * 1.1
    failures: list[Any] = []
    delivered: list[Any] = []

    def report(err: Any, msg: Any) -> None:
        (failures if err is not None else delivered).append(err or msg)

    def both_reauthenticated() -> bool:
        confluent.produce(topic, b"confluent", on_delivery=report)
        confluent.poll(0)
        kafka_python.send(topic, b"kafka-python").get(timeout=10)
        return (
            time.monotonic() > past_first_sessions
            and _reauthentications(caplog, "SCRAM-SHA-512") >= 1
            and _reauthentications(caplog, "SCRAM-SHA-256") >= 1
        )

    try:
        wait_until(both_reauthenticated, 30, "a re-authentication of each client", interval=0.1)
        assert confluent.flush(10) == 0
    finally:
        kafka_python.close()
    assert not failures, failures
    assert delivered
    expired = [r for r in caplog.records if "SASL session expired" in str(getattr(r, "reason", ""))]
    assert not expired, "no connection was closed for an expired session"
