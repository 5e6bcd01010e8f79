"""Where RabbitMQ answers in a particular way at the edges, and client libraries rely on it
(aio-pika's RPC ``close()`` unbinds from exchanges already gone, for one).  Every test here
passes against RabbitMQ too (``JACKALOPE_TEST_AMQP_URL``)."""

from __future__ import annotations

import pika.exceptions
import pytest
from pamqp import commands, header
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from tests.amqp.rawamqp import RawConnection
from tests.amqp.support import EXTERNAL_URL, Names, connect, host_port

ACCESS_REFUSED = 403
RESOURCE_LOCKED = 405
NOT_ALLOWED = 530


def test_unbinding_what_is_gone_is_unbind_ok(channel: BlockingChannel, names: Names) -> None:
    queue, exchange, gone = names.queue(), names.exchange(), names.exchange("gone")
    channel.queue_declare(queue)
    channel.exchange_declare(exchange, "direct")
    channel.queue_unbind(queue, gone, "k")  # no such exchange
    channel.queue_unbind(names.queue("gone"), exchange, "k")  # no such queue
    channel.exchange_unbind(exchange, gone, "k")
    channel.exchange_unbind(gone, exchange, "k")
    channel.queue_declare(queue, passive=True)  # the channel is still open


def test_if_empty_counts_ready_messages_only(
    connection: BlockingConnection, channel: BlockingChannel, names: Names
) -> None:
    queue = names.queue()
    channel.queue_declare(queue)
    channel.basic_publish("", queue, b"taken, not acked")
    method, _, _ = channel.basic_get(queue)
    assert method is not None
    connection.channel().queue_delete(queue, if_empty=True)  # one unacked, none ready: deleted
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        connection.channel().queue_declare(queue, passive=True)


def test_deleting_a_queue_spares_auto_delete_exchanges_it_was_not_bound_to(
    channel: BlockingChannel, names: Names
) -> None:
    spare, queue = names.exchange("spare"), names.queue()
    channel.exchange_declare(spare, "fanout", auto_delete=True)  # never bound
    channel.queue_declare(queue)
    channel.queue_delete(queue)
    channel.exchange_declare(spare, "fanout", passive=True)


def test_deleting_the_last_bound_queue_deletes_an_auto_delete_exchange(
    connection: BlockingConnection, channel: BlockingChannel, names: Names
) -> None:
    exchange, queue = names.exchange(), names.queue()
    channel.exchange_declare(exchange, "fanout", auto_delete=True)
    channel.queue_declare(queue)
    channel.queue_bind(queue, exchange)
    channel.queue_delete(queue)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        connection.channel().exchange_declare(exchange, "fanout", passive=True)


def test_deleting_what_is_gone_is_delete_ok(channel: BlockingChannel, names: Names) -> None:
    # aio-pika's and kombu's cleanups delete exchanges an auto-delete may already have removed
    gone_exchange, gone_queue = names.exchange("gone"), names.queue("gone")
    channel.exchange_delete(gone_exchange)
    channel.exchange_delete(gone_exchange, if_unused=True)
    assert channel.queue_delete(gone_queue).method.message_count == 0
    assert channel.queue_delete(gone_queue, if_unused=True, if_empty=True).method.message_count == 0
    channel.queue_declare(names.queue(), passive=False)  # the channel is still open


def test_deleting_the_default_or_an_amq_exchange_is_403_even_if_missing(
    connection: BlockingConnection,
) -> None:
    for name in ("", "amq.direct", "amq.no-such-exchange"):
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
            connection.channel().exchange_delete(name)
        assert err.value.reply_code == ACCESS_REFUSED


def test_redeclaring_ones_exclusive_queue_as_not_exclusive_is_405(
    channel: BlockingChannel, names: Names
) -> None:
    queue = names.queue()
    channel.queue_declare(queue, exclusive=True)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        channel.queue_declare(queue, exclusive=False)
    assert err.value.reply_code == RESOURCE_LOCKED


def test_a_passive_declare_of_the_default_exchange_is_403(channel: BlockingChannel) -> None:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        channel.exchange_declare("", passive=True)
    assert err.value.reply_code == ACCESS_REFUSED


def test_channel_max_limits_open_channels_not_their_numbers(amqp_url: str) -> None:
    conn = connect(amqp_url, channel_max=2)
    try:
        conn.channel(channel_number=5)  # numbers above channel_max are fine
        conn.channel(channel_number=6)
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as err:
            conn.channel(channel_number=7)
        assert err.value.reply_code == NOT_ALLOWED
        assert "has reached the negotiated channel_max (2)" in err.value.reply_text
    finally:
        if conn.is_open:
            conn.close()


def test_update_secret_with_the_users_password_is_answered(connection: BlockingConnection) -> None:
    connection.update_secret("guest", "rotation")
    connection.channel().queue_declare("", exclusive=True)  # the connection carries on


@pytest.mark.skipif(EXTERNAL_URL is not None, reason="RabbitMQ takes any secret for an internal user")
def test_update_secret_with_a_wrong_password_is_refused(amqp_url: str) -> None:
    conn = connect(amqp_url)
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as err:
        conn.update_secret("not the password", "rotation")
    assert err.value.reply_code == NOT_ALLOWED


@pytest.mark.parametrize("notify", [True, False])
def test_queue_delete_ok_comes_before_the_deleting_channels_cancel(
    amqp_url: str, names: Names, notify: bool
) -> None:
    """basic.cancel goes to clients that announced consumer_cancel_notify, after delete-ok."""
    queue = names.queue()
    with RawConnection.open(*host_port(amqp_url), capabilities={"consumer_cancel_notify": notify}) as raw:
        raw.send_frame(commands.Queue.Declare(queue=queue), channel=1)
        raw.expect(commands.Queue.DeclareOk)
        raw.send_frame(commands.Basic.Consume(queue=queue, consumer_tag="c1"), channel=1)
        raw.expect(commands.Basic.ConsumeOk)
        raw.send_frame(commands.Queue.Delete(queue=queue), channel=1)
        raw.expect(commands.Queue.DeleteOk)
        if notify:
            assert raw.expect(commands.Basic.Cancel).consumer_tag == "c1"
        raw.send_frame(commands.Basic.Qos(prefetch_count=1), channel=1)
        raw.expect(commands.Basic.QosOk)  # nothing (more) came in between


def test_basic_recover_async_requeues_without_a_reply(amqp_url: str, names: Names) -> None:
    queue = names.queue()
    with RawConnection.open(*host_port(amqp_url)) as raw:
        raw.send_frame(commands.Queue.Declare(queue=queue), channel=1)
        raw.expect(commands.Queue.DeclareOk)
        raw.send_frame(commands.Basic.Publish(exchange="", routing_key=queue), channel=1)
        raw.send_frame(header.ContentHeader(0, 0, commands.Basic.Properties()), channel=1)  # no body
        raw.send_frame(commands.Basic.Get(queue=queue), channel=1)
        assert raw.expect(commands.Basic.GetOk).redelivered is False
        raw.send_frame(commands.Basic.RecoverAsync(requeue=True), channel=1)
        raw.send_frame(commands.Basic.Get(queue=queue), channel=1)
        assert raw.expect(commands.Basic.GetOk).redelivered is True  # nothing in between


def test_an_empty_queue_name_is_the_last_declared_queue(channel: BlockingChannel, names: Names) -> None:
    exchange = names.exchange()
    channel.exchange_declare(exchange, "direct")
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind("", exchange)  # queue and routing key: the last declared queue's name
    channel.confirm_delivery()
    channel.basic_publish(exchange, queue, b"by the shortcut")
    method, _, body = channel.basic_get("", auto_ack=True)
    assert method is not None and body == b"by the shortcut"
    channel.basic_publish(exchange, queue, b"purged")
    assert channel.queue_purge("").method.message_count == 1
    channel.queue_unbind("", exchange)
    channel.basic_consume("", lambda *_: None)
    channel.queue_delete("")
    assert channel.is_open


@pytest.mark.parametrize("operation", ["get", "bind", "purge", "delete", "consume"])
def test_an_empty_queue_name_with_none_declared_is_404(
    connection: BlockingConnection, names: Names, operation: str
) -> None:
    ch = connection.channel()
    do = {
        "get": lambda: ch.basic_get(""),
        "bind": lambda: ch.queue_bind("", "amq.direct", "k"),
        "purge": lambda: ch.queue_purge(""),
        "delete": lambda: ch.queue_delete(""),
        "consume": lambda: ch.basic_consume("", lambda *_: None),
    }[operation]
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        do()
    assert (err.value.reply_code, err.value.reply_text) == (404, "NOT_FOUND - no previously declared queue")


def test_channel_flow_off_is_not_implemented(connection: BlockingConnection) -> None:
    ch = connection.channel()
    assert ch.flow(True) is True
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as err:
        ch.flow(False)
    assert (err.value.reply_code, err.value.reply_text) == (540, "NOT_IMPLEMENTED - active=false")


def test_the_capabilities_rabbitmq_advertises(connection: BlockingConnection) -> None:
    assert connection._impl.server_properties["capabilities"] == {
        "publisher_confirms": True,
        "exchange_exchange_bindings": True,
        "basic.nack": True,
        "consumer_cancel_notify": True,
        "connection.blocked": True,
        "consumer_priorities": True,
        "authentication_failure_close": True,
        "per_consumer_qos": True,
        "direct_reply_to": True,
    }


@pytest.mark.parametrize(
    "method",
    [commands.Basic.Qos(prefetch_count=1), commands.Queue.Declare(queue="q"), commands.Channel.Open()],
    ids=["basic.qos", "queue.declare", "channel.open"],
)
def test_a_channel_method_on_channel_0_is_a_channel_error(amqp_url: str, method: commands.Frame) -> None:
    with RawConnection.open(*host_port(amqp_url), open_channel=False) as raw:
        raw.send_frame(method, channel=0)
        close = raw.expect_connection_close()
    assert (close.reply_code, close.reply_text) == (
        504,
        "CHANNEL_ERROR - unexpected method in connection state running",
    )
    assert (close.class_id << 16) | close.method_id == method.index


def test_a_method_on_a_channel_never_opened_is_a_channel_error(amqp_url: str) -> None:
    with RawConnection.open(*host_port(amqp_url), open_channel=False) as raw:
        raw.send_frame(commands.Basic.Qos(prefetch_count=1), channel=5)
        close = raw.expect_connection_close()
    assert (close.reply_code, close.reply_text) == (504, "CHANNEL_ERROR - expected 'channel.open'")
