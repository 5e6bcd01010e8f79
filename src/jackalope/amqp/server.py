"""The AMQP 0-9-1 listeners (plaintext, and amqps over TLS): accept connections and close them
on shutdown."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Final

from jackalope.amqp import stream_records
from jackalope.amqp.connection import AmqpConnection
from jackalope.amqp.dead_letters import stamp_death
from jackalope.amqp.delayed import release_delayed
from jackalope.core import BrokerCore

log = logging.getLogger(__name__)

TLS_HANDSHAKE_TIMEOUT: Final = 5.0  # seconds, RabbitMQ's ssl_handshake_timeout


def install_codecs(core: BrokerCore) -> None:
    """Give the core what it needs of AMQP's message format: stream records, dead letters'
    x-death, due delayed messages' x-delay, topic records routed by amq.kafka. Messages at rest
    are AMQP-encoded, so the server installs these before the stored definitions load (a
    recovered delayed message may be due at once), whether an AMQP listener runs or not."""
    core.stream_encoder = stream_records.message_record
    core.record_decoder = stream_records.bridged_message
    core.death_stamp = stamp_death
    core.release_stamp = release_delayed


class AmqpServer:
    def __init__(self, core: BrokerCore, *, max_message_bytes: int = 128 * 1024 * 1024) -> None:
        self.core = core
        install_codecs(core)
        self.max_message_bytes = max_message_bytes
        self.connections: set[AmqpConnection] = set()
        self._servers: list[asyncio.Server] = []
        core.on_vhost_deleted.append(self._vhost_deleted)
        core.access.on_user_deleted.append(self._user_deleted)

    def _vhost_deleted(self, name: str) -> None:
        """RabbitMQ closes a deleted vhost's connections with 320 CONNECTION_FORCED."""
        for connection in list(self.connections):
            if connection.vhost is not None and connection.vhost.name == name:
                connection.force_close(f"vhost '{name}' is deleted")

    def _user_deleted(self, name: str) -> None:
        for connection in list(self.connections):
            if connection.user == name:
                connection.force_close(f"user '{name}' is deleted")

    async def start(self, host: str, port: int, *, tls: ssl.SSLContext | None = None) -> int:
        """Listen (over TLS with a ``tls`` context); return the bound port.  May be called once
        per listener; :meth:`stop` stops them all."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: AmqpConnection(self),
            host,
            port,
            reuse_address=True,
            backlog=1024,
            ssl=tls,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT if tls is not None else None,
        )
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop accepting, then close every connection with 320 CONNECTION_FORCED."""
        for server in self._servers:
            server.close()
        for connection in list(self.connections):
            connection.force_close("broker shutdown")
        for _ in range(50):
            if not self.connections:
                break
            await asyncio.sleep(0.02)
        for connection in list(self.connections):
            connection.abort()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        self.core.on_vhost_deleted.remove(self._vhost_deleted)
        self.core.access.on_user_deleted.remove(self._user_deleted)
