"""Users, vhosts, permissions and vhost limits over HTTP, in RabbitMQ's management API shape.

``GET /api/whoami``; ``/api/users[/{name}]``; ``/api/vhosts[/{name}]``;
``/api/permissions[/{vhost}/{user}]`` (and ``/api/users/{name}/permissions``,
``/api/vhosts/{name}/permissions``); ``/api/vhost-limits[/{vhost}[/{name}]]``.  The
definitions are :mod:`jackalope.http.definitions`'.

Who may: users, permissions, definitions and every change need the ``administrator`` tag;
a user with another management tag may see itself (``whoami``), the vhosts it has
permissions in (every vhost for ``monitoring``) and their limits.  Refusals are RabbitMQ's
401s.  PUT answers 201 when it created, 204 when it updated; DELETE 204; a missing object
404 ``Object Not Found``.  Topic permissions are not supported: none can be set (501), so
there are none to enforce.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from jackalope.core.errors import CoreError
from jackalope.core.passwords import SHA256
from jackalope.core.permissions import BadPermission, Permission
from jackalope.core.users import BadUser, User, parse_tags
from jackalope.core.vhost import LIMITS
from jackalope.http.base import (
    CORE,
    ApiError,
    bad_request,
    created,
    current_user,
    json_object,
    not_found,
    require_administrator,
    require_vhost,
    visible_vhosts,
)
from jackalope.http.bindings import all_queues

routes = web.RouteTableDef()
TOPIC_PERMISSIONS_REFUSED = "topic permissions are not supported by Jackalope yet"


# -- who am I ------------------------------------------------------------------------------


@routes.get("/api/whoami")
async def whoami(request: web.Request) -> web.Response:
    user = current_user(request)
    return web.json_response({"name": user.name, "tags": list(user.tags)})


# -- users ------------------------------------------------------------------------------------


def user_json(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "password_hash": user.password_hash,
        "hashing_algorithm": user.hashing_algorithm,
        "tags": list(user.tags),
        "limits": {},
    }


def _user(request: web.Request) -> User:
    user = request.app[CORE].access.users.get(request.match_info["name"])
    if user is None:
        raise not_found()
    return user


@routes.get("/api/users")
async def list_users(request: web.Request) -> web.Response:
    require_administrator(request)
    return web.json_response([user_json(u) for u in request.app[CORE].access.users.values()])


@routes.get("/api/users/{name}")
async def get_user(request: web.Request) -> web.Response:
    require_administrator(request)
    return web.json_response(user_json(_user(request)))


@routes.put("/api/users/{name}")
async def put_user(request: web.Request) -> web.Response:
    """RabbitMQ's body: ``password`` or ``password_hash`` (+ ``hashing_algorithm``) or
    neither (no password), and ``tags`` (a list or a comma-separated string)."""
    require_administrator(request)
    body = await json_object(request)
    password, password_hash = body.get("password"), body.get("password_hash")
    algorithm = body.get("hashing_algorithm", SHA256)
    for field, value in (
        ("password", password),
        ("password_hash", password_hash),
        ("hashing_algorithm", algorithm),
    ):
        if value is not None and not isinstance(value, str):
            raise bad_request(f"{field} must be a string")
    try:
        new = request.app[CORE].access.put_user(
            request.match_info["name"],
            password=password,
            password_hash=password_hash,
            hashing_algorithm=algorithm,
            tags=parse_tags(body["tags"]) if "tags" in body else None,
        )
    except BadUser as exc:
        raise bad_request(str(exc)) from None
    return created(new)


@routes.delete("/api/users/{name}")
async def delete_user(request: web.Request) -> web.Response:
    require_administrator(request)
    request.app[CORE].access.delete_user(_user(request).name)
    return web.Response(status=204)


@routes.get("/api/users/{name}/permissions")
async def user_permissions(request: web.Request) -> web.Response:
    require_administrator(request)
    name = _user(request).name
    return web.json_response(_permissions(request, lambda u, v: u == name))


# -- vhosts -----------------------------------------------------------------------------------


def vhost_json(request: web.Request, name: str) -> dict[str, Any]:
    vhost = request.app[CORE].vhosts[name]
    queues = all_queues(vhost)
    ready = sum(q.message_count for q in queues)
    unacked = sum(q.unacked_count for q in queues)
    return {
        "name": name,
        "description": vhost.description,
        "tags": list(vhost.tags),
        "metadata": {"description": vhost.description, "tags": list(vhost.tags)},
        "tracing": False,
        "messages": ready + unacked,
        "messages_ready": ready,
        "messages_unacknowledged": unacked,
    }


@routes.get("/api/vhosts")
async def list_vhosts(request: web.Request) -> web.Response:
    return web.json_response([vhost_json(request, name) for name in visible_vhosts(request)])


@routes.get("/api/vhosts/{name}")
async def get_vhost(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    require_vhost(request, name)
    return web.json_response(vhost_json(request, name))


@routes.put("/api/vhosts/{name}")
async def put_vhost(request: web.Request) -> web.Response:
    """Create or update a vhost (``description``, ``tags``).  A new vhost gives its creator
    every permission in it, as RabbitMQ's API does."""
    user = require_administrator(request)
    body = await json_object(request)
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise bad_request("description must be a string")
    if body.get("tracing"):
        raise bad_request("tracing is not supported by Jackalope yet")
    core = request.app[CORE]
    name = request.match_info["name"]
    try:
        tags = parse_tags(body["tags"]) if "tags" in body else None
        new = core.put_vhost(name, description, tags)
    except (BadUser, CoreError) as exc:
        raise bad_request(str(exc)) from None
    if new:
        core.set_permission(user.name, name, Permission())
    return created(new)


@routes.delete("/api/vhosts/{name}")
async def delete_vhost(request: web.Request) -> web.Response:
    require_administrator(request)
    core = request.app[CORE]
    name = request.match_info["name"]
    if name not in core.vhosts:
        raise not_found()
    try:
        core.delete_vhost(name)
    except CoreError as exc:
        raise bad_request(str(exc)) from None
    return web.Response(status=204)


@routes.get("/api/vhosts/{name}/permissions")
async def vhost_permissions(request: web.Request) -> web.Response:
    require_administrator(request)
    name = request.match_info["name"]
    if name not in request.app[CORE].vhosts:
        raise not_found()
    return web.json_response(_permissions(request, lambda u, v: v == name))


# -- permissions ------------------------------------------------------------------------------


def _permissions(request: web.Request, keep: Any) -> list[dict[str, str]]:
    return [
        {"user": u, "vhost": v, **p.to_json()}
        for (u, v), p in request.app[CORE].access.permissions.items()
        if keep(u, v)
    ]


@routes.get("/api/permissions")
async def list_permissions(request: web.Request) -> web.Response:
    require_administrator(request)
    return web.json_response(_permissions(request, lambda u, v: True))


@routes.get("/api/permissions/{vhost}/{user}")
async def get_permission(request: web.Request) -> web.Response:
    require_administrator(request)
    vhost, user = request.match_info["vhost"], request.match_info["user"]
    permission = request.app[CORE].access.permission(user, vhost)
    if permission is None:
        raise not_found()
    return web.json_response({"user": user, "vhost": vhost, **permission.to_json()})


@routes.put("/api/permissions/{vhost}/{user}")
async def put_permission(request: web.Request) -> web.Response:
    require_administrator(request)
    body = await json_object(request)
    core = request.app[CORE]
    vhost, user = request.match_info["vhost"], request.match_info["user"]
    if vhost not in core.vhosts:
        raise bad_request(f"no vhost '{vhost}'")
    if not core.user_exists(user):
        raise bad_request(f"no user '{user}'")
    try:
        permission = Permission.from_json(body)
    except BadPermission as exc:
        raise bad_request(str(exc)) from None
    return created(core.set_permission(user, vhost, permission))


@routes.delete("/api/permissions/{vhost}/{user}")
async def delete_permission(request: web.Request) -> web.Response:
    require_administrator(request)
    vhost, user = request.match_info["vhost"], request.match_info["user"]
    try:
        request.app[CORE].access.clear_permission(user, vhost)
    except CoreError:
        raise not_found() from None
    return web.Response(status=204)


@routes.get("/api/topic-permissions")
async def list_topic_permissions(request: web.Request) -> web.Response:
    require_administrator(request)
    return web.json_response([])  # none can be set


@routes.put("/api/topic-permissions/{vhost}/{user}")
@routes.delete("/api/topic-permissions/{vhost}/{user}")
async def topic_permissions(request: web.Request) -> web.Response:
    require_administrator(request)
    raise ApiError(501, "not_implemented", TOPIC_PERMISSIONS_REFUSED)


# -- vhost limits -----------------------------------------------------------------------------


def _limits_json(request: web.Request, names: list[str]) -> list[dict[str, Any]]:
    vhosts = request.app[CORE].vhosts
    return [{"vhost": n, "value": dict(vhosts[n].limits)} for n in names if vhosts[n].limits]


@routes.get("/api/vhost-limits")
async def list_limits(request: web.Request) -> web.Response:
    return web.json_response(_limits_json(request, visible_vhosts(request)))


@routes.get("/api/vhost-limits/{vhost}")
async def get_limits(request: web.Request) -> web.Response:
    vhost = request.match_info["vhost"]
    require_vhost(request, vhost)
    return web.json_response(_limits_json(request, [vhost]))


def _limit_target(request: web.Request) -> tuple[str, str]:
    require_administrator(request)
    vhost, name = request.match_info["vhost"], request.match_info["name"]
    if vhost not in request.app[CORE].vhosts:
        raise not_found()
    if name not in LIMITS:
        raise bad_request(f"unknown vhost limit '{name}'; known: {', '.join(LIMITS)}")
    return vhost, name


@routes.put("/api/vhost-limits/{vhost}/{name}")
async def put_limit(request: web.Request) -> web.Response:
    vhost, name = _limit_target(request)
    value = (await json_object(request)).get("value")
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_request('the body must be {"value": <integer>} (negative: no limit)')
    request.app[CORE].set_vhost_limit(vhost, name, value)
    return web.Response(status=204)


@routes.delete("/api/vhost-limits/{vhost}/{name}")
async def delete_limit(request: web.Request) -> web.Response:
    vhost, name = _limit_target(request)
    request.app[CORE].clear_vhost_limit(vhost, name)
    return web.Response(status=204)
