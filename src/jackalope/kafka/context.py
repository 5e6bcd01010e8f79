"""What request handlers see: the broker-wide Kafka view and the request's connection."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from jackalope.core.producer_ids import ProducerIds
from jackalope.core.topics import Topics
from jackalope.kafka.fetch_sessions import FetchSessionCache

if TYPE_CHECKING:
    from jackalope.core import BrokerCore
    from jackalope.core.groups import GroupCoordinator
    from jackalope.core.transactions import TransactionCoordinator

NODE_ID = 0


@dataclass
class KafkaBroker:
    """Shared by every connection; holds references to core state, never state of its own."""

    core: BrokerCore
    topics: Topics
    groups: GroupCoordinator
    cluster_id: str
    advertised_host: str = "127.0.0.1"
    advertised_port: int = 9092
    listen_address: str = ""  # host:port the Kafka listener is bound to
    tls: bool = False
    auto_create_topics: bool = True
    max_request_bytes: int = 100 * 1024 * 1024
    sasl_mechanisms: tuple[str, ...] = ()
    producer_ids: ProducerIds = field(default_factory=lambda: ProducerIds(None))
    transactions: TransactionCoordinator | None = None
    fetch_sessions: FetchSessionCache = field(default_factory=FetchSessionCache)  # KIP-227
    connections_max_reauth_ms: int = 0  # KIP-368 SASL session lifetime (0: no expiry)
    allow_everyone_if_no_acl_found: bool = False  # Kafka's authorizer setting

    @property
    def node_id(self) -> int:
        return NODE_ID

    @property
    def security_protocol(self) -> str:
        """Kafka's name for this listener's protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."""
        if self.sasl_mechanisms:
            return "SASL_SSL" if self.tls else "SASL_PLAINTEXT"
        return "SSL" if self.tls else "PLAINTEXT"


class ConnectionState(Protocol):
    """The parts of a connection handlers may read or change (SASL authenticates it)."""

    client_host: str
    principal: str | None
    auth_mechanism: str
    authenticated: bool
    sasl_state: Any
    sasl_raw: bool  # after SaslHandshake v0: frames are bare SASL tokens, not requests
    session_expires: float | None  # KIP-368: time.monotonic() the SASL session ends (None: never)
    reauth_started: float  # time.monotonic() of the latest re-authentication's start (0: none)
    reauthentications: int  # successful re-authentications of the connection
    zero_copy: bool  # fetched batches may be file ranges (os.sendfile) rather than bytes

    def close(self, reason: str = ...) -> None: ...

    async def wait_for_alarms(self) -> None:
        """Return once no resource alarm holds publishers back (at once if none does)."""
        ...


@dataclass
class RequestContext:
    broker: KafkaBroker
    connection: ConnectionState
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
