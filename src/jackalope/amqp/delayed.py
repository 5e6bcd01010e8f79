"""A delayed message, once due, is routed with its ``x-delay`` header negated (5000 becomes
-5000), as RabbitMQ's delayed-message plugin does: further delayed exchanges then pass it at
once, and consumers can tell it was delayed. Every other property stays as published."""

from __future__ import annotations

from typing import Any

from jackalope.amqp import properties as props
from jackalope.amqp.errors import FrameError
from jackalope.core.errors import CoreError
from jackalope.core.exchanges.delayed import DELAY_HEADER, delay_of


def release_delayed(properties: bytes) -> tuple[bytes, props.LazyProperties]:
    """The properties a due message is routed with, and their lazy decoding for the exchanges."""
    try:
        fields: dict[str, Any] = dict(props.decode_properties(properties)) if properties else {}
        delay = delay_of(fields.get("headers") or {})
    except (FrameError, CoreError, ValueError, LookupError):
        delay = None
    if delay is not None:
        fields["headers"] = {**fields["headers"], DELAY_HEADER: -delay}
        properties = props.encode_properties(**fields)
    return properties, props.LazyProperties(properties)
