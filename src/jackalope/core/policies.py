"""Policies and operator policies, as RabbitMQ has them.

A policy of a virtual host has a name, a ``pattern`` (a regular expression searched in the
names of queues and exchanges), ``apply-to`` (``queues``, ``exchanges``, ``all``, or one queue
type: ``classic_queues``, ``quorum_queues``, ``streams``), a ``priority`` and a
``definition``.  Of the policies that match an object, the one of the highest priority
applies (a tie goes to the name first in order); so does one operator policy, set by
operators to cap what users' policies and arguments may ask for.

What an object does is then resolved key by key, as RabbitMQ resolves it
(:func:`effective_arguments`): for the numeric limits (``message-ttl``, ``expires``,
``max-length``, ``max-length-bytes``, ``delivery-limit``) the lowest of the queue's argument,
its policy and its operator policy; for the others, the queue's argument wins over the
policy.  Policies apply live: setting or deleting one reconfigures every object it matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from jackalope.core.errors import InvalidArgument

APPLY_TO: Final = ("queues", "exchanges", "all", "classic_queues", "quorum_queues", "streams")

# Definition keys for queues, with the kind of value each takes.
_QUEUE_KEYS: Final = {
    "message-ttl": "non-negative",
    "expires": "positive",
    "max-length": "non-negative",
    "max-length-bytes": "non-negative",
    "delivery-limit": "limit",
    "consumer-timeout": "positive",
    "overflow": ("drop-head", "reject-publish", "reject-publish-dlx"),
    "dead-letter-exchange": "string",
    "dead-letter-routing-key": "string",
    "dead-letter-strategy": ("at-most-once", "at-least-once"),
    "queue-mode": ("default", "lazy"),  # every queue pages as a lazy one: nothing to do
    "queue-version": (1, 2),
}
_EXCHANGE_KEYS: Final = {"alternate-exchange": "string"}
KEYS: Final = {**_QUEUE_KEYS, **_EXCHANGE_KEYS}
# What an operator policy may set (RabbitMQ's list, less what Jackalope has no use for).
OPERATOR_KEYS: Final = frozenset(
    {"message-ttl", "expires", "max-length", "max-length-bytes", "delivery-limit"}
)
# The lowest of argument, policy and operator policy applies.
LOWEST_WINS: Final = frozenset({"message-ttl", "expires", "max-length", "max-length-bytes", "delivery-limit"})
_REFUSED: Final = {
    "ha-": "mirrored (ha-*) queues were removed from RabbitMQ and are not supported: use quorum queues",
    "max-priority": "a queue's priorities are fixed when it is declared (x-max-priority)",
}


@dataclass(frozen=True)
class Policy:
    name: str
    pattern: str
    definition: dict[str, Any]
    apply_to: str = "all"
    priority: int = 0
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "_regex", re.compile(self.pattern))
        except re.error as exc:
            raise InvalidArgument(
                f"Validation failed\n\n'{self.pattern}' is not a valid regex: {exc}"
            ) from None

    def applies(self, name: str, kind: str) -> bool:
        """Whether it matches an object called ``name`` of ``kind`` (``exchange``, or a queue
        type: ``classic``, ``quorum``, ``stream``)."""
        to = self.apply_to
        if kind == "exchange":
            matches = to in ("exchanges", "all")
        else:
            matches = to in ("queues", "all") or to == {
                "classic": "classic_queues",
                "quorum": "quorum_queues",
            }.get(kind, "streams")
        return matches and self._regex.search(name) is not None

    def to_json(self, vhost: str) -> dict[str, Any]:
        return {
            "vhost": vhost,
            "name": self.name,
            "pattern": self.pattern,
            "apply-to": self.apply_to,
            "definition": dict(self.definition),
            "priority": self.priority,
        }


def make_policy(name: str, body: Mapping[str, Any], *, operator: bool = False) -> Policy:
    """A policy from RabbitMQ's JSON shape (``pattern``, ``definition``, ``apply-to``,
    ``priority``); raises InvalidArgument with RabbitMQ's "Validation failed" wording."""
    pattern = body.get("pattern")
    definition = body.get("definition")
    apply_to = body.get("apply-to", "all")
    priority = body.get("priority", 0)
    if not isinstance(pattern, str):
        raise _failed("pattern must be a string")
    if not isinstance(definition, dict) or not definition:
        raise _failed("definition must be a non-empty object")
    if apply_to not in APPLY_TO:
        raise _failed(f"'{apply_to}' is not a valid apply-to value; expected one of {', '.join(APPLY_TO)}")
    if operator and apply_to not in ("queues", "classic_queues", "quorum_queues"):
        raise _failed(f"'{apply_to}' is not a valid apply-to value for an operator policy (queues only)")
    if apply_to == "streams":
        raise _failed("policies for streams are not supported by Jackalope yet (declare their x- arguments)")
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise _failed(f"priority must be an integer, not {priority!r}")
    check_definition(definition, operator=operator)
    return Policy(name, pattern, dict(definition), apply_to, priority)


def check_definition(definition: Mapping[str, Any], *, operator: bool = False) -> None:
    unknown = []
    for key, value in definition.items():
        for prefix, reason in _REFUSED.items():
            if key.startswith(prefix):
                raise _failed(f"{key}: {reason}")
        if key not in KEYS or (operator and key not in OPERATOR_KEYS):
            unknown.append(key)
            continue
        kind = KEYS[key]
        if isinstance(kind, tuple):
            ok = value in kind
        elif kind == "string":
            ok = isinstance(value, str)
        else:
            floor = {"positive": 1, "non-negative": 0, "limit": -1}[str(kind)]
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= floor
        if not ok:
            raise _failed(f"{value!r} is not a valid value for {key}")
    if unknown:
        raise _failed(f"{sorted(unknown)} are not recognised policy settings")


def _failed(reason: str) -> InvalidArgument:
    return InvalidArgument(f"Validation failed\n\n{reason}")


def choose(policies: Iterable[Policy], name: str, kind: str) -> Policy | None:
    """The policy that applies to ``name`` (highest priority; by name on a tie), if any."""
    best: Policy | None = None
    for policy in policies:
        if policy.applies(name, kind) and (
            best is None or (policy.priority, best.name) > (best.priority, policy.name)
        ):
            best = policy
    return best


def effective_arguments(
    arguments: Mapping[str, Any], policy: Policy | None, operator: Policy | None
) -> dict[str, Any]:
    """The ``x-`` arguments an object acts on: its own, resolved against its policy and its
    operator policy key by key, as RabbitMQ resolves them."""
    effective = dict(arguments)
    for source in (policy, operator):
        if source is None:
            continue
        for key, value in source.definition.items():
            name = ALTERNATE if key == ALTERNATE else f"x-{key}"
            current = effective.get(name)
            if current is None:
                effective[name] = value
            elif (
                key in LOWEST_WINS
                and isinstance(current, int)
                and value >= 0
                and (current < 0 or value < current)
            ):
                effective[name] = value  # -1 (delivery-limit: none) is the highest of all
    return effective


ALTERNATE: Final = "alternate-exchange"
