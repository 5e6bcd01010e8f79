"""The event loop Jackalope runs on: uvloop when it is installed, asyncio's otherwise."""

from __future__ import annotations

import asyncio
import os
from typing import Any

uvloop: Any
try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency on every platform we test
    uvloop = None


def new_event_loop() -> asyncio.AbstractEventLoop:
    if uvloop is not None and os.environ.get("JACKALOPE_NO_UVLOOP") != "1":
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        return loop
    return asyncio.new_event_loop()


def name() -> str:
    return "uvloop" if uvloop is not None and os.environ.get("JACKALOPE_NO_UVLOOP") != "1" else "asyncio"
