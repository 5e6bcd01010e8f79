"""AMQP over TLS (amqps) and the EXTERNAL mechanism, with certificates made at test time.

Jackalope-only, but for the first test: the shared RabbitMQ node has no TLS listener.  What
these tests check is RabbitMQ's behaviour with ``ssl_options`` and
``rabbitmq_auth_mechanism_ssl`` (``ssl_cert_login_from = common_name``): EXTERNAL is offered
only to a client whose certificate was verified, its user is the certificate's CN, and that
user must exist.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import pika
import pika.credentials
import pika.exceptions
import pytest
from cryptography.hazmat.primitives import serialization
from pamqp import commands
from pika.adapters.blocking_connection import BlockingConnection

from jackalope import Broker
from tests.amqp.rawamqp import CLIENT_PROPERTIES, PROTOCOL_HEADER, RawConnection
from tests.amqp.support import EXTERNAL_URL, WAIT, bounded, connect, host_port, params, start_serve_amqp
from tests.certs import KeyPair, TestCA
from tests.conftest import run_serve

jackalope_only = pytest.mark.skipif(EXTERNAL_URL is not None, reason="the RabbitMQ node has no TLS listener")

BrokerFactory = Callable[..., Broker]


@pytest.fixture
def tls_broker(tmp_path: Path, tls_ca: TestCA) -> Iterator[BrokerFactory]:
    """Start embedded brokers with an amqps listener (certificate signed by ``tls_ca``) beside
    the plaintext one; every one is stopped after the test."""
    started: list[Broker] = []

    def factory(**settings: Any) -> Broker:
        server = tls_ca.server()
        broker = Broker(
            tmp_path / f"data-{len(started)}",
            kafka_port=-1,
            amqp_tls_certfile=str(server.certfile),
            amqp_tls_keyfile=str(server.keyfile),
            amqp_tls_cafile=str(tls_ca.cafile),
            **settings,
        )
        started.append(broker)
        return broker.start()

    yield factory
    for broker in started:
        bounded(broker.stop, "stopping the embedded broker", 2 * WAIT)


@pytest.fixture
def pika_tls(broker_connections: list[BlockingConnection]) -> Callable[..., BlockingConnection]:
    """Open pika connections over TLS (closed after the test)."""

    def open_(url: str, context: ssl.SSLContext, **overrides: object) -> BlockingConnection:
        conn = connect(url, ssl_options=pika.SSLOptions(context, host_port(url)[0]), **overrides)
        broker_connections.append(conn)
        return conn

    return open_


@pytest.fixture
def broker_connections() -> Iterator[list[BlockingConnection]]:
    opened: list[BlockingConnection] = []
    yield opened
    for conn in opened:
        if conn.is_open:
            bounded(conn.close, "closing a connection")


def round_trip(conn: BlockingConnection, body: bytes) -> bytes:
    """Publish ``body`` to a new exclusive queue and get it back."""
    channel = conn.channel()
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.confirm_delivery()
    channel.basic_publish("", queue, body)
    method, _, got = channel.basic_get(queue, auto_ack=True)
    assert method is not None, "the message did not arrive"
    return bytes(got)


def raw_tls(url: str, context: ssl.SSLContext) -> RawConnection:
    """A raw AMQP connection over TLS (handshake done, nothing sent yet)."""
    host, port = host_port(url)
    sock = socket.create_connection((host, port), timeout=WAIT)
    return RawConnection(context.wrap_socket(sock, server_hostname=host))


def offered_mechanisms(raw: RawConnection) -> list[str]:
    raw.send(PROTOCOL_HEADER)
    start = raw.expect(commands.Connection.Start)
    return str(start.mechanisms).split()


def external_start_ok() -> commands.Connection.StartOk:
    return commands.Connection.StartOk(client_properties=CLIENT_PROPERTIES, mechanism="EXTERNAL", response="")


# -- differential: plaintext connections are never offered EXTERNAL ------------------------------


def test_plaintext_connection_is_not_offered_external(amqp_url: str) -> None:
    host, port = host_port(amqp_url)
    with RawConnection.connect(host, port) as raw:
        assert "EXTERNAL" not in offered_mechanisms(raw)
    with pytest.raises(pika.exceptions.AuthenticationError, match="EXTERNAL"):
        connect(amqp_url, credentials=pika.credentials.ExternalCredentials())


# -- amqps beside amqp ---------------------------------------------------------------------------


@jackalope_only
def test_pika_over_amqps_beside_plaintext(
    tls_broker: BrokerFactory, tls_ca: TestCA, pika_tls: Callable[..., BlockingConnection]
) -> None:
    broker = tls_broker()
    assert broker.addresses["amqps"].startswith("amqps://127.0.0.1:")
    assert broker.amqps_url.startswith("amqps://guest:guest@127.0.0.1:")
    assert broker.addresses["amqps"] != broker.addresses["amqp"]
    secure = pika_tls(broker.amqps_url, tls_ca.client_context())
    assert round_trip(secure, b"over TLS") == b"over TLS"
    # The plaintext listener serves the same broker meanwhile.
    plain = connect(broker.amqp_url)
    try:
        channel = plain.channel()
        queue = channel.queue_declare("tls-shared").method.queue
        channel.basic_publish("", queue, b"from plaintext")
    finally:
        plain.close()
    method, _, body = secure.channel().basic_get(queue, auto_ack=True)
    assert method is not None and body == b"from plaintext"


@jackalope_only
async def test_aio_pika_over_amqps(tls_broker: BrokerFactory, tls_ca: TestCA) -> None:
    broker = tls_broker()
    async with asyncio.timeout(3 * WAIT):
        connection = await aio_pika.connect(broker.amqps_url, ssl_context=tls_ca.client_context())
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            queue = await channel.declare_queue(exclusive=True)
            await channel.default_exchange.publish(aio_pika.Message(b"aio over TLS"), routing_key=queue.name)
            async with queue.iterator() as messages:
                async for message in messages:
                    async with message.process():
                        assert message.body == b"aio over TLS"
                    break


@jackalope_only
def test_a_client_trusting_another_ca_refuses_the_server(
    tls_broker: BrokerFactory, tmp_path: Path, pika_tls: Callable[..., BlockingConnection]
) -> None:
    broker = tls_broker()
    other = TestCA(tmp_path)
    with pytest.raises(ssl.SSLCertVerificationError):  # pika passes the handshake's error on
        pika_tls(broker.amqps_url, other.client_context())
    with pytest.raises(ssl.SSLCertVerificationError):
        raw_tls(broker.amqps_url, other.client_context())


@jackalope_only
def test_a_plaintext_client_on_the_tls_port_harms_no_one(
    tls_broker: BrokerFactory, tls_ca: TestCA, pika_tls: Callable[..., BlockingConnection]
) -> None:
    broker = tls_broker()
    before = pika_tls(broker.amqps_url, tls_ca.client_context())
    tls_url = broker.amqps_url.replace("amqps://", "amqp://")
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        connect(tls_url)
    with RawConnection.connect(*host_port(tls_url)) as raw:
        raw.send(PROTOCOL_HEADER)  # not a TLS ClientHello: the broker drops the connection
        raw.expect_eof()
    assert round_trip(before, b"still served") == b"still served"
    after = pika_tls(broker.amqps_url, tls_ca.client_context())
    assert round_trip(after, b"and new ones") == b"and new ones"
    plain = connect(broker.amqp_url)
    try:
        assert round_trip(plain, b"plaintext too") == b"plaintext too"
    finally:
        plain.close()


# -- client certificates -------------------------------------------------------------------------


@jackalope_only
def test_fail_if_no_peer_cert_refuses_a_client_without_a_certificate(
    tls_broker: BrokerFactory, tls_ca: TestCA, tmp_path: Path, pika_tls: Callable[..., BlockingConnection]
) -> None:
    broker = tls_broker(amqp_tls_verify="verify_peer", amqp_tls_fail_if_no_peer_cert=True)
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika_tls(broker.amqps_url, tls_ca.client_context())
    with (
        pytest.raises((ssl.SSLError, ConnectionError, EOFError)),
        raw_tls(broker.amqps_url, tls_ca.client_context()) as raw,
    ):
        # Under TLS 1.3 the client may finish its side of the handshake before the server's
        # verdict arrives: then the first read fails with it.
        offered_mechanisms(raw)
    # A certificate signed by another CA is refused as well.
    stranger = TestCA(tmp_path).client("guest")
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika_tls(broker.amqps_url, tls_ca.client_context(stranger))
    # One signed by the listener's CA gets in (with a password, or EXTERNAL).
    client = tls_ca.client("guest")
    assert round_trip(pika_tls(broker.amqps_url, tls_ca.client_context(client)), b"in") == b"in"


@jackalope_only
def test_external_is_offered_only_with_a_verified_certificate(
    tls_broker: BrokerFactory, tls_ca: TestCA
) -> None:
    client = tls_ca.client("guest")
    verifying = tls_broker(amqp_tls_verify="verify_peer")
    with raw_tls(verifying.amqps_url, tls_ca.client_context(client)) as raw:
        assert offered_mechanisms(raw) == ["PLAIN", "AMQPLAIN", "EXTERNAL"]
    with raw_tls(verifying.amqps_url, tls_ca.client_context()) as raw:
        assert offered_mechanisms(raw) == ["PLAIN", "AMQPLAIN"]
    not_verifying = tls_broker()  # verify_none: no certificate is asked for
    with raw_tls(not_verifying.amqps_url, tls_ca.client_context(client)) as raw:
        assert offered_mechanisms(raw) == ["PLAIN", "AMQPLAIN"]


@jackalope_only
def test_external_login_takes_the_user_from_the_cn(
    tls_broker: BrokerFactory, tls_ca: TestCA, pika_tls: Callable[..., BlockingConnection]
) -> None:
    broker = tls_broker(amqp_tls_verify="verify_peer")
    context = tls_ca.client_context(tls_ca.client("guest"))
    url = broker.amqps_url.replace("guest:guest@", "")  # no password: the certificate is the login
    conn = pika_tls(url, context, credentials=pika.credentials.ExternalCredentials())
    assert round_trip(conn, b"as guest") == b"as guest"


@jackalope_only
async def test_aio_pika_external_login(tls_broker: BrokerFactory, tls_ca: TestCA) -> None:
    broker = tls_broker(amqp_tls_verify="verify_peer")
    context = tls_ca.client_context(tls_ca.client("guest"))
    url = broker.amqps_url.replace("guest:guest@", "") + "?auth=external"
    async with asyncio.timeout(3 * WAIT):
        connection = await aio_pika.connect(url, ssl_context=context)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(exclusive=True)
            await channel.default_exchange.publish(aio_pika.Message(b"external"), routing_key=queue.name)
            message = await queue.get(timeout=WAIT)
            assert message is not None and message.body == b"external"


@jackalope_only
def test_external_login_with_an_unknown_cn_is_refused(
    tls_broker: BrokerFactory, tls_ca: TestCA, pika_tls: Callable[..., BlockingConnection]
) -> None:
    broker = tls_broker(amqp_tls_verify="verify_peer")
    context = tls_ca.client_context(tls_ca.client("mallory"))
    with pytest.raises(
        (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError)
    ) as err:
        pika_tls(broker.amqps_url, context, credentials=pika.credentials.ExternalCredentials())
    assert "ACCESS_REFUSED" in str(err.value)
    with raw_tls(broker.amqps_url, context) as raw:
        assert "EXTERNAL" in offered_mechanisms(raw)
        raw.send_frame(external_start_ok())
        close = raw.expect_connection_close()
    assert close.reply_code == 403
    assert close.reply_text == (
        "ACCESS_REFUSED - Login was refused using authentication mechanism EXTERNAL. "
        "For details see the broker logfile."
    )
    # The same certificate may still log in with a password.
    conn = pika_tls(broker.amqps_url, context)
    assert round_trip(conn, b"with a password") == b"with a password"


@jackalope_only
def test_external_without_a_certificate_is_refused(tls_broker: BrokerFactory, tls_ca: TestCA) -> None:
    broker = tls_broker(amqp_tls_verify="verify_peer")
    with raw_tls(broker.amqps_url, tls_ca.client_context()) as raw:
        assert "EXTERNAL" not in offered_mechanisms(raw)
        raw.send_frame(external_start_ok())  # asked for all the same
        close = raw.expect_connection_close()
    assert close.reply_code == 403
    assert "authentication mechanism EXTERNAL" in close.reply_text


# -- jackalope serve -----------------------------------------------------------------------------


def tls_flags(pair: KeyPair, *more: str) -> tuple[str, ...]:
    return ("--amqp-tls-certfile", str(pair.certfile), "--amqp-tls-keyfile", str(pair.keyfile), *more)


@jackalope_only
def test_serve_listens_on_amqps(tmp_path: Path, tls_ca: TestCA) -> None:
    served = start_serve_amqp(tmp_path / "data", *tls_flags(tls_ca.server()), "--kafka-port", "-1")
    try:
        assert served.urls["amqps"].startswith("amqps://127.0.0.1:")
        host, port = host_port(served.urls["amqps"])
        parameters = params(
            f"amqp://guest:guest@{host}:{port}/",
            ssl_options=pika.SSLOptions(tls_ca.client_context(), host),
        )
        conn = pika.BlockingConnection(parameters)
        try:
            assert round_trip(conn, b"served") == b"served"
        finally:
            conn.close()
    finally:
        assert served.stop() == 0


def _bad_files(tmp_path: Path, tls_ca: TestCA) -> dict[str, tuple[tuple[str, ...], str]]:
    """Each case: the flags, and what the error must say."""
    good = tls_ca.server()
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
    missing = tmp_path / "missing.pem"
    other_key = tls_ca.server().keyfile
    encrypted = tmp_path / "encrypted-key.pem"
    key = serialization.load_pem_private_key(good.keyfile.read_bytes(), password=None)
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    return {
        "missing certificate": (
            tls_flags(KeyPair(missing, good.keyfile)),
            f"cannot load the AMQP TLS certificate file {missing}: No such file or directory",
        ),
        "not a certificate": (
            tls_flags(KeyPair(garbage, good.keyfile)),
            f"cannot load the AMQP TLS certificate file {garbage}",
        ),
        "missing key": (
            tls_flags(KeyPair(good.certfile, missing)),
            f"cannot load the AMQP TLS key file {missing}: No such file or directory",
        ),
        "key of another certificate": (
            tls_flags(KeyPair(good.certfile, other_key)),
            f"cannot load the AMQP TLS key file {other_key}",
        ),
        "certificate as the key": (
            tls_flags(KeyPair(good.certfile, good.certfile)),
            f"cannot load the AMQP TLS key file {good.certfile}",
        ),
        "encrypted key": (
            tls_flags(KeyPair(good.certfile, encrypted)),
            f"cannot load the AMQP TLS key file {encrypted}: it is encrypted",
        ),
        "missing CA file": (
            tls_flags(good, "--amqp-tls-cafile", str(missing), "--amqp-tls-verify", "verify_peer"),
            f"cannot load the AMQP TLS CA file {missing}: No such file or directory",
        ),
        "not a CA file": (
            tls_flags(good, "--amqp-tls-cafile", str(garbage), "--amqp-tls-verify", "verify_peer"),
            f"cannot load the AMQP TLS CA file {garbage}",
        ),
    }


BAD_FILE_CASES = [
    "missing certificate",
    "not a certificate",
    "missing key",
    "key of another certificate",
    "certificate as the key",
    "encrypted key",
    "missing CA file",
    "not a CA file",
]


@jackalope_only
@pytest.mark.parametrize("case", BAD_FILE_CASES)
def test_serve_with_a_bad_tls_file_exits_naming_it(tmp_path: Path, tls_ca: TestCA, case: str) -> None:
    flags, message = _bad_files(tmp_path, tls_ca)[case]
    data = tmp_path / "data"
    result = run_serve(
        "--data-dir", str(data), "--http-port", "0", "--amqp-port", "0", "--amqp-tls-port", "0",
        "--kafka-port", "-1", *flags,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"jackalope: error: {message}" in result.stderr
    assert "Traceback" not in result.stderr
    assert "listening" not in result.stdout
