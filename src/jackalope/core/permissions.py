"""Per-vhost permissions, matched as RabbitMQ matches them.

A user's permission in a virtual host is three regular expressions, *configure*, *write* and
*read*; a resource (a queue or an exchange) is allowed an operation when its name matches the
operation's expression anywhere (an unanchored search, as Erlang's ``re:run``).  The empty
expression matches only the empty name (RabbitMQ reads it as ``^$``), and the default
exchange is named ``amq.default`` for the purpose.  Which AMQP method needs which permission
on what is the front-end's table; a :class:`Grant` answers for one user in one vhost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from jackalope.core.errors import AccessRefused

Operation = Literal["configure", "write", "read"]
Kind = Literal["queue", "exchange"]
OPERATIONS: Final = ("configure", "write", "read")
FULL: Final = ".*"
DEFAULT_EXCHANGE: Final = "amq.default"
_CACHE_SIZE: Final = 64


class BadPermission(ValueError):
    pass


def compile_pattern(pattern: str) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise BadPermission("a permission must be a string (a regular expression)")
    try:
        return re.compile(pattern or "^$")
    except re.error as exc:
        raise BadPermission(f"invalid regular expression {pattern!r}: {exc}") from None


@dataclass(frozen=True)
class Permission:
    configure: str = FULL
    write: str = FULL
    read: str = FULL
    _compiled: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = tuple(compile_pattern(getattr(self, op)) for op in OPERATIONS)
        object.__setattr__(self, "_compiled", compiled)

    def allows(self, operation: Operation, name: str) -> bool:
        return self._compiled[OPERATIONS.index(operation)].search(name) is not None

    def to_json(self) -> dict[str, str]:
        return {"configure": self.configure, "write": self.write, "read": self.read}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Permission:
        missing = [op for op in OPERATIONS if op not in data]
        if missing:
            raise BadPermission(f"missing {', '.join(missing)}")
        return cls(data["configure"], data["write"], data["read"])


def resource_name(kind: Kind, name: str) -> str:
    return DEFAULT_EXCHANGE if kind == "exchange" and not name else name


def refusal(kind: Kind, name: str, vhost: str, user: str) -> AccessRefused:
    return AccessRefused(
        f"access to {kind} '{resource_name(kind, name)}' in vhost '{vhost}' refused for user '{user}'"
    )


class PermissionSource:
    """What a :class:`Grant` asks: the current permission of a user in a vhost, and a number
    that changes whenever any permission does (so grants drop what they remembered)."""

    generation: int

    def permission(self, user: str, vhost: str) -> Permission | None:
        raise NotImplementedError


class Grant:
    """One user's rights in one virtual host, as a connection holds them; answers of the
    checks are remembered until any permission changes (publishing checks each message)."""

    __slots__ = ("_generation", "_source", "_writable", "user", "vhost")

    def __init__(self, source: PermissionSource | None, user: str, vhost: str) -> None:
        self._source = source  # None: everything allowed (an embedding without users)
        self.user = user
        self.vhost = vhost
        self._generation = -1
        self._writable: set[str] = set()  # exchanges this grant may publish to

    def check(self, operation: Operation, kind: Kind, name: str) -> None:
        """Raise AccessRefused (RabbitMQ's wording) unless ``operation`` on ``name`` is allowed."""
        source = self._source
        if source is None:
            return
        permission = source.permission(self.user, self.vhost)
        if permission is None or not permission.allows(operation, resource_name(kind, name)):
            raise refusal(kind, name, self.vhost, self.user)

    def check_publish(self, exchange: str) -> None:
        """``write`` on the exchange a message is published to, remembered per exchange."""
        source = self._source
        if source is None:
            return
        if self._generation == source.generation and exchange in self._writable:
            return
        if self._generation != source.generation:
            self._generation = source.generation
            self._writable.clear()
        self.check("write", "exchange", exchange)
        if len(self._writable) >= _CACHE_SIZE:
            self._writable.clear()
        self._writable.add(exchange)
