"""The fanout exchange: a message goes to every bound destination; the routing key is ignored."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from jackalope.core.exchanges.base import EMPTY_ROUTE, Binding, Destination, Exchange, HeadersThunk


class FanoutExchange(Exchange):
    """Every destination, as one frozenset built lazily after a change and then reused.

    Rebuilding lazily (rather than copying on every bind) keeps binding N queues O(N) in total
    even when thousands are bound before the first message; the counts handle a destination
    bound several times (different keys or arguments), which still gets each message once.
    """

    type_name = "fanout"

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__(name, **options)
        self._bound: dict[Destination, int] = {}
        self._route: frozenset[Destination] | None = EMPTY_ROUTE

    def route(self, routing_key: str, headers: HeadersThunk) -> Collection[Destination]:
        """Shared read-only frozenset; see :meth:`Exchange.route`. Key and headers are ignored."""
        found = self._route
        if found is None:
            found = self._route = frozenset(self._bound)
        return found

    def _add(self, binding: Binding) -> None:
        self._bound[binding.destination] = self._bound.get(binding.destination, 0) + 1
        self._route = None

    def _remove(self, binding: Binding) -> None:
        remaining = self._bound[binding.destination] - 1
        if remaining:
            self._bound[binding.destination] = remaining
        else:
            del self._bound[binding.destination]
        self._route = None
