"""A Kafka producer feeds an AMQP work queue through ``amq.kafka`` (Jackalope only).

The queue is bound to ``amq.kafka`` with the topic's name; every record produced afterwards is
copied into it, and an AMQP worker takes the jobs one at a time with manual acks (a failed job
is requeued and redelivered), while the topic keeps every record for Kafka consumers. Run a
broker (``jackalope serve``) and then::

    python examples/kafka_to_amqp_worker.py [127.0.0.1:9092] [amqp://guest:guest@127.0.0.1:5672/]
"""

from __future__ import annotations

import sys
import uuid

import pika
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

BOOTSTRAP = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9092"
AMQP_URL = sys.argv[2] if len(sys.argv) > 2 else "amqp://guest:guest@127.0.0.1:5672/"
TOPIC = "jobs-" + uuid.uuid4().hex[:8]

admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])[TOPIC].result(15)

connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
channel = connection.channel()
channel.queue_declare(TOPIC + ".work", durable=True)
channel.queue_bind(TOPIC + ".work", "amq.kafka", routing_key=TOPIC)  # opt in: no binding, no copies

producer = Producer({"bootstrap.servers": BOOTSTRAP})
for n in range(3):
    producer.produce(TOPIC, key=f"job-{n}", value=f"resize image {n}".encode())
assert producer.flush(15) == 0

channel.basic_qos(prefetch_count=1)  # one job at a time
failed_once = False
done = 0
for method, props, body in channel.consume(TOPIC + ".work", inactivity_timeout=15):
    assert method is not None, "no job arrived"
    offset = props.headers["x-stream-offset"]
    if method.routing_key == "job-1" and not failed_once:
        failed_once = True
        print(f"worker    failed {body.decode()!r} (offset {offset}), requeued")
        channel.basic_nack(method.delivery_tag, requeue=True)
        continue
    again = " (redelivered)" if method.redelivered else ""
    print(f"worker    did {body.decode()!r} key {method.routing_key} offset {offset}{again}")
    channel.basic_ack(method.delivery_tag)
    done += 1
    if done == 3:
        break
channel.cancel()
channel.queue_delete(TOPIC + ".work")
connection.close()
admin.delete_topics([TOPIC])[TOPIC].result(15)
