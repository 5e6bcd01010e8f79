"""The storage engine's raw logs over HTTP: ``/api/logs[/{name}[/records|/truncate]]``.

The raw logs are the storage engine's, below every vhost and permission, so reading them
needs the ``monitoring`` (or ``administrator``) tag and changing them the ``administrator``
tag.  Record values travel as UTF-8 text, or base64 with ``encoding=base64``.  The logs
behind queues, streams, topics and the consumer groups belong to them: they can be read here
but not created, written, truncated or deleted.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web

from jackalope.http.base import CORE, ApiError, json_body, require_administrator, require_monitor
from jackalope.storage import Record

_json_body = json_body


def _decode(text: Any, encoding: str, what: str) -> bytes | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise ApiError(400, "bad_request", f"{what} must be a string or null")
    if encoding == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error:
            raise ApiError(400, "bad_request", f"{what} is not valid base64") from None
    return text.encode()


def _encode(data: bytes | None, encoding: str) -> str | None:
    if data is None:
        return None
    if encoding == "base64":
        return base64.b64encode(data).decode()
    return data.decode(errors="replace")


def _encoding(request: web.Request) -> str:
    encoding = request.query.get("encoding", "utf-8")
    if encoding not in ("utf-8", "base64"):
        raise ApiError(400, "bad_request", "encoding must be utf-8 or base64")
    return encoding


def _int_param(request: web.Request, name: str, default: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise ApiError(400, "bad_request", f"query parameter {name} is required")
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name} must be an integer") from None


_json_body = json_body


def _parse_records(body: Any, encoding: str) -> list[Record]:
    items = body.get("records") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise ApiError(
            400, "bad_request", 'body must be {"records": [{"value": ...}, ...]} with at least one'
        )
    records = []
    for item in items:
        if not isinstance(item, dict):
            raise ApiError(400, "bad_request", "each record must be an object")
        headers = item.get("headers")
        headers = {} if headers is None else headers
        timestamp = item.get("timestamp")
        if not isinstance(headers, dict):
            raise ApiError(400, "bad_request", "headers must be an object")
        if timestamp is not None and (not isinstance(timestamp, int) or isinstance(timestamp, bool)):
            raise ApiError(400, "bad_request", "timestamp must be an integer (ms since the epoch)")
        records.append(
            Record(
                value=_decode(item.get("value"), encoding, "value"),
                key=_decode(item.get("key"), encoding, "key"),
                headers=tuple((str(k), _decode(v, encoding, f"header {k}")) for k, v in headers.items()),
                timestamp=timestamp,
            )
        )
    return records


routes = web.RouteTableDef()


def _writable(request: web.Request) -> str:
    """The log named in the path, if the raw log API may change it (403 otherwise) and the
    user is an administrator (401 otherwise)."""
    require_administrator(request)
    name = request.match_info["name"]
    owner = request.app[CORE].log_owner(name)
    if owner is not None:
        raise ApiError(403, "access_refused", f"log {name!r} belongs to {owner}: change it through it")
    return name


@routes.get("/api/logs")
async def list_logs(request: web.Request) -> web.Response:
    require_monitor(request)
    core = request.app[CORE]
    return web.json_response([core.describe(name) for name, _ in core.logs])


@routes.get("/api/logs/{name}")
async def get_log(request: web.Request) -> web.Response:
    require_monitor(request)
    return web.json_response(request.app[CORE].describe(request.match_info["name"]))


@routes.put("/api/logs/{name}")
async def put_log(request: web.Request) -> web.Response:
    require_administrator(request)
    body = await _json_body(request)
    overrides = body.get("config", {}) if isinstance(body, dict) else None
    if not isinstance(overrides, dict):
        raise ApiError(400, "bad_request", "config must be an object")
    name = _writable(request)
    try:
        _, created = request.app[CORE].create_log(name, overrides)
    except (TypeError, ValueError) as exc:
        raise ApiError(400, "bad_request", f"invalid log config: {exc}") from None
    return web.json_response(request.app[CORE].describe(name), status=201 if created else 200)


@routes.delete("/api/logs/{name}")
async def delete_log(request: web.Request) -> web.Response:
    request.app[CORE].delete_log(_writable(request))
    return web.Response(status=204)


@routes.post("/api/logs/{name}/records")
async def append_records(request: web.Request) -> web.Response:
    """Append records and answer once they are durable."""
    require_administrator(request)
    records = _parse_records(await _json_body(request), _encoding(request))
    info = await request.app[CORE].append(_writable(request), records)
    return web.json_response({"base_offset": info.base_offset, "last_offset": info.last_offset})


@routes.get("/api/logs/{name}/records")
async def read_records(request: web.Request) -> web.Response:
    require_monitor(request)
    core = request.app[CORE]
    name = request.match_info["name"]
    target = core.log(name)
    encoding = _encoding(request)
    offset = _int_param(request, "offset", target.start_offset)
    max_bytes = _int_param(request, "max_bytes", 1 << 20)
    records = target.read_records(offset, max_bytes)
    return web.json_response(
        {
            "records": [
                {
                    "offset": r.offset,
                    "timestamp": r.timestamp,
                    "key": _encode(r.key, encoding),
                    "value": _encode(r.value, encoding),
                    "headers": {k: _encode(v, encoding) for k, v in r.headers},
                }
                for r in records
            ],
            "next_offset": records[-1].offset + 1 if records else max(offset, target.start_offset),
        }
    )


@routes.post("/api/logs/{name}/truncate")
async def truncate(request: web.Request) -> web.Response:
    require_administrator(request)
    body = await _json_body(request)
    before = body.get("before") if isinstance(body, dict) else None
    if not isinstance(before, int) or isinstance(before, bool):
        raise ApiError(400, "bad_request", 'body must be {"before": <offset>}')
    core = request.app[CORE]
    name = _writable(request)
    core.log(name).truncate_prefix(before)
    return web.json_response(core.describe(name))
