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
resource monitor's last reading.  :func:`exposition` writes the families in the text format
as ``prometheus_client.generate_latest`` does, byte for byte, but formats each object's label
set once for all its families, which keeps a per-object scrape of 10,000 queues short.

Unlike RabbitMQ (whose metrics port needs no credentials unless configured), every endpoint
authenticates: the user needs the ``monitoring`` or ``administrator`` tag.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator
from importlib.metadata import version
from typing import Any, Final

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from jackalope import __version__
from jackalope.core import BrokerCore
from jackalope.core.alarms import DISK, MEMORY
from jackalope.core.groups.lag import all_lags
from jackalope.http.base import CORE, INFO, ApiError, require_monitor

routes = web.RouteTableDef()

CONTENT_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4
CLUSTER_NAME: Final = "jackalope"  # what connection.start's cluster_name says
RABBITMQ_VERSION: Final = "4.1.0"  # the RabbitMQ whose metrics these follow
KAFKA_NODE_ID: Final = "0"
PROMETHEUS_CLIENT_VERSION: Final = version("prometheus-client")

QUEUE_TYPES: Final = {
    "classic": "rabbit_classic_queue",
    "quorum": "rabbit_quorum_queue",
    "stream": "rabbit_stream_queue",
}

Labels = dict[str, str]
NO_LABELS: Final[Labels] = {}
AMQP091: Final[Labels] = {"protocol": "amqp091"}  # the global counters' label

READY: Final = ("rabbitmq_queue_messages_ready", "Messages ready to be delivered to consumers")
UNACKED: Final = (
    "rabbitmq_queue_messages_unacked",
    "Messages delivered to consumers but not yet acknowledged",
)
DEPTH: Final = ("rabbitmq_queue_messages", "Sum of ready and unacknowledged messages - total queue depth")
CONSUMERS: Final = ("rabbitmq_queue_consumers", "Consumers on a queue")


# -- families --------------------------------------------------------------------------------


def family(name: str, kind: str, documentation: str, samples: Iterable[tuple[Labels, float]]) -> Metric:
    """A metric family of ``kind`` (gauge, counter or untyped) from (labels, value) pairs.

    A counter's ``name`` ends in ``_total``, as it is exposed.  The label dicts are kept, not
    copied: one object's dict may serve all its families (see :func:`exposition`).
    """
    if kind == "counter":
        metric = Metric(name.removesuffix("_total"), documentation, "counter")
    else:
        metric = Metric(name, documentation, "unknown" if kind == "untyped" else kind)
    metric.samples = [Sample(name, labels, value) for labels, value in samples]
    return metric


def gauge(name: str, documentation: str, value: float) -> Metric:
    return family(name, "gauge", documentation, [(NO_LABELS, value)])


def counter(name: str, documentation: str, value: float) -> Metric:
    return family(name, "counter", documentation, [(NO_LABELS, value)])


def untyped(name: str, documentation: str, labels: Labels, value: float = 1) -> Metric:
    return family(name, "untyped", documentation, [(labels, value)])


class ObjectLabels:
    """The label sets of many objects (queues), as columns of strings: no dict per object
    unless something asks for :meth:`labels`; the text format of each row is made once
    however many families use it."""

    __slots__ = ("_texts", "columns", "names")

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.columns: tuple[list[str], ...] = tuple([] for _ in names)
        self._texts: list[str] | None = None

    def __len__(self) -> int:
        return len(self.columns[0])

    def labels(self, row: int) -> Labels:
        return {name: column[row] for name, column in zip(self.names, self.columns, strict=True)}

    def texts(self) -> list[str]:
        """Each row as the text format writes it: ``{k="v",...}``, names sorted."""
        if self._texts is None:
            order = sorted(range(len(self.names)), key=lambda i: self.names[i])
            template = "{{" + ",".join(f'{self.names[i]}="{{}}"' for i in order) + "}}"
            columns = [_escape_column(self.columns[i]) for i in order]
            self._texts = list(map(template.format, *columns))
        return self._texts


class ObjectFamily(Metric):
    """A family with one sample per object of an :class:`ObjectLabels`, values in a list;
    ``samples`` (for prometheus-client's writers and readers) is made only when read."""

    def __init__(self, name: str, kind: str, documentation: str, objects: ObjectLabels, values: list[int]):
        super().__init__(
            name.removesuffix("_total") if kind == "counter" else name,
            documentation,
            "unknown" if kind == "untyped" else kind,
        )
        self.sample_name = name
        self.objects = objects
        self.values = values

    @property
    def samples(self) -> list[Sample]:
        return [Sample(self.sample_name, self.objects.labels(i), v) for i, v in enumerate(self.values)]

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        if value:
            raise TypeError("an ObjectFamily's samples are its objects' values")


# -- the text format -------------------------------------------------------------------------


def _escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _escape_column(values: list[str]) -> list[str]:
    return [_escape_label(v) if "\\" in v or "\n" in v or '"' in v else v for v in values]


def _label_text(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in sorted(labels.items())) + "}"


_TYPES: Final = {"unknown": "untyped"}
_MILLION: Final = 1_000_000  # below it Go writes an integral float as Python does, plus ".0"


def _go_float(value: float) -> str:
    """A value as Go (and generate_latest) writes it: 1e+06, +Inf, NaN."""
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text


def exposition(metrics: Iterable[Metric]) -> bytes:
    """The Prometheus text format (0.0.4) of ``metrics``: what ``generate_latest`` writes for
    these families (gauges, counters and untyped ones with plain names), faster, since a
    label dict shared by several samples is formatted once."""
    out: list[str] = []
    # id(labels) -> (labels, text): holding the dict keeps its id from being reused meanwhile
    label_texts: dict[int, tuple[Labels, str]] = {}
    for metric in metrics:
        name = metric.name + "_total" if metric.type == "counter" else metric.name
        documentation = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {documentation}\n# TYPE {name} {_TYPES.get(metric.type, metric.type)}\n")
        if isinstance(metric, ObjectFamily):
            texts, values = metric.objects.texts(), metric.values
            if values and min(values) > -_MILLION and max(values) < _MILLION:
                out.extend(map((metric.sample_name + "{} {}.0\n").format, texts, values))
            else:
                out.extend(
                    f"{metric.sample_name}{text} {_go_float(v)}\n"
                    for text, v in zip(texts, values, strict=True)
                )
            continue
        for sample in metric.samples:
            labels = sample.labels
            known = label_texts.get(id(labels))
            if known is None:
                known = label_texts[id(labels)] = (labels, _label_text(labels))
            text = known[1]
            value = sample.value
            shown = f"{value}.0" if type(value) is int and -_MILLION < value < _MILLION else _go_float(value)
            out.append(f"{sample.name}{text} {shown}\n")
    return "".join(out).encode()


# -- the collector ---------------------------------------------------------------------------


def node_name() -> str:
    return f"jackalope@{socket.gethostname()}"


class BrokerCollector(Collector):
    """The broker's metrics, read from the core when :meth:`collect` is called."""

    def __init__(self, core: BrokerCore, info: dict[str, Any], *, per_object: bool) -> None:
        self.core = core
        self.info = info
        self.per_object = per_object

    def collect(self) -> Iterator[Metric]:
        yield from self._identity()
        yield from self._resources()
        yield from self._alarms()
        yield from self._queues()
        if self.core.groups is not None:
            yield from self._kafka()

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
                "rabbitmq_node": node_name(),
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
        readings = self.core.alarms.readings
        if readings is None:
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
        ready = unacked = consumers = count = 0
        for vhost in self.core.vhosts.values():
            for queues in (vhost.queues, vhost.streams):
                count += len(queues)
                for q in queues.values():
                    ready += q.message_count
                    unacked += q.unacked_count
                    consumers += q.consumer_count
        yield gauge(READY[0], READY[1], ready)
        yield gauge(UNACKED[0], UNACKED[1], unacked)
        yield gauge(DEPTH[0], DEPTH[1], ready + unacked)
        yield gauge(CONSUMERS[0], CONSUMERS[1], consumers)
        yield from self._queue_totals(count, consumers)

    def _queues_per_object(self) -> Iterator[Metric]:
        objects = ObjectLabels(("vhost", "queue"))
        vhosts, names = objects.columns
        info = ObjectLabels(("vhost", "queue", "queue_type", "membership"))
        info_vhosts, info_names, info_types, info_membership = info.columns
        ready: list[int] = []
        unacked: list[int] = []
        consumers: list[int] = []
        for vhost in self.core.vhosts.values():
            for queues in (vhost.queues, vhost.streams):
                n = len(queues)
                vhosts.extend([vhost.name] * n)
                names.extend(queues)
                for q in queues.values():
                    ready.append(q.message_count)
                    unacked.append(q.unacked_count)
                    consumers.append(q.consumer_count)
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

    # -- Kafka, as kafka_exporter ---------------------------------------------------------------

    def _kafka(self) -> Iterator[Metric]:
        groups = self.core.groups
        assert groups is not None
        topics = self.core.topics
        yield gauge("kafka_brokers", "Number of Brokers in the Kafka Cluster.", 1)
        address = self.info.get("listeners", {}).get("kafka", "").partition("://")[2]
        yield family(
            "kafka_broker_info",
            "gauge",
            "Information about the Kafka Broker.",
            [({"id": KAFKA_NODE_ID, "address": address}, 1)],
        )
        partitions: list[tuple[Labels, float]] = []
        current: list[tuple[Labels, float]] = []
        oldest: list[tuple[Labels, float]] = []
        leader: list[tuple[Labels, float]] = []
        replicas: list[tuple[Labels, float]] = []
        in_sync: list[tuple[Labels, float]] = []
        preferred: list[tuple[Labels, float]] = []
        under: list[tuple[Labels, float]] = []
        partition_labels: dict[tuple[str, int], Labels] = {}
        for topic in sorted(topics, key=lambda t: t.name):
            partitions.append(({"topic": topic.name}, len(topic.partitions)))
            for p, log in enumerate(topic.partitions):
                labels = partition_labels[topic.name, p] = {"topic": topic.name, "partition": str(p)}
                current.append((labels, log.end_offset))
                oldest.append((labels, log.start_offset))
                leader.append((labels, 0))
                replicas.append((labels, 1))
                in_sync.append((labels, 1))
                preferred.append((labels, 1))
                under.append((labels, 0))
        yield family("kafka_topic_partitions", "gauge", "Number of partitions for this Topic", partitions)
        yield family(
            "kafka_topic_partition_current_offset",
            "gauge",
            "Current Offset of a Broker at Topic/Partition",
            current,
        )
        yield family(
            "kafka_topic_partition_oldest_offset",
            "gauge",
            "Oldest Offset of a Broker at Topic/Partition",
            oldest,
        )
        yield family(
            "kafka_topic_partition_leader", "gauge", "Leader Broker ID of this Topic/Partition", leader
        )
        yield family(
            "kafka_topic_partition_replicas", "gauge", "Number of Replicas for this Topic/Partition", replicas
        )
        yield family(
            "kafka_topic_partition_in_sync_replica",
            "gauge",
            "Number of In-Sync Replicas for this Topic/Partition",
            in_sync,
        )
        yield family(
            "kafka_topic_partition_leader_is_preferred",
            "gauge",
            "1 if Topic/Partition is using the Preferred Broker",
            preferred,
        )
        yield family(
            "kafka_topic_partition_under_replicated_partition",
            "gauge",
            "1 if Topic/Partition is under Replicated",
            under,
        )
        yield from self._consumer_groups(partition_labels)

    def _consumer_groups(self, partition_labels: dict[tuple[str, int], Labels]) -> Iterator[Metric]:
        """kafka_exporter's group families (as with its default ``--offset.show-all``): every
        partition of each topic a group has committed offsets for, -1 where it has none."""
        groups = self.core.groups
        assert groups is not None
        topics = self.core.topics
        members: list[tuple[Labels, float]] = []
        offset: list[tuple[Labels, float]] = []
        offset_sum: list[tuple[Labels, float]] = []
        lag: list[tuple[Labels, float]] = []
        lag_sum: list[tuple[Labels, float]] = []
        error, listings = groups.list_groups()
        for listing in [] if error is not None else sorted(listings, key=lambda g: g.group_id):
            group_id = listing.group_id
            members.append(({"consumergroup": group_id}, len(groups.describe(group_id).members)))
        by_topic: dict[tuple[str, str], dict[int, tuple[int, int]]] = {}
        for row in all_lags(groups, topics):
            by_topic.setdefault((row.group_id, row.topic), {})[row.partition] = (
                row.committed_offset,
                row.lag,
            )
        for (group_id, topic_name), committed in by_topic.items():
            topic = topics.get(topic_name)
            if topic is None:
                continue
            total_offset = total_lag = 0
            for p in range(len(topic.partitions)):
                labels = {"consumergroup": group_id, **partition_labels[topic_name, p]}
                committed_offset, partition_lag = committed.get(p, (-1, -1))
                offset.append((labels, committed_offset))
                lag.append((labels, partition_lag))
                total_offset += committed_offset
                if p in committed:
                    total_lag += partition_lag
            group_topic = {"consumergroup": group_id, "topic": topic_name}
            offset_sum.append((group_topic, total_offset))
            lag_sum.append((group_topic, total_lag))
        yield family("kafka_consumergroup_members", "gauge", "Amount of members in a consumer group", members)
        yield family(
            "kafka_consumergroup_current_offset",
            "gauge",
            "Current Offset of a ConsumerGroup at Topic/Partition",
            offset,
        )
        yield family(
            "kafka_consumergroup_current_offset_sum",
            "gauge",
            "Current Offset of a ConsumerGroup at Topic for all partitions",
            offset_sum,
        )
        yield family(
            "kafka_consumergroup_lag",
            "gauge",
            "Current Approximate Lag of a ConsumerGroup at Topic/Partition",
            lag,
        )
        yield family(
            "kafka_consumergroup_lag_sum",
            "gauge",
            "Current Approximate Lag of a ConsumerGroup at Topic for all partitions",
            lag_sum,
        )


# -- the endpoints ---------------------------------------------------------------------------


def _scrape(request: web.Request, *, per_object: bool) -> web.Response:
    require_monitor(request)
    collector = BrokerCollector(request.app[CORE], request.app[INFO], per_object=per_object)
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
