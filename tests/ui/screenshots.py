"""Screenshots of the web UI's main pages for docs/screenshots/, by hand (not in CI):

    .venv/bin/python -m tests.ui.screenshots

A broker on ephemeral ports in a temporary directory gets some state from real clients (pika
for queues and an exchange, kafka-python for a topic and a consumer group), then headless
chromium logs in and saves each page, full height, at a laptop's width.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pika
from selenium.webdriver.common.by import By

from jackalope import Broker
from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from tests.conftest import http_json
from tests.ui.conftest import Ui, make_driver

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WIDTH = 1366


def make_state(broker: Broker) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    channel = connection.channel()
    channel.exchange_declare("orders", "topic", durable=True)
    for name, count in (("orders.eu", 120), ("orders.us", 45), ("emails", 0)):
        channel.queue_declare(name, durable=True)
        channel.queue_bind(name, "orders", name + ".#" if name != "emails" else "emails")
        for n in range(count):
            body = json.dumps({"order": n, "total": round(9.5 + n, 2)}).encode()
            channel.basic_publish(
                "orders",
                name + ".new",
                body,
                pika.BasicProperties(content_type="application/json", delivery_mode=2),
            )
    connection.close()

    http_json(broker.http_url + "/api/kafka/topics/clicks", "PUT", {"partitions": 3})
    producer = KafkaProducer(bootstrap_servers=broker.kafka_bootstrap)
    for n in range(90):
        value = json.dumps({"page": f"/item/{n % 7}", "user": f"u{n % 11}"}).encode()
        producer.send(
            "clicks", value=value, key=f"u{n % 11}".encode(), headers=[("source", b"web")], partition=n % 3
        )
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(
        bootstrap_servers=broker.kafka_bootstrap, group_id="analytics", enable_auto_commit=False
    )
    parts = [TopicPartition("clicks", p) for p in range(3)]
    consumer.assign(parts)
    consumer.commit({p: OffsetAndMetadata(o, "", -1) for p, o in zip(parts, (20, 25, 30), strict=True)})
    consumer.close()


def traffic(broker: Broker, stop: threading.Event) -> None:
    """Messages flowing through "emails" while the overview's chart samples."""
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    channel = connection.channel()
    channel.basic_consume("emails", lambda ch, method, props, body: ch.basic_ack(method.delivery_tag))
    n = 0
    while not stop.is_set():
        for _ in range(20 + (n % 7) * 5):
            channel.basic_publish("orders", "emails", b"{}")
        n += 1
        connection.process_data_events(time_limit=0.1)
    connection.close()


def shoot(ui: Ui, name: str, path: str, prepare: Callable[[], None] | None = None) -> None:
    ui.go(path)
    if prepare is not None:
        prepare()
    if name == "overview":  # a few samples on the chart
        ui.wait(lambda d: int(ui.find("#rates-chart").get_attribute("data-samples") or 0) >= 4, "samples")
    height = ui.driver.execute_script("return document.documentElement.scrollHeight")
    ui.driver.set_window_size(WIDTH, max(800, min(int(height) + 100, 2400)))
    ui.driver.save_screenshot(str(OUT / f"{name}.png"))
    ui.driver.set_window_size(WIDTH, 900)
    print("saved", OUT / f"{name}.png")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with Broker() as broker:
        make_state(broker)
        driver = make_driver()
        try:
            ui = Ui(driver, broker)
            ui.login()
            stop = threading.Event()
            flow = threading.Thread(target=traffic, args=(broker, stop))
            flow.start()
            try:
                shoot(ui, "overview", "/")
            finally:
                stop.set()
                flow.join()
            shoot(ui, "queues", "/queues")
            shoot(ui, "queue", "/queues/%2F/orders.eu", lambda: ui.submit("#get-messages") and None)
            shoot(ui, "exchange", "/exchanges/%2F/orders")

            def browse() -> None:
                ui.fill("#browse", {"filter": "u3", "limit": "20"})
                ui.submit("#browse")

            shoot(ui, "topic-browser", "/topics/clicks", browse)
            record = driver.find_element(By.CSS_SELECTOR, "#records tbody tr a").get_attribute("href") or ""
            shoot(ui, "record", record.removeprefix(broker.http_url))
            shoot(ui, "group", "/groups/analytics")
        finally:
            driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
