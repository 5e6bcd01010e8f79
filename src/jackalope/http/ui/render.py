"""Rendering a UI page: the Jinja2 environment, the page's initial data read from the JSON API
in-process, and the error page.

The UI holds no broker state: what a page shows on first paint comes from the same JSON API
endpoint its script refreshes it from, called here in-process under the page's user (the
endpoint's own permission checks apply), never from the core directly.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web

from jackalope import __version__
from jackalope.http.base import SESSION, USER, ApiError, current_user, page
from jackalope.http.ui import formats
from jackalope.http.ui.tables import Table

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("jackalope.http.ui", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.ChainableUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(formats.FILTERS)
_env.globals.update(formats.GLOBALS)

PageHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def q(value: str) -> str:
    """One path segment, percent-encoded as the API's paths want them ("/" is %2F)."""
    return quote(value, safe="")


_env.filters["q"] = q


class ApiCallFailed(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def api_get(request: web.Request, path: str) -> Any:
    """GET ``path`` of this app's JSON API in-process, as the page's user; its JSON, or
    :class:`ApiCallFailed` with the endpoint's status and reason."""
    sub = request.clone(method="GET", rel_url=path)
    match = await request.app.router.resolve(sub)
    if match.http_exception is not None:
        raise ApiCallFailed(match.http_exception.status, match.http_exception.reason)
    match.add_app(request.app)
    match.freeze()
    sub._match_info = match  # as aiohttp's own dispatch sets it
    sub[USER] = current_user(request)
    try:
        response = await match.handler(sub)
    except ApiError as exc:
        raise ApiCallFailed(exc.status, exc.reason) from None
    except web.HTTPException as exc:
        raise ApiCallFailed(exc.status, exc.reason) from None
    if not isinstance(response, web.Response) or response.status >= 400:
        reason = _reason(response)
        raise ApiCallFailed(response.status, reason)
    body = response.body
    return json.loads(body) if isinstance(body, bytes) and body else None


def _reason(response: web.StreamResponse) -> str:
    body = getattr(response, "body", None)
    if isinstance(body, bytes):
        try:
            data = json.loads(body)
        except ValueError:
            return body.decode(errors="replace")
        if isinstance(data, dict):
            return str(data.get("reason", data.get("error", "")))
    return response.reason


async def api_get_or(request: web.Request, path: str, default: Any) -> tuple[Any, str | None]:
    """The JSON of ``path``, or ``default`` and the reason it could not be read (shown on the
    page; its script keeps trying)."""
    try:
        return await api_get(request, path), None
    except ApiCallFailed as exc:
        return default, f"{exc.status}: {exc.reason}"


async def vhost_names(request: web.Request) -> list[str]:
    vhosts, _ = await api_get_or(request, "/api/vhosts", [])
    return [v["name"] for v in vhosts if isinstance(v, dict) and "name" in v]


async def list_page(
    request: web.Request, template: str, title: str, table: Table, **context: Any
) -> web.Response:
    if table.paged:
        table = table.page(request.query)
    data, error = await api_get_or(request, table.source, [])
    return render(request, template, title=title, table=table, data=data, error=error, **context)


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    session = request.get(SESSION)
    user = request.get(USER)
    text = _env.get_template(template).render(
        request_path=request.path,
        user=user.name if user is not None else None,
        is_admin=bool(user is not None and user.is_administrator),
        csrf=session.csrf if session is not None else "",
        version=__version__,
        **context,
    )
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def ui_page(handler: PageHandler) -> PageHandler:
    """A page handler: redirects to the login page without credentials, and renders an
    endpoint's refusal (404 for an unknown object, 401 for a user who may not) as an error page."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiCallFailed as exc:
            title = "Not found" if exc.status == 404 else "Refused" if exc.status in (401, 403) else "Error"
            return render(
                request, "error.html", status=exc.status, title=title, error=exc.reason, code=exc.status
            )

    wrapper.__name__ = handler.__name__
    wrapper.__doc__ = handler.__doc__
    return page(wrapper)
