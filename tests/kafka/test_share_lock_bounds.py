"""The broker's bounds on share.record.lock.duration.ms (group.share.min/max.record.lock.duration.ms):
settings checked at start, group configs validated against them, shown by broker DescribeConfigs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from jackalope import Broker, settings
from jackalope.core.share.configs import (
    SHARE_RECORD_LOCK_DURATION_MS,
    Bounds,
    GroupConfigError,
    GroupConfigs,
)
from tests.kafka.conftest import unique


def test_defaults_are_kafkas() -> None:
    s = settings.load({}, environ={})
    assert (
        s.kafka_share_min_record_lock_duration_ms,
        s.kafka_share_record_lock_duration_ms,
        s.kafka_share_max_record_lock_duration_ms,
    ) == (15000, 30000, 60000)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {
                "kafka_share_min_record_lock_duration_ms": 30000,
                "kafka_share_max_record_lock_duration_ms": 30000,
            },
            None,
        ),
        ({"kafka_share_record_lock_duration_ms": 1000}, "1000 is outside the share bounds 15000..60000"),
        ({"kafka_share_record_lock_duration_ms": 90000}, "90000 is outside the share bounds"),
        (
            {"kafka_share_min_session_timeout_ms": 30000, "kafka_share_max_session_timeout_ms": 40000},
            "share.session.timeout.ms 45000 is outside the share bounds 30000..40000",
        ),
        ({"kafka_share_min_heartbeat_interval_ms": 6000}, "share.heartbeat.interval.ms 5000 is outside"),
        ({"kafka_share_min_heartbeat_interval_ms": 0}, r"group.share.min.heartbeat.interval.ms\) 0"),
        ({"kafka_share_min_record_lock_duration_ms": 500}, r"group.share.min.record.lock.duration.ms\) 500"),
        (
            {"kafka_share_max_record_lock_duration_ms": 20000, "kafka_share_record_lock_duration_ms": 20000},
            r"group.share.max.record.lock.duration.ms\) 20000 is outside 30000..3600000",
        ),
    ],
)
def test_inconsistent_settings_are_refused(changes: dict[str, object], message: str | None) -> None:
    if message is None:
        settings.load(changes, environ={})
        return
    with pytest.raises(settings.SettingsError, match=message):
        settings.load(changes, environ={})


def test_min_above_max_is_refused() -> None:
    # (outside Kafka's ranges too, but the inconsistency is named first)
    with pytest.raises(settings.SettingsError, match="30000 is above kafka_share_max_record_lock"):
        settings.Settings(
            kafka_share_min_record_lock_duration_ms=30000,
            kafka_share_max_record_lock_duration_ms=29999,
            kafka_share_record_lock_duration_ms=30000,
        )


def test_group_config_is_held_to_the_bounds() -> None:
    configs = GroupConfigs(bounds=Bounds(share_record_lock_duration_ms=(1000, 40000)))
    configs.alter("g", {SHARE_RECORD_LOCK_DURATION_MS: "3000"}, [])
    assert configs.share("g").record_lock_duration_ms == 3000
    for bad in ("999", "40001"):
        with pytest.raises(GroupConfigError, match="must be between 1000 and 40000"):
            configs.alter("g", {SHARE_RECORD_LOCK_DURATION_MS: bad}, [])
    assert configs.share("g").record_lock_duration_ms == 3000


def test_session_and_heartbeat_bounds_are_settings() -> None:
    s = settings.load(
        {"kafka_share_min_session_timeout_ms": 10000, "kafka_share_max_heartbeat_interval_ms": 20000},
        environ={},
    )
    assert (s.kafka_share_min_session_timeout_ms, s.kafka_share_max_heartbeat_interval_ms) == (10000, 20000)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(
        tmp_path_factory.mktemp("share-lock") / "data",
        kafka_port=0,
        amqp_port=-1,
        kafka_share_min_record_lock_duration_ms=1000,
        kafka_share_max_record_lock_duration_ms=120000,
        kafka_share_min_session_timeout_ms=10000,
    ).start()
    try:
        yield b
    finally:
        b.stop()


def _set_lock(admin: AdminClient, group: str, value: str) -> None:
    entry = ConfigEntry(SHARE_RECORD_LOCK_DURATION_MS, value, incremental_operation=AlterConfigOpType.SET)
    (future,) = admin.incremental_alter_configs(
        [ConfigResource(ResourceType.GROUP, group, incremental_configs=[entry])]
    ).values()
    future.result(timeout=10)


def test_alter_group_config_within_and_outside_the_bounds(broker: Broker) -> None:
    admin = AdminClient({"bootstrap.servers": broker.kafka_bootstrap})
    group = unique("lock")
    _set_lock(admin, group, "3000")  # below Kafka's default minimum, above this broker's
    _set_lock(admin, group, "100000")
    for bad in ("999", "120001"):
        with pytest.raises(KafkaException) as info:
            _set_lock(admin, group, bad)
        error = info.value.args[0]
        assert error.name() == "INVALID_CONFIG"
        assert "between 1000 and 120000" in error.str()
    (future,) = admin.describe_configs([ConfigResource(ResourceType.GROUP, group)]).values()
    assert dict(future.result(timeout=10))[SHARE_RECORD_LOCK_DURATION_MS].value == "100000"
    entry = ConfigEntry("share.session.timeout.ms", "10000", incremental_operation=AlterConfigOpType.SET)
    (future,) = admin.incremental_alter_configs(
        [ConfigResource(ResourceType.GROUP, group, incremental_configs=[entry])]
    ).values()
    future.result(timeout=10)  # below Kafka's default minimum (45000), at this broker's


def test_broker_describe_configs_shows_the_bounds(broker: Broker) -> None:
    admin = AdminClient({"bootstrap.servers": broker.kafka_bootstrap})
    resource = ConfigResource(ResourceType.BROKER, "0")
    (future,) = admin.describe_configs([resource]).values()
    configs = dict(future.result(timeout=10))
    assert configs["group.share.min.record.lock.duration.ms"].value == "1000"
    assert configs["group.share.max.record.lock.duration.ms"].value == "120000"
    assert configs["group.share.record.lock.duration.ms"].value == "30000"
    assert configs["group.share.min.session.timeout.ms"].value == "10000"
    assert configs["group.share.max.heartbeat.interval.ms"].value == "15000"
    assert configs["group.share.min.record.lock.duration.ms"].is_read_only
