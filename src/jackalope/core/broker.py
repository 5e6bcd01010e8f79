"""The protocol-independent broker: virtual hosts, users, and the named logs beneath them."""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jackalope.core.alarms import Alarms
from jackalope.core.dead_letters import DeathStamp
from jackalope.core.delayed import ReleaseStamp
from jackalope.core.errors import NotFound
from jackalope.core.queue import Defer, Timer
from jackalope.core.stream import MessageEncoder, plain_record
from jackalope.core.topics import Topics
from jackalope.core.vhost import VirtualHost
from jackalope.storage import AppendInfo, Log, LogConfig, LogManager, Record
from jackalope.storage.files import atomic_write

DEFINITIONS_FILE = "definitions.json"
# topics.log_name, vhost.queue_log_name and delayed.delayed_log_name
OWNED_PREFIXES = (
    ("topic/", "a topic or stream"),
    ("queue/", "a queue"),
    ("queue.p", "a priority queue"),  # its levels above 0
    ("delayed/", "a delayed-message exchange"),
)
GROUPS_LOG = "__consumer_offsets"


class LogNotFound(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"no log named {self.name!r}"


class BrokerCore:
    def __init__(
        self,
        logs: LogManager,
        data_dir: Path | None = None,
        users: dict[str, str] | None = None,
        defer: Defer | None = None,
        topic_defaults: dict[str, int] | None = None,
        transient_logs: LogManager | None = None,
        timer: Timer | None = None,
    ) -> None:
        self.logs = logs
        self.timer = timer  # the event loop's call_later (queue expiry)
        self.transient_logs = transient_logs  # where non-durable queues page their backlog
        self.alarms = Alarms()
        self.defer = defer
        self.data_dir = data_dir
        self.users = users if users is not None else {"guest": "guest"}
        self.vhosts: dict[str, VirtualHost] = {}
        self.topics = Topics(logs, data_dir, **(topic_defaults or {}))
        self._stream_encoder: MessageEncoder = plain_record
        self._death_stamp: DeathStamp | None = None
        self._release_stamp: ReleaseStamp | None = None
        self._loading = True  # nothing to save until the stored definitions are loaded
        self.add_vhost("/")
        self._loading = False

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
            )
            vhost.stream_encoder = self._stream_encoder
            vhost.death_stamp = self._death_stamp
            vhost.release_stamp = self._release_stamp
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

    def vhost(self, name: str) -> VirtualHost:
        found = self.vhosts.get(name)
        if found is None:
            raise NotFound(f"no vhost '{name}'")
        return found

    def user_exists(self, name: str) -> bool:
        return name in self.users

    def authenticate(self, user: str, password: str) -> bool:
        expected = self.users.get(user)
        return expected is not None and hmac.compare_digest(expected.encode(), password.encode())

    # -- definitions ---------------------------------------------------------------------------

    def save_definitions(self) -> None:
        """Write every durable exchange, queue and binding (atomically, fsynced)."""
        if self.data_dir is None or self._loading:
            return
        data = {"vhosts": {name: vhost.definitions() for name, vhost in self.vhosts.items()}}
        atomic_write(self.data_dir / DEFINITIONS_FILE, json.dumps(data, indent=1, default=str).encode())

    def load_definitions(self) -> None:
        self.topics.load()
        if self.data_dir is None:
            return
        try:
            data = json.loads((self.data_dir / DEFINITIONS_FILE).read_text())
        except FileNotFoundError:
            return
        self._loading = True
        try:
            for name, definitions in data.get("vhosts", {}).items():
                self.add_vhost(name).load_definitions(definitions)
        finally:
            self._loading = False

    def close(self) -> None:
        for vhost in self.vhosts.values():
            vhost.close()

    # -- raw logs (the HTTP API's view of the storage engine) ------------------------------------

    def log(self, name: str) -> Log:
        found = self.logs.get(name)
        if found is None:
            raise LogNotFound(name)
        return found

    def log_owner(self, name: str) -> str | None:
        """What a log named ``name`` belongs to (a topic, a queue, the consumer groups), or None
        for a log of the raw log API.  Owned names are reserved even before the log exists."""
        for prefix, what in OWNED_PREFIXES:
            if name.startswith(prefix):
                return what
        if name == GROUPS_LOG:
            return "the consumer groups"
        return None

    def create_log(self, name: str, overrides: dict[str, Any] | None = None) -> tuple[Log, bool]:
        """Create ``name`` (default config with ``overrides``); return it and whether it is new."""
        existing = self.logs.get(name)
        if existing is not None:
            return existing, False
        config: LogConfig = self.logs.default_config.replace(**(overrides or {}))
        return self.logs.create(name, config), True

    def delete_log(self, name: str) -> None:
        self.log(name)
        self.logs.delete(name)

    async def append(self, name: str, records: Sequence[Record]) -> AppendInfo:
        """Append and wait until the records are durable under the log's policy."""
        target = self.log(name)
        info = target.append(records)
        await self.logs.wait_durable(target, info.last_offset)
        return info

    def describe(self, name: str) -> dict[str, Any]:
        target = self.log(name)
        return {
            "name": name,
            "start_offset": target.start_offset,
            "end_offset": target.end_offset,
            "durable_offset": target.durable_offset,
            "size_bytes": target.size_bytes,
            "segments": target.segment_count,
            "config": target.config.to_json(),
        }
