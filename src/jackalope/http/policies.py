"""Policies and operator policies over HTTP, in the shape of RabbitMQ's management API.

``GET /api/policies`` (every vhost), ``GET /api/policies/{vhost}``, and ``GET``/``PUT``/
``DELETE /api/policies/{vhost}/{name}`` with a body of ``pattern``, ``definition``,
``apply-to`` and ``priority``; the same under ``/api/operator-policies``.  ``PUT`` answers
201 for a new policy and 204 for a changed one, ``DELETE`` 204, as RabbitMQ's does; a bad
definition is 400 with RabbitMQ's "Validation failed" reason.  The vhost ``/`` is written
``%2F``.

As in RabbitMQ's management API, policies are the business of ``policymaker`` users (and
administrators) in the vhosts they may see, operator policies of administrators only.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from jackalope.core.errors import InvalidArgument, NotFound
from jackalope.core.vhost import VirtualHost
from jackalope.http.base import (
    CORE,
    ApiError,
    current_user,
    json_body,
    not_found,
    require_administrator,
    require_vhost,
    visible_vhosts,
)

routes = web.RouteTableDef()
_KINDS = {"policies": False, "operator-policies": True}  # URL segment -> operator


def _operator(request: web.Request) -> bool:
    """Whether the request is about operator policies; checks the user may handle the kind."""
    operator = _KINDS[request.match_info["kind"]]
    if operator:
        require_administrator(request)
    elif not current_user(request).is_policymaker:
        raise ApiError(401, "not_authorised", "Not policymaker user")
    return operator


def _vhost(request: web.Request) -> VirtualHost:
    name = request.match_info["vhost"]
    require_vhost(request, name)
    return request.app[CORE].vhost(name)


def _listed(vhost: VirtualHost, operator: bool) -> list[dict[str, Any]]:
    found = vhost.operator_policies if operator else vhost.policies
    return [p.to_json(vhost.name) for p in found.values()]


@routes.get("/api/{kind:policies|operator-policies}")
async def list_all(request: web.Request) -> web.Response:
    core = request.app[CORE]
    operator = _operator(request)
    return web.json_response([p for v in visible_vhosts(request) for p in _listed(core.vhost(v), operator)])


@routes.get("/api/{kind:policies|operator-policies}/{vhost}")
async def list_vhost(request: web.Request) -> web.Response:
    operator = _operator(request)
    return web.json_response(_listed(_vhost(request), operator))


@routes.get("/api/{kind:policies|operator-policies}/{vhost}/{name}")
async def show(request: web.Request) -> web.Response:
    operator = _operator(request)
    vhost = _vhost(request)
    policy = (vhost.operator_policies if operator else vhost.policies).get(request.match_info["name"])
    if policy is None:
        raise not_found()
    return web.json_response(policy.to_json(vhost.name))


@routes.put("/api/{kind:policies|operator-policies}/{vhost}/{name}")
async def put(request: web.Request) -> web.Response:
    operator = _operator(request)
    vhost = _vhost(request)
    name = request.match_info["name"]
    body = await json_body(request)
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
    operator = _operator(request)
    vhost = _vhost(request)
    try:
        vhost.delete_policy(request.match_info["name"], operator=operator)
    except NotFound:
        raise not_found() from None
    return web.Response(status=204)
