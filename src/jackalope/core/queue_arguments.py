"""The declaration arguments of classic and quorum queues, checked as RabbitMQ checks them.

An argument RabbitMQ knows is either done as RabbitMQ documents it or refused with
PRECONDITION_FAILED naming it, never taken and ignored:

* done: ``x-max-length``, ``x-max-length-bytes``, ``x-overflow``, ``x-dead-letter-exchange``,
  ``x-dead-letter-routing-key``, ``x-expires``, ``x-message-ttl``, ``x-single-active-consumer``,
  ``x-max-priority``, ``x-consumer-timeout``;
* taken with nothing to do, as on a single RabbitMQ node: ``x-queue-mode`` (every queue pages
  to disk as a lazy one does), ``x-queue-version`` (the storage is its own),
  ``x-queue-master-locator`` (there is one node);
* refused as RabbitMQ refuses another type's arguments (:data:`TAKES`, :data:`KNOWN`).

A quorum queue takes the common ones and its own (``x-delivery-limit``,
``x-dead-letter-strategy``, the delayed retries of RabbitMQ 4.3, the group sizes and leader
locator, which one node has nothing to do with), and refuses the classic-only ones.

Arguments RabbitMQ does not know (``x-foo``) are kept and shown, as RabbitMQ keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from jackalope.core.errors import InvalidArgument
from jackalope.core.queue_types import CLASSIC, QUEUE_TYPES, QUORUM

QUEUE_TYPE: Final = "x-queue-type"

# The arguments each type takes (besides x-queue-type); RabbitMQ refuses the
# arguments of the other types "of queue type rabbit_<type>_queue".
_COMMON: Final = frozenset(
    {
        "x-max-length",
        "x-max-length-bytes",
        "x-overflow",
        "x-dead-letter-exchange",
        "x-dead-letter-routing-key",
        "x-expires",
        "x-message-ttl",
        "x-single-active-consumer",
        "x-max-priority",
        "x-consumer-timeout",
    }
)
TAKES: Final = {
    CLASSIC: _COMMON | {"x-queue-mode", "x-queue-version", "x-queue-master-locator"},
    QUORUM: _COMMON
    | {
        "x-delivery-limit",
        "x-dead-letter-strategy",
        "x-quorum-initial-group-size",
        "x-quorum-target-group-size",
        "x-queue-leader-locator",
        "x-delayed-retry-type",
        "x-delayed-retry-min",
        "x-delayed-retry-max",
    },
}
# Every argument of a queue type RabbitMQ knows (those of the stream type included).
KNOWN: Final = (
    TAKES[CLASSIC]
    | TAKES[QUORUM]
    | {
        "x-max-in-memory-length",
        "x-max-in-memory-bytes",
        "x-initial-cluster-size",
        "x-max-age",
        "x-stream-max-segment-size-bytes",
        "x-stream-filter-size-bytes",
    }
)
_RABBIT_NAME: Final = {CLASSIC: "rabbit_classic_queue", QUORUM: "rabbit_quorum_queue"}
MAX_PRIORITY: Final = {CLASSIC: 255, QUORUM: 32}  # the highest x-max-priority of each type
DELIVERY_LIMIT: Final = 20  # a quorum queue's default x-delivery-limit (RabbitMQ 4)
_CHOICES: Final = {
    "x-overflow": ("drop-head", "reject-publish", "reject-publish-dlx"),
    "x-queue-mode": ("default", "lazy"),
    "x-queue-master-locator": ("min-masters", "client-local", "random"),
    "x-queue-leader-locator": ("client-local", "balanced"),
    "x-delayed-retry-type": ("disabled", "all", "failed", "returned"),
}
_NON_NEGATIVE: Final = (
    "x-max-length",
    "x-max-length-bytes",
    "x-message-ttl",
    "x-delayed-retry-min",
    "x-delayed-retry-max",
)
_POSITIVE: Final = (
    "x-expires",
    "x-consumer-timeout",
    "x-quorum-initial-group-size",
    "x-quorum-target-group-size",
)


def queue_type(arguments: Mapping[str, Any]) -> str:
    """The ``x-queue-type`` asked for (``classic`` when none is)."""
    value = arguments.get(QUEUE_TYPE)
    return CLASSIC if value is None else (text_value(value) or repr(value))


def check(arguments: Mapping[str, Any], what: str) -> str:
    """Raise InvalidArgument (406) for what a classic or quorum queue may not be declared
    with; return the type.  (Streams check their own: :func:`jackalope.core.stream.topic_configs`.)

    ``what`` names the queue RabbitMQ's way: ``queue 'q' in vhost '/'``."""
    kind = queue_type(arguments)
    if kind not in QUEUE_TYPES:
        raise _invalid(QUEUE_TYPE, what, f"\"unsupported queue type '{kind}'\"")
    takes = TAKES[kind]
    for name, value in arguments.items():
        if name in KNOWN and name not in takes:
            raise InvalidArgument(f"invalid arg '{name}' for {what} of queue type {_RABBIT_NAME[kind]}")
        _check_value(kind, name, value, what)
    if "x-dead-letter-routing-key" in arguments and "x-dead-letter-exchange" not in arguments:
        raise _invalid("x-dead-letter-routing-key", what, "routing_key_but_no_dlx_defined")
    return kind


def _check_value(kind: str, name: str, value: Any, what: str) -> None:
    if name in _NON_NEGATIVE or name in _POSITIVE or name in ("x-max-priority", "x-delivery-limit"):
        if not _is_int(value):
            raise _invalid(name, what, f'"expected integer, got {_kind(value)}"')
        floor = 1 if name in _POSITIVE else -1 if name == "x-delivery-limit" else 0
        if value < floor:
            raise _invalid(name, what, f"{{{'value_zero' if value == 0 else 'value_negative'},{value}}}")
        if name == "x-max-priority" and value > MAX_PRIORITY[kind]:
            raise _invalid(name, what, f"{{max_value_exceeded,{value}}}")
    elif name in _CHOICES:
        if text_value(value) not in _CHOICES[name]:
            raise _invalid(name, what, f'"unsupported value {value!r}"')
    elif name == "x-dead-letter-strategy":
        if text_value(value) not in ("at-most-once", "at-least-once"):
            raise _invalid(name, what, "invalid_dlx_strategy")
    elif name == "x-single-active-consumer":
        if not isinstance(value, bool):
            raise _invalid(name, what, f"{{unacceptable_type,{_kind(value)}}}")
    elif name == "x-queue-version":
        if not _is_int(value) or value not in (1, 2):
            raise _invalid(name, what, f"\"unsupported queue version '{value}'\"")
    elif name in ("x-dead-letter-exchange", "x-dead-letter-routing-key") and text_value(value) is None:
        raise _invalid(name, what, f'"expected string, got {_kind(value)}"')


def _invalid(name: str, what: str, reason: str) -> InvalidArgument:
    return InvalidArgument(f"invalid arg '{name}' for {what}: {reason}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def text_value(value: Any) -> str | None:
    """A string argument as text (AMQP tables may carry bytes); None if it is not one."""
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


def _kind(value: Any) -> str:
    """The AMQP field type RabbitMQ names in its messages."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str | bytes):
        return "longstr"
    if isinstance(value, float):
        return "double"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__
