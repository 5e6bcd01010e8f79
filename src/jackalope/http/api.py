"""The HTTP API (aiohttp) on the broker's own event loop: one application, its error
middleware, and the route modules it serves.

Every request authenticates with HTTP basic auth against the broker's users and needs a
management tag (:mod:`jackalope.http.base`; 401 otherwise, as RabbitMQ's management API
answers).  Errors are JSON ``{"error": <kind>, "reason": <text>}`` with a matching status.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from jackalope.core import BrokerCore, LogNotFound
from jackalope.http import logs, management, overview, policies, ui
from jackalope.http.base import CORE, INFO, ApiError, Handler, authenticate
from jackalope.http.base import error_response as _error
from jackalope.http.sessions import SESSIONS, Sessions
from jackalope.storage import OffsetOutOfRangeError, StorageError

MAX_REQUEST_BYTES = 128 * 1024 * 1024


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return _error(exc.status, exc.kind, exc.reason)
    except LogNotFound as exc:
        return _error(404, "not_found", str(exc))
    except OffsetOutOfRangeError as exc:
        return web.json_response(
            {
                "error": "offset_out_of_range",
                "reason": str(exc),
                "start_offset": exc.start,
                "end_offset": exc.end,
            },
            status=416,
        )
    except StorageError as exc:
        return _error(503, "storage_error", str(exc))


def make_app(core: BrokerCore, info: dict[str, Any]) -> web.Application:
    app = web.Application(middlewares=[errors, authenticate], client_max_size=MAX_REQUEST_BYTES)
    app[CORE] = core
    app[INFO] = info
    app[SESSIONS] = Sessions()
    for module in (overview, logs, management, policies, ui):
        app.add_routes(module.routes)
    return app
