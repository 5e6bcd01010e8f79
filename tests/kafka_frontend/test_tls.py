"""TLS on the Kafka port (with SCRAM-SHA-512 inside it): confluent-kafka, kafka-python, aiokafka."""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from jackalope import Broker
from jackalope.datadir import StartupError
from tests.certs import TestCA
from tests.kafka_frontend.conftest import unique


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory, tls_ca: TestCA) -> Iterator[Broker]:
    server = tls_ca.server()
    b = Broker(
        tmp_path_factory.mktemp("tls-broker") / "data",
        kafka_port=0,
        amqp_port=-1,
        kafka_tls_certfile=str(server.certfile),
        kafka_tls_keyfile=str(server.keyfile),
        kafka_sasl_mechanisms="SCRAM-SHA-512",
    ).start()
    try:
        yield b
    finally:
        b.stop()


async def test_sasl_ssl_with_each_client(tls_broker: Broker, tls_ca: TestCA) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.helpers import create_ssl_context

    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    cert = tls_ca.cafile
    assert tls_broker.addresses["kafka"].startswith("kafka+ssl://")
    topic = unique("tls")

    p = Producer(
        {
            "bootstrap.servers": tls_broker.kafka_bootstrap,
            "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(cert),
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "guest",
            "sasl.password": "guest",
        }
    )
    p.produce(topic, value=b"confluent")
    assert p.flush(10) == 0

    common = {
        "bootstrap_servers": tls_broker.kafka_bootstrap,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "guest",
        "sasl_plain_password": "guest",
    }
    kp = KafkaProducer(ssl_cafile=str(cert), **common)
    kp.send(topic, b"kafka-python").get(timeout=10)
    kp.close()

    aio = AIOKafkaProducer(ssl_context=create_ssl_context(cafile=str(cert)), **common)
    await aio.start()
    try:
        await aio.send_and_wait(topic, b"aiokafka")
    finally:
        await aio.stop()

    consumer = KafkaConsumer(ssl_cafile=str(cert), consumer_timeout_ms=5000, **common)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    got = [r.value for _, r in zip(range(3), consumer, strict=False)]
    consumer.close()
    assert sorted(got) == [b"aiokafka", b"confluent", b"kafka-python"]


def test_tls_refuses_an_untrusted_client_handshake(tls_broker: Broker) -> None:
    import socket

    host, port = tls_broker.kafka_bootstrap.rsplit(":", 1)
    context = ssl.create_default_context()  # the test CA is not trusted here
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname=host)


def test_a_missing_kafka_key_file_is_a_startup_error_naming_it(tmp_path: Path, tls_ca: TestCA) -> None:
    server = tls_ca.server()
    missing = tmp_path / "missing-key.pem"
    broker = Broker(
        tmp_path / "data",
        amqp_port=-1,
        kafka_tls_certfile=str(server.certfile),
        kafka_tls_keyfile=str(missing),
    )
    message = f"cannot load the Kafka TLS key file {missing}: No such file"
    with pytest.raises(StartupError, match=re.escape(message)):
        broker.start()
