"""RabbitMQ's list parameters for every ``GET`` that answers a list: ``name`` (with
``use_regex``), ``sort`` and ``sort_reverse``, ``columns``, and ``page`` with ``page_size``.

Without ``page`` the answer is the (filtered, sorted, trimmed) list itself; with it,
RabbitMQ's page object: ``filtered_count``, ``item_count``, ``items``, ``page``,
``page_count``, ``page_size`` and ``total_count``.  ``sort`` and ``columns`` take dotted
paths into the objects (``message_stats.publish_details.rate``).  A bad parameter is 400
with RabbitMQ's reasons.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Final

from aiohttp import web

from jackalope.http.base import bad_request

MAX_PAGE_SIZE = 500  # RabbitMQ's
DEFAULT_PAGE_SIZE = 100


_MISSING: Final = object()


def _path(item: Any, dotted: str, missing: Any = None) -> Any:
    for part in dotted.split("."):
        if not isinstance(item, dict) or part not in item:
            return missing
        item = item[part]
    return item


def _sort_key(value: Any) -> tuple[int, Any]:
    """Missing values first, then numbers, then text (RabbitMQ sorts a missing field low)."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (1, value)
    return (2, str(value))


def _columns(item: dict[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in columns:
        parts = column.split(".")
        value = _path(item, column, _MISSING)
        if value is _MISSING:
            continue
        target = out
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return out


def _int(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"{name} must be an integer") from None


def _filtered(request: web.Request, items: list[dict[str, Any]], field: str) -> list[dict[str, Any]]:
    name = request.query.get("name")
    if not name:
        return items
    if request.query.get("use_regex", "false").lower() == "true":
        try:
            pattern = re.compile(name, re.IGNORECASE)
        except re.error as exc:
            raise bad_request(f"invalid regular expression {name!r}: {exc}") from None
        return [i for i in items if pattern.search(str(i.get(field, "")))]
    needle = name.lower()
    return [i for i in items if needle in str(i.get(field, "")).lower()]


def respond(
    request: web.Request, items: list[dict[str, Any]], default_sort: str = "name", name_field: str = "name"
) -> web.Response:
    """The list answer for ``items`` with the request's list parameters applied; ``name``
    filters on ``name_field`` (``group_id`` for consumer groups)."""
    return web.json_response(shape(request, items, default_sort, name_field))


def shape(
    request: web.Request, items: list[dict[str, Any]], default_sort: str = "name", name_field: str = "name"
) -> Any:
    total = len(items)
    selected = _filtered(request, items, name_field)
    sort = request.query.get("sort", default_sort)
    reverse = request.query.get("sort_reverse", "false").lower() == "true"
    if sort:
        selected = sorted(selected, key=lambda i: _sort_key(_path(i, sort)), reverse=reverse)
    columns = [c for c in request.query.get("columns", "").split(",") if c]
    page_raw = request.query.get("page")
    if page_raw is None:
        return [_columns(i, columns) for i in selected] if columns else selected
    page = _int(request, "page", 1)
    page_size = _int(request, "page_size", DEFAULT_PAGE_SIZE)
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise bad_request(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
    page_count = max(1, math.ceil(len(selected) / page_size))
    if page < 1 or page > page_count:
        raise bad_request("page_out_of_range")
    chunk = selected[(page - 1) * page_size : page * page_size]
    return {
        "filtered_count": len(selected),
        "item_count": len(chunk),
        "items": [_columns(i, columns) for i in chunk] if columns else chunk,
        "page": page,
        "page_count": page_count,
        "page_size": page_size,
        "total_count": total,
    }
