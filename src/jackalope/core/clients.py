"""The clients connected to the broker, whatever their protocol: what the management API,
the metrics and the UI list as connections, channels and consumers.

A front-end registers each connection it accepts (:meth:`Clients.opened`) and forgets it when
it closes; the objects it registers answer the read-only :class:`ClientConnection` and
:class:`ClientChannel` protocols, and :meth:`ClientConnection.close` is how an operator
closes one.  The registry holds no state of the connections beyond the set of them, and
counts opens and closes as RabbitMQ's ``*_opened_total`` and ``*_closed_total`` metrics do.
The channels' :class:`~jackalope.core.stats.MessageStats` roll up into the broker's totals:
those of closed channels are added into :attr:`Clients.retired` when they close, so a total
is the retired counts plus the live channels' counts, and the hot paths count once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from jackalope.core.stats import MessageStats


class ClientConsumer(Protocol):
    """A subscription (basic.consume) as the management API shows it."""

    @property
    def tag(self) -> str: ...
    @property
    def queue_name(self) -> str: ...
    @property
    def ack_required(self) -> bool: ...
    @property
    def exclusive(self) -> bool: ...
    @property
    def prefetch_count(self) -> int: ...
    @property
    def arguments(self) -> dict[str, Any]: ...


class ClientChannel(Protocol):
    @property
    def number(self) -> int: ...
    @property
    def stats(self) -> MessageStats: ...
    @property
    def prefetch_count(self) -> int: ...
    @property
    def global_prefetch_count(self) -> int: ...
    @property
    def unacked_count(self) -> int: ...
    @property
    def confirm(self) -> bool: ...
    @property
    def transactional(self) -> bool: ...
    def client_consumers(self) -> Sequence[ClientConsumer]: ...


class ClientConnection(Protocol):
    @property
    def name(self) -> str: ...  # RabbitMQ's "peer_host:peer_port -> host:port"
    @property
    def protocol_name(self) -> str: ...  # "AMQP 0-9-1", "Kafka"
    @property
    def user(self) -> str: ...
    @property
    def vhost_name(self) -> str | None: ...
    @property
    def peer_host(self) -> str | None: ...
    @property
    def peer_port(self) -> int | None: ...
    @property
    def host(self) -> str | None: ...
    @property
    def port(self) -> int | None: ...
    @property
    def connected_at(self) -> int: ...  # ms since the epoch
    @property
    def client_properties(self) -> dict[str, Any]: ...
    @property
    def tls(self) -> bool: ...
    @property
    def auth_mechanism(self) -> str: ...
    @property
    def timeout(self) -> int: ...  # heartbeat, seconds
    @property
    def frame_max(self) -> int: ...
    @property
    def channel_max(self) -> int: ...
    @property
    def recv_oct(self) -> int: ...
    @property
    def send_oct(self) -> int: ...
    @property
    def blocked(self) -> bool: ...
    def client_channels(self) -> Sequence[ClientChannel]: ...
    def close(self, reason: str) -> None: ...


class Clients:
    def __init__(self) -> None:
        self._connections: dict[int, ClientConnection] = {}
        self.retired = MessageStats()  # the counts of channels that have closed
        self._total = MessageStats()
        self.connections_opened = 0
        self.connections_closed = 0
        self.channels_opened = 0
        self.channels_closed = 0

    def opened(self, connection: ClientConnection) -> None:
        self._connections[id(connection)] = connection
        self.connections_opened += 1

    def closed(self, connection: ClientConnection) -> None:
        if self._connections.pop(id(connection), None) is not None:
            self.connections_closed += 1

    def channel_opened(self) -> None:
        self.channels_opened += 1

    def channel_closed(self, stats: MessageStats) -> None:
        self.channels_closed += 1
        self.retired.add(stats)

    @property
    def connections(self) -> list[ClientConnection]:
        return list(self._connections.values())

    def connection(self, name: str) -> ClientConnection | None:
        for connection in self._connections.values():
            if connection.name == name:
                return connection
        return None

    def channels(self) -> Iterator[tuple[ClientConnection, ClientChannel]]:
        for connection in list(self._connections.values()):
            for channel in connection.client_channels():
                yield connection, channel

    def totals(self) -> MessageStats:
        """The whole broker's counts since it started, closed channels' and live ones' (the
        same object each time, so that the rate sampler keeps its rates)."""
        total = self._total
        total.set_sum([self.retired, *(channel.stats for _, channel in self.channels())])
        return total
