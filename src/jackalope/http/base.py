"""What every HTTP API module shares: the app's keys, errors, the JSON body, and who may call.

Every request authenticates with HTTP basic auth against the broker's users, and, as
RabbitMQ's management API, must come from a user with a management tag (``management``,
``policymaker``, ``monitoring`` or ``administrator``); failures are 401 with RabbitMQ's
``error``/``reason`` pairs (``not_authorized``/``Not_Authorized`` for bad credentials,
``not_authorised``/``Not management user``, ``... Not administrator user`` and so on for a
user who may not).  The loopback rule holds too: guest from elsewhere gets ``User can only
log in via localhost``.

The web UI's pages log in once with a form instead (:mod:`jackalope.http.ui`), which opens a
session (:mod:`jackalope.http.sessions`): a request without basic auth may carry that
session's cookie, and the user is looked up again on every request (tags, the loopback rule).
A change (any method but GET/HEAD/OPTIONS) made with the cookie must also carry the session's
CSRF token, in the ``X-CSRF-Token`` header or a form's ``csrf_token`` field (403 otherwise);
the cookie is ``SameSite=Strict`` besides.  Without credentials a UI page redirects to the
login page, and everything else stays a 401 JSON answer.  Handlers marked :func:`public`
(the login page) and the UI's static files need no credentials.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import web

from jackalope.core import BrokerCore
from jackalope.core.access import LoginRefused
from jackalope.core.users import User
from jackalope.http.sessions import COOKIE, CSRF_FIELD, CSRF_HEADER, SESSIONS, Session

log = logging.getLogger(__name__)

CORE: web.AppKey[BrokerCore] = web.AppKey("core", BrokerCore)
INFO: web.AppKey[dict[str, Any]] = web.AppKey("info")
# The request's authenticated User (a RequestKey where aiohttp has them).
USER: Any = web.RequestKey("user", User) if hasattr(web, "RequestKey") else "jackalope.user"
# The UI session the request came with, if it came with one.
SESSION: Any = web.RequestKey("session", Session) if hasattr(web, "RequestKey") else "jackalope.session"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)
LOGIN_PATH = "/login"
_PUBLIC = "_jackalope_public"
_PAGE = "_jackalope_page"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORMS = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def public(handler: H) -> H:
    """Mark a handler that needs no credentials (the login page)."""
    setattr(handler, _PUBLIC, True)
    return handler


def page(handler: H) -> H:
    """Mark a handler as a UI page: without credentials it redirects to the login page."""
    setattr(handler, _PAGE, True)
    return handler


class ApiError(Exception):
    def __init__(self, status: int, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.kind = kind
        self.reason = reason


def error_response(status: int, kind: str, reason: str) -> web.Response:
    return web.json_response({"error": kind, "reason": reason}, status=status)


def not_found() -> ApiError:
    return ApiError(404, "Object Not Found", "Not Found")  # RabbitMQ's words


def bad_request(reason: str) -> ApiError:
    return ApiError(400, "bad_request", reason)


async def json_body(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad_request("request body is not valid JSON") from None


def _credentials(request: web.Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def _refused(reason: str) -> web.Response:
    return web.json_response(
        {"error": "not_authorized", "reason": reason},
        status=401,
        headers={"WWW-Authenticate": 'Basic realm="Jackalope"'},
    )


def _needs_no_credentials(request: web.Request) -> bool:
    match = request.match_info
    if getattr(match.handler, _PUBLIC, False):
        return True
    route = getattr(match, "route", None)
    return isinstance(getattr(route, "resource", None), web.StaticResource)


def _no_credentials(request: web.Request) -> web.StreamResponse:
    if getattr(request.match_info.handler, _PAGE, False) and request.method in _SAFE_METHODS:
        raise web.HTTPSeeOther(f"{LOGIN_PATH}?next={quote(request.path_qs, safe='')}")
    return _refused("Not_Authorized")


def _session_user(request: web.Request) -> tuple[Session, User] | None:
    """The session of the request's cookie and its user, if both are still good."""
    sessions = request.app.get(SESSIONS)
    token = request.cookies.get(COOKIE)
    if sessions is None or not token:
        return None
    session = sessions.get(token)
    if session is None:
        return None
    core = request.app[CORE]
    user = core.access.users.get(session.user)
    try:
        core.check_login_source(session.user, request.remote)
    except LoginRefused:
        user = None
    if user is None or not user.may_manage:
        sessions.close(token)
        return None
    return session, user


async def _csrf_token(request: web.Request) -> str | None:
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.content_type in _FORMS:
        value = (await request.post()).get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    return given


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Basic auth (or a UI session's cookie), the loopback rule and a management tag, on every
    endpoint."""
    if _needs_no_credentials(request):
        return await handler(request)
    core = request.app[CORE]
    credentials = _credentials(request)
    if credentials is None:
        found = _session_user(request)
        if found is None:
            return _no_credentials(request)
        session, user = found
        if request.method not in _SAFE_METHODS and not session.csrf_matches(await _csrf_token(request)):
            return error_response(403, "forbidden", "missing or wrong CSRF token (X-CSRF-Token header)")
        request[USER] = user
        request[SESSION] = session
        return await handler(request)
    name, password = credentials
    try:
        user = core.login(name, password, request.remote)
    except LoginRefused as exc:
        log.warning("HTTP access denied", extra={"peer": request.remote, "user": name, "reason": str(exc)})
        if core.authenticate(name, password):
            return _refused("User can only log in via localhost")
        return _refused("Not_Authorized")
    if not user.may_manage:
        return error_response(401, "not_authorised", "Not management user")
    request[USER] = user
    return await handler(request)


def current_user(request: web.Request) -> User:
    user: User = request[USER]
    return user


def require_administrator(request: web.Request) -> User:
    user = current_user(request)
    if not user.is_administrator:
        raise ApiError(401, "not_authorised", "Not administrator user")
    return user


def require_monitor(request: web.Request) -> User:
    user = current_user(request)
    if not user.is_monitor:
        raise ApiError(401, "not_authorised", "Not monitor user")
    return user


def visible_vhosts(request: web.Request) -> list[str]:
    """The vhosts a user may see: all for administrators and monitors, else those it has
    permissions in (as RabbitMQ's management API lists them)."""
    core = request.app[CORE]
    user = current_user(request)
    if user.is_monitor:
        return list(core.vhosts)
    allowed = set(core.access.vhosts_of(user.name))
    return [name for name in core.vhosts if name in allowed]


def require_vhost(request: web.Request, name: str) -> None:
    """The vhost exists (404) and the user may see it (401, RabbitMQ's words)."""
    if name not in request.app[CORE].vhosts:
        raise not_found()
    if name not in visible_vhosts(request):
        raise ApiError(401, "not_authorised", "User not authorised to access virtual host")


def created(new: bool) -> web.Response:
    """RabbitMQ's answer to a PUT: 201 when it created, 204 when it changed or confirmed."""
    return web.Response(status=201 if new else 204)


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON body, which must be an object (an empty body is ``{}``)."""
    body = await json_body(request)
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    return body


def unknown_keys(body: dict[str, Any], known: set[str], path: dict[str, str] | None = None) -> None:
    """400 naming a body key the endpoint does not take (never taken and ignored).  Keys in
    ``path`` repeat the URL's parts (rabbitmqadmin sends them): they must agree with it."""
    for name, value in (path or {}).items():
        if name in body and body[name] != value:
            raise bad_request(f"{name} {body[name]!r} in the body disagrees with {value!r} in the path")
    extra = sorted(set(body) - known - set(path or {}))
    if extra:
        raise bad_request(f"unsupported field(s): {', '.join(extra)}")


def flag(body: dict[str, Any], name: str, default: bool) -> bool:
    """A boolean field; ``"true"``/``"false"`` too, as rabbitmqadmin sends them (400 otherwise)."""
    value = body.get(name, default)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise bad_request(f"{name} must be true or false")
    return value


def integer(body: dict[str, Any], name: str, default: int | None) -> int | None:
    """An integer field; a decimal string too, as rabbitmqadmin sends it (400 otherwise)."""
    value = body.get(name, default)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise bad_request(f"{name} must be an integer")
    return value
