"""Health checks and the overview: ``/api/health``, ``/api/health/checks/...``,
``/api/overview``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from jackalope import __version__
from jackalope.http.base import CORE, INFO

routes = web.RouteTableDef()


@routes.get("/api/health")
async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _alarms(request: web.Request) -> list[dict[str, str]]:
    alarms = request.app[CORE].alarms
    return [{"resource": r, "reason": alarms.details.get(r, "")} for r in alarms.active]


@routes.get("/api/health/checks/alarms")
@routes.get("/api/health/checks/local-alarms")
async def alarm_check(request: web.Request) -> web.Response:
    """RabbitMQ's health check: 200 without alarms, 503 and the alarms in effect otherwise."""
    alarms = _alarms(request)
    if not alarms:
        return web.json_response({"status": "ok"})
    return web.json_response(
        {"status": "failed", "reason": "There are alarms in effect", "alarms": alarms}, status=503
    )


@routes.get("/api/overview")
async def overview(request: web.Request) -> web.Response:
    info: dict[str, Any] = request.app[INFO]
    return web.json_response(
        {"product": "jackalope", "version": __version__, **info, "alarms": _alarms(request)}
    )
