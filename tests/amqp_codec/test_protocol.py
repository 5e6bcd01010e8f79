"""AmqpProtocol with bytes alone: the handshake, channels, content assembly, closing from
either side, heartbeats and flow notifications.  The server's output is decoded by pamqp, an
independent implementation of the spec."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pamqp import base, body, commands, frame, header, heartbeat
from pamqp import encode as pamqp_encode

from jackalope.amqp.constants import (
    ACCESS_REFUSED,
    CHANNEL_ERROR,
    CONNECTION_FORCED,
    FRAME_ERROR,
    NOT_ALLOWED,
    NOT_FOUND,
    NOT_IMPLEMENTED,
    PRECONDITION_FAILED,
    PROTOCOL_HEADER,
    UNEXPECTED_FRAME,
)
from jackalope.amqp.errors import ChannelException, ConnectionException
from jackalope.amqp.properties import encode_properties
from jackalope.amqp.protocol import (
    Ack,
    AmqpProtocol,
    ChannelClosed,
    ChannelOpened,
    ConnectionClosed,
    ConnectionFailed,
    Event,
    LoginRequested,
    MessageReceived,
    MethodReceived,
    Nack,
    Publish,
    Reject,
    SecretUpdateRequested,
    State,
    Tuned,
    VhostRequested,
)
from jackalope.amqp.writers import shortstr

from .helpers import raw_header

FRAME_MAX = 131072
MAX_MESSAGE = 1000
CAPABILITIES = {"authentication_failure_close": True, "connection.blocked": True}


def make(**overrides: Any) -> AmqpProtocol:
    options: dict[str, Any] = {
        "frame_max": FRAME_MAX,
        "channel_max": 16,
        "heartbeat": 60,
        "max_message_bytes": MAX_MESSAGE,
    }
    options.update(overrides)
    return AmqpProtocol({"product": "test"}, **options)


def m(channel: int, method: base.Frame) -> bytes:
    return frame.marshal(method, channel)


def content(channel: int, payload: bytes, frame_max: int = FRAME_MAX, properties: bytes = b"") -> bytes:
    props = commands.Basic.Properties(delivery_mode=2)
    out = frame.marshal(header.ContentHeader(0, len(payload), props), channel)
    chunk = frame_max - 8
    for offset in range(0, len(payload), chunk):
        out += frame.marshal(body.ContentBody(payload[offset : offset + chunk]), channel)
    return out


def publish(channel: int, payload: bytes, routing_key: str = "q", **kwargs: Any) -> bytes:
    return m(channel, commands.Basic.Publish(exchange="", routing_key=routing_key, **kwargs)) + content(
        channel, payload
    )


def events(protocol: AmqpProtocol, data: bytes = b"") -> list[Event]:
    if data:
        protocol.receive_data(data)
    out: list[Event] = []
    while (event := protocol.next_event()) is not None:
        out.append(event)
    return out


def sent(protocol: AmqpProtocol) -> list[tuple[int, Any]]:
    """(channel, frame) for everything the server wrote since the last call, as pamqp reads it."""
    data = bytes(protocol.data_to_send())
    out: list[tuple[int, Any]] = []
    while data:
        if data.startswith(b"AMQP"):
            out.append((0, data[:8]))
            data = data[8:]
            continue
        consumed, channel, value = frame.unmarshal(data)
        out.append((channel, value))
        data = data[consumed:]
    return out


def start_ok(user: str = "guest", password: str = "guest", mechanism: str = "PLAIN", **caps: bool) -> bytes:
    response: Any
    if mechanism == "PLAIN":
        response = f"\x00{user}\x00{password}"
    else:
        table = pamqp_encode.field_table({"LOGIN": user, "PASSWORD": password})
        response = table[4:].decode("latin-1")  # AMQPLAIN: a table without its length
    props = {"capabilities": {**CAPABILITIES, **caps}}
    return m(0, commands.Connection.StartOk(client_properties=props, mechanism=mechanism, response=response))


def opened(channel_max: int = 0, heartbeat_: int = 0, **overrides: Any) -> AmqpProtocol:
    """A protocol through the whole handshake, output drained."""
    protocol = make(**overrides)
    events(protocol, PROTOCOL_HEADER + start_ok())
    protocol.accept_login()
    frame_max = overrides.get("frame_max", FRAME_MAX)
    events(protocol, m(0, commands.Connection.TuneOk(channel_max, frame_max, heartbeat_)))
    events(protocol, m(0, commands.Connection.Open("/")))
    protocol.accept_vhost()
    sent(protocol)
    return protocol


def with_channel(number: int = 1, **overrides: Any) -> AmqpProtocol:
    protocol = opened(**overrides)
    assert events(protocol, m(number, commands.Channel.Open())) == [ChannelOpened(number)]
    sent(protocol)
    return protocol


def closing_error(protocol: AmqpProtocol) -> commands.Connection.Close:
    frames = sent(protocol)
    assert len(frames) == 1 and isinstance(frames[0][1], commands.Connection.Close), frames
    return frames[0][1]


# --- handshake ---------------------------------------------------------------------------------


def test_the_handshake_step_by_step() -> None:
    protocol = make()
    assert events(protocol, PROTOCOL_HEADER) == []
    ((channel, start),) = sent(protocol)
    assert channel == 0 and isinstance(start, commands.Connection.Start)
    assert start.mechanisms == "PLAIN AMQPLAIN" and start.server_properties["product"] == "test"

    (login,) = events(protocol, start_ok("alice", "s3cret"))
    assert isinstance(login, LoginRequested)
    assert (login.mechanism, login.user, login.password) == ("PLAIN", "alice", "s3cret")
    assert protocol.state is State.AWAIT_LOGIN
    protocol.accept_login()
    ((_, tune),) = sent(protocol)
    assert isinstance(tune, commands.Connection.Tune)
    assert (tune.channel_max, tune.frame_max, tune.heartbeat) == (16, FRAME_MAX, 60)

    assert events(protocol, m(0, commands.Connection.TuneOk(8, 8192, 30))) == [Tuned(8, 8192, 30)]
    assert (protocol.channel_max, protocol.frame_max, protocol.heartbeat) == (8, 8192, 30)
    assert events(protocol, m(0, commands.Connection.Open("/prod"))) == [VhostRequested("/prod")]
    protocol.accept_vhost()
    assert [type(f) for _, f in sent(protocol)] == [commands.Connection.OpenOk]
    assert protocol.state is State.OPEN


def test_amqplain_credentials() -> None:
    protocol = make()
    (login,) = events(protocol, PROTOCOL_HEADER + start_ok("bob", "pw", mechanism="AMQPLAIN"))
    assert isinstance(login, LoginRequested)
    assert (login.user, login.password) == ("bob", "pw")


def test_unreadable_credentials_have_no_user() -> None:
    protocol = make()
    bad = m(0, commands.Connection.StartOk(mechanism="PLAIN", response="no separators"))
    (login,) = events(protocol, PROTOCOL_HEADER + bad)
    assert isinstance(login, LoginRequested) and login.user is None


def certificate(*common_names: str) -> dict[str, Any]:
    """A verified peer certificate as ``ssl.SSLSocket.getpeercert()`` gives it."""
    subject = [(("countryName", "FR"),), (("organizationName", "Jackalope tests"),)]
    subject += [(("commonName", cn),) for cn in common_names]
    return {"subject": tuple(subject), "issuer": ((("commonName", "test CA"),),), "version": 3}


def external_start_ok(response: str = "") -> bytes:
    props = {"capabilities": CAPABILITIES}
    return m(0, commands.Connection.StartOk(client_properties=props, mechanism="EXTERNAL", response=response))


def offered(protocol: AmqpProtocol) -> str:
    events(protocol, PROTOCOL_HEADER)
    ((_, start),) = sent(protocol)
    assert isinstance(start, commands.Connection.Start)
    return str(start.mechanisms)


@pytest.mark.parametrize("cert", [None, {}])
def test_external_is_not_offered_without_a_verified_certificate(cert: dict[str, Any] | None) -> None:
    protocol = make()
    protocol.set_peer_certificate(cert)  # {}: a certificate that was not verified
    assert offered(protocol) == "PLAIN AMQPLAIN"


def test_external_is_offered_with_a_verified_certificate_and_logs_in_its_cn() -> None:
    protocol = make()
    protocol.set_peer_certificate(certificate("guest"))
    assert offered(protocol) == "PLAIN AMQPLAIN EXTERNAL"
    (login,) = events(protocol, external_start_ok("ignored, as RabbitMQ ignores it"))
    assert login == LoginRequested("EXTERNAL", "guest", None, {"capabilities": CAPABILITIES})
    protocol.accept_login()
    assert [type(f) for _, f in sent(protocol)] == [commands.Connection.Tune]


def test_password_mechanisms_stay_offered_beside_external() -> None:
    protocol = make()
    protocol.set_peer_certificate(certificate("guest"))
    events(protocol, PROTOCOL_HEADER)
    (login,) = events(protocol, start_ok("alice", "pw"))
    assert isinstance(login, LoginRequested)
    assert (login.mechanism, login.user, login.password) == ("PLAIN", "alice", "pw")


def test_several_cns_are_joined_with_commas_as_rabbitmq_does() -> None:
    protocol = make()
    protocol.set_peer_certificate(certificate("app", "eu"))
    (login,) = events(protocol, PROTOCOL_HEADER + external_start_ok())
    assert isinstance(login, LoginRequested) and login.user == "app,eu"


@pytest.mark.parametrize("cert", [None, certificate()], ids=["no certificate", "no CN"])
def test_external_without_a_name_from_a_certificate_has_no_user_and_is_refused(
    cert: dict[str, Any] | None,
) -> None:
    protocol = make()
    protocol.set_peer_certificate(cert)
    (login,) = events(protocol, PROTOCOL_HEADER + external_start_ok())
    assert isinstance(login, LoginRequested)
    assert (login.mechanism, login.user) == ("EXTERNAL", None)
    sent(protocol)
    protocol.refuse_login()
    close = closing_error(protocol)
    assert close.reply_code == ACCESS_REFUSED
    assert "Login was refused using authentication mechanism EXTERNAL" in close.reply_text


def test_the_peer_certificate_is_given_before_the_handshake() -> None:
    protocol = make()
    events(protocol, PROTOCOL_HEADER)
    with pytest.raises(RuntimeError, match=r"await connection\.start-ok"):
        protocol.set_peer_certificate(certificate("guest"))


def test_refused_login_with_the_capability_gets_access_refused_then_waits_for_close_ok() -> None:
    protocol = make()
    events(protocol, PROTOCOL_HEADER + start_ok())
    sent(protocol)
    protocol.refuse_login()
    close = closing_error(protocol)
    assert close.reply_code == ACCESS_REFUSED
    assert close.reply_text.startswith(
        "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN"
    )
    assert protocol.state is State.CLOSING
    assert events(protocol, m(0, commands.Connection.CloseOk())) == [ConnectionClosed()]
    assert protocol.state is State.CLOSED


def test_refused_login_without_the_capability_just_closes() -> None:
    protocol = make()
    events(protocol, PROTOCOL_HEADER + start_ok(authentication_failure_close=False))
    sent(protocol)
    protocol.refuse_login()
    assert events(protocol) == [ConnectionClosed()]
    assert sent(protocol) == []


def test_a_wrong_protocol_header_is_answered_with_ours() -> None:
    protocol = make()
    assert events(protocol, b"AMQP\x00\x00\x09\x00") == [ConnectionClosed()]
    assert sent(protocol) == [(0, PROTOCOL_HEADER)]
    assert events(protocol, b"more") == []


@pytest.mark.parametrize("frame_max", [1024, FRAME_MAX * 2])
def test_tune_ok_outside_the_frame_max_limits_is_not_allowed(frame_max: int) -> None:
    protocol = make()
    events(protocol, PROTOCOL_HEADER + start_ok())
    protocol.accept_login()
    sent(protocol)
    (failed,) = events(protocol, m(0, commands.Connection.TuneOk(0, frame_max, 0)))
    assert isinstance(failed, ConnectionFailed) and failed.error.reply_code == NOT_ALLOWED
    close = closing_error(protocol)
    assert (close.reply_code, close.class_id, close.method_id) == (NOT_ALLOWED, 10, 31)


def test_answers_are_only_allowed_when_asked_for() -> None:
    protocol = make()
    with pytest.raises(RuntimeError):
        protocol.accept_login()
    with pytest.raises(RuntimeError):
        protocol.accept_vhost()


def test_channel_max_is_the_smaller_of_both_offers() -> None:
    protocol = opened(channel_max=0)  # 0: the client takes the server's
    assert protocol.channel_max == 16
    assert opened(channel_max=4).channel_max == 4


# --- channels ----------------------------------------------------------------------------------


def test_channel_open_and_client_close() -> None:
    protocol = opened()
    assert events(protocol, m(3, commands.Channel.Open())) == [ChannelOpened(3)]
    assert [(ch, type(f)) for ch, f in sent(protocol)] == [(3, commands.Channel.OpenOk)]
    assert events(protocol, m(3, commands.Channel.Close(200, "bye", 0, 0))) == [ChannelClosed(3)]
    assert [(ch, type(f)) for ch, f in sent(protocol)] == [(3, commands.Channel.CloseOk)]
    assert events(protocol, m(3, commands.Channel.Open())) == [ChannelOpened(3)]  # the number is free


@pytest.mark.parametrize(
    ("data", "code", "text"),
    [
        (m(1, commands.Channel.Open()) * 2, CHANNEL_ERROR, "channel 1 is already open"),
        (
            b"".join(m(n, commands.Channel.Open()) for n in range(100, 117)),
            NOT_ALLOWED,
            "number of channels opened (16) has reached the negotiated channel_max (16)",
        ),
        (m(2, commands.Basic.Qos(prefetch_count=1)), CHANNEL_ERROR, "expected 'channel.open'"),
        (
            m(0, commands.Basic.Qos(prefetch_count=1)),
            CHANNEL_ERROR,
            "unexpected method in connection state running",
        ),
    ],
)
def test_channel_and_connection_rules(data: bytes, code: int, text: str) -> None:
    protocol = opened()
    failed = events(protocol, data)[-1]
    assert isinstance(failed, ConnectionFailed)
    assert failed.error.reply_code == code and text in failed.error.reply_text
    (close,) = [f for _, f in sent(protocol) if isinstance(f, commands.Connection.Close)]
    assert close.reply_code == code


def test_update_secret_is_the_brokers_to_judge() -> None:
    protocol = opened()
    (event,) = events(protocol, m(0, commands.Connection.UpdateSecret("new", "rotation")))
    assert event == SecretUpdateRequested(b"new", "rotation")
    protocol.accept_secret()
    assert [type(f) for _, f in sent(protocol)] == [commands.Connection.UpdateSecretOk]


def test_methods_before_the_connection_is_open_are_a_channel_error() -> None:
    protocol = make()
    events(protocol, PROTOCOL_HEADER + start_ok())
    protocol.accept_login()
    events(protocol, m(0, commands.Connection.TuneOk(0, FRAME_MAX, 0)))
    (failed,) = events(protocol, m(1, commands.Channel.Open()))
    assert isinstance(failed, ConnectionFailed)
    assert failed.error.reply_text == "CHANNEL_ERROR - connection is not open"


def test_methods_on_an_open_channel_are_for_the_broker() -> None:
    protocol = with_channel()
    (event,) = events(protocol, m(1, commands.Queue.Declare(queue="jobs", durable=True)))
    assert isinstance(event, MethodReceived) and event.channel == 1
    assert isinstance(event.method, commands.Queue.Declare) and event.method.queue == "jobs"


def test_acks_nacks_and_rejects_pass_through() -> None:
    protocol = with_channel()
    data = (
        m(1, commands.Basic.Ack(7, multiple=True))
        + m(1, commands.Basic.Nack(8, multiple=False, requeue=True))
        + m(1, commands.Basic.Reject(9, requeue=False))
    )
    assert events(protocol, data) == [Ack(1, 7, True), Nack(1, 8, False, True), Reject(1, 9, False)]


# --- content assembly --------------------------------------------------------------------------


def test_a_message_is_one_event_however_it_is_split() -> None:
    protocol = with_channel(frame_max=4096, max_message_bytes=1 << 20)
    payload = bytes(range(256)) * 40  # three body frames at frame_max 4096
    data = m(1, commands.Basic.Publish(exchange="x", routing_key="k", mandatory=True))
    data += content(1, payload, frame_max=4096)
    got: list[Event] = []
    for i in range(len(data)):  # one octet at a time
        got += events(protocol, data[i : i + 1])
    (message,) = got
    assert isinstance(message, MessageReceived)
    assert message.publish == Publish(1, "x", "k", True, False)
    assert message.body == payload
    assert message.properties == encode_properties(delivery_mode=2)


def test_an_empty_body_completes_at_the_header() -> None:
    protocol = with_channel()
    (message,) = events(protocol, publish(1, b""))
    assert isinstance(message, MessageReceived) and message.body == b""


def test_messages_interleave_across_channels() -> None:
    protocol = with_channel(1)
    events(protocol, m(2, commands.Channel.Open()))
    one = m(1, commands.Basic.Publish(routing_key="a")) + content(1, b"first")
    two = m(2, commands.Basic.Publish(routing_key="b")) + content(2, b"second")
    # publish 1, publish 2, header 1, header 2, body 1, body 2
    frames_one = _split(one)
    frames_two = _split(two)
    data = b"".join(a + b for a, b in zip(frames_one, frames_two, strict=True))
    got = events(protocol, data)
    assert [(e.channel, e.body) for e in got if isinstance(e, MessageReceived)] == [
        (1, b"first"),
        (2, b"second"),
    ]


def _split(data: bytes) -> list[bytes]:
    out = []
    while data:
        size = int.from_bytes(data[3:7], "big") + 8
        out.append(data[:size])
        data = data[size:]
    return out


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (content(1, b"x"), UNEXPECTED_FRAME),  # a header nobody announced
        (m(1, commands.Basic.Publish()) + m(1, commands.Basic.Qos()), UNEXPECTED_FRAME),
        (m(1, commands.Basic.Publish()) + m(1, commands.Basic.Ack(1)), UNEXPECTED_FRAME),
        (m(1, commands.Basic.Publish(immediate=True)), NOT_IMPLEMENTED),
        (frame.marshal(body.ContentBody(b"x"), 1), UNEXPECTED_FRAME),
    ],
)
def test_content_out_of_place_is_a_connection_error(data: bytes, code: int) -> None:
    protocol = with_channel()
    (failed,) = events(protocol, data)
    assert isinstance(failed, ConnectionFailed) and failed.error.reply_code == code
    assert closing_error(protocol).reply_code == code


def test_a_body_longer_than_its_header_said_is_a_frame_error() -> None:
    protocol = with_channel()
    props = commands.Basic.Properties()
    data = m(1, commands.Basic.Publish()) + frame.marshal(header.ContentHeader(0, 2, props), 1)
    data += frame.marshal(body.ContentBody(b"abc"), 1)
    (failed,) = events(protocol, data)
    assert isinstance(failed, ConnectionFailed) and failed.error.reply_code == FRAME_ERROR


def test_a_header_of_another_class_is_unexpected() -> None:
    protocol = with_channel()
    (failed,) = events(protocol, m(1, commands.Basic.Publish()) + raw_header(1, 0, b"\x00\x00", class_id=50))
    assert isinstance(failed, ConnectionFailed)
    assert failed.error.reply_text == "UNEXPECTED_FRAME - content header for class 50"


def test_an_oversized_message_closes_its_channel_only() -> None:
    protocol = with_channel()
    events(protocol, m(2, commands.Channel.Open()))
    sent(protocol)
    big = publish(1, b"x" * (MAX_MESSAGE + 1))
    got = events(protocol, big + m(1, commands.Basic.Ack(1)) + publish(2, b"fine"))
    closed = got[0]
    assert isinstance(closed, ChannelClosed) and closed.channel == 1 and closed.error is not None
    assert closed.error.reply_code == PRECONDITION_FAILED
    assert (closed.error.class_id, closed.error.method_id) == (60, 40)
    assert [type(e) for e in got[1:]] == [MessageReceived]  # channel 1's body and ack were dropped
    ((channel, close),) = sent(protocol)
    assert channel == 1 and isinstance(close, commands.Channel.Close)
    assert close.reply_text == (
        f"PRECONDITION_FAILED - message size {MAX_MESSAGE + 1} is larger than configured max size "
        f"{MAX_MESSAGE}"
    )
    # until the client's close-ok, channel 1 stays closing; then it can be opened again
    assert events(protocol, m(1, commands.Channel.Open())) == []
    assert events(protocol, m(1, commands.Channel.CloseOk())) == []
    assert events(protocol, m(1, commands.Channel.Open())) == [ChannelOpened(1)]


# --- closing -----------------------------------------------------------------------------------


def test_the_broker_closes_a_channel() -> None:
    protocol = with_channel()
    protocol.close_channel(1, ChannelException(NOT_FOUND, "no queue 'q' in vhost '/'", 0x0032000A))
    ((channel, close),) = sent(protocol)
    assert channel == 1 and isinstance(close, commands.Channel.Close)
    assert (close.reply_code, close.reply_text) == (NOT_FOUND, "NOT_FOUND - no queue 'q' in vhost '/'")
    assert (close.class_id, close.method_id) == (50, 10)
    # frames in flight are dropped; a crossing channel.close is answered
    assert events(protocol, publish(1, b"late") + m(1, commands.Basic.Ack(3))) == []
    assert events(protocol, m(1, commands.Channel.Close(200, "", 0, 0))) == []
    assert [type(f) for _, f in sent(protocol)] == [commands.Channel.CloseOk]
    assert events(protocol, m(1, commands.Channel.Open())) == [ChannelOpened(1)]


def test_the_broker_closes_the_connection() -> None:
    protocol = with_channel()
    protocol.fail(ConnectionException(CONNECTION_FORCED, "broker shutdown"))
    close = closing_error(protocol)
    assert (close.reply_code, close.reply_text) == (CONNECTION_FORCED, "CONNECTION_FORCED - broker shutdown")
    assert events(protocol, publish(1, b"x") + m(1, commands.Channel.Open())) == []
    assert events(protocol, m(0, commands.Connection.CloseOk())) == [ConnectionClosed()]
    assert events(protocol, m(0, commands.Connection.Close(200, "", 0, 0))) == []  # nothing more is read


def test_a_close_crossing_ours_is_answered() -> None:
    protocol = opened()
    protocol.fail(ConnectionException(CONNECTION_FORCED, "bye"))
    sent(protocol)
    assert events(protocol, m(0, commands.Connection.Close(200, "me too", 0, 0))) == [ConnectionClosed()]
    assert [type(f) for _, f in sent(protocol)] == [commands.Connection.CloseOk]


def test_the_client_closes_the_connection() -> None:
    protocol = with_channel()
    got = events(protocol, m(0, commands.Connection.Close(200, "Normal shutdown", 0, 0)))
    assert got == [ConnectionClosed(200, "Normal shutdown")]
    assert [type(f) for _, f in sent(protocol)] == [commands.Connection.CloseOk]


def test_lost_framing_fails_the_connection_then_ends_it() -> None:
    protocol = with_channel()
    oversized = b"\x01\x00\x01" + (FRAME_MAX + 1).to_bytes(4, "big")
    (failed,) = events(protocol, oversized)
    assert isinstance(failed, ConnectionFailed) and failed.error.reply_code == FRAME_ERROR
    assert closing_error(protocol).reply_code == FRAME_ERROR
    # the client's close-ok can no longer be found in the stream: the broker's close timer ends it
    assert events(protocol, m(0, commands.Connection.CloseOk())) == []
    assert protocol.state is State.CLOSING


def test_failing_before_the_handshake_just_closes() -> None:
    protocol = make()
    protocol.fail(ConnectionException(CONNECTION_FORCED, "broker shutdown"))
    assert events(protocol) == [ConnectionClosed()]
    assert sent(protocol) == []


# --- output, heartbeats, flow ------------------------------------------------------------------


def test_deliveries_use_the_negotiated_frame_max() -> None:
    protocol = make()
    events(protocol, PROTOCOL_HEADER + start_ok())
    protocol.accept_login()
    events(protocol, m(0, commands.Connection.TuneOk(0, 4096, 0)) + m(0, commands.Connection.Open("/")))
    protocol.accept_vhost()
    events(protocol, m(1, commands.Channel.Open()))
    sent(protocol)
    payload = b"y" * 10_000
    protocol.deliver(1, shortstr("ctag"), 5, True, "ex", "rk", encode_properties(delivery_mode=2), payload)
    frames = sent(protocol)
    deliver = frames[0][1]
    assert isinstance(deliver, commands.Basic.Deliver)
    assert (deliver.consumer_tag, deliver.delivery_tag, deliver.redelivered) == ("ctag", 5, True)
    assert isinstance(frames[1][1], header.ContentHeader) and frames[1][1].body_size == len(payload)
    bodies = [f.value for _, f in frames[2:]]
    assert b"".join(bodies) == payload and max(map(len, bodies)) == 4096 - 8


def test_confirms_returns_and_get_ok() -> None:
    protocol = with_channel()
    protocol.confirm(1, 10, True, True)
    protocol.confirm(1, 11, False, False)
    protocol.basic_return(1, 312, "NO_ROUTE", "x", "k", encode_properties(), b"body")
    protocol.get_ok(1, 3, False, "", "q", 41, encode_properties(), b"got")
    frames = [f for _, f in sent(protocol)]
    ack, nack, ret = frames[0], frames[1], frames[2]
    assert isinstance(ack, commands.Basic.Ack) and (ack.delivery_tag, ack.multiple) == (10, True)
    assert isinstance(nack, commands.Basic.Nack) and (nack.delivery_tag, nack.multiple) == (11, False)
    assert isinstance(ret, commands.Basic.Return) and (ret.reply_code, ret.exchange) == (312, "x")
    get_ok = frames[5]
    assert isinstance(get_ok, commands.Basic.GetOk) and get_ok.message_count == 41


def test_on_output_fires_when_output_appears() -> None:
    calls: list[int] = []
    protocol = make(on_output=lambda: calls.append(1))
    events(protocol, PROTOCOL_HEADER)  # connection.start
    protocol.send_method(0, commands.Connection.Blocked("x"))  # more output: no new call
    assert calls == [1]
    sent(protocol)
    protocol.deliver(1, shortstr("t"), 1, False, "", "q", encode_properties(), b"")
    assert calls == [1, 1]


def test_heartbeats() -> None:
    protocol = opened(heartbeat_=10)
    assert protocol.tick()  # output went out during the handshake; nothing received yet counts from here
    assert [type(f) for _, f in sent(protocol)] == []
    assert protocol.tick()
    assert [type(f) for _, f in sent(protocol)] == [heartbeat.Heartbeat]
    events(protocol, frame.marshal(heartbeat.Heartbeat(), 0))  # the client's heartbeat
    for _ in range(4):  # the first tick sees the heartbeat; then three silent half-intervals
        assert protocol.tick()
    assert not protocol.tick()  # two heartbeat intervals of silence


def test_no_heartbeats_when_none_were_negotiated() -> None:
    protocol = opened(heartbeat_=0)
    for _ in range(10):
        assert protocol.tick()
    assert sent(protocol) == []


def test_blocked_and_unblocked_only_for_clients_that_announced_them() -> None:
    protocol = opened()
    assert protocol.block("low on memory")
    assert protocol.unblock()
    blocked, unblocked = (f for _, f in sent(protocol))
    assert isinstance(blocked, commands.Connection.Blocked) and blocked.reason == "low on memory"
    assert isinstance(unblocked, commands.Connection.Unblocked)

    other = make()
    events(other, PROTOCOL_HEADER + start_ok(**{"connection.blocked": False}))
    other.accept_login()
    events(other, m(0, commands.Connection.TuneOk(0, FRAME_MAX, 0)) + m(0, commands.Connection.Open("/")))
    other.accept_vhost()
    sent(other)
    assert not other.block("low on memory")
    assert sent(other) == []


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(["small", "empty", "big", "ack"]), min_size=1, max_size=12),
    st.lists(st.integers(1, 300), min_size=1, max_size=20),
)
def test_events_do_not_depend_on_how_the_bytes_arrive(kinds: list[str], cuts: list[int]) -> None:
    """Whole messages the reader finds at once and the same frames read piecemeal are the
    same events (the reader's one-step path for whole messages changes nothing visible)."""
    data = b""
    for i, kind in enumerate(kinds):
        if kind == "ack":
            data += m(1, commands.Basic.Ack(i, multiple=False))
        else:
            payload = {"small": b"s%d" % i, "empty": b"", "big": b"b" * 600}[kind]
            data += publish(1, payload, routing_key=f"k{i}")
    whole = with_channel(max_message_bytes=500)
    expected = events(whole, data)
    pieces = with_channel(max_message_bytes=500)
    got: list[Event] = []
    pos = 0
    for cut in cuts * (len(data) // sum(cuts) + 1):
        if pos >= len(data):
            break
        got += events(pieces, data[pos : pos + cut])
        pos += cut
    got += events(pieces, data[pos:])

    def plain(evs: list[Event]) -> list[object]:  # exceptions compare by identity
        return [
            (e.channel, e.error.reply_text if e.error else None) if isinstance(e, ChannelClosed) else e
            for e in evs
        ]

    assert plain(got) == plain(expected)
    assert [(ch, type(f), dict(f)) for ch, f in sent(pieces)] == [
        (ch, type(f), dict(f)) for ch, f in sent(whole)
    ]


@pytest.mark.parametrize(
    ("before", "code"),
    [(m(1, commands.Basic.Publish(routing_key="q")), UNEXPECTED_FRAME), (b"", NOT_IMPLEMENTED)],
)
def test_a_whole_message_out_of_place_is_still_an_error(before: bytes, code: int) -> None:
    protocol = with_channel()
    immediate = code == NOT_IMPLEMENTED
    data = before + m(1, commands.Basic.Publish(routing_key="q", immediate=immediate)) + content(1, b"x")
    got = events(protocol, data)
    assert isinstance(got[-1], ConnectionFailed) and got[-1].error.reply_code == code
