"""Transactions (KIP-98): InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit,
EndTxn, and the administration APIs DescribeTransactions, ListTransactions, DescribeProducers.

The transaction coordinator (:mod:`jackalope.core.transactions`) holds the state; this module
translates.  Versions are Kafka 4's without KIP-890 part 2 (EndTxn v5, TxnOffsetCommit v5 and
Produce v12 would promise an epoch bump per transaction and implicit partition adds).
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from jackalope.core.groups import OffsetAndMetadata, TopicPartition
from jackalope.core.transactions import TransactionCoordinator, TxnError
from jackalope.kafka.context import RequestContext
from jackalope.kafka.handlers import Api
from jackalope.kafka.protocol import ApiKey, ErrorCode, build, ms, response_module


def _coordinator(ctx: RequestContext) -> TransactionCoordinator | None:
    return ctx.broker.transactions


def code(error: TxnError | None, *, fenced_from: int = 0, version: int = 0) -> int:
    """Kafka's error code for ``error``; PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before the
    version that introduced it (``fenced_from``)."""
    if error is None:
        return ErrorCode.none
    if error is TxnError.PRODUCER_FENCED and version < fenced_from:
        return ErrorCode.invalid_producer_epoch
    return int(getattr(ErrorCode, error.value.lower()))


# -- InitProducerId ------------------------------------------------------------------------------


async def handle_init_producer_id(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.INIT_PRODUCER_ID, ctx.api_version)
    producer_id = getattr(request, "producer_id", -1)
    epoch = getattr(request, "producer_epoch", -1)

    def answer(error: int, producer_id: int = -1, epoch: int = -1) -> Any:
        return build(
            mod.InitProducerIdResponse,
            throttle_time=0,
            error_code=error,
            producer_id=producer_id,
            producer_epoch=epoch,
        )

    if request.transactional_id is None:  # the idempotent producer
        if producer_id >= 0 and 0 <= epoch < 32767:
            epoch += 1  # KIP-360: bump the epoch of a producer that lost track of its sequence
        else:
            producer_id, epoch = ctx.broker.producer_ids.allocate(), 0
        return answer(ErrorCode.none, producer_id, epoch)
    coordinator = _coordinator(ctx)
    if coordinator is None:
        return answer(ErrorCode.coordinator_not_available)
    error, ids = await coordinator.init_producer_id(
        request.transactional_id, ms(request.transaction_timeout), producer_id, epoch
    )
    return answer(code(error, fenced_from=4, version=ctx.api_version), ids.producer_id, ids.producer_epoch)


# -- AddPartitionsToTxn --------------------------------------------------------------------------


def _partitions(topics: Any) -> list[TopicPartition]:
    return [(t.name, p) for t in topics for p in t.partitions]


def _topic_results(mod: Any, results: dict[TopicPartition, TxnError | None], version: int) -> tuple[Any, ...]:
    by_topic: dict[str, list[Any]] = {}
    for (topic, partition), error in results.items():
        by_topic.setdefault(topic, []).append(
            build(
                mod.AddPartitionsToTxnPartitionResult,
                partition_index=partition,
                partition_error_code=code(error, fenced_from=2, version=version),
            )
        )
    return tuple(
        build(mod.AddPartitionsToTxnTopicResult, name=name, results_by_partition=tuple(parts))
        for name, parts in by_topic.items()
    )


async def handle_add_partitions_to_txn(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.ADD_PARTITIONS_TO_TXN, ctx.api_version)
    coordinator = _coordinator(ctx)
    version = ctx.api_version

    async def one(tid: str, pid: int, epoch: int, topics: Any, verify_only: bool) -> dict[Any, Any]:
        partitions = _partitions(topics)
        if coordinator is None:
            return dict.fromkeys(partitions, TxnError.NOT_COORDINATOR)
        if verify_only:
            return coordinator.verify_partitions(tid, pid, epoch, partitions)
        return await coordinator.add_partitions(tid, pid, epoch, partitions)

    if version <= 3:
        results = await one(
            request.v3_and_below_transactional_id,
            request.v3_and_below_producer_id,
            request.v3_and_below_producer_epoch,
            request.v3_and_below_topics,
            False,
        )
        return build(
            mod.AddPartitionsToTxnResponse,
            throttle_time=0,
            results_by_topic_v3_and_below=_topic_results(mod, results, version),
        )
    out = []
    for txn in request.transactions:
        results = await one(
            txn.transactional_id, txn.producer_id, txn.producer_epoch, txn.topics, txn.verify_only
        )
        out.append(
            build(
                mod.AddPartitionsToTxnResult,
                transactional_id=txn.transactional_id,
                topic_results=_topic_results(mod, results, version),
            )
        )
    return build(
        mod.AddPartitionsToTxnResponse,
        throttle_time=0,
        error_code=ErrorCode.none,
        results_by_transaction=tuple(out),
    )


# -- AddOffsetsToTxn, TxnOffsetCommit, EndTxn ----------------------------------------------------


async def handle_add_offsets_to_txn(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.ADD_OFFSETS_TO_TXN, ctx.api_version)
    coordinator = _coordinator(ctx)
    error: TxnError | None = TxnError.NOT_COORDINATOR
    if coordinator is not None:
        error = await coordinator.add_offsets(
            request.transactional_id, request.producer_id, request.producer_epoch, request.group_id
        )
    return build(
        mod.AddOffsetsToTxnResponse,
        throttle_time=0,
        error_code=code(error, fenced_from=2, version=ctx.api_version),
    )


async def handle_txn_offset_commit(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.TXN_OFFSET_COMMIT, ctx.api_version)
    offsets: dict[TopicPartition, OffsetAndMetadata] = {
        (t.name, p.partition_index): OffsetAndMetadata(
            p.committed_offset, getattr(p, "committed_leader_epoch", -1), p.committed_metadata or ""
        )
        for t in request.topics
        for p in t.partitions
    }
    coordinator = _coordinator(ctx)
    if coordinator is None:
        results: dict[TopicPartition, TxnError | None] = dict.fromkeys(offsets, TxnError.NOT_COORDINATOR)
    else:
        results = await coordinator.commit_offsets(
            request.transactional_id,
            request.group_id,
            request.producer_id,
            request.producer_epoch,
            offsets,
            generation_id=getattr(request, "generation_id", -1),
            member_id=getattr(request, "member_id", ""),
            group_instance_id=getattr(request, "group_instance_id", None),
        )
    by_topic: dict[str, list[Any]] = {}
    for (topic, partition), error in results.items():
        by_topic.setdefault(topic, []).append(
            build(mod.TxnOffsetCommitResponsePartition, partition_index=partition, error_code=code(error))
        )
    return build(
        mod.TxnOffsetCommitResponse,
        throttle_time=0,
        topics=tuple(
            build(mod.TxnOffsetCommitResponseTopic, name=name, partitions=tuple(parts))
            for name, parts in by_topic.items()
        ),
    )


async def handle_end_txn(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.END_TXN, ctx.api_version)
    coordinator = _coordinator(ctx)
    error: TxnError | None = TxnError.NOT_COORDINATOR
    if coordinator is not None:
        error = await coordinator.end_txn(
            request.transactional_id, request.producer_id, request.producer_epoch, request.committed
        )
    return build(
        mod.EndTxnResponse,
        throttle_time=0,
        error_code=code(error, fenced_from=2, version=ctx.api_version),
        producer_id=-1,
        producer_epoch=-1,
    )


# -- administration ------------------------------------------------------------------------------


def _datetime(value_ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(value_ms / 1000, datetime.UTC)


async def handle_describe_transactions(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.DESCRIBE_TRANSACTIONS, ctx.api_version)
    coordinator = _coordinator(ctx)
    states = []
    for tid in request.transactional_ids:
        d = coordinator.describe([tid])[0] if coordinator is not None else None
        if d is None or d.error is not None:
            error = code(d.error) if d is not None else ErrorCode.coordinator_not_available
            states.append(
                build(
                    mod.TransactionState,
                    error_code=error,
                    transactional_id=tid,
                    transaction_state="",
                    transaction_timeout=0,
                    transaction_start_time=_datetime(0),  # the schema's default, as Kafka sends
                    producer_id=-1,
                    producer_epoch=-1,
                    topics=(),
                )
            )
            continue
        by_topic: dict[str, list[int]] = {}
        for topic, partition in d.partitions:
            by_topic.setdefault(topic, []).append(partition)
        states.append(
            build(
                mod.TransactionState,
                error_code=ErrorCode.none,
                transactional_id=tid,
                transaction_state=d.state,
                transaction_timeout=d.timeout_ms,
                transaction_start_time=_datetime(d.start_ms),
                producer_id=d.producer_id,
                producer_epoch=d.producer_epoch,
                topics=tuple(
                    build(mod.TopicData, topic=t, partitions=tuple(ps)) for t, ps in by_topic.items()
                ),
            )
        )
    return build(mod.DescribeTransactionsResponse, throttle_time=0, transaction_states=tuple(states))


async def handle_list_transactions(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.LIST_TRANSACTIONS, ctx.api_version)
    coordinator = _coordinator(ctx)

    def answer(error: int, unknown: tuple[str, ...] = (), listings: tuple[Any, ...] = ()) -> Any:
        return build(
            mod.ListTransactionsResponse,
            throttle_time=0,
            error_code=error,
            unknown_state_filters=unknown,
            transaction_states=listings,
        )

    if coordinator is None:
        return answer(ErrorCode.coordinator_not_available)
    try:
        error, unknown, listings = coordinator.list_transactions(
            request.state_filters,
            request.producer_id_filters,
            getattr(request, "duration_filter", -1),
            getattr(request, "transactional_id_pattern", None),
        )
    except re.error:
        return answer(ErrorCode.invalid_request)
    return answer(
        code(error),
        tuple(unknown),
        tuple(
            build(
                mod.TransactionState,
                transactional_id=t.transactional_id,
                producer_id=t.producer_id,
                transaction_state=t.state,
            )
            for t in listings
        ),
    )


async def handle_describe_producers(ctx: RequestContext, request: Any) -> Any:
    mod = response_module(ApiKey.DESCRIBE_PRODUCERS, ctx.api_version)
    topics = []
    for t in request.topics:
        partitions = []
        for index in t.partition_indexes:
            log_ = ctx.broker.topics.partition(t.name, index)
            if log_ is None:
                partitions.append(
                    build(
                        mod.PartitionResponse,
                        partition_index=index,
                        error_code=ErrorCode.unknown_topic_or_partition,
                        error_message=None,
                        active_producers=(),
                    )
                )
                continue
            producers = tuple(
                build(
                    mod.ProducerState,
                    producer_id=p.producer_id,
                    producer_epoch=p.producer_epoch,
                    last_sequence=p.last_sequence,
                    last_timestamp=p.last_timestamp,
                    coordinator_epoch=p.coordinator_epoch,
                    current_txn_start_offset=p.current_txn_start_offset,
                )
                for p in log_.producer_states()
            )
            partitions.append(
                build(
                    mod.PartitionResponse,
                    partition_index=index,
                    error_code=ErrorCode.none,
                    error_message=None,
                    active_producers=producers,
                )
            )
        topics.append(build(mod.TopicResponse, name=t.name, partitions=tuple(partitions)))
    return build(mod.DescribeProducersResponse, throttle_time=0, topics=tuple(topics))


APIS = [
    Api(ApiKey.INIT_PRODUCER_ID, 0, 5, handle_init_producer_id),
    Api(ApiKey.ADD_PARTITIONS_TO_TXN, 0, 5, handle_add_partitions_to_txn),
    Api(ApiKey.ADD_OFFSETS_TO_TXN, 0, 4, handle_add_offsets_to_txn),
    Api(ApiKey.END_TXN, 0, 4, handle_end_txn),
    Api(ApiKey.TXN_OFFSET_COMMIT, 0, 4, handle_txn_offset_commit),
    Api(ApiKey.DESCRIBE_PRODUCERS, 0, 0, handle_describe_producers),
    Api(ApiKey.DESCRIBE_TRANSACTIONS, 0, 0, handle_describe_transactions),
    Api(ApiKey.LIST_TRANSACTIONS, 0, 2, handle_list_transactions),
]
