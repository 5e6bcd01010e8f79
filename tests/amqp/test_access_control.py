"""Users, vhosts, permissions and vhost limits over AMQP with pika: each class of operation
refused and allowed as RabbitMQ's access-control table says, in RabbitMQ's words.

Differential: against RabbitMQ (``JACKALOPE_TEST_AMQP_URL``) the users and vhosts are made
with ``rabbitmqctl`` (``JACKALOPE_TEST_RABBITMQCTL``, see ``access_admin.py``); the guest
loopback rule is Jackalope-only (the shared RabbitMQ node runs with ``loopback_users = none``).
"""

from __future__ import annotations

import socket
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from tests.amqp.access_admin import RABBITMQCTL, Admin, CtlAdmin, HttpAdmin
from tests.amqp.support import EXTERNAL_URL, WAIT, bounded, connect, host_port, wait_until

jackalope_only = pytest.mark.skipif(EXTERNAL_URL is not None, reason="Jackalope's own setting")


@dataclass
class Site:
    host: str
    port: int
    admin: Admin

    def url(self, user: str, password: str, vhost: str = "/") -> str:
        return f"amqp://{user}:{password}@{self.host}:{self.port}/{urllib.parse.quote(vhost, safe='')}"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    if EXTERNAL_URL is not None:
        if RABBITMQCTL is None:
            pytest.skip("set JACKALOPE_TEST_RABBITMQCTL to make users on the external broker")
        host, port = host_port(EXTERNAL_URL)
        made = Site(host, port, CtlAdmin(RABBITMQCTL))
        try:
            yield made
        finally:
            made.admin.cleanup()
        return
    from jackalope import Broker

    broker = Broker(tmp_path / "data").start()
    host, port = host_port(broker.amqp_url)
    made = Site(host, port, HttpAdmin(broker.http_url))
    try:
        yield made
    finally:
        made.admin.cleanup()
        bounded(broker.stop, "stopping the embedded broker", 2 * WAIT)


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class World:
    """A vhost; ``owner`` may do anything in it, ``user`` configure ^cfg, write ^(wr|cfg),
    read ^(rd|cfg); the owner made queues cfg.q, rd.q, wr.q, other.q and exchanges
    rd.x, wr.x, other.x, cfg.x."""

    site: Site
    vhost: str
    user: str
    owner: str

    def connect(self, who: str | None = None) -> BlockingConnection:
        name = who or self.user
        return connect(self.site.url(name, "pw-" + name, self.vhost))


@pytest.fixture
def world(site: Site) -> Iterator[World]:
    vhost, user, owner = _unique("jk-vh"), _unique("jk-user"), _unique("jk-owner")
    site.admin.add_vhost(vhost)
    for name in (user, owner):
        site.admin.add_user(name, "pw-" + name)
    site.admin.set_permissions(vhost, owner, ".*", ".*", ".*")
    site.admin.set_permissions(vhost, user, "^cfg", "^(wr|cfg)", "^(rd|cfg)")
    w = World(site, vhost, user, owner)
    conn = w.connect(owner)
    ch = conn.channel()
    for q in ("cfg.q", "rd.q", "wr.q", "other.q"):
        ch.queue_declare(q)
    for x in ("rd.x", "wr.x", "other.x", "cfg.x"):
        ch.exchange_declare(x, "direct")
    conn.close()
    yield w


def _refusal(w: World, kind: str, name: str) -> str:
    return f"ACCESS_REFUSED - access to {kind} '{name}' in vhost '{w.vhost}' refused for user '{w.user}'"


def _round_trip(ch: BlockingChannel) -> None:
    """A method with a reply, so that an asynchronous refusal (of a publish) has arrived."""
    ch.queue_declare("rd.q", passive=True)


Op = Callable[[BlockingChannel], Any]
CASES: list[tuple[str, Op, tuple[str, str] | None]] = [
    # queue.declare: configure on the queue; a passive declaration needs nothing
    ("declare-allowed", lambda ch: ch.queue_declare("cfg.new"), None),
    ("declare-refused", lambda ch: ch.queue_declare("other.new"), ("queue", "other.new")),
    ("declare-passive", lambda ch: ch.queue_declare("other.q", passive=True), None),
    (
        "declare-dlx-allowed",
        lambda ch: ch.queue_declare("cfg.dl", arguments={"x-dead-letter-exchange": "wr.x"}),
        None,
    ),
    (
        "declare-dlx-refused",  # write on the dead-letter exchange
        lambda ch: ch.queue_declare("cfg.dl", arguments={"x-dead-letter-exchange": "other.x"}),
        ("exchange", "other.x"),
    ),
    # queue.delete: configure
    ("delete-allowed", lambda ch: ch.queue_delete("cfg.q"), None),
    ("delete-refused", lambda ch: ch.queue_delete("other.q"), ("queue", "other.q")),
    ("delete-missing-refused", lambda ch: ch.queue_delete("nothing"), ("queue", "nothing")),
    # queue.purge: read
    ("purge-allowed", lambda ch: ch.queue_purge("rd.q"), None),
    ("purge-refused", lambda ch: ch.queue_purge("other.q"), ("queue", "other.q")),
    # queue.bind / unbind: write on the queue, read on the exchange
    ("bind-allowed", lambda ch: ch.queue_bind("wr.q", "rd.x", "k"), None),
    ("bind-refused-queue", lambda ch: ch.queue_bind("rd.q", "rd.x", "k"), ("queue", "rd.q")),
    ("bind-refused-exchange", lambda ch: ch.queue_bind("wr.q", "other.x", "k"), ("exchange", "other.x")),
    ("unbind-allowed", lambda ch: ch.queue_unbind("wr.q", "rd.x", "k"), None),
    ("unbind-refused", lambda ch: ch.queue_unbind("other.q", "rd.x", "k"), ("queue", "other.q")),
    # exchange.declare / delete: configure; AE: write on the alternate
    ("xdeclare-allowed", lambda ch: ch.exchange_declare("cfg.newx", "fanout"), None),
    ("xdeclare-refused", lambda ch: ch.exchange_declare("other.newx", "fanout"), ("exchange", "other.newx")),
    ("xdeclare-passive", lambda ch: ch.exchange_declare("other.x", passive=True), None),
    (
        "xdeclare-ae-refused",
        lambda ch: ch.exchange_declare("cfg.ae", "fanout", arguments={"alternate-exchange": "other.x"}),
        ("exchange", "other.x"),
    ),
    ("xdelete-allowed", lambda ch: ch.exchange_delete("cfg.x"), None),
    ("xdelete-refused", lambda ch: ch.exchange_delete("other.x"), ("exchange", "other.x")),
    # exchange.bind: write on the destination, read on the source
    ("xbind-allowed", lambda ch: ch.exchange_bind("wr.x", "rd.x", "k"), None),
    (
        "xbind-refused-destination",
        lambda ch: ch.exchange_bind("other.x", "rd.x", "k"),
        ("exchange", "other.x"),
    ),
    ("xbind-refused-source", lambda ch: ch.exchange_bind("wr.x", "other.x", "k"), ("exchange", "other.x")),
    ("xunbind-refused", lambda ch: ch.exchange_unbind("rd.x", "wr.x", "k"), ("exchange", "rd.x")),
    # basic.publish: write on the exchange, the default one being amq.default; checked
    # before the exchange is looked up
    ("publish-allowed", lambda ch: (ch.basic_publish("wr.x", "k", b"m"), _round_trip(ch)), None),
    (
        "publish-default-refused",
        lambda ch: (ch.basic_publish("", "rd.q", b"m"), _round_trip(ch)),
        ("exchange", "amq.default"),
    ),
    (
        "publish-refused",
        lambda ch: (ch.basic_publish("other.x", "k", b"m"), _round_trip(ch)),
        ("exchange", "other.x"),
    ),
    (
        "publish-missing-refused",
        lambda ch: (ch.basic_publish("nope.x", "k", b"m"), _round_trip(ch)),
        ("exchange", "nope.x"),
    ),
    # basic.get / consume: read
    ("get-allowed", lambda ch: ch.basic_get("rd.q"), None),
    ("get-refused", lambda ch: ch.basic_get("other.q"), ("queue", "other.q")),
    ("consume-allowed", lambda ch: ch.basic_consume("rd.q", lambda *a: None), None),
    ("consume-refused", lambda ch: ch.basic_consume("wr.q", lambda *a: None), ("queue", "wr.q")),
]


@pytest.mark.parametrize(("op", "refused"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_each_operation_needs_its_permission(world: World, op: Op, refused: tuple[str, str] | None) -> None:
    conn = world.connect()
    try:
        ch = conn.channel()
        if refused is None:
            op(ch)
            _round_trip(ch)
            return
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
            op(ch)
        assert caught.value.reply_code == 403
        assert caught.value.reply_text == _refusal(world, *refused)
        assert conn.is_open  # a channel error only
    finally:
        if conn.is_open:
            conn.close()


def test_a_server_named_queue_needs_configure_on_its_amq_gen_name(world: World) -> None:
    conn = world.connect()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
        conn.channel().queue_declare("")
    assert caught.value.reply_code == 403
    text = caught.value.reply_text
    assert text.startswith("ACCESS_REFUSED - access to queue 'amq.gen-")
    assert text.endswith(f"' in vhost '{world.vhost}' refused for user '{world.user}'")
    conn.close()


def test_the_reserved_prefix_is_refused_before_the_permission(world: World) -> None:
    conn = world.connect()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
        conn.channel().queue_declare("amq.mine")
    assert (
        caught.value.reply_text == "ACCESS_REFUSED - queue name 'amq.mine' contains reserved prefix 'amq.*'"
    )
    conn.close()


def _refused_open(url: str, code: int, text: str) -> None:
    """Opening ``url`` fails with connection.close(code, text) (pika keeps only its words)."""
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as caught:
        connect(url)
    assert f"ConnectionClosedByBroker: ({code}) " in str(caught.value)
    assert text in str(caught.value)


def test_an_unknown_vhost_and_one_without_permissions_are_not_allowed(world: World) -> None:
    password = "pw-" + world.user
    _refused_open(
        world.site.url(world.user, password, "no-such-vhost"),
        530,
        "NOT_ALLOWED - vhost no-such-vhost not found",
    )
    _refused_open(
        world.site.url(world.user, password, "/"),
        530,
        f"NOT_ALLOWED - access to vhost '/' refused for user '{world.user}'",
    )


def test_a_wrong_password_is_refused_as_rabbitmq_refuses_it(world: World) -> None:
    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as caught:
        connect(world.site.url(world.user, "wrong", world.vhost))
    assert "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN" in str(caught.value)


def test_the_connection_limit_of_a_vhost(world: World) -> None:
    world.site.admin.set_vhost_limits(world.vhost, {"max-connections": 1})
    first = world.connect()
    _refused_open(
        world.site.url(world.user, "pw-" + world.user, world.vhost),
        530,
        f"NOT_ALLOWED - access to vhost '{world.vhost}' refused for user '{world.user}': "
        "connection limit (1) is reached",
    )
    first.close()
    wait_until(lambda: _opens(world), "the closed connection to leave the count")


def _opens(world: World) -> bool:
    try:
        world.connect().close()
    except pika.exceptions.AMQPConnectionError:
        return False
    return True


def test_the_queue_limit_of_a_vhost(world: World) -> None:
    world.site.admin.set_vhost_limits(world.vhost, {"max-queues": 4})  # the four made already
    conn = world.connect()
    ch = conn.channel()
    ch.queue_declare("cfg.q")  # redeclaring an existing queue is no new queue
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
        ch.queue_declare("cfg.more")
    assert (caught.value.reply_code, caught.value.reply_text) == (
        406,
        "PRECONDITION_FAILED - cannot declare queue 'cfg.more': "
        f"queue limit in vhost '{world.vhost}' (4) is reached",
    )
    ch = conn.channel()
    ch.queue_delete("cfg.q")
    ch.queue_declare("cfg.more")  # room again
    conn.close()


def _closed_by_broker(conn: BlockingConnection) -> pika.exceptions.ConnectionClosedByBroker:
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as caught:
        wait_until(lambda: False, "the connection to be closed", conn)
    return caught.value


def test_deleting_a_vhost_closes_its_connections_and_deletes_its_queues(world: World) -> None:
    conn = world.connect(world.owner)
    world.site.admin.delete_vhost(world.vhost)
    closed = _closed_by_broker(conn)
    assert (closed.reply_code, closed.reply_text) == (
        320,
        f"CONNECTION_FORCED - vhost '{world.vhost}' is deleted",
    )
    world.site.admin.add_vhost(world.vhost)  # the same name again: empty
    world.site.admin.set_permissions(world.vhost, world.owner, ".*", ".*", ".*")
    again = world.connect(world.owner)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
        again.channel().queue_declare("cfg.q", passive=True)
    assert caught.value.reply_code == 404
    again.close()


def test_deleting_a_user_closes_its_connections(world: World) -> None:
    conn = world.connect()
    world.site.admin.delete_user(world.user)
    closed = _closed_by_broker(conn)
    assert (closed.reply_code, closed.reply_text) == (
        320,
        f"CONNECTION_FORCED - user '{world.user}' is deleted",
    )


def _outward_address() -> str | None:
    """An address of this machine that is not a loopback one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(s.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@jackalope_only
@pytest.mark.parametrize("loopback_users", ["guest", "none"])
def test_guest_logs_in_only_via_localhost_unless_configured(tmp_path: Path, loopback_users: str) -> None:
    address = _outward_address()
    if address is None:
        pytest.skip("no non-loopback address to connect from (the rule is tested in tests/core)")
    from jackalope import Broker

    broker = Broker(tmp_path / "data", host="0.0.0.0", loopback_users=loopback_users).start()
    try:
        _, port = host_port(broker.amqp_url)
        connect(f"amqp://guest:guest@127.0.0.1:{port}/").close()
        outside = f"amqp://guest:guest@{address}:{port}/"
        if loopback_users == "none":
            connect(outside).close()
            return
        with pytest.raises(pika.exceptions.ProbableAuthenticationError) as caught:
            connect(outside)
        assert "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN" in str(caught.value)
        admin = HttpAdmin(broker.http_url)
        admin.add_user("alice", "pw", "administrator")
        admin.set_permissions("/", "alice", ".*", ".*", ".*")
        connect(f"amqp://alice:pw@{address}:{port}/").close()  # only guest is kept in
        status, answer = HttpAdmin(f"http://{address}:{host_port(broker.http_url)[1]}").request(
            "GET", "/whoami"
        )
        assert (status, answer) == (
            401,
            {"error": "not_authorized", "reason": "User can only log in via localhost"},
        )
    finally:
        bounded(broker.stop, "stopping the embedded broker", 2 * WAIT)
