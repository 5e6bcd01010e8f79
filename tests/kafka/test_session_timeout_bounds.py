"""Broker settings through DescribeConfigs: group session timeout bounds (enforced) and listeners."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka.admin import ConfigResource, ResourceType

from tests.kafka.conftest import confluent_admin, create_topic, kafka_address, unique


def _consumer(bootstrap: str, topic: str, session_timeout_ms: int) -> Any:
    from kafka import KafkaConsumer

    return KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=unique("bounds"),
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=min(1000, session_timeout_ms // 3),
        request_timeout_ms=session_timeout_ms + 5000,
        consumer_timeout_ms=2000,
    )


def test_join_outside_the_configured_bounds_is_refused(serve_kafka: Callable[..., Any]) -> None:
    from kafka.errors import InvalidSessionTimeoutError

    served = serve_kafka(
        "--kafka-group-min-session-timeout-ms", "7000", "--kafka-group-max-session-timeout-ms", "20000"
    )
    bootstrap = kafka_address(served)
    topic = unique("bounds")
    create_topic(bootstrap, topic)

    res = ConfigResource(ResourceType.BROKER, "0")
    admin = confluent_admin(bootstrap)
    described = admin.describe_configs([res], request_timeout=10)[res].result(timeout=15)
    assert described["group.min.session.timeout.ms"].value == "7000"
    assert described["group.max.session.timeout.ms"].value == "20000"
    assert described["advertised.listeners"].value == f"PLAINTEXT://{bootstrap}"
    assert described["listeners"].value.startswith("PLAINTEXT://")
    assert described["listeners"].value.endswith(":" + bootstrap.rsplit(":", 1)[1])

    for timeout in (6500, 25000):
        consumer = _consumer(bootstrap, topic, timeout)
        try:
            with pytest.raises(InvalidSessionTimeoutError):
                consumer.poll(timeout_ms=10000)
        finally:
            consumer.close()

    consumer = _consumer(bootstrap, topic, 8000)
    try:
        consumer.poll(timeout_ms=10000)
        assert consumer.assignment(), "a session timeout within the bounds joins"
    finally:
        consumer.close()
