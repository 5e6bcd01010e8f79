"""Produce: validate the producer's record batches and append them to the partition logs as sent.

Batches are checked (sizes, magic, CRC-32C, producer sequence) without decoding individual
records, offsets are assigned in place, and compressed batches are stored compressed.
``acks=1`` is answered once the batch is written to the OS (it survives a broker crash);
``acks=-1`` once it is durable under the topic's durability policy (``always``: fsync'ed).
A transactional batch (KIP-98) is accepted only for a partition of its producer's Ongoing
transaction (added by AddPartitionsToTxn first: KIP-890 part 1), else INVALID_TXN_STATE.
While a resource alarm is in effect a produce waits (and its connection is not read from)
until the alarm clears; it is never failed for it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jackalope.core.transactions import TxnError
from jackalope.kafka import internal_topics
from jackalope.kafka.context import RequestContext
from jackalope.kafka.handlers import Api
from jackalope.kafka.handlers.metadata import auto_create
from jackalope.kafka.protocol import ApiKey, ErrorCode, build, response_module
from jackalope.storage import (
    CorruptRecordError,
    InvalidProducerEpochError,
    InvalidRecordError,
    InvalidTxnStateError,
    Log,
    OutOfOrderSequenceError,
    RecordTooLargeError,
    StorageError,
)
from jackalope.storage.records import MAGIC, TRANSACTIONAL, iter_batches

_MAGIC_AT = 16  # the magic byte's place in a record batch and in a v0/v1 message set alike

_ERRORS: list[tuple[type[Exception], int]] = [
    (RecordTooLargeError, ErrorCode.message_too_large),
    (OutOfOrderSequenceError, ErrorCode.out_of_order_sequence_number),
    (InvalidProducerEpochError, ErrorCode.invalid_producer_epoch),
    # a non-transactional batch of a producer whose transaction is open on the partition
    (InvalidTxnStateError, ErrorCode.invalid_txn_state),
    (InvalidRecordError, ErrorCode.invalid_record),
    (CorruptRecordError, ErrorCode.corrupt_message),
    (StorageError, ErrorCode.kafka_storage_error),
]


def _error_code(exc: Exception) -> int:
    for cls, code in _ERRORS:
        if isinstance(exc, cls):
            return code
    raise exc


class _Result:
    __slots__ = ("base_offset", "error", "last_offset", "log", "log_append_time", "message", "record_errors")

    def __init__(self, error: int = 0, message: str | None = None) -> None:
        self.error = error
        self.message = message
        self.record_errors: list[tuple[int, str]] = []  # KIP-467: (index in the batch, why)
        self.base_offset = -1
        self.last_offset = -1
        self.log_append_time = -1
        self.log: Log | None = None


def _topic_name(ctx: RequestContext, t: Any) -> str | None:
    """The topic a request names: by name, or by topic id (v13+; None for an unknown id)."""
    topic_id = getattr(t, "topic_id", None)
    if topic_id is None:
        return str(t.name)
    found = ctx.broker.topics.by_id(topic_id) or internal_topics.find(ctx.broker, topic_id)
    return found.name if found is not None else None


def _append(ctx: RequestContext, topic_name: str | None, partition: int, records: bytes | None) -> _Result:
    if topic_name is None:
        return _Result(ErrorCode.unknown_topic_id)
    topic = ctx.broker.topics.get(topic_name)
    if topic is None and internal_topics.is_internal(topic_name):
        return _Result(ErrorCode.invalid_topic_exception, f"Cannot append to internal topic {topic_name}")
    if topic is None:
        topic, error = auto_create(ctx, topic_name)
        if topic is None:
            return _Result(error)
    log_ = topic.log(partition)
    if log_ is None:
        return _Result(ErrorCode.unknown_topic_or_partition)
    refused = _refuse_format(ctx.api_version, records)
    if refused is not None:
        return _Result(ErrorCode.invalid_record, refused)
    assert records is not None
    refused_txn = _refuse_transactional(ctx, topic_name, partition, records)
    if refused_txn is not None:
        return _Result(*refused_txn)
    try:
        info = ctx.broker.topics.append_batches(log_, bytearray(records))
    except Exception as exc:
        result = _Result(_error_code(exc), str(exc))
        if isinstance(exc, InvalidRecordError):
            result.record_errors = exc.record_errors
        return result
    result = _Result()
    result.base_offset = info.base_offset
    result.last_offset = info.last_offset
    if log_.config.log_append_time:
        result.log_append_time = info.max_timestamp
    result.log = log_  # a retried batch already written has its original offsets
    return result


def _refuse_format(version: int, records: bytes | None) -> str | None:
    """Why Kafka's ``ProduceRequest.validateRecords`` refuses a partition's records (INVALID_RECORD),
    or None: Produce v3+ carries record batches of magic 2 only (message formats v0 and v1
    are gone from Kafka 4), and at least one batch."""
    if not records:
        return f"Produce requests with version {version} must have at least one record batch per partition"
    if len(records) > _MAGIC_AT and records[_MAGIC_AT] != MAGIC:
        return (
            f"Produce requests with version {version} are only allowed to contain record batches "
            "with magic version 2"
        )
    return None


_TXN_CODES: dict[TxnError, int] = {
    TxnError.INVALID_PRODUCER_EPOCH: ErrorCode.invalid_producer_epoch,
    # the coordinator is not ready: retriable, as Kafka answers a failed verification
    TxnError.COORDINATOR_LOAD_IN_PROGRESS: ErrorCode.not_enough_replicas,
    TxnError.NOT_COORDINATOR: ErrorCode.not_enough_replicas,
}


def _refuse_transactional(
    ctx: RequestContext, topic: str, partition: int, records: bytes
) -> tuple[int, str] | None:
    """``(error, message)`` if a transactional batch's producer has no Ongoing transaction with
    this partition in it (KIP-890 part 1: the batch would otherwise open a transaction no
    coordinator knows of, that nothing would ever end)."""
    for _, header in iter_batches(records):
        if not header.attributes & TRANSACTIONAL or header.producer_id < 0:
            continue
        coordinator = ctx.broker.transactions
        if coordinator is None:
            return ErrorCode.invalid_txn_state, "no transaction coordinator"
        error = coordinator.check_produce(header.producer_id, header.producer_epoch, (topic, partition))
        if error is not None:
            message = f"partition {topic}-{partition} is not in the producer's ongoing transaction"
            return _TXN_CODES.get(error, ErrorCode.invalid_txn_state), message
    return None


async def _settled(ctx: RequestContext, result: _Result, acks: int) -> None:
    """Wait until the append counts for ``acks``; a write or fsync failure becomes the error."""
    log_ = result.log
    if log_ is None or result.error:
        return
    try:
        if acks == -1:
            await ctx.broker.core.logs.wait_durable(log_, result.last_offset)
        else:
            await asyncio.sleep(0)  # the manager flushes dirty logs at the end of each iteration...
            if log_.flushed_offset <= result.last_offset:
                log_.flush()  # ...unless an fsync of this log is running
            if log_.flushed_offset <= result.last_offset:  # the write failed: the tail is gone
                raise log_.failed or StorageError("the write of the batch failed")
    except StorageError as exc:
        result.error = ErrorCode.kafka_storage_error
        result.message = str(exc)


async def handle_produce(ctx: RequestContext, request: Any) -> Any:
    acks = request.acks
    error = ErrorCode.none
    if acks not in (0, 1, -1):
        error = ErrorCode.invalid_required_acks
    if error:
        results = [[(p.index, _Result(error)) for p in t.partition_data] for t in request.topic_data]
        return _response(ctx, request, results)
    await ctx.connection.wait_for_alarms()  # a memory or disk alarm holds producers back
    results = [
        [(p.index, _append(ctx, _topic_name(ctx, t), p.index, p.records)) for p in t.partition_data]
        for t in request.topic_data
    ]
    if acks == 0:
        if any(r.error for topic in results for _, r in topic):
            # Kafka's way to tell an acks=0 producer that something failed
            ctx.connection.close("acks=0 produce failed")
        return None
    await asyncio.gather(*(_settled(ctx, r, acks) for topic in results for _, r in topic))
    return _response(ctx, request, results)


def _response(ctx: RequestContext, request: Any, results: list[list[tuple[int, _Result]]]) -> Any:
    mod = response_module(ApiKey.PRODUCE, ctx.api_version)
    return build(
        mod.ProduceResponse,
        responses=tuple(
            build(
                mod.TopicProduceResponse,
                name=getattr(t, "name", None),
                topic_id=getattr(t, "topic_id", None),  # v13+
                partition_responses=tuple(
                    build(
                        mod.PartitionProduceResponse,
                        index=index,
                        error_code=r.error,
                        base_offset=r.base_offset,
                        log_append_time=r.log_append_time,
                        log_start_offset=r.log.start_offset if r.log is not None else -1,
                        record_errors=tuple(
                            build(mod.BatchIndexAndErrorMessage, batch_index=i, batch_index_error_message=m)
                            for i, m in r.record_errors
                        ),
                        error_message=r.message,
                    )
                    for index, r in parts
                ),
            )
            for t, parts in zip(request.topic_data, results, strict=True)
        ),
        throttle_time=0,
    )


APIS = [Api(ApiKey.PRODUCE, 3, 13, handle_produce)]
