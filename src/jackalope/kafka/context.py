"""What request handlers see: the broker-wide Kafka view and the request's connection."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from jackalope.core.producer_ids import ProducerIds
from jackalope.core.topics import Topics
from jackalope.kafka.fetch_sessions import FetchSessionCache
from jackalope.kafka.oauthbearer import ValidatorConfig
from jackalope.kafka.share_sessions import ShareSessionCache

if TYPE_CHECKING:
    from jackalope.core import BrokerCore
    from jackalope.core.groups import GroupCoordinator
    from jackalope.core.share import ShareCoordinator
    from jackalope.core.share.partitions import SharePartitions
    from jackalope.core.transactions import TransactionCoordinator
    from jackalope.kafka.broker_configs import DynamicBrokerConfigs

NODE_ID = 0


@dataclass
class Listener:
    """One Kafka listener of the broker (Kafka's listener name, security protocol, bound and
    advertised addresses): the one a request came in on answers Metadata and the like."""

    name: str = "PLAINTEXT"
    security_protocol: str = "PLAINTEXT"  # PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
    host: str = "127.0.0.1"  # bound
    port: int = 9092
    advertised_host: str = "127.0.0.1"  # what clients are told to connect to
    advertised_port: int = 9092
    sasl_mechanisms: tuple[str, ...] = ()  # empty unless the protocol is SASL_*

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def listen_address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass
class KafkaBroker:
    """Shared by every connection of every listener; holds references to core state, never
    state of its own."""

    core: BrokerCore
    topics: Topics
    groups: GroupCoordinator
    cluster_id: str
    listeners: list[Listener] = field(default_factory=lambda: [Listener()])  # in configured order
    protocol_map: dict[str, str] = field(default_factory=dict)  # listener.security.protocol.map
    anonymous: str = "loopback"  # kafka_anonymous: who may connect without SASL
    auto_create_topics: bool = True
    max_request_bytes: int = 100 * 1024 * 1024
    sasl_mechanisms: tuple[str, ...] = ()  # sasl.enabled.mechanisms (of the SASL listeners)
    producer_ids: ProducerIds = field(default_factory=lambda: ProducerIds(None))
    transactions: TransactionCoordinator | None = None
    fetch_sessions: FetchSessionCache = field(default_factory=FetchSessionCache)  # KIP-227
    dynamic_configs: DynamicBrokerConfigs | None = None  # kafka/broker_configs.py (opened at start)
    connections_max_reauth_ms: int = 0  # KIP-368 SASL session lifetime (0: no expiry)
    allow_everyone_if_no_acl_found: bool = False  # Kafka's authorizer setting
    oauthbearer: ValidatorConfig | None = None  # SASL/OAUTHBEARER's unsecured validator options
    share: ShareCoordinator | None = None  # share groups (KIP-932)
    share_partitions: SharePartitions | None = None  # KIP-932 delivery state
    share_sessions: ShareSessionCache = field(default_factory=ShareSessionCache)

    @property
    def node_id(self) -> int:
        return NODE_ID

    # The first listener's: a request's own listener is RequestContext.listener.
    @property
    def advertised_host(self) -> str:
        return self.listeners[0].advertised_host

    @property
    def advertised_port(self) -> int:
        return self.listeners[0].advertised_port

    @property
    def listen_address(self) -> str:
        return self.listeners[0].listen_address

    @property
    def tls(self) -> bool:
        return self.listeners[0].tls

    @property
    def security_protocol(self) -> str:
        return self.listeners[0].security_protocol


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
    anonymous_allowed: bool  # without SASL: may this client act as User:ANONYMOUS (kafka_anonymous)

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
    listener: Listener = field(default_factory=Listener)  # the one the request came in on
