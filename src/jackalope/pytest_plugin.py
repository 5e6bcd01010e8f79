"""pytest fixtures for applications that test against Jackalope (installed as a pytest plugin).

``jackalope_broker`` gives each test a running broker in its own thread, on ephemeral ports,
with a data directory under the test's ``tmp_path``::

    def test_health(jackalope_broker):
        url = jackalope_broker.http_url + "/api/health"

    def test_orders(jackalope_broker):
        producer = confluent_kafka.Producer({"bootstrap.servers": jackalope_broker.kafka_bootstrap})
        channel = pika.BlockingConnection(pika.URLParameters(jackalope_broker.amqp_url)).channel()
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from jackalope.embedded import Broker


@pytest.fixture
def jackalope_broker(tmp_path: Path) -> Iterator[Broker]:
    # Imported here so that merely installing Jackalope costs other projects' test runs nothing.
    from jackalope.embedded import Broker

    with Broker(tmp_path / "jackalope-data") as broker:
        yield broker
