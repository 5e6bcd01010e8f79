"""One Kafka listener: accepts connections and hands each a :class:`KafkaConnection`.

A broker has one of these per listener (Kafka's ``listeners``); they share one
:class:`KafkaBroker`, and each connection knows the :class:`Listener` it came in on.
"""

from __future__ import annotations

import asyncio
import ssl

from jackalope.kafka.connection import KafkaConnection
from jackalope.kafka.context import KafkaBroker, Listener


class KafkaServer:
    def __init__(
        self, broker: KafkaBroker, ssl_context: ssl.SSLContext | None = None, listener: Listener | None = None
    ) -> None:
        self.broker = broker
        self.listener = listener if listener is not None else broker.listeners[0]
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._connections: set[KafkaConnection] = set()

    async def bind(self, host: str, port: int) -> int:
        """Bind the port (not accepting yet): the bound port, for the listener's addresses."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: KafkaConnection(self.broker, self._connections, self.listener),
            host,
            port,
            reuse_address=True,
            ssl=self._ssl,
            start_serving=False,
        )
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def serve(self) -> None:
        """Start accepting connections (after :meth:`bind`)."""
        assert self._server is not None
        await self._server.start_serving()

    async def start(self, host: str, port: int) -> int:
        port = await self.bind(host, port)
        await self.serve()
        return port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
