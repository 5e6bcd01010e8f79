"""The overview, connections, exchanges and queues pages in a real Chromium, with pika making
and checking the broker's state."""

from __future__ import annotations

from collections.abc import Iterator

import pika
import pika.exceptions
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from jackalope import Broker
from tests.conftest import http_json
from tests.ui.conftest import Ui, require_endpoint


@pytest.fixture(scope="module", autouse=True)
def endpoints(broker: Broker) -> None:
    for path in ("/api/queues", "/api/exchanges", "/api/connections"):
        require_endpoint(broker, path)


@pytest.fixture
def channel(broker: Broker) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    try:
        yield connection.channel()
    finally:
        if connection.is_open:
            connection.close()


def test_the_queues_page_follows_a_queues_depth(
    ui: Ui, channel: pika.adapters.blocking_connection.BlockingChannel
) -> None:
    channel.queue_declare("ui-depth")
    ui.login()
    ui.go("/queues")
    ui.expect_cell("#queues", "//ui-depth", "Ready", "0")  # the server's first render
    for n in range(3):
        channel.basic_publish("", "ui-depth", f"m{n}".encode())
    ui.wait(lambda d: ui.cell("#queues", "//ui-depth", "Ready") == "3", "Ready becomes 3")
    ui.expect_cell("#queues", "//ui-depth", "Total", "3")
    ui.expect_cell("#queues", "//ui-depth", "Type", "classic")
    ui.find('#queues tr[data-key="//ui-depth"] a').click()
    ui.wait(lambda d: d.current_url.endswith("/queues/%2F/ui-depth"), "on the queue's page")
    assert ui.h1() == "Queue ui-depth"
    assert ui.find('dd[data-field="messages_ready"]').text == "3"
    tag = channel.basic_consume("ui-depth", lambda *args: None, auto_ack=False)
    channel.connection.process_data_events(time_limit=0)
    ui.wait(lambda d: ui.cell("#consumers", tag, "Ack required") == "yes", "the consumer listed")
    ui.wait(lambda d: ui.find('dd[data-field="consumers"]').text == "1", "one consumer")


def test_declare_a_queue_from_the_form(ui: Ui) -> None:
    ui.login()
    ui.go("/queues")
    ui.fill("form.api", {"name": "ui-declared", "arguments": '{"x-max-length": 7}'})
    assert ui.submit("form.api") == "Queue ui-declared declared."
    queue = http_json(ui.url + "/api/queues/%2F/ui-declared")
    assert isinstance(queue, dict)
    assert queue["durable"] is True
    assert queue["arguments"] == {"x-queue-type": "classic", "x-max-length": 7}
    ui.wait(lambda d: ui.has_row("#queues", "//ui-declared"), "the new queue's row")


def test_publish_from_the_exchange_page_and_receive_it_with_pika(
    ui: Ui, channel: pika.adapters.blocking_connection.BlockingChannel
) -> None:
    channel.exchange_declare("ui-x", "direct")
    channel.queue_declare("ui-x-q")
    channel.queue_bind("ui-x-q", "ui-x", "k1")
    ui.login()
    ui.go("/exchanges")
    ui.find('#exchanges tr[data-key="//ui-x"] a').click()
    ui.wait(lambda d: d.current_url.endswith("/exchanges/%2F/ui-x"), "on the exchange's page")
    assert ui.h1() == "Exchange ui-x"
    ui.expect_cell("#bindings", "queue/ui-x-q/k1", "Routing key", "k1")
    ui.fill(
        "#publish", {"routing_key": "k1", "payload": "hello from the UI", "properties.headers": '{"h": "v"}'}
    )
    assert ui.submit("#publish") == "Message published (routed: true)."
    method, properties, body = channel.basic_get("ui-x-q", auto_ack=True)
    assert method is not None
    assert body == b"hello from the UI"
    assert properties.delivery_mode == 2 and properties.headers == {"h": "v"}
    assert method.exchange == "ui-x" and method.routing_key == "k1"
    ui.fill("#publish", {"routing_key": "nowhere"})
    assert ui.submit("#publish") == "Message published (routed: false)."


def test_the_default_exchange_has_a_page(ui: Ui) -> None:
    ui.login()
    ui.go("/exchanges")
    ui.find('#exchanges tr[data-key="//"] a').click()
    ui.wait(lambda d: d.current_url.endswith("/exchanges/%2F/amq.default"), "on the default exchange's page")
    assert ui.h1() == "Exchange (AMQP default)"


def test_get_messages_purge_and_delete_on_the_queue_page(
    ui: Ui, driver: WebDriver, channel: pika.adapters.blocking_connection.BlockingChannel
) -> None:
    channel.queue_declare("ui-get")
    for body in (b"first", b"second"):
        channel.basic_publish("", "ui-get", body, pika.BasicProperties(content_type="text/plain"))
    ui.login()
    ui.go("/queues/%2F/ui-get")
    ui.fill("#get-messages", {"ackmode": "ack_requeue_true", "count": 2})
    assert ui.submit("#get-messages") == "Got 2 message(s)."
    payloads = [row[0] for row in ui.cell_texts("#messages")]
    assert payloads == ["first", "second"]
    ui.expect_cell("#messages", "1", "Properties", '{"content_type": "text/plain"}')
    ui.expect_cell("#messages", "1", "Routing key", "ui-get")
    queue = http_json(ui.url + "/api/queues/%2F/ui-get")
    assert isinstance(queue, dict) and queue["messages"] == 2  # requeued
    ui.fill("#get-messages", {"ackmode": "ack_requeue_false", "count": 1})
    assert ui.submit("#get-messages") == "Got 1 message(s)."
    ui.expect_cell("#messages", "1", "Redelivered", "yes")
    ui.wait(lambda d: ui.find('dd[data-field="messages_ready"]').text == "1", "one left")
    ui.find("button[data-api$='/contents']").click()
    driver.switch_to.alert.accept()
    ui.text_in("#purge-h + .buttons + .form-status", "Queue purged.")
    ui.wait(lambda d: ui.find('dd[data-field="messages_ready"]').text == "0", "purged")
    method, _, _ = channel.basic_get("ui-get")
    assert method is None
    ui.find("button.danger[data-then='go:/queues']").click()
    driver.switch_to.alert.accept()
    ui.wait(lambda d: d.current_url.endswith("/queues"), "back on the queues page")
    assert not ui.has_row("#queues", "//ui-get")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        channel.queue_declare("ui-get", passive=True)


def test_an_unknown_queue_is_a_404_page(ui: Ui) -> None:
    ui.login()
    ui.go("/queues/%2F/no-such-queue")
    assert ui.h1() == "Not found"


def test_overview_totals_and_rate_chart(
    ui: Ui, channel: pika.adapters.blocking_connection.BlockingChannel
) -> None:
    channel.queue_declare("ui-rates")
    ui.login()
    ui.go("/")
    assert ui.h1() == "Overview"
    overview = http_json(ui.url + "/api/overview")
    assert isinstance(overview, dict)
    assert ui.find('dd[data-field="object_totals.queues"]').text == str(overview["object_totals"]["queues"])
    assert ui.find('dd[data-field="product_version"]').text == overview["product_version"]
    assert ui.find_all("#listeners tbody tr[data-key]")
    # the chart takes a sample now and one every 5 s: wait for two, then it has three lines
    ui.wait(lambda d: int(ui.find("#rates-chart").get_attribute("data-samples") or 0) >= 2, "two samples")
    lines = ui.find_all("#rates-chart polyline")
    assert len(lines) == 3
    assert all(len((line.get_attribute("points") or "").split()) >= 2 for line in lines)

    def publishing_shows_a_rate(driver: WebDriver) -> bool:
        for n in range(10):  # keep publishing until a sample sees it
            channel.basic_publish("", "ui-rates", str(n).encode())
        return ui.find("#rates-peak").text not in ("", "0.0/s")

    ui.wait(publishing_shows_a_rate, "a publish rate on the chart")


def test_close_a_connection_from_the_connections_page(ui: Ui, driver: WebDriver, broker: Broker) -> None:
    params = pika.URLParameters(broker.amqp_url)
    params.client_properties = {"connection_name": "ui-victim"}
    victim = pika.BlockingConnection(params)
    try:
        ui.login()
        ui.go("/connections")
        connections = http_json(ui.url + "/api/connections")
        assert isinstance(connections, list)
        name = next(
            c["name"]
            for c in connections
            if c.get("client_properties", {}).get("connection_name") == "ui-victim"
        )
        ui.wait(lambda d: ui.has_row("#connections", name), "the connection's row")
        ui.row("#connections", name).find_element(By.CSS_SELECTOR, "button.action").click()
        driver.switch_to.alert.accept()
        ui.wait(lambda d: not ui.has_row("#connections", name), "the row gone")
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker):
            victim.process_data_events(time_limit=5)
    finally:
        if victim.is_open:
            victim.close()


def test_the_queues_list_pages_and_filters_by_name(
    ui: Ui, channel: pika.adapters.blocking_connection.BlockingChannel
) -> None:
    for n in range(30):
        channel.queue_declare(f"ui-page-{n:02}")
    ui.login()
    ui.go("/queues?page_size=25")
    total = len(http_json(ui.url + "/api/queues"))  # type: ignore[arg-type]
    assert ui.find("#queues-size").get_attribute("value") == "25"
    assert ui.find("form.list-filter .page-info").text == f"Page 1 of 2: {total} shown of {total}"
    assert len(ui.find_all("#queues tbody tr")) == 25
    ui.find("form.list-filter .page-next").click()
    ui.text_in("form.list-filter .page-info", "Page 2 of 2")
    assert len(ui.find_all("#queues tbody tr")) == total - 25
    assert "page=2" in ui.driver.current_url  # the address keeps the page: a reload shows it again
    assert ui.find("form.list-filter .page-next").get_attribute("disabled") is not None
    ui.fill("form.list-filter", {"name": "ui-page-1", "use_regex": False})
    ui.find("form.list-filter button[type=submit]").click()
    ui.text_in("form.list-filter .page-info", f"Page 1 of 1: 10 shown of {total}")
    assert {row[1] for row in ui.cell_texts("#queues")} == {f"ui-page-1{n}" for n in range(10)}
    ui.fill("form.list-filter", {"name": "^ui-page-2[89]$", "use_regex": True})
    ui.find("form.list-filter button[type=submit]").click()
    ui.text_in("form.list-filter .page-info", f"Page 1 of 1: 2 shown of {total}")
    ui.driver.refresh()  # the server renders the same filtered page
    assert {row[1] for row in ui.cell_texts("#queues")} == {"ui-page-28", "ui-page-29"}
    assert ui.find("#queues-regex").is_selected()
