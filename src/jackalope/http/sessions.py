"""The web UI's login sessions: a random token (the session cookie) for a user name, an expiry
and a CSRF token, kept by the HTTP app and nowhere else (the core knows nothing of them).

A session stands for a login done once with the password (:func:`jackalope.core.BrokerCore.login`,
as basic auth is): each request made with its cookie looks the user up again, so deleting the
user, or taking away its management tag, ends its sessions at once.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

COOKIE = "jackalope_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
# RabbitMQ's management UI keeps a login for 8 hours (login_session_timeout: 480 minutes).
SESSION_SECONDS = 8 * 3600
MAX_SESSIONS = 10_000


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    user: str
    csrf: str
    expires_at: float

    def csrf_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


class Sessions:
    """Token -> Session, with expiry; the oldest go first past ``MAX_SESSIONS``."""

    def __init__(
        self, lifetime: float = SESSION_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.lifetime = lifetime
        self._clock = clock
        self._by_token: dict[str, Session] = {}

    def open(self, user: str) -> Session:
        self._prune()
        session = Session(
            token=secrets.token_urlsafe(32),
            user=user,
            csrf=secrets.token_urlsafe(24),
            expires_at=self._clock() + self.lifetime,
        )
        self._by_token[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        session = self._by_token.get(token)
        if session is None:
            return None
        if session.expires_at <= self._clock():
            del self._by_token[token]
            return None
        return session

    def close(self, token: str | None) -> None:
        if token:
            self._by_token.pop(token, None)

    def __len__(self) -> int:
        return len(self._by_token)

    def _prune(self) -> None:
        now = self._clock()
        for token in [t for t, s in self._by_token.items() if s.expires_at <= now]:
            del self._by_token[token]
        while len(self._by_token) >= MAX_SESSIONS:  # dicts keep insertion order: oldest first
            del self._by_token[next(iter(self._by_token))]


SESSIONS: web.AppKey[Sessions] = web.AppKey("sessions", Sessions)


def set_cookie(response: web.StreamResponse, session: Session, lifetime: float) -> None:
    response.set_cookie(
        COOKIE, session.token, max_age=int(lifetime), path="/", httponly=True, samesite="Strict"
    )


def clear_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/")
