"""Topics, the message browser, the single-record view and consumer groups in a real
Chromium, with kafka-python producing, consuming and committing."""

from __future__ import annotations

import urllib.error

import pytest

from jackalope import Broker
from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from tests.conftest import http_json
from tests.ui.conftest import Ui, require_endpoint


@pytest.fixture(scope="module", autouse=True)
def endpoints(broker: Broker) -> None:
    for path in ("/api/kafka/topics", "/api/kafka/groups"):
        require_endpoint(broker, path)


TOPIC = "ui-topic"
GROUP = "ui-group"


def produce(broker: Broker, count: int) -> None:
    http_json(broker.http_url + f"/api/kafka/topics/{TOPIC}", "PUT", {"partitions": 2})
    producer = KafkaProducer(bootstrap_servers=broker.kafka_bootstrap)
    try:
        for n in range(count):
            value = f"needle {n}" if n % 2 else f"hay {n}"
            producer.send(
                TOPIC,
                value=value.encode(),
                key=f"k{n}".encode(),
                partition=0,
                headers=[("n", str(n).encode())],
            )
        producer.send(TOPIC, value=b"other partition", partition=1)
        producer.flush()
    finally:
        producer.close()


def test_browse_a_topic_and_open_one_record_side_by_side(ui: Ui, broker: Broker) -> None:
    produce(broker, 6)
    ui.login()
    ui.go("/topics")
    ui.expect_cell("#topics", TOPIC, "Messages", "7")
    ui.find(f'#topics tr[data-key="{TOPIC}"] a').click()
    ui.wait(lambda d: d.current_url.endswith(f"/topics/{TOPIC}"), "on the topic's page")
    assert ui.h1() == f"Topic {TOPIC}"
    ui.expect_cell("#partitions", "0", "High watermark", "6")
    ui.expect_cell("#partitions", "0", "Low watermark", "0")
    ui.expect_cell("#partitions", "1", "High watermark", "1")

    ui.fill("#browse", {"partition": "0", "filter": "needle", "limit": "10"})
    assert ui.submit("#browse") == "3 record(s); next offset 6."
    assert [row[0] for row in ui.cell_texts("#records")] == ["1", "3", "5"]
    ui.expect_cell("#records", "2", "Value", "needle 3")
    ui.expect_cell("#records", "2", "Key", "k3")
    ui.fill("#browse", {"filter": "", "offset": "4", "limit": "1"})
    assert ui.submit("#browse") == "1 record(s); next offset 5."
    assert ui.cell_texts("#records")[0][:2] == ["4", "0"]

    ui.find("#records tbody tr a").click()
    ui.wait(lambda d: d.current_url.endswith(f"/topics/{TOPIC}/0/4"), "on the record's page")
    assert ui.h1() == f"Record 4 of {TOPIC}-0"
    record = http_json(broker.http_url + f"/api/kafka/topics/{TOPIC}/partitions/0/records/4")
    assert isinstance(record, dict)
    assert ui.find("#kafka-topic").text == TOPIC
    assert ui.find("#kafka-offset").text == "4"
    assert ui.find("#kafka-key").text == "k4"
    assert ui.find("#kafka-value").text == "hay 4"
    assert [r.text for r in ui.find_all("#kafka-headers tbody tr")] == ["n 4"]
    assert ui.find("#amqp-routing-key").text == (record["amqp"]["routing_key"] or "")
    assert ui.find("#amqp-payload").text == "hay 4"
    ui.find("a[rel=next]").click()
    ui.wait(lambda d: d.current_url.endswith(f"/topics/{TOPIC}/0/5"), "the next record")
    assert ui.find("#kafka-value").text == "needle 5"


def test_reset_a_groups_offsets_from_its_page(ui: Ui, broker: Broker) -> None:
    if not isinstance(http_json(broker.http_url + "/api/kafka/topics"), list) or TOPIC not in [
        t["name"]
        for t in http_json(broker.http_url + "/api/kafka/topics")  # type: ignore[union-attr]
    ]:
        produce(broker, 6)
    consumer = KafkaConsumer(
        bootstrap_servers=broker.kafka_bootstrap,
        group_id=GROUP,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    part = TopicPartition(TOPIC, 0)
    consumer.assign([part])
    consumer.seek_to_end(part)
    consumer.commit({part: OffsetAndMetadata(consumer.position(part), "", -1)})  # committed at the end: lag 0
    consumer.close()

    ui.login()
    ui.go("/groups")
    ui.wait(lambda d: ui.has_row("#groups", GROUP), "the group's row")
    ui.expect_cell("#groups", GROUP, "Lag", "0")
    ui.find(f'#groups tr[data-key="{GROUP}"] a').click()
    ui.wait(lambda d: d.current_url.endswith(f"/groups/{GROUP}"), "on the group's page")
    ui.expect_cell("#offsets", f"{TOPIC}/0", "Current offset", "6")
    ui.expect_cell("#offsets", f"{TOPIC}/0", "Lag", "0")

    ui.fill("#reset", {"to": "offset", "value": "2", "dry_run": True})
    assert ui.submit("#reset") == "Offsets reset for 1 partition(s)."
    assert ui.cell_texts("#reset-result") == [[TOPIC, "0", "2"]]
    group = http_json(broker.http_url + f"/api/kafka/groups/{GROUP}")
    assert isinstance(group, dict) and group["offsets"][0]["current_offset"] == 6  # a dry run changes nothing

    ui.fill("#reset", {"to": "earliest", "value": "", "dry_run": False})
    assert ui.submit("#reset") == "Offsets reset for 1 partition(s)."
    ui.wait(lambda d: ui.cell("#offsets", f"{TOPIC}/0", "Lag") == "6", "the lag after the reset")
    ui.expect_cell("#offsets", f"{TOPIC}/0", "Current offset", "0")

    consumer = KafkaConsumer(
        bootstrap_servers=broker.kafka_bootstrap, group_id=GROUP, enable_auto_commit=False
    )
    try:
        consumer.assign([part])
        assert consumer.committed(part) == 0
        batch = consumer.poll(timeout_ms=10_000, max_records=1)
        assert [r.offset for r in batch[part]] == [0]
    finally:
        consumer.close()


def test_a_group_with_members_refuses_the_reset_and_says_why(ui: Ui, broker: Broker) -> None:
    consumer = KafkaConsumer(TOPIC, bootstrap_servers=broker.kafka_bootstrap, group_id="ui-busy")
    try:
        consumer.poll(timeout_ms=5_000)  # joins the group
        ui.login()
        ui.go("/groups/ui-busy")
        ui.wait(lambda d: ui.find_all("#members tbody tr[data-key]"), "the member listed")
        ui.fill("#reset", {"to": "earliest"})
        status = ui.submit("#reset")
        assert status.startswith("Failed: ")
        assert "ui-busy" in ui.find("h1").text
    finally:
        consumer.close()
    assert ui.find_all("#members tbody tr")  # rendered rows stay until the next refresh


def test_create_grow_and_delete_a_topic_from_the_pages(ui: Ui, broker: Broker) -> None:
    ui.login()
    ui.go("/topics")
    ui.fill("form.api", {"name": "ui-made-topic", "partitions": 2, "configs": '{"retention.ms": "3600000"}'})
    assert ui.submit("form.api") == "Topic ui-made-topic created."
    topic = http_json(broker.http_url + "/api/kafka/topics/ui-made-topic")
    assert isinstance(topic, dict)
    assert len(topic["partitions"]) == 2 and topic["configs"]["retention.ms"] == "3600000"
    assert ui.submit("form.api").startswith("Failed: ")  # it exists: the API's 409, shown
    ui.go("/topics/ui-made-topic")
    ui.fill("#alter", {"partitions": 3})
    assert ui.submit("#alter") == "Topic ui-made-topic altered."
    ui.wait(lambda d: ui.has_row("#partitions", "2"), "the third partition")
    ui.find("button.danger[data-then='go:/topics']").click()
    ui.driver.switch_to.alert.accept()
    ui.wait(lambda d: d.current_url.endswith("/topics"), "back on the topics page")
    assert not ui.has_row("#topics", "ui-made-topic")
    with pytest.raises(urllib.error.HTTPError) as gone:
        http_json(broker.http_url + "/api/kafka/topics/ui-made-topic")
    assert gone.value.code == 404
