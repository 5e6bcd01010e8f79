"""Where RabbitMQ answers in a particular way at the edges, and client libraries rely on it
(aio-pika's RPC ``close()`` unbinds from exchanges already gone, for one).  Every test here
passes against RabbitMQ too (``JACKALOPE_TEST_AMQP_URL``)."""

from __future__ import annotations

import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from tests.amqp.support import Names

ACCESS_REFUSED = 403
RESOURCE_LOCKED = 405


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
