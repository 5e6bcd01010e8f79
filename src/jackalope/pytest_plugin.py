"""pytest fixtures for applications that test against Jackalope (installed as a pytest plugin).

``jackalope_broker`` gives each test a running broker in its own thread, on ephemeral ports,
with a data directory under the test's ``tmp_path``::

    def test_health(jackalope_broker):
        url = jackalope_broker.http_url + "/api/health"

    def test_orders(jackalope_broker):
        producer = confluent_kafka.Producer({"bootstrap.servers": jackalope_broker.kafka_bootstrap})
        channel = pika.BlockingConnection(pika.URLParameters(jackalope_broker.amqp_url)).channel()

Its settings are those of ``jackalope serve`` (any field of :class:`jackalope.settings.Settings`)
with one change for tests: consumer groups rebalance at once (``kafka_group_initial_delay_ms``
0; Kafka's own default of 3 s is meant for production clusters).  Override them for a whole
suite by redefining the ``jackalope_settings`` fixture, or for one test with a marker::

    @pytest.fixture
    def jackalope_settings():
        return {"kafka_num_partitions": 3}

    @pytest.mark.jackalope(durability="never")
    def test_fast(jackalope_broker): ...
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from jackalope.embedded import Broker

TEST_DEFAULTS: dict[str, Any] = {"kafka_group_initial_delay_ms": 0}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "jackalope(**settings): settings of the jackalope_broker fixture for this test"
    )


@pytest.fixture
def jackalope_settings() -> dict[str, Any]:
    """Settings of the ``jackalope_broker`` fixture (redefine it to change them)."""
    return {}


@pytest.fixture
def jackalope_broker(
    request: pytest.FixtureRequest, tmp_path: Path, jackalope_settings: dict[str, Any]
) -> Iterator[Broker]:
    # Imported here so that merely installing Jackalope costs other projects' test runs nothing.
    from jackalope.embedded import Broker

    settings = {**TEST_DEFAULTS, **jackalope_settings}
    for marker in reversed(list(request.node.iter_markers("jackalope"))):
        settings.update(marker.kwargs)
    with Broker(tmp_path / "jackalope-data", **settings) as broker:
        yield broker
