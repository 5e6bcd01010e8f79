"""Publishing and consuming with pika's BlockingConnection: push and pull, acknowledgements,
prefetch, recovery, publisher confirms, transactions, consumer cancellation, message properties,
large and empty bodies, authentication and many channels."""

from __future__ import annotations

import datetime
import decimal
import os
from collections.abc import Callable

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.spec import Basic

from tests.amqp.support import Names, connect, consume, consumer_count, get_all, ready_count, wait_until

NOT_FOUND = 404
PRECONDITION_FAILED = 406
ACCESS_REFUSED = 403
NOT_IMPLEMENTED = 540


@pytest.fixture
def queue(connection: BlockingConnection, names: Names) -> str:
    q = names.queue()
    connection.channel().queue_declare(q)
    return q


@pytest.fixture
def publisher(connection: BlockingConnection) -> BlockingChannel:
    """A channel in confirm mode: once basic_publish returns, the message is in its queues."""
    ch = connection.channel()
    ch.confirm_delivery()
    return ch


def publish_all(ch: BlockingChannel, queue: str, bodies: list[bytes]) -> None:
    for body in bodies:
        ch.basic_publish("", queue, body)


# -- push and pull -------------------------------------------------------------------------------


def test_publish_and_consume_with_acks(
    channel: BlockingChannel, publisher: BlockingChannel, queue: str
) -> None:
    publish_all(publisher, queue, [b"a", b"b", b"c"])
    deliveries = consume(channel, queue, 3, auto_ack=False)
    assert [body for _, _, body in deliveries] == [b"a", b"b", b"c"]
    tags = [m.delivery_tag for m, _, _ in deliveries]
    assert tags == [1, 2, 3]  # per channel, from 1
    for method, _, _ in deliveries:
        assert (method.exchange, method.routing_key, method.redelivered) == ("", queue, False)
        channel.basic_ack(method.delivery_tag)
    assert ready_count(publisher, queue) == 0
    channel.close()  # nothing unacknowledged is left to come back
    assert ready_count(publisher, queue) == 0


def test_basic_get_and_get_empty(channel: BlockingChannel, publisher: BlockingChannel, queue: str) -> None:
    assert channel.basic_get(queue) == (None, None, None)  # basic.get-empty
    publish_all(publisher, queue, [b"first", b"second"])
    method, _, body = channel.basic_get(queue)
    assert isinstance(method, Basic.GetOk)
    assert (body, method.message_count, method.redelivered, method.routing_key) == (b"first", 1, False, queue)
    channel.basic_ack(method.delivery_tag)
    method, _, body = channel.basic_get(queue, auto_ack=True)
    assert (body, method.message_count) == (b"second", 0)
    assert channel.basic_get(queue) == (None, None, None)


def test_reject_and_nack_with_requeue_redeliver(
    channel: BlockingChannel, publisher: BlockingChannel, queue: str
) -> None:
    publish_all(publisher, queue, [b"m"])
    method, _, _ = channel.basic_get(queue)
    assert not method.redelivered
    channel.basic_reject(method.delivery_tag, requeue=True)
    method, _, body = channel.basic_get(queue)
    assert (body, method.redelivered) == (b"m", True)
    channel.basic_nack(method.delivery_tag, requeue=True)
    method, _, body = channel.basic_get(queue)
    assert (body, method.redelivered) == (b"m", True)
    channel.basic_ack(method.delivery_tag)
    assert channel.basic_get(queue) == (None, None, None)


def test_reject_and_nack_without_requeue_drop(
    channel: BlockingChannel, publisher: BlockingChannel, queue: str
) -> None:
    publish_all(publisher, queue, [b"1", b"2", b"3", b"4"])
    deliveries = consume(channel, queue, 4, auto_ack=False)
    channel.basic_reject(deliveries[0][0].delivery_tag, requeue=False)
    channel.basic_nack(deliveries[2][0].delivery_tag, multiple=True, requeue=False)  # 2 and 3
    channel.close()  # the unacknowledged 4 is requeued
    assert get_all(publisher, queue) == [b"4"]


def test_multiple_ack_and_requeue_on_channel_close(
    connection: BlockingConnection, publisher: BlockingChannel, queue: str
) -> None:
    publish_all(publisher, queue, [b"%d" % i for i in range(6)])
    ch = connection.channel()
    deliveries = consume(ch, queue, 6, auto_ack=False)
    ch.basic_ack(deliveries[2][0].delivery_tag, multiple=True)  # 0, 1, 2
    ch.basic_ack(deliveries[4][0].delivery_tag)  # 4 alone
    ch.close()  # 3 and 5 were never acknowledged: back to the queue, in their original order
    assert ready_count(publisher, queue) == 2
    again = consume(publisher, queue, 2)
    assert [(body, m.redelivered) for m, _, body in again] == [(b"3", True), (b"5", True)]


@pytest.mark.parametrize(
    "bad_ack",
    [
        lambda ch, tag: ch.basic_ack(tag + 100),
        lambda ch, tag: (ch.basic_ack(tag), ch.basic_ack(tag)),
        lambda ch, tag: ch.basic_reject(tag + 100),
    ],
    ids=["unknown-tag", "acked-twice", "reject-unknown-tag"],
)
def test_acking_an_unknown_delivery_tag_is_406(
    channel: BlockingChannel, publisher: BlockingChannel, queue: str, bad_ack: Callable[..., object]
) -> None:
    publish_all(publisher, queue, [b"m"])
    method, _, _ = channel.basic_get(queue)
    bad_ack(channel, method.delivery_tag)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        channel.queue_declare(queue, passive=True)  # any synchronous call sees the channel closed
    assert err.value.reply_code == PRECONDITION_FAILED


def test_prefetch_limits_unacknowledged_deliveries(
    connection: BlockingConnection, publisher: BlockingChannel, queue: str
) -> None:
    publish_all(publisher, queue, [b"%d" % i for i in range(10)])
    ch = connection.channel()
    ch.basic_qos(prefetch_count=3)
    received: list[Basic.Deliver] = []
    ch.basic_consume(queue, lambda _ch, method, _props, _body: received.append(method))
    wait_until(lambda: len(received) >= 3, "3 deliveries", connection)
    # The broker holds the other 7 back until something is acknowledged.
    assert ready_count(publisher, queue) == 7
    assert len(received) == 3
    ch.basic_ack(received[0].delivery_tag)
    wait_until(lambda: len(received) >= 4, "a 4th delivery after one ack", connection)
    assert ready_count(publisher, queue) == 6
    ch.basic_ack(received[3].delivery_tag, multiple=True)
    wait_until(lambda: len(received) >= 7, "3 more deliveries after acking all", connection)
    assert ready_count(publisher, queue) == 3
    assert len(received) == 7


def test_recover_redelivers_unacknowledged(
    connection: BlockingConnection, publisher: BlockingChannel, queue: str
) -> None:
    publish_all(publisher, queue, [b"x", b"y"])
    ch = connection.channel()
    received: list[tuple[bytes, bool]] = []
    ch.basic_consume(queue, lambda _ch, method, _props, body: received.append((body, method.redelivered)))
    wait_until(lambda: len(received) == 2, "2 deliveries", connection)
    ch.basic_recover(requeue=True)
    wait_until(lambda: len(received) == 4, "2 redeliveries", connection)
    assert received == [(b"x", False), (b"y", False), (b"x", True), (b"y", True)]


def test_recover_without_requeue_is_not_implemented(connection: BlockingConnection, queue: str) -> None:
    # RabbitMQ does not implement basic.recover{requeue=false}: it closes the *connection* with
    # 540 NOT_IMPLEMENTED (surprisingly not just the channel).
    ch = connection.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as err:
        ch.basic_recover(requeue=False)
    assert err.value.reply_code == NOT_IMPLEMENTED


def test_publish_to_a_missing_exchange_is_404(connection: BlockingConnection, names: Names) -> None:
    ch = connection.channel()
    ch.basic_publish(names.exchange("missing"), "k", b"lost")  # asynchronous: no answer
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        ch.queue_declare("", exclusive=True)  # the next synchronous call finds the channel closed
    assert err.value.reply_code == NOT_FOUND
    # With confirms the publish itself fails.
    ch = connection.channel()
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        ch.basic_publish(names.exchange("missing"), "k", b"lost")
    assert err.value.reply_code == NOT_FOUND
    assert connection.is_open


def test_publish_to_an_unbound_routing_key_is_dropped(publisher: BlockingChannel, queue: str) -> None:
    publisher.basic_publish("amq.direct", "jackalope-test.nobody-binds-this", b"dropped")  # no error
    assert ready_count(publisher, queue) == 0


# -- publisher confirms --------------------------------------------------------------------------


def test_confirms_and_mandatory_returns(publisher: BlockingChannel, queue: str, names: Names) -> None:
    returned: list[tuple[Basic.Return, bytes]] = []
    publisher.add_on_return_callback(lambda _ch, method, _props, body: returned.append((method, body)))
    publisher.basic_publish("", queue, b"routed", mandatory=True)  # confirmed: returns normally
    nobody = names.queue("nobody")
    with pytest.raises(pika.exceptions.UnroutableError) as err:
        publisher.basic_publish("", nobody, b"unroutable", mandatory=True)
    (msg,) = err.value.messages
    assert msg.body == b"unroutable"
    assert (msg.method.reply_code, msg.method.reply_text) == (312, "NO_ROUTE")
    assert (msg.method.exchange, msg.method.routing_key) == ("", nobody)
    # Without mandatory an unroutable message is confirmed (and dropped) silently.
    publisher.basic_publish("", nobody, b"dropped")
    assert get_all(publisher, queue) == [b"routed"]


def test_confirm_select_on_a_transactional_channel_is_406(connection: BlockingConnection) -> None:
    ch = connection.channel()
    ch.tx_select()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        ch.confirm_delivery()
    assert err.value.reply_code == PRECONDITION_FAILED


# -- transactions --------------------------------------------------------------------------------


def test_transactions_commit_and_rollback(connection: BlockingConnection, queue: str) -> None:
    observer = connection.channel()
    tx = connection.channel()
    tx.tx_select()
    publish_all(tx, queue, [b"rolled-back-1", b"rolled-back-2"])
    tx.tx_rollback()
    publish_all(tx, queue, [b"committed-1"])
    assert ready_count(observer, queue) == 0  # not before the commit
    publish_all(tx, queue, [b"committed-2"])
    tx.tx_commit()
    assert get_all(observer, queue) == [b"committed-1", b"committed-2"]
    tx.tx_commit()  # an empty transaction commits fine
    assert get_all(observer, queue) == []


def test_acks_in_a_rolled_back_transaction_do_not_happen(
    connection: BlockingConnection, publisher: BlockingChannel, queue: str
) -> None:
    publish_all(publisher, queue, [b"m"])
    tx = connection.channel()
    tx.tx_select()
    method, _, _ = tx.basic_get(queue)
    tx.basic_ack(method.delivery_tag)
    tx.tx_rollback()
    tx.close()  # still unacknowledged, so it is requeued
    method, _, body = publisher.basic_get(queue, auto_ack=True)
    assert (body, method.redelivered) == (b"m", True)


# -- consumers -----------------------------------------------------------------------------------


def test_consumer_is_cancelled_when_its_queue_is_deleted(
    connection: BlockingConnection, publisher: BlockingChannel, queue: str
) -> None:
    assert connection.consumer_cancel_notify_supported
    ch = connection.channel()
    cancels: list[Basic.Cancel] = []
    ch.add_on_cancel_callback(lambda frame: cancels.append(frame.method))
    tag = ch.basic_consume(queue, lambda *a: None)
    publisher.queue_delete(queue)
    wait_until(lambda: cancels, "basic.cancel from the broker", connection)
    assert cancels[0].consumer_tag == tag
    assert ch.is_open  # the channel survives its consumer


def test_consume_generator_ends_when_its_queue_is_deleted(
    connection: BlockingConnection, publisher: BlockingChannel, queue: str
) -> None:
    publish_all(publisher, queue, [b"before"])
    ch = connection.channel()
    seen = []
    for method, _, body in ch.consume(queue, auto_ack=True, inactivity_timeout=5):
        assert method is not None, "neither a message nor the cancellation arrived"
        seen.append(body)
        publisher.queue_delete(queue)
    assert seen == [b"before"]  # and the loop ended: the broker cancelled the consumer


def test_client_cancel_stops_deliveries(
    connection: BlockingConnection, publisher: BlockingChannel, queue: str
) -> None:
    ch = connection.channel()
    received: list[bytes] = []
    tag = ch.basic_consume(queue, lambda _c, _m, _p, body: received.append(body), auto_ack=True)
    assert consumer_count(publisher, queue) == 1
    publish_all(publisher, queue, [b"one"])
    wait_until(lambda: received, "a delivery", connection)
    ch.basic_cancel(tag)
    assert consumer_count(publisher, queue) == 0
    publish_all(publisher, queue, [b"two"])
    assert get_all(publisher, queue) == [b"two"]
    assert received == [b"one"]


def test_exclusive_consumer_excludes_others(connection: BlockingConnection, queue: str) -> None:
    connection.channel().basic_consume(queue, lambda *a: None, exclusive=True)
    ch = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        ch.basic_consume(queue, lambda *a: None)
    assert err.value.reply_code == ACCESS_REFUSED


# -- message properties and bodies ---------------------------------------------------------------

HEADERS = {
    "text": "text ünïcode",
    "int": 42,
    "negative": -7,
    "int64": 2**40,
    "true": True,
    "false": False,
    "void": None,
    "bytes": b"\x00\xffbinary",
    "decimal": decimal.Decimal("3.14"),
    "timestamp": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
    "list": [1, "two", [3, None], {"k": "v"}, b"\x01"],
    "table": {"nested": {"deep": [True, 1], "empty": {}}, "b": b"x"},
    "empty-table": {},
    "empty-list": [],
    # pika cannot encode floats (and decodes them truncated to int): see test_aio_pika.py
}


def test_properties_round_trip_exactly(publisher: BlockingChannel, queue: str) -> None:
    props = pika.BasicProperties(
        content_type="application/json",
        content_encoding="utf-8",
        headers=HEADERS,
        delivery_mode=2,
        priority=5,
        correlation_id="corr-1",
        reply_to="reply-queue",
        expiration="60000",
        message_id="message-1",
        timestamp=1_700_000_000,
        type="order.created",
        user_id="guest",  # must be the connection's user
        app_id="jackalope-tests",
    )
    publisher.basic_publish("", queue, b'{"a": 1}', props)
    ((_, got, body),) = consume(publisher, queue, 1)
    assert body == b'{"a": 1}'
    assert got.headers == HEADERS
    for name in (
        "content_type",
        "content_encoding",
        "delivery_mode",
        "priority",
        "correlation_id",
        "reply_to",
        "expiration",
        "message_id",
        "timestamp",
        "type",
        "user_id",
        "app_id",
    ):
        assert getattr(got, name) == getattr(props, name), name
    assert got.cluster_id is None


def test_no_properties_arrive_as_none(publisher: BlockingChannel, queue: str) -> None:
    publisher.basic_publish("", queue, b"bare")
    ((_, got, _),) = consume(publisher, queue, 1)
    assert got.headers is None and got.content_type is None and got.delivery_mode is None


def test_user_id_must_match_the_connection_user(connection: BlockingConnection, queue: str) -> None:
    ch = connection.channel()
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        ch.basic_publish("", queue, b"forged", pika.BasicProperties(user_id="someone-else"))
    assert err.value.reply_code == PRECONDITION_FAILED


@pytest.mark.parametrize("size", [0, 1, 131_064, 131_065, 1 << 20, 10 << 20], ids=lambda n: f"{n}B")
def test_bodies_of_any_size(publisher: BlockingChannel, queue: str, size: int) -> None:
    # 131_064 and 131_065: the largest body that fits one frame of the default frame_max, plus one
    body = os.urandom(size)
    publisher.basic_publish("", queue, body)
    method, _, got = publisher.basic_get(queue, auto_ack=True)
    assert method is not None and got == body
    publisher.basic_publish("", queue, body)
    ((_, _, got),) = consume(publisher, queue, 1)
    assert got == body


def test_small_frame_max_splits_bodies(connect_to: Callable[..., BlockingConnection], queue: str) -> None:
    conn = connect_to(frame_max=4096)  # the smallest frame_max AMQP allows
    ch = conn.channel()
    ch.confirm_delivery()
    body = os.urandom(100_000)
    ch.basic_publish("", queue, body)
    assert get_all(ch, queue) == [body]


# -- connections and channels --------------------------------------------------------------------


def test_wrong_password_is_refused(amqp_url: str) -> None:
    bad = amqp_url.replace("guest:guest@", "guest:wrong-password@")
    assert bad != amqp_url
    with pytest.raises(
        (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError)
    ) as err:
        connect(bad)
    assert "ACCESS_REFUSED" in str(err.value)


def test_unknown_vhost_is_refused(amqp_url: str) -> None:
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as err:
        connect(amqp_url.rstrip("/") + "/no-such-vhost-jackalope-test")
    assert "NOT_ALLOWED" in str(err.value) or "ACCESS_REFUSED" in str(err.value)


def test_many_channels_on_one_connection(connection: BlockingConnection, names: Names) -> None:
    channels = [connection.channel() for _ in range(100)]
    assert len({ch.channel_number for ch in channels}) == 100
    queues = [names.queue(f"ch{i}") for i in range(len(channels))]
    for ch, q in zip(channels, queues, strict=True):
        ch.queue_declare(q)
        ch.confirm_delivery()
        ch.basic_publish("", q, q.encode())
    for ch, q in zip(reversed(channels), reversed(queues), strict=True):
        assert get_all(ch, q) == [q.encode()]
    for ch in channels[::2]:
        ch.close()
    for ch, q in zip(channels[1::2], queues[1::2], strict=True):
        assert ready_count(ch, q) == 0
    assert connection.is_open


def test_server_properties(connection: BlockingConnection) -> None:
    caps = connection._impl.server_properties["capabilities"]
    for cap in ("publisher_confirms", "basic.nack", "consumer_cancel_notify", "exchange_exchange_bindings"):
        assert caps.get(cap) is True, cap


def test_direct_reply_to_round_trip(connection: BlockingConnection, queue: str) -> None:
    """RabbitMQ's direct reply-to: the requester consumes the pseudo-queue without acks, the
    server replies to the rewritten reply_to and the answer arrives without any real queue."""
    requester = connection.channel()
    replies: list[tuple[bytes, str | None]] = []
    requester.basic_consume(
        "amq.rabbitmq.reply-to",
        lambda _ch, _m, props, body: replies.append((body, props.correlation_id)),
        auto_ack=True,
    )
    requester.basic_publish(
        "", queue, b"ping", pika.BasicProperties(reply_to="amq.rabbitmq.reply-to", correlation_id="c-1")
    )
    server = connection.channel()
    ((_, props, body),) = consume(server, queue, 1)
    assert body == b"ping"
    assert props.reply_to.startswith("amq.rabbitmq.reply-to.")
    server.basic_publish(
        "", props.reply_to, b"pong", pika.BasicProperties(correlation_id=props.correlation_id)
    )
    wait_until(lambda: replies, "the reply", connection)
    assert replies == [(b"pong", "c-1")]


def test_direct_reply_to_needs_the_reply_consumer(connection: BlockingConnection, queue: str) -> None:
    ch = connection.channel()
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        ch.basic_publish("", queue, b"x", pika.BasicProperties(reply_to="amq.rabbitmq.reply-to"))
    assert err.value.reply_code == PRECONDITION_FAILED
