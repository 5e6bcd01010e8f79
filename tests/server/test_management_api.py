"""Users, vhosts, permissions, limits and definitions over the HTTP API (RabbitMQ's management
API shape), who may use them, and that they hold across a restart of ``jackalope serve``."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pika
import pika.exceptions
import pytest

from jackalope import Broker
from tests.amqp.access_admin import HttpAdmin
from tests.conftest import ServeProcess
from tests.server.http_client import Api

RABBITMQ_EXPORT: dict[str, Any] = {  # `rabbitmqctl export_definitions` of RabbitMQ 3.10.8, trimmed
    "rabbit_version": "3.10.8",
    "users": [
        {
            "hashing_algorithm": "rabbit_password_hashing_sha256",
            "limits": {},
            "name": "jk-probe",
            "password_hash": "A2dFmf+ImwtiKO0ykz6fDNNjLNGlZ/M+6RrktTZ+DBZRLrkW",
            "tags": ["monitoring", "foo"],
        }
    ],
    "vhosts": [
        {"limits": [["max-connections", 1]], "metadata": {"description": "", "tags": ""}, "name": "jk-vh"}
    ],
    "permissions": [
        {"configure": "^cfg", "read": "^rd", "user": "jk-probe", "vhost": "jk-vh", "write": "^wr"}
    ],
    "parameters": [
        {"component": "vhost-limits", "name": "limits", "value": {"max-connections": 1}, "vhost": "jk-vh"}
    ],
    "topic_permissions": [],
    "queues": [],
    "exchanges": [],
    "bindings": [],
    "policies": [],
    "global_parameters": [],
}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with Broker(tmp_path / "data") as broker, aiohttp.ClientSession() as http:
        yield Api(http, broker.http_url + "/api", broker.amqp_url)


async def test_whoami_and_bad_credentials(api: Api) -> None:
    assert await api.call("GET", "/whoami") == (200, {"name": "guest", "tags": ["administrator"]})
    assert await api.call("GET", "/whoami", who=("guest", "nope")) == (
        401,
        {"error": "not_authorized", "reason": "Not_Authorized"},
    )


async def test_users_lifecycle_without_plaintext(api: Api) -> None:
    assert (await api.call("PUT", "/users/bob", {"password": "bobs-pw", "tags": "management"}))[0] == 201
    status, bob = await api.call("GET", "/users/bob")
    assert status == 200
    assert bob["tags"] == ["management"] and bob["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    assert "bobs-pw" not in str(bob) and bob["password_hash"]
    assert (await api.call("PUT", "/users/bob", {"password": "new-pw"}))[0] == 204  # tags kept
    assert (await api.call("GET", "/whoami", who=("bob", "new-pw"))) == (
        200,
        {"name": "bob", "tags": ["management"]},
    )
    assert (await api.call("GET", "/whoami", who=("bob", "bobs-pw")))[0] == 401
    status, answer = await api.call("PUT", "/users/bob", {"password": "x", "password_hash": "y"})
    assert (status, answer["reason"]) == (400, "both password and password_hash are provided")
    status, answer = await api.call(
        "PUT", "/users/bob", {"password_hash": "abc", "hashing_algorithm": "sha1"}
    )
    assert status == 400 and "unknown hashing_algorithm 'sha1'" in answer["reason"]
    assert (await api.call("DELETE", "/users/bob"))[0] == 204
    assert await api.call("GET", "/users/bob") == (404, {"error": "Object Not Found", "reason": "Not Found"})
    assert (await api.call("DELETE", "/users/bob"))[0] == 404


async def test_a_rabbitmq_hash_logs_in_over_amqp(api: Api) -> None:
    user = RABBITMQ_EXPORT["users"][0]
    body = {
        "password_hash": user["password_hash"],
        "hashing_algorithm": user["hashing_algorithm"],
        "tags": "",
    }
    assert (await api.call("PUT", "/users/jk-probe", body))[0] == 201
    assert (await api.call("PUT", "/permissions/%2F/jk-probe", {"configure": "", "write": "", "read": ""}))[
        0
    ] == 201
    port = api.amqp_url.rsplit(":", 1)[1].rstrip("/")
    connection = await aio_pika.connect(f"amqp://jk-probe:s3cret@127.0.0.1:{port}/")
    await connection.close()


async def test_what_each_tag_may_do(api: Api) -> None:
    for name, tags in (("none", ""), ("mgmt", "management"), ("mon", "monitoring")):
        await api.call("PUT", f"/users/{name}", {"password": "pw", "tags": tags})
    await api.call("PUT", "/vhosts/mine", {})
    await api.call("PUT", "/vhosts/theirs", {})
    await api.call("PUT", "/permissions/mine/mgmt", {"configure": ".*", "write": ".*", "read": ".*"})
    assert await api.call("GET", "/overview", who=("none", "pw")) == (
        401,
        {"error": "not_authorised", "reason": "Not management user"},
    )
    not_admin = (401, {"error": "not_authorised", "reason": "Not administrator user"})
    assert await api.call("GET", "/users", who=("mgmt", "pw")) == not_admin
    assert await api.call("PUT", "/vhosts/x", {}, who=("mgmt", "pw")) == not_admin
    assert await api.call("GET", "/permissions", who=("mon", "pw")) == not_admin
    _, vhosts = await api.call("GET", "/vhosts", who=("mgmt", "pw"))
    assert [v["name"] for v in vhosts] == ["mine"]
    assert await api.call("GET", "/vhosts/theirs", who=("mgmt", "pw")) == (
        401,
        {"error": "not_authorised", "reason": "User not authorised to access virtual host"},
    )
    _, vhosts = await api.call("GET", "/vhosts", who=("mon", "pw"))
    assert {v["name"] for v in vhosts} == {"/", "mine", "theirs"}
    # Kafka topics: monitoring reads, administrator changes
    assert await api.call("GET", "/kafka/topics", who=("mgmt", "pw")) == (
        401,
        {"error": "not_authorised", "reason": "Not monitor user"},
    )
    assert (await api.call("GET", "/kafka/topics", who=("mon", "pw")))[0] == 200
    assert await api.call("PUT", "/kafka/topics/raw", {}, who=("mon", "pw")) == not_admin
    assert (await api.call("PUT", "/kafka/topics/raw", {}))[0] == 201


async def test_vhosts_permissions_and_limits(api: Api) -> None:
    assert (await api.call("PUT", "/vhosts/dev", {"description": "for tests", "tags": "a,b"}))[0] == 201
    status, dev = await api.call("GET", "/vhosts/dev")
    assert (dev["name"], dev["description"], dev["tags"]) == ("dev", "for tests", ["a", "b"])
    # the creator gets every permission in a vhost it creates, as with RabbitMQ's API
    assert await api.call("GET", "/permissions/dev/guest") == (
        200,
        {"user": "guest", "vhost": "dev", "configure": ".*", "write": ".*", "read": ".*"},
    )
    assert (await api.call("PUT", "/vhosts/dev", {}))[0] == 204
    status, answer = await api.call(
        "PUT", "/permissions/dev/guest", {"configure": "(", "write": "", "read": ""}
    )
    assert status == 400 and "invalid regular expression '('" in answer["reason"]
    assert (await api.call("PUT", "/permissions/nowhere/guest", {"configure": "", "write": "", "read": ""}))[
        0
    ] == 400
    assert (await api.call("PUT", "/permissions/dev/ghost", {"configure": "", "write": "", "read": ""}))[
        0
    ] == 400
    assert (await api.call("PUT", "/vhost-limits/dev/max-queues", {"value": 10}))[0] == 204
    status, answer = await api.call("PUT", "/vhost-limits/dev/max-channels", {"value": 10})
    assert status == 400 and "unknown vhost limit 'max-channels'" in answer["reason"]
    assert (await api.call("PUT", "/vhost-limits/dev/max-queues", {"value": "ten"}))[0] == 400
    assert await api.call("GET", "/vhost-limits") == (200, [{"vhost": "dev", "value": {"max-queues": 10}}])
    assert (await api.call("DELETE", "/vhost-limits/dev/max-queues"))[0] == 204
    assert await api.call("GET", "/vhost-limits/dev") == (200, [])
    assert (await api.call("PUT", "/topic-permissions/dev/guest", {"exchange": "amq.topic"}))[0] == 501
    assert (await api.call("DELETE", "/permissions/dev/guest"))[0] == 204
    assert (await api.call("GET", "/permissions/dev/guest"))[0] == 404
    status, answer = await api.call("DELETE", "/vhosts/%2F")
    assert status == 400 and "cannot be deleted" in answer["reason"]
    assert (await api.call("DELETE", "/vhosts/dev"))[0] == 204
    assert (await api.call("DELETE", "/vhosts/dev"))[0] == 404


async def test_importing_a_rabbitmq_export(api: Api) -> None:
    dangling = {"source": "amq.direct", "vhost": "jk-vh", "destination": "nope", "destination_type": "queue"}
    status, answer = await api.call("POST", "/definitions", {**RABBITMQ_EXPORT, "bindings": [dangling]})
    assert (status, answer["reason"]) == (400, "binding: no queue 'nope' in vhost 'jk-vh'")
    assert (await api.call("GET", "/users/jk-probe"))[0] == 404  # nothing taken
    assert (await api.call("POST", "/definitions", RABBITMQ_EXPORT))[0] == 204
    status, exported = await api.call("GET", "/definitions")
    assert {u["name"] for u in exported["users"]} == {"guest", "jk-probe"}
    assert RABBITMQ_EXPORT["permissions"][0] in exported["permissions"]
    assert exported["parameters"] == RABBITMQ_EXPORT["parameters"]
    assert (await api.call("GET", "/whoami", who=("jk-probe", "s3cret"))) == (
        200,
        {"name": "jk-probe", "tags": ["monitoring", "foo"]},
    )


async def test_policies_import_and_export_with_the_definitions(api: Api) -> None:
    policy = {
        "vhost": "/",
        "name": "ttl",
        "pattern": "^q",
        "apply-to": "queues",
        "definition": {"message-ttl": 5},
    }
    bad = {**policy, "name": "bad", "definition": {"ha-mode": "all"}}
    status, answer = await api.call("POST", "/definitions", {"policies": [policy, bad]})
    assert status == 400 and "policy 'bad'" in answer["reason"]
    assert (await api.call("GET", "/policies"))[1] == []  # nothing taken
    assert (await api.call("POST", "/definitions", {"policies": [policy]}))[0] == 204
    exported = (await api.call("GET", "/definitions"))[1]["policies"]
    assert exported == [{**policy, "priority": 0}]


def test_users_vhosts_permissions_and_limits_survive_a_restart(
    serve: type[ServeProcess], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = serve("--default-user", "root", "--default-pass", "first-pw", data_dir=data)  # type: ignore[call-arg]
    admin = HttpAdmin(first.urls["http"], ("root", "first-pw"))
    admin.add_vhost("kept")
    admin.add_user("carol", "carols-pw", "management")
    admin.set_permissions("kept", "carol", "^c", ".*", ".*")
    admin.set_vhost_limits("kept", {"max-queues": 1})
    assert first.stop() == 0
    again = serve("--default-user", "other", "--default-pass", "x", data_dir=data)  # type: ignore[call-arg]
    admin = HttpAdmin(again.urls["http"], ("root", "first-pw"))  # no new default user
    assert admin.request("GET", "/users/other")[0] == 404
    assert admin.ok("GET", "/permissions/kept/carol") == {
        "user": "carol",
        "vhost": "kept",
        "configure": "^c",
        "write": ".*",
        "read": ".*",
    }
    assert admin.ok("GET", "/vhost-limits/kept") == [{"vhost": "kept", "value": {"max-queues": 1}}]
    users_file = data / "users.json"
    assert stat.S_IMODE(users_file.stat().st_mode) & 0o077 == 0
    assert "carols-pw" not in users_file.read_text() and "first-pw" not in users_file.read_text()
    port = again.urls["amqp"].rsplit(":", 1)[1].rstrip("/")
    conn = pika.BlockingConnection(pika.URLParameters(f"amqp://carol:carols-pw@127.0.0.1:{port}/kept"))
    ch = conn.channel()
    ch.queue_declare("c1", durable=True)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
        ch.queue_declare("c2")
    assert caught.value.reply_code == 406
    conn.close()
    assert again.stop() == 0
