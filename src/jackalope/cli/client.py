"""The admin commands' HTTP client: one authenticated JSON request at a time to the broker's
management API, as rabbitmqadmin talks to it (no AMQP, no broker state here).

Failures are sorted into what a script needs to tell apart: :class:`Unavailable` (nothing
answers at the address), :class:`AuthFailed` (401/403: bad credentials or a user who may not)
and :class:`ApiFailed` (any other error answer, with the API's ``reason``).
"""

from __future__ import annotations

import base64
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

DEFAULT_URL = "http://localhost:15672"
CHUNK = 64 * 1024


class ClientError(Exception):
    """A request that did not succeed; ``str()`` is the message for the user."""


class Unavailable(ClientError):
    """No broker answers at the address (refused, unresolvable, timed out)."""


class AuthFailed(ClientError):
    """The API refused the credentials or the user's tags (401 or 403)."""


class ApiFailed(ClientError):
    """Any other error status; ``status`` and the API's ``error`` kind and ``reason``."""

    def __init__(self, status: int, kind: str, reason: str) -> None:
        super().__init__(f"{reason} (HTTP {status} {kind})" if kind else f"{reason} (HTTP {status})")
        self.status = status
        self.kind = kind
        self.reason = reason


def path(*segments: str) -> str:
    """``/api/`` and the segments, each percent-encoded (``/`` as ``%2F``, as vhost names need)."""
    return "/api/" + "/".join(urllib.parse.quote(s, safe="") for s in segments)


@dataclass
class Response:
    status: int
    body: Any  # the decoded JSON, or None for an empty answer


Progress = Callable[[int, int], None]  # (bytes sent, bytes in all)


class _Upload:
    """A request body read in chunks, reporting how much is sent (an import's progress)."""

    def __init__(self, data: bytes, progress: Progress) -> None:
        self._data = data
        self._progress = progress

    def __iter__(self) -> Iterator[bytes]:
        total = len(self._data)
        for start in range(0, total, CHUNK):
            yield self._data[start : start + CHUNK]
            self._progress(min(start + CHUNK, total), total)


class Client:
    def __init__(self, url: str, username: str, password: str, timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"--url must be an http:// or https:// address, not {url!r}")
        self.base = url.rstrip("/")
        self.timeout = timeout
        credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._auth = "Basic " + credentials

    def get(self, api_path: str, query: dict[str, str] | None = None) -> Any:
        return self.request("GET", api_path, query=query).body

    def put(self, api_path: str, body: Any) -> Response:
        return self.request("PUT", api_path, body)

    def post(self, api_path: str, body: Any) -> Any:
        return self.request("POST", api_path, body).body

    def patch(self, api_path: str, body: Any) -> Any:
        return self.request("PATCH", api_path, body).body

    def delete(self, api_path: str, query: dict[str, str] | None = None) -> Response:
        return self.request("DELETE", api_path, query=query)

    def request(
        self,
        method: str,
        api_path: str,
        body: Any = None,
        *,
        query: dict[str, str] | None = None,
        accept: tuple[int, ...] = (),
        headers: dict[str, str] | None = None,
        progress: Progress | None = None,
    ) -> Response:
        """One request; a JSON ``body`` is sent as JSON.  Error statuses raise (see the module
        docstring) unless listed in ``accept``; ``progress`` hears how much of the body is sent."""
        url = self.base + api_path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {**(headers or {}), "Authorization": self._auth, "Accept": "application/json"}
        data: bytes | _Upload | None = None
        if body is not None:
            encoded = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
            headers["Content-Length"] = str(len(encoded))
            data = encoded if progress is None else _Upload(encoded, progress)
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return Response(answer.status, _decode(answer))
        except urllib.error.HTTPError as exc:
            with exc:
                decoded = _decode(exc)
            if exc.code in accept:
                return Response(exc.code, decoded)
            raise _failure(exc.code, decoded) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise Unavailable(f"cannot connect to {self.base}: {_why(reason)}") from None


def _decode(answer: IO[bytes]) -> Any:
    raw = answer.read()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace").strip()


def _failure(status: int, body: Any) -> ClientError:
    if isinstance(body, dict):
        kind, reason = str(body.get("error", "")), str(body.get("reason", body.get("error", "")))
    else:
        kind, reason = "", str(body or "no reason given")
    if status in (401, 403):
        return AuthFailed(f"{reason} (HTTP {status} {kind})" if kind else f"{reason} (HTTP {status})")
    return ApiFailed(status, kind, reason)


def _why(reason: object) -> str:
    if isinstance(reason, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(reason, socket.gaierror):
        return f"unknown host ({reason.strerror})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)
