"""The declaration arguments of a classic queue, checked as RabbitMQ checks them.

An argument RabbitMQ knows is either done as RabbitMQ documents it or refused with
PRECONDITION_FAILED naming it, never taken and ignored:

* done: ``x-max-length``, ``x-max-length-bytes``, ``x-overflow``, ``x-dead-letter-exchange``,
  ``x-dead-letter-routing-key``, ``x-expires``, ``x-message-ttl``, ``x-single-active-consumer``,
  ``x-max-priority``;
* taken with nothing to do, as on a single RabbitMQ node: ``x-queue-mode`` (every queue pages
  to disk as a lazy one does), ``x-queue-version`` (the storage is its own),
  ``x-queue-master-locator`` (there is one node);
* refused until they are done: :data:`NOT_DONE`;
* refused as RabbitMQ refuses them on a classic queue: :data:`OTHER_TYPES_ONLY`.

Arguments RabbitMQ does not know (``x-foo``) are kept and shown, as RabbitMQ keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from jackalope.core.errors import InvalidArgument

QUEUE_TYPE: Final = "x-queue-type"
CLASSIC: Final = "classic"
QUEUE_TYPES: Final = ("classic", "quorum", "stream")

# What RabbitMQ knows and Jackalope's classic queues do not do yet: refused, naming it.
NOT_DONE: Final = {
    "x-consumer-timeout": "consumer timeouts",
}
MAX_PRIORITY: Final = 255  # a classic queue's highest x-max-priority
# Arguments of quorum queues and streams: RabbitMQ refuses them on a classic queue.
OTHER_TYPES_ONLY: Final = frozenset(
    {
        "x-delivery-limit",
        "x-dead-letter-strategy",
        "x-max-in-memory-length",
        "x-max-in-memory-bytes",
        "x-quorum-initial-group-size",
        "x-quorum-target-group-size",
        "x-initial-cluster-size",
        "x-max-age",
        "x-stream-max-segment-size-bytes",
        "x-stream-filter-size-bytes",
        "x-queue-leader-locator",
    }
)
_CHOICES: Final = {
    "x-overflow": ("drop-head", "reject-publish", "reject-publish-dlx"),
    "x-queue-mode": ("default", "lazy"),
    "x-queue-master-locator": ("min-masters", "client-local", "random"),
}
_NON_NEGATIVE: Final = ("x-max-length", "x-max-length-bytes", "x-message-ttl")


def queue_type(arguments: Mapping[str, Any]) -> str:
    """The ``x-queue-type`` asked for (``classic`` when none is)."""
    value = arguments.get(QUEUE_TYPE)
    return CLASSIC if value is None else (text_value(value) or repr(value))


def check_classic(arguments: Mapping[str, Any], what: str) -> None:
    """Raise InvalidArgument (406) for what a classic queue may not be declared with.

    ``what`` names the queue RabbitMQ's way: ``queue 'q' in vhost '/'``."""
    kind = queue_type(arguments)
    if kind not in QUEUE_TYPES:
        raise _invalid(QUEUE_TYPE, what, f"\"unsupported queue type '{kind}'\"")
    if kind != CLASSIC:
        raise _invalid(QUEUE_TYPE, what, f"{kind} queues: not supported by Jackalope yet")
    for name, value in arguments.items():
        if name in OTHER_TYPES_ONLY:
            raise InvalidArgument(f"invalid arg '{name}' for {what} of queue type rabbit_classic_queue")
        feature = NOT_DONE.get(name)
        if feature is not None:
            raise _invalid(name, what, f"{feature}: not supported by Jackalope yet")
        if name in _NON_NEGATIVE or name == "x-expires":
            if not _is_int(value):
                raise _invalid(name, what, f'"expected integer, got {_kind(value)}"')
            if value < 0 or (value == 0 and name == "x-expires"):
                raise _invalid(name, what, f"{{{'value_zero' if value == 0 else 'value_negative'},{value}}}")
        elif name == "x-max-priority":
            if not _is_int(value):
                raise _invalid(name, what, f'"expected integer, got {_kind(value)}"')
            if value < 0:
                raise _invalid(name, what, f"{{value_negative,{value}}}")
            if value > MAX_PRIORITY:
                raise _invalid(name, what, f"{{max_value_exceeded,{value}}}")
        elif name in _CHOICES:
            if text_value(value) not in _CHOICES[name]:
                raise _invalid(name, what, f'"unsupported value {value!r}"')
        elif name == "x-single-active-consumer":
            if not isinstance(value, bool):
                raise _invalid(name, what, f"{{unacceptable_type,{_kind(value)}}}")
        elif name == "x-queue-version":
            if not _is_int(value) or value not in (1, 2):
                raise _invalid(name, what, f"\"unsupported queue version '{value}'\"")
        elif name in ("x-dead-letter-exchange", "x-dead-letter-routing-key") and text_value(value) is None:
            raise _invalid(name, what, f'"expected string, got {_kind(value)}"')
    if "x-dead-letter-routing-key" in arguments and "x-dead-letter-exchange" not in arguments:
        raise _invalid("x-dead-letter-routing-key", what, "routing_key_but_no_dlx_defined")


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
