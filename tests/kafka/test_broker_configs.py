"""Dynamic broker configs through confluent-kafka's AdminClient: AlterConfigs and
IncrementalAlterConfigs on broker 0 and on the cluster default (empty name), DescribeConfigs
with their sources and synonyms, the refusals Kafka answers, the log defaults taking effect at
once, and the values surviving a restart of ``jackalope serve``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not re-exported in its stubs
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
    ResourceType,
)

from jackalope import Broker
from tests.conftest import ServeProcess
from tests.kafka.conftest import kafka_address, unique
from tests.kafka_frontend.wire import WireClient, entity, request

WEEK_MS = str(7 * 24 * 3600 * 1000)
DESCRIBE_CONFIGS, INCREMENTAL_ALTER_CONFIGS = 32, 44
BROKER, BROKER_LOGGER = 4, 8


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker of its own: the tests change broker-wide settings."""
    b = Broker(tmp_path / "data", kafka_port=0, amqp_port=-1).start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def admin(broker: Broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.kafka_bootstrap})


def describe(admin: AdminClient, name: str = "0") -> dict[str, Any]:
    """The broker resource's configs (librdkafka always asks for synonyms)."""
    res = ConfigResource(ResourceType.BROKER, name)
    return dict(admin.describe_configs([res], request_timeout=10)[res].result(timeout=15))


def incremental(admin: AdminClient, name: str, *ops: tuple[str, str | None, Any]) -> None:
    entries = [ConfigEntry(n, v, incremental_operation=op) for n, v, op in ops]
    res = ConfigResource(ResourceType.BROKER, name, incremental_configs=entries)
    admin.incremental_alter_configs([res])[res].result(timeout=15)


def wire_alter(
    bootstrap: str, kind: int, name: str, *ops: tuple[str, str | None, Any]
) -> tuple[int, str | None]:
    """IncrementalAlterConfigs of one resource over the wire: the error code and message."""
    configs = tuple(
        entity(INCREMENTAL_ALTER_CONFIGS, 1, "AlterableConfig", name=n, config_operation=int(op), value=v)
        for n, v, op in ops
    )
    resource = entity(
        INCREMENTAL_ALTER_CONFIGS,
        1,
        "AlterConfigsResource",
        resource_type=kind,
        resource_name=name,
        configs=configs,
    )
    with WireClient(bootstrap) as client:
        response = client.call(
            request(INCREMENTAL_ALTER_CONFIGS, 1, resources=(resource,), validate_only=False)
        )
    (result,) = response.responses
    return result.error_code, result.error_message


def wire_alter_default(bootstrap: str, *ops: tuple[str, str | None, Any]) -> tuple[int, str | None]:
    """IncrementalAlterConfigs of the cluster default (empty name, which confluent-kafka refuses
    to send)."""
    return wire_alter(bootstrap, BROKER, "", *((n, v, op.value) for n, v, op in ops))


def wire_describe(bootstrap: str, name: str, kind: int = 4) -> dict[str, Any]:
    """DescribeConfigs v4 of the broker resource ``name`` with synonyms: the kio entries by name."""
    resource = entity(DESCRIBE_CONFIGS, 4, "DescribeConfigsResource", resource_type=kind, resource_name=name)
    with WireClient(bootstrap) as client:
        response = client.call(
            request(
                DESCRIBE_CONFIGS, 4, resources=(resource,), include_synonyms=True, include_documentation=False
            )
        )
    (result,) = response.results
    assert result.error_code == 0, result.error_message
    return {c.name: c for c in result.configs}


def refused(future: Any) -> KafkaError:
    with pytest.raises(KafkaException) as exc:
        future.result(timeout=15)
    err = exc.value.args[0]
    assert isinstance(err, KafkaError)
    return err


SET, DELETE, APPEND = AlterConfigOpType.SET, AlterConfigOpType.DELETE, AlterConfigOpType.APPEND


def test_a_per_broker_config_is_set_described_and_deleted(admin: AdminClient) -> None:
    """librdkafka's 0081_admin sets this one on its broker."""
    before = describe(admin)["sasl.kerberos.min.time.before.relogin"]
    assert before.value == "60000" and before.source == ConfigSource.DEFAULT_CONFIG.value
    assert not before.is_read_only

    res = ConfigResource(
        ResourceType.BROKER, "0", set_config={"sasl.kerberos.min.time.before.relogin": "58000"}
    )
    admin.alter_configs([res])[res].result(timeout=15)  # legacy AlterConfigs, as librdkafka's test
    entry = describe(admin)["sasl.kerberos.min.time.before.relogin"]
    assert entry.value == "58000" and entry.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value

    incremental(admin, "0", ("sasl.kerberos.min.time.before.relogin", None, DELETE))
    assert describe(admin)["sasl.kerberos.min.time.before.relogin"].value == "60000"


def test_a_default_log_config_takes_effect_on_topics_without_an_override(
    admin: AdminClient, broker: Broker
) -> None:
    plain, overridden = unique("plain"), unique("overridden")
    futures = admin.create_topics(
        [NewTopic(plain, 1, 1), NewTopic(overridden, 1, 1, config={"retention.ms": "1000"})]
    )
    for f in futures.values():
        f.result(timeout=15)

    bootstrap = broker.kafka_bootstrap
    assert wire_alter_default(
        bootstrap, ("log.retention.ms", "3600000", SET), ("message.max.bytes", "5000", SET)
    ) == (0, None)
    topics = broker.server.core.topics  # type: ignore[union-attr]
    assert topics.get(plain).partitions[0].config.retention_ms == 3600000
    assert topics.get(plain).partitions[0].config.max_message_bytes == 5000
    assert topics.get(overridden).partitions[0].config.retention_ms == 1000  # its own override wins

    def topic_config(topic: str) -> Any:
        res = ConfigResource(ResourceType.TOPIC, topic)
        return admin.describe_configs([res], request_timeout=10)[res].result(timeout=15)["retention.ms"]

    inherited = topic_config(plain)
    assert inherited.value == "3600000"
    assert inherited.source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value  # as Kafka describes it
    assert "log.retention.ms" in inherited.synonyms
    assert topic_config(overridden).source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value

    cluster = wire_describe(bootstrap, "")
    assert set(cluster) == {"log.retention.ms", "message.max.bytes"}  # only the set defaults
    assert cluster["log.retention.ms"].config_source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
    node = describe(admin)["log.retention.ms"]
    assert node.value == "3600000" and node.source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value

    # broker 0's own value wins over the cluster default; deleting both restores the setting
    incremental(admin, "0", ("log.retention.ms", "7200000", SET))
    assert topics.get(plain).partitions[0].config.retention_ms == 7200000
    assert describe(admin)["log.retention.ms"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    incremental(admin, "0", ("log.retention.ms", None, DELETE))
    wire_alter_default(bootstrap, ("log.retention.ms", None, DELETE), ("message.max.bytes", None, DELETE))
    assert topics.get(plain).partitions[0].config.retention_ms == int(WEEK_MS)
    assert describe(admin)["log.retention.ms"].source == ConfigSource.STATIC_BROKER_CONFIG.value


def test_synonyms_list_every_level_in_precedence_order(admin: AdminClient, broker: Broker) -> None:
    """confluent-kafka keys synonyms by name (they share it), so this reads the wire answer."""
    wire_alter_default(broker.kafka_bootstrap, ("log.retention.ms", "3600000", SET))
    incremental(admin, "0", ("log.retention.ms", "7200000", SET))
    entries = wire_describe(broker.kafka_bootstrap, "0")
    retention = entries["log.retention.ms"]
    assert (retention.value, retention.read_only, retention.config_type) == ("7200000", False, 5)  # LONG
    assert [(s.value, s.source) for s in retention.synonyms] == [
        ("7200000", ConfigSource.DYNAMIC_BROKER_CONFIG.value),
        ("3600000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value),
        (WEEK_MS, ConfigSource.STATIC_BROKER_CONFIG.value),
    ]
    roll = entries["log.roll.jitter.ms"]  # Kafka's default is null
    assert roll.value is None and roll.config_source == ConfigSource.DEFAULT_CONFIG.value
    assert entries["num.partitions"].read_only  # a static setting


def test_legacy_alter_replaces_the_whole_level_and_append_extends_a_list(admin: AdminClient) -> None:
    incremental(admin, "0", ("log.cleaner.threads", "2", SET), ("log.cleanup.policy", "compact", APPEND))
    described = describe(admin)
    assert described["log.cleanup.policy"].value == "delete,compact"
    res = ConfigResource(ResourceType.BROKER, "0", set_config={"num.io.threads": "10"})
    admin.alter_configs([res])[res].result(timeout=15)  # legacy AlterConfigs, as librdkafka's test
    described = describe(admin)
    assert described["num.io.threads"].value == "10"
    assert described["log.cleaner.threads"].source == ConfigSource.DEFAULT_CONFIG.value
    assert described["log.cleanup.policy"].value == "delete"


@pytest.mark.parametrize(
    ("name", "configs", "code", "words"),
    [
        ("0", {"num.partitions": "3"}, KafkaError.INVALID_REQUEST, "Cannot update these configs dynamically"),
        ("0", {"log.retention.hours": "1"}, KafkaError.INVALID_REQUEST, "log.retention.hours"),
        ("0", {"log.retention.ms": "soon"}, KafkaError.INVALID_REQUEST, "Not a number of type LONG"),
        ("0", {"log.retention.ms": "-5"}, KafkaError.INVALID_REQUEST, "at least -1"),
        ("0", {"num.io.threads": "17"}, KafkaError.INVALID_REQUEST, "double the current value 8"),
        ("0", {"log.cleanup.policy": "forever"}, KafkaError.INVALID_REQUEST, "log.cleanup.policy"),
        ("0", {"ssl.keystore.password": "x"}, KafkaError.INVALID_REQUEST, "listener prefix"),
        ("0", {"listeners": "PLAINTEXT://:1"}, KafkaError.INVALID_CONFIG, "--kafka-port"),
        ("0", {"max.connections": "5"}, KafkaError.INVALID_CONFIG, "does not limit connections"),
        ("0", {"no.such.config": "1"}, KafkaError.INVALID_CONFIG, "no.such.config"),
    ],
)
def test_refusals_name_the_config(
    admin: AdminClient, name: str, configs: dict[str, str], code: int, words: str
) -> None:
    res = ConfigResource(ResourceType.BROKER, name, set_config=configs)
    err = refused(admin.alter_configs([res])[res])
    assert err.code() == code and words in err.str(), err.str()
    ops = [ConfigEntry(k, v, incremental_operation=SET) for k, v in configs.items()]
    res = ConfigResource(ResourceType.BROKER, name, incremental_configs=ops)
    assert refused(admin.incremental_alter_configs([res])[res]).code() == code
    assert describe(admin)["log.retention.ms"].value == WEEK_MS  # nothing changed


def test_a_per_broker_config_is_refused_as_the_cluster_default(broker: Broker) -> None:
    code, message = wire_alter_default(
        broker.kafka_bootstrap, ("sasl.kerberos.min.time.before.relogin", "1", SET)
    )
    assert code == KafkaError.INVALID_REQUEST
    assert message is not None and "broker id must be specified" in message
    assert "sasl.kerberos.min.time.before.relogin" in message


def test_validate_only_changes_nothing(admin: AdminClient) -> None:
    res = ConfigResource(ResourceType.BROKER, "0", set_config={"log.retention.ms": "1000"})
    admin.alter_configs([res], validate_only=True)[res].result(timeout=15)
    assert describe(admin)["log.retention.ms"].source == ConfigSource.STATIC_BROKER_CONFIG.value


def test_dynamic_configs_survive_a_restart(serve_kafka: Callable[..., ServeProcess], tmp_path: Path) -> None:
    served = serve_kafka()
    admin = AdminClient({"bootstrap.servers": kafka_address(served)})
    assert wire_alter_default(kafka_address(served), ("log.segment.bytes", "10485760", SET)) == (0, None)
    incremental(admin, "0", ("sasl.kerberos.min.time.before.relogin", "58000", SET))
    assert served.stop() == 0

    served = serve_kafka()
    admin = AdminClient({"bootstrap.servers": kafka_address(served)})
    described = describe(admin)
    assert described["log.segment.bytes"].value == "10485760"
    assert described["log.segment.bytes"].source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
    assert described["sasl.kerberos.min.time.before.relogin"].value == "58000"
    assert (tmp_path / "data" / "broker-configs.json").stat().st_mode & 0o077 == 0


def test_broker_loggers_are_described_and_set_at_run_time(broker: Broker) -> None:
    """KIP-412: the BROKER_LOGGER resource of broker 0 is the broker's Python loggers."""
    bootstrap = broker.kafka_bootstrap
    name = "jackalope.kafka.connection"
    logger = logging.getLogger(name)
    loggers = wire_describe(bootstrap, "0", BROKER_LOGGER)
    assert "root" in loggers and name in loggers
    assert loggers[name].config_source == 6  # DYNAMIC_BROKER_LOGGER_CONFIG
    try:
        assert wire_alter(bootstrap, BROKER_LOGGER, "0", (name, "TRACE", 0)) == (0, None)
        assert logger.level == 5 and wire_describe(bootstrap, "0", BROKER_LOGGER)[name].value == "TRACE"
        assert wire_alter(bootstrap, BROKER_LOGGER, "0", (name, None, 1)) == (0, None)
        assert logger.level == logging.NOTSET  # inherits again
    finally:
        logger.setLevel(logging.NOTSET)
    for ops, code, words in [
        (("no.such.logger", "DEBUG", 0), KafkaError.INVALID_CONFIG, "does not exist"),
        ((name, "LOUD", 0), KafkaError.INVALID_CONFIG, "not a supported log level"),
        (("root", None, 1), KafkaError.INVALID_REQUEST, "root logger"),
        ((name, "DEBUG", 2), KafkaError.INVALID_REQUEST, "APPEND operation is not allowed"),
    ]:
        error, message = wire_alter(bootstrap, BROKER_LOGGER, "0", ops)
        assert error == code and message is not None and words in message, message
    assert wire_alter(bootstrap, BROKER_LOGGER, "", (name, "DEBUG", 0))[0] == KafkaError.INVALID_REQUEST
    assert logger.level == logging.NOTSET


@pytest.mark.parametrize(
    "content",
    ['{"default": {"log.retention.ms": "soon"}}', "not json", '{"default": []}'],
)
def test_a_damaged_store_stops_the_start_with_its_name(tmp_path: Path, content: str) -> None:
    from jackalope.datadir import StartupError

    data = tmp_path / "data"
    Broker(data, kafka_port=0, amqp_port=-1).start().stop()
    (data / "broker-configs.json").write_text(content)
    with pytest.raises(StartupError, match=r"broker-configs\.json is damaged"):
        Broker(data, kafka_port=0, amqp_port=-1).start()


def test_a_topic_describes_a_default_accepted_without_effect_from_its_broker_config(
    admin: AdminClient, broker: Broker
) -> None:
    """As a Kafka cluster that sets ``min.insync.replicas`` broker-wide shows it on every topic."""
    topic = unique("inherits")
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=15)
    res = ConfigResource(ResourceType.TOPIC, topic)

    def min_insync() -> Any:
        return admin.describe_configs([res], request_timeout=10)[res].result(timeout=15)[
            "min.insync.replicas"
        ]

    assert (min_insync().value, min_insync().source) == ("1", ConfigSource.DEFAULT_CONFIG.value)
    assert wire_alter_default(broker.kafka_bootstrap, ("min.insync.replicas", "2", SET)) == (0, None)
    assert (min_insync().value, min_insync().source) == (
        "2",
        ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value,
    )
