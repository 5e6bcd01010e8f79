"""The delayed-message exchange (``x-delayed-message``): routes as the type its ``x-delayed-type``
argument names, after the delay a message's ``x-delay`` header asks for.

Rules are those of RabbitMQ's ``rabbitmq_delayed_message_exchange`` plugin:

* ``x-delayed-type`` must name an existing type (``direct``, ``fanout``, ``topic``, ``headers``,
  ``x-consistent-hash``); missing or not a string: 406 "Invalid argument, 'x-delayed-type' must
  be an existing exchange type"; ``x-delayed-message`` itself: 406 "Invalid argument,
  'x-delayed-message' can't be used for 'x-delayed-type'"; an unknown name: 503 "unknown
  exchange type", as for ``exchange.declare`` of that type. Bindings are checked and indexed by
  that type; a re-declare compares what every type compares (``alternate-exchange``);
* ``x-delay`` is the delay in ms: an integer of any width, a string of one (``"5000"``), or a
  float or decimal (truncated). A message whose delay is in ``1 .. 2**32 - 1`` ms is *held* and
  routed once it is due; a missing header, a delay out of that range (0, negative, too long) or
  a value of another type (boolean, table...) routes the message at once. A string that is not
  an integer is refused (406) where the plugin's routing crashes;
* a held message counts as routed for the publisher: ``mandatory`` brings no ``basic.return``
  (the plugin does not support it). When it is due it is routed as this exchange routes then
  (its bindings and alternate exchange of that time), with ``x-delay`` negated, so it passes at
  once through further delayed exchanges bound to this one and consumers can tell it was delayed.

Holding is the vhost's: it gives each delayed exchange a ``hold`` function that makes, for one
message's delay, the destination that keeps it (:mod:`jackalope.core.delayed`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping
from decimal import Decimal
from typing import Any, Final

from jackalope.core.errors import PreconditionFailed
from jackalope.core.exchanges.base import (
    ArgumentInvalid,
    Binding,
    Destination,
    Exchange,
    HeadersThunk,
    UnknownExchangeType,
)

DELAYED_TYPE: Final = "x-delayed-type"
DELAY_HEADER: Final = "x-delay"
MAX_DELAY_MS: Final = 2**32 - 1  # the longest Erlang timer: longer delays route at once

_INTEGER: Final = re.compile(r"[+-]?[0-9]+\Z")  # what Erlang's binary_to_integer accepts


def delay_of(headers: Mapping[str, Any]) -> int | None:
    """The delay ``headers`` ask for, in ms, if the message is to be held (None: route now)."""
    value = headers.get(DELAY_HEADER)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        delay = value
    elif isinstance(value, bytes | str):
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        if not _INTEGER.match(text):
            raise PreconditionFailed(f"invalid '{DELAY_HEADER}' header '{text}': not an integer")
        delay = int(text)
    elif isinstance(value, float | Decimal):
        if not math.isfinite(value):
            return None
        delay = int(value)  # truncated, as the plugin does
    else:
        return None  # another type: routed at once, as by the plugin
    return delay if 0 < delay <= MAX_DELAY_MS else None


Hold = Callable[[int], Destination]
"""A destination that keeps one message for ``delay`` ms (given by the vhost)."""


class DelayedMessageExchange(Exchange):
    """A proxy for an exchange of the ``x-delayed-type`` type, holding delayed messages."""

    type_name = "x-delayed-message"

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__(name, **options)
        inner = self.arguments.get(DELAYED_TYPE)
        if inner == self.type_name:
            raise ArgumentInvalid(f"Invalid argument, '{self.type_name}' can't be used for '{DELAYED_TYPE}'")
        if not isinstance(inner, str):
            raise ArgumentInvalid(f"Invalid argument, '{DELAYED_TYPE}' must be an existing exchange type")
        from jackalope.core.exchanges import exchange_types  # the registry, which lists this type

        cls = exchange_types().get(inner)
        if cls is None:
            raise UnknownExchangeType(inner)
        # The routing index: only its bindings hooks and route are used (it checks its own
        # arguments, e.g. a consistent-hash exchange's hash-header).
        self.inner: Exchange = cls(name, **options)
        self.hold: Hold | None = None  # set by the vhost when it takes the exchange

    def route(self, routing_key: str, headers: HeadersThunk) -> Collection[Destination]:
        """What the delayed type routes to, or (for a delayed message) its holding place."""
        delay = delay_of(headers())
        if delay is None:
            return self.inner.route(routing_key, headers)
        if self.hold is None:
            raise RuntimeError(f"delayed-message exchange {self.name!r} has nowhere to hold messages")
        return (self.hold(delay),)

    def route_now(self, routing_key: str, headers: HeadersThunk) -> Collection[Destination]:
        """Where a message that is due goes (its delay is over)."""
        return self.inner.route(routing_key, headers)

    def _validate(self, binding: Binding) -> None:
        self.inner._validate(binding)

    def _add(self, binding: Binding) -> None:
        self.inner._add(binding)

    def _remove(self, binding: Binding) -> None:
        self.inner._remove(binding)
