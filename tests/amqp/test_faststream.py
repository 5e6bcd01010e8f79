"""FastStream's RabbitBroker (aio-pika underneath) against a real broker connection, started on
the test's event loop: subscriber, publisher chaining, and request/reply.

Note: ``RabbitBroker.start()`` itself passively declares ``amq.rabbitmq.reply-to`` (RabbitMQ's
direct reply-to pseudo-queue), and ``request()`` consumes from it: a broker without direct
reply-to cannot run FastStream at all.
"""

from __future__ import annotations

import asyncio

from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange, RabbitQueue

from tests.amqp.support import WAIT, Names


async def test_subscriber_publisher_round_trip(amqp_url: str, names: Names) -> None:
    broker = RabbitBroker(amqp_url, logger=None, timeout=WAIT, graceful_timeout=WAIT)
    exchange = RabbitExchange(names.exchange(), type=ExchangeType.TOPIC, auto_delete=True)
    orders = RabbitQueue(names.queue("orders"), routing_key="orders.*", auto_delete=True)
    audit = RabbitQueue(names.queue("audit"), auto_delete=True)
    audited: asyncio.Queue[dict] = asyncio.Queue()

    @broker.subscriber(orders, exchange)
    @broker.publisher(audit)  # the handler's return value is published to `audit`
    async def handle_order(order: dict) -> dict:
        return {"seen": order["id"], "total": order["qty"] * 2}

    @broker.subscriber(audit)
    async def handle_audit(entry: dict) -> None:
        await audited.put(entry)

    async with asyncio.timeout(3 * WAIT), broker:
        await broker.start()
        for i in range(3):
            await broker.publish({"id": i, "qty": i + 1}, exchange=exchange, routing_key="orders.new")
        got = [await audited.get() for _ in range(3)]
        assert sorted(got, key=lambda e: e["seen"]) == [{"seen": i, "total": 2 * (i + 1)} for i in range(3)]


async def test_request_reply(amqp_url: str, names: Names) -> None:
    broker = RabbitBroker(amqp_url, logger=None, timeout=WAIT, graceful_timeout=WAIT)
    rpc = RabbitQueue(names.queue("rpc"), auto_delete=True)

    @broker.subscriber(rpc)
    async def double(n: int) -> int:
        return 2 * n

    async with asyncio.timeout(3 * WAIT), broker:
        await broker.start()
        for n in (1, 21):
            reply = await broker.request(n, queue=rpc, timeout=WAIT)
            assert await reply.decode() == 2 * n
