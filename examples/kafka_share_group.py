"""A work queue on a Kafka topic: a share group (KIP-932) with confluent-kafka against Jackalope.

A consumer group hands each partition to one member, so a topic with one partition has one
worker.  A *share group* hands records instead: its members take records of the same partition,
each record acquired by one member at a time and acknowledged one by one, as on a queue
(accept: done; release: give it back for another try; reject: never again).  The records stay
in the log, where ordinary consumers still read them by offset.  Run a broker
(``jackalope serve``) and then::

    python examples/kafka_share_group.py [127.0.0.1:9092]

It prints, per worker, the jobs it finished, then the job given back on its first delivery (and
who finished it, on its second), the job rejected as poison, and what a plain consumer reading the
log from offset 0 sees: every job, whatever the share group did with it.
"""

from __future__ import annotations

import sys
import time
import uuid

from confluent_kafka import (
    OFFSET_BEGINNING,
    AcknowledgeType,
    Consumer,
    Message,
    Producer,
    ShareConsumer,
    TopicPartition,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not re-exported in its stubs
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
)
from confluent_kafka.cimpl import NewTopic

BOOTSTRAP = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9092"
JOBS = [f"job {i}" for i in range(1, 11)]
FLAKY, POISON = "job 3", "job 7"  # the flaky job is given back once; the poison one is rejected

admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
topic = f"example.jobs.{uuid.uuid4().hex[:8]}"
group = f"example.workers.{uuid.uuid4().hex[:8]}"


def setup() -> None:
    """One partition, the jobs in it, and a share group that starts at the log's beginning."""
    admin.create_topics([NewTopic(topic, num_partitions=1)])[topic].result(timeout=10)
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all"})
    for job in JOBS:
        producer.produce(topic, value=job)
    assert producer.flush(10) == 0, "jobs not delivered"
    # a group config (Kafka's share.auto.offset.reset): a new share group starts at "latest"
    earliest = ConfigEntry("share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ConfigResource.Type.GROUP, group, incremental_configs=[earliest])
    admin.incremental_alter_configs([resource])[resource].result(timeout=10)


def worker() -> ShareConsumer:
    sc = ShareConsumer(
        {"bootstrap.servers": BOOTSTRAP, "group.id": group, "share.acknowledgement.mode": "explicit"}
    )
    sc.subscribe([topic])
    return sc


def work() -> dict[str, object]:
    """Two workers in one share group take the jobs of one partition between them."""
    workers = {"worker-1": worker(), "worker-2": worker()}
    done: dict[str, list[str]] = {who: [] for who in workers}
    gave_back: list[str] = []
    rejected: list[str] = []
    second_try: dict[str, str] = {}
    settled = 0
    deadline = time.monotonic() + 30
    while settled < len(JOBS) and time.monotonic() < deadline:
        for who, sc in workers.items():
            for m in sc.poll(timeout=0.2):
                if m.error() is not None:
                    continue
                job = (m.value() or b"").decode()
                deliveries = m.delivery_count() or 1  # how many times the group handed it out
                if job == POISON:
                    sc.acknowledge(m, AcknowledgeType.REJECT)  # never delivered again
                    rejected.append(job)
                    settled += 1
                elif job == FLAKY and deliveries == 1:
                    sc.acknowledge(m, AcknowledgeType.RELEASE)  # back to the group, delivery count 2
                    gave_back.append(job)
                else:
                    sc.acknowledge(m, AcknowledgeType.ACCEPT)
                    done[who].append(job)
                    if deliveries > 1:
                        second_try[job] = f"{who} (delivery {deliveries})"
                    settled += 1
            sc.commit_sync(timeout=10)  # the acknowledgements, durable when this returns
    for sc in workers.values():
        sc.close()
    return {**done, "given back": gave_back, "finished later": second_try, "rejected": rejected}


def log_from_zero() -> list[str]:
    """The log is untouched: an ordinary consumer reads every job by offset."""
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"example.audit.{uuid.uuid4().hex[:8]}"})
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got: list[Message] = []
    deadline = time.monotonic() + 15
    while len(got) < len(JOBS) and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            got.append(m)
    c.close()
    return [(m.value() or b"").decode() for m in got]


def main() -> None:
    setup()
    try:
        for who, result in work().items():
            print(f"{who}: {result}")
        print(f"log: {log_from_zero()}")
    finally:
        admin.delete_topics([topic])[topic].result(timeout=10)


if __name__ == "__main__":
    main()
