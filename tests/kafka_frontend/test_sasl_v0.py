"""SaslHandshake v0: the SASL tokens follow as bare size-prefixed frames, answered with bare
frames (Kafka's SaslServerAuthenticator without the SaslAuthenticate headers)."""

from __future__ import annotations

import struct

import scramp
from confluent_kafka.admin import AdminClient

from jackalope import Broker
from tests.kafka_frontend.wire import WireClient, request

SASL_HANDSHAKE, METADATA = 17, 3


def _raw(client: WireClient, token: bytes) -> bytes:
    client.sock.sendall(struct.pack(">i", len(token)) + token)
    (size,) = struct.unpack(">i", client._read(4))
    return client._read(size)


def test_plain_with_bare_tokens(sasl_broker: Broker) -> None:
    with WireClient(sasl_broker.kafka_bootstrap) as client:
        response = client.call(request(SASL_HANDSHAKE, 0, mechanism="PLAIN"))
        assert response.error_code == 0
        assert _raw(client, b"\0guest\0guest") == b"", "PLAIN: an empty server token, as Kafka sends"
        assert client.call(request(METADATA, 1, topics=None)).brokers, "authenticated"


def test_scram_with_bare_tokens(sasl_broker: Broker) -> None:
    with WireClient(sasl_broker.kafka_bootstrap) as client:
        assert client.call(request(SASL_HANDSHAKE, 0, mechanism="SCRAM-SHA-256")).error_code == 0
        scram = scramp.ScramClient(["SCRAM-SHA-256"], "guest", "guest")
        scram.set_server_first(_raw(client, scram.get_client_first().encode()).decode())
        scram.set_server_final(_raw(client, scram.get_client_final().encode()).decode())
        assert client.call(request(METADATA, 1, topics=None)).brokers


def test_wrong_password_closes_the_connection(sasl_broker: Broker) -> None:
    with WireClient(sasl_broker.kafka_bootstrap) as client:
        assert client.call(request(SASL_HANDSHAKE, 0, mechanism="PLAIN")).error_code == 0
        token = b"\0guest\0wrong"
        client.sock.sendall(struct.pack(">i", len(token)) + token)
        assert client.at_eof(), "v0 cannot carry an error: the connection is closed"


def test_librdkafka_without_api_versions_uses_v0(sasl_broker: Broker) -> None:
    """librdkafka that does not ask for ApiVersions (``api.version.request=false``, an old
    ``broker.version.fallback``) authenticates with SaslHandshake v0 and bare tokens."""
    admin = AdminClient(
        {
            "bootstrap.servers": sasl_broker.kafka_bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN",
            "sasl.username": "guest",
            "sasl.password": "guest",
            "api.version.request": False,
            "broker.version.fallback": "0.10.2",
            "log_level": 0,
        }
    )
    metadata = admin.list_topics(timeout=10)
    assert 0 in metadata.brokers
