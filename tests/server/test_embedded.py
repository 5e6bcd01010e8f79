"""The embedded broker: in its own thread, on the caller's loop, and as a pytest fixture."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from jackalope import Broker
from jackalope.datadir import StartupError
from tests.conftest import GUEST_AUTH, http_json

GUEST = {"Authorization": GUEST_AUTH}


def get_json(url: str) -> object:
    return http_json(url)


def test_thread_mode_with_temporary_dir() -> None:
    with Broker() as broker:
        data_dir = broker.data_dir
        assert data_dir.exists()
        assert get_json(broker.http_url + "/api/health") == {"status": "ok"}
    assert not data_dir.exists()


def test_thread_mode_keeps_a_given_dir(tmp_path: Path) -> None:
    with Broker(tmp_path / "d") as broker:
        http_json(broker.http_url + "/api/kafka/topics/x", "PUT", {})
        records = {"records": [{"value": "a"}, {"value": "b"}]}
        http_json(broker.http_url + "/api/kafka/topics/x/records", "POST", records)
    assert (tmp_path / "d" / "logs" / "topic%2Fx%2F0" / "clean-shutdown").exists()
    with Broker(tmp_path / "d") as broker:
        records = get_json(broker.http_url + "/api/kafka/topics/x/partitions/0/records?offset=0")
        assert [r["value"] for r in records["records"]] == ["a", "b"]  # type: ignore[index]


def test_two_brokers_cannot_share_a_dir(tmp_path: Path) -> None:
    with Broker(tmp_path) as _, pytest.raises(StartupError, match="locked by another"):
        Broker(tmp_path).start()


async def test_on_the_callers_loop(tmp_path: Path) -> None:
    async with Broker(tmp_path) as broker, aiohttp.ClientSession(headers=GUEST) as http:
        async with http.put(broker.http_url + "/api/kafka/topics/q", json={}) as resp:
            assert resp.status == 201
        async with http.post(
            broker.http_url + "/api/kafka/topics/q/records", json={"records": [{"value": "v"}]}
        ) as resp:
            assert await resp.json() == {"offsets": [{"partition": 0, "offset": 0}]}


def test_pytest_fixture(jackalope_broker: Broker) -> None:
    overview = get_json(jackalope_broker.http_url + "/api/overview")
    port = int(jackalope_broker.http_url.rsplit(":", 1)[1])
    assert {"protocol": "http", "port": port} in [  # RabbitMQ's listener objects
        {"protocol": x["protocol"], "port": x["port"]}
        for x in overview["listeners"]  # type: ignore[index]
    ]


@pytest.mark.jackalope(kafka_num_partitions=3)
def test_the_fixture_takes_settings_from_a_marker(jackalope_broker: Broker) -> None:
    assert jackalope_broker.settings.kafka_num_partitions == 3
    assert jackalope_broker.settings.kafka_group_initial_delay_ms == 0  # the fixture's test default


class TestASuiteOverridesTheSettings:
    @pytest.fixture
    def jackalope_settings(self) -> dict[str, object]:
        return {"kafka_group_initial_delay_ms": 250, "durability": "never"}

    def test_from_the_settings_fixture(self, jackalope_broker: Broker) -> None:
        assert jackalope_broker.settings.kafka_group_initial_delay_ms == 250
        assert jackalope_broker.settings.durability == "never"

    @pytest.mark.jackalope(durability="interval")
    def test_a_marker_wins_over_it(self, jackalope_broker: Broker) -> None:
        assert jackalope_broker.settings.durability == "interval"
