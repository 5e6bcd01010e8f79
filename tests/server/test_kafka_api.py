"""The Kafka side of the HTTP API against a real broker, with real Kafka clients (kafka-python)
and pika making the state: topics, the records browser, the single-record view, producing over
HTTP, consumer groups, lag and reset-offsets, and the error answers (all JSON)."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.partitioner.default import murmur2

from jackalope import Broker
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from tests.conftest import GUEST_AUTH

pytestmark = pytest.mark.timeout(90)

# Long enough for a busy machine (the broker shares the test's process; a stalled heartbeat thread
# must not expire a member mid-test); no test here waits for a session to expire.
SESSION_TIMEOUT_MS = 30_000


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Api:
    """HTTP calls to one broker: ``(status, JSON body or None)``, errors included."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        raw: bytes | None = None,
        auth: str | None = GUEST_AUTH,
        query: dict[str, Any] | None = None,
    ) -> tuple[int, Any]:
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = {"Content-Type": "application/json"}
        if auth is not None:
            headers["Authorization"] = auth
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                status, payload, kind = resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            status, payload, kind = exc.code, exc.read(), exc.headers.get("Content-Type", "")
        if not payload:
            return status, None
        assert kind.startswith("application/json"), (status, kind, payload[:200])
        return status, json.loads(payload)

    def ok(self, method: str, path: str, body: object = None, **kw: Any) -> Any:
        status, answer = self(method, path, body, **kw)
        assert status in (200, 201, 204), (status, answer)
        return answer


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    data = tmp_path_factory.mktemp("kafka-api") / "data"
    with Broker(data, kafka_port=0, kafka_group_initial_delay_ms=0) as b:
        yield b


@pytest.fixture(scope="module")
def api(broker: Broker) -> Api:
    return Api(broker.http_url)


@pytest.fixture
def topic() -> str:
    return "t-" + uuid.uuid4().hex[:10]


@pytest.fixture
def clients(broker: Broker) -> Iterator[Callable[..., Any]]:
    """Makes kafka-python producers, consumers and admin clients, closed after the test."""
    made: list[Any] = []

    def make(kind: type, **kw: Any) -> Any:
        kw.setdefault("bootstrap_servers", broker.kafka_bootstrap)
        kw.setdefault("request_timeout_ms", 15000)
        if kind is KafkaConsumer:
            kw.setdefault("auto_offset_reset", "earliest")
            kw.setdefault("enable_auto_commit", False)
            kw.setdefault("session_timeout_ms", SESSION_TIMEOUT_MS)
            kw.setdefault("heartbeat_interval_ms", 1000)
            # a leader whose metadata lacked a just-created topic assigned nothing; it rejoins
            # at the metadata refresh that shows the topic (5 min by default)
            kw.setdefault("metadata_max_age_ms", 500)
        client = kind(**kw)
        made.append(client)
        return client

    yield make
    for client in reversed(made):
        client.close()


def produce(clients: Callable[..., Any], topic: str, records: list[dict[str, Any]]) -> list[Any]:
    """Produce with a kafka-python producer; the record metadata of each, once all are acked."""
    producer = clients(KafkaProducer, acks="all")
    futures = [producer.send(topic, **r) for r in records]
    producer.flush()
    return [f.get(timeout=15) for f in futures]


def create_topic(clients: Callable[..., Any], topic: str, partitions: int, **configs: str) -> None:
    admin = clients(KafkaAdminClient)
    admin.create_topics([NewTopic(topic, partitions, 1, topic_configs=configs)])


def poll(consumer: KafkaConsumer, count: int, timeout: float = 30) -> list[Any]:
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200, max_records=count - len(out)).values():
            out.extend(records)
    assert len(out) >= count, f"read {len(out)} of {count} records"
    return out


def wait_group(api: Api, group: str, done: Callable[[dict[str, Any]], bool], poke: Callable[[], Any]) -> Any:
    """The group as the API shows it once ``done`` holds; ``poke`` keeps the consumer going."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, described = api("GET", f"/api/kafka/groups/{group}")
        if status == 200 and done(described):
            return described
        poke()
    raise AssertionError(f"group {group} never reached the state wanted: {described}")


# -- topics ----------------------------------------------------------------------------------------


def test_topics_made_by_a_kafka_client_show_with_their_watermarks(
    api: Api, clients: Callable[..., Any], topic: str
) -> None:
    create_topic(clients, topic, 3, **{"retention.ms": "3600000"})
    produce(clients, topic, [{"value": b"x", "partition": p} for p in (0, 0, 0, 1, 1, 2) for _ in range(2)])
    listed = {t["name"]: t for t in api.ok("GET", "/api/kafka/topics")}
    entry = listed[topic]
    assert entry["partitions"] == 3 and entry["messages"] == 12 and entry["internal"] is False
    uuid.UUID(entry["topic_id"])
    detail = api.ok("GET", f"/api/kafka/topics/{topic}")
    assert detail["topic_id"] == entry["topic_id"]
    assert detail["partitions"] == [
        {"partition": 0, "low_watermark": 0, "high_watermark": 6, "messages": 6},
        {"partition": 1, "low_watermark": 0, "high_watermark": 4, "messages": 4},
        {"partition": 2, "low_watermark": 0, "high_watermark": 2, "messages": 2},
    ]
    assert detail["configs"]["retention.ms"] == "3600000"
    assert detail["configs"]["cleanup.policy"] == "delete"  # a default, shown as effective
    # The management API's list parameters.
    assert [t["name"] for t in api.ok("GET", "/api/kafka/topics", query={"name": topic[2:]})] == [topic]
    assert api.ok("GET", "/api/kafka/topics", query={"name": topic, "columns": "name,partitions"}) == [
        {"name": topic, "partitions": 3}
    ]
    page = api.ok("GET", "/api/kafka/topics", query={"page": 1, "page_size": 1, "sort": "messages"})
    assert page["page_size"] == 1 and page["item_count"] == 1 and page["total_count"] >= 1
    ordered = api.ok("GET", "/api/kafka/topics", query={"sort": "messages", "sort_reverse": "true"})
    assert [t["messages"] for t in ordered] == sorted((t["messages"] for t in ordered), reverse=True)


def test_create_alter_and_delete_over_http_as_kafka_admin_sees_them(
    api: Api, clients: Callable[..., Any], topic: str
) -> None:
    status, created = api(
        "PUT", f"/api/kafka/topics/{topic}", {"partitions": 2, "configs": {"retention.ms": 60000}}
    )
    assert status == 201
    assert created["name"] == topic and len(created["partitions"]) == 2
    assert created["configs"]["retention.ms"] == "60000"
    admin = clients(KafkaAdminClient)

    def kafka_view() -> tuple[int, dict[str, str]]:
        (described,) = admin.describe_topics([topic])
        res = [ConfigResource(ConfigResourceType.TOPIC, topic)]
        configs = admin.describe_configs(res, config_filter="all")["topic"][topic]
        entries = {name: entry["value"] for name, entry in configs.items()}
        return len(described["partitions"]), entries

    count, configs = kafka_view()
    assert count == 2 and configs["retention.ms"] == "60000"

    status, answer = api("PUT", f"/api/kafka/topics/{topic}", {})
    assert status == 409 and answer["error"] == "topic_already_exists"

    # A bad part refuses the whole change: nothing of it is applied.
    status, answer = api(
        "PATCH", f"/api/kafka/topics/{topic}", {"configs": {"retention.ms": "5"}, "partitions": 1}
    )
    assert status == 400 and answer["error"] == "invalid_partitions"
    status, answer = api(
        "PATCH", f"/api/kafka/topics/{topic}", {"configs": {"no.such.config": "1"}, "partitions": 5}
    )
    assert status == 400 and answer["error"] == "invalid_config"
    assert kafka_view() == (count, configs)

    changed = api.ok(
        "PATCH",
        f"/api/kafka/topics/{topic}",
        {"configs": {"retention.ms": None, "cleanup.policy": "compact"}, "partitions": 4},
    )
    assert len(changed["partitions"]) == 4
    count, configs = kafka_view()
    assert count == 4
    assert configs["cleanup.policy"] == "compact"
    assert configs["retention.ms"] == "604800000"  # reset to the default

    assert api("DELETE", f"/api/kafka/topics/{topic}") == (204, None)
    assert topic not in admin.list_topics()
    status, answer = api("GET", f"/api/kafka/topics/{topic}")
    assert status == 404 and answer["error"] == "not_found"
    assert api("DELETE", f"/api/kafka/topics/{topic}")[0] == 404


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"partitions": 0}, "invalid_partitions"),
        ({"partitions": "2"}, "invalid_partitions"),
        ({"configs": {"cleanup.policy": "shred"}}, "invalid_config"),
        ({"configs": {"retention.ms": True}}, "invalid_config"),
        ({"configs": []}, "bad_request"),
        ({"replicas": 3}, "bad_request"),
    ],
)
def test_bad_topic_creations_are_400_and_create_nothing(
    api: Api, topic: str, body: dict[str, Any], error: str
) -> None:
    status, answer = api("PUT", f"/api/kafka/topics/{topic}", body)
    assert status == 400 and answer["error"] == error, answer
    assert api("GET", f"/api/kafka/topics/{topic}")[0] == 404


def test_bad_topic_names_are_400(api: Api) -> None:
    status, answer = api("PUT", "/api/kafka/topics/" + urllib.parse.quote("no spaces", safe=""), {})
    assert status == 400 and answer["error"] == "invalid_topic_name"
    status, answer = api("PUT", "/api/kafka/topics/" + "x" * 250, {})
    assert status == 400 and answer["error"] == "invalid_topic_name"


# -- the records browser ---------------------------------------------------------------------------


def test_browse_records_a_kafka_producer_wrote(api: Api, clients: Callable[..., Any], topic: str) -> None:
    create_topic(clients, topic, 2)
    base = 1_700_000_000_000
    records = [
        {
            "key": f"user-{i % 3}".encode(),
            "value": f"event {i}".encode(),
            "headers": [("source", b"web" if i % 2 else b"app")],
            "timestamp_ms": base + i * 1000,
            "partition": 1,
        }
        for i in range(20)
    ]
    records.append({"key": None, "value": bytes(range(256)), "timestamp_ms": base + 20_000, "partition": 1})
    produce(clients, topic, records)
    path = f"/api/kafka/topics/{topic}/partitions/1/records"

    page = api.ok("GET", path)  # from the low watermark, the default limit (50)
    assert [r["offset"] for r in page["records"]] == list(range(21)) and page["next_offset"] == 21
    first = page["records"][0]
    assert first == {
        "partition": 1,
        "offset": 0,
        "timestamp": base,
        "key": "user-0",
        "value": "event 0",
        "headers": {"source": "app"},
    }

    page = api.ok("GET", path, query={"offset": 5, "limit": 3})
    assert [r["value"] for r in page["records"]] == ["event 5", "event 6", "event 7"]
    assert page["next_offset"] == 8

    page = api.ok("GET", path, query={"timestamp": base + 12_500, "limit": 2})
    assert [r["offset"] for r in page["records"]] == [13, 14]
    page = api.ok("GET", path, query={"timestamp": base + 99_000})  # after every record
    assert page == {"records": [], "next_offset": 21}

    page = api.ok("GET", path, query={"filter": "user-2"})  # in the key
    assert [r["offset"] for r in page["records"]] == [2, 5, 8, 11, 14, 17]
    page = api.ok("GET", path, query={"filter": "web", "limit": 4})  # in a header value
    assert [r["offset"] for r in page["records"]] == [1, 3, 5, 7] and page["next_offset"] == 8
    page = api.ok("GET", path, query={"filter": "event 1", "offset": 11})  # in the value
    assert [r["offset"] for r in page["records"]] == [11, 12, 13, 14, 15, 16, 17, 18, 19]

    page = api.ok("GET", path, query={"offset": 20, "encoding": "base64"})
    (binary,) = page["records"]
    assert base64.b64decode(binary["value"]) == bytes(range(256)) and binary["key"] is None

    assert api.ok("GET", path, query={"offset": 500}) == {"records": [], "next_offset": 21}
    assert api.ok("GET", f"/api/kafka/topics/{topic}/partitions/0/records") == {
        "records": [],
        "next_offset": 0,
    }


# -- one record as each protocol sees it -----------------------------------------------------------


def test_one_record_as_amqp_and_kafka_see_it(broker: Broker, api: Api, clients: Callable[..., Any]) -> None:
    stream = "s-" + uuid.uuid4().hex[:10]
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare(stream, durable=True, arguments={"x-queue-type": "stream"})
        properties = pika.BasicProperties(
            content_type="application/json",
            delivery_mode=2,
            message_id="m-1",
            timestamp=1_700_000_123,
            headers={"region": "eu", "attempt": 3},
        )
        channel.basic_publish("", stream, b'{"id": 1}', properties)  # confirmed: stored
        produce(
            clients, stream, [{"key": b"order-7", "value": b"from kafka", "headers": [("trace", b"abc")]}]
        )

        amqp_record = api.ok("GET", f"/api/kafka/topics/{stream}/partitions/0/records/0")
        kafka_record = api.ok("GET", f"/api/kafka/topics/{stream}/partitions/0/records/1")

        # What a real AMQP stream consumer receives for both records.
        channel.basic_qos(prefetch_count=10)
        deliveries: list[tuple[Any, Any, bytes]] = []

        def on_message(ch: Any, method: Any, props: Any, body: bytes) -> None:
            deliveries.append((method, props, body))
            ch.basic_ack(method.delivery_tag)
            if len(deliveries) == 2:
                ch.stop_consuming()

        channel.basic_consume(stream, on_message, arguments={"x-stream-offset": "first"})
        channel.start_consuming()
    finally:
        connection.close()

    kafka = amqp_record["kafka"]
    assert kafka["topic"] == stream and kafka["partition"] == 0 and kafka["offset"] == 0
    assert kafka["key"] == stream and kafka["value"] == '{"id": 1}'
    assert kafka["timestamp"] == 1_700_000_123_000 and kafka["timestamp_type"] == "CreateTime"
    assert kafka["headers"]["region"] == "eu" and kafka["headers"]["attempt"] == "3"
    assert kafka["headers"]["x-amqp-exchange"] == "" and kafka["headers"]["x-amqp-message-id"] == "m-1"
    amqp = amqp_record["amqp"]
    assert amqp["exchange"] == "" and amqp["routing_key"] == stream
    assert amqp["payload"] == '{"id": 1}' and amqp["payload_encoding"] == "string"
    assert amqp["properties"]["content_type"] == "application/json"
    assert amqp["properties"]["delivery_mode"] == 2 and amqp["properties"]["message_id"] == "m-1"
    assert amqp["properties"]["timestamp"] == 1_700_000_123
    assert amqp["properties"]["headers"] == {"region": "eu", "attempt": 3, "x-stream-offset": 0}

    kafka = kafka_record["kafka"]
    assert (kafka["key"], kafka["value"], kafka["headers"]) == ("order-7", "from kafka", {"trace": "abc"})
    amqp = kafka_record["amqp"]
    assert amqp["exchange"] == "" and amqp["routing_key"] == "order-7" and amqp["payload"] == "from kafka"
    assert amqp["properties"]["headers"] == {"trace": "abc", "x-stream-offset": 1}
    assert amqp["properties"]["timestamp"] == kafka["timestamp"] // 1000

    # The view is what the consumer got, field by field.
    for view, (method, props, body) in zip((amqp_record, kafka_record), deliveries, strict=True):
        shown = view["amqp"]
        assert (method.exchange, method.routing_key, body.decode()) == (
            shown["exchange"],
            shown["routing_key"],
            shown["payload"],
        )
        got = {k: v for k, v in vars(props).items() if v is not None}
        got["headers"] = {k: v.decode() if isinstance(v, bytes) else v for k, v in got["headers"].items()}
        assert got == shown["properties"]

    status, answer = api("GET", f"/api/kafka/topics/{stream}/partitions/0/records/2")
    assert status == 404 and answer["error"] == "not_found"


def test_binary_payloads_show_as_base64(api: Api, clients: Callable[..., Any], topic: str) -> None:
    create_topic(clients, topic, 1)
    produce(clients, topic, [{"key": b"\xff\xfe", "value": b"\x00\xff"}])
    view = api.ok("GET", f"/api/kafka/topics/{topic}/partitions/0/records/0")
    assert view["amqp"]["payload_encoding"] == "base64"
    assert base64.b64decode(view["amqp"]["payload"]) == b"\x00\xff"
    assert view["amqp"]["routing_key"] == ""  # no valid routing key: the key is a header
    assert view["amqp"]["properties"]["headers"]["x-kafka-key"] == "\ufffd\ufffd"
    view = api.ok("GET", f"/api/kafka/topics/{topic}/partitions/0/records/0", query={"encoding": "base64"})
    assert base64.b64decode(view["kafka"]["key"]) == b"\xff\xfe"


# -- producing over HTTP ---------------------------------------------------------------------------


def test_produce_over_http_is_what_kafka_consumers_read(
    api: Api, clients: Callable[..., Any], topic: str
) -> None:
    create_topic(clients, topic, 4)
    consumer = clients(KafkaConsumer, fetch_max_wait_ms=20000, request_timeout_ms=40000)
    consumer.assign([TopicPartition(topic, 2)])
    assert consumer.poll(timeout_ms=500) == {}  # its next fetch waits on the broker

    answer = api.ok(
        "POST",
        f"/api/kafka/topics/{topic}/records",
        {
            "records": [
                {"key": "a", "value": "one", "headers": {"h": "1"}, "partition": 2},
                {"value": "two", "partition": 2},
            ]
        },
    )
    assert answer == {"offsets": [{"partition": 2, "offset": 0}, {"partition": 2, "offset": 1}]}
    # The append woke the waiting fetch (else it would answer only after 20 s, past this poll).
    got = poll(consumer, 2, timeout=15)
    assert [(r.offset, r.key, r.value, r.headers) for r in got] == [
        (0, b"a", b"one", [("h", b"1")]),
        (1, None, b"two", []),
    ]

    # Without a partition: keyed records go where Kafka's default partitioner puts them...
    keys = [f"k{i}" for i in range(12)]
    answer = api.ok(
        "POST", f"/api/kafka/topics/{topic}/records", {"records": [{"key": k, "value": k} for k in keys]}
    )
    assert [o["partition"] for o in answer["offsets"]] == [
        (murmur2(k.encode()) & 0x7FFFFFFF) % 4 for k in keys
    ]
    # ...and the keyless records of one request to one partition (the sticky partitioner).
    answer = api.ok("POST", f"/api/kafka/topics/{topic}/records", {"records": [{"value": "x"}] * 5})
    assert len({o["partition"] for o in answer["offsets"]}) == 1

    blob = bytes(range(256))
    answer = api.ok(
        "POST",
        f"/api/kafka/topics/{topic}/records",
        {
            "records": [
                {"key": None, "value": base64.b64encode(blob).decode(), "partition": 3, "timestamp": 1234}
            ]
        },
        query={"encoding": "base64"},
    )
    reader = clients(KafkaConsumer)
    reader.assign([TopicPartition(topic, 3)])
    reader.seek(TopicPartition(topic, 3), answer["offsets"][0]["offset"])
    (record,) = poll(reader, 1)
    assert record.value == blob and record.timestamp == 1234


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[]", 400, "JSON object"),
        (b'{"records": []}', 400, "at least one"),
        (b'{"records": [1]}', 400, "must be an object"),
        (b'{"records": [{"value": 5}]}', 400, "value must be a string"),
        (b'{"records": [{"value": "x", "timestamp": "now"}]}', 400, "timestamp must be"),
        (b'{"records": [{"value": "x", "headers": []}]}', 400, "headers must be an object"),
        (b'{"records": [{"value": "x", "partition": "0"}]}', 400, "partition must be an integer"),
        (b'{"records": [{"value": "x", "colour": "red"}]}', 400, "unknown field"),
        (
            b'{"records": [{"value": "ok", "partition": 0}, {"value": "x", "partition": 7}]}',
            404,
            "no partition 7",
        ),
    ],
)
def test_bad_produce_requests_write_nothing(
    api: Api, clients: Callable[..., Any], topic: str, body: bytes, status: int, reason: str
) -> None:
    create_topic(clients, topic, 1)
    got, answer = api("POST", f"/api/kafka/topics/{topic}/records", raw=body)
    assert got == status and reason in answer["reason"], answer
    assert api.ok("GET", f"/api/kafka/topics/{topic}")["partitions"][0]["high_watermark"] == 0


def test_produce_refusals(api: Api, clients: Callable[..., Any], topic: str) -> None:
    create_topic(clients, topic, 1, **{"max.message.bytes": "2000", "cleanup.policy": "compact"})
    path = f"/api/kafka/topics/{topic}/records"
    status, answer = api("POST", path, {"records": [{"key": "k", "value": "x" * 5000}]})
    assert status == 413 and answer["error"] == "record_too_large"
    status, answer = api("POST", path, {"records": [{"value": "no key"}]})
    assert status == 400 and "Compacted topic cannot accept message without key" in answer["reason"]
    status, answer = api(
        "POST", path, {"records": [{"key": "k", "value": "!!"}]}, query={"encoding": "base64"}
    )
    assert status == 400 and "base64" in answer["reason"]
    # Many small records make several batches, each under max.message.bytes.
    answer = api.ok("POST", path, {"records": [{"key": f"k{i}", "value": "v" * 100} for i in range(50)]})
    assert [o["offset"] for o in answer["offsets"]] == list(range(50))
    assert api.ok("GET", f"/api/kafka/topics/{topic}")["partitions"][0]["high_watermark"] == 50
    status, answer = api("POST", "/api/kafka/topics/no-such-topic/records", {"records": [{"value": "x"}]})
    assert status == 404


# -- consumer groups -------------------------------------------------------------------------------


def test_a_groups_committed_offsets_and_lag(api: Api, clients: Callable[..., Any], topic: str) -> None:
    create_topic(clients, topic, 2)
    produce(clients, topic, [{"value": b"v", "partition": p} for p in (0, 1) for _ in range(10)])
    group = "g-" + uuid.uuid4().hex[:8]
    consumer = clients(KafkaConsumer, group_id=group, client_id="lag-test", max_poll_records=7)
    consumer.subscribe([topic])
    poll(consumer, 7)  # part of the topic
    consumer.commit()
    committed = {p: consumer.committed(TopicPartition(topic, p)) for p in (0, 1)}
    assert sum(c or 0 for c in committed.values()) == 7

    described = wait_group(
        api, group, lambda d: d["state"] == "Stable" and d["members"], lambda: consumer.poll(0)
    )
    assert described["protocol_type"] == "consumer" and described["protocol"] in ("range", "roundrobin")
    (member,) = described["members"]
    assert member["client_id"] == "lag-test"
    assert sorted((a["topic"], a["partition"]) for a in member["assignments"]) == [(topic, 0), (topic, 1)]
    rows = {row["partition"]: row for row in described["offsets"]}
    assert set(rows) == {0, 1}
    for p in (0, 1):
        row = rows[p]
        assert row["topic"] == topic and row["log_start_offset"] == 0 and row["log_end_offset"] == 10
        if committed[p] is None:  # assigned, nothing committed: "-" in kafka-consumer-groups
            assert row["current_offset"] is None and row["lag"] is None
        else:
            assert row["current_offset"] == committed[p] and row["lag"] == 10 - committed[p]
        assert row["consumer_id"] == member["member_id"] and row["client_id"] == "lag-test"
        assert row["host"] == member["client_host"]
    assert described["lag"] == 20 - 7 - (10 * sum(1 for c in committed.values() if c is None))

    (listed,) = [g for g in api.ok("GET", "/api/kafka/groups") if g["group_id"] == group]
    assert listed == {
        "group_id": group,
        "state": "Stable",
        "protocol_type": "consumer",
        "members": 1,
        "lag": described["lag"],
    }

    # Busy: no reset, no delete.
    status, answer = api("POST", f"/api/kafka/groups/{group}/reset-offsets", {"to": "earliest"})
    assert status == 409 and answer["error"] == "group_not_empty"
    status, answer = api("DELETE", f"/api/kafka/groups/{group}")
    assert status == 409 and answer["error"] == "group_not_empty"

    consumer.close()
    described = api.ok("GET", f"/api/kafka/groups/{group}")
    assert described["state"] == "Empty" and described["members"] == []
    assert {r["partition"]: r["current_offset"] for r in described["offsets"]} == {
        p: c for p, c in committed.items() if c is not None
    }
    assert all(r["consumer_id"] is None for r in described["offsets"])
    assert api("DELETE", f"/api/kafka/groups/{group}") == (204, None)
    status, answer = api("GET", f"/api/kafka/groups/{group}")
    assert status == 404 and answer["error"] == "not_found"


def test_reset_offsets_and_a_consumer_starts_there(api: Api, clients: Callable[..., Any], topic: str) -> None:
    create_topic(clients, topic, 1)
    base = 1_700_000_000_000
    produce(clients, topic, [{"value": str(i).encode(), "timestamp_ms": base + i * 1000} for i in range(10)])
    group = "r-" + uuid.uuid4().hex[:8]
    tp = TopicPartition(topic, 0)
    reset = f"/api/kafka/groups/{group}/reset-offsets"

    # A group that has no offsets yet: naming the topic resets it, as kafka-consumer-groups does.
    status, answer = api("POST", reset, {"to": "earliest"})
    assert status == 404
    assert api.ok("POST", reset, {"to": "offset", "value": 4, "topics": [topic]}) == {
        "offsets": [{"topic": topic, "partition": 0, "offset": 4}]
    }

    def first_read() -> int:
        """Where a consumer of the group starts (then it leaves, the group empty again)."""
        consumer = clients(KafkaConsumer, group_id=group, auto_offset_reset="none")
        consumer.subscribe([topic])
        (record,) = poll(consumer, 1)
        assert consumer.committed(tp) == committed_by_api()
        consumer.close()
        return int(record.offset)

    def committed_by_api() -> int:
        (row,) = api.ok("GET", f"/api/kafka/groups/{group}")["offsets"]
        return int(row["current_offset"])

    assert first_read() == 4

    cases: list[tuple[dict[str, Any], int]] = [
        ({"to": "earliest"}, 0),
        ({"to": "timestamp", "value": base + 6500}, 7),
        ({"to": "shift", "value": -2}, 5),
        ({"to": "shift", "value": -100}, 0),  # clamped to the low watermark
        ({"to": "offset", "value": 8, "topics": [f"{topic}:0"]}, 8),
    ]
    for body, expected in cases:
        answer = api.ok("POST", reset, body)
        assert answer == {"offsets": [{"topic": topic, "partition": 0, "offset": expected}]}, body
        assert first_read() == expected, body

    dry = api.ok("POST", reset, {"to": "earliest", "dry_run": True})
    assert dry["offsets"][0]["offset"] == 0
    assert committed_by_api() == 8  # unchanged

    for body in (
        {"to": "offset", "value": 10_000},
        {"to": "timestamp", "value": base + 60_000},
        {"to": "latest"},
    ):
        assert api.ok("POST", reset, body)["offsets"][0]["offset"] == 10  # the high watermark
    consumer = clients(KafkaConsumer, group_id=group, auto_offset_reset="none")
    consumer.subscribe([topic])
    assert consumer.poll(timeout_ms=1000) == {}
    produce(clients, topic, [{"value": b"after"}])
    (record,) = poll(consumer, 1)
    assert (record.offset, record.value) == (10, b"after")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"to": "yesterday"}, 400),
        ({"to": "offset"}, 400),
        ({"to": "offset", "value": "3"}, 400),
        ({"to": "earliest", "value": 3}, 400),
        ({"to": "earliest", "dry_run": "yes"}, 400),
        ({"to": "earliest", "topics": "t"}, 400),
        ({"to": "earliest", "topics": ["TOPIC:x"]}, 400),
        ({"to": "earliest", "topics": ["no-such-topic"]}, 404),
        ({"to": "earliest", "topics": ["TOPIC:5"]}, 404),
        ({"to": "shift", "value": 1, "topics": ["TOPIC"]}, 400),  # nothing committed to shift
        ({"to": "earliest", "force": True}, 400),
    ],
)
def test_bad_resets_are_refused(
    api: Api, clients: Callable[..., Any], topic: str, body: dict[str, Any], status: int
) -> None:
    create_topic(clients, topic, 1)
    group = "bad-" + uuid.uuid4().hex[:8]
    if "topics" in body and isinstance(body["topics"], list):
        body = {**body, "topics": [t.replace("TOPIC", topic) for t in body["topics"]]}
    got, answer = api("POST", f"/api/kafka/groups/{group}/reset-offsets", body)
    assert got == status and answer["error"] in ("bad_request", "not_found"), answer
    assert api("GET", f"/api/kafka/groups/{group}")[0] == 404  # nothing committed


# -- access and errors -----------------------------------------------------------------------------


READS = [
    ("GET", "/api/kafka/topics"),
    ("GET", "/api/kafka/topics/TOPIC"),
    ("GET", "/api/kafka/topics/TOPIC/partitions/0/records"),
    ("GET", "/api/kafka/topics/TOPIC/partitions/0/records/0"),
    ("GET", "/api/kafka/groups"),
]
CHANGES = [
    ("PUT", "/api/kafka/topics/new-TOPIC", {}),
    ("PATCH", "/api/kafka/topics/TOPIC", {"partitions": 3}),
    ("DELETE", "/api/kafka/topics/TOPIC", None),
    ("POST", "/api/kafka/topics/TOPIC/records", {"records": [{"value": "x"}]}),
    ("POST", "/api/kafka/groups/G/reset-offsets", {"to": "earliest", "topics": ["TOPIC"]}),
    ("DELETE", "/api/kafka/groups/G", None),
]


def test_who_may_read_and_change(api: Api, clients: Callable[..., Any], topic: str) -> None:
    create_topic(clients, topic, 1)
    produce(clients, topic, [{"value": b"x"}])
    for name, tags in (("kmanager", "management"), ("kmonitor", "monitoring"), ("knobody", "")):
        api.ok("PUT", f"/api/users/{name}", {"password": "pw", "tags": tags})

    def path(p: str) -> str:
        return p.replace("TOPIC", topic).replace("/G", "/no-group")

    for method, p in READS:
        for auth in (None, basic("guest", "wrong"), basic("nobody", "x")):
            status, answer = api(method, path(p), auth=auth)
            assert (status, answer) == (401, {"error": "not_authorized", "reason": "Not_Authorized"})
        status, answer = api(method, path(p), auth=basic("knobody", "pw"))
        assert status == 401 and answer["reason"] == "Not management user"
        status, answer = api(method, path(p), auth=basic("kmanager", "pw"))
        assert status == 401 and answer["error"] == "not_authorised", (p, answer)
        assert api(method, path(p), auth=basic("kmonitor", "pw"))[0] == 200, p
    for method, p, body in CHANGES:
        for user in ("kmanager", "kmonitor"):
            status, answer = api(method, path(p), body, auth=basic(user, "pw"))
            assert status == 401 and answer["reason"] == "Not administrator user", (p, user)
    detail = api.ok("GET", f"/api/kafka/topics/{topic}")
    assert len(detail["partitions"]) == 1 and detail["partitions"][0]["high_watermark"] == 1


def test_unknown_objects_and_bad_parameters(api: Api, clients: Callable[..., Any], topic: str) -> None:
    create_topic(clients, topic, 2)
    records = f"/api/kafka/topics/{topic}/partitions/0/records"
    for path in (
        "/api/kafka/topics/ghost",
        "/api/kafka/topics/ghost/partitions/0/records",
        f"/api/kafka/topics/{topic}/partitions/2/records",
        f"/api/kafka/topics/{topic}/partitions/-1/records/0",
        records + "/0",
        "/api/kafka/groups/ghost",
    ):
        status, answer = api("GET", path)
        assert status == 404 and answer["error"] == "not_found", path
    assert api("PATCH", "/api/kafka/topics/ghost", {"partitions": 2})[0] == 404
    assert api("DELETE", "/api/kafka/groups/ghost")[0] == 404
    for query in (
        {"offset": "abc"},
        {"offset": -1},
        {"limit": 0},
        {"limit": 1001},
        {"limit": "many"},
        {"timestamp": "noon"},
        {"offset": 0, "timestamp": 0},
        {"encoding": "rot13"},
    ):
        status, answer = api("GET", records, query=query)
        assert status == 400 and answer["error"] == "bad_request", query
    for path in (f"/api/kafka/topics/{topic}/partitions/x/records", records + "/first"):
        assert api("GET", path)[0] == 400
    for method, path in (("PUT", "/api/kafka/topics/fresh"), ("PATCH", f"/api/kafka/topics/{topic}")):
        status, answer = api(method, path, raw=b"{not json")
        assert status == 400 and "not valid JSON" in answer["reason"]
    status, answer = api("POST", "/api/kafka/groups/g/reset-offsets", raw=b"{not json")
    assert status == 400
    assert api("GET", "/api/kafka/topics", query={"page": 0})[0] == 400
    assert api("GET", "/api/kafka/topics", query={"name": "(", "use_regex": "true"})[0] == 400


def test_without_the_kafka_listener_groups_are_503(tmp_path: Path) -> None:
    with Broker(tmp_path, kafka_port=-1) as broker:
        api = Api(broker.http_url)
        for method, path, body in (
            ("GET", "/api/kafka/groups", None),
            ("GET", "/api/kafka/groups/g", None),
            ("POST", "/api/kafka/groups/g/reset-offsets", {"to": "earliest"}),
            ("DELETE", "/api/kafka/groups/g", None),
        ):
            status, answer = api(method, path, body)
            assert status == 503 and answer["error"] == "kafka_disabled", path
            assert "Kafka listener is off" in answer["reason"]
        # Topics are still there: streams are topics.
        assert api("PUT", "/api/kafka/topics/still", {})[0] == 201
        assert [t["name"] for t in api.ok("GET", "/api/kafka/topics")] == ["still"]


def test_log_append_time_shows_as_such(api: Api, clients: Callable[..., Any], topic: str) -> None:
    create_topic(clients, topic, 1, **{"message.timestamp.type": "LogAppendTime"})
    (sent,) = produce(clients, topic, [{"value": b"v", "timestamp_ms": 1000}])
    view = api.ok("GET", f"/api/kafka/topics/{topic}/partitions/0/records/0")
    assert view["kafka"]["timestamp_type"] == "LogAppendTime"
    assert view["kafka"]["timestamp"] == sent.timestamp != 1000  # the broker's time, as Kafka says


def test_producing_is_refused_during_an_alarm(tmp_path: Path) -> None:
    """While a resource alarm blocks publishers, a produce over HTTP is 503 and writes nothing."""
    with Broker(tmp_path, kafka_port=-1, memory_high_watermark="1MiB") as broker:
        api = Api(broker.http_url)
        api.ok("PUT", "/api/kafka/topics/held", {})
        status, answer = api("POST", "/api/kafka/topics/held/records", {"records": [{"value": "x"}]})
        assert status == 503 and answer["error"] == "resource_alarm" and "memory" in answer["reason"]
        assert api.ok("GET", "/api/kafka/topics/held")["partitions"][0]["high_watermark"] == 0
