"""The protocol-independent broker: virtual hosts, users, and the named logs beneath them.

Virtual hosts are created and deleted here (deleting one deletes its queues and exchanges
and closes its connections, as in RabbitMQ); their exchanges, queues, bindings, description,
tags and limits are stored in ``definitions.json``.  Users and permissions are
:class:`~jackalope.core.access.AccessControl`'s (``users.json``).  Front-ends log users in
(:meth:`BrokerCore.login`), open a vhost for a connection (:meth:`BrokerCore.open_connection`,
RabbitMQ's connection.open rules) and check operations with the user's
:class:`~jackalope.core.permissions.Grant`.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from jackalope.core.access import AccessControl, LoginRefused
from jackalope.core.acls import Acls
from jackalope.core.alarms import Alarms
from jackalope.core.clients import Clients
from jackalope.core.dead_letters import DeathStamp
from jackalope.core.delayed import ReleaseStamp
from jackalope.core.errors import AccessRefused, NotAllowed, NotFound, PreconditionFailed
from jackalope.core.groups import GroupCoordinator
from jackalope.core.permissions import Grant, Permission
from jackalope.core.queue import Defer, Timer
from jackalope.core.stats import MessageStats, QueueCounts, RateSampler
from jackalope.core.stream import MessageEncoder, plain_record
from jackalope.core.topic_routes import RecordDecoder, TopicRoutes
from jackalope.core.topics import Topics
from jackalope.core.transactions import TransactionCoordinator
from jackalope.core.users import User
from jackalope.core.vhost import LIMITS, STREAM_VHOST, VirtualHost
from jackalope.storage import LogManager
from jackalope.storage.files import atomic_write

DEFINITIONS_FILE = "definitions.json"
DEFAULT_VHOST = "/"  # the first start's; Kafka's topics and the streams live in it


class BrokerCore:
    def __init__(
        self,
        logs: LogManager,
        data_dir: Path | None = None,
        default_user: tuple[str, str] = ("guest", "guest"),
        loopback_users: Sequence[str] = ("guest",),
        defer: Defer | None = None,
        topic_defaults: dict[str, int] | None = None,
        transient_logs: LogManager | None = None,
        timer: Timer | None = None,
        consumer_timeout_ms: int = 30 * 60 * 1000,
    ) -> None:
        self.logs = logs
        self.timer = timer  # the event loop's call_later (queue expiry)
        self.consumer_timeout_ms = consumer_timeout_ms  # of queues that set none (0: none)
        self.transient_logs = transient_logs  # where non-durable queues page their backlog
        self.alarms = Alarms()
        self.defer = defer
        self.data_dir = data_dir
        self.access = AccessControl(data_dir, loopback_users)
        self.acls = Acls(data_dir)  # Kafka's ACL bindings (acls.json)
        self.default_user = default_user  # created on the first start (no users.json yet)
        self.vhosts: dict[str, VirtualHost] = {}
        # The front-ends close a deleted vhost's connections (RabbitMQ: "vhost 'x' is deleted").
        self.on_vhost_deleted: list[Callable[[str], None]] = []
        self.topics = Topics(logs, data_dir, **(topic_defaults or {}))
        # The Kafka consumer groups' coordinator, when the Kafka front-end runs.
        self.groups: GroupCoordinator | None = None
        # The Kafka transaction coordinator, when the Kafka front-end runs.
        self.transactions: TransactionCoordinator | None = None
        self.node_name = f"jackalope@{socket.gethostname()}"  # RabbitMQ's rabbit@<host> shape
        self.clients = Clients()  # the front-ends' connections, channels and consumers
        self.queue_counts = QueueCounts()
        self.rates = RateSampler(self._sampled, timer)
        self._stream_encoder: MessageEncoder = plain_record
        self._death_stamp: DeathStamp | None = None
        self._release_stamp: ReleaseStamp | None = None
        self._loading = True  # nothing to save until the stored definitions are loaded
        self.add_vhost(DEFAULT_VHOST)
        self._loading = False
        self.topic_routes = TopicRoutes(self.vhosts[STREAM_VHOST])
        self.topics.on_append = self.topic_routes.appended
        self.topics.on_commit = self.topic_routes.committed

    # -- virtual hosts and users -----------------------------------------------------------------

    def add_vhost(self, name: str) -> VirtualHost:
        vhost = self.vhosts.get(name)
        if vhost is None:
            vhost = self.vhosts[name] = VirtualHost(
                name,
                self.logs,
                self.save_definitions,
                self.defer,
                topics=self.topics,
                transient_logs=self.transient_logs,
                timer=self.timer,
                counts=self.queue_counts,
            )
            vhost.stream_encoder = self._stream_encoder
            vhost.death_stamp = self._death_stamp
            vhost.release_stamp = self._release_stamp
            vhost.consumer_timeout_ms = self.consumer_timeout_ms
            self.save_definitions()
        return vhost

    @property
    def stream_encoder(self) -> MessageEncoder:
        """How a published message becomes a stream's record: a front-end's business (the
        AMQP front-end sets its mapping), so the core only holds it for its virtual hosts."""
        return self._stream_encoder

    @stream_encoder.setter
    def stream_encoder(self, encoder: MessageEncoder) -> None:
        self._stream_encoder = encoder
        for vhost in self.vhosts.values():
            vhost.stream_encoder = encoder

    @property
    def record_decoder(self) -> RecordDecoder | None:
        """How a topic's record becomes a message routed by ``amq.kafka`` (the AMQP mapping)."""
        return self.topic_routes.decode

    @record_decoder.setter
    def record_decoder(self, decoder: RecordDecoder | None) -> None:
        self.topic_routes.decode = decoder

    @property
    def death_stamp(self) -> DeathStamp | None:
        """How a dead letter's death is written into it (the AMQP front-end's x-death)."""
        return self._death_stamp

    @death_stamp.setter
    def death_stamp(self, stamp: DeathStamp | None) -> None:
        self._death_stamp = stamp
        for vhost in self.vhosts.values():
            vhost.death_stamp = stamp

    @property
    def release_stamp(self) -> ReleaseStamp | None:
        """How a due delayed message's properties are rewritten (the AMQP front-end's x-delay)."""
        return self._release_stamp

    @release_stamp.setter
    def release_stamp(self, stamp: ReleaseStamp | None) -> None:
        self._release_stamp = stamp
        for vhost in self.vhosts.values():
            vhost.release_stamp = stamp

    def _sampled(self) -> Iterator[MessageStats]:
        """What the rate sampler samples: the totals, every queue, exchange and channel."""
        yield self.clients.totals()
        for vhost in list(self.vhosts.values()):
            for queue in vhost.queues.values():
                yield queue.stats
            for stream in vhost.streams.values():
                yield stream.stats
            for exchange in vhost.exchanges.values():
                yield exchange.stats
            yield vhost.default_exchange_stats
        for _, channel in self.clients.channels():
            yield channel.stats

    def vhost(self, name: str) -> VirtualHost:
        found = self.vhosts.get(name)
        if found is None:
            raise NotFound(f"no vhost '{name}'")
        return found

    def put_vhost(self, name: str, description: str | None = None, tags: Sequence[str] | None = None) -> bool:
        """Create a vhost or update its description and tags; returns whether it is new."""
        if not name:
            raise PreconditionFailed("a vhost needs a non-empty name")
        new = name not in self.vhosts
        vhost = self.add_vhost(name)
        if description is not None:
            vhost.description = description
        if tags is not None:
            vhost.tags = tuple(tags)
        self.save_definitions()
        return new

    def delete_vhost(self, name: str) -> None:
        """Delete a vhost with its queues (and their messages), exchanges and permissions; its
        connections are closed by the front-ends."""
        vhost = self.vhost(name)
        if name == DEFAULT_VHOST:
            raise AccessRefused(
                f"vhost '{name}' cannot be deleted: Kafka's topics and the stream queues live in it"
            )
        vhost.delete_all()
        del self.vhosts[name]
        self.save_definitions()
        self.access.vhost_deleted(name)
        for callback in list(self.on_vhost_deleted):
            callback(name)

    def set_vhost_limit(self, name: str, limit: str, value: int) -> None:
        """RabbitMQ's vhost limits; a negative value means no limit."""
        vhost = self.vhost(name)
        if limit not in LIMITS:
            raise PreconditionFailed(f"unknown vhost limit '{limit}'; known: {', '.join(LIMITS)}")
        if value < 0:
            vhost.limits.pop(limit, None)
        else:
            vhost.limits[limit] = value
        self.save_definitions()

    def clear_vhost_limit(self, name: str, limit: str) -> None:
        vhost = self.vhost(name)
        if limit not in LIMITS:
            raise PreconditionFailed(f"unknown vhost limit '{limit}'; known: {', '.join(LIMITS)}")
        vhost.limits.pop(limit, None)
        self.save_definitions()

    # -- users, logins and permissions -----------------------------------------------------------

    def authenticate(self, user: str, password: str) -> bool:
        """Whether ``password`` is ``user``'s (the loopback rule is :meth:`login`'s)."""
        return self.access.authenticate(user, password)

    def user_exists(self, name: str) -> bool:
        return self.access.user_exists(name)

    def login(self, user: str, password: str, peer_host: str | None) -> User:
        """The user, or :class:`LoginRefused` (the reason is for the log): a wrong password,
        or a user of ``loopback_users`` connecting from elsewhere than a loopback address."""
        return self.access.login(user, password, peer_host)

    def check_login_source(self, user: str, peer_host: str | None) -> None:
        """For logins without a password (TLS EXTERNAL): LoginRefused for an unknown user or
        one whom the loopback rule keeps out."""
        if not self.access.user_exists(user):
            raise LoginRefused(f"user '{user}' - not found")
        self.access.check_source(user, peer_host)

    def open_connection(self, user: str, vhost_name: str) -> VirtualHost:
        """connection.open, as RabbitMQ decides it: the vhost must exist, be under its
        connection limit and be one the user has permissions in (NotAllowed otherwise).  The
        connection is counted until :meth:`connection_closed`."""
        vhost = self.vhosts.get(vhost_name)
        if vhost is None:
            raise NotAllowed(f"vhost {vhost_name} not found")
        limit = vhost.limits.get("max-connections")
        if limit is not None and vhost.connection_count >= limit:
            raise NotAllowed(
                f"access to vhost '{vhost_name}' refused for user '{user}': "
                f"connection limit ({limit}) is reached"
            )
        self.access.check_vhost_access(user, vhost_name)
        vhost.connection_count += 1
        return vhost

    def connection_closed(self, vhost: VirtualHost) -> None:
        vhost.connection_count = max(0, vhost.connection_count - 1)

    def grant(self, user: str, vhost: str) -> Grant:
        return Grant(self.access, user, vhost)

    def set_permission(self, user: str, vhost: str, permission: Permission) -> bool:
        """Returns whether the user had no permission in ``vhost`` before."""
        self.vhost(vhost)
        return self.access.set_permission(user, vhost, permission)

    # -- definitions ---------------------------------------------------------------------------

    def save_definitions(self) -> None:
        """Write every durable exchange, queue and binding (atomically, fsynced)."""
        if self.data_dir is None or self._loading:
            return
        data = {
            "vhosts": {
                name: {
                    **vhost.definitions(),
                    "description": vhost.description,
                    "tags": list(vhost.tags),
                    "limits": vhost.limits,
                }
                for name, vhost in self.vhosts.items()
            }
        }
        atomic_write(self.data_dir / DEFINITIONS_FILE, json.dumps(data, indent=1, default=str).encode())

    def load_definitions(self) -> None:
        """The stored vhosts (and all in them), users and permissions; on the first start
        (no users stored yet) the default user, administrator with every permission on "/"."""
        self.topics.load()
        self._load_vhosts()
        self.acls.load()
        if not self.access.load(self.vhosts):
            name, password = self.default_user
            self.access.create_default(name, password, DEFAULT_VHOST)

    def _load_vhosts(self) -> None:
        if self.data_dir is None:
            return
        try:
            data = json.loads((self.data_dir / DEFINITIONS_FILE).read_text())
        except FileNotFoundError:
            return
        self._loading = True
        try:
            for name, definitions in data.get("vhosts", {}).items():
                vhost = self.add_vhost(name)
                vhost.load_definitions(definitions)
                vhost.description = str(definitions.get("description", ""))
                vhost.tags = tuple(str(t) for t in definitions.get("tags", ()))
                vhost.limits = {k: int(v) for k, v in definitions.get("limits", {}).items() if k in LIMITS}
        finally:
            self._loading = False

    def close(self) -> None:
        self.rates.stop()
        for vhost in self.vhosts.values():
            vhost.close()
