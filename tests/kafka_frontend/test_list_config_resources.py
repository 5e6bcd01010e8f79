"""ListConfigResources (KIP-1142): kafka-python's ``list_config_resources`` and, for the v0
request and the errors, hand-built requests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not re-exported in its stubs
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from jackalope import Broker
from tests.kafka_frontend.conftest import unique
from tests.kafka_frontend.wire import WireClient, request

LIST_CONFIG_RESOURCES = 74
CLUSTER_AUTHORIZATION_FAILED, UNSUPPORTED_VERSION = 31, 35


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "data", kafka_port=0, amqp_port=-1).start()
    try:
        yield b
    finally:
        b.stop()


def create_topics(bootstrap: str, *names: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(n, 1, 1) for n in names]).values():
        future.result(timeout=15)


def wire_list(bootstrap: str, version: int, **fields: Any) -> Any:
    with WireClient(bootstrap) as client:
        return client.call(request(LIST_CONFIG_RESOURCES, version, **fields))


def test_kafka_python_lists_topics_and_the_broker(own_broker: Broker) -> None:
    from kafka import KafkaAdminClient

    bootstrap = own_broker.kafka_bootstrap
    b_topic, a_topic = unique("lcr-b"), unique("lcr-a")
    create_topics(bootstrap, b_topic, a_topic)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        assert admin.list_config_resources() == {
            "topic": sorted([a_topic, b_topic]),
            "broker": ["0"],
            "broker_logger": ["0"],
        }
        assert admin.list_config_resources(["TOPIC"]) == {"topic": sorted([a_topic, b_topic])}
        assert admin.list_config_resources(["BROKER"]) == {"broker": ["0"]}
        assert admin.list_config_resources(["GROUP"]) == {}  # no group has group configs
    finally:
        admin.close()


def test_groups_with_group_configs_are_listed(own_broker: Broker) -> None:
    from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not re-exported in its stubs
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
    )

    group = unique("lcr-group")
    admin = AdminClient({"bootstrap.servers": own_broker.kafka_bootstrap})
    entry = ConfigEntry("share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ConfigResource.Type.GROUP, group, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=15)
    answer = wire_list(own_broker.kafka_bootstrap, 1, resource_types=(32,))
    assert answer.error_code == 0
    assert [(r.resource_type, r.resource_name) for r in answer.config_resources] == [(32, group)]


def test_v0_lists_client_metrics_only_and_unknown_types_are_unsupported(bootstrap: str) -> None:
    create_topics(bootstrap, unique("lcr-v0"))
    v0 = wire_list(bootstrap, 0)
    assert (v0.error_code, v0.config_resources) == (0, ())  # no client-metrics subscriptions
    v1 = wire_list(bootstrap, 1, resource_types=(16, 8))  # client metrics: none; broker 0's loggers
    assert v1.error_code == 0
    assert [(r.resource_type, r.resource_name) for r in v1.config_resources] == [(8, "0")]
    for unsupported in ((1,), (2, 99)):  # ANY is no config resource type; 99 is none at all
        answer = wire_list(bootstrap, 1, resource_types=unsupported)
        assert (answer.error_code, answer.config_resources) == (UNSUPPORTED_VERSION, ())


def test_it_needs_describe_configs_on_the_cluster(own_broker: Broker) -> None:
    bootstrap = own_broker.kafka_bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deny = AclBinding(
        ResourceType.BROKER,
        "kafka-cluster",
        ResourcePatternType.LITERAL,
        "User:ANONYMOUS",
        "*",
        AclOperation.DESCRIBE_CONFIGS,
        AclPermissionType.DENY,
    )
    for future in admin.create_acls([deny]).values():
        future.result(timeout=15)
    answer = wire_list(bootstrap, 1, resource_types=())
    assert (answer.error_code, answer.config_resources) == (CLUSTER_AUTHORIZATION_FAILED, ())
