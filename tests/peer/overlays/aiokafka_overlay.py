"""Overlay for aiokafka's tests/: the broker fixtures point at Jackalope instead of docker.

Copied next to tests/conftest.py by run_client_suites.py and imported at the end of it, so
these fixtures replace the ones that start the ``aiolibs/kafka`` docker image.  That image is
one broker with four listeners (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL); here each listener
is a Jackalope process of its own.  The helpers that run Kafka's JVM tools inside the
container (kafka-acls.sh, kafka-configs.sh) and Kerberos are replaced: SCRAM users are made
with Jackalope's HTTP API; ACL and Kerberos steps skip the test, saying why.
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

_INFO = json.loads(os.environ["JACKALOPE_PEER_BROKERS"])
_GUEST = "Basic " + base64.b64encode(b"guest:guest").decode()


def _port(flavour: str) -> int:
    return int(_INFO["brokers"][flavour].rsplit(":", 1)[1])


@dataclass
class JackalopeServer:
    host: str
    port: int
    ssl_port: int
    sasl_plain_port: int
    sasl_ssl_port: int
    container: None = None

    @property
    def hosts(self) -> list[str]:
        return [f"{self.host}:{self.port}"]


class NoAcls:
    """kafka-acls.sh runs in the docker image; without it the ACL steps skip their test."""

    def list_acl(self, principal: str | None = None) -> str:
        return ""

    def cleanup(self) -> None:
        pass

    def add_acl(self, **acl_params: Any) -> None:
        pytest.skip("ACLs are set with kafka-acls.sh (a JVM tool in the docker image)")

    def remove_acl(self, **acl_params: Any) -> None:
        pytest.skip("ACLs are set with kafka-acls.sh (a JVM tool in the docker image)")


class HttpUsers:
    """kafka-configs.sh --add-config SCRAM-SHA-*: a user of Jackalope's SASL brokers (its
    password set again; it stays a super user, as every user of these brokers)."""

    def add_scram_user(self, username: str, password: str) -> None:
        for flavour in ("sasl", "sasl_ssl"):
            request = urllib.request.Request(
                f"{_INFO['http'][flavour]}/api/users/{username}",
                data=json.dumps({"password": password, "tags": "administrator"}).encode(),
                method="PUT",
                headers={"Authorization": _GUEST, "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10):
                pass


class NoKerberos:
    def kinit(self, principal: str) -> None:
        pytest.skip("GSSAPI (Kerberos): Jackalope offers PLAIN and SCRAM only")

    def kdestroy(self) -> None:
        pass


@pytest.fixture(scope="session")
def docker() -> Iterator[None]:
    yield None


@pytest.fixture(scope="session")
def kafka_image() -> str:
    return "jackalope"


@pytest.fixture(scope="session")
def ssl_folder() -> pathlib.Path:
    folder = pathlib.Path(tempfile.mkdtemp(prefix="jackalope-aiokafka-ssl-"))
    shutil.copy(_INFO["cafile"], folder / "ca.crt")
    shutil.copy(_INFO["client_cert"], folder / "client.crt")
    shutil.copy(_INFO["client_key"], folder / "client.key")
    return folder


@pytest.fixture(scope="session")
def kafka_server() -> JackalopeServer:
    host = _INFO["brokers"]["plain"].rsplit(":", 1)[0]
    return JackalopeServer(host, _port("plain"), _port("ssl"), _port("sasl"), _port("sasl_ssl"))


@pytest.fixture(scope="class")
def acl_manager() -> NoAcls:
    return NoAcls()


@pytest.fixture(scope="class")
def kafka_config() -> HttpUsers:
    return HttpUsers()


@pytest.fixture(scope="class")
def kerberos_utils() -> NoKerberos:
    return NoKerberos()


@pytest.fixture(scope="class")
def setup_test_class(
    request: Any, loop: Any, kafka_server: JackalopeServer, ssl_folder: pathlib.Path
) -> None:
    cls = request.cls
    cls.loop = loop
    cls.kafka_host = kafka_server.host
    cls.kafka_port = kafka_server.port
    cls.kafka_ssl_port = kafka_server.ssl_port
    cls.kafka_sasl_plain_port = kafka_server.sasl_plain_port
    cls.kafka_sasl_ssl_port = kafka_server.sasl_ssl_port
    cls.ssl_folder = ssl_folder
    cls.acl_manager = NoAcls()
    cls.kerberos_utils = NoKerberos()
    cls.kafka_config = HttpUsers()
    cls.hosts = kafka_server.hosts
    cls.kafka_version = os.environ.get("AIOKAFKA_KAFKA_VERSION", "2.8.1")
