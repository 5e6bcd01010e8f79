"""Exchanges over HTTP, in RabbitMQ's management API shape.

``GET /api/exchanges[/{vhost}]`` lists (the default exchange as ``""``, as RabbitMQ lists
it); ``GET|PUT|DELETE /api/exchanges/{vhost}/{name}`` shows, declares (``type``,
``durable``, ``auto_delete``, ``internal``, ``arguments``; 201 new, 204 the same again, 400
an inequivalent one) and deletes (``if-unused``); ``POST …/publish`` publishes one message
(``routing_key``, ``properties``, ``payload``, ``payload_encoding``) and answers ``{"routed":
bool}`` once it is durable where it went; ``GET …/bindings/source|destination`` lists the
exchange's bindings.  Declaring and deleting need ``configure`` on the exchange, publishing
``write``, as AMQP checks them (403 otherwise).
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from jackalope.core import policies
from jackalope.core.exchanges.base import Exchange, UnknownExchangeType
from jackalope.core.vhost import VirtualHost
from jackalope.http import amqp_messages, listing
from jackalope.http.base import (
    CORE,
    bad_request,
    created,
    current_user,
    flag,
    grant_of,
    json_object,
    not_found,
    unknown_keys,
    vhost_of,
    visible_vhosts,
)
from jackalope.http.bindings import bindings_of_destination, bindings_of_source, default_bindings

routes = web.RouteTableDef()

DEFAULT: Final = {"type": "direct", "durable": True, "auto_delete": False, "internal": False, "arguments": {}}


def exchange_json(vhost: VirtualHost, exchange: Exchange) -> dict[str, Any]:
    policy = policies.choose(vhost.policies.values(), exchange.name, "exchange")
    return {
        "name": exchange.name,
        "vhost": vhost.name,
        "type": exchange.type_name,
        "durable": exchange.durable,
        "auto_delete": exchange.auto_delete,
        "internal": exchange.internal,
        "arguments": dict(exchange.arguments),
        "policy": policy.name if policy else None,
        "user_who_performed_action": "",
        "message_stats": exchange.stats.as_json(("publish_in", "publish_out")),
    }


def vhost_exchanges(vhost: VirtualHost) -> list[dict[str, Any]]:
    default = {
        "name": "",
        "vhost": vhost.name,
        **DEFAULT,
        "policy": None,
        "user_who_performed_action": "",
        "message_stats": vhost.default_exchange_stats.as_json(("publish_in", "publish_out")),
    }
    return [default, *(exchange_json(vhost, e) for e in vhost.exchanges.values())]


def _exchange(request: web.Request) -> tuple[VirtualHost, Exchange]:
    vhost = vhost_of(request)
    exchange = vhost.exchanges.get(request.match_info["name"])
    if exchange is None:
        raise not_found()
    return vhost, exchange


@routes.get("/api/exchanges")
async def list_exchanges(request: web.Request) -> web.Response:
    core = request.app[CORE]
    return listing.respond(
        request, [e for v in visible_vhosts(request) for e in vhost_exchanges(core.vhosts[v])]
    )


@routes.get("/api/exchanges/{vhost}")
async def list_vhost_exchanges(request: web.Request) -> web.Response:
    return listing.respond(request, vhost_exchanges(vhost_of(request)))


@routes.get("/api/exchanges/{vhost}/{name}")
async def get_exchange(request: web.Request) -> web.Response:
    if request.match_info["name"] == "amq.default":  # the default exchange, as RabbitMQ names it
        return web.json_response(vhost_exchanges(vhost_of(request))[0])
    vhost, exchange = _exchange(request)
    return web.json_response(exchange_json(vhost, exchange))


@routes.put("/api/exchanges/{vhost}/{name}")
async def put_exchange(request: web.Request) -> web.Response:
    vhost = vhost_of(request)
    name = request.match_info["name"]
    body = await json_object(request)
    path = {"vhost": vhost.name, "name": name, "exchange": name}
    unknown_keys(body, {"type", "durable", "auto_delete", "internal", "arguments"}, path)
    type_name = body.get("type")
    if not isinstance(type_name, str):
        raise bad_request("type is required (direct, fanout, topic, headers, …)")
    flags = {
        k: flag(body, k, default)
        for k, default in (("durable", True), ("auto_delete", False), ("internal", False))
    }
    arguments = body.get("arguments") or {}
    if not isinstance(arguments, dict):
        raise bad_request("arguments must be an object")
    existed = name in vhost.exchanges
    try:
        vhost.declare_exchange(name, type_name, arguments=arguments, grant=grant_of(request, vhost), **flags)
    except UnknownExchangeType as exc:
        raise bad_request(str(exc)) from None
    return created(not existed)


@routes.delete("/api/exchanges/{vhost}/{name}")
async def delete_exchange(request: web.Request) -> web.Response:
    vhost, exchange = _exchange(request)
    grant_of(request, vhost).check("configure", "exchange", exchange.name)
    vhost.delete_exchange(exchange.name, if_unused=request.query.get("if-unused", "false") == "true")
    return web.Response(status=204)


@routes.get("/api/exchanges/{vhost}/{name}/bindings/source")
async def source_bindings(request: web.Request) -> web.Response:
    if request.match_info["name"] == "amq.default":  # every queue's implicit binding
        vhost = vhost_of(request)
        return listing.respond(request, default_bindings(vhost), default_sort="")
    vhost, exchange = _exchange(request)
    return listing.respond(request, bindings_of_source(vhost, exchange), default_sort="")


@routes.get("/api/exchanges/{vhost}/{name}/bindings/destination")
async def destination_bindings(request: web.Request) -> web.Response:
    vhost, exchange = _exchange(request)
    return listing.respond(request, bindings_of_destination(vhost, exchange), default_sort="")


@routes.post("/api/exchanges/{vhost}/{name}/publish")
async def publish(request: web.Request) -> web.Response:
    """One message, as basic.publish would send it; ``{"routed": false}`` when no queue took it.
    The default exchange is ``amq.default`` in this path, as in RabbitMQ's."""
    vhost = vhost_of(request)
    name = request.match_info["name"]
    exchange = "" if name == "amq.default" else name
    if exchange and exchange not in vhost.exchanges:
        raise not_found()
    body = await json_object(request)
    path = {"vhost": vhost.name, "name": name, "exchange": name}
    unknown_keys(body, {"routing_key", "properties", "payload", "payload_encoding"}, path)
    routing_key = body.get("routing_key", "")
    if not isinstance(routing_key, str):
        raise bad_request("routing_key must be a string")
    properties = amqp_messages.encode(body.get("properties"))
    payload = amqp_messages.payload(body.get("payload", ""), body.get("payload_encoding", "string"))
    user = current_user(request).name
    user_id = amqp_messages.decode(properties).get("user_id")
    if user_id is not None and user_id != user:
        raise bad_request(f"user_id property set to '{user_id}' but authenticated user was '{user}'")
    grant_of(request, vhost).check_publish(exchange)
    vhost.check_publish(exchange)
    routed = await amqp_messages.publish(vhost, exchange, routing_key, properties, payload)
    return web.json_response({"routed": routed})
