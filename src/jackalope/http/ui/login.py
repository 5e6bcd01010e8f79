"""Logging in and out of the web UI: the login form checks the user as basic auth does
(:meth:`jackalope.core.BrokerCore.login`: the password, the loopback rule, a management tag)
and opens a session whose cookie the pages and their script then use."""

from __future__ import annotations

import logging

from aiohttp import web

from jackalope.core.access import LoginRefused
from jackalope.http.base import CORE, LOGIN_PATH, SESSION, public
from jackalope.http.sessions import COOKIE, SESSIONS, clear_cookie, set_cookie
from jackalope.http.ui.render import render

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


def safe_next(target: object) -> str:
    """Where to go after logging in: a path of this site only (never "//host" or a URL)."""
    if (
        isinstance(target, str)
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
    ):
        return target
    return "/"


@routes.get(LOGIN_PATH)
@public
async def login_form(request: web.Request) -> web.Response:
    return render(
        request,
        "login.html",
        title="Log in",
        next=safe_next(request.query.get("next")),
        error="",
        username="",
    )


@routes.post(LOGIN_PATH)
@public
async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name, password = str(form.get("username", "")), str(form.get("password", ""))
    target = safe_next(form.get("next"))
    core = request.app[CORE]
    error = ""
    try:
        user = core.login(name, password, request.remote)
    except LoginRefused as exc:
        log.warning("UI login refused", extra={"peer": request.remote, "user": name, "reason": str(exc)})
        valid = core.authenticate(name, password)
        error = "User can only log in via localhost" if valid else "Login failed: wrong username or password."
    else:
        if not user.may_manage:
            error = "Not management user: this user has no management tag."
    if error:
        return render(
            request, "login.html", status=401, title="Log in", next=target, error=error, username=name
        )
    sessions = request.app[SESSIONS]
    sessions.close(request.cookies.get(COOKIE))
    session = sessions.open(user.name)
    response = _see_other(target)
    set_cookie(response, session, sessions.lifetime)
    return response


@routes.post("/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    """Ends the session (the middleware has checked its CSRF token)."""
    session = request.get(SESSION)
    if session is not None:
        request.app[SESSIONS].close(session.token)
    response = _see_other(LOGIN_PATH)
    clear_cookie(response)
    return response


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})
