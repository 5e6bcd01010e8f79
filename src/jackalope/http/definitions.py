"""RabbitMQ's definitions over HTTP: ``GET /api/definitions`` exports, ``POST`` imports, the
whole topology with its users, vhosts, permissions, vhost limits and policies.

The format is RabbitMQ's, so a file exported from RabbitMQ (``rabbitmqctl
export_definitions``, the management UI's "Export definitions", ``rabbitmqadmin export``)
imports as it is: users keep their password hashes; queues, exchanges and bindings are
declared as AMQP would declare them.  Everything in the file is checked before anything is
taken; what Jackalope does not do (topic permissions, parameters other than vhost limits) is
refused, naming it.  Of ``global_parameters`` only RabbitMQ's cluster identity
(``cluster_name``, ``internal_cluster_id``) is known: it describes the cluster the file came
from and is not carried over (logged).  Exports hold durable, non-exclusive queues and
durable exchanges, as RabbitMQ's do.  Both need the ``administrator`` tag.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from aiohttp import web

from jackalope import __version__
from jackalope.core import BrokerCore
from jackalope.core.errors import CoreError, InvalidArgument
from jackalope.core.exchanges import exchange_types
from jackalope.core.policies import make_policy
from jackalope.core.users import BadUser, parse_tags
from jackalope.core.vhost import LIMITS, PREDECLARED
from jackalope.http.base import CORE, bad_request, json_object, require_administrator
from jackalope.http.bindings import all_queues
from jackalope.http.management import user_json, vhost_json
from jackalope.http.queues import MANAGEMENT

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

CLUSTER_IDENTITY: Final = ("cluster_name", "internal_cluster_id")
TOPOLOGY: Final = ("exchanges", "queues", "bindings")


def _topology(core: BrokerCore) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {key: [] for key in TOPOLOGY}
    for name, vhost in core.vhosts.items():
        stored = vhost.definitions()  # what the broker keeps across restarts: durable things
        for ex in stored["exchanges"]:
            out["exchanges"].append({"vhost": name, "durable": True, **ex})
        types = {q.name: q.type_name for q in all_queues(vhost)}
        for q in stored["queues"]:
            kind = types.get(q["name"], "classic")
            out["queues"].append({"vhost": name, "durable": True, "type": kind, **q})
        for b in stored["bindings"]:
            out["bindings"].append({"vhost": name, **b})
    return out


@routes.get("/api/definitions")
async def export_definitions(request: web.Request) -> web.Response:
    require_administrator(request)
    core = request.app[CORE]
    access = core.access.definitions()
    return web.json_response(
        {
            "rabbit_version": __version__,
            "rabbitmq_version": __version__,
            "product_name": "Jackalope",
            "product_version": __version__,
            "users": [user_json(u) for u in core.access.users.values()],
            "vhosts": [_definition(vhost_json(request, name)) for name in core.vhosts],
            "permissions": access["permissions"],
            "topic_permissions": [],
            "parameters": [
                {"vhost": name, "component": "vhost-limits", "name": "limits", "value": dict(v.limits)}
                for name, v in core.vhosts.items()
                if v.limits
            ],
            "global_parameters": [],
            "policies": [p.to_json(name) for name, v in core.vhosts.items() for p in v.policies.values()],
            **_topology(core),
        }
    )


def _definition(vhost: dict[str, Any]) -> dict[str, Any]:
    """A vhost as definitions hold it: what it is, not what it holds."""
    return {k: vhost[k] for k in ("name", "description", "tags", "metadata")}


def _list(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = body.get(key) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise bad_request(f"{key} must be a list of objects")
    return items


def _limits(parameters: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    limits = []
    for p in parameters:
        value = p.get("value")
        if p.get("component") != "vhost-limits" or not isinstance(value, dict):
            raise bad_request(f"importing parameters of component {p.get('component')!r} is not supported")
        for key, limit in value.items():
            if key not in LIMITS or not isinstance(limit, int):
                raise bad_request(f"bad vhost limit {key!r}: {limit!r}")
        limits.append((str(p.get("vhost")), value))
    return limits


def _global_parameters(listed: list[dict[str, Any]]) -> None:
    for p in listed:
        if p.get("name") not in CLUSTER_IDENTITY:
            raise bad_request(f"importing the global parameter {p.get('name')!r} is not supported")
        log.warning("definitions: global parameter %s=%r not carried over", p.get("name"), p.get("value"))


def _policies(listed: list[dict[str, Any]], vhosts: set[str]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for p in listed:
        vhost, name = str(p.get("vhost", "/")), p.get("name")
        if not isinstance(name, str) or vhost not in vhosts:
            raise bad_request(f"policy {name!r}: needs a name and a vhost that is defined or exists")
        try:
            make_policy(name, p)
        except InvalidArgument as exc:
            raise bad_request(f"policy {name!r}: {exc}") from None
        found.append((vhost, name, p))
    return found


def _check_topology(core: BrokerCore, body: dict[str, Any], vhosts: set[str]) -> None:
    """The exchanges, queues and bindings are well formed, in known vhosts, and every
    binding's ends exist or are defined in the file."""
    known_types = exchange_types()
    exchanges = {(v, n) for v, vh in core.vhosts.items() for n in vh.exchanges}
    queues = {(v, n) for v, vh in core.vhosts.items() for n in (*vh.queues, *vh.streams)}
    for ex in _list(body, "exchanges"):
        name, vhost = ex.get("name"), str(ex.get("vhost", "/"))
        if not isinstance(name, str) or not name or vhost not in vhosts:
            raise bad_request(f"exchange {name!r}: needs a name and a vhost that is defined or exists")
        if ex.get("type") not in known_types:
            raise bad_request(f"exchange {name!r}: unknown exchange type {ex.get('type')!r}")
        if ex.get("durable") is False:
            raise bad_request(f"exchange {name!r}: definitions hold durable exchanges only")
        exchanges.add((vhost, name))
    for q in _list(body, "queues"):
        name, vhost = q.get("name"), str(q.get("vhost", "/"))
        if not isinstance(name, str) or not name or vhost not in vhosts:
            raise bad_request(f"queue {name!r}: needs a name and a vhost that is defined or exists")
        if not isinstance(q.get("arguments", {}), dict):
            raise bad_request(f"queue {name!r}: arguments must be an object")
        if q.get("durable") is False:
            raise bad_request(f"queue {name!r}: definitions hold durable queues only")
        queues.add((vhost, name))
    for b in _list(body, "bindings"):
        vhost = str(b.get("vhost", "/"))
        source, dest, kind = b.get("source"), b.get("destination"), b.get("destination_type")
        ends = exchanges if kind == "exchange" else queues
        if kind not in ("queue", "exchange"):
            raise bad_request(f"binding {source!r} -> {dest!r}: destination_type must be queue or exchange")
        if (vhost, source) not in exchanges and source not in PREDECLARED:
            raise bad_request(f"binding: no exchange {source!r} in vhost {vhost!r}")
        if (vhost, dest) not in ends and dest not in PREDECLARED:
            raise bad_request(f"binding: no {kind} {dest!r} in vhost {vhost!r}")


def _declare_topology(core: BrokerCore, body: dict[str, Any]) -> None:
    for ex in _list(body, "exchanges"):
        core.vhost(str(ex.get("vhost", "/"))).declare_exchange(
            ex["name"],
            ex["type"],
            durable=True,
            auto_delete=bool(ex.get("auto_delete", False)),
            internal=bool(ex.get("internal", False)),
            arguments=ex.get("arguments") or {},
        )
    for q in _list(body, "queues"):
        arguments = dict(q.get("arguments") or {})
        kind = q.get("type")
        if kind in ("quorum", "stream") and "x-queue-type" not in arguments:
            arguments["x-queue-type"] = kind  # RabbitMQ's exports name the type beside the arguments
        core.vhost(str(q.get("vhost", "/"))).declare_queue(
            q["name"],
            owner=MANAGEMENT,
            durable=True,
            auto_delete=bool(q.get("auto_delete", False)),
            arguments=arguments,
        )
    for b in _list(body, "bindings"):
        vhost = core.vhost(str(b.get("vhost", "/")))
        routing_key, arguments = str(b.get("routing_key", "")), b.get("arguments") or {}
        if b["destination_type"] == "queue":
            vhost.bind_queue(b["destination"], b["source"], routing_key, arguments, owner=MANAGEMENT)
        else:
            vhost.bind_exchange(b["destination"], b["source"], routing_key, arguments)


@routes.post("/api/definitions")
async def import_definitions(request: web.Request) -> web.Response:
    require_administrator(request)
    body = await json_object(request)
    core = request.app[CORE]
    if body.get("topic_permissions"):
        raise bad_request("importing topic_permissions is not supported by Jackalope yet")
    vhosts = _list(body, "vhosts")
    if not all(v.get("name") for v in vhosts):
        raise bad_request("vhosts must be a list of objects with a name")
    limits = _limits(_list(body, "parameters"))
    _global_parameters(_list(body, "global_parameters"))
    names = {str(v["name"]) for v in vhosts} | set(core.vhosts)
    if any(vhost not in names for vhost, _ in limits):
        raise bad_request("a vhost limit names a vhost that is neither defined nor existing")
    policies = _policies(_list(body, "policies"), names)
    _check_topology(core, body, names)
    try:  # users and permissions: all checked before any is taken
        core.access.import_definitions({**body, "users": body.get("users") or []}, names)
    except BadUser as exc:
        raise bad_request(str(exc)) from None
    for v in vhosts:
        metadata: dict[str, Any] = v["metadata"] if isinstance(v.get("metadata"), dict) else {}
        description = v.get("description", metadata.get("description"))
        tags = v.get("tags", metadata.get("tags"))
        core.put_vhost(
            str(v["name"]), str(description or ""), parse_tags(tags if isinstance(tags, list | str) else [])
        )
    for vhost, value in limits:
        for key, limit in value.items():
            core.set_vhost_limit(vhost, key, limit)
    for vhost, name, policy in policies:
        core.vhost(vhost).set_policy(name, policy)
    try:
        _declare_topology(core, body)
    except CoreError as exc:
        raise bad_request(f"definitions partly imported: {exc}") from None
    return web.Response(status=204)
