"""Overlay for confluent-kafka-python's tests/integration: the SASL cluster is Jackalope's.

Copied next to tests/integration/conftest.py by run_client_suites.py and imported at the end of
it.  The plaintext cluster needs no overlay: with ``BROKERS`` set the suite's own
``kafka_cluster`` fixture uses a ByoFixture ("bring your own" cluster).  Its ``sasl_cluster``
fixture always starts a trivup cluster (SASL PLAIN, user ``sasl_user``); here it is a
ByoFixture for Jackalope's SASL broker with the same user.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from tests.integration.cluster_fixture import ByoFixture  # type: ignore[import-not-found]

_INFO = json.loads(os.environ["JACKALOPE_PEER_BROKERS"])


@pytest.fixture(scope="session")
def sasl_cluster(request: Any) -> Iterator[Any]:
    conf = {
        "bootstrap.servers": _INFO["brokers"]["sasl"],
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "sasl_user",
        "sasl.password": "sasl_user",
    }
    yield ByoFixture(conf)
