"""Exchange types of the broker core, with RabbitMQ's routing semantics.

One module per type (:mod:`.direct`, :mod:`.fanout`, :mod:`.topic`, :mod:`.headers`, and the
plugin types of RabbitMQ :mod:`.consistent_hash` and :mod:`.delayed`) on the shared
:mod:`.base`. The default exchange (``""``, every queue bound by its name) is not an exchange
object here: the vhost answers it from its queue table.
"""

from __future__ import annotations

from typing import Any, Final

from jackalope.core.exchanges.base import (
    EMPTY_ROUTE,
    ArgumentInvalid,
    Binding,
    BindingInvalid,
    Destination,
    Exchange,
    HeadersThunk,
    UnknownExchangeType,
)
from jackalope.core.exchanges.consistent_hash import ConsistentHashExchange
from jackalope.core.exchanges.delayed import DelayedMessageExchange
from jackalope.core.exchanges.direct import DirectExchange
from jackalope.core.exchanges.fanout import FanoutExchange
from jackalope.core.exchanges.headers import HeadersExchange
from jackalope.core.exchanges.topic import TopicExchange

__all__ = [
    "EMPTY_ROUTE",
    "ArgumentInvalid",
    "Binding",
    "BindingInvalid",
    "ConsistentHashExchange",
    "DelayedMessageExchange",
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
    cls.type_name: cls
    for cls in (
        DirectExchange,
        FanoutExchange,
        TopicExchange,
        HeadersExchange,
        ConsistentHashExchange,
        DelayedMessageExchange,
    )
}


def exchange_types() -> dict[str, type[Exchange]]:
    """Type name -> class, as a new dict (callers may filter it; the registry stays intact)."""
    return dict(_TYPES)


def make_exchange(type_name: str, name: str, **kwargs: Any) -> Exchange:
    """A new exchange of the named type; ``kwargs`` are :class:`Exchange`'s keyword options.

    Raises :class:`UnknownExchangeType` (a ``ValueError``; AMQP 503 COMMAND_INVALID) for a type
    the broker does not have, :class:`ArgumentInvalid` (406) for arguments the type refuses.
    """
    cls = _TYPES.get(type_name)
    if cls is None:
        raise UnknownExchangeType(type_name)
    return cls(name, **kwargs)
