"""aio-pika (asyncio, on aiormq and pamqp): robust connections, exchanges and queues, publisher
confirms, consuming with the async iterator, and message properties."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import decimal
from collections.abc import AsyncIterator

import aio_pika
import aio_pika.abc
import aio_pika.exceptions
import aiormq.exceptions
import pytest
from pamqp.commands import Basic

from tests.amqp.support import WAIT, Names


@contextlib.asynccontextmanager
async def robust_connection(url: str) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    """connect_robust, failing fast: with a timeout, a first connection attempt that never
    completes raises instead of leaving a reconnecting task behind (which would hang the event
    loop's shutdown); and closing is bounded too."""
    connection = await aio_pika.connect_robust(url, timeout=WAIT)
    try:
        yield connection
    finally:
        await asyncio.wait_for(connection.close(), WAIT)


async def test_robust_round_trip_with_the_broker_on_the_same_loop(amqp_url_on_loop: str) -> None:
    names = Names()  # cleaned up below, on this loop: a sync teardown could not reach this broker
    exchange_name, queue_name = names.exchange(), names.queue()
    async with asyncio.timeout(3 * WAIT):
        async with robust_connection(amqp_url_on_loop) as connection:
            channel = await connection.channel()  # publisher confirms are on by default
            exchange = await channel.declare_exchange(
                exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
            )
            queue = await channel.declare_queue(queue_name, durable=True)
            await queue.bind(exchange, routing_key="orders.#")
            try:
                for i in range(5):
                    confirmation = await exchange.publish(
                        aio_pika.Message(b"order %d" % i, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                        routing_key=f"orders.eu.{i}",
                    )
                    assert isinstance(confirmation, Basic.Ack)
                received = []
                async with queue.iterator() as messages:
                    async for message in messages:
                        async with message.process():  # acks on leaving the block
                            received.append((message.body, message.routing_key, message.redelivered))
                        if len(received) == 5:
                            break
                assert received == [(b"order %d" % i, f"orders.eu.{i}", False) for i in range(5)]
                assert await queue.get(fail=False) is None
            finally:
                await queue.delete(if_unused=False, if_empty=False)
                await exchange.delete()


async def test_iterator_nack_requeues_and_reject_drops(amqp_url: str, names: Names) -> None:
    async with asyncio.timeout(3 * WAIT), robust_connection(amqp_url) as connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1)
        queue = await channel.declare_queue(names.queue())
        for body in (b"first", b"second"):
            await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue.name)
        seen = []
        async with queue.iterator() as messages:
            async for message in messages:
                seen.append((message.body, message.redelivered))
                if len(seen) == 1:
                    await message.nack(requeue=True)
                elif message.body == b"first":
                    await message.reject(requeue=False)
                else:
                    await message.ack()
                if len(seen) == 3:
                    break
        assert seen == [(b"first", False), (b"first", True), (b"second", False)]
        assert await queue.get(fail=False) is None


HEADERS: dict[str, aio_pika.abc.FieldValue] = {
    "text": "ünïcode",
    "small": 3,
    "negative": -200,
    "int64": -(2**40),
    "float": 1.5,  # pamqp sends floats as 32-bit 'f': values exact in 32 bits round-trip
    "bool": True,
    "void": None,
    "bytes": bytearray(b"\x00\xff"),  # pamqp's type for AMQP byte arrays
    "decimal": decimal.Decimal("1.25"),
    "timestamp": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
    "list": [1.25, "x", [None, False], {"in": "list"}],
    "table": {"nested": {"float": -0.5, "list": []}},
}


async def test_message_properties_round_trip(amqp_url: str, names: Names) -> None:
    async with asyncio.timeout(3 * WAIT), robust_connection(amqp_url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(names.queue())
        sent = aio_pika.Message(
            b"{}",
            headers=HEADERS,
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            priority=7,
            correlation_id="c-1",
            reply_to="replies",
            expiration=60,  # seconds in aio-pika; "60000" (ms) on the wire
            message_id="m-1",
            timestamp=datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC),
            type="thing.happened",
            user_id="guest",
            app_id="tests",
        )
        await channel.default_exchange.publish(sent, routing_key=queue.name)
        got = await queue.get(timeout=WAIT)
        await got.ack()
        assert got.body == b"{}"
        assert got.headers == HEADERS
        assert got.properties.expiration == "60000"
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
            assert getattr(got, name) == getattr(sent, name), name


async def test_confirms_report_unroutable_and_missing_exchange(amqp_url: str, names: Names) -> None:
    async with asyncio.timeout(3 * WAIT), robust_connection(amqp_url) as connection:
        channel = await connection.channel(on_return_raises=True)
        with pytest.raises(aio_pika.exceptions.PublishError) as returned:
            await channel.default_exchange.publish(
                aio_pika.Message(b"x"), routing_key=names.queue("nobody"), mandatory=True
            )
        assert returned.value.frame.reply_code == 312  # NO_ROUTE
        missing = await channel.get_exchange(names.exchange("missing"), ensure=False)
        with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):  # 404 closes the channel
            await missing.publish(aio_pika.Message(b"x"), routing_key="")
        other = await connection.channel()  # the connection is fine
        await other.declare_queue(names.queue(), auto_delete=True)


async def test_declare_errors_surface_as_typed_exceptions(amqp_url: str, names: Names) -> None:
    async with asyncio.timeout(3 * WAIT), robust_connection(amqp_url) as connection:
        channel = await connection.channel()
        with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
            await channel.declare_queue(names.queue("missing"), passive=True)
        channel = await connection.channel()
        name = names.queue()
        await channel.declare_queue(name, durable=True)
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
            await channel.declare_queue(name, durable=False)
