"""RabbitMQ's record of a message's deaths, written into its AMQP properties when a queue
dead-letters it: the ``x-death`` header (most recent first, one entry per queue and reason,
counted), ``x-first-death-*`` (kept from the first death) and ``x-last-death-*``.  A
per-message ``expiration`` is spent by the death: it moves into the entry as
``original-expiration``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jackalope.amqp import properties as props
from jackalope.amqp.errors import FrameError
from jackalope.core.dead_letters import Death, Stamped


def stamp_death(properties: bytes, death: Death) -> Stamped:
    """``properties`` with ``death`` recorded (unchanged if they cannot be decoded), their lazy
    decoding for the exchanges the dead letter is routed through, and the queues it may not
    go back to (RabbitMQ's cycle rule: those it died in since it was last rejected)."""
    try:
        fields: dict[str, Any] = dict(props.decode_properties(properties)) if properties else {}
    except FrameError:
        return Stamped(properties, props.LazyProperties(properties), frozenset({death.queue}))
    headers = dict(fields.get("headers") or {})
    expiration = fields.pop("expiration", None)
    deaths = [d for d in headers.get("x-death") or [] if isinstance(d, dict)]
    count = 1
    for i, earlier in enumerate(deaths):
        if earlier.get("queue") == death.queue and earlier.get("reason") == death.reason:
            count += int(earlier.get("count") or 0)
            del deaths[i]
            break
    entry: dict[str, Any] = {
        "count": count,
        "reason": death.reason,
        "queue": death.queue,
        "time": datetime.fromtimestamp(death.time, UTC),
        "exchange": death.exchange,
        "routing-keys": list(death.routing_keys),
    }
    if expiration is not None:
        entry["original-expiration"] = expiration
    headers["x-death"] = [entry, *deaths]
    for what, value in (("exchange", death.exchange), ("queue", death.queue), ("reason", death.reason)):
        headers.setdefault(f"x-first-death-{what}", value)
        headers[f"x-last-death-{what}"] = value
    fields["headers"] = headers
    stamped = props.encode_properties(**fields)
    return Stamped(stamped, props.LazyProperties(stamped), _cycle(headers["x-death"]))


def _cycle(deaths: list[dict[str, Any]]) -> frozenset[str]:
    queues = set()
    for entry in deaths:  # the most recent first
        if entry.get("reason") == "rejected":
            break
        queues.add(str(entry.get("queue")))
    return frozenset(queues)
