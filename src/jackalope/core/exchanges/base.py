"""What every exchange type shares: bindings, their identity, re-declare checks.

An exchange only keeps *its own* bindings (source = this exchange) and answers "which
destinations are bound directly for this message?". Everything else stays with the vhost:
the default exchange, resolving exchange-to-exchange bindings, de-duplicating destinations,
alternate exchanges, auto-delete and access checks. Keeping the exchange that small is what
lets :meth:`Exchange.route` be a dictionary lookup on the per-message hot path.

Concurrency: the broker runs on one event loop, so nothing here locks.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, ClassVar, Final, TypeAlias

from jackalope.core.stats import MessageStats

Destination: TypeAlias = Hashable
"""A Queue or an Exchange object of the core. Exchanges only hash and compare them (identity)."""

HeadersThunk: TypeAlias = Callable[[], Mapping[str, Any]]
"""Returns the message's AMQP headers table, decoded lazily: only the exchanges that read headers
call it, so a message routed through direct/topic/fanout exchanges never pays for decoding its
headers. A thunk may also answer ``property(name)`` with one of the message's other properties
(the AMQP front-end's does; see :func:`message_property`)."""

EMPTY_ROUTE: Final[frozenset[Any]] = frozenset()
"""The one empty result every exchange returns, so "no match" allocates nothing."""


class UnknownExchangeType(ValueError):
    """``exchange.declare`` named a type the broker does not have (AMQP 503 COMMAND_INVALID)."""

    def __init__(self, type_name: str) -> None:
        super().__init__(type_name)
        self.type_name = type_name

    def __str__(self) -> str:
        return f"unknown exchange type {self.type_name!r}"


class ArgumentInvalid(ValueError):
    """The exchange type rejects the declaration's arguments (AMQP 406 PRECONDITION_FAILED, with
    this message). Nothing was declared."""


class BindingInvalid(ValueError):
    """The exchange type rejects a binding's arguments (RabbitMQ's ``binding_invalid``, which
    the AMQP front-end reports as 406 PRECONDITION_FAILED). Nothing was bound."""


def message_property(headers: HeadersThunk, name: str) -> Any:
    """The message property ``name`` (``message_id``, ``correlation_id``, ``timestamp``...) if the
    thunk can tell it (``property(name)``), else None, as for a property the message lacks."""
    lookup = getattr(headers, "property", None)
    return lookup(name) if lookup is not None else None


# -- canonical, hashable forms of AMQP field values ----------------------------------------------

FrozenValue: TypeAlias = tuple[Any, ...]
FrozenTable: TypeAlias = tuple[tuple[str, FrozenValue], ...]


def freeze_value(value: Any) -> FrozenValue:
    """A hashable ``(type tag, value)`` form of one AMQP field value.

    Why tagged: Python says ``True == 1 == 1.0`` and hashes them alike, but in an AMQP table a
    boolean, an integer and a float are different values (RabbitMQ compares them with ``=:=``),
    so a binding with ``{"a": True}`` is not the binding with ``{"a": 1}`` and neither matches a
    header ``a = 1.0``. All integer widths share one tag because the codec decodes them all to
    ``int`` (RabbitMQ also treats the integer types as one class). Floats are tagged by their
    bit pattern so NaN equals itself and -0.0 differs from 0.0, as Erlang's ``=:=`` has it.
    Decimals keep their scale (AMQP sends scale + value). ``None`` is AMQP void.
    """
    if value is None:
        return ("void",)
    kind = type(value)
    if kind is bool:
        return ("bool", value)
    if kind is int:
        return ("int", value)
    if kind is str:
        return ("str", value)
    if kind is float:
        return ("float", value.hex())
    if isinstance(value, int):
        return ("int", int(value))
    if isinstance(value, str):
        return ("str", str(value))
    if isinstance(value, float):
        return ("float", float(value).hex())
    if isinstance(value, bytes | bytearray | memoryview):
        return ("bytes", bytes(value))
    if isinstance(value, Decimal):
        return ("decimal", value.as_tuple())
    if isinstance(value, datetime):
        return ("timestamp", value)
    if isinstance(value, Mapping):
        return ("table", freeze_table(value))
    if isinstance(value, list | tuple):
        return ("array", tuple(freeze_value(item) for item in value))
    # Not an AMQP type: still give it an identity rather than fail a bind or a route.
    name = f"{kind.__module__}.{kind.__qualname__}"
    return (name, value) if isinstance(value, Hashable) else (name, repr(value))


def freeze_table(table: Mapping[str, Any]) -> FrozenTable:
    """A hashable form of a field table where key order does not matter (RabbitMQ sorts binding
    arguments by key before comparing them) but value types do (see :func:`freeze_value`)."""
    return tuple(sorted((key, freeze_value(value)) for key, value in table.items()))


# -- bindings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Binding:
    """One binding of this exchange: (destination, routing key, arguments).

    As in RabbitMQ the arguments are part of the binding's identity: the same queue may be bound
    twice with the same key and different arguments, and binding again with equal arguments is a
    no-op. Equality and hashing therefore use a frozen canonical form of the arguments
    (:func:`freeze_table`: key order ignored, value types respected), never the mapping itself,
    which is kept as a read-only copy so a caller mutating its dict cannot change a binding.
    """

    destination: Destination
    routing_key: str
    arguments: Mapping[str, Any] = field(compare=False)
    _frozen_arguments: FrozenTable = field(init=False, repr=False, compare=True)

    def __post_init__(self) -> None:
        arguments = MappingProxyType(dict(self.arguments))
        object.__setattr__(self, "arguments", arguments)
        object.__setattr__(self, "_frozen_arguments", freeze_table(arguments))


# -- exchanges ----------------------------------------------------------------------------------


class Exchange(abc.ABC):
    """An exchange: its declared properties, its bindings, and the type's routing rule.

    The base class owns the bookkeeping every type needs (the set of bindings and an index by
    destination, so deleting a queue costs only that queue's bindings). Each type keeps its own
    routing index, updated through :meth:`_add` and :meth:`_remove`, shaped so that
    :meth:`route` does no per-message work beyond the lookup itself.

    Exchanges compare and hash by identity, so an exchange can itself be a :data:`Destination`.
    """

    type_name: ClassVar[str]

    equivalence_arguments: ClassVar[tuple[str, ...]] = ("alternate-exchange",)
    """The declare arguments a re-declare must repeat. RabbitMQ compares only these for exchanges
    (``rabbit_exchange:assert_args_equivalence``) and ignores any other argument on re-declare."""

    def __init__(
        self,
        name: str,
        *,
        durable: bool = True,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.durable = durable
        self.auto_delete = auto_delete
        self.internal = internal
        self.arguments: Mapping[str, Any] = MappingProxyType(dict(arguments or {}))
        # A dict used as an insertion-ordered set, so bindings() lists them in binding order.
        self._bindings: dict[Binding, None] = {}
        self._by_destination: dict[Destination, dict[Binding, None]] = {}
        self.stats = MessageStats()  # publish_in, publish_out

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} bindings={len(self._bindings)}>"

    # -- bindings --------------------------------------------------------------------------------

    def bind(
        self, destination: Destination, routing_key: str, arguments: Mapping[str, Any] | None = None
    ) -> bool:
        """Bind ``destination``; True if the binding is new, False if it already existed (an
        idempotent re-bind, as in RabbitMQ). Raises :class:`BindingInvalid` when the exchange type
        rejects the arguments, before anything changes."""
        binding = Binding(destination, routing_key, arguments or {})
        if binding in self._bindings:
            return False
        self._validate(binding)
        self._bindings[binding] = None
        self._by_destination.setdefault(destination, {})[binding] = None
        self._add(binding)
        return True

    def unbind(
        self, destination: Destination, routing_key: str, arguments: Mapping[str, Any] | None = None
    ) -> bool:
        """Remove the binding with exactly these key and arguments; True if it existed. (RabbitMQ
        answers unbind-ok either way; the result is for the caller's auto-delete bookkeeping.)"""
        binding = Binding(destination, routing_key, arguments or {})
        if binding not in self._bindings:
            return False
        self._forget(binding)
        return True

    def unbind_destination(self, destination: Destination) -> list[Binding]:
        """Remove every binding to ``destination`` (it was deleted); return the removed ones."""
        removed = list(self._by_destination.get(destination, ()))
        for binding in removed:
            self._forget(binding)
        return removed

    def bindings(self) -> list[Binding]:
        """All bindings, oldest first (a new list; for listing, not the hot path)."""
        return list(self._bindings)

    def has_bindings(self) -> bool:
        return bool(self._bindings)

    def _forget(self, binding: Binding) -> None:
        del self._bindings[binding]
        of_destination = self._by_destination[binding.destination]
        del of_destination[binding]
        if not of_destination:
            del self._by_destination[binding.destination]
        self._remove(binding)

    # -- routing ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def route(self, routing_key: str, headers: HeadersThunk) -> Collection[Destination]:
        """The destinations bound directly to this exchange that the message goes to.

        The result is shared, not a copy: it may be a collection the exchange keeps (and reuses
        for the next message with the same key), so the caller must treat it as read-only and
        must not keep it as its own mutable state. The exchanges return frozensets they never
        mutate afterwards (binding changes build new ones), so holding a result across a bind or
        unbind is safe. Exchange destinations in the result are *not* followed here, and a
        destination appears at most once per call; de-duplication across exchanges is the
        caller's.
        """

    # -- re-declare ------------------------------------------------------------------------------

    def equivalent(
        self, type_name: str, durable: bool, auto_delete: bool, internal: bool, arguments: Mapping[str, Any]
    ) -> bool:
        """Whether a re-declare with these properties matches this exchange (False means AMQP 406
        PRECONDITION_FAILED). As in RabbitMQ: type, durable, auto-delete and internal must be
        equal, and of the arguments only :attr:`equivalence_arguments` are compared (absent on
        both sides is equal; present on one side only is not; values compare type-aware)."""
        if (type_name, durable, auto_delete, internal) != (
            self.type_name,
            self.durable,
            self.auto_delete,
            self.internal,
        ):
            return False
        for key in self.equivalence_arguments:
            mine, theirs = key in self.arguments, key in arguments
            if mine != theirs:
                return False
            if mine and freeze_value(self.arguments[key]) != freeze_value(arguments[key]):
                return False
        return True

    # -- what each type provides -----------------------------------------------------------------

    def _validate(self, binding: Binding) -> None:  # noqa: B027 - optional hook, default accepts
        """Raise :class:`BindingInvalid` if this type cannot accept ``binding``."""

    @abc.abstractmethod
    def _add(self, binding: Binding) -> None:
        """Index a new binding for routing (called once per distinct binding)."""

    @abc.abstractmethod
    def _remove(self, binding: Binding) -> None:
        """Drop a binding from the routing index (called once, for a binding :meth:`_add` saw)."""
