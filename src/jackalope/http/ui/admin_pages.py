"""The administration pages: users, virtual hosts, permissions and policies (list, add,
delete)."""

from __future__ import annotations

from aiohttp import web

from jackalope.http.ui import tables
from jackalope.http.ui.render import api_get_or, list_page, ui_page, vhost_names

routes = web.RouteTableDef()


@routes.get("/users")
@ui_page
async def users(request: web.Request) -> web.Response:
    return await list_page(request, "users.html", "Users", tables.USERS)


@routes.get("/vhosts")
@ui_page
async def vhosts(request: web.Request) -> web.Response:
    return await list_page(request, "vhosts.html", "Virtual hosts", tables.VHOSTS)


@routes.get("/permissions")
@ui_page
async def permissions(request: web.Request) -> web.Response:
    users, _ = await api_get_or(request, "/api/users", [])
    names = [u["name"] for u in users if isinstance(u, dict)]
    vhosts = await vhost_names(request)
    return await list_page(
        request, "permissions.html", "Permissions", tables.PERMISSIONS, users=names, vhosts=vhosts
    )


@routes.get("/policies")
@ui_page
async def policies(request: web.Request) -> web.Response:
    vhosts = await vhost_names(request)
    return await list_page(request, "policies.html", "Policies", tables.POLICIES, vhosts=vhosts)
