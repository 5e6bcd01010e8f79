"""The management web UI at ``/``: server-rendered pages (Jinja2 templates) whose one small
script (``static/ui.js``) refreshes their tables from the JSON API and sends their forms to it.

The UI holds no broker state: every figure on a page comes from the JSON API, on the server's
first render (in-process, :func:`jackalope.http.ui.render.api_get`) and in the browser after.
Pages need a login (:mod:`jackalope.http.ui.login`); the session's cookie then authenticates the
pages and the script's API calls (:mod:`jackalope.http.base`).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from jackalope.http.ui import admin_pages, amqp_pages, kafka_pages, login

STATIC = Path(__file__).parent / "static"

routes: list[web.AbstractRouteDef] = [
    *login.routes,
    *amqp_pages.routes,
    *kafka_pages.routes,
    *admin_pages.routes,
    web.static("/static", STATIC),
]
