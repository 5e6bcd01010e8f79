"""One broker process: the data directory, the storage engine, the core and the listeners.

Both ``jackalope serve`` and the embedded :class:`jackalope.Broker` run exactly this.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import shutil
from pathlib import Path
from typing import Any

from aiohttp import web

from jackalope import __version__, tls
from jackalope.amqp.server import AmqpServer, install_codecs
from jackalope.core import BrokerCore
from jackalope.core.groups import GroupCoordinator
from jackalope.core.producer_ids import ProducerIds
from jackalope.core.share import GroupConfigs, ShareCoordinator, ShareGroupConfig
from jackalope.core.share.configs import Bounds
from jackalope.core.share.partitions import SharePartitions
from jackalope.core.transactions import LogMarkers, TransactionCoordinator
from jackalope.datadir import DataDir, StartupError
from jackalope.http.api import make_app
from jackalope.kafka.broker_configs import DynamicBrokerConfigs
from jackalope.kafka.consumer_protocol_codec import ConsumerProtocolCodec
from jackalope.kafka.context import KafkaBroker, Listener
from jackalope.kafka.listeners import ListenerSpec, parse_protocol_map
from jackalope.kafka.server import KafkaServer
from jackalope.resources import ResourceMonitor
from jackalope.settings import Settings
from jackalope.storage import Durability, LogManager

log = logging.getLogger(__name__)

TRANSIENT_DIR = "transient"


def _empty_dir(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)


def _share_member_left(broker: KafkaBroker, shares: SharePartitions, group: str, member: str) -> None:
    """A share-group member left (or timed out): without an open share session its acquired
    records are released now; with one they are released when the session closes (its last
    acknowledgements may still come) or their locks lapse."""
    if broker.share_sessions.get((group, member)) is None:
        shares.member_left(group, member)


def _url(scheme: str, host: str, port: int) -> str:
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def _protocol_map(s: Settings, specs: tuple[ListenerSpec, ...]) -> dict[str, str]:
    """listener.security.protocol.map as DescribeConfigs shows it: Kafka's default map, and the
    custom names of kafka_listeners."""
    mapping = parse_protocol_map(s.kafka_listener_security_protocol_map)
    for spec in specs:
        mapping[spec.name] = spec.protocol
    return mapping


class Server:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.addresses: dict[str, str] = {}
        self._datadir = DataDir(settings.data_dir)
        self._logs: LogManager | None = None
        self._transient_logs: LogManager | None = None
        self._monitor: ResourceMonitor | None = None
        self._http: web.AppRunner | None = None
        self._amqp: AmqpServer | None = None
        self._kafka: list[KafkaServer] = []
        self._groups: GroupCoordinator | None = None
        self._share: ShareCoordinator | None = None
        self._transactions: TransactionCoordinator | None = None
        self._share_partitions: SharePartitions | None = None
        self.core: BrokerCore | None = None
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        """Lock the data directory, recover the logs, open the listeners; undo all on failure."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        s = self.settings
        self._datadir.acquire()
        logs = LogManager(
            s.data_dir / "logs", s.log_config(), retention_check_interval_ms=s.retention_check_interval_ms
        )
        try:
            await asyncio.get_running_loop().run_in_executor(None, logs.open)
        except OSError as exc:
            raise StartupError(f"cannot open the logs in {s.data_dir}: {exc}") from None
        self._logs = logs
        await logs.start()
        transient = self._transient_logs = await self._open_transient_logs()
        core = self.core = BrokerCore(
            logs,
            s.data_dir,
            default_user=(s.default_user, s.default_pass),
            loopback_users=s.loopback_user_list(),
            defer=asyncio.get_running_loop().call_soon,
            timer=asyncio.get_running_loop().call_later,
            consumer_timeout_ms=s.consumer_timeout_ms,
            transient_logs=transient,
            topic_defaults={
                "default_partitions": s.kafka_num_partitions,
                "default_max_message_bytes": s.kafka_max_message_bytes,
            },
        )
        install_codecs(core)
        try:
            core.load_definitions()
        except ValueError as exc:  # a damaged users.json: say so rather than start without users
            raise StartupError(str(exc)) from None
        self._monitor = ResourceMonitor(core.alarms, s.data_dir, s.memory_limit(), s.disk_limit())
        self._monitor.start()
        core.rates.start()
        info: dict[str, Any] = {"listeners": self.addresses, "data_dir": str(s.data_dir)}
        self._http = web.AppRunner(
            make_app(self.core, info, self._monitor), access_log=None, handle_signals=False
        )
        await self._http.setup()
        site = web.TCPSite(self._http, s.host, s.http_port, reuse_address=True)
        await self._listen(site, "HTTP API", s.http_port)
        port = int(self._http.addresses[-1][1])
        self.addresses["http"] = _url("http", s.host, port)
        await self._start_amqp(core)
        if s.kafka_listener_specs():
            await self._start_kafka(core)
        log.info(
            "jackalope started",
            extra={
                "version": __version__,
                "data_dir": str(s.data_dir),
                **self.addresses,
                "memory_high_watermark": self._monitor.memory_limit,
                "disk_free_limit": self._monitor.disk_limit,
            },
        )

    async def _open_transient_logs(self) -> LogManager:
        """Where non-durable queues page their backlog: emptied at every start, never fsynced."""
        directory = self.settings.data_dir / TRANSIENT_DIR
        config = self.settings.log_config().replace(durability=Durability.NEVER)
        try:
            await asyncio.get_running_loop().run_in_executor(None, _empty_dir, directory)
        except OSError as exc:
            raise StartupError(f"cannot empty {directory}: {exc}") from None
        manager = LogManager(directory, config)
        manager.open()
        await manager.start()
        return manager

    async def _start_amqp(self, core: BrokerCore) -> None:
        """The plaintext listener and the amqps one, each where its settings ask for it."""
        s = self.settings
        amqps = s.amqp_tls_port >= 0 and bool(s.amqp_tls_certfile)
        if s.amqp_port < 0 and not amqps:
            return
        context = None
        if amqps:
            context = tls.server_context(
                "AMQP",
                s.amqp_tls_certfile,
                s.amqp_tls_keyfile,
                cafile=s.amqp_tls_cafile,
                verify=tls.Verify(s.amqp_tls_verify),
                fail_if_no_peer_cert=s.amqp_tls_fail_if_no_peer_cert,
            )
        amqp = self._amqp = AmqpServer(core, max_message_bytes=s.amqp_max_message_bytes)
        if s.amqp_port >= 0:
            try:
                port = await amqp.start(s.host, s.amqp_port)
            except OSError as exc:
                raise self._listen_error("AMQP", s.amqp_port, exc) from None
            self.addresses["amqp"] = _url("amqp", s.host, port)
        if context is not None:
            try:
                port = await amqp.start(s.host, s.amqp_tls_port, tls=context)
            except OSError as exc:
                raise self._listen_error("AMQP over TLS", s.amqp_tls_port, exc) from None
            self.addresses["amqps"] = _url("amqps", s.host, port)

    async def _start_kafka(self, core: BrokerCore) -> None:
        s = self.settings
        groups = self._groups = GroupCoordinator(
            core.logs,
            initial_rebalance_delay_ms=s.kafka_group_initial_delay_ms,
            min_session_timeout_ms=s.kafka_group_min_session_timeout_ms,
            max_session_timeout_ms=s.kafka_group_max_session_timeout_ms,
            topic_partitions=lambda: {t.name: len(t.partitions) for t in core.topics},
            consumer_heartbeat_interval_ms=s.kafka_group_consumer_heartbeat_interval_ms,
            consumer_session_timeout_ms=s.kafka_group_consumer_session_timeout_ms,
            consumer_assignors=s.kafka_group_consumer_assignor_list(),
            consumer_migration_policy=s.kafka_group_consumer_migration_policy,
            classic_codec=ConsumerProtocolCodec(),
        )
        await groups.load()
        core.groups = groups
        share = self._share_groups(groups, core)
        core.topics.on_delete.append(groups.delete_topic_offsets)
        producer_ids = self._producer_ids()
        transactions = self._transactions = TransactionCoordinator(
            core.logs,
            producer_ids,
            LogMarkers(core.topics, core.logs),
            groups=groups,
            partition_exists=lambda t, p: core.topics.partition(t, p) is not None,
            max_timeout_ms=s.kafka_transaction_max_timeout_ms,
            abort_interval_ms=s.kafka_transaction_abort_interval_ms,
            id_expiration_ms=s.kafka_transactional_id_expiration_ms,
        )
        await transactions.load()
        core.transactions = transactions
        shares = self._share_partitions = SharePartitions(
            core.logs,
            core.topics,
            max_in_flight=s.kafka_share_partition_max_record_locks,
            config=share.config,
        )
        await shares.load()
        core.topics.on_delete.append(shares.topic_deleted)
        share.on_group_deleted.append(shares.group_deleted)
        share.on_config_changed.append(shares.reconfigure)
        specs = s.kafka_listener_specs()
        broker = KafkaBroker(
            core=core,
            topics=core.topics,
            groups=groups,
            cluster_id=self._datadir.cluster_id(),
            listeners=[],
            protocol_map=_protocol_map(s, specs),
            anonymous=s.kafka_anonymous,
            auto_create_topics=s.kafka_auto_create_topics,
            max_request_bytes=s.kafka_max_request_bytes,
            producer_ids=producer_ids,
            transactions=transactions,
            sasl_mechanisms=s.kafka_sasl_list(),
            connections_max_reauth_ms=s.kafka_connections_max_reauth_ms,
            allow_everyone_if_no_acl_found=s.kafka_allow_everyone_if_no_acl_found,
            oauthbearer=s.kafka_oauthbearer_config(),
            share=share,
        )
        broker.share_partitions = shares
        broker.share_sessions.gone = lambda key: share.member_error(*key) is not None
        share.on_member_left.append(lambda group, member: _share_member_left(broker, shares, group, member))
        share.on_group_deleted.append(broker.share_sessions.drop_group)
        try:
            broker.dynamic_configs = DynamicBrokerConfigs.open(broker)  # stored dynamic broker configs
        except ValueError as exc:
            raise StartupError(str(exc)) from None
        await self._start_kafka_listeners(broker, specs)

    async def _start_kafka_listeners(self, broker: KafkaBroker, specs: tuple[ListenerSpec, ...]) -> None:
        """Bind every listener, then fill in their addresses, then accept on all of them."""
        s = self.settings
        context = None
        if any(spec.tls for spec in specs):
            context = tls.server_context("Kafka", s.kafka_tls_certfile, s.kafka_tls_keyfile)
        single = not s.kafka_listeners.strip()
        for spec in specs:
            listener = Listener(
                name=spec.name,
                security_protocol=spec.protocol,
                host=spec.host,
                sasl_mechanisms=broker.sasl_mechanisms if spec.sasl else (),
            )
            server = KafkaServer(broker, context if spec.tls else None, listener)
            try:
                listener.port = await server.bind(spec.host, spec.port)
            except OSError as exc:
                what = "Kafka" if single else f"Kafka listener {spec.name}"
                raise self._listen_error(what, spec.port, exc, spec.host) from None
            self._kafka.append(server)
            wildcard = spec.host in ("0.0.0.0", "::", "")
            listener.advertised_host = spec.advertised_host or ("127.0.0.1" if wildcard else spec.host)
            listener.advertised_port = spec.advertised_port or listener.port
            broker.listeners.append(listener)
            url = _url("kafka+ssl" if spec.tls else "kafka", spec.host, listener.port)
            self.addresses["kafka" if single else f"kafka_{spec.name.lower()}"] = url
        if not single:  # "kafka" is the first listener (Broker.kafka_bootstrap), named after the rest
            self.addresses["kafka"] = self.addresses[f"kafka_{specs[0].name.lower()}"]
        for server in self._kafka:
            await server.serve()

    def _share_groups(self, groups: GroupCoordinator, core: BrokerCore) -> ShareCoordinator:
        """Share groups (KIP-932) and the group configs, in one id namespace with ``groups``."""
        s = self.settings
        data = s.data_dir
        try:
            session, heartbeat = (
                s.kafka_group_consumer_session_timeout_ms,
                s.kafka_group_consumer_heartbeat_interval_ms,
            )
            lock_ms = s.kafka_share_record_lock_duration_ms
            configs = GroupConfigs(
                data / "group-configs.json",
                # Kafka's bounds, widened to take in this broker's own consumer-group defaults
                bounds=Bounds(
                    consumer_session_timeout_ms=(min(45000, session), max(60000, session)),
                    consumer_heartbeat_interval_ms=(min(5000, heartbeat), max(15000, heartbeat)),
                    share_session_timeout_ms=(
                        s.kafka_share_min_session_timeout_ms,
                        s.kafka_share_max_session_timeout_ms,
                    ),
                    share_heartbeat_interval_ms=(
                        s.kafka_share_min_heartbeat_interval_ms,
                        s.kafka_share_max_heartbeat_interval_ms,
                    ),
                    share_record_lock_duration_ms=(
                        s.kafka_share_min_record_lock_duration_ms,
                        s.kafka_share_max_record_lock_duration_ms,
                    ),
                ),
                share_defaults=ShareGroupConfig(
                    record_lock_duration_ms=lock_ms,
                    partition_max_record_locks=s.kafka_share_partition_max_record_locks,
                ),
                consumer_session_timeout_ms=s.kafka_group_consumer_session_timeout_ms,
                consumer_heartbeat_interval_ms=s.kafka_group_consumer_heartbeat_interval_ms,
            )
            share = self._share = ShareCoordinator(
                data / "share-groups.json",
                configs=configs,
                topics=lambda: {t.name: len(t.partitions) for t in core.topics},
                other_group=lambda group_id: groups.describe(group_id).state != "Dead",
            )
        except ValueError as exc:
            raise StartupError(str(exc)) from None
        share.start(asyncio.get_running_loop())
        groups.share_groups = share
        core.topics.on_delete.append(share.topic_deleted)
        groups.use_group_configs(configs.consumer_timeouts)
        return share

    def _producer_ids(self) -> ProducerIds:
        path = self.settings.data_dir / "producer-ids"
        try:
            return ProducerIds(path)
        except ValueError:
            raise StartupError(f"{path} is damaged: it must hold the next free producer id") from None

    async def _listen(self, site: web.TCPSite, what: str, port: int) -> None:
        try:
            await site.start()
        except OSError as exc:
            raise self._listen_error(what, port, exc) from None

    def _listen_error(self, what: str, port: int, exc: OSError, host: str | None = None) -> StartupError:
        where = f"{host or self.settings.host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            return StartupError(f"cannot listen on {where} for the {what}: address already in use")
        return StartupError(f"cannot listen on {where} for the {what}: {exc.strerror or exc}")

    async def stop(self) -> None:
        """Stop accepting, close connections, flush and fsync every log, release the lock."""
        for kafka in self._kafka:
            await kafka.stop()
        self._kafka.clear()
        if self._transactions is not None:
            self._transactions.close()
            self._transactions = None
        if self._groups is not None:
            self._groups.close()
            self._groups = None
        if self._share is not None:
            self._share.close()
            self._share = None
        if self._amqp is not None:
            await self._amqp.stop()
            self._amqp = None
        if self._http is not None:
            await self._http.cleanup()
            self._http = None
        if self._monitor is not None:
            await self._monitor.stop()
            self._monitor = None
        if self.core is not None:
            self.core.close()
        if self._transient_logs is not None:
            await self._transient_logs.discard()
            self._transient_logs = None
        if self._logs is not None:
            await self._logs.close()
            self._logs = None
        self._datadir.release()
        if self.addresses:
            log.info("jackalope stopped")
        self.addresses.clear()
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()
