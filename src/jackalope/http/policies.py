"""Policies and operator policies over HTTP, in the shape of RabbitMQ's management API.

``GET /api/policies`` (every vhost), ``GET /api/policies/{vhost}``, and ``GET``/``PUT``/
``DELETE /api/policies/{vhost}/{name}`` with a body of ``pattern``, ``definition``,
``apply-to`` and ``priority``; the same under ``/api/operator-policies``.  ``PUT`` answers
201 for a new policy and 204 for a changed one, ``DELETE`` 204, as RabbitMQ's does; a bad
definition is 400 with RabbitMQ's "Validation failed" reason.  The vhost ``/`` is written
``%2F``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from jackalope.core import BrokerCore
from jackalope.core.errors import InvalidArgument, NotFound
from jackalope.core.vhost import VirtualHost
from jackalope.http.api import CORE, ApiError, _json_body

routes = web.RouteTableDef()
_KINDS = {"policies": False, "operator-policies": True}  # URL segment -> operator


def _operator(request: web.Request) -> bool:
    return _KINDS[request.match_info["kind"]]


def _vhost(core: BrokerCore, name: str) -> VirtualHost:
    try:
        return core.vhost(name)
    except NotFound:
        raise ApiError(404, "not_found", f"no vhost '{name}'") from None


def _listed(vhost: VirtualHost, operator: bool) -> list[dict[str, Any]]:
    found = vhost.operator_policies if operator else vhost.policies
    return [p.to_json(vhost.name) for p in found.values()]


@routes.get("/api/{kind:policies|operator-policies}")
async def list_all(request: web.Request) -> web.Response:
    core = request.app[CORE]
    return web.json_response([p for v in core.vhosts.values() for p in _listed(v, _operator(request))])


@routes.get("/api/{kind:policies|operator-policies}/{vhost}")
async def list_vhost(request: web.Request) -> web.Response:
    vhost = _vhost(request.app[CORE], request.match_info["vhost"])
    return web.json_response(_listed(vhost, _operator(request)))


@routes.get("/api/{kind:policies|operator-policies}/{vhost}/{name}")
async def show(request: web.Request) -> web.Response:
    vhost = _vhost(request.app[CORE], request.match_info["vhost"])
    found = vhost.operator_policies if _operator(request) else vhost.policies
    policy = found.get(request.match_info["name"])
    if policy is None:
        raise ApiError(404, "Object Not Found", "Not Found")
    return web.json_response(policy.to_json(vhost.name))


@routes.put("/api/{kind:policies|operator-policies}/{vhost}/{name}")
async def put(request: web.Request) -> web.Response:
    vhost = _vhost(request.app[CORE], request.match_info["vhost"])
    operator = _operator(request)
    name = request.match_info["name"]
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    new = name not in (vhost.operator_policies if operator else vhost.policies)
    try:
        vhost.set_policy(name, body, operator=operator)
    except InvalidArgument as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    return web.Response(status=201 if new else 204)


@routes.delete("/api/{kind:policies|operator-policies}/{vhost}/{name}")
async def delete(request: web.Request) -> web.Response:
    vhost = _vhost(request.app[CORE], request.match_info["vhost"])
    try:
        vhost.delete_policy(request.match_info["name"], operator=_operator(request))
    except NotFound:
        raise ApiError(404, "Object Not Found", "Not Found") from None
    return web.Response(status=204)
