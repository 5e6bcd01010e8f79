"""Overlay for confluent-kafka-python's tests/integration/share_consumer_oauth: the OAUTHBEARER
cluster is Jackalope's SASL broker.

To be copied next to tests/integration/share_consumer_oauth/conftest.py and imported at the end
of it (run_client_suites.py's ``_overlay``; a sub-directory conftest's fixture wins over one of
the same name in tests/integration/conftest.py, so the confluent overlay there cannot replace
it).  That conftest's ``oauth_trivup_cluster`` starts a trivup cluster with Kafka's unsecured
OAUTHBEARER listener (``unsecuredValidatorRequiredScope="requiredScope"``, tokens for ``sub``
``admin``); here it is a ByoFixture for Jackalope's SASL broker, which must serve OAUTHBEARER
(``--kafka-sasl-mechanisms ...,OAUTHBEARER --kafka-oauthbearer-unsecured true
--kafka-oauthbearer-required-scope requiredScope``); ``admin`` is one of its users, an
administrator (a super user).  The fixture's ``client_conf()`` also carries librdkafka's
built-in unsecured token settings, which the suite's ``oauth_share_consumer_conf`` strips, as it
strips trivup's.  The broker's ``connections.max.reauth.ms=5000`` of trivup's cluster is only
for a test the suite skips, and is not set (it would shorten every SASL session of the shared
broker).
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
def oauth_trivup_cluster() -> Iterator[Any]:
    brokers = _INFO["brokers"]
    conf = {
        "bootstrap.servers": brokers.get("oauthbearer", brokers["sasl"]),
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "OAUTHBEARER",
        "enable.sasl.oauthbearer.unsecure.jwt": True,
        "sasl.oauthbearer.config": "principal=admin scope=requiredScope",
    }
    yield ByoFixture(conf)
