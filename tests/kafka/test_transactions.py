"""Kafka transactions (KIP-98) with real clients: confluent-kafka, aiokafka and kafka-python's
transactional producers, read_committed consumers, zombie fencing, exactly-once
consume-transform-produce, and the administration APIs over the wire.

Read-committed reads (Fetch isolation_level=1) are the Fetch handler's: these tests need it.
"""

from __future__ import annotations

import asyncio
import datetime
import re
import struct
import time
from collections import Counter
from typing import Any

import crc32c
import pytest
from kio.index import load_payload_module
from kio.static.constants import EntityType

from tests.kafka import wire
from tests.kafka.conftest import (
    confluent_consumer,
    confluent_producer,
    create_topic,
    produce_confluent,
    unique,
)
from tests.kafka_frontend.wire import WireClient

TXN_TIMEOUT_MS = 30_000
READ_COMMITTED = {"isolation.level": "read_committed"}
READ_UNCOMMITTED = {"isolation.level": "read_uncommitted"}


def transactional_producer(bootstrap: str, transactional_id: str, **extra: Any) -> Any:
    return confluent_producer(
        bootstrap, **{"transactional.id": transactional_id, "transaction.timeout.ms": TXN_TIMEOUT_MS, **extra}
    )


def read_to_end(bootstrap: str, topic: str, isolation: dict[str, str], timeout: float = 20) -> list[bytes]:
    """Every record value of ``topic`` a consumer of ``isolation`` gets, reading each partition
    until its position reaches the high watermark (past any marker: no transaction is open)."""
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    consumer = confluent_consumer(bootstrap, **isolation)
    try:
        md = consumer.list_topics(topic, timeout=10)
        partitions = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(md.topics[topic].partitions)]
        consumer.assign(partitions)
        highs = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions}
        values: list[bytes] = []
        deadline = time.monotonic() + timeout

        def done() -> bool:
            positions = consumer.position([TopicPartition(topic, p) for p in highs])
            return all(tp.offset >= highs[tp.partition] or highs[tp.partition] == 0 for tp in positions)

        while not done():
            assert time.monotonic() < deadline, f"read {len(values)} records of {topic}, not to its end"
            msg = consumer.poll(0.2)
            if msg is not None:
                assert msg.error() is None, msg.error()
                values.append(msg.value())
        return values
    finally:
        consumer.close()


# -- confluent-kafka -----------------------------------------------------------------------------


def test_confluent_commit_and_abort(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, partitions=2)
    producer = transactional_producer(bootstrap, unique("tx"))
    producer.init_transactions(15)
    producer.begin_transaction()
    for i in range(10):
        producer.produce(topic, key=b"k%d" % i, value=b"committed-%d" % i)
    producer.commit_transaction(15)
    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, key=b"k%d" % i, value=b"aborted-%d" % i)
    producer.flush(15)  # in the log, then aborted
    producer.abort_transaction(15)
    producer.begin_transaction()
    producer.produce(topic, key=b"k", value=b"last")
    producer.commit_transaction(15)

    committed = read_to_end(bootstrap, topic, READ_COMMITTED)
    assert sorted(committed) == sorted([b"committed-%d" % i for i in range(10)] + [b"last"])
    everything = read_to_end(bootstrap, topic, READ_UNCOMMITTED)
    assert sorted(everything) == sorted(committed + [b"aborted-%d" % i for i in range(5)])


def test_confluent_zombie_is_fenced(bootstrap: str, topic: str) -> None:
    from confluent_kafka import KafkaException

    create_topic(bootstrap, topic)
    tid = unique("tx")
    zombie = transactional_producer(bootstrap, tid)
    zombie.init_transactions(15)
    zombie.begin_transaction()
    zombie.produce(topic, value=b"zombie-1")
    zombie.flush(15)

    fresh = transactional_producer(bootstrap, tid)
    fresh.init_transactions(15)  # fences the zombie and aborts its transaction
    fresh.begin_transaction()
    fresh.produce(topic, value=b"fresh")
    fresh.commit_transaction(15)

    with pytest.raises(KafkaException) as raised:
        zombie.produce(topic, value=b"zombie-2")
        zombie.commit_transaction(15)
    error = raised.value.args[0]
    assert error.fatal() or error.txn_requires_abort(), error
    assert read_to_end(bootstrap, topic, READ_COMMITTED) == [b"fresh"]


def test_produce_to_a_partition_not_in_the_transaction_is_refused(bootstrap: str, topic: str) -> None:
    """KIP-890 part 1: a transactional batch needs AddPartitionsToTxn for its partition first."""
    create_topic(bootstrap, topic, partitions=2)
    tid = unique("tx")
    with WireClient(bootstrap) as client:
        init = client.call(
            build_request(
                22,
                4,
                transactional_id=tid,
                transaction_timeout=TXN_TIMEOUT_MS,
                producer_id=-1,
                producer_epoch=-1,
            )
        )
        assert init.error_code == 0
        pid, epoch = init.producer_id, init.producer_epoch
        added = client.call(
            build_request(
                24,
                3,
                v3_and_below_transactional_id=tid,
                v3_and_below_producer_id=pid,
                v3_and_below_producer_epoch=epoch,
                v3_and_below_topics=(nested(24, 3, "AddPartitionsToTxnTopic", name=topic, partitions=(0,)),),
            )
        )
        assert [
            p.partition_error_code
            for t in added.results_by_topic_v3_and_below
            for p in t.results_by_partition
        ] == [0]
    batch = transactional_batch([b"v"], pid, epoch)
    assert produce(bootstrap, topic, 1, batch) == INVALID_TXN_STATE
    assert produce(bootstrap, topic, 0, batch) == 0
    other = transactional_batch([b"v"], pid + 100_000, 0)
    assert produce(bootstrap, topic, 0, other) == INVALID_TXN_STATE  # no transaction of that producer


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_confluent_exactly_once_consume_transform_produce(bootstrap: str, group: str, protocol: str) -> None:
    """With the classic group protocol and the consumer one (KIP-848: the member epoch stands
    for the generation in TxnOffsetCommit)."""
    from confluent_kafka import OFFSET_BEGINNING

    source, sink = unique("eos-in"), unique("eos-out")
    create_topic(bootstrap, source, partitions=2)
    create_topic(bootstrap, sink, partitions=2)
    total = 40
    produce_confluent(bootstrap, source, [(b"k%d" % i, b"%d" % i) for i in range(total)])

    if protocol == "consumer":  # session and heartbeat settings are the broker's in KIP-848
        from confluent_kafka import Consumer

        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "group.protocol": "consumer",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                **READ_COMMITTED,
            }
        )
    else:
        consumer = confluent_consumer(bootstrap, group, **READ_COMMITTED)
    producer = transactional_producer(bootstrap, unique("eos"))
    producer.init_transactions(15)
    consumer.subscribe([source])
    done = 0
    aborted = 0
    deadline = time.monotonic() + 35
    try:
        while done < total:
            assert time.monotonic() < deadline, f"transformed {done} of {total}"
            msgs = consumer.consume(num_messages=7, timeout=0.5)
            if not msgs:
                continue
            assert all(m.error() is None for m in msgs)
            producer.begin_transaction()
            for m in msgs:
                producer.produce(sink, key=m.key(), value=b"out-" + m.value())
            positions = consumer.position(consumer.assignment())
            producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 15)
            if aborted == 0:  # the first batch fails once: abort, rewind to the committed offsets
                producer.flush(15)  # the records in the log (abort_transaction drops unsent ones)
                producer.abort_transaction(15)
                aborted = len(msgs)
                for tp in consumer.committed(consumer.assignment(), timeout=10):
                    if tp.offset < 0:
                        tp.offset = OFFSET_BEGINNING
                    consumer.seek(tp)
                continue
            producer.commit_transaction(15)
            done += len(msgs)
        # the group's committed offsets are the ends of the source partitions
        committed = consumer.committed(consumer.assignment(), timeout=10)
        assert sum(tp.offset for tp in committed) == total
    finally:
        consumer.close()
    out = read_to_end(bootstrap, sink, READ_COMMITTED)
    assert Counter(out) == Counter(b"out-%d" % i for i in range(total))  # each exactly once
    assert len(read_to_end(bootstrap, sink, READ_UNCOMMITTED)) == total + aborted


def test_txn_offsets_are_unstable_until_committed(bootstrap: str, topic: str, group: str) -> None:
    """KIP-447: OffsetFetch with require_stable (a read_committed consumer's committed())
    waits while a transaction holds offsets of the group; plain OffsetFetch sees the last
    committed ones."""
    from confluent_kafka import TopicPartition

    create_topic(bootstrap, topic)
    produce_confluent(bootstrap, topic, [(None, b"x")] * 3)
    producer = transactional_producer(bootstrap, unique("tx"))
    producer.init_transactions(15)
    consumer = confluent_consumer(bootstrap, group, **READ_COMMITTED)
    try:
        producer.begin_transaction()
        producer.produce(topic, value=b"y")
        producer.send_offsets_to_transaction(
            [TopicPartition(topic, 0, 2)], consumer.consumer_group_metadata(), 15
        )
        with WireClient(bootstrap) as client:

            def fetch(require_stable: bool) -> tuple[int, int]:
                response = client.call(offset_fetch(group, topic, require_stable))
                p = response.topics[0].partitions[0]
                return p.error_code, p.committed_offset

            assert fetch(True) == (UNSTABLE_OFFSET_COMMIT, -1)
            assert fetch(False) == (0, -1)
            producer.commit_transaction(15)
            assert fetch(True) == (0, 2)
    finally:
        consumer.close()


# -- aiokafka ------------------------------------------------------------------------------------


async def test_aiokafka_transactional_producer(bootstrap: str, topic: str) -> None:
    from aiokafka import AIOKafkaProducer

    create_topic(bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=unique("aio"))
    await producer.start()
    try:
        async with producer.transaction():
            for i in range(3):
                await producer.send(topic, b"ok-%d" % i)

        class Boom(Exception):
            pass

        with pytest.raises(Boom):
            async with producer.transaction():
                await producer.send_and_wait(topic, b"no")
                raise Boom
        async with producer.transaction():
            await producer.send(topic, b"ok-last")
    finally:
        await producer.stop()
    values = await asyncio.to_thread(read_to_end, bootstrap, topic, READ_COMMITTED)
    assert sorted(values) == [b"ok-0", b"ok-1", b"ok-2", b"ok-last"]


async def test_aiokafka_exactly_once(bootstrap: str, group: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    source, sink = unique("aio-in"), unique("aio-out")
    create_topic(bootstrap, source, partitions=2)
    create_topic(bootstrap, sink)
    total = 30
    produce_confluent(bootstrap, source, [(b"k%d" % i, b"%d" % i) for i in range(total)])
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=unique("aio-eos"))
    await consumer.start()
    await producer.start()
    done = 0
    try:
        async with asyncio.timeout(35):
            while done < total:
                batches = await consumer.getmany(timeout_ms=500, max_records=6)
                if not batches:
                    continue
                async with producer.transaction():
                    offsets: dict[TopicPartition, int] = {}
                    for tp, msgs in batches.items():
                        for m in msgs:
                            await producer.send(sink, b"out-" + m.value, key=m.key)
                        offsets[tp] = msgs[-1].offset + 1
                        done += len(msgs)
                    await producer.send_offsets_to_transaction(offsets, group)
        committed = [await consumer.committed(TopicPartition(source, p)) for p in (0, 1)]
        assert sum(c or 0 for c in committed) == total
    finally:
        await producer.stop()
        await consumer.stop()
    out = await asyncio.to_thread(read_to_end, bootstrap, sink, READ_COMMITTED)
    assert Counter(out) == Counter(b"out-%d" % i for i in range(total))


# -- kafka-python --------------------------------------------------------------------------------


def test_kafka_python_transactional_producer(bootstrap: str, topic: str, group: str) -> None:
    from confluent_kafka import TopicPartition as ConfluentPartition
    from kafka.structs import OffsetAndMetadata, TopicPartition

    from kafka import KafkaProducer

    create_topic(bootstrap, topic)
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=unique("kp"))
    try:
        producer.init_transactions()
        producer.begin_transaction()
        producer.send(topic, b"kept")
        producer.send_offsets_to_transaction({TopicPartition(topic, 0): OffsetAndMetadata(1, "", -1)}, group)
        producer.commit_transaction()
        producer.begin_transaction()
        producer.send(topic, b"dropped").get(timeout=15)
        producer.send_offsets_to_transaction({TopicPartition(topic, 0): OffsetAndMetadata(2, "", -1)}, group)
        producer.abort_transaction()
    finally:
        producer.close(timeout=5)
    assert read_to_end(bootstrap, topic, READ_COMMITTED) == [b"kept"]
    assert sorted(read_to_end(bootstrap, topic, READ_UNCOMMITTED)) == [b"dropped", b"kept"]
    consumer = confluent_consumer(bootstrap, group)
    try:  # the committed transaction's offset, not the aborted one's
        (committed,) = consumer.committed([ConfluentPartition(topic, 0)], timeout=10)
        assert committed.offset == 1
    finally:
        consumer.close()


# -- administration over the wire ----------------------------------------------------------------


def test_describe_and_list_transactions_and_producers(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic)
    tid = unique("tx")
    producer = transactional_producer(bootstrap, tid)
    producer.init_transactions(15)
    producer.begin_transaction()
    producer.produce(topic, value=b"open")
    producer.flush(15)
    with WireClient(bootstrap) as client:
        described = client.call(build_request(65, 0, transactional_ids=(tid, "no-such-id")))
        state, missing = described.transaction_states
        assert state.error_code == 0 and state.transaction_state == "Ongoing"
        assert [(t.topic, t.partitions) for t in state.topics] == [(topic, (0,))]
        assert missing.error_code == TRANSACTIONAL_ID_NOT_FOUND
        listed = client.call(
            build_request(66, 1, state_filters=("Ongoing",), producer_id_filters=(), duration_filter=-1)
        )
        assert tid in [t.transactional_id for t in listed.transaction_states]
        listed = client.call(build_request(66, 0, state_filters=("Nope",), producer_id_filters=()))
        assert listed.unknown_state_filters == ("Nope",)

        def by_pattern(pattern: str) -> Any:
            return client.call(
                build_request(
                    66,
                    2,
                    state_filters=(),
                    producer_id_filters=(),
                    duration_filter=-1,
                    transactional_id_pattern=pattern,
                )
            )

        assert [t.transactional_id for t in by_pattern(re.escape(tid)).transaction_states] == [tid]
        assert by_pattern("(").error_code == INVALID_REQUEST
        producers = client.call(
            build_request(61, 0, topics=(nested(61, 0, "TopicRequest", name=topic, partition_indexes=(0,)),))
        )
        active = producers.topics[0].partitions[0].active_producers
        assert [(p.producer_id, p.current_txn_start_offset) for p in active] == [(state.producer_id, 0)]
    producer.commit_transaction(15)


def test_init_refuses_a_timeout_above_the_maximum(bootstrap: str) -> None:
    with WireClient(bootstrap) as client:
        init = client.call(
            build_request(
                22,
                4,
                transactional_id=unique("tx"),
                transaction_timeout=900_001,
                producer_id=-1,
                producer_epoch=-1,
            )
        )
    assert init.error_code == INVALID_TRANSACTION_TIMEOUT


# -- raw requests --------------------------------------------------------------------------------

INVALID_REQUEST = 42
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
INVALID_TRANSACTION_TIMEOUT = 50
UNSTABLE_OFFSET_COMMIT = 88
PRODUCER_FENCED = 90
TRANSACTIONAL_ID_NOT_FOUND = 105


def _class(api_key: int, version: int, name: str) -> Any:
    return getattr(load_payload_module(api_key, version, EntityType.request), name)


def build_request(api_key: int, version: int, **fields: Any) -> Any:
    module = load_payload_module(api_key, version, EntityType.request)
    cls = next(
        v
        for n, v in vars(module).items()
        if n.endswith("Request") and getattr(v, "__type__", None) is EntityType.request
    )
    for name, value in list(fields.items()):
        if name == "transaction_timeout":
            fields[name] = datetime.timedelta(milliseconds=value)
    return cls(**fields)


def nested(api_key: int, version: int, entity: str, **fields: Any) -> Any:
    return _class(api_key, version, entity)(**fields)


def offset_fetch(group: str, topic: str, require_stable: bool) -> Any:
    return build_request(
        9,
        7,
        group_id=group,
        topics=(nested(9, 7, "OffsetFetchRequestTopic", name=topic, partition_indexes=(0,)),),
        require_stable=require_stable,
    )


def transactional_batch(values: list[bytes], producer_id: int, epoch: int) -> bytes:
    """A transactional RecordBatch v2 (attributes bit 0x10) of the producer, sequence 0."""
    batch = bytearray(wire.record_batch(values, producer=(producer_id, epoch, 0)))
    struct.pack_into(">h", batch, 21, 0x10)
    struct.pack_into(">I", batch, 17, crc32c.crc32c(bytes(batch[21:])))
    return bytes(batch)


def produce(bootstrap: str, topic: str, partition: int, batch: bytes) -> int:
    """Produce v3 with a transactional id; the partition's error code."""
    body = wire.string("raw-txn") + struct.pack(">hi", -1, 10000)
    body += struct.pack(">i", 1) + wire.string(topic)
    body += struct.pack(">i", 1) + struct.pack(">i", partition) + struct.pack(">i", len(batch)) + batch
    payload = wire.roundtrip(bootstrap, wire.request(wire.API_PRODUCE, 3, 7, body))
    _, results = wire.parse_produce_v3(payload)
    return results[0][2]


def test_add_partitions_batched_and_verify_only(bootstrap: str, topic: str) -> None:
    """AddPartitionsToTxn v4+ (what brokers send, KIP-890): several transactions per request,
    and verify_only, which checks without adding."""
    create_topic(bootstrap, topic, partitions=2)
    tid = unique("tx")
    with WireClient(bootstrap) as client:
        init = client.call(
            build_request(
                22,
                4,
                transactional_id=tid,
                transaction_timeout=TXN_TIMEOUT_MS,
                producer_id=-1,
                producer_epoch=-1,
            )
        )
        pid, epoch = init.producer_id, init.producer_epoch

        def add(partitions: tuple[int, ...], verify_only: bool, producer_epoch: int = epoch) -> list[int]:
            txn = nested(
                24,
                5,
                "AddPartitionsToTxnTransaction",
                transactional_id=tid,
                producer_id=pid,
                producer_epoch=producer_epoch,
                verify_only=verify_only,
                topics=(nested(24, 5, "AddPartitionsToTxnTopic", name=topic, partitions=partitions),),
            )
            response = client.call(build_request(24, 5, transactions=(txn,)))
            assert response.error_code == 0
            (result,) = response.results_by_transaction
            assert result.transactional_id == tid
            return [p.partition_error_code for t in result.topic_results for p in t.results_by_partition]

        assert add((0,), verify_only=True) == [INVALID_TXN_STATE]  # not added yet
        assert add((0,), verify_only=False) == [0]
        assert add((0, 1), verify_only=True) == [0, INVALID_TXN_STATE]
        assert add((1,), verify_only=False, producer_epoch=epoch + 1) == [PRODUCER_FENCED]
        # EndTxn v1 knows no PRODUCER_FENCED: a stale epoch is INVALID_PRODUCER_EPOCH there
        ended = client.call(
            build_request(
                26, 1, transactional_id=tid, producer_id=pid, producer_epoch=epoch - 1, committed=True
            )
        )
        assert ended.error_code == INVALID_PRODUCER_EPOCH
        ended = client.call(
            build_request(26, 4, transactional_id=tid, producer_id=pid, producer_epoch=epoch, committed=True)
        )
        assert ended.error_code == 0


def test_every_coordinator_error_is_a_kafka_error() -> None:
    """The front-end answers the coordinator's errors by name: each must be one of Kafka's."""
    from kio.schema.errors import ErrorCode

    from jackalope.core.transactions import TxnError

    assert [e for e in TxnError if not hasattr(ErrorCode, e.value.lower())] == []


# -- seen from AMQP ------------------------------------------------------------------------------


async def test_amq_kafka_gets_a_kafka_transaction_at_commit_only(tmp_path: Any) -> None:
    """A queue bound to ``amq.kafka`` gets the records of a committed Kafka transaction (the
    coordinator's markers go through the topics' write path), never an aborted one's."""
    import aio_pika

    from jackalope import Broker

    async with Broker(tmp_path / "data") as broker:
        bootstrap = str(broker.kafka_bootstrap)
        topic = unique("routed")
        await asyncio.to_thread(create_topic, bootstrap, topic)
        connection = await aio_pika.connect(broker.amqp_url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue("bound", durable=True)
            await queue.bind("amq.kafka", routing_key=topic)

            def produce() -> None:
                producer = transactional_producer(bootstrap, unique("tx"))
                producer.init_transactions(15)
                producer.begin_transaction()
                producer.produce(topic, value=b"aborted")
                producer.flush(15)
                producer.abort_transaction(15)
                producer.begin_transaction()
                producer.produce(topic, value=b"committed-1")
                producer.produce(topic, value=b"committed-2")
                producer.commit_transaction(15)

            await asyncio.to_thread(produce)
            got = []
            async with queue.iterator() as iterator:
                for _ in range(2):  # routed in offset order: an aborted record would come first
                    message = await asyncio.wait_for(iterator.__anext__(), 15)
                    await message.ack()
                    got.append(bytes(message.body))
            assert got == [b"committed-1", b"committed-2"]
