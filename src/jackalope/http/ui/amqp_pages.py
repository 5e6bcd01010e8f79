"""The overview and the AMQP pages: connections, channels, exchanges and queues (lists, one
exchange with its publish form, one queue with get messages, purge, delete and bindings)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from jackalope.http.ui import tables
from jackalope.http.ui.render import (
    ApiCallFailed,
    api_get,
    api_get_or,
    list_page,
    q,
    render,
    ui_page,
    vhost_names,
)

routes = web.RouteTableDef()


@routes.get("/")
@ui_page
async def overview(request: web.Request) -> web.Response:
    data, error = await api_get_or(request, "/api/overview", {})
    return render(request, "overview.html", title="Overview", data=data, error=error, tables=tables)


@routes.get("/connections")
@ui_page
async def connections(request: web.Request) -> web.Response:
    return await list_page(request, "list.html", "Connections", tables.CONNECTIONS)


@routes.get("/channels")
@ui_page
async def channels(request: web.Request) -> web.Response:
    return await list_page(request, "list.html", "Channels", tables.CHANNELS)


@routes.get("/exchanges")
@ui_page
async def exchanges(request: web.Request) -> web.Response:
    vhosts = await vhost_names(request)
    return await list_page(request, "exchanges.html", "Exchanges", tables.EXCHANGES, vhosts=vhosts)


@routes.get("/exchanges/{vhost}/{name}")
@ui_page
async def exchange(request: web.Request) -> web.Response:
    vhost, name = request.match_info["vhost"], request.match_info["name"]
    api = f"/api/exchanges/{q(vhost)}/{q(name)}"
    data = await _exchange(request, vhost, name, api)
    bindings_table = tables.EXCHANGE_BINDINGS.at(api + "/bindings/source")
    bindings, bindings_error = await api_get_or(request, bindings_table.source, [])
    return render(
        request,
        "exchange.html",
        title=f"Exchange {name}",
        display_name=data.get("name") or "(AMQP default)",
        vhost=vhost,
        api=api,
        data=data,
        bindings_table=bindings_table,
        bindings=bindings,
        bindings_error=bindings_error,
    )


async def _exchange(request: web.Request, vhost: str, name: str, api: str) -> Any:
    """The exchange; the default one is ``amq.default`` in paths, as in RabbitMQ's API (read
    from the vhost's list where the endpoint does not take that name)."""
    try:
        return await api_get(request, api)
    except ApiCallFailed as exc:
        if name != "amq.default" or exc.status != 404:
            raise
    listed = await api_get(request, f"/api/exchanges/{q(vhost)}")
    for exchange in listed:
        if exchange.get("name") == "":
            return exchange
    raise ApiCallFailed(404, "Not Found")


@routes.get("/queues")
@ui_page
async def queues(request: web.Request) -> web.Response:
    vhosts = await vhost_names(request)
    return await list_page(request, "queues.html", "Queues", tables.QUEUES, vhosts=vhosts)


@routes.get("/queues/{vhost}/{name}")
@ui_page
async def queue(request: web.Request) -> web.Response:
    vhost, name = request.match_info["vhost"], request.match_info["name"]
    api = f"/api/queues/{q(vhost)}/{q(name)}"
    data = await api_get(request, api)
    bindings_table = tables.QUEUE_BINDINGS.at(api + "/bindings")
    bindings, bindings_error = await api_get_or(request, bindings_table.source, [])
    return render(
        request,
        "queue.html",
        title=f"Queue {name}",
        vhost=vhost,
        name=name,
        api=api,
        data=data,
        tables=tables,
        bindings_table=bindings_table,
        bindings=bindings,
        bindings_error=bindings_error,
        consumers_table=tables.QUEUE_CONSUMERS.at(api),
    )
