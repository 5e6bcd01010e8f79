"""The Kafka listener: accepts connections and hands each a :class:`KafkaConnection`."""

from __future__ import annotations

import asyncio
import ssl

from jackalope.kafka.connection import KafkaConnection
from jackalope.kafka.context import KafkaBroker


class KafkaServer:
    def __init__(self, broker: KafkaBroker, ssl_context: ssl.SSLContext | None = None) -> None:
        self.broker = broker
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._connections: set[KafkaConnection] = set()

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: KafkaConnection(self.broker, self._connections),
            host,
            port,
            reuse_address=True,
            ssl=self._ssl,
        )
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
