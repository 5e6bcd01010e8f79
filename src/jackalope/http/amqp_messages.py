"""Messages over the management API, in RabbitMQ's JSON: ``properties`` objects to and from
AMQP's property list, payloads as text or base64, and publishing through an exchange.

Messages at rest are AMQP-encoded (the broker's message format), so the HTTP front-end reads
and writes them with the AMQP property codec.  Property names are RabbitMQ's (``type`` for
pamqp's ``message_type``; ``timestamp`` in seconds); an unknown one is refused.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
from typing import Any, Final

from jackalope.amqp import properties as props
from jackalope.amqp.errors import FrameError
from jackalope.core.message import Message, QueueEntry
from jackalope.core.vhost import VirtualHost
from jackalope.http.base import bad_request

# RabbitMQ's JSON names -> pamqp's keyword names, with the type each must have.
PROPERTIES: Final[dict[str, tuple[str, type | tuple[type, ...]]]] = {
    "content_type": ("content_type", str),
    "content_encoding": ("content_encoding", str),
    "headers": ("headers", dict),
    "delivery_mode": ("delivery_mode", int),
    "priority": ("priority", int),
    "correlation_id": ("correlation_id", str),
    "reply_to": ("reply_to", str),
    "expiration": ("expiration", str),
    "message_id": ("message_id", str),
    "timestamp": ("timestamp", int),
    "type": ("message_type", str),
    "user_id": ("user_id", str),
    "app_id": ("app_id", str),
    "cluster_id": ("cluster_id", str),
}
_BY_PAMQP: Final = {pamqp: name for name, (pamqp, _) in PROPERTIES.items()}


def _typed(value: Any, kind: type | tuple[type, ...]) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def encode(fields: Any) -> bytes:
    """A ``properties`` object as an AMQP property list (400 for an unknown or ill-typed one)."""
    if fields is None:
        fields = {}
    if not isinstance(fields, dict):
        raise bad_request("properties must be an object")
    kwargs: dict[str, Any] = {}
    value: Any
    for name, value in fields.items():
        spec = PROPERTIES.get(name)
        if spec is None:
            raise bad_request(f"unknown message property {name!r}")
        pamqp_name, kind = spec
        if not _typed(value, kind):
            raise bad_request(f"message property {name} must be a {getattr(kind, '__name__', kind)}")
        if name == "timestamp":
            value = datetime.datetime.fromtimestamp(value, datetime.UTC)
        elif name == "delivery_mode" and value not in (1, 2):
            raise bad_request("delivery_mode must be 1 or 2")
        elif name == "priority" and not 0 <= value <= 255:
            raise bad_request("priority must be between 0 and 255")
        elif name == "expiration" and not (value.isdigit()):
            raise bad_request("expiration must be a non-negative integer (ms) as a string")
        kwargs[pamqp_name] = value
    try:
        return props.encode_properties(**kwargs)
    except (TypeError, ValueError) as exc:
        raise bad_request(f"invalid message properties: {exc}") from None


def plain(value: Any) -> Any:
    """An AMQP field value as JSON can hold it (bytes as text, timestamps as seconds)."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, datetime.datetime):
        return int(value.timestamp())
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def decode(properties: bytes) -> dict[str, Any]:
    """An AMQP property list as RabbitMQ's ``properties`` object."""
    if not properties:
        return {}
    try:
        decoded = props.decode_properties(properties)
    except FrameError:
        return {}
    return {_BY_PAMQP.get(k, k): plain(v) for k, v in decoded.items()}


def payload(body: Any, encoding: Any) -> bytes:
    if not isinstance(body, str):
        raise bad_request("payload must be a string")
    if encoding in (None, "string"):
        return body.encode()
    if encoding == "base64":
        try:
            return base64.b64decode(body, validate=True)
        except binascii.Error:
            raise bad_request("payload is not valid base64") from None
    raise bad_request("payload_encoding must be string or base64")


def show_payload(body: bytes, encoding: str, truncate: int | None) -> dict[str, Any]:
    """RabbitMQ's ``payload``/``payload_encoding``/``payload_bytes`` for ``encoding`` auto
    (text when the body is UTF-8) or base64; ``truncate`` keeps that many bytes."""
    shown = body[:truncate] if truncate is not None else body
    out: dict[str, Any] = {"payload_bytes": len(body)}
    if encoding == "auto":
        try:
            out.update(payload=shown.decode(), payload_encoding="string")
            return out
        except UnicodeDecodeError:
            pass
    out.update(payload=base64.b64encode(shown).decode(), payload_encoding="base64")
    return out


def message_json(
    entry: QueueEntry, properties: bytes, remaining: int, encoding: str, truncate: int | None
) -> dict[str, Any]:
    message = entry.message
    return {
        **show_payload(message.body, encoding, truncate),
        "redelivered": entry.redelivered,
        "exchange": message.exchange,
        "routing_key": message.routing_key,
        "message_count": remaining,
        "properties": decode(properties),
    }


async def publish(
    vhost: VirtualHost, exchange: str, routing_key: str, properties: bytes, body: bytes
) -> bool:
    """Route and enqueue one message, as basic.publish does; return whether it reached a queue,
    once it is durable everywhere it went (a persistent message to a durable queue)."""
    targets = vhost.route(exchange, routing_key, props.LazyProperties(properties))
    if not targets:
        return False
    fields = decode(properties)
    expiration = fields.get("expiration")
    message = Message(
        exchange,
        routing_key,
        properties,
        body,
        fields.get("delivery_mode") == 2,
        int(expiration) if isinstance(expiration, str) and expiration.isdigit() else None,
        fields.get("priority") or 0,
    )
    loop = asyncio.get_running_loop()
    waits: list[asyncio.Future[None]] = []
    routed = False
    for target in targets:
        entry = target.enqueue(message)
        if entry is None:
            continue
        routed = True
        if entry.offset != -1:
            done: asyncio.Future[None] = loop.create_future()

            def settle(error: BaseException | None, done: asyncio.Future[None] = done) -> None:
                if not done.done():
                    if error is None:
                        done.set_result(None)
                    else:
                        done.set_exception(error)

            target.when_durable(entry, settle)
            waits.append(done)
    if waits:
        await asyncio.gather(*waits)
    return routed
