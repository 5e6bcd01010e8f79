"""Kafka topics feed AMQP queues: records appended to a topic are routed through the exchange
``amq.kafka`` of vhost "/" (a predeclared topic exchange), the topic's name as the routing key.

Opt-in by binding: a queue bound to ``amq.kafka`` with the key ``orders`` (or a pattern such
as ``orders.#``) gets a copy of every record appended to topic ``orders`` from then on, as an
AMQP message (the front-end's decoder makes it: the core knows no message format).  Which
queues a record goes to is decided when it is appended (the bindings of that moment); the
copies are enqueued once the append is durable under the topic's durability policy, so no
queue ever holds a record that a crash could take out of the topic.  With no binding on
``amq.kafka`` an append costs one dictionary look-up and nothing else.

Kafka transactions: the records of a transactional batch are not routed when appended but when
the transaction commits (:meth:`Topics.append_control` calls :meth:`TopicRoutes.committed`):
the queues bound at that moment get the transaction's records, read back from the log once the
COMMIT marker is durable.  An aborted transaction's records are never routed, nor are markers.
"""

from __future__ import annotations

import functools
import logging
import threading
import urllib.parse
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

from jackalope.core.message import Message
from jackalope.storage import AppendInfo, Log, OffsetOutOfRangeError, StorageError
from jackalope.storage.records import CONTROL, TRANSACTIONAL, Record, decode_records, iter_batches

if TYPE_CHECKING:
    from jackalope.core.vhost import Target, VirtualHost

log = logging.getLogger(__name__)

KAFKA_EXCHANGE: Final = "amq.kafka"
_READ_BYTES: Final = 1 << 20

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

    def committed(self, log_: Log, producer_id: int, first_offset: int, marker: AppendInfo) -> None:
        """``producer_id``'s transaction from ``first_offset`` on was committed by the marker
        ``marker`` on ``log_``: route its records once the marker is durable."""
        exchange = self.vhost.exchanges.get(KAFKA_EXCHANGE)
        if exchange is None or not exchange.has_bindings() or self.decode is None:
            return
        topic, _ = partition_of(log_)
        targets = self.vhost.route(KAFKA_EXCHANGE, topic, _no_headers)
        if not targets:
            return
        log_.when_durable(
            marker.last_offset,
            functools.partial(
                self._committed_durable, log_, producer_id, first_offset, marker.base_offset, tuple(targets)
            ),
        )

    def _committed_durable(
        self,
        log_: Log,
        producer_id: int,
        first_offset: int,
        marker_offset: int,
        targets: Collection[Target],
        error: BaseException | None,
    ) -> None:
        topic, partition = partition_of(log_)
        live = self._live(topic, partition, targets, error)
        if live:
            for data in _transaction_batches(log_, producer_id, first_offset, marker_offset):
                self._route(topic, partition, data, live, transactional=True)

    def _durable(
        self,
        topic: str,
        partition: int,
        data: bytes,
        targets: Collection[Target],
        error: BaseException | None,
    ) -> None:
        live = self._live(topic, partition, targets, error)
        if live:
            self._route(topic, partition, data, live, transactional=False)

    def _live(
        self, topic: str, partition: int, targets: Collection[Target], error: BaseException | None
    ) -> list[Target]:
        """The targets still there to route to (none after an error or off the loop's thread)."""
        if error is not None or threading.get_ident() != self._thread or self.decode is None:
            if error is not None:
                log.warning("records of %s/%d not routed to %s: %s", topic, partition, KAFKA_EXCHANGE, error)
            return []
        return [t for t in targets if not getattr(t, "deleted", False) and getattr(t, "name", None) != topic]

    def _route(
        self, topic: str, partition: int, data: bytes, live: list[Target], *, transactional: bool
    ) -> None:
        """Enqueue the records of ``data``'s batches: the non-transactional ones, or (at commit)
        the transactional ones; never control batches (transaction markers)."""
        decode = self.decode
        assert decode is not None
        for pos, header in iter_batches(data):
            if header.attributes & CONTROL or bool(header.attributes & TRANSACTIONAL) != transactional:
                continue
            for record in decode_records(data, pos, verify=False):
                message = decode(topic, partition, record)
                for target in live:
                    target.enqueue(message)


def _transaction_batches(log_: Log, producer_id: int, first: int, end: int) -> Iterator[bytes]:
    """The stored batches of ``producer_id``'s transaction in ``first..end-1`` (as far as
    retention left them), each alone, read as they are taken."""
    offset = max(first, log_.start_offset)
    while offset < end:
        try:
            result = log_.read(offset, _READ_BYTES)
        except OffsetOutOfRangeError:
            offset = log_.start_offset
            if offset >= end:
                return
            continue
        except StorageError as exc:
            log.warning("transaction of producer %d not routed to %s: %s", producer_id, KAFKA_EXCHANGE, exc)
            return
        if not result.data or result.next_offset <= offset:
            return
        for pos, header in iter_batches(result.data):
            if header.base_offset >= end:
                return
            ours = header.producer_id == producer_id and header.base_offset >= offset
            if ours and header.attributes & (TRANSACTIONAL | CONTROL) == TRANSACTIONAL:
                yield result.data[pos : pos + header.size]
        offset = result.next_offset
