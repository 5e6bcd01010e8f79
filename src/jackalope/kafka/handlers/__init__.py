"""Request handlers, one module per group of APIs.

A handler is ``async def handle(ctx: RequestContext, request) -> response | None``: it gets
the kio request dataclass of the version the client sent and returns the kio response of the
same version (``None``: no response, as for Produce with acks=0).  Each module lists what it
serves in ``APIS``; :mod:`jackalope.kafka.registry` collects them.  Responses are built with
:func:`jackalope.kafka.protocol.build`, passing every field any version has.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from jackalope.kafka.context import RequestContext

Handler = Callable[[RequestContext, Any], Awaitable[Any]]


@dataclass(frozen=True)
class Api:
    key: int
    min_version: int
    max_version: int
    handler: Handler
    # allowed before SASL authentication completes
    before_auth: bool = False
