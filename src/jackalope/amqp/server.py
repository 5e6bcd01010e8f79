"""The AMQP 0-9-1 listener: accepts connections and closes them on shutdown."""

from __future__ import annotations

import asyncio
import logging

from jackalope.amqp import stream_records
from jackalope.amqp.connection import AmqpConnection
from jackalope.amqp.dead_letters import stamp_death
from jackalope.core import BrokerCore

log = logging.getLogger(__name__)


class AmqpServer:
    def __init__(self, core: BrokerCore, *, max_message_bytes: int = 128 * 1024 * 1024) -> None:
        self.core = core
        core.stream_encoder = stream_records.message_record
        core.death_stamp = stamp_death
        self.max_message_bytes = max_message_bytes
        self.connections: set[AmqpConnection] = set()
        self._server: asyncio.base_events.Server | None = None
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

    async def start(self, host: str, port: int) -> int:
        """Listen; return the bound port."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: AmqpConnection(self), host, port, reuse_address=True, backlog=1024
        )
        self._server = server
        return int(server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop accepting, then close every connection with 320 CONNECTION_FORCED."""
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.force_close("broker shutdown")
        for _ in range(50):
            if not self.connections:
                break
            await asyncio.sleep(0.02)
        for connection in list(self.connections):
            connection.abort()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self.core.on_vhost_deleted.remove(self._vhost_deleted)
        self.core.access.on_user_deleted.remove(self._user_deleted)
