"""The ``x-consistent-hash`` exchange over a real client (pika): each message to exactly one
queue, shares following the binding weights, one key always to one queue, hashing on a header
or a property, and the plugin's refusals.

Jackalope-only: the RabbitMQ node the differential tests use has no plugins (an unknown type's
refusal, which both brokers give, is in test_delayed_exchange.py)."""

from __future__ import annotations

from collections.abc import Callable

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from tests.amqp.support import EXTERNAL_URL, Names, get_all, ready_count

pytestmark = pytest.mark.skipif(EXTERNAL_URL is not None, reason="a RabbitMQ plugin's type, not on that node")

PRECONDITION_FAILED = 406
WEIGHTS = {"q1": "1", "q2": "1", "q3": "2", "q4": "4"}


def weighted(channel: BlockingChannel, names: Names, **arguments: object) -> tuple[str, dict[str, str]]:
    """A consistent-hash exchange with four queues bound by WEIGHTS; its name and the queues."""
    x = names.exchange("chx")
    channel.exchange_declare(x, "x-consistent-hash", arguments=arguments or None)
    queues = {}
    for label, weight in WEIGHTS.items():
        queue = names.queue(label)
        channel.queue_declare(queue)
        channel.queue_bind(queue, x, routing_key=weight)
        queues[label] = queue
    channel.confirm_delivery()
    return x, queues


def test_each_message_goes_to_one_queue_in_proportion_to_the_weights(
    channel: BlockingChannel, names: Names
) -> None:
    x, queues = weighted(channel, names)
    total = 4000
    for i in range(total):
        channel.basic_publish(x, f"order-{i}", b"m")
    counts = {label: ready_count(channel, queue) for label, queue in queues.items()}
    assert sum(counts.values()) == total  # exactly one copy each
    for label, weight in WEIGHTS.items():
        expected = total * int(weight) / 8
        assert abs(counts[label] - expected) < 0.1 * expected, counts


def test_one_key_always_goes_to_the_same_queue(channel: BlockingChannel, names: Names) -> None:
    x, queues = weighted(channel, names)
    for i in range(30):
        channel.basic_publish(x, "customer-42", b"%d" % i)
    holding = [label for label, queue in queues.items() if ready_count(channel, queue)]
    assert len(holding) == 1
    assert get_all(channel, queues[holding[0]]) == [b"%d" % i for i in range(30)]  # in order


def test_hash_header(channel: BlockingChannel, names: Names) -> None:
    x, queues = weighted(channel, names, **{"hash-header": "customer"})
    for i in range(400):  # one routing key, many header values: spread by the header
        channel.basic_publish(x, "same", b"m", pika.BasicProperties(headers={"customer": f"c{i}"}))
    assert all(ready_count(channel, queue) for queue in queues.values())
    for queue in queues.values():
        channel.queue_purge(queue)
    for i in range(20):  # many keys, one header value: one queue
        channel.basic_publish(x, f"k{i}", b"m", pika.BasicProperties(headers={"customer": "c7"}))
    assert sorted(ready_count(channel, queue) for queue in queues.values()) == [0, 0, 0, 20]


def test_hash_property(channel: BlockingChannel, names: Names) -> None:
    x, queues = weighted(channel, names, **{"hash-property": "message_id"})
    for i in range(400):
        channel.basic_publish(x, "same", b"m", pika.BasicProperties(message_id=f"id-{i}"))
    assert all(ready_count(channel, queue) for queue in queues.values())
    for queue in queues.values():
        channel.queue_purge(queue)
    for i in range(20):
        channel.basic_publish(x, f"k{i}", b"m", pika.BasicProperties(message_id="id-1"))
    assert sorted(ready_count(channel, queue) for queue in queues.values()) == [0, 0, 0, 20]


def test_without_bindings_a_mandatory_message_is_returned(channel: BlockingChannel, names: Names) -> None:
    x = names.exchange("chx")
    channel.exchange_declare(x, "x-consistent-hash")
    channel.confirm_delivery()
    with pytest.raises(pika.exceptions.UnroutableError):
        channel.basic_publish(x, "k", b"m", mandatory=True)


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("heavy", 'The binding key must be an integer: <<"heavy">>'),
        ("0", "The binding key must be greater than 0"),
    ],
)
def test_a_bad_weight_is_refused(connection: BlockingConnection, names: Names, key: str, text: str) -> None:
    ch = connection.channel()
    x = names.exchange("chx")
    queue = names.queue()
    ch.exchange_declare(x, "x-consistent-hash")
    ch.queue_declare(queue)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        ch.queue_bind(queue, x, routing_key=key)
    assert err.value.reply_code == PRECONDITION_FAILED
    assert text in err.value.reply_text
    ch = connection.channel()
    ch.queue_bind(queue, x, routing_key="3")  # nothing was bound, and a good weight binds
    ch.confirm_delivery()
    ch.basic_publish(x, "k", b"m")
    assert get_all(ch, queue) == [b"m"]


@pytest.mark.parametrize(
    ("arguments", "text"),
    [
        (
            {"hash-header": "h", "hash-property": "message_id"},
            "hash-header and hash-property are mutually exclusive",
        ),
        ({"hash-property": "app_id"}, "Unsupported property: app_id"),
    ],
)
def test_bad_arguments_are_refused(
    connect_to: Callable[..., BlockingConnection], names: Names, arguments: dict[str, object], text: str
) -> None:
    ch = connect_to().channel()
    x = names.exchange("chx")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        ch.exchange_declare(x, "x-consistent-hash", arguments=arguments)
    assert err.value.reply_code == PRECONDITION_FAILED
    assert text in err.value.reply_text
