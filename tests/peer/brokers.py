"""Start the `jackalope serve` process a client library's suite runs against.

A suite gets one `jackalope serve` (temporary data directory, ephemeral ports) with four
Kafka listeners, as the suites' own test clusters have (aiokafka's docker image is one broker
with PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL listeners, and tests such as aiokafka's
test_ssl_consume produce on one listener and consume on another): ``plain`` (PLAINTEXT),
``sasl`` (SASL_PLAINTEXT with PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER), ``ssl`` (TLS) and
``sasl_ssl``.  The broker knows the users the suites log in as.  ``one_process=False`` starts
the four as processes of their own instead.  The overlays read the listeners from the
``JACKALOPE_PEER_BROKERS`` environment variable (JSON, see ``Brokers``).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import trustme

LISTENING = re.compile(r"listening (\w+)\s+(\S+)")
GUEST_AUTH = "Basic " + base64.b64encode(b"guest:guest").decode()
# The users of the suites' own broker set-ups (their JAAS files and fixtures).
USERS = {
    "alice": "alice-secret",  # kafka-python's KafkaFixture
    "admin": "admin",  # aiokafka's docker image
    "test": "test",
    "test2": "test2",
    "sasl_user": "sasl_user",  # confluent-kafka-python's SASL cluster
}
SASL_MECHANISMS = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER"
# What the suites' test clusters set: no initial rebalance delay, short sessions allowed.
GROUP_FLAGS = ("--kafka-group-initial-delay-ms", "0", "--kafka-group-min-session-timeout-ms", "1000")


@dataclass
class Serve:
    name: str
    proc: subprocess.Popen[str]
    kafka: str = ""  # host:port
    http: str = ""
    output: list[str] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)  # what it printed: name -> URL

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Brokers:
    """The four listeners of a suite (``serves``: one ``Serve`` each, the same process behind
    all four unless started with ``one_process=False``), and the TLS material their clients
    need."""

    serves: dict[str, Serve]
    cafile: Path  # the CA that signed the TLS listeners' certificate (PEM)
    client_cert: Path  # a client certificate and key signed by it (PEM)
    client_key: Path

    def env(self) -> dict[str, str]:
        info = {
            "brokers": {name: s.kafka for name, s in self.serves.items()},
            "http": {name: s.http for name, s in self.serves.items()},
            "cafile": str(self.cafile),
            "client_cert": str(self.client_cert),
            "client_key": str(self.client_key),
            "users": USERS,
        }
        return {"JACKALOPE_PEER_BROKERS": json.dumps(info)}

    def _processes(self) -> list[Serve]:
        seen: dict[int, Serve] = {}
        for s in self.serves.values():
            seen.setdefault(id(s.proc), s)
        return list(seen.values())

    def stop(self) -> None:
        for s in self._processes():
            s.stop()

    def logs(self) -> str:
        return "".join(f"--- {s.name}\n" + "".join(s.output) for s in self._processes())


def start_serve(name: str, data_dir: Path, args: Sequence[str], timeout: float = 30) -> Serve:
    cmd = [sys.executable, "-m", "jackalope", "serve", "--data-dir", str(data_dir)]
    cmd += ["--http-port", "0", "--amqp-port", "-1", "--amqp-tls-port", "-1"]
    if "--kafka-listeners" not in args:
        cmd += ["--kafka-port", "0"]
    cmd += args
    proc = subprocess.Popen(
        ["nice", "-n", "10", *cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    serve = Serve(name, proc)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        serve.output.append(line)
        m = LISTENING.search(line)
        if m:
            serve.urls[m.group(1)] = m.group(2)
        if m and m.group(1) == "kafka":  # printed after every kafka_<listener> line
            serve.kafka = m.group(2).split("://", 1)[1]
        elif m and m.group(1) == "http":
            serve.http = m.group(2)
        if serve.kafka and serve.http:
            threading.Thread(target=_drain, args=(proc.stdout, serve.output), daemon=True).start()
            return serve
    serve.stop()
    raise RuntimeError(f"jackalope serve ({name}) did not start:\n" + "".join(serve.output))


def add_user(http: str, name: str, password: str) -> None:
    request = urllib.request.Request(
        f"{http}/api/users/{name}",
        data=json.dumps({"password": password, "tags": "administrator"}).encode(),
        method="PUT",
        headers={"Authorization": GUEST_AUTH, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


# flavour -> Kafka listener name
LISTENERS = {"plain": "PLAINTEXT", "sasl": "SASL_PLAINTEXT", "ssl": "SSL", "sasl_ssl": "SASL_SSL"}


def start_brokers(work: Path, extra_args: Sequence[str] = (), *, one_process: bool = True) -> Brokers:
    """Start the plain, sasl, ssl and sasl_ssl listeners with data under ``work``: one broker
    with four listeners, or (``one_process=False``) four brokers of one listener each."""
    certs = work / "certs"
    certs.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cafile = certs / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    server = ca.issue_cert("127.0.0.1", "localhost", common_name="localhost")
    server_cert, server_key = certs / "server.pem", certs / "server-key.pem"
    for i, pem in enumerate(server.cert_chain_pems):
        pem.write_to_path(str(server_cert), append=i > 0)
    server.private_key_pem.write_to_path(str(server_key))
    client = ca.issue_cert(common_name="client")
    client_cert, client_key = certs / "client.pem", certs / "client-key.pem"
    client.cert_chain_pems[0].write_to_path(str(client_cert))
    client.private_key_pem.write_to_path(str(client_key))

    tls = ("--kafka-tls-certfile", str(server_cert), "--kafka-tls-keyfile", str(server_key))
    sasl = (
        "--kafka-sasl-mechanisms",
        SASL_MECHANISMS,
        # OAUTHBEARER with Kafka's unsecured validator, as trivup's OAUTH cluster (confluent's
        # share_consumer_oauth tests: principal admin, scope requiredScope)
        "--kafka-oauthbearer-unsecured",
        "true",
        "--kafka-oauthbearer-required-scope",
        "requiredScope",
    )
    if one_process:
        listeners = ",".join(f"{name}://127.0.0.1:0" for name in LISTENERS.values())
        args = [*GROUP_FLAGS, "--kafka-listeners", listeners, *sasl, *tls, *extra_args]
        broker = start_serve("broker", work / "data", args)
        try:
            for user, password in USERS.items():
                add_user(broker.http, user, password)
        except BaseException:
            broker.stop()
            raise
        serves = {
            flavour: dataclasses.replace(
                broker, kafka=broker.urls[f"kafka_{name.lower()}"].split("://", 1)[1]
            )
            for flavour, name in LISTENERS.items()
        }
        return Brokers(serves, cafile, client_cert, client_key)
    flavours: dict[str, tuple[str, ...]] = {"plain": (), "sasl": sasl, "ssl": tls, "sasl_ssl": (*sasl, *tls)}
    serves = {}
    try:
        for name, flags in flavours.items():
            serves[name] = start_serve(name, work / f"data-{name}", [*GROUP_FLAGS, *flags, *extra_args])
            if "--kafka-sasl-mechanisms" in flags:
                for user, password in USERS.items():
                    add_user(serves[name].http, user, password)
    except BaseException:
        for s in serves.values():
            s.stop()
        raise
    return Brokers(serves, cafile, client_cert, client_key)


def _drain(stream: IO[str], into: list[str]) -> None:
    for line in stream:
        into.append(line)


def broker_info() -> dict[str, object]:
    """In an overlay: the brokers the runner started (``Brokers.env``)."""
    info: dict[str, object] = json.loads(os.environ["JACKALOPE_PEER_BROKERS"])
    return info
