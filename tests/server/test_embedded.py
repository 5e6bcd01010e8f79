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
        core = broker.server.core
        assert core is not None
        broker.call(_create_and_append(broker))
    assert (tmp_path / "d" / "logs" / "x" / "clean-shutdown").exists()
    with Broker(tmp_path / "d") as broker:
        records = get_json(broker.http_url + "/api/logs/x/records?offset=0")
        assert [r["value"] for r in records["records"]] == ["a", "b"]  # type: ignore[index]


async def _create_and_append(broker: Broker) -> None:
    from jackalope.storage import Record

    core = broker.server.core
    assert core is not None
    core.create_log("x")
    await core.append("x", [Record(b"a"), Record(b"b")])


def test_two_brokers_cannot_share_a_dir(tmp_path: Path) -> None:
    with Broker(tmp_path) as _, pytest.raises(StartupError, match="locked by another"):
        Broker(tmp_path).start()


async def test_on_the_callers_loop(tmp_path: Path) -> None:
    async with Broker(tmp_path) as broker, aiohttp.ClientSession(headers=GUEST) as http:
        async with http.put(broker.http_url + "/api/logs/q") as resp:
            assert resp.status == 201
        async with http.post(
            broker.http_url + "/api/logs/q/records", json={"records": [{"value": "v"}]}
        ) as resp:
            assert await resp.json() == {"base_offset": 0, "last_offset": 0}


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
