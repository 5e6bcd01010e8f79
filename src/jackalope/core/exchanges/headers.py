"""The headers exchange: bindings match the message's headers table; the routing key is ignored.

Semantics are RabbitMQ's (3.10+, ``rabbit_exchange_type_headers``):

* the binding argument ``x-match`` selects the rule: ``all`` (the default when absent), ``any``,
  ``all-with-x`` or ``any-with-x``; any other value, or a non-string, is rejected at bind time;
* with ``all``/``any`` every binding argument whose key starts with ``x-`` is ignored; with the
  ``-with-x`` variants only ``x-match`` itself is, so ``x-`` headers can be matched too;
* a binding argument whose value is void (``None``) matches when the header is present, with
  any value; otherwise the header must be present with an equal value *of the same type*
  (RabbitMQ compares with ``=:=``): ``True`` is not ``1``, ``1`` is not ``1.0``, ``"a"`` is not
  ``b"a"``;
* ``all`` with nothing left to compare matches every message; ``any`` with nothing matches none.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Final, NamedTuple

from jackalope.core.exchanges.base import (
    EMPTY_ROUTE,
    Binding,
    BindingInvalid,
    Destination,
    Exchange,
    FrozenValue,
    HeadersThunk,
    freeze_value,
)

X_MATCH: Final = "x-match"
MATCH_MODES: Final = ("all", "any", "all-with-x", "any-with-x")

_ABSENT: Final = object()
"""Header lookup default: distinguishes "no such header" from a header whose value is void."""

# Types whose Python equality is exactly AMQP equality when both sides have the same type, so
# matching them needs no canonical form (float is left out: 0.0 == -0.0 in Python).
_PLAIN_TYPES: Final = frozenset({str, int, bool, bytes})


class _Condition(NamedTuple):
    key: str
    presence_only: bool  # the binding value was void: any value will do
    value: Any  # the binding's value as given, for the plain fast path
    frozen: FrozenValue  # its canonical form, for every other type


class _Matcher(NamedTuple):
    """A binding compiled once at bind time, so routing does not re-parse its arguments."""

    destination: Destination
    match_any: bool
    conditions: tuple[_Condition, ...]


def _mode(arguments: Mapping[str, Any]) -> str:
    """The binding's x-match mode; raises :class:`BindingInvalid` for what RabbitMQ rejects."""
    if X_MATCH not in arguments:
        return "all"
    mode = arguments[X_MATCH]
    if isinstance(mode, bytes):  # a codec may hand longstr over undecoded
        try:
            mode = mode.decode()
        except UnicodeDecodeError:
            raise BindingInvalid(f"Invalid x-match field value {mode!r}") from None
    if not isinstance(mode, str):
        raise BindingInvalid(
            f"Invalid x-match field type {type(mode).__name__} (value {mode!r}); expected longstr"
        )
    if mode not in MATCH_MODES:
        raise BindingInvalid(
            f"Invalid x-match field value {mode!r}; expected all, any, all-with-x, or any-with-x"
        )
    return mode


def compile_binding(binding: Binding) -> _Matcher:
    """The matcher for one binding: its mode and the header conditions that take part."""
    mode = _mode(binding.arguments)
    with_x = mode.endswith("-with-x")
    conditions = tuple(
        _Condition(key, value is None, value, freeze_value(value))
        for key, value in sorted(binding.arguments.items())
        if key != X_MATCH and (with_x or not key.startswith("x-"))
    )
    return _Matcher(binding.destination, mode.startswith("any"), conditions)


def _satisfied(condition: _Condition, headers: Mapping[str, Any]) -> bool:
    actual = headers.get(condition.key, _ABSENT)
    if actual is _ABSENT:
        return False
    if condition.presence_only:
        return True
    kind = type(actual)
    if kind is type(condition.value) and kind in _PLAIN_TYPES:
        return bool(actual == condition.value)
    return freeze_value(actual) == condition.frozen


def matches(matcher: _Matcher, headers: Mapping[str, Any]) -> bool:
    """Whether a message with ``headers`` satisfies one compiled binding.

    Plain loops rather than ``any()``/``all()`` over a generator: this runs once per binding per
    message, and the generator frames cost more than the comparisons.
    """
    if matcher.match_any:
        for condition in matcher.conditions:  # noqa: SIM110 - see the docstring
            if _satisfied(condition, headers):
                return True
        return False
    for condition in matcher.conditions:  # noqa: SIM110 - see the docstring
        if not _satisfied(condition, headers):
            return False
    return True


class HeadersExchange(Exchange):
    """Compiled bindings, tested one by one against the message's headers.

    There is no index to consult (a binding may match on any subset of headers), so the work per
    message is proportional to the bindings; what is avoided is the rest: arguments are parsed
    once at bind time, the headers table is decoded only when some binding has a condition to
    check, and a destination already matched is not tested again.
    """

    type_name = "headers"

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__(name, **options)
        self._matchers: dict[Binding, _Matcher] = {}

    def route(self, routing_key: str, headers: HeadersThunk) -> Collection[Destination]:
        """A new set per message (nothing to share: the answer depends on the headers).

        Calls ``headers`` at most once, and not at all when there are no bindings or no binding
        has a condition to check (``x-match`` ``all`` with no other arguments matches everything).
        """
        if not self._matchers:
            return EMPTY_ROUTE
        table: Mapping[str, Any] | None = None
        matched: set[Destination] = set()
        for matcher in self._matchers.values():
            if matcher.destination in matched:
                continue
            if not matcher.conditions:
                if not matcher.match_any:
                    matched.add(matcher.destination)
                continue
            if table is None:
                table = headers()
            if matches(matcher, table):
                matched.add(matcher.destination)
        return matched

    def _validate(self, binding: Binding) -> None:
        _mode(binding.arguments)

    def _add(self, binding: Binding) -> None:
        self._matchers[binding] = compile_binding(binding)

    def _remove(self, binding: Binding) -> None:
        del self._matchers[binding]
