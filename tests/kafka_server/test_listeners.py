"""Several Kafka listeners in one broker (kafka_listeners), and anonymous access only where
kafka_anonymous allows it.

One embedded broker has PLAINTEXT, SSL and SASL_PLAINTEXT listeners: records produced on one
are consumed on another, and each listener's Metadata, FindCoordinator and DescribeCluster
name that listener's address.  The settings that cannot go together are refused by name.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, ConfigResource

from jackalope import Broker
from jackalope.kafka.listeners import ListenerSpec, anonymous_allowed
from jackalope.settings import Settings, SettingsError
from tests.certs import TestCA
from tests.conftest import http_json, run_serve
from tests.kafka_frontend.conftest import unique
from tests.kafka_frontend.wire import WireClient, request

METADATA, SASL_HANDSHAKE, DESCRIBE_CLUSTER, FIND_COORDINATOR = 3, 17, 60, 10
LISTENERS = "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0"


# -- settings ----------------------------------------------------------------------------------


def test_listener_specs() -> None:
    s = Settings(
        kafka_listeners="INTERNAL://:0,SASL_SSL://[::1]:9094",
        kafka_listener_security_protocol_map="internal:plaintext",
        kafka_advertised_listeners="SASL_SSL://broker.example:19094",
        kafka_tls_certfile="c.pem",
        kafka_tls_keyfile="k.pem",
        kafka_sasl_mechanisms="PLAIN",
    )
    assert s.kafka_listener_specs() == (
        ListenerSpec("INTERNAL", "PLAINTEXT", "127.0.0.1", 0),
        ListenerSpec("SASL_SSL", "SASL_SSL", "::1", 9094, "broker.example", 19094),
    )
    # the single-listener settings describe one listener
    legacy = Settings(kafka_port=0, kafka_sasl_mechanisms="PLAIN", kafka_advertised_host="h")
    assert legacy.kafka_listener_specs() == (
        ListenerSpec("SASL_PLAINTEXT", "SASL_PLAINTEXT", "127.0.0.1", 0, "h"),
    )
    assert Settings(kafka_port=-1).kafka_listener_specs() == ()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kafka_port": 0}, "kafka_port and kafka_listeners both describe"),
        ({"kafka_advertised_host": "h"}, "kafka_advertised_host and kafka_listeners"),
        ({"kafka_listeners": "EXTERNAL://:0"}, "listener EXTERNAL is not a security protocol"),
        ({"kafka_listeners": "SSL://:0"}, "listener SSL uses TLS: it needs kafka_tls_certfile"),
        ({"kafka_tls_certfile": "c", "kafka_tls_keyfile": "k"}, "no listener of kafka_listeners uses SSL"),
        ({"kafka_listeners": "SASL_PLAINTEXT://:0"}, "kafka_sasl_mechanisms must name its mechanisms"),
        ({"kafka_sasl_mechanisms": "PLAIN"}, "no listener of kafka_listeners uses SASL"),
        ({"kafka_listeners": "PLAINTEXT://:0,plaintext://:1"}, "names listener PLAINTEXT twice"),
        ({"kafka_listeners": "PLAINTEXT://h:1,X://h:1", "kafka_listener_security_protocol_map": "X:SSL"}, ""),
        ({"kafka_listener_security_protocol_map": "X:TLS"}, "unknown security protocol 'TLS'"),
        ({"kafka_advertised_listeners": "SSL://h:1"}, "advertised listener SSL is not a listener"),
        ({"kafka_advertised_listeners": "PLAINTEXT://0.0.0.0:1"}, "is not an address to connect to"),
        ({"kafka_listeners": "PLAINTEXT:9092"}, "is not NAME://host:port"),
        ({"kafka_anonymous": "sometimes"}, "kafka_anonymous must be loopback, any or never"),
    ],
)
def test_refused_combinations(changes: dict[str, Any], message: str) -> None:
    settings: dict[str, Any] = {"kafka_listeners": "PLAINTEXT://:0", **changes}
    with pytest.raises(SettingsError, match=message or "both bind h:1"):
        Settings(**settings)


def test_listener_settings_need_kafka_listeners() -> None:
    for name in ("kafka_advertised_listeners", "kafka_listener_security_protocol_map"):
        with pytest.raises(SettingsError, match=f"{name} needs kafka_listeners"):
            Settings(**{name: "PLAINTEXT://h:1" if "advertised" in name else "X:SSL"})


def test_serve_refuses_the_combination(tmp_path: Path) -> None:
    done = run_serve("--data-dir", str(tmp_path), "--kafka-port", "0", "--kafka-listeners", "PLAINTEXT://:0")
    assert done.returncode != 0
    assert "kafka_port and kafka_listeners both describe the Kafka listeners" in done.stderr


def test_anonymous_decision() -> None:
    assert anonymous_allowed("loopback", loopback=True)
    assert not anonymous_allowed("loopback", loopback=False)
    assert anonymous_allowed("any", loopback=False)
    assert not anonymous_allowed("never", loopback=True)


# -- one broker, three listeners -----------------------------------------------------------------


@pytest.fixture(scope="module")
def listeners_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("listeners-ca"))


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory, listeners_ca: TestCA) -> Iterator[Broker]:
    server = listeners_ca.server()
    b = Broker(
        tmp_path_factory.mktemp("listeners") / "data",
        amqp_port=-1,
        kafka_listeners=LISTENERS,
        kafka_tls_certfile=str(server.certfile),
        kafka_tls_keyfile=str(server.keyfile),
        kafka_sasl_mechanisms="PLAIN,SCRAM-SHA-256",
        kafka_group_initial_delay_ms=0,
    ).start()
    try:
        yield b
    finally:
        b.stop()


def _address(broker: Broker, name: str) -> str:
    return broker.addresses[f"kafka_{name}"].split("://", 1)[1]


def _confluent(broker: Broker, ca: TestCA, name: str) -> dict[str, Any]:
    config: dict[str, Any] = {"bootstrap.servers": _address(broker, name)}
    if name == "ssl":
        config |= {"security.protocol": "SSL", "ssl.ca.location": str(ca.cafile)}
    if name == "sasl_plaintext":
        config |= {
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN",
            "sasl.username": "guest",
            "sasl.password": "guest",
        }
    return config


def test_addresses(broker: Broker) -> None:
    a = broker.addresses
    assert a["kafka"] == a["kafka_plaintext"] and a["kafka"].startswith("kafka://127.0.0.1:")
    assert a["kafka_ssl"].startswith("kafka+ssl://127.0.0.1:")
    assert a["kafka_sasl_plaintext"].startswith("kafka://127.0.0.1:")
    assert len({a["kafka_plaintext"], a["kafka_ssl"], a["kafka_sasl_plaintext"]}) == 3
    assert broker.kafka_bootstrap == _address(broker, "plaintext")
    overview: Any = http_json(f"{broker.http_url}/api/overview")
    kafka = sorted((x["protocol"], x["port"]) for x in overview["listeners"] if "kafka" in x["protocol"])
    ports = {n: int(_address(broker, n).rsplit(":", 1)[1]) for n in ("plaintext", "ssl", "sasl_plaintext")}
    assert kafka == sorted(
        [("kafka", ports["plaintext"]), ("kafka/ssl", ports["ssl"]), ("kafka", ports["sasl_plaintext"])]
    )


async def test_produce_on_one_consume_on_another(broker: Broker, listeners_ca: TestCA) -> None:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.helpers import create_ssl_context

    topic = unique("listeners")
    producer = Producer(_confluent(broker, listeners_ca, "plaintext"))
    for i in range(3):
        producer.produce(topic, str(i).encode())
    assert producer.flush(10) == 0
    # a group consumer: FindCoordinator must name the SSL listener, or its TLS connection fails
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=_address(broker, "ssl"),
        security_protocol="SSL",
        ssl_context=create_ssl_context(cafile=str(listeners_ca.cafile)),
        group_id=unique("group"),
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        values: list[bytes] = []
        while len(values) < 3:
            batches = await consumer.getmany(timeout_ms=5000)
            assert batches, "no records on the SSL listener"
            values += [m.value for records in batches.values() for m in records if m.value is not None]
        assert values == [b"0", b"1", b"2"]
    finally:
        await consumer.stop()


@pytest.mark.parametrize("name", ["plaintext", "ssl", "sasl_plaintext"])
def test_metadata_names_the_listener_asked(broker: Broker, listeners_ca: TestCA, name: str) -> None:
    admin = AdminClient(_confluent(broker, listeners_ca, name))
    metadata = admin.list_topics(timeout=10)
    host, port = _address(broker, name).rsplit(":", 1)
    assert [(b.host, b.port) for b in metadata.brokers.values()] == [(host, int(port))]


def test_describe_cluster_and_coordinator_on_the_wire(broker: Broker) -> None:
    for name in ("plaintext", "sasl_plaintext"):
        host, port = _address(broker, name).rsplit(":", 1)
        with WireClient(_address(broker, name)) as client:
            if name == "sasl_plaintext":
                # refused before SASL: the handshake lists this listener's mechanisms
                response = client.call(request(SASL_HANDSHAKE, 1, mechanism="GSSAPI"))
                assert response.error_code == 33 and list(response.mechanisms) == ["PLAIN", "SCRAM-SHA-256"]
                continue
            cluster = client.call(request(DESCRIBE_CLUSTER, 0, include_cluster_authorized_operations=False))
            assert [(b.host, b.port) for b in cluster.brokers] == [(host, int(port))]
            found = client.call(request(FIND_COORDINATOR, 1, key="g", key_type=0))
            assert (found.error_code, found.host, found.port) == (0, host, int(port))
            # no SASL on this listener: the handshake is out of place and lists no mechanism
            response = client.call(request(SASL_HANDSHAKE, 1, mechanism="PLAIN"))
            assert response.error_code == 34 and list(response.mechanisms) == []


def test_describe_configs_shows_every_listener(broker: Broker, listeners_ca: TestCA) -> None:
    admin = AdminClient(_confluent(broker, listeners_ca, "ssl"))
    [future] = admin.describe_configs([ConfigResource("broker", "0")]).values()
    configs = future.result()
    addresses = ",".join(
        f"{n.upper()}://{_address(broker, n)}" for n in ("plaintext", "ssl", "sasl_plaintext")
    )
    assert configs["listeners"].value == addresses
    assert configs["advertised.listeners"].value == addresses
    assert configs["listener.security.protocol.map"].value == (
        "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"
    )


def test_serve_prints_each_listener(serve: Any) -> None:
    served = serve(
        "--kafka-listeners",
        "PLAINTEXT://127.0.0.1:0,EXTRA://127.0.0.1:0",
        "--kafka-listener-security-protocol-map",
        "EXTRA:PLAINTEXT",
        "--kafka-advertised-listeners",
        "EXTRA://advertised.example:1234",
    )
    try:
        assert served.urls["kafka"] == served.urls["kafka_plaintext"]
        extra = served.urls["kafka_extra"].split("://", 1)[1]
        admin = AdminClient({"bootstrap.servers": extra})
        metadata = admin.list_topics(timeout=10)
        assert [(b.host, b.port) for b in metadata.brokers.values()] == [("advertised.example", 1234)]
    finally:
        assert served.stop() == 0


# -- anonymous clients ---------------------------------------------------------------------------


def _non_loopback_address() -> str | None:
    """An address of this machine that is not a loopback one (none: the test is skipped)."""
    candidates = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.connect(("192.0.2.1", 9))  # routing only: a UDP connect sends nothing
            candidates.append(udp.getsockname()[0])
    except OSError:
        pass
    with contextlib.suppress(OSError):
        candidates += [str(i[4][0]) for i in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)]
    for address in candidates:
        if ipaddress.ip_address(address).is_loopback:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind((address, 0))
        except OSError:
            continue
        return address
    return None


@pytest.fixture(scope="module")
def remote_host() -> str:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to connect from")
    return address


def _produce_error(bootstrap: str, **config: Any) -> KafkaError | None:
    errors: list[KafkaError | None] = []
    producer = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 10000, **config})
    producer.produce(unique("anon"), b"x", on_delivery=lambda err, _msg: errors.append(err))
    producer.flush(15)
    assert errors, "no delivery report"
    return errors[0]


def test_anonymous_refused_from_elsewhere(tmp_path: Path, remote_host: str) -> None:
    """The default (loopback): a client without SASL on a non-loopback address is denied every
    request as User:ANONYMOUS (confluent-kafka reports "Topic authorization failed"), and one
    that authenticates on the SASL listener is let in."""
    b = Broker(
        tmp_path / "data",
        amqp_port=-1,
        kafka_listeners=f"PLAINTEXT://{remote_host}:0,SASL_PLAINTEXT://{remote_host}:0",
        kafka_sasl_mechanisms="PLAIN",
    ).start()
    try:
        error = _produce_error(_address(b, "plaintext"))
        assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        # guest may log in from a loopback address only: another user
        http_json(f"{b.http_url}/api/users/remote", "PUT", {"password": "pw", "tags": "administrator"})
        sasl = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN"}
        sasl |= {"sasl.username": "remote", "sasl.password": "pw"}
        assert _produce_error(_address(b, "sasl_plaintext"), **sasl) is None
    finally:
        b.stop()


def test_anonymous_any(tmp_path: Path, remote_host: str) -> None:
    b = Broker(
        tmp_path / "any", amqp_port=-1, kafka_listeners=f"PLAINTEXT://{remote_host}:0", kafka_anonymous="any"
    )
    b.start()
    try:
        assert _produce_error(b.kafka_bootstrap) is None
    finally:
        b.stop()


def test_anonymous_never(tmp_path: Path) -> None:
    b = Broker(tmp_path / "never", amqp_port=-1, kafka_anonymous="never")
    b.start()
    try:
        error = _produce_error(b.kafka_bootstrap)  # from 127.0.0.1
        assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    finally:
        b.stop()
