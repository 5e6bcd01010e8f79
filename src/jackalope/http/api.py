"""The HTTP API (aiohttp) on the broker's own event loop: one application, its error
middleware, and the route modules it serves.

Every request authenticates with HTTP basic auth against the broker's users and needs a
management tag (:mod:`jackalope.http.base`; 401 otherwise, as RabbitMQ's management API
answers).  Errors are JSON ``{"error": <kind>, "reason": <text>}`` with a matching status.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from aiohttp import web

from jackalope.core import BrokerCore
from jackalope.core.errors import (
    AccessRefused,
    CoreError,
    InvalidArgument,
    NotAllowed,
    NotFound,
    PreconditionFailed,
    ResourceLocked,
    Unsupported,
)
from jackalope.http import (
    bindings,
    connections,
    definitions,
    exchanges,
    kafka_api,
    kafka_groups,
    kafka_records,
    management,
    metrics,
    overview,
    policies,
    queues,
    ui,
)
from jackalope.http.base import CORE, INFO, ApiError, Handler, authenticate
from jackalope.http.base import error_response as _error
from jackalope.http.sessions import SESSIONS, Sessions
from jackalope.resources import ResourceMonitor
from jackalope.storage import OffsetOutOfRangeError, StorageError

log = logging.getLogger(__name__)
MAX_REQUEST_BYTES = 128 * 1024 * 1024
# How the core's refusals answer over HTTP (as RabbitMQ's management API maps AMQP's).
CORE_ERRORS: Final[dict[type[CoreError], tuple[int, str]]] = {
    NotFound: (404, "not_found"),
    AccessRefused: (403, "access_refused"),
    ResourceLocked: (405, "resource_locked"),
    PreconditionFailed: (400, "bad_request"),
    InvalidArgument: (400, "bad_request"),
    NotAllowed: (403, "not_allowed"),
    Unsupported: (501, "not_implemented"),
}


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return _error(exc.status, exc.kind, exc.reason)
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
    except CoreError as exc:
        status, kind = CORE_ERRORS.get(type(exc), (400, "bad_request"))
        return _error(status, kind, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and the like
        if exc.status == 404:
            return _error(404, "Object Not Found", "Not Found")  # RabbitMQ's words
        return _error(exc.status, exc.reason.lower().replace(" ", "_"), exc.text or exc.reason)
    except Exception:  # a bug: logged, and still a JSON answer
        log.exception("HTTP API error", extra={"path": request.path, "method": request.method})
        return _error(500, "internal_error", "internal error (logged by the broker)")


def make_app(
    core: BrokerCore, info: dict[str, Any], resources: ResourceMonitor | None = None
) -> web.Application:
    app = web.Application(middlewares=[errors, authenticate], client_max_size=MAX_REQUEST_BYTES)
    app[CORE] = core
    app[INFO] = info
    app[SESSIONS] = Sessions()
    app[overview.RESOURCES] = resources
    for module in (
        overview,
        management,
        definitions,
        policies,
        queues,
        exchanges,
        bindings,
        connections,
        kafka_api,
        kafka_records,
        kafka_groups,
        metrics,
        ui,
    ):
        app.add_routes(module.routes)
    return app
