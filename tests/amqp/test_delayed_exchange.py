"""The ``x-delayed-message`` exchange over a real client (pika): messages held for their
``x-delay`` and then routed by the ``x-delayed-type`` rules with ``x-delay`` negated, messages
without a delay routed at once, no ``basic.return`` for a held mandatory message, the plugin's
refusals, and a durable exchange's held messages across a SIGKILL of ``jackalope serve``:
confirmed means kept, and delivered once, after the delay.

Jackalope-only but for the unknown type's refusal: the RabbitMQ node the differential tests use
has no plugins."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from tests.amqp.support import EXTERNAL_URL, WAIT, Names, connect, get_all, ready_count
from tests.conftest import ServeProcess

jackalope_only = pytest.mark.skipif(
    EXTERNAL_URL is not None, reason="a RabbitMQ plugin's type, not on that node"
)

PRECONDITION_FAILED = 406
COMMAND_INVALID = 503
DIRECT = {"x-delayed-type": "direct"}


def delayed(channel: BlockingChannel, names: Names, kind: str = "direct", key: str = "k") -> tuple[str, str]:
    """A delayed exchange of ``kind`` with one queue bound by ``key``: their names."""
    x = names.exchange("delayed")
    channel.exchange_declare(x, "x-delayed-message", arguments={"x-delayed-type": kind})
    queue = names.queue()
    channel.queue_declare(queue)
    channel.queue_bind(queue, x, routing_key=key)
    channel.confirm_delivery()
    return x, queue


def after(
    delay: object, headers: dict[str, object] | None = None, **properties: object
) -> pika.BasicProperties:
    """Properties asking for ``delay`` (the ``x-delay`` header, beside ``headers``)."""
    return pika.BasicProperties(headers={**(headers or {}), "x-delay": delay}, **properties)


def wait_for_messages(
    channel: BlockingChannel, queue: str, count: int
) -> list[tuple[pika.BasicProperties, bytes]]:
    """Consume ``count`` messages from ``queue``, waiting for them as they are released."""
    got: list[tuple[pika.BasicProperties, bytes]] = []
    for _, props, body in channel.consume(queue, auto_ack=True, inactivity_timeout=WAIT):
        if body is None:
            break
        got.append((props, body))
        if len(got) == count:
            break
    channel.cancel()
    assert len(got) == count, f"{len(got)} of {count} messages released within {WAIT}s"
    return got


@jackalope_only
def test_a_message_is_routed_after_its_delay_with_x_delay_negated(
    channel: BlockingChannel, names: Names
) -> None:
    x, queue = delayed(channel, names)
    start = time.monotonic()
    channel.basic_publish(
        x,
        "k",
        b"later",
        after(300, headers={"kept": "yes"}, content_type="text/plain", message_id="m-1", delivery_mode=2),
    )
    assert ready_count(channel, queue) == 0  # held
    ((props, body),) = wait_for_messages(channel, queue, 1)
    assert time.monotonic() - start >= 0.3  # never before its time
    assert body == b"later"
    assert props.headers == {"kept": "yes", "x-delay": -300}
    assert (props.content_type, props.message_id, props.delivery_mode) == ("text/plain", "m-1", 2)


@jackalope_only
def test_messages_are_released_in_due_order(channel: BlockingChannel, names: Names) -> None:
    x, queue = delayed(channel, names)
    channel.basic_publish(x, "k", b"second", after(1500))
    channel.basic_publish(x, "k", b"first", after("50"))  # a string of digits will do
    assert [body for _, body in wait_for_messages(channel, queue, 2)] == [b"first", b"second"]


@jackalope_only
@pytest.mark.parametrize("delay", [None, 0, -100])
def test_without_a_delay_a_message_is_routed_at_once(
    channel: BlockingChannel, names: Names, delay: int | None
) -> None:
    x, queue = delayed(channel, names)
    props = pika.BasicProperties() if delay is None else after(delay)
    channel.basic_publish(x, "k", b"now", props)
    channel.basic_publish(x, "other", b"unrouted", props)
    assert get_all(channel, queue) == [b"now"]


@jackalope_only
def test_routing_follows_the_delayed_type(channel: BlockingChannel, names: Names) -> None:
    x, queue = delayed(channel, names, "topic", "orders.*")
    channel.basic_publish(x, "orders.eu", b"match", after(20))
    channel.basic_publish(x, "invoices.eu", b"no match", after(20))
    channel.basic_publish(x, "orders.us", b"match too", after(40))
    assert [body for _, body in wait_for_messages(channel, queue, 2)] == [b"match", b"match too"]


@jackalope_only
def test_headers_routing_reads_the_held_messages_headers(channel: BlockingChannel, names: Names) -> None:
    x = names.exchange("delayed")
    channel.exchange_declare(x, "x-delayed-message", arguments={"x-delayed-type": "headers"})
    queue = names.queue()
    channel.queue_declare(queue)
    channel.queue_bind(queue, x, arguments={"x-match": "all", "region": "eu"})
    channel.confirm_delivery()
    channel.basic_publish(x, "", b"eu", after(30, headers={"region": "eu"}))
    channel.basic_publish(x, "", b"us", after(30, headers={"region": "us"}))
    channel.basic_publish(x, "", b"eu later", after(60, headers={"region": "eu"}))
    assert [body for _, body in wait_for_messages(channel, queue, 2)] == [b"eu", b"eu later"]


@jackalope_only
def test_a_transaction_holds_its_delayed_publishes_from_the_commit(
    connection: BlockingConnection, names: Names
) -> None:
    ch = connection.channel()
    x, queue = delayed(ch, names)  # confirm mode: a fresh channel for the transaction
    tx = connection.channel()
    tx.tx_select()
    tx.basic_publish(x, "k", b"in tx", after(50))
    tx.basic_publish(x, "k", b"rolled back", after(50))
    tx.tx_rollback()
    tx.basic_publish(x, "k", b"committed", after(50))
    tx.tx_commit()
    assert [body for _, body in wait_for_messages(ch, queue, 1)] == [b"committed"]
    assert ready_count(ch, queue) == 0


@jackalope_only
def test_a_held_mandatory_message_is_not_returned(channel: BlockingChannel, names: Names) -> None:
    x = names.exchange("delayed")
    channel.exchange_declare(x, "x-delayed-message", arguments=DIRECT)
    channel.confirm_delivery()
    channel.basic_publish(x, "nowhere", b"held", after(60_000), mandatory=True)  # acked, not returned
    with pytest.raises(pika.exceptions.UnroutableError):  # routed at once: returned as usual
        channel.basic_publish(x, "nowhere", b"now", mandatory=True)


@jackalope_only
def test_a_held_message_goes_with_its_exchange(channel: BlockingChannel, names: Names) -> None:
    x, queue = delayed(channel, names)
    channel.basic_publish(x, "k", b"dropped", after(300))
    channel.exchange_delete(x)
    channel.exchange_declare(x, "x-delayed-message", arguments=DIRECT)
    channel.queue_bind(queue, x, routing_key="k")
    channel.basic_publish(x, "k", b"kept", after(400))  # due after the dropped one would have been
    assert [body for _, body in wait_for_messages(channel, queue, 1)] == [b"kept"]
    assert ready_count(channel, queue) == 0


@jackalope_only
@pytest.mark.parametrize(
    ("arguments", "text"),
    [
        ({}, "Invalid argument, 'x-delayed-type' must be an existing exchange type"),
        ({"x-delayed-type": 7}, "Invalid argument, 'x-delayed-type' must be an existing exchange type"),
        ({"x-delayed-type": "x-delayed-message"}, "'x-delayed-message' can't be used for 'x-delayed-type'"),
    ],
)
def test_a_bad_delayed_type_is_refused(
    channel: BlockingChannel, names: Names, arguments: dict, text: str
) -> None:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        channel.exchange_declare(names.exchange("delayed"), "x-delayed-message", arguments=arguments)
    assert err.value.reply_code == PRECONDITION_FAILED
    assert text in err.value.reply_text


@jackalope_only
def test_an_unknown_delayed_type_is_an_unknown_exchange_type(
    connection: BlockingConnection, names: Names
) -> None:
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as err:
        connection.channel().exchange_declare(
            names.exchange("delayed"), "x-delayed-message", arguments={"x-delayed-type": "x-foo"}
        )
    assert err.value.reply_code == COMMAND_INVALID
    assert "unknown exchange type 'x-foo'" in err.value.reply_text


def test_an_unknown_exchange_type_is_refused(connection: BlockingConnection, names: Names) -> None:
    """Both brokers: RabbitMQ without the plugins refuses these types as Jackalope refuses x-foo."""
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as err:
        connection.channel().exchange_declare(names.exchange("unknown"), "x-foo")
    assert err.value.reply_code == COMMAND_INVALID
    assert "unknown exchange type 'x-foo'" in err.value.reply_text


@jackalope_only
def test_a_delay_that_is_not_a_number_closes_the_channel(channel: BlockingChannel, names: Names) -> None:
    x, _ = delayed(channel, names)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        channel.basic_publish(x, "k", b"m", after("soon"))
    assert err.value.reply_code == PRECONDITION_FAILED
    assert "invalid 'x-delay' header 'soon'" in err.value.reply_text


# -- durability --------------------------------------------------------------------------------


@pytest.mark.skipif(EXTERNAL_URL is not None, reason="kills and restarts a jackalope serve")
def test_a_confirmed_delayed_message_survives_a_sigkill_and_is_delivered_once(
    serve_amqp: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = serve_amqp(data_dir=data)
    conn = connect(server.urls["amqp"])
    ch = conn.channel()
    ch.exchange_declare("delayed", "x-delayed-message", durable=True, arguments=DIRECT)
    ch.queue_declare("work", durable=True)
    ch.queue_bind("work", "delayed", routing_key="k")
    ch.confirm_delivery()
    persistent = {"delivery_mode": 2}

    # Routed before the kill, and acknowledged: it must not come back from the delayed log.
    ch.basic_publish("delayed", "k", b"routed before", after(50, **persistent))
    ((_, body),) = wait_for_messages(ch, "work", 1)
    assert body == b"routed before"
    # A confirmed message behind it in the queue's log: once it is on disk so is the routed
    # copy, whose release is then settled; the round trip after it ends that loop iteration.
    ch.basic_publish("", "work", b"marker", pika.BasicProperties(delivery_mode=2))
    ch.queue_declare("work", passive=True)

    published = time.time()
    ch.basic_publish("delayed", "k", b"held", after(3000, **persistent))  # confirmed: on disk
    server.kill9()

    again = serve_amqp(data_dir=data)
    conn = connect(again.urls["amqp"])
    ch = conn.channel()
    # "routed before" would come back ahead of the marker; "held" comes after it, once its delay
    # is over (at once if the restart took longer than the delay, as on a busy machine).
    ((_, first), (props, body)) = wait_for_messages(ch, "work", 2)
    assert first == b"marker"
    assert body == b"held" and props.headers == {"x-delay": -3000}
    assert time.time() - published >= 3.0  # released after its delay, not at the restart
    assert ready_count(ch, "work") == 0  # once: no second copy
    conn.close()

    # And not again after a clean restart.
    again.proc.send_signal(signal.SIGTERM)
    assert again.proc.wait(WAIT) == 0
    third = serve_amqp(data_dir=data)
    conn = connect(third.urls["amqp"])
    ch = conn.channel()
    assert ready_count(ch, "work") == 0
    conn.close()
