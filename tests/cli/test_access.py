"""``jackalope status``, the exit codes, and users, vhosts, permissions, policies and
definitions through the installed command, against a real broker."""

from __future__ import annotations

import json
import re
import socket
import stat
from pathlib import Path

import pika

from jackalope import Broker
from tests.cli.conftest import Run, run_cli, table_lines


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_help_documents_the_exit_codes(cli: Run) -> None:
    result = cli("--help")
    assert result.code == 0
    for line in ("69  cannot connect", "77  authentication or authorisation failed", "2   usage error"):
        assert line in result.out


def test_status_shows_version_listeners_totals_and_alarms(cli: Run, broker: Broker) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare("cli.status", exclusive=True)
        channel.basic_publish("", "cli.status", b"counted")
        result = cli("status")
        assert result.code == 0, result.err
        lines = table_lines(result.out)
        fields = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in lines if "  " in line.strip())
        assert fields["Product"] == "Jackalope 0.1.0" and fields["Alarms"] == "none"
        assert int(fields["Connections"]) >= 1 and int(fields["Queues"]) >= 1
        assert int(fields["Messages"]) >= 1
        amqp_port = broker.amqp_url.rsplit(":", 1)[1].rstrip("/")
        assert ["amqp", "127.0.0.1", amqp_port] in [line.split() for line in lines]
        document = cli("status", "--json").json()
        assert document["alarms"] == [] and document["product_name"] == "Jackalope"
        assert document["object_totals"]["queues"] >= 1 and document["queue_totals"]["messages"] >= 1
        assert {"protocol": "amqp", "port": int(amqp_port)}.items() <= next(
            listener for listener in document["listeners"] if listener["protocol"] == "amqp"
        ).items()
    finally:
        connection.close()


def test_wrong_password_is_the_auth_exit_code(cli: Run) -> None:
    result = cli("users", "list", "--password", "wrong")
    assert (result.code, result.out) == (77, "")
    assert "Not_Authorized" in result.err
    from_env = cli("vhosts", "list", env={"JACKALOPE_USER": "guest", "JACKALOPE_PASSWORD": "nope"})
    assert from_env.code == 77


def test_a_user_without_the_tag_is_the_auth_exit_code(cli: Run) -> None:
    assert cli("users", "add", "watcher", "watcher-pw", "--tags", "management").code == 0
    result = cli("users", "list", "--username", "watcher", "--password", "watcher-pw")
    assert result.code == 77 and "Not administrator user" in result.err
    assert cli("users", "delete", "watcher").code == 0


def test_unreachable_broker_is_the_unavailable_exit_code() -> None:
    result = run_cli("status", url=f"http://127.0.0.1:{_free_port()}")
    assert result.code == 69 and "cannot connect" in result.err and "refused" in result.err
    assert run_cli("status", url="http://no-such-host.invalid:15672").code == 69


def test_usage_errors_exit_2(cli: Run) -> None:
    assert cli("users", "frobnicate").code == 2
    bad_url = cli("status", "--url", "ftp://example")
    assert bad_url.code == 2 and "--url" in bad_url.err
    assert cli("policies", "add", "p", ".*", "not json").code == 2


def test_unknown_object_exits_1_with_the_reason(cli: Run) -> None:
    result = cli("users", "delete", "nobody-at-all")
    assert (result.code, result.out) == (1, "")
    assert "Not Found" in result.err and "404" in result.err


def test_users_lifecycle_and_the_new_user_logs_in(cli: Run, broker: Broker) -> None:
    added = cli("users", "add", "carol", "--tags", "monitoring", "--json", input="carols-pw\n")
    assert added.code == 0, added.err
    assert added.json() == {"user": "carol", "created": True}
    listed = {u["name"]: u for u in cli("users", "list", "--json").json()}
    assert listed["carol"]["tags"] == ["monitoring"]
    table = table_lines(cli("users", "list").out)
    assert table[0].split() == ["NAME", "TAGS"]
    assert any(line.split() == ["carol", "monitoring"] for line in table)
    # the password given on stdin is the one that logs in
    assert cli("vhosts", "list", "--username", "carol", "--password", "carols-pw").code == 0
    assert cli("users", "add", "carol", "new-pw", "--tags", "monitoring").out.strip() == "user carol updated"
    assert cli("users", "delete", "carol").code == 0
    assert "carol" not in {u["name"] for u in cli("users", "list", "--json").json()}


def test_vhosts_and_permissions(cli: Run, broker: Broker) -> None:
    assert cli("vhosts", "add", "cli-vh", "--description", "for the CLI tests").code == 0
    assert cli("users", "add", "dave", "daves-pw").code == 0
    assert (
        cli("permissions", "add", "dave", "-V", "cli-vh", "--configure", "^dave-", "--read", ".*").code == 0
    )
    rows = cli("permissions", "list", "--vhost", "cli-vh", "--json").json()
    dave = [r for r in rows if r["user"] == "dave"]
    assert dave == [{"user": "dave", "vhost": "cli-vh", "configure": "^dave-", "write": ".*", "read": ".*"}]
    # the permission is real: dave may open the vhost over AMQP
    port = int(broker.amqp_url.rsplit(":", 1)[1].rstrip("/"))
    params = pika.ConnectionParameters("127.0.0.1", port, "cli-vh", pika.PlainCredentials("dave", "daves-pw"))
    pika.BlockingConnection(params).close()
    table = table_lines(cli("permissions", "list", "--all-vhosts").out)
    assert table[0].split() == ["USER", "VHOST", "CONFIGURE", "WRITE", "READ"]
    vhost_rows = {v["name"]: v for v in cli("vhosts", "list", "--json").json()}
    assert vhost_rows["cli-vh"]["description"] == "for the CLI tests"
    assert cli("permissions", "delete", "dave", "--vhost", "cli-vh").code == 0
    assert cli("permissions", "delete", "dave", "--vhost", "cli-vh").code == 1
    assert cli("vhosts", "delete", "cli-vh").code == 0
    assert cli("users", "delete", "dave").code == 0
    gone = cli("vhosts", "delete", "cli-vh")
    assert gone.code == 1 and "Not Found" in gone.err


def test_policies(cli: Run) -> None:
    added = cli("policies", "add", "cap", "^capped\\.", '{"max-length": 5}', "--apply-to", "queues")
    assert added.code == 0, added.err
    rows = cli("policies", "list", "--json").json()
    cap = next(p for p in rows if p["name"] == "cap")
    assert cap["definition"] == {"max-length": 5} and cap["apply-to"] == "queues"
    assert cap["pattern"] == "^capped\\."
    table = table_lines(cli("policies", "list").out)
    assert table[0].split()[:3] == ["NAME", "VHOST", "PATTERN"]
    refused = cli("policies", "add", "bad", ".*", '{"max-length": "lots"}')
    assert refused.code == 1 and "max-length" in refused.err
    assert cli("policies", "delete", "cap").code == 0
    assert cli("policies", "delete", "cap").code == 1


def test_definitions_round_trip(cli: Run, tmp_path: Path) -> None:
    assert cli("vhosts", "add", "defs-vh").code == 0
    assert cli("users", "add", "erin", "erins-pw", "--tags", "management").code == 0
    assert cli("permissions", "add", "erin", "-V", "defs-vh").code == 0
    exported = tmp_path / "defs.json"
    result = cli("definitions", "export", str(exported))
    assert result.code == 0, result.err
    assert stat.S_IMODE(exported.stat().st_mode) == 0o600  # it holds password hashes
    document = json.loads(exported.read_text())
    assert "erin" in {u["name"] for u in document["users"]}
    assert cli("definitions", "export", "--json").json() == document  # stdout without FILE
    for args in (("users", "delete", "erin"), ("vhosts", "delete", "defs-vh")):
        assert cli(*args).code == 0
    imported = cli("definitions", "import", str(exported), "--json")
    assert imported.code == 0, imported.err
    assert imported.json()["imported"]["users"] == len(document["users"])
    assert "erin" in {u["name"] for u in cli("users", "list", "--json").json()}
    assert {"user": "erin", "vhost": "defs-vh", "configure": ".*", "write": ".*", "read": ".*"} in cli(
        "permissions", "list", "-V", "defs-vh", "--json"
    ).json()
    # erin's password hash came back as it was
    assert cli("vhosts", "list", "--username", "erin", "--password", "erins-pw").code == 0
    shown = cli.on_terminal("definitions", "import", str(exported))
    assert shown.code == 0 and shown.out.startswith("imported")
    assert "importing" in shown.err  # the upload's progress, drawn on the terminal
    from_stdin = cli("definitions", "import", "-", input=exported.read_text())
    assert from_stdin.code == 0 and from_stdin.out.startswith("imported")


def test_definitions_import_bad_input(cli: Run, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = cli("definitions", "import", str(broken))
    assert result.code == 1 and "not a JSON definitions file" in result.err
    refused = cli("definitions", "import", "-", input=json.dumps({"vhosts": [{"description": "x"}]}))
    assert refused.code == 1 and "vhosts must be a list of objects with a name" in refused.err
    assert cli("definitions", "import", str(tmp_path / "missing.json")).code == 2


def test_tables_fold_long_values_to_the_terminal(cli: Run) -> None:
    pattern = "^" + "very-long-queue-name-prefix." * 6
    assert cli("policies", "add", "long-one", pattern, '{"max-length": 1}', "--priority", "3").code == 0
    result = cli("policies", "list")
    lines = table_lines(result.out)  # every line within the width
    start, end = lines[0].index("PATTERN"), lines[0].index("APPLY-TO")
    mine = next(i for i, line in enumerate(lines) if line.startswith("long-one "))
    folded = [lines[mine][start:end].strip()]
    folded += [line[start:end].strip() for line in lines[mine + 1 :] if not line[:start].strip()]
    assert len(folded) > 1 and "".join(folded) == pattern  # wrapped within its column, whole
    wide = cli("policies", "list", env={"COLUMNS": "250"})
    assert pattern in wide.out  # on one line where there is room
    assert cli("policies", "delete", "long-one").code == 0
