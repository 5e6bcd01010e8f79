"""Kafka topics feed AMQP queues: records appended to a topic are routed through the exchange
``amq.kafka`` of vhost "/" (a predeclared topic exchange), the topic's name as the routing key.

Opt-in by binding: a queue bound to ``amq.kafka`` with the key ``orders`` (or a pattern such
as ``orders.#``) gets a copy of every record appended to topic ``orders`` from then on, as an
AMQP message (the front-end's decoder makes it: the core knows no message format).  Which
queues a record goes to is decided when it is appended (the bindings of that moment); the
copies are enqueued once the append is durable under the topic's durability policy, so no
queue ever holds a record that a crash could take out of the topic.  With no binding on
``amq.kafka`` an append costs one dictionary look-up and nothing else.
"""

from __future__ import annotations

import functools
import logging
import threading
import urllib.parse
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, Final

from jackalope.core.message import Message
from jackalope.storage import AppendInfo, Log
from jackalope.storage.records import Record, decode_records, iter_batches

if TYPE_CHECKING:
    from jackalope.core.vhost import Target, VirtualHost

log = logging.getLogger(__name__)

KAFKA_EXCHANGE: Final = "amq.kafka"

# How a topic's record becomes a message: (topic, partition, record) -> Message.
RecordDecoder = Callable[[str, int, Record], Message]


def _no_headers() -> Mapping[str, Any]:
    return {}


def partition_of(log_: Log) -> tuple[str, int]:
    """The topic and partition of a topic log (named ``topic/<name>/<partition>``, its directory
    that name quoted)."""
    _, topic, partition = urllib.parse.unquote(log_.directory.name).split("/")
    return topic, int(partition)


class TopicRoutes:
    """Routes what is appended to topic partitions into the queues bound to ``amq.kafka``."""

    def __init__(self, vhost: VirtualHost) -> None:
        self.vhost = vhost
        self.decode: RecordDecoder | None = None  # installed by the AMQP front-end
        self._thread = threading.get_ident()  # durable callbacks off it (at close) route nothing

    def appended(self, log_: Log, data: bytes | bytearray, info: AppendInfo) -> None:
        """``data`` (record batches, offsets assigned) was appended to ``log_``."""
        exchange = self.vhost.exchanges.get(KAFKA_EXCHANGE)
        if exchange is None or not exchange.has_bindings() or self.decode is None:
            return
        topic, partition = partition_of(log_)
        targets = self.vhost.route(KAFKA_EXCHANGE, topic, _no_headers)
        if not targets:
            return
        log_.when_durable(
            info.last_offset,
            functools.partial(self._durable, topic, partition, bytes(data), tuple(targets)),
        )

    def _durable(
        self,
        topic: str,
        partition: int,
        data: bytes,
        targets: Collection[Target],
        error: BaseException | None,
    ) -> None:
        if error is not None or threading.get_ident() != self._thread or self.decode is None:
            if error is not None:
                log.warning("records of %s/%d not routed to %s: %s", topic, partition, KAFKA_EXCHANGE, error)
            return
        decode = self.decode
        live = [t for t in targets if not getattr(t, "deleted", False) and getattr(t, "name", None) != topic]
        if not live:
            return
        for pos, header in iter_batches(data):
            if header.attributes & 0x20:  # control batches (transaction markers) carry no records
                continue
            for record in decode_records(data, pos, verify=False):
                message = decode(topic, partition, record)
                for target in live:
                    target.enqueue(message)
