"""How the UI shows a value, on the server's first render; ``static/ui.js`` formats the
same kinds the same way when it refreshes a table (``fmt`` there)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

_PLACEHOLDER = re.compile(r"\{([\w.]+)(?::([^}]*))?\}")


def lookup(row: Any, key: str) -> Any:
    """``row[a][b]`` for the dotted ``key`` "a.b" (None where a step is missing)."""
    value = row
    for part in key.split(".") if key else ():
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def fill(template: str, row: Any, encode: bool = True) -> str:
    """A path template "/queues/{vhost}/{name:amq.default}" with the row's values, each
    percent-encoded as one path segment (unless not ``encode``: a sentence); ``:x`` is the
    value used when the field is empty."""

    def one(match: re.Match[str]) -> str:
        value = lookup(row, match.group(1))
        text = ("" if value is None else str(value)) or (match.group(2) or "")
        return quote(text, safe="") if encode else text

    return _PLACEHOLDER.sub(one, template)


def fmt_int(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else _text(value)


def fmt_rate(value: Any) -> str:
    return f"{value:.1f}/s" if isinstance(value, int | float) and not isinstance(value, bool) else ""


def fmt_bool(value: Any) -> str:
    return "" if value is None else ("yes" if value else "no")


def fmt_bytes(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return _text(value)
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def fmt_time(value: Any) -> str:
    """Milliseconds since the epoch, in UTC."""
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        return _text(value)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value / 1000))


def fmt_list(value: Any) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list) else _text(value)


def fmt_json(value: Any) -> str:
    if value is None or value == {} or value == []:
        return ""
    return json.dumps(value, separators=(", ", ": "))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return fmt_json(value)
    return str(value)


FORMATS: dict[str, Callable[[Any], str]] = {
    "text": _text,
    "int": fmt_int,
    "rate": fmt_rate,
    "bool": fmt_bool,
    "bytes": fmt_bytes,
    "time": fmt_time,
    "json": fmt_json,
    "list": fmt_list,
}


def fmt(value: Any, kind: str = "text") -> str:
    return FORMATS.get(kind, _text)(value)


def field(row: Any, key: str, kind: str = "text") -> Markup:
    return escape(fmt(lookup(row, key), kind))


FILTERS: dict[str, Callable[..., Any]] = {"fmt": fmt, "fill": fill, "pair": lambda v: (v, v)}
GLOBALS: dict[str, Any] = {"lookup": lookup, "field": field}
