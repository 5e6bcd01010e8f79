"""Incremental fetch sessions (KIP-227) on the wire: a full fetch opens a session, incremental
fetches name only what changed and get back only partitions with news, and the session errors."""

from __future__ import annotations

import datetime
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tests.kafka_frontend.conftest import unique
from tests.kafka_frontend.wire import WireClient, entity, request, request_module

FETCH, METADATA = 1, 3
FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH, FETCH_SESSION_TOPIC_ID_ERROR = 70, 71, 106


def fetch(
    client: WireClient,
    version: int,
    session: tuple[int, int],
    topics: list[tuple[Any, list[tuple[int, int]]]],
    forgotten: list[tuple[Any, list[int]]] = (),  # type: ignore[assignment]
    wait_ms: int = 0,
) -> Any:
    ids = version >= 13
    key = "topic_id" if ids else "topic"
    body = {
        "replica_id": -1,
        "max_wait": datetime.timedelta(milliseconds=wait_ms),
        "min_bytes": 1 if wait_ms else 0,
        "max_bytes": 1 << 20,
        "isolation_level": 0,
        "session_id": session[0],
        "session_epoch": session[1],
        "topics": tuple(
            entity(
                FETCH,
                version,
                "FetchTopic",
                **{key: t},
                partitions=tuple(
                    entity(
                        FETCH,
                        version,
                        "FetchPartition",
                        partition=p,
                        fetch_offset=o,
                        partition_max_bytes=1 << 20,
                    )
                    for p, o in ps
                ),
            )
            for t, ps in topics
        ),
        "forgotten_topics_data": tuple(
            entity(FETCH, version, "ForgottenTopic", **{key: t}, partitions=tuple(ps)) for t, ps in forgotten
        ),
        "rack_id": "",
    }
    fields = request_module(FETCH, version).FetchRequest.__dataclass_fields__
    return client.call(request(FETCH, version, **{k: v for k, v in body.items() if k in fields}))


def shown(response: Any, ids: bool = False) -> dict[Any, list[int]]:
    return {
        (t.topic_id if ids else t.topic): [p.partition_index for p in t.partitions]
        for t in response.responses
    }


def make_topic(bootstrap: str, partitions: int = 2) -> str:
    name = unique("sessions")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(10)
    return name


def produce(bootstrap: str, topic: str, partition: int, value: bytes) -> None:
    p = Producer({"bootstrap.servers": bootstrap})
    p.produce(topic, value=value, partition=partition)
    assert p.flush(10) == 0


def test_incremental_fetches(bootstrap: str) -> None:
    topic = make_topic(bootstrap)
    produce(bootstrap, topic, 0, b"first")
    with WireClient(bootstrap) as client:
        full = fetch(client, 12, (0, 0), [(topic, [(0, 0), (1, 0)])])
        sid = full.session_id
        assert full.error_code == 0 and sid != 0
        assert shown(full) == {topic: [0, 1]}

        # the client moved partition 0 on; nothing new anywhere: an empty response
        nothing = fetch(client, 12, (sid, 1), [(topic, [(0, 1)])])
        assert (nothing.error_code, nothing.session_id, shown(nothing)) == (0, sid, {})

        # a record on partition 1 (omitted from the request: unchanged) wakes the session's fetch
        produce(bootstrap, topic, 1, b"second")
        news = fetch(client, 12, (sid, 2), [], wait_ms=5000)
        assert shown(news) == {topic: [1]}
        (part,) = news.responses[0].partitions
        assert part.high_watermark == 1 and part.records

        # forgotten partitions are no longer read
        produce(bootstrap, topic, 1, b"third")
        forgot = fetch(client, 12, (sid, 3), [], forgotten=[(topic, [1])])
        assert shown(forgot) == {}

        # errors: a wrong epoch, an unknown session; the session survives them
        wrong = fetch(client, 12, (sid, 7), [])
        assert (wrong.error_code, wrong.session_id, shown(wrong)) == (INVALID_FETCH_SESSION_EPOCH, 0, {})
        unknown = fetch(client, 12, (sid + 1 if sid < 2**31 - 1 else 1, 1), [])
        assert unknown.error_code == FETCH_SESSION_ID_NOT_FOUND
        assert fetch(client, 12, (sid, 4), []).error_code == 0

        # a v13 request (topic ids) cannot continue a session of topic names
        assert fetch(client, 13, (sid, 5), []).error_code == FETCH_SESSION_TOPIC_ID_ERROR

        # epoch -1 closes it: the next incremental fetch finds no session
        closed = fetch(client, 12, (sid, -1), [(topic, [(0, 0)])])
        assert closed.session_id == 0 and shown(closed) == {topic: [0]}
        assert fetch(client, 12, (sid, 5), []).error_code == FETCH_SESSION_ID_NOT_FOUND


def test_sessions_by_topic_id(bootstrap: str) -> None:
    topic = make_topic(bootstrap, 1)
    produce(bootstrap, topic, 0, b"x")
    with WireClient(bootstrap) as client:
        meta = client.call(
            request(
                METADATA,
                12,
                topics=(entity(METADATA, 12, "MetadataRequestTopic", name=topic, topic_id=None),),
                allow_auto_topic_creation=False,
                include_topic_authorized_operations=False,
            )
        )
        tid = meta.topics[0].topic_id
        full = fetch(client, 17, (0, 0), [(tid, [(0, 0)])])
        assert full.session_id != 0 and shown(full, ids=True) == {tid: [0]}
        # the client moved on past the record: nothing new
        assert shown(fetch(client, 17, (full.session_id, 1), [(tid, [(0, 1)])]), ids=True) == {}
        produce(bootstrap, topic, 0, b"y")
        news = fetch(client, 17, (full.session_id, 2), [], wait_ms=5000)
        assert shown(news, ids=True) == {tid: [0]}
