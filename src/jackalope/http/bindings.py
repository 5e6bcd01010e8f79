"""Bindings over HTTP, in RabbitMQ's management API shape.

``GET /api/bindings[/{vhost}]``; ``GET|POST /api/bindings/{vhost}/e/{source}/q/{queue}`` and
``…/e/{source}/e/{destination}`` list and create (body ``routing_key``, ``arguments``; 201
with the new binding's ``Location``); ``GET|DELETE …/{props}`` show and delete one, named by
its ``properties_key`` as the lists give it.  Every queue's implicit binding to the default
exchange is listed, as RabbitMQ lists it.  Binding needs ``write`` on the destination and
``read`` on the source (403 otherwise), as AMQP's queue.bind does.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import quote

from aiohttp import web

from jackalope.core.exchanges.base import Binding, Exchange
from jackalope.core.queue_types import QueueType
from jackalope.core.vhost import VirtualHost
from jackalope.http import listing
from jackalope.http.base import (
    CORE,
    ApiError,
    bad_request,
    grant_of,
    json_object,
    not_found,
    unknown_keys,
    vhost_of,
    visible_vhosts,
)

routes = web.RouteTableDef()


def properties_key(routing_key: str, arguments: dict[str, Any]) -> str:
    """The binding's name in URLs: the routing key (``~`` if empty), and with arguments a
    digest of them after a ``~``, as RabbitMQ packs it."""
    if not arguments:
        return routing_key or "~"
    canonical = json.dumps(arguments, sort_keys=True, default=str).encode()
    digest = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()[:9]).decode()
    return f"{routing_key}~{digest}"


def _json(
    vhost: str, source: str, dest_name: str, kind: str, routing_key: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    return {
        "source": source,
        "vhost": vhost,
        "destination": dest_name,
        "destination_type": kind,
        "routing_key": routing_key,
        "arguments": arguments,
        "properties_key": properties_key(routing_key, arguments),
    }


def _binding_json(vhost: VirtualHost, source: Exchange, binding: Binding) -> dict[str, Any] | None:
    dest = binding.destination
    kind = "exchange" if isinstance(dest, Exchange) else "queue"
    name = getattr(dest, "name", None)
    if not isinstance(name, str):
        return None
    return _json(vhost.name, source.name, name, kind, binding.routing_key, dict(binding.arguments))


def all_queues(vhost: VirtualHost) -> list[QueueType]:
    """Every queue of ``vhost``, of every type (classic and quorum, then streams)."""
    return [*vhost.queues.values(), *vhost.streams.values()]


def _default(vhost: VirtualHost, queue: QueueType) -> dict[str, Any]:
    return _json(vhost.name, "", queue.name, "queue", queue.name, {})


def default_bindings(vhost: VirtualHost) -> list[dict[str, Any]]:
    """Every queue's implicit binding to the default exchange, under its queue's name."""
    return [_default(vhost, q) for q in all_queues(vhost)]


def vhost_bindings(vhost: VirtualHost) -> list[dict[str, Any]]:
    out = default_bindings(vhost)
    for exchange in vhost.exchanges.values():
        for binding in exchange.bindings():
            shown = _binding_json(vhost, exchange, binding)
            if shown is not None:
                out.append(shown)
    return out


def bindings_of_destination(vhost: VirtualHost, destination: QueueType | Exchange) -> list[dict[str, Any]]:
    out = [] if isinstance(destination, Exchange) else [_default(vhost, destination)]
    for exchange in vhost.exchanges.values():
        for binding in exchange.bindings():
            if binding.destination is destination:
                shown = _binding_json(vhost, exchange, binding)
                if shown is not None:
                    out.append(shown)
    return out


def bindings_of_source(vhost: VirtualHost, source: Exchange) -> list[dict[str, Any]]:
    return [b for b in (_binding_json(vhost, source, x) for x in source.bindings()) if b is not None]


@routes.get("/api/bindings")
async def list_bindings(request: web.Request) -> web.Response:
    core = request.app[CORE]
    items = [b for v in visible_vhosts(request) for b in vhost_bindings(core.vhosts[v])]
    return listing.respond(request, items, default_sort="")


@routes.get("/api/bindings/{vhost}")
async def list_vhost_bindings(request: web.Request) -> web.Response:
    return listing.respond(request, vhost_bindings(vhost_of(request)), default_sort="")


def _ends(request: web.Request) -> tuple[VirtualHost, str, str, str]:
    """The vhost, source, destination type (queue/exchange) and destination in the path;
    404 if either end does not exist."""
    vhost = vhost_of(request)
    source, dest = request.match_info["source"], request.match_info["dest"]
    kind = "queue" if request.match_info["kind"] == "q" else "exchange"
    if source and source not in vhost.exchanges:
        raise not_found()
    if kind == "queue" and dest not in vhost.queues and dest not in vhost.streams:
        raise not_found()
    if kind == "exchange" and dest not in vhost.exchanges:
        raise not_found()
    return vhost, source, kind, dest


def _between(vhost: VirtualHost, source: str, kind: str, dest: str) -> list[dict[str, Any]]:
    return [
        b
        for b in vhost_bindings(vhost)
        if b["source"] == source and b["destination_type"] == kind and b["destination"] == dest
    ]


KINDS = "{kind:q|e}"


@routes.get(f"/api/bindings/{{vhost}}/e/{{source}}/{KINDS}/{{dest}}")
async def list_between(request: web.Request) -> web.Response:
    vhost, source, kind, dest = _ends(request)
    return listing.respond(request, _between(vhost, source, kind, dest), default_sort="")


@routes.post(f"/api/bindings/{{vhost}}/e/{{source}}/{KINDS}/{{dest}}")
async def create_binding(request: web.Request) -> web.Response:
    vhost, source, kind, dest = _ends(request)
    body = await json_object(request)
    path = {"vhost": vhost.name, "source": source, "destination": dest, "destination_type": kind}
    unknown_keys(body, {"routing_key", "arguments"}, path)
    routing_key, arguments = body.get("routing_key", ""), body.get("arguments") or {}
    if not isinstance(routing_key, str) or not isinstance(arguments, dict):
        raise bad_request("routing_key must be a string and arguments an object")
    _check_binding(request, vhost, kind, dest, source)
    if kind == "queue":
        vhost.bind_queue(dest, source, routing_key, arguments, owner=_owner(vhost, dest))
    else:
        vhost.bind_exchange(dest, source, routing_key, arguments)
    key = properties_key(routing_key, arguments)
    location = f"{request.path.rstrip('/')}/{quote(key, safe='')}"
    return web.Response(status=201, headers={"Location": location})


def _check_binding(request: web.Request, vhost: VirtualHost, kind: str, dest: str, source: str) -> None:
    """AMQP's rule for queue.bind and exchange.bind: write on the destination, read on the source."""
    grant = grant_of(request, vhost)
    grant.check("write", kind, dest)  # type: ignore[arg-type]
    grant.check("read", "exchange", source)


def _owner(vhost: VirtualHost, queue_name: str) -> object:
    queue = vhost.queues.get(queue_name)
    return queue.exclusive_owner if queue is not None else None


def _one(request: web.Request) -> tuple[VirtualHost, str, str, str, dict[str, Any]]:
    vhost, source, kind, dest = _ends(request)
    props = request.match_info["props"]
    for b in _between(vhost, source, kind, dest):
        if b["properties_key"] == props:
            return vhost, source, kind, dest, b
    raise not_found()


@routes.get(f"/api/bindings/{{vhost}}/e/{{source}}/{KINDS}/{{dest}}/{{props}}")
async def get_binding(request: web.Request) -> web.Response:
    return web.json_response(_one(request)[4])


@routes.delete(f"/api/bindings/{{vhost}}/e/{{source}}/{KINDS}/{{dest}}/{{props}}")
async def delete_binding(request: web.Request) -> web.Response:
    vhost, source, kind, dest, binding = _one(request)
    if not source:
        raise ApiError(403, "access_refused", "operation not permitted on the default exchange")
    _check_binding(request, vhost, kind, dest, source)
    if kind == "queue":
        vhost.unbind_queue(
            dest, source, binding["routing_key"], binding["arguments"], owner=_owner(vhost, dest)
        )
    else:
        vhost.unbind_exchange(dest, source, binding["routing_key"], binding["arguments"])
    return web.Response(status=204)
