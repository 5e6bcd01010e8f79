"""Prometheus metrics: ``/metrics`` and ``/metrics/per-object``, with RabbitMQ's names.

The families, their types, HELP texts and labels are those of RabbitMQ's
``rabbitmq_prometheus`` plugin, so its stock Grafana dashboards ("RabbitMQ-Overview") work
unchanged, and Kafka's side is named as ``kafka_exporter`` names it.  As in RabbitMQ,
``/metrics`` is aggregated (one sample per family, no queue or channel labels, so it stays
small however many queues there are) and ``/metrics/per-object`` has one sample per queue,
exchange and channel.  Kafka's families are per topic, partition and group on both.

Nothing is kept up to date in the background: :class:`BrokerCollector` (a prometheus-client
``Collector``) reads the core when scraped -- queue depths from the queues, message totals
from the core's counters, lag from :mod:`jackalope.core.groups.lag`, memory and disk from the
resource monitor's last reading (the app's ``overview.RESOURCES``).
:mod:`jackalope.http.metrics_text` writes the families (as ``generate_latest`` would, faster)
and :mod:`jackalope.http.metrics_kafka` makes the Kafka ones.

Unlike RabbitMQ (whose metrics port needs no credentials unless configured), every endpoint
authenticates: the user needs the ``monitoring`` or ``administrator`` tag.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib.metadata import version
from typing import Any, Final

from aiohttp import web
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from jackalope import __version__
from jackalope.core import BrokerCore
from jackalope.core.alarms import DISK, MEMORY
from jackalope.core.clients import ClientChannel, ClientConnection
from jackalope.core.stats import MessageStats
from jackalope.http.base import CORE, INFO, ApiError, require_monitor
from jackalope.http.metrics_kafka import kafka_families
from jackalope.http.metrics_text import (
    CONTENT_TYPE,
    NO_LABELS,
    Labels,
    ObjectFamily,
    ObjectLabels,
    counter,
    exposition,
    family,
    gauge,
    untyped,
)
from jackalope.http.overview import RESOURCES
from jackalope.resources import ResourceMonitor

routes = web.RouteTableDef()

CLUSTER_NAME: Final = "jackalope"  # what connection.start's cluster_name says
RABBITMQ_VERSION: Final = "4.1.0"  # the RabbitMQ whose metrics these follow
PROMETHEUS_CLIENT_VERSION: Final = version("prometheus-client")

QUEUE_TYPES: Final = {
    "classic": "rabbit_classic_queue",
    "quorum": "rabbit_quorum_queue",
    "stream": "rabbit_stream_queue",
}

AMQP091: Final[Labels] = {"protocol": "amqp091"}  # the global counters' label

READY: Final = ("rabbitmq_queue_messages_ready", "Messages ready to be delivered to consumers")
UNACKED: Final = (
    "rabbitmq_queue_messages_unacked",
    "Messages delivered to consumers but not yet acknowledged",
)
DEPTH: Final = ("rabbitmq_queue_messages", "Sum of ready and unacknowledged messages - total queue depth")
CONSUMERS: Final = ("rabbitmq_queue_consumers", "Consumers on a queue")
RECV: Final = ("rabbitmq_connection_incoming_bytes_total", "Total number of bytes received on a connection")
SEND: Final = ("rabbitmq_connection_outgoing_bytes_total", "Total number of bytes sent on a connection")
CONNECTION_CHANNELS: Final = ("rabbitmq_connection_channels", "Channels on a connection")

# (family, HELP, MessageStats field) of RabbitMQ's channel_exchange_metrics and channel_queue_metrics
CHANNEL_COUNTERS: Final = (
    (
        "rabbitmq_channel_messages_published_total",
        "Total number of messages published into an exchange on a channel",
        "publish",
    ),
    (
        "rabbitmq_channel_messages_confirmed_total",
        "Total number of messages published into an exchange and confirmed on the channel",
        "confirm",
    ),
    (
        "rabbitmq_channel_messages_unroutable_returned_total",
        "Total number of messages published as mandatory into an exchange and returned to the publisher"
        " as unroutable",
        "return_unroutable",
    ),
    (
        "rabbitmq_channel_messages_unroutable_dropped_total",
        "Total number of messages published as non-mandatory into an exchange and dropped as unroutable",
        "drop_unroutable",
    ),
    (
        "rabbitmq_channel_get_ack_total",
        "Total number of messages fetched with basic.get in manual acknowledgement mode",
        "get",
    ),
    (
        "rabbitmq_channel_get_total",
        "Total number of messages fetched with basic.get in automatic acknowledgement mode",
        "get_no_ack",
    ),
    (
        "rabbitmq_channel_messages_delivered_ack_total",
        "Total number of messages delivered to consumers in manual acknowledgement mode",
        "deliver",
    ),
    (
        "rabbitmq_channel_messages_delivered_total",
        "Total number of messages delivered to consumers in automatic acknowledgement mode",
        "deliver_no_ack",
    ),
    (
        "rabbitmq_channel_messages_redelivered_total",
        "Total number of messages redelivered to consumers",
        "redeliver",
    ),
    ("rabbitmq_channel_messages_acked_total", "Total number of messages acknowledged by consumers", "ack"),
    (
        "rabbitmq_channel_get_empty_total",
        "Total number of times basic.get operations fetched no message",
        "get_empty",
    ),
)

# (family, HELP, the MessageStats fields it sums) of RabbitMQ's global counters we can count
GLOBAL_COUNTERS: Final = (
    (
        "rabbitmq_global_messages_received_total",
        "Total number of messages received from publishers",
        ("publish",),
    ),
    (
        "rabbitmq_global_messages_confirmed_total",
        "Total number of messages confirmed to publishers",
        ("confirm",),
    ),
    (
        "rabbitmq_global_messages_unroutable_dropped_total",
        "Total number of messages published as non-mandatory into an exchange and dropped as unroutable",
        ("drop_unroutable",),
    ),
    (
        "rabbitmq_global_messages_unroutable_returned_total",
        "Total number of messages published as mandatory into an exchange and returned to the publisher"
        " as unroutable",
        ("return_unroutable",),
    ),
    (
        "rabbitmq_global_messages_delivered_total",
        "Total number of messages delivered to consumers",
        ("deliver", "deliver_no_ack", "get", "get_no_ack"),
    ),
    (
        "rabbitmq_global_messages_delivered_consume_manual_ack_total",
        "Total number of messages delivered to consumers using basic.consume with manual acknowledgment",
        ("deliver",),
    ),
    (
        "rabbitmq_global_messages_delivered_consume_auto_ack_total",
        "Total number of messages delivered to consumers using basic.consume with automatic acknowledgment",
        ("deliver_no_ack",),
    ),
    (
        "rabbitmq_global_messages_delivered_get_manual_ack_total",
        "Total number of messages delivered to consumers using basic.get with manual acknowledgment",
        ("get",),
    ),
    (
        "rabbitmq_global_messages_delivered_get_auto_ack_total",
        "Total number of messages delivered to consumers using basic.get with automatic acknowledgment",
        ("get_no_ack",),
    ),
    (
        "rabbitmq_global_messages_get_empty_total",
        "Total number of times basic.get operations fetched no message",
        ("get_empty",),
    ),
    (
        "rabbitmq_global_messages_redelivered_total",
        "Total number of messages redelivered to consumers",
        ("redeliver",),
    ),
    (
        "rabbitmq_global_messages_acknowledged_total",
        "Total number of messages acknowledged by consumers",
        ("ack",),
    ),
)
PUBLISHED: Final = (
    "rabbitmq_queue_messages_published_total",
    "Total number of messages published into a queue through an exchange on a channel",
)


# -- the collector ---------------------------------------------------------------------------


class BrokerCollector(Collector):
    """The broker's metrics, read from the core when :meth:`collect` is called."""

    def __init__(
        self,
        core: BrokerCore,
        info: dict[str, Any],
        *,
        per_object: bool,
        resources: ResourceMonitor | None = None,
    ) -> None:
        self.core = core
        self.info = info
        self.resources = resources
        self.per_object = per_object

    def collect(self) -> Iterator[Metric]:
        yield from self._identity()
        yield from self._resources()
        yield from self._alarms()
        yield from self._queues()
        yield from self._clients()
        yield from self._exchanges()
        if self.core.groups is not None:
            address = self.info.get("listeners", {}).get("kafka", "").partition("://")[2]
            yield from kafka_families(self.core, address)

    # -- node ----------------------------------------------------------------------------------

    def _identity(self) -> Iterator[Metric]:
        yield untyped(
            "rabbitmq_build_info",
            "RabbitMQ & Erlang/OTP version info",
            {
                "rabbitmq_version": RABBITMQ_VERSION,
                "prometheus_client_version": PROMETHEUS_CLIENT_VERSION,
                "product_name": "Jackalope",
                "product_version": __version__,
            },
        )
        yield untyped(
            "rabbitmq_identity_info",
            "RabbitMQ node & cluster identity info",
            {
                "rabbitmq_node": self.core.node_name,
                "rabbitmq_cluster": CLUSTER_NAME,
                "rabbitmq_endpoint": "per-object" if self.per_object else "aggregated",
            },
        )
        yield gauge(
            "rabbitmq_unreachable_cluster_peers_count",
            "Number of peers in the cluster the current node cannot reach.",
            0,
        )

    def _resources(self) -> Iterator[Metric]:
        readings = self.resources
        if readings is None:  # an app without a resource monitor (none runs)
            return
        yield gauge("rabbitmq_process_open_fds", "Open file descriptors", readings.open_fds)
        yield gauge("rabbitmq_process_resident_memory_bytes", "Memory used in bytes", readings.memory_used)
        yield gauge(
            "rabbitmq_disk_space_available_bytes", "Disk space available in bytes", readings.disk_free
        )
        yield gauge("rabbitmq_process_max_fds", "Open file descriptors limit", readings.max_fds)
        yield gauge(
            "rabbitmq_resident_memory_limit_bytes", "Memory high watermark in bytes", readings.memory_limit
        )
        yield gauge(
            "rabbitmq_disk_space_available_limit_bytes",
            "Free disk space low watermark in bytes",
            readings.disk_limit,
        )
        yield gauge("rabbitmq_erlang_uptime_seconds", "Node uptime", readings.uptime_seconds)

    def _alarms(self) -> Iterator[Metric]:
        active = self.core.alarms.active
        yield untyped(
            "rabbitmq_alarms_free_disk_space_watermark",
            "is 1 if free disk space watermark alarm is in effect",
            NO_LABELS,
            int(DISK in active),
        )
        yield untyped(
            "rabbitmq_alarms_memory_used_watermark",
            "is 1 if VM memory watermark alarm is in effect",
            NO_LABELS,
            int(MEMORY in active),
        )

    # -- queues --------------------------------------------------------------------------------

    def _queues(self) -> Iterator[Metric]:
        """Depths and consumers: one sample per queue (per-object), or their sums."""
        if self.per_object:
            yield from self._queues_per_object()
            return
        ready = unacked = consumers = published = count = 0
        for vhost in self.core.vhosts.values():
            for queues in (vhost.queues, vhost.streams):
                count += len(queues)
                for q in queues.values():
                    ready += q.message_count
                    unacked += q.unacked_count
                    consumers += q.consumer_count
                    published += q.stats.publish
        yield gauge(READY[0], READY[1], ready)
        yield gauge(UNACKED[0], UNACKED[1], unacked)
        yield gauge(DEPTH[0], DEPTH[1], ready + unacked)
        yield gauge(CONSUMERS[0], CONSUMERS[1], consumers)
        yield counter(PUBLISHED[0], PUBLISHED[1], published)
        yield from self._queue_totals(count, consumers)

    def _queues_per_object(self) -> Iterator[Metric]:
        objects = ObjectLabels(("vhost", "queue"))
        vhosts, names = objects.columns
        info = ObjectLabels(("vhost", "queue", "queue_type", "membership"))
        info_vhosts, info_names, info_types, info_membership = info.columns
        ready: list[int] = []
        unacked: list[int] = []
        consumers: list[int] = []
        published: list[int] = []
        for vhost in self.core.vhosts.values():
            for queues in (vhost.queues, vhost.streams):
                n = len(queues)
                vhosts.extend([vhost.name] * n)
                names.extend(queues)
                for q in queues.values():
                    ready.append(q.message_count)
                    unacked.append(q.unacked_count)
                    consumers.append(q.consumer_count)
                    published.append(q.stats.publish)
                    info_types.append(QUEUE_TYPES.get(q.type_name, q.type_name))
        info_vhosts.extend(vhosts)
        info_names.extend(names)
        info_membership.extend(["leader"] * len(names))
        yield ObjectFamily(READY[0], "gauge", READY[1], objects, ready)
        yield ObjectFamily(UNACKED[0], "gauge", UNACKED[1], objects, unacked)
        yield ObjectFamily(
            DEPTH[0], "gauge", DEPTH[1], objects, [r + u for r, u in zip(ready, unacked, strict=True)]
        )
        yield ObjectFamily(CONSUMERS[0], "gauge", CONSUMERS[1], objects, consumers)
        yield ObjectFamily(PUBLISHED[0], "counter", PUBLISHED[1], objects, published)
        yield from self._queue_totals(len(names), sum(consumers))
        yield ObjectFamily(
            "rabbitmq_queue_info",
            "gauge",
            "A metric with a constant '1' value and labels that provide some queue details",
            info,
            [1] * len(names),
        )

    def _queue_totals(self, queues: int, consumers: int) -> Iterator[Metric]:
        yield gauge("rabbitmq_consumers", "Consumers currently connected", consumers)
        yield gauge("rabbitmq_queues", "Queues available", queues)
        yield family(
            "rabbitmq_global_consumers", "gauge", "Current number of consumers", [(AMQP091, consumers)]
        )

    # -- connections and channels ---------------------------------------------------------------

    def _clients(self) -> Iterator[Metric]:
        core = self.core
        clients = core.clients
        connections = clients.connections
        channels = [(conn, ch) for conn in connections for ch in conn.client_channels()]
        yield gauge("rabbitmq_connections", "Connections currently open", len(connections))
        yield gauge("rabbitmq_channels", "Channels currently open", len(channels))
        for name, documentation, value in (
            (
                "rabbitmq_connections_opened_total",
                "Total number of connections opened",
                clients.connections_opened,
            ),
            (
                "rabbitmq_connections_closed_total",
                "Total number of connections closed or terminated",
                clients.connections_closed,
            ),
            ("rabbitmq_channels_opened_total", "Total number of channels opened", clients.channels_opened),
            ("rabbitmq_channels_closed_total", "Total number of channels closed", clients.channels_closed),
            ("rabbitmq_queues_declared_total", "Total number of queues declared", core.queue_counts.declared),
            ("rabbitmq_queues_created_total", "Total number of queues created", core.queue_counts.created),
            ("rabbitmq_queues_deleted_total", "Total number of queues deleted", core.queue_counts.deleted),
        ):
            yield counter(name, documentation, value)
        yield from self._connections(connections)
        totals = clients.totals()  # the broker's message counts since start, summed once
        yield from self._channels(channels, totals)
        yield from self._global(channels, totals)

    def _connections(self, connections: list[ClientConnection]) -> Iterator[Metric]:
        """Bytes in and out.  Per object, RabbitMQ labels a connection's samples ``channel``
        (with the connection's process id); so do we, with the connection's name."""
        if self.per_object:
            objects = ObjectLabels(("channel",))
            objects.columns[0].extend(conn.name for conn in connections)
            recv = [conn.recv_oct for conn in connections]
            send = [conn.send_oct for conn in connections]
            channels = [len(conn.client_channels()) for conn in connections]
            yield ObjectFamily(RECV[0], "counter", RECV[1], objects, recv)
            yield ObjectFamily(SEND[0], "counter", SEND[1], objects, send)
            yield ObjectFamily(CONNECTION_CHANNELS[0], "gauge", CONNECTION_CHANNELS[1], objects, channels)
        else:
            yield counter(RECV[0], RECV[1], sum(conn.recv_oct for conn in connections))
            yield counter(SEND[0], SEND[1], sum(conn.send_oct for conn in connections))
            yield gauge(
                CONNECTION_CHANNELS[0],
                CONNECTION_CHANNELS[1],
                sum(len(conn.client_channels()) for conn in connections),
            )

    def _channels(
        self, channels: list[tuple[ClientConnection, ClientChannel]], totals: MessageStats
    ) -> Iterator[Metric]:
        """The channels' gauges and message counters.  Aggregated, the counters are the
        broker's totals since it started (closed channels' counts included, so they never go
        down, unlike RabbitMQ's sums over live channels); per object, each live channel's."""
        gauges: list[tuple[str, str, Callable[[ClientChannel], int]]] = [
            ("rabbitmq_channel_consumers", "Consumers on a channel", lambda ch: len(ch.client_consumers())),
            (
                "rabbitmq_channel_messages_unacked",
                "Delivered but not yet acknowledged messages",
                lambda ch: ch.unacked_count,
            ),
            (
                "rabbitmq_consumer_prefetch",
                "Limit of unacknowledged messages for each consumer",
                lambda ch: ch.prefetch_count,
            ),
            (
                "rabbitmq_channel_prefetch",
                "Deprecated and will be removed in a future version",
                lambda ch: ch.global_prefetch_count,
            ),
        ]
        if self.per_object:
            objects = ObjectLabels(("channel",))
            objects.columns[0].extend(f"{conn.name} ({ch.number})" for conn, ch in channels)
            for name, documentation, read in gauges:
                yield ObjectFamily(name, "gauge", documentation, objects, [read(ch) for _, ch in channels])
            for name, documentation, field in CHANNEL_COUNTERS:
                values = [getattr(ch.stats, field) for _, ch in channels]
                yield ObjectFamily(name, "counter", documentation, objects, values)
        else:
            for name, documentation, read in gauges:
                yield gauge(name, documentation, sum(read(ch) for _, ch in channels))
            for name, documentation, field in CHANNEL_COUNTERS:
                yield counter(name, documentation, getattr(totals, field))

    def _global(
        self, channels: list[tuple[ClientConnection, ClientChannel]], totals: MessageStats
    ) -> Iterator[Metric]:
        """RabbitMQ's global counters (``rabbitmq_global_*``, what its Overview dashboard
        plots), by protocol: the AMQP channels' totals since start."""
        publishers = sum(1 for _, ch in channels if ch.stats.publish)
        yield family(
            "rabbitmq_global_publishers", "gauge", "Current number of publishers", [(AMQP091, publishers)]
        )
        for name, documentation, fields in GLOBAL_COUNTERS:
            value = sum(getattr(totals, f) for f in fields)
            yield family(name, "counter", documentation, [(AMQP091, value)])

    # -- exchanges ------------------------------------------------------------------------------

    def _exchanges(self) -> Iterator[Metric]:
        name, documentation = (
            "rabbitmq_exchange_messages_published_total",
            "Total number of messages published into an exchange",
        )
        if not self.per_object:
            total = sum(e.stats.publish_in for v in self.core.vhosts.values() for e in v.exchanges.values())
            yield counter(name, documentation, total)
            return
        objects = ObjectLabels(("vhost", "exchange"))
        vhosts, names = objects.columns
        values: list[int] = []
        for vhost in self.core.vhosts.values():
            vhosts.extend([vhost.name] * len(vhost.exchanges))
            names.extend(vhost.exchanges)
            values.extend(e.stats.publish_in for e in vhost.exchanges.values())
        yield ObjectFamily(name, "counter", documentation, objects, values)

    # -- Kafka, as kafka_exporter ---------------------------------------------------------------


# -- the endpoints ---------------------------------------------------------------------------


def _scrape(request: web.Request, *, per_object: bool) -> web.Response:
    require_monitor(request)
    app = request.app
    collector = BrokerCollector(app[CORE], app[INFO], per_object=per_object, resources=app.get(RESOURCES))
    return web.Response(body=exposition(collector.collect()), headers={"Content-Type": CONTENT_TYPE})


@routes.get("/metrics")
async def aggregated(request: web.Request) -> web.Response:
    return _scrape(request, per_object=False)


@routes.get("/metrics/per-object")
async def per_object(request: web.Request) -> web.Response:
    return _scrape(request, per_object=True)


@routes.get("/metrics/{registry}")
async def unknown_registry(request: web.Request) -> web.Response:
    require_monitor(request)
    raise ApiError(
        404,
        "not_found",
        f"Unknown Registry: {request.match_info['registry']}"
        " (Jackalope serves /metrics and /metrics/per-object)",
    )
