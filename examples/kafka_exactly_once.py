"""Exactly-once consume-transform-produce over Jackalope's Kafka port, with confluent-kafka.

A worker reads orders from topic ``orders``, writes an invoice for each to topic ``invoices``
and commits its input offsets, all in one Kafka transaction: the invoices and the offsets
become visible together or not at all.  Halfway through, the worker aborts one transaction
(as if it had crashed before committing): its invoices are never seen by ``read_committed``
readers, and since its offsets were not committed either, the next transaction processes the
same orders again.  Each order ends up with exactly one invoice.

    python examples/kafka_exactly_once.py [BOOTSTRAP]      # default 127.0.0.1:9092

Prints one line per transaction, then the invoices a ``read_committed`` reader sees.
"""

from __future__ import annotations

import sys
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

ORDERS = 6
BATCH = 2


def main(bootstrap: str) -> None:
    run = uuid.uuid4().hex[:6]
    orders, invoices = f"orders-{run}", f"invoices-{run}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in (orders, invoices)]).values():
        future.result(15)

    source = Producer({"bootstrap.servers": bootstrap})
    for i in range(ORDERS):
        source.produce(orders, key=f"order-{i}".encode(), value=f"{10 * (i + 1)} EUR".encode())
    source.flush(15)

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"invoicing-{run}",
            "group.protocol": "consumer",  # KIP-848: assigned at once, no initial rebalance delay
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"invoicer-{run}"})
    producer.init_transactions(15)  # fences any older producer with the same transactional.id
    consumer.subscribe([orders])

    done, transaction = 0, 0
    while done < ORDERS:
        batch = [m for m in consumer.consume(BATCH, 5.0) if m.error() is None]
        if not batch:
            continue
        transaction += 1
        producer.begin_transaction()
        for m in batch:
            producer.produce(invoices, key=m.key(), value=b"invoice for " + (m.value() or b""))
        producer.send_offsets_to_transaction(
            consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), 15
        )
        keys = [(m.key() or b"").decode() for m in batch]
        if transaction == 2:
            producer.abort_transaction(15)
            print(f"transaction {transaction}: {keys} aborted")
            # back to the last committed offsets: the aborted orders are read again
            for tp in consumer.committed(consumer.assignment(), 15):
                consumer.seek(TopicPartition(tp.topic, tp.partition, max(tp.offset, 0)))
            continue
        producer.commit_transaction(15)
        done += len(batch)
        print(f"transaction {transaction}: {keys} committed")
    consumer.close()

    reader = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"audit-{run}", "isolation.level": "read_committed"}
    )
    reader.assign([TopicPartition(invoices, 0, 0)])
    partition = TopicPartition(invoices, 0)
    _, end = reader.get_watermark_offsets(partition, 15)  # aborted records and markers count too
    seen = []
    while reader.position([partition])[0].offset < end:
        seen += [m for m in reader.consume(ORDERS, 1.0) if m.error() is None]
    reader.close()
    print("invoices:", [(m.key() or b"").decode() for m in seen])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9092")
