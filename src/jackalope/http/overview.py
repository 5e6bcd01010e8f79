"""The broker as a whole over HTTP, in RabbitMQ's management API shape: ``/api/overview``,
``/api/nodes[/{name}]``, ``/api/aliveness-test/{vhost}`` and the health checks
(``/api/health/checks/alarms``, ``local-alarms``, ``port-listener/{port}``,
``virtual-hosts``; 200 ``{"status": "ok"}``, or 503 ``{"status": "failed", "reason": …}``).

One broker process is one node: its name is ``jackalope@<host>``, in RabbitMQ's shape.
"""

from __future__ import annotations

import os
from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import web

from jackalope import __version__
from jackalope.core.exchanges import exchange_types
from jackalope.http import amqp_messages
from jackalope.http.base import CORE, INFO, bad_request, require_monitor, require_vhost
from jackalope.http.bindings import all_queues
from jackalope.resources import ResourceMonitor

routes = web.RouteTableDef()

RESOURCES: web.AppKey[ResourceMonitor | None] = web.AppKey("resources")
RABBITMQ_COMPAT: Final = "3.13.0"  # the management API version whose shapes these are
ALIVENESS_QUEUE: Final = "aliveness-test"
_SCHEMES: Final = {
    "amqp": "amqp",
    "amqps": "amqp/ssl",
    "http": "http",
    "kafka": "kafka",
    "kafka+ssl": "kafka/ssl",
}


@routes.get("/api/health")
async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _alarms(request: web.Request) -> list[dict[str, str]]:
    alarms = request.app[CORE].alarms
    return [{"resource": r, "reason": alarms.details.get(r, "")} for r in alarms.active]


def _failed(reason: str, **extra: Any) -> web.Response:
    return web.json_response({"status": "failed", "reason": reason, **extra}, status=503)


@routes.get("/api/health/checks/alarms")
@routes.get("/api/health/checks/local-alarms")
async def alarm_check(request: web.Request) -> web.Response:
    """200 without alarms, 503 and the alarms in effect otherwise."""
    alarms = _alarms(request)
    if not alarms:
        return web.json_response({"status": "ok"})
    return _failed("There are alarms in effect", alarms=alarms)


def listeners(request: web.Request) -> list[dict[str, Any]]:
    """RabbitMQ's listener objects, from the addresses the server bound."""
    node = request.app[CORE].node_name
    out = []
    for url in dict.fromkeys(request.app[INFO].get("listeners", {}).values()):  # "kafka" is also kafka_<name>
        parts = urlsplit(url)
        out.append(
            {
                "node": node,
                "protocol": _SCHEMES.get(parts.scheme, parts.scheme),
                "ip_address": parts.hostname,
                "port": parts.port,
            }
        )
    return out


@routes.get("/api/health/checks/port-listener/{port}")
async def port_listener_check(request: web.Request) -> web.Response:
    try:
        port = int(request.match_info["port"])
    except ValueError:
        raise bad_request("the port must be an integer") from None
    ports = [entry["port"] for entry in listeners(request)]
    if port in ports:
        return web.json_response({"status": "ok", "port": port})
    return _failed(f"No active listener on port {port}", port=port, missing=port, ports=ports)


@routes.get("/api/health/checks/virtual-hosts")
async def vhosts_check(request: web.Request) -> web.Response:
    """Every vhost runs while the node runs (vhosts have no separate processes here)."""
    return web.json_response({"status": "ok"})


@routes.get("/api/aliveness-test/{vhost}")
async def aliveness(request: web.Request) -> web.Response:
    """RabbitMQ's: declare ``aliveness-test`` in the vhost, publish to it and get it back."""
    name = request.match_info["vhost"]
    require_vhost(request, name)
    vhost = request.app[CORE].vhosts[name]
    owner = object()
    queue = vhost.declare_queue(ALIVENESS_QUEUE, owner=owner)
    body = b"test_message"
    await amqp_messages.publish(vhost, "", ALIVENESS_QUEUE, b"\x00\x00", body)
    entry = queue.get()
    if entry is None or entry.message.body != body:
        return web.json_response(
            {"status": "failed", "reason": "the test message did not come back"}, status=503
        )
    queue.ack(entry)
    return web.json_response({"status": "ok"})


def _object_totals(request: web.Request) -> dict[str, int]:
    core = request.app[CORE]
    clients = core.clients
    channels = list(clients.channels())
    return {
        "connections": len(clients.connections),
        "channels": len(channels),
        "consumers": sum(len(ch.client_consumers()) for _, ch in channels),
        "exchanges": sum(len(v.exchanges) + 1 for v in core.vhosts.values()),  # + the default
        "queues": sum(len(v.queues) + len(v.streams) for v in core.vhosts.values()),
    }


def _queue_totals(request: web.Request) -> dict[str, int]:
    ready = unacked = 0
    for vhost in request.app[CORE].vhosts.values():
        for queue in all_queues(vhost):
            ready += queue.message_count
            unacked += queue.unacked_count
    return {"messages": ready + unacked, "messages_ready": ready, "messages_unacknowledged": unacked}


@routes.get("/api/overview")
async def overview(request: web.Request) -> web.Response:
    core = request.app[CORE]
    return web.json_response(
        {
            "management_version": RABBITMQ_COMPAT,
            "rabbitmq_version": RABBITMQ_COMPAT,
            "product_name": "Jackalope",
            "product_version": __version__,
            "cluster_name": core.node_name,
            "node": core.node_name,
            "rates_mode": "basic",
            "exchange_types": [
                {"name": name, "description": "", "enabled": True} for name in sorted(exchange_types())
            ],
            "message_stats": core.clients.totals().as_json(),
            "queue_totals": _queue_totals(request),
            "object_totals": _object_totals(request),
            "listeners": listeners(request),
            "contexts": [{"node": core.node_name, "description": "Jackalope management", "path": "/"}],
            "alarms": _alarms(request),
            "data_dir": request.app[INFO].get("data_dir"),
        }
    )


def node_json(request: web.Request) -> dict[str, Any]:
    core = request.app[CORE]
    monitor = request.app.get(RESOURCES)
    alarms = core.alarms.active
    return {
        "name": core.node_name,
        "type": "disc",
        "running": True,
        "being_drained": False,
        "uptime": int(monitor.uptime_seconds * 1000) if monitor else 0,
        "mem_used": monitor.memory_used if monitor else 0,
        "mem_limit": monitor.memory_limit if monitor else 0,
        "mem_alarm": "memory" in alarms,
        "disk_free": monitor.disk_free if monitor else 0,
        "disk_free_limit": monitor.disk_limit if monitor else 0,
        "disk_free_alarm": "disk" in alarms,
        "fd_used": monitor.open_fds if monitor else 0,
        "fd_total": monitor.max_fds if monitor else 0,
        "sockets_used": len(core.clients.connections),
        "proc_used": 1,
        "processors": os.cpu_count() or 1,
        "os_pid": str(os.getpid()),
        "partitions": [],
        "applications": [{"name": "jackalope", "description": "Jackalope broker", "version": __version__}],
        "exchange_types": [{"name": n, "description": "", "enabled": True} for n in sorted(exchange_types())],
    }


@routes.get("/api/nodes")
async def list_nodes(request: web.Request) -> web.Response:
    require_monitor(request)
    return web.json_response([node_json(request)])


@routes.get("/api/nodes/{name}")
async def get_node(request: web.Request) -> web.Response:
    require_monitor(request)
    if request.match_info["name"] != request.app[CORE].node_name:
        return web.json_response({"error": "Object Not Found", "reason": "Not Found"}, status=404)
    return web.json_response(node_json(request))
