"""What request handlers see: the broker-wide Kafka view and the request's connection."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from jackalope.core.topics import Topics

if TYPE_CHECKING:
    from jackalope.core import BrokerCore
    from jackalope.core.groups import GroupCoordinator

NODE_ID = 0


@dataclass
class KafkaBroker:
    """Shared by every connection; holds references to core state, never state of its own."""

    core: BrokerCore
    topics: Topics
    groups: GroupCoordinator | None
    cluster_id: str
    advertised_host: str = "127.0.0.1"
    advertised_port: int = 9092
    auto_create_topics: bool = True
    max_request_bytes: int = 100 * 1024 * 1024
    sasl_mechanisms: tuple[str, ...] = ()
    producer_ids: ProducerIds = field(default_factory=lambda: ProducerIds(None))

    @property
    def node_id(self) -> int:
        return NODE_ID


class ProducerIds:
    """Unique producer ids across restarts: blocks of ids are reserved in a file before use."""

    BLOCK = 1000

    def __init__(self, path: Path | None) -> None:
        self._path = path
        start = 0
        if path is not None:
            try:
                start = int(path.read_text())
            except (FileNotFoundError, ValueError):
                start = 0
        self._next = start
        self._reserved = start

    def allocate(self) -> int:
        pid = self._next
        if pid >= self._reserved:
            self._reserved = pid + self.BLOCK
            if self._path is not None:
                tmp = self._path.with_name(self._path.name + ".tmp")
                tmp.write_text(str(self._reserved))
                tmp.replace(self._path)
        self._next += 1
        return pid


class ConnectionState(Protocol):
    """The parts of a connection handlers may read or change (SASL authenticates it)."""

    client_host: str
    principal: str | None
    authenticated: bool
    sasl_state: Any

    def close(self, reason: str = ...) -> None: ...


@dataclass
class RequestContext:
    broker: KafkaBroker
    connection: ConnectionState
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
