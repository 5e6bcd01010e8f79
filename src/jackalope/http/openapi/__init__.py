"""The OpenAPI 3.1 document of the HTTP API, served at ``GET /api/openapi.json``
(authenticated like every endpoint).

The document is declarative and lives beside the API: the objects' schemas in
:mod:`.schemas`, the operations path by path in :mod:`.paths` (the Kafka side's schemas and
operations in :mod:`.kafka`), and what every operation shares
(basic auth, the error object ``{"error", "reason"}``, RabbitMQ's list parameters) added by
:mod:`.operations`.  It is built once.  tests/server/test_openapi.py checks that every route
the app serves has its path here and every path here a route, and runs schemathesis against
it.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Final

from aiohttp import web

from jackalope import __version__
from jackalope.http.openapi import kafka, paths, schemas
from jackalope.http.openapi.operations import complete, error_responses

routes = web.RouteTableDef()
OPENAPI_VERSION = "3.1.0"
SCHEMAS: Final = {**schemas.SCHEMAS, **kafka.SCHEMAS}
PATHS: Final = {**paths.PATHS, **kafka.PATHS}


@functools.cache
def document() -> dict[str, Any]:
    """The whole document (built on first use; callers must not change it)."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Jackalope HTTP API",
            "version": __version__,
            "description": (
                "RabbitMQ's management API (same paths and JSON) and Jackalope's own. "
                "Every request authenticates with HTTP basic auth against the broker's users; "
                'errors are JSON {"error", "reason"}. Vhost names in paths are percent-encoded '
                '(%2F for "/").'
            ),
        },
        "paths": {
            path: {method: complete(path, operation) for method, operation in methods.items()}
            for path, methods in PATHS.items()
        },
        "components": {
            "schemas": SCHEMAS,
            "responses": error_responses(),
            "securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic"}},
        },
        "security": [{"basicAuth": []}],
    }


@functools.cache
def _text() -> str:
    return json.dumps(document())


@routes.get("/api/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(text=_text(), content_type="application/json")
