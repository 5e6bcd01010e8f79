"""Malformed input over a raw socket (no client library would send it): the broker answers as
RabbitMQ 3.10 does, closes that one connection, and another connection, opened before the bad
one, keeps working."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pika
import pytest
from pamqp import commands, frame, header
from pika.adapters.blocking_connection import BlockingConnection

from tests.amqp.rawamqp import CLIENT_PROPERTIES, PROTOCOL_HEADER, RawConnection, method_payload, raw_frame
from tests.amqp.support import connect, get_all, host_port

ACCESS_REFUSED = 403
FRAME_ERROR = 501
SYNTAX_ERROR = 502
COMMAND_INVALID = 503
CHANNEL_ERROR = 504
UNEXPECTED_FRAME = 505
NOT_IMPLEMENTED = 540

METHOD, HEADER, BODY = 1, 2, 3


@pytest.fixture
def bystander(amqp_url: str) -> Iterator[BlockingConnection]:
    """A well-behaved connection, open before the bad one; checked to still work afterwards."""
    conn = connect(amqp_url)
    conn.channel()
    yield conn
    ch = conn.channel()
    ch.confirm_delivery()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"still fine", pika.BasicProperties(headers={"ok": True}))
    assert get_all(ch, q) == [b"still fine"]
    conn.close()


@pytest.fixture
def address(amqp_url: str) -> tuple[str, int]:
    return host_port(amqp_url)


def open_raw(address: tuple[str, int], **kwargs: object) -> RawConnection:
    return RawConnection.open(*address, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "greeting",
    [
        b"AMQP\x00\x00\x09\x00",  # 0-9-0
        b"AMQP\x01\x01\x00\x0a",  # 0-10
        b"AMQP\x00\x01\x00\x00",  # 1.0
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x00" * 8,
    ],
    ids=["amqp-0-9-0", "amqp-0-10", "amqp-1.0", "http", "zeros"],
)
def test_wrong_protocol_header_gets_the_supported_one(
    bystander: BlockingConnection, address: tuple[str, int], greeting: bytes
) -> None:
    with RawConnection.connect(*address) as raw:
        raw.send(greeting)
        assert raw.expect_eof() == PROTOCOL_HEADER


def test_valid_handshake_by_hand(address: tuple[str, int]) -> None:
    with open_raw(address) as raw:
        raw.send_frame(commands.Basic.Qos(prefetch_count=1), channel=1)
        raw.expect(commands.Basic.QosOk)
        raw.send_frame(commands.Connection.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0))
        raw.expect(commands.Connection.CloseOk)
        # The client closes the socket now (RabbitMQ would wait for it to).


def test_bad_frame_end_octet_is_a_frame_error(
    bystander: BlockingConnection, address: tuple[str, int]
) -> None:
    with open_raw(address) as raw:
        good = frame.marshal(commands.Basic.Qos(prefetch_count=1), 1)
        raw.send(good[:-1] + b"\x00")
        # Also see the socket closed (the other tests skip that: RabbitMQ takes 3 s to do it).
        assert raw.expect_connection_close(wait_for_eof=True).reply_code == FRAME_ERROR


def test_unknown_frame_type_is_a_frame_error(bystander: BlockingConnection, address: tuple[str, int]) -> None:
    with open_raw(address) as raw:
        raw.send(raw_frame(9, 1, b"abc"))
        assert raw.expect_connection_close().reply_code == FRAME_ERROR


@pytest.mark.parametrize(
    ("class_id", "method_id"), [(999, 10), (60, 999)], ids=["unknown-class", "unknown-method"]
)
def test_unknown_method_closes_the_connection(
    bystander: BlockingConnection, address: tuple[str, int], class_id: int, method_id: int
) -> None:
    # RabbitMQ 3.10 sends no connection.close here: its reader process crashes on the unknown
    # method id and the socket is simply reset. The spec's answer would be 540 NOT_IMPLEMENTED
    # (503 COMMAND_INVALID is also seen); a close with either code, or just closing, passes.
    with open_raw(address) as raw:
        raw.send(raw_frame(METHOD, 1, method_payload(class_id, method_id)))
        try:
            close = raw.expect_connection_close()
        except (EOFError, ConnectionResetError):
            return  # closed without a word, as RabbitMQ does
        assert close.reply_code in (NOT_IMPLEMENTED, COMMAND_INVALID)


def test_undecodable_method_arguments_are_a_frame_error(
    bystander: BlockingConnection, address: tuple[str, int]
) -> None:
    # basic.qos with 1 byte of arguments instead of 7. The spec would say 502 SYNTAX_ERROR;
    # RabbitMQ 3.10 answers 501 FRAME_ERROR ("cannot decode").
    with open_raw(address) as raw:
        raw.send(raw_frame(METHOD, 1, method_payload(60, 10, b"\x00")))
        assert raw.expect_connection_close().reply_code == FRAME_ERROR


@pytest.mark.parametrize(
    "content",
    [
        raw_frame(BODY, 1, b"hello"),
        frame.marshal(header.ContentHeader(0, 5, commands.Basic.Properties()), 1),
    ],
    ids=["body", "header"],
)
def test_content_without_a_publish_is_an_unexpected_frame(
    bystander: BlockingConnection, address: tuple[str, int], content: bytes
) -> None:
    with open_raw(address) as raw:
        raw.send(content)
        assert raw.expect_connection_close().reply_code == UNEXPECTED_FRAME


def test_method_in_the_middle_of_content_is_an_unexpected_frame(
    bystander: BlockingConnection, address: tuple[str, int]
) -> None:
    with open_raw(address) as raw:
        raw.send_frame(commands.Basic.Publish(exchange="", routing_key="nowhere"), channel=1)
        raw.send_frame(header.ContentHeader(0, 10, commands.Basic.Properties()), channel=1)
        raw.send_frame(commands.Basic.Qos(prefetch_count=1), channel=1)  # but 10 body bytes were due
        assert raw.expect_connection_close().reply_code == UNEXPECTED_FRAME


def test_body_before_the_content_header_is_an_unexpected_frame(
    bystander: BlockingConnection, address: tuple[str, int]
) -> None:
    with open_raw(address) as raw:
        raw.send_frame(commands.Basic.Publish(exchange="", routing_key="nowhere"), channel=1)
        raw.send(raw_frame(BODY, 1, b"0123456789"))
        assert raw.expect_connection_close().reply_code == UNEXPECTED_FRAME


def test_a_second_content_header_is_an_unexpected_frame(
    bystander: BlockingConnection, address: tuple[str, int]
) -> None:
    with open_raw(address) as raw:
        raw.send_frame(commands.Basic.Publish(exchange="", routing_key="nowhere"), channel=1)
        raw.send_frame(header.ContentHeader(0, 10, commands.Basic.Properties()), channel=1)
        raw.send_frame(header.ContentHeader(0, 10, commands.Basic.Properties()), channel=1)
        assert raw.expect_connection_close().reply_code == UNEXPECTED_FRAME


@pytest.mark.parametrize("frame_type", [BODY, HEADER, METHOD], ids=["body", "header", "method"])
def test_frame_larger_than_frame_max_is_a_frame_error(
    bystander: BlockingConnection, address: tuple[str, int], frame_type: int
) -> None:
    with open_raw(address, frame_max=4096) as raw:  # the smallest frame_max AMQP allows
        assert raw.frame_max == 4096
        if frame_type == METHOD:
            raw.send_frame(commands.Queue.Declare(queue="big", arguments={"pad": "y" * 9000}), channel=1)
        elif frame_type == HEADER:
            big = commands.Basic.Properties(headers={"pad": "y" * 9000})
            raw.send_frame(commands.Basic.Publish(exchange="", routing_key="nowhere"), channel=1)
            raw.send_frame(header.ContentHeader(0, 0, big), channel=1)
        else:
            raw.send_frame(commands.Basic.Publish(exchange="", routing_key="nowhere"), channel=1)
            raw.send_frame(header.ContentHeader(0, 9000, commands.Basic.Properties()), channel=1)
            raw.send(raw_frame(BODY, 1, b"x" * 9000))
        assert raw.expect_connection_close().reply_code == FRAME_ERROR


def test_method_on_a_channel_that_is_not_open_is_a_channel_error(
    bystander: BlockingConnection, address: tuple[str, int]
) -> None:
    with open_raw(address) as raw:
        raw.send_frame(commands.Basic.Qos(prefetch_count=1), channel=5)
        assert raw.expect_connection_close().reply_code == CHANNEL_ERROR


@pytest.mark.parametrize("says_why", [True, False], ids=["close-frame", "silent"])
def test_wrong_password_by_hand(
    bystander: BlockingConnection, address: tuple[str, int], says_why: bool
) -> None:
    # A client advertising the authentication_failure_close capability (as pika, aio-pika and
    # py-amqp do) gets connection.close 403; others just see the socket closed (the spec's way).
    with RawConnection.connect(*address) as raw:
        raw.send(PROTOCOL_HEADER)
        raw.expect(commands.Connection.Start)
        raw.send_frame(
            commands.Connection.StartOk(
                client_properties=CLIENT_PROPERTIES if says_why else {"product": "old client"},
                mechanism="PLAIN",
                response="\0guest\0wrong",
            )
        )
        if says_why:
            assert raw.expect_connection_close().reply_code == ACCESS_REFUSED
        else:
            assert raw.expect_eof() == b""


def test_unsupported_auth_mechanism(bystander: BlockingConnection, address: tuple[str, int]) -> None:
    # RabbitMQ 3.10 closes the socket without a word here (3 s later), even for a client that
    # advertises authentication_failure_close; a connection.close 403 would be fine too.
    with RawConnection.connect(*address) as raw:
        raw.send(PROTOCOL_HEADER)
        raw.expect(commands.Connection.Start)
        raw.send_frame(
            commands.Connection.StartOk(
                client_properties=CLIENT_PROPERTIES, mechanism="NO-SUCH-MECH", response="x"
            )
        )
        try:
            close = raw.expect_connection_close()
        except (EOFError, ConnectionResetError):
            return
        assert close.reply_code == ACCESS_REFUSED


def test_heartbeats_both_ways(bystander: BlockingConnection, address: tuple[str, int]) -> None:
    """With heartbeat=1 negotiated the server sends heartbeat frames, and a client that then
    stays silent is disconnected after missing them (RabbitMQ: two intervals)."""
    with open_raw(address, heartbeat=1, open_channel=False) as raw:
        raw.sock.settimeout(10)
        received = b""
        started = time.monotonic()
        while True:
            try:
                data = raw.recv_some()
            except ConnectionResetError:
                break  # RabbitMQ resets rather than closes
            if not data:
                break
            received += data
            assert time.monotonic() - started < 10, "still connected after 10 s of silence"
        assert b"\x08\x00\x00\x00\x00\x00\x00\xce" in received  # a heartbeat frame
    bystander.channel().close()
