"""``jackalope queues|exchanges|bindings|connections|channels|consumers list`` (and
``connections close``), from RabbitMQ's ``/api/queues``, ``/api/exchanges``,
``/api/bindings``, ``/api/connections``, ``/api/channels`` and ``/api/consumers``."""

from __future__ import annotations

from collections.abc import Sequence

import click

from jackalope.cli.client import path
from jackalope.cli.common import Api, admin, all_vhosts_option, scoped
from jackalope.cli.output import Column, Row, col, num, rate


def _in_vhost(api: Api, rows: list[Row], all_vhosts: bool) -> list[Row]:
    """Connections and channels of --vhost only (their endpoints list every vhost's)."""
    return rows if all_vhosts else [r for r in rows if r.get("vhost") == api.vhost]


def _peer(row: Row) -> str | None:
    host, port = row.get("peer_host"), row.get("peer_port")
    return f"{host}:{port}" if host else None


def _list_command(
    kind: str, columns: Sequence[Column], *, per_vhost_path: bool = True, help: str
) -> click.Command:
    """``<kind> list``: the API's list in --vhost (or every vhost) as a table."""

    @click.command("list", help=help)
    @all_vhosts_option
    @admin
    def list_(api: Api, all_vhosts: bool) -> None:
        if per_vhost_path:
            rows: list[Row] = api.client.get(scoped(api, kind, all_vhosts))
        else:
            rows = _in_vhost(api, api.client.get(path(kind)), all_vhosts)
        api.out.table(rows, columns)

    return list_


def _group(name: str, help: str, *commands: click.Command) -> click.Group:
    group = click.Group(name, help=help)
    for command in commands:
        group.add_command(command)
    return group


QUEUE_COLUMNS = (
    col("NAME", "name"),
    col("TYPE", "type"),
    col("DURABLE", "durable"),
    col("STATE", "state"),
    num("MESSAGES", "messages"),
    num("READY", "messages_ready"),
    num("UNACKED", "messages_unacknowledged"),
    num("CONSUMERS", "consumers"),
    num("PUBLISH/S", lambda r: rate(r, "publish")),
    num("DELIVER/S", lambda r: rate(r, "deliver_get")),
    num("ACK/S", lambda r: rate(r, "ack")),
)

EXCHANGE_COLUMNS = (
    col("NAME", lambda r: r.get("name") or "(AMQP default)"),
    col("TYPE", "type"),
    col("DURABLE", "durable"),
    col("AUTO-DELETE", "auto_delete"),
    col("INTERNAL", "internal"),
    col("ARGUMENTS", "arguments"),
    num("IN/S", lambda r: rate(r, "publish_in")),
    num("OUT/S", lambda r: rate(r, "publish_out")),
)

BINDING_COLUMNS = (
    col("SOURCE", lambda r: r.get("source") or "(AMQP default)"),
    col("DESTINATION", "destination"),
    col("TYPE", "destination_type"),
    col("ROUTING-KEY", "routing_key"),
    col("ARGUMENTS", "arguments"),
)

CONNECTION_COLUMNS = (
    col("NAME", "name"),
    col("USER", "user"),
    col("VHOST", "vhost"),
    col("PROTOCOL", "protocol"),
    col("PEER", _peer),
    num("CHANNELS", "channels"),
    col("STATE", "state"),
    num("RECV", "recv_oct"),
    num("SENT", "send_oct"),
)

CHANNEL_COLUMNS = (
    col("NAME", "name"),
    col("USER", "user"),
    col("VHOST", "vhost"),
    num("PREFETCH", "prefetch_count"),
    num("UNACKED", "messages_unacknowledged"),
    num("CONSUMERS", "consumer_count"),
    col("CONFIRM", "confirm"),
    col("TX", "transactional"),
    num("PUBLISH/S", lambda r: rate(r, "publish")),
    num("DELIVER/S", lambda r: rate(r, "deliver_get")),
)

CONSUMER_COLUMNS = (
    col("QUEUE", "queue.name"),
    col("VHOST", "queue.vhost"),
    col("CONSUMER-TAG", "consumer_tag"),
    col("CHANNEL", "channel_details.name"),
    col("ACK", "ack_required"),
    num("PREFETCH", "prefetch_count"),
    col("EXCLUSIVE", "exclusive"),
    col("ACTIVE", lambda r: r.get("activity_status") or r.get("active")),
)


@click.command("close")
@click.argument("name")
@click.option("--reason", default="closed by jackalope connections close", show_default=True)
@admin
def close_connection(api: Api, name: str, reason: str) -> None:
    """Close the connection NAME (as listed), telling its client REASON."""
    api.client.request("DELETE", path("connections", name), headers={"X-Reason": reason})
    api.out.done(f"connection {name} closed", {"connection": name, "closed": True})


queues = _group(
    "queues", "Queues.", _list_command("queues", QUEUE_COLUMNS, help="Queues: depth, consumers, rates.")
)
exchanges = _group(
    "exchanges",
    "Exchanges: list.",
    _list_command("exchanges", EXCHANGE_COLUMNS, help="Exchanges and their rates."),
)
bindings = _group(
    "bindings",
    "Bindings.",
    _list_command("bindings", BINDING_COLUMNS, help="Bindings of exchanges to queues and exchanges."),
)
connections = _group(
    "connections",
    "Client connections: list, close.",
    _list_command(
        "connections", CONNECTION_COLUMNS, per_vhost_path=False, help="Client connections in --vhost."
    ),
    close_connection,
)
channels = _group(
    "channels",
    "AMQP channels: list.",
    _list_command("channels", CHANNEL_COLUMNS, per_vhost_path=False, help="Channels in --vhost."),
)
consumers = _group(
    "consumers",
    "Consumers.",
    _list_command("consumers", CONSUMER_COLUMNS, help="Consumers of --vhost's queues."),
)

commands: list[click.Command] = [queues, exchanges, bindings, connections, channels, consumers]
