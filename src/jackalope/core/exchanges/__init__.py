"""Exchange types of the broker core, with RabbitMQ's routing semantics.

One module per type (:mod:`.direct`, :mod:`.fanout`, :mod:`.topic`, :mod:`.headers`) on the
shared :mod:`.base`. The default exchange (``""``, every queue bound by its name) is not an
exchange object here: the vhost answers it from its queue table.
"""

from __future__ import annotations

from typing import Any, Final

from jackalope.core.exchanges.base import (
    EMPTY_ROUTE,
    Binding,
    BindingInvalid,
    Destination,
    Exchange,
    HeadersThunk,
    UnknownExchangeType,
)
from jackalope.core.exchanges.direct import DirectExchange
from jackalope.core.exchanges.fanout import FanoutExchange
from jackalope.core.exchanges.headers import HeadersExchange
from jackalope.core.exchanges.topic import TopicExchange

__all__ = [
    "EMPTY_ROUTE",
    "Binding",
    "BindingInvalid",
    "Destination",
    "DirectExchange",
    "Exchange",
    "FanoutExchange",
    "HeadersExchange",
    "HeadersThunk",
    "TopicExchange",
    "UnknownExchangeType",
    "exchange_types",
    "make_exchange",
]

_TYPES: Final[dict[str, type[Exchange]]] = {
    cls.type_name: cls for cls in (DirectExchange, FanoutExchange, TopicExchange, HeadersExchange)
}


def exchange_types() -> dict[str, type[Exchange]]:
    """Type name -> class, as a new dict (callers may filter it; the registry stays intact)."""
    return dict(_TYPES)


def make_exchange(type_name: str, name: str, **kwargs: Any) -> Exchange:
    """A new exchange of the named type; ``kwargs`` are :class:`Exchange`'s keyword options.

    Raises :class:`UnknownExchangeType` (a ``ValueError``; AMQP 503 COMMAND_INVALID) for a type
    the broker does not have.
    """
    cls = _TYPES.get(type_name)
    if cls is None:
        raise UnknownExchangeType(type_name)
    return cls(name, **kwargs)
