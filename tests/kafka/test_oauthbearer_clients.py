"""SASL/OAUTHBEARER with Kafka's unsecured validator (``--kafka-sasl-mechanisms OAUTHBEARER``
with ``--kafka-oauthbearer-unsecured true``): confluent-kafka's built-in unsecured JWS
(``sasl.oauthbearer.config``), aiokafka and kafka-python with a token provider, the wire
exchange of a refused token (JSON challenge, %x01, SASL_AUTHENTICATION_FAILED), the session
lifetime bounded by the token's expiry, ACL-only authorisation of a principal that is no broker
user, and the start-up refusal without the explicit setting."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from jackalope import Broker
from jackalope.kafka.oauthbearer import initial_response, unsecured_token
from jackalope.settings import SettingsError
from tests.kafka.conftest import unique, wait_until
from tests.kafka_frontend.wire import WireClient, entity, request

SASL_HANDSHAKE, SASL_AUTHENTICATE, METADATA = 17, 36, 3
SASL_AUTHENTICATION_FAILED, TOPIC_AUTHORIZATION_FAILED = 58, 29
REAUTH_MS = 600_000
REAUTH_LOGGER = "jackalope.kafka.handlers.sasl"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(
        tmp_path_factory.mktemp("oauthbearer") / "data",
        kafka_port=0,
        amqp_port=-1,
        kafka_sasl_mechanisms="PLAIN,OAUTHBEARER",
        kafka_oauthbearer_unsecured=True,
        kafka_connections_max_reauth_ms=REAUTH_MS,
    ).start()
    try:
        yield b
    finally:
        b.stop()


def _confluent(broker: Broker, principal: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": broker.kafka_bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "OAUTHBEARER",
        "enable.sasl.oauthbearer.unsecure.jwt": True,
        "sasl.oauthbearer.config": f"principal={principal} scope=kafka extension_traceId=t1",
        "log_level": 0,
    }


def _oauth_login(client: WireClient, token: str, version: int = 2) -> Any:
    assert client.call(request(SASL_HANDSHAKE, 1, mechanism="OAUTHBEARER")).error_code == 0
    return client.call(request(SASL_AUTHENTICATE, version, auth_bytes=initial_response(token)))


def _metadata(client: WireClient, topic: str) -> Any:
    named = entity(METADATA, 1, "MetadataRequestTopic", name=topic)
    return client.call(request(METADATA, 1, topics=[named])).topics


def test_confluent_kafka_unsecured_jws(broker: Broker) -> None:
    from confluent_kafka import Producer

    topic = unique("t-oauth-confluent")
    errors: list[Any] = []
    delivered: list[Any] = []
    # guest is an administrator-tagged broker user: a super user, whatever the mechanism
    producer = Producer({**_confluent(broker, "guest"), "error_cb": errors.append})
    producer.produce(
        topic, b"v", on_delivery=lambda err, msg: (errors if err else delivered).append(err or msg)
    )
    assert producer.flush(15) == 0
    assert len(delivered) == 1 and not errors, errors


def test_aiokafka_token_provider(broker: Broker) -> None:
    import asyncio

    from aiokafka import AIOKafkaProducer
    from aiokafka.abc import AbstractTokenProvider

    class Provider(AbstractTokenProvider):
        async def token(self) -> str:
            return unsecured_token("guest", lifetime_s=300)

        def extensions(self) -> dict[str, str]:
            return {"traceId": "aio"}

    async def run() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=broker.kafka_bootstrap,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="OAUTHBEARER",
            sasl_oauth_token_provider=Provider(),
        )
        await producer.start()
        try:
            meta = await producer.send_and_wait(unique("t-oauth-aio"), b"v")
            assert meta.offset == 0
        finally:
            await producer.stop()

    asyncio.run(run())


def test_aiokafka_expired_token_is_refused(broker: Broker) -> None:
    import asyncio

    from aiokafka import AIOKafkaProducer
    from aiokafka.abc import AbstractTokenProvider
    from aiokafka.errors import KafkaError

    class Expired(AbstractTokenProvider):
        async def token(self) -> str:
            return unsecured_token("guest", lifetime_s=60, issued_at=1_000_000)

    async def run() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=broker.kafka_bootstrap,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="OAUTHBEARER",
            sasl_oauth_token_provider=Expired(),
            request_timeout_ms=5000,
        )
        try:
            with pytest.raises(KafkaError):
                await producer.start()
        finally:
            await producer.stop()

    asyncio.run(run())


def test_kafka_python_token_provider(broker: Broker) -> None:
    from kafka.admin import KafkaAdminClient
    from kafka.net.sasl.oauth import AbstractTokenProvider

    class Provider(AbstractTokenProvider):
        def token(self) -> str:
            return unsecured_token("guest", lifetime_s=300)

    admin = KafkaAdminClient(
        bootstrap_servers=broker.kafka_bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="OAUTHBEARER",
        sasl_oauth_token_provider=Provider(),
    )
    try:
        assert isinstance(admin.list_topics(), list)
    finally:
        admin.close()


def test_refused_token_on_the_wire(broker: Broker) -> None:
    with WireClient(broker.kafka_bootstrap) as client:
        expired = unsecured_token("guest", lifetime_s=60, issued_at=1_000_000)
        challenge = _oauth_login(client, expired)
        assert challenge.error_code == 0  # RFC 7628: the error comes as a challenge
        assert json.loads(challenge.auth_bytes) == {"status": "invalid_token"}
        failed = client.call(request(SASL_AUTHENTICATE, 2, auth_bytes=b"\x01"))
        assert failed.error_code == SASL_AUTHENTICATION_FAILED
        assert "expired" in failed.error_message
        assert client.at_eof()


def test_session_lifetime_is_the_tokens(broker: Broker) -> None:
    with WireClient(broker.kafka_bootstrap) as client:
        response = _oauth_login(client, unsecured_token("guest", lifetime_s=60))
        assert response.error_code == 0 and response.auth_bytes == b""
        assert timedelta(seconds=55) < response.session_lifetime <= timedelta(seconds=60)
    with WireClient(broker.kafka_bootstrap) as client:  # connections.max.reauth.ms is shorter
        response = _oauth_login(client, unsecured_token("guest", lifetime_s=3600))
        assert response.error_code == 0
        assert response.session_lifetime == timedelta(milliseconds=REAUTH_MS)


def test_a_principal_that_is_no_user_has_only_acls(broker: Broker) -> None:
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        AdminClient,
        NewTopic,
        ResourcePatternType,
        ResourceType,
    )

    topic = unique("t-oauth-acl")
    guest = AdminClient(_confluent(broker, "guest"))
    guest.create_topics([NewTopic(topic, 1)])[topic].result(timeout=15)
    stranger = unique("stranger")
    with WireClient(broker.kafka_bootstrap) as client:
        assert _oauth_login(client, unsecured_token(stranger)).error_code == 0
        topics = _metadata(client, topic)
        assert topics[0].error_code == TOPIC_AUTHORIZATION_FAILED
        binding = AclBinding(
            ResourceType.TOPIC,
            topic,
            ResourcePatternType.LITERAL,
            f"User:{stranger}",
            "*",
            AclOperation.DESCRIBE,
            AclPermissionType.ALLOW,
        )
        guest.create_acls([binding])[binding].result(timeout=15)
        topics = _metadata(client, topic)
        assert topics[0].error_code == 0


def test_oauthbearer_needs_the_explicit_unsecured_setting(tmp_path: Any) -> None:
    with pytest.raises(SettingsError, match="kafka_oauthbearer_unsecured"):
        Broker(tmp_path / "data", kafka_port=0, amqp_port=-1, kafka_sasl_mechanisms="OAUTHBEARER")


def test_librdkafka_reauthenticates_before_the_token_expires(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    """The session ends with the token (2 s): librdkafka re-authenticates on the same connection
    before then (with the token its oauth_cb gives); the producer keeps producing."""
    from confluent_kafka import Producer

    caplog.set_level(logging.INFO, logger="jackalope.kafka")
    tokens: list[str] = []

    def oauth_cb(_config: Any) -> tuple[str, float]:
        token = unsecured_token("guest", lifetime_s=2)
        tokens.append(token)
        return token, time.time() + 2

    conf = _confluent(broker, "guest")
    del conf["enable.sasl.oauthbearer.unsecure.jwt"], conf["sasl.oauthbearer.config"]
    producer = Producer({**conf, "oauth_cb": oauth_cb})
    topic = unique("t-oauth-reauth")
    errors: list[Any] = []

    def reauthenticated() -> bool:
        producer.produce(topic, b"v", on_delivery=lambda err, _msg: err and errors.append(err))
        producer.poll(0.1)
        return any(
            r.name == REAUTH_LOGGER
            and r.getMessage() == "kafka SASL re-authentication"
            and getattr(r, "mechanism", None) == "OAUTHBEARER"
            for r in caplog.records
        )

    wait_until(reauthenticated, 15, "an OAUTHBEARER re-authentication")
    assert producer.flush(15) == 0 and not errors, errors
    assert tokens
