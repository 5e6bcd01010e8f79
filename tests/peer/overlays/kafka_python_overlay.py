"""Overlay for kafka-python's test/integration: its KafkaFixture runs Jackalope.

Copied next to test/integration/conftest.py by run_client_suites.py and imported at the end of
it.  ``KafkaFixture.instance`` (which the fixtures and the SSL tests call to start a Kafka
broker from a Kafka distribution with kafka-storage.sh) returns a fixture for one of the
Jackalope brokers the runner started, chosen by transport.  The helpers of the fixture that
run Kafka's JVM command-line tools (kafka-topics.sh) use the admin client instead.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from test.integration import fixtures as _fixtures  # type: ignore[import-not-found]

_INFO = json.loads(os.environ["JACKALOPE_PEER_BROKERS"])
_FLAVOUR = {"PLAINTEXT": "plain", "SASL_PLAINTEXT": "sasl", "SSL": "ssl", "SASL_SSL": "sasl_ssl"}
_SSL_DIR = Path(tempfile.mkdtemp(prefix="jackalope-kp-ssl-"))
(_SSL_DIR / "ca-cert").write_bytes(Path(_INFO["cafile"]).read_bytes())


class JackalopeFixture(_fixtures.KafkaFixture):  # type: ignore[misc]
    """A KafkaFixture for a running Jackalope broker (never started or stopped by the tests)."""

    def __init__(
        self, transport: str = "PLAINTEXT", sasl_mechanism: str | None = None, **params: Any
    ) -> None:
        host, port = _INFO["brokers"][_FLAVOUR[transport.upper()]].rsplit(":", 1)
        super().__init__(
            host,
            int(port),
            0,
            transport=transport,
            sasl_mechanism=sasl_mechanism,
            replicas=params.get("replicas", 1),
            partitions=params.get("partitions", 4),
            external=True,
        )
        self.ssl_dir = str(_SSL_DIR)

    def open(self) -> None:
        self.running = True

    def start(self) -> None:
        self.running = True

    def dump_logs(self) -> None:
        pass

    def get_topic_names(self) -> list[str]:
        params = self._enrich_client_params({"client_id": "jackalope_overlay"})
        with _fixtures.KafkaAdminClient(**params) as admin:
            return list(admin.list_topics())

    def _create_topic_via_cli(
        self, topic_name: str, num_partitions: int | None, replication_factor: int | None
    ) -> None:
        _fixtures._create_topics_via_admin(
            self, [topic_name], num_partitions or self.partitions, replication_factor or self.replicas
        )


def _instance(cls: type, /, broker_id: int = 0, **params: Any) -> JackalopeFixture:
    for ignored in ("zookeeper", "zk_chroot", "host", "port", "external", "tmp_dir", "auto_create_topic"):
        params.pop(ignored, None)
    return JackalopeFixture(**params)


_fixtures.KafkaFixture.instance = classmethod(_instance)
