"""RabbitMQ's own ``rabbitmqadmin`` (v1, the script Debian's rabbitmq-server ships) driving
Jackalope: listing, declaring, publishing, getting, and exporting and importing definitions.

``.ci/run`` extracts the script from Debian's package (no Erlang, no server) into the
virtualenv; elsewhere the tests look for it at ``$JACKALOPE_RABBITMQADMIN`` or on the PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pika
import pytest

from jackalope import Broker

_BESIDE = Path(sys.executable).parent / "rabbitmqadmin"  # where .ci/run puts it
SCRIPT = (
    os.environ.get("JACKALOPE_RABBITMQADMIN")
    or (str(_BESIDE) if _BESIDE.exists() else None)
    or shutil.which("rabbitmqadmin")
)
pytestmark = pytest.mark.skipif(SCRIPT is None, reason="rabbitmqadmin is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Broker:
    with Broker(tmp_path_factory.mktemp("admin") / "data", kafka_port=-1) as broker:
        yield broker  # type: ignore[misc]


def admin(broker: Broker, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    assert SCRIPT is not None
    port = broker.http_url.rsplit(":", 1)[1]
    command = [sys.executable, SCRIPT, "-H", "127.0.0.1", "-P", port, "-u", "guest", "-p", "guest", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if check:
        assert done.returncode == 0, (done.stdout, done.stderr)
    return done


def rows(broker: Broker, *args: str) -> list[dict[str, object]]:
    """A list command's rows, through rabbitmqadmin's own JSON formatter."""
    return json.loads(admin(broker, "-f", "raw_json", *args).stdout)  # type: ignore[no-any-return]


def test_declare_publish_get_and_list(broker: Broker) -> None:
    assert "queue declared" in admin(broker, "declare", "queue", "name=jobs", "durable=true").stdout
    admin(broker, "declare", "exchange", "name=work", "type=topic")
    admin(broker, "declare", "binding", "source=work", "destination=jobs", "routing_key=job.*")
    admin(broker, "publish", "exchange=work", "routing_key=job.1", "payload=first")
    admin(
        broker,
        "publish",
        "exchange=work",
        "routing_key=job.2",
        "payload=second",
        'properties={"delivery_mode": 2}',
    )
    [queue] = [q for q in rows(broker, "list", "queues") if q["name"] == "jobs"]
    assert queue["messages"] == 2 and queue["durable"] is True
    got = rows(broker, "get", "queue=jobs", "count=2", "ackmode=ack_requeue_true")
    assert [m["payload"] for m in got] == ["first", "second"]
    assert [m["routing_key"] for m in got] == ["job.1", "job.2"]
    bindings = rows(broker, "list", "bindings")
    assert {"source": "work", "destination": "jobs", "routing_key": "job.*"}.items() <= next(
        b for b in bindings if b["source"] == "work"
    ).items()
    table = admin(broker, "list", "exchanges", "name", "type").stdout
    assert "| work " in table and "topic" in table
    # pika sees what rabbitmqadmin published, and rabbitmqadmin sees pika's consumer go
    with pika.BlockingConnection(pika.URLParameters(broker.amqp_url)) as conn:
        channel = conn.channel()
        method, _, body = channel.basic_get("jobs", auto_ack=True)
        assert method is not None and body == b"first"
        assert [c["user"] for c in rows(broker, "list", "connections")] == ["guest"]
    admin(broker, "purge", "queue", "name=jobs")
    assert next(q for q in rows(broker, "list", "queues") if q["name"] == "jobs")["messages"] == 0
    admin(
        broker,
        "delete",
        "binding",
        "source=work",
        "destination=jobs",
        "destination_type=queue",
        "properties_key=job.*",
    )
    admin(broker, "delete", "queue", "name=jobs")
    admin(broker, "delete", "exchange", "name=work")
    assert not [q for q in rows(broker, "list", "queues") if q["name"] == "jobs"]


def test_overview_nodes_users_and_errors(broker: Broker) -> None:
    shown = admin(broker, "show", "overview").stdout
    assert "rabbitmq_version" in shown and "jackalope@" in shown
    assert rows(broker, "list", "nodes")[0]["running"] is True
    assert [u["name"] for u in rows(broker, "list", "users")] == ["guest"]
    failed = admin(broker, "get", "queue=missing", check=False)
    assert failed.returncode != 0 and "Not found" in failed.stdout + failed.stderr
    assert SCRIPT is not None
    port = broker.http_url.rsplit(":", 1)[1]
    wrong = subprocess.run(
        [
            sys.executable,
            SCRIPT,
            "-H",
            "127.0.0.1",
            "-P",
            port,
            "-u",
            "guest",
            "-p",
            "nope",
            "list",
            "queues",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong.returncode != 0 and "Access refused" in wrong.stdout + wrong.stderr


def test_export_and_import_definitions(broker: Broker, tmp_path: Path) -> None:
    admin(broker, "declare", "vhost", "name=shop")
    admin(broker, "declare", "permission", "vhost=shop", "user=guest", "configure=.*", "write=.*", "read=.*")
    admin(broker, "-V", "shop", "declare", "exchange", "name=orders", "type=direct")
    admin(
        broker,
        "-V",
        "shop",
        "declare",
        "queue",
        "name=orders.eu",
        "durable=true",
        'arguments={"x-max-length": 5}',
    )
    admin(
        broker, "-V", "shop", "declare", "binding", "source=orders", "destination=orders.eu", "routing_key=eu"
    )
    exported = tmp_path / "defs.json"
    admin(broker, "export", str(exported))
    definitions = json.loads(exported.read_text())
    assert {"name": "orders.eu", "vhost": "shop"}.items() <= definitions["queues"][0].items()
    assert definitions["queues"][0]["arguments"] == {"x-max-length": 5}
    admin(broker, "delete", "vhost", "name=shop")
    assert "shop" not in [v["name"] for v in rows(broker, "list", "vhosts")]
    admin(broker, "import", str(exported))
    assert [q["name"] for q in rows(broker, "-V", "shop", "list", "queues")] == ["orders.eu"]
    [binding] = [b for b in rows(broker, "-V", "shop", "list", "bindings") if b["source"] == "orders"]
    assert (binding["destination"], binding["routing_key"]) == ("orders.eu", "eu")
