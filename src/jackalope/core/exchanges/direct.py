"""The direct exchange: a message goes to the destinations bound with exactly its routing key."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from jackalope.core.exchanges.base import EMPTY_ROUTE, Binding, Destination, Exchange, HeadersThunk


class DirectExchange(Exchange):
    """Routing key -> destinations, in one dict lookup per message.

    ``_bound`` counts, per key and destination, the bindings that route there: the same queue
    may be bound to one key several times with different arguments and must keep receiving
    until the last of them is gone, yet receive each message once. ``_routes`` holds the frozen
    answer per key, built on the first message after a change and then returned as is, so the
    hot path neither copies nor allocates; a bind or unbind only drops that key's answer.
    """

    type_name = "direct"

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__(name, **options)
        self._bound: dict[str, dict[Destination, int]] = {}
        self._routes: dict[str, frozenset[Destination]] = {}

    def route(self, routing_key: str, headers: HeadersThunk) -> Collection[Destination]:
        """Shared read-only frozenset; see :meth:`Exchange.route`. Headers are never read."""
        found = self._routes.get(routing_key)
        if found is not None:
            return found
        bound = self._bound.get(routing_key)
        if bound is None:
            return EMPTY_ROUTE  # not cached: unknown keys must not grow the table
        found = self._routes[routing_key] = frozenset(bound)
        return found

    def _add(self, binding: Binding) -> None:
        key = binding.routing_key
        bound = self._bound.setdefault(key, {})
        bound[binding.destination] = bound.get(binding.destination, 0) + 1
        self._routes.pop(key, None)

    def _remove(self, binding: Binding) -> None:
        key = binding.routing_key
        bound = self._bound[key]
        remaining = bound[binding.destination] - 1
        if remaining:
            bound[binding.destination] = remaining
        else:
            del bound[binding.destination]
            if not bound:
                del self._bound[key]
        self._routes.pop(key, None)
