"""A small client for the HTTP API in tests: basic auth, JSON both ways, (status, body)."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp


def auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class Api:
    def __init__(self, http: aiohttp.ClientSession, url: str, amqp_url: str) -> None:
        self.http, self.url, self.amqp_url = http, url, amqp_url

    async def call(
        self, method: str, path: str, body: Any = None, who: tuple[str, str] = ("guest", "guest")
    ) -> tuple[int, Any]:
        async with self.http.request(method, self.url + path, json=body, headers=auth(*who)) as r:
            text = await r.text()
            return r.status, (await r.json()) if text else None
