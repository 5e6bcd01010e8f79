"""Connections, channels and consumers over HTTP, in RabbitMQ's management API shape, for
every protocol the broker speaks (AMQP 0-9-1 and Kafka connections alike).

``GET /api/connections``, ``GET|DELETE /api/connections/{name}`` (DELETE closes it, with the
``X-Reason`` header as the reason), ``GET /api/connections/{name}/channels``,
``GET /api/vhosts/{vhost}/connections``, ``GET /api/channels``, ``GET /api/channels/{name}``,
``GET /api/vhosts/{vhost}/channels``, ``GET /api/consumers[/{vhost}]``.  As in RabbitMQ,
administrators and monitoring users see everyone's; other users see their own, and may
close their own.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from jackalope.core.clients import ClientChannel, ClientConnection
from jackalope.http import listing
from jackalope.http.amqp_messages import plain
from jackalope.http.base import CORE, ApiError, current_user, not_found, require_vhost

routes = web.RouteTableDef()


def _visible(request: web.Request) -> list[ClientConnection]:
    user = current_user(request)
    connections = request.app[CORE].clients.connections
    if user.is_monitor:
        return connections
    return [c for c in connections if c.user == user.name]


def _rate(value: float) -> dict[str, float]:
    return {"rate": round(value, 1)}


def connection_json(request: web.Request, conn: ClientConnection) -> dict[str, Any]:
    channels = conn.client_channels()
    return {
        "name": conn.name,
        "node": request.app[CORE].node_name,
        "type": "network",
        "protocol": conn.protocol_name,
        "user": conn.user,
        "vhost": conn.vhost_name,
        "host": conn.host,
        "port": conn.port,
        "peer_host": conn.peer_host,
        "peer_port": conn.peer_port,
        "ssl": conn.tls,
        "auth_mechanism": conn.auth_mechanism,
        "state": "blocked" if conn.blocked else "running",
        "channels": len(channels),
        "channel_max": conn.channel_max,
        "frame_max": conn.frame_max,
        "timeout": conn.timeout,
        "connected_at": conn.connected_at,
        "client_properties": plain(conn.client_properties),
        "recv_oct": conn.recv_oct,
        "send_oct": conn.send_oct,
    }


def channel_name(conn: ClientConnection, channel: ClientChannel) -> str:
    return f"{conn.name} ({channel.number})"


def channel_json(request: web.Request, conn: ClientConnection, channel: ClientChannel) -> dict[str, Any]:
    return {
        "name": channel_name(conn, channel),
        "number": channel.number,
        "node": request.app[CORE].node_name,
        "user": conn.user,
        "vhost": conn.vhost_name,
        "connection_details": {"name": conn.name, "peer_host": conn.peer_host, "peer_port": conn.peer_port},
        "consumer_count": len(channel.client_consumers()),
        "messages_unacknowledged": channel.unacked_count,
        "prefetch_count": channel.prefetch_count,
        "global_prefetch_count": channel.global_prefetch_count,
        "confirm": channel.confirm,
        "transactional": channel.transactional,
        "state": "running",
        "message_stats": channel.stats.as_json(),
    }


def consumers_json(request: web.Request, vhost: str | None = None) -> list[dict[str, Any]]:
    out = []
    for conn in _visible(request):
        if vhost is not None and conn.vhost_name != vhost:
            continue
        for channel in conn.client_channels():
            for consumer in channel.client_consumers():
                out.append(
                    {
                        "consumer_tag": consumer.tag,
                        "queue": {"name": consumer.queue_name, "vhost": conn.vhost_name},
                        "channel_details": {
                            "name": channel_name(conn, channel),
                            "number": channel.number,
                            "connection_name": conn.name,
                            "peer_host": conn.peer_host,
                            "peer_port": conn.peer_port,
                            "user": conn.user,
                        },
                        "ack_required": consumer.ack_required,
                        "exclusive": consumer.exclusive,
                        "prefetch_count": consumer.prefetch_count,
                        "arguments": consumer.arguments,
                        "active": True,
                        "activity_status": "up",
                    }
                )
    return out


def _connection(request: web.Request) -> ClientConnection:
    name = request.match_info["name"]
    for conn in _visible(request):
        if conn.name == name:
            return conn
    raise not_found()


@routes.get("/api/connections")
async def list_connections(request: web.Request) -> web.Response:
    return listing.respond(request, [connection_json(request, c) for c in _visible(request)])


@routes.get("/api/vhosts/{vhost}/connections")
async def list_vhost_connections(request: web.Request) -> web.Response:
    vhost = request.match_info["vhost"]
    require_vhost(request, vhost)
    items = [connection_json(request, c) for c in _visible(request) if c.vhost_name == vhost]
    return listing.respond(request, items)


@routes.get("/api/connections/{name}")
async def get_connection(request: web.Request) -> web.Response:
    return web.json_response(connection_json(request, _connection(request)))


@routes.delete("/api/connections/{name}")
async def close_connection(request: web.Request) -> web.Response:
    conn = _connection(request)
    user = current_user(request)
    if conn.user != user.name and not user.is_administrator:
        raise ApiError(401, "not_authorised", "Not administrator user")
    conn.close(request.headers.get("X-Reason", "Closed via management plugin"))
    return web.Response(status=204)


@routes.get("/api/connections/{name}/channels")
async def connection_channels(request: web.Request) -> web.Response:
    conn = _connection(request)
    return listing.respond(request, [channel_json(request, conn, ch) for ch in conn.client_channels()])


def _channels(request: web.Request, vhost: str | None = None) -> list[dict[str, Any]]:
    return [
        channel_json(request, conn, ch)
        for conn in _visible(request)
        if vhost is None or conn.vhost_name == vhost
        for ch in conn.client_channels()
    ]


@routes.get("/api/channels")
async def list_channels(request: web.Request) -> web.Response:
    return listing.respond(request, _channels(request))


@routes.get("/api/vhosts/{vhost}/channels")
async def list_vhost_channels(request: web.Request) -> web.Response:
    vhost = request.match_info["vhost"]
    require_vhost(request, vhost)
    return listing.respond(request, _channels(request, vhost))


@routes.get("/api/channels/{name}")
async def get_channel(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    for item in _channels(request):
        if item["name"] == name:
            return web.json_response(item)
    raise not_found()


@routes.get("/api/consumers")
async def list_consumers(request: web.Request) -> web.Response:
    return listing.respond(request, consumers_json(request), default_sort="")


@routes.get("/api/consumers/{vhost}")
async def list_vhost_consumers(request: web.Request) -> web.Response:
    vhost = request.match_info["vhost"]
    require_vhost(request, vhost)
    return listing.respond(request, consumers_json(request, vhost), default_sort="")
