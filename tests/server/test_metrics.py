"""Prometheus metrics (``/metrics``, ``/metrics/per-object``): real clients make the state
(aio-pika publishes and consumes, aiokafka consumes part of a topic in a group), then the
scrape is parsed with prometheus-client's own parser and checked value by value."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pika
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from jackalope import Broker
from jackalope.http.metrics import BrokerCollector
from jackalope.http.metrics_text import exposition

pytestmark = pytest.mark.timeout(60)

Samples = dict[str, dict[frozenset[tuple[str, str]], float]]  # name -> labels -> value


def auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


GUEST = auth("guest", "guest")


@dataclass
class Scrape:
    text: str
    types: dict[str, str]  # family -> type
    helps: dict[str, str]
    samples: Samples

    def value(self, name: str, **labels: str) -> float:
        return self.samples[name][frozenset(labels.items())]

    def labelled(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        return self.samples.get(name, {})


def parse(text: str) -> Scrape:
    types: dict[str, str] = {}
    helps: dict[str, str] = {}
    samples: Samples = {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        helps[fam.name] = fam.documentation
        for s in fam.samples:
            key = frozenset(s.labels.items())
            assert key not in samples.setdefault(s.name, {}), f"duplicate sample {s.name}{s.labels}"
            samples[s.name][key] = s.value
    return Scrape(text, types, helps, samples)


class Http:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, url

    async def get(self, path: str, headers: dict[str, str] | None = GUEST) -> tuple[int, str, Any]:
        async with self.session.get(self.url + path, headers=headers or {}) as r:
            return r.status, r.headers.get("Content-Type", ""), await r.text()

    async def scrape(self, path: str = "/metrics", who: dict[str, str] = GUEST) -> Scrape:
        status, content_type, text = await self.get(path, who)
        assert status == 200, text
        assert content_type == "text/plain; version=0.0.4; charset=utf-8"
        return parse(text)

    async def put(self, path: str, body: object) -> None:
        async with self.session.put(self.url + path, json=body, headers=GUEST) as r:
            assert r.status in (201, 204), await r.text()


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    async with Broker(tmp_path / "data", kafka_group_initial_delay_ms=0) as b:
        yield b


@pytest.fixture
async def http(broker: Broker) -> AsyncIterator[Http]:
    async with aiohttp.ClientSession() as session:
        yield Http(session, broker.http_url)


async def consume_some(
    queue: aio_pika.abc.AbstractQueue, count: int
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Start a consumer and wait until ``count`` deliveries have reached it (unacknowledged)."""
    got: list[aio_pika.abc.AbstractIncomingMessage] = []
    arrived = asyncio.Event()

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        got.append(message)
        if len(got) == count:
            arrived.set()

    await queue.consume(on_message)
    await arrived.wait()
    return got


async def test_queue_depths_aggregated_and_per_object(broker: Broker, http: Http) -> None:
    connection = await aio_pika.connect(broker.amqp_url)
    async with connection:
        channel = await connection.channel()  # publisher confirms: each publish waits for its ack
        await channel.declare_queue("work")
        idle = await channel.declare_queue("idle")
        for i in range(5):
            await channel.default_exchange.publish(aio_pika.Message(str(i).encode()), routing_key="work")
        await channel.default_exchange.publish(aio_pika.Message(b"x"), routing_key=idle.name)
        consumer = await connection.channel()
        await consumer.set_qos(prefetch_count=2)
        held = await consume_some(await consumer.get_queue("work"), 2)
        assert len(held) == 2

        agg = await http.scrape("/metrics")
        assert agg.value("rabbitmq_queue_messages_ready") == 4  # 3 in work, 1 in the other
        assert agg.value("rabbitmq_queue_messages_unacked") == 2
        assert agg.value("rabbitmq_queue_messages") == 6
        assert agg.value("rabbitmq_queue_consumers") == 1
        assert agg.value("rabbitmq_consumers") == 1
        assert agg.value("rabbitmq_global_consumers", protocol="amqp091") == 1
        assert agg.value("rabbitmq_queues") == 2
        # aggregated: no per-queue labels anywhere
        assert not any("queue" in dict(k) for s in agg.samples.values() for k in s)
        assert (
            agg.value(
                "rabbitmq_identity_info",
                rabbitmq_node=f"jackalope@{__import__('socket').gethostname()}",
                rabbitmq_cluster="jackalope",
                rabbitmq_endpoint="aggregated",
            )
            == 1
        )
        assert agg.types["rabbitmq_identity_info"] == "unknown"  # untyped, as RabbitMQ's
        assert agg.types["rabbitmq_queue_messages_ready"] == "gauge"
        assert agg.helps["rabbitmq_queue_messages_ready"] == "Messages ready to be delivered to consumers"

        per = await http.scrape("/metrics/per-object")
        for name, work_value, idle_value in (
            ("rabbitmq_queue_messages_ready", 3, 1),
            ("rabbitmq_queue_messages_unacked", 2, 0),
            ("rabbitmq_queue_messages", 5, 1),
            ("rabbitmq_queue_consumers", 1, 0),
        ):
            assert per.labelled(name) == {
                frozenset({("vhost", "/"), ("queue", "work")}): work_value,
                frozenset({("vhost", "/"), ("queue", "idle")}): idle_value,
            }, name
        assert (
            per.value(
                "rabbitmq_queue_info",
                vhost="/",
                queue="work",
                queue_type="rabbit_classic_queue",
                membership="leader",
            )
            == 1
        )
        assert per.value("rabbitmq_queues") == 2
        assert dict(next(iter(per.labelled("rabbitmq_identity_info"))))["rabbitmq_endpoint"] == "per-object"

        for message in held:
            await message.ack()
        await consumer.close()
        await connection.close()
    # once the consumer has gone, so have its deliveries' unacked count
    after = await http.scrape("/metrics")
    assert after.value("rabbitmq_queue_consumers") == 0
    assert after.value("rabbitmq_queue_messages_unacked") == 0
    assert after.value("rabbitmq_queue_messages_ready") == 4


async def test_queue_types_streams_and_quorum(broker: Broker, http: Http) -> None:
    connection = await aio_pika.connect(broker.amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue("qq", durable=True, arguments={"x-queue-type": "quorum"})
        await channel.declare_queue("events", durable=True, arguments={"x-queue-type": "stream"})
        for _ in range(3):
            await channel.default_exchange.publish(aio_pika.Message(b"e"), routing_key="events")
        await channel.default_exchange.publish(aio_pika.Message(b"q"), routing_key="qq")
    per = await http.scrape("/metrics/per-object")
    assert per.value("rabbitmq_queue_messages_ready", vhost="/", queue="events") == 3
    assert per.value("rabbitmq_queue_messages_ready", vhost="/", queue="qq") == 1
    types = {dict(k)["queue"]: dict(k)["queue_type"] for k in per.labelled("rabbitmq_queue_info")}
    assert types == {"qq": "rabbit_quorum_queue", "events": "rabbit_stream_queue"}


async def test_kafka_topics_and_consumer_lag(broker: Broker, http: Http) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic("orders", num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=broker.kafka_bootstrap)
    await producer.start()
    try:
        for partition, count in ((0, 5), (1, 3)):  # partition 2 stays empty
            for i in range(count):
                await producer.send_and_wait("orders", f"{partition}-{i}".encode(), partition=partition)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        "orders",
        bootstrap_servers=broker.kafka_bootstrap,
        group_id="billing",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        seen: set[int] = set()
        while seen != {0, 1}:  # read until both non-empty partitions have delivered
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                if records:
                    seen.add(tp.partition)
        # consumed part of the topic: two of partition 0, all of partition 1, nothing of 2
        await consumer.commit(
            {
                TopicPartition("orders", 0): OffsetAndMetadata(2, ""),
                TopicPartition("orders", 1): OffsetAndMetadata(3, ""),
            }
        )
        for path in ("/metrics", "/metrics/per-object"):
            s = await http.scrape(path)
            assert s.value("kafka_brokers") == 1
            assert s.value("kafka_topic_partitions", topic="orders") == 3
            for p, end in ((0, 5), (1, 3), (2, 0)):
                assert (
                    s.value("kafka_topic_partition_current_offset", topic="orders", partition=str(p)) == end
                )
                assert s.value("kafka_topic_partition_oldest_offset", topic="orders", partition=str(p)) == 0
            group = {"consumergroup": "billing", "topic": "orders"}
            assert s.value("kafka_consumergroup_members", consumergroup="billing") == 1
            # as kafka_exporter (offset.show-all): every partition, -1 where nothing is committed
            assert s.value("kafka_consumergroup_lag", partition="0", **group) == 3
            assert s.value("kafka_consumergroup_lag", partition="1", **group) == 0
            assert s.value("kafka_consumergroup_lag", partition="2", **group) == -1
            assert s.value("kafka_consumergroup_lag_sum", **group) == 3
            assert s.value("kafka_consumergroup_current_offset", partition="0", **group) == 2
            assert s.value("kafka_consumergroup_current_offset", partition="1", **group) == 3
            assert s.value("kafka_consumergroup_current_offset", partition="2", **group) == -1
            assert s.value("kafka_consumergroup_current_offset_sum", **group) == 4
    finally:
        await consumer.stop()
    after = await http.scrape()
    assert after.value("kafka_consumergroup_members", consumergroup="billing") == 0
    assert after.value("kafka_consumergroup_lag_sum", consumergroup="billing", topic="orders") == 3


async def test_no_kafka_families_without_the_kafka_listener(tmp_path: Path) -> None:
    async with Broker(tmp_path / "data", kafka_port=-1) as b, aiohttp.ClientSession() as session:
        for path in ("/metrics", "/metrics/per-object"):
            s = await Http(session, b.http_url).scrape(path)
            assert not [name for name in s.types if name.startswith("kafka_")]
            assert s.value("rabbitmq_queues") == 0


async def test_resources_and_alarms(tmp_path: Path) -> None:
    async with (
        Broker(tmp_path / "data", memory_high_watermark="1GiB", disk_free_limit="1kB") as b,
        aiohttp.ClientSession() as session,
    ):
        s = await Http(session, b.http_url).scrape()
        assert s.value("rabbitmq_resident_memory_limit_bytes") == 1024**3
        assert s.value("rabbitmq_disk_space_available_limit_bytes") == 1000
        assert s.value("rabbitmq_process_resident_memory_bytes") > 0
        assert s.value("rabbitmq_disk_space_available_bytes") > 1000
        assert 0 < s.value("rabbitmq_process_open_fds") < s.value("rabbitmq_process_max_fds")
        assert s.value("rabbitmq_erlang_uptime_seconds") >= 0
        assert s.value("rabbitmq_alarms_memory_used_watermark") == 0
        assert s.value("rabbitmq_alarms_free_disk_space_watermark") == 0
    async with (
        Broker(tmp_path / "data2", memory_high_watermark="1kB", disk_free_limit="1000000TB") as b,
        aiohttp.ClientSession() as session,
    ):
        s = await Http(session, b.http_url).scrape()
        assert s.value("rabbitmq_alarms_memory_used_watermark") == 1
        assert s.value("rabbitmq_alarms_free_disk_space_watermark") == 1
        assert s.value("rabbitmq_resident_memory_limit_bytes") == 1000
        assert s.types["rabbitmq_alarms_memory_used_watermark"] == "unknown"


async def test_every_endpoint_authenticates(http: Http) -> None:
    for path in ("/metrics", "/metrics/per-object"):
        status, _, body = await http.get(path, headers=None)
        assert (status, body) == (401, '{"error": "not_authorized", "reason": "Not_Authorized"}')
        status, _, _ = await http.get(path, headers=auth("guest", "wrong"))
        assert status == 401
    await http.put("/api/users/watcher", {"password": "w", "tags": "monitoring"})
    await http.put("/api/users/manager", {"password": "m", "tags": "management"})
    await http.put("/api/users/nobody", {"password": "n", "tags": ""})
    for path in ("/metrics", "/metrics/per-object"):
        scrape = await http.scrape(path, who=auth("watcher", "w"))  # monitoring is enough
        assert scrape.value("rabbitmq_queues") == 0
        assert await http.get(path, headers=auth("manager", "m")) == (
            401,
            "application/json; charset=utf-8",
            '{"error": "not_authorised", "reason": "Not monitor user"}',
        )
        status, _, body = await http.get(path, headers=auth("nobody", "n"))
        assert (status, body) == (401, '{"error": "not_authorised", "reason": "Not management user"}')


async def test_unknown_registry_is_a_json_404(http: Http) -> None:
    status, content_type, body = await http.get("/metrics/detailed")
    assert (status, content_type) == (404, "application/json; charset=utf-8")
    assert "Unknown Registry: detailed" in body


async def test_exposition_is_generate_latest_byte_for_byte(broker: Broker) -> None:
    """The fast writer writes what prometheus-client's own does, for the broker's real state
    (label values needing escapes included)."""

    def declare() -> None:  # with pika: aio-pika's pamqp refuses such names, RabbitMQ takes them
        connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        channel = connection.channel()
        for name in ("plain", 'quote"back\\slash', "new\nline", "ünï"):
            channel.queue_declare(name)
            channel.basic_publish("", name, b"m")
        connection.close()

    await asyncio.get_running_loop().run_in_executor(None, declare)
    core = broker.server.core
    assert core is not None
    connection = await aio_pika.connect(broker.amqp_url)  # live connections and channels too
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1)
        assert len(await consume_some(await channel.get_queue("plain"), 1)) == 1
        for per_object in (False, True):
            collector = BrokerCollector(core, {"listeners": broker.addresses}, per_object=per_object)
            registry = CollectorRegistry(auto_describe=False)
            registry.register(collector)
            ours = exposition(collector.collect()).decode()
            theirs = generate_latest(registry).decode()
            # the uptime moves between the two calls; everything else is the same
            moving = ("rabbitmq_erlang_uptime_seconds ", "rabbitmq_process_open_fds ")
            assert [line for line in ours.splitlines() if not line.startswith(moving)] == [
                line for line in theirs.splitlines() if not line.startswith(moving)
            ]
            assert "rabbitmq_channel_messages_unacked" in ours
    per = parse(exposition(BrokerCollector(core, {}, per_object=True).collect()).decode())
    assert per.value("rabbitmq_queue_messages_ready", vhost="/", queue="new\nline") == 1
    assert per.value("rabbitmq_queue_messages_ready", vhost="/", queue='quote"back\\slash') == 1


async def test_message_totals_connections_and_channels(broker: Broker, http: Http) -> None:
    publisher = await aio_pika.connect(broker.amqp_url)
    consumer = await aio_pika.connect(broker.amqp_url)
    async with publisher, consumer:
        pub = await publisher.channel(on_return_raises=True)  # publisher confirms
        await pub.declare_queue("work")
        await pub.declare_queue("idle")
        nowhere = await pub.declare_exchange("nowhere", aio_pika.ExchangeType.DIRECT)
        for i in range(5):
            await pub.default_exchange.publish(aio_pika.Message(str(i).encode()), routing_key="work")
        await pub.default_exchange.publish(aio_pika.Message(b"i"), routing_key="idle")
        for _ in range(2):  # mandatory and unroutable: returned
            with pytest.raises(aio_pika.exceptions.DeliveryError):
                await nowhere.publish(aio_pika.Message(b"r"), routing_key="none", mandatory=True)
        await nowhere.publish(aio_pika.Message(b"d"), routing_key="none", mandatory=False)  # dropped

        sub = await consumer.channel(publisher_confirms=False)
        await sub.set_qos(prefetch_count=2)
        held = await consume_some(await sub.get_queue("work"), 2)
        idle = await sub.get_queue("idle")
        got = await idle.get(no_ack=True)
        assert got is not None and got.body == b"i"
        assert await idle.get(fail=False) is None  # basic.get-empty

        agg = await http.scrape("/metrics")
        assert agg.value("rabbitmq_connections") == 2
        assert agg.value("rabbitmq_channels") == 2
        assert agg.value("rabbitmq_connections_opened_total") == 2
        assert agg.value("rabbitmq_connections_closed_total") == 0
        assert agg.value("rabbitmq_channels_opened_total") == 2
        assert agg.value("rabbitmq_queues_declared_total") == 2  # get_queue declares passively
        assert agg.value("rabbitmq_queues_created_total") == 2
        expected = {
            "rabbitmq_channel_messages_published_total": 9,
            "rabbitmq_channel_messages_confirmed_total": 9,
            "rabbitmq_channel_messages_unroutable_returned_total": 2,
            "rabbitmq_channel_messages_unroutable_dropped_total": 1,
            "rabbitmq_channel_messages_delivered_ack_total": 2,
            "rabbitmq_channel_messages_delivered_total": 0,
            "rabbitmq_channel_get_total": 1,
            "rabbitmq_channel_get_ack_total": 0,
            "rabbitmq_channel_get_empty_total": 1,
            "rabbitmq_channel_messages_acked_total": 0,
            "rabbitmq_channel_messages_redelivered_total": 0,
        }
        for name, value in expected.items():
            assert agg.value(name) == value, name
            assert agg.types[name.removesuffix("_total")] == "counter"
        assert agg.value("rabbitmq_channel_consumers") == 1
        assert agg.value("rabbitmq_channel_messages_unacked") == 2
        assert agg.value("rabbitmq_consumer_prefetch") == 2
        assert agg.value("rabbitmq_queue_messages_published_total") == 6
        assert agg.value("rabbitmq_global_messages_received_total", protocol="amqp091") == 9
        assert agg.value("rabbitmq_global_messages_confirmed_total", protocol="amqp091") == 9
        assert agg.value("rabbitmq_global_messages_delivered_total", protocol="amqp091") == 3
        assert (
            agg.value("rabbitmq_global_messages_delivered_consume_manual_ack_total", protocol="amqp091") == 2
        )
        assert agg.value("rabbitmq_global_messages_delivered_get_auto_ack_total", protocol="amqp091") == 1
        assert agg.value("rabbitmq_global_messages_get_empty_total", protocol="amqp091") == 1
        assert agg.value("rabbitmq_global_publishers", protocol="amqp091") == 1
        assert agg.value("rabbitmq_connection_incoming_bytes_total") > 0

        per = await http.scrape("/metrics/per-object")
        published = per.labelled("rabbitmq_queue_messages_published_total")
        assert published == {
            frozenset({("vhost", "/"), ("queue", "work")}): 5,
            frozenset({("vhost", "/"), ("queue", "idle")}): 1,
        }
        assert per.value("rabbitmq_exchange_messages_published_total", vhost="/", exchange="nowhere") == 3
        by_channel = {
            dict(k)["channel"]: v
            for k, v in per.labelled("rabbitmq_channel_messages_published_total").items()
        }
        assert sorted(by_channel.values()) == [0, 9]
        assert all(name.endswith(" (1)") and " -> " in name for name in by_channel)
        unacked = {
            dict(k)["channel"]: v for k, v in per.labelled("rabbitmq_channel_messages_unacked").items()
        }
        assert sorted(unacked.values()) == [0, 2]
        assert len(per.labelled("rabbitmq_connection_incoming_bytes_total")) == 2

        for message in held:
            await message.ack()
        await sub.close()
    # closed channels' counts stay in the totals: counters never go down
    after = await http.scrape("/metrics")
    assert after.value("rabbitmq_connections") == 0
    assert after.value("rabbitmq_connections_closed_total") == 2
    assert after.value("rabbitmq_channels_closed_total") == 2
    assert after.value("rabbitmq_channel_messages_acked_total") == 2
    assert after.value("rabbitmq_channel_messages_published_total") == 9
    assert after.value("rabbitmq_global_messages_acknowledged_total", protocol="amqp091") == 2
    assert after.value("rabbitmq_global_publishers", protocol="amqp091") == 0
