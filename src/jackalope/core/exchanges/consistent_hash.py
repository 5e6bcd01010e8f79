"""The consistent-hash exchange (``x-consistent-hash``): each message goes to exactly one bound
destination, chosen by hashing the routing key, a header or a property.

Rules are those of RabbitMQ's ``rabbitmq_consistent_hash_exchange`` plugin:

* a binding's key is its *weight*, a positive integer written as a string (``"1"``, ``"10"``);
  a non-integer is refused with "The binding key must be an integer: <<"key">>", zero or less
  with "The binding key must be greater than 0" (406, nothing bound);
* the bindings own consecutive *buckets*, ``weight`` each, in binding order; a message's hash
  picks a bucket with jump consistent hashing (Lamping and Veach), so a destination receives a
  share proportional to its weight, a given key always lands on the same bucket, and adding a
  binding moves only about ``weight / total`` of the keys;
* the exchange argument ``hash-header`` hashes that header instead of the routing key, and
  ``hash-property`` one of the properties ``message_id``, ``correlation_id`` or ``timestamp``
  (another name is refused: "Unsupported property: name"); both together are refused ("hash-header
  and hash-property are mutually exclusive"). A message without the header or property hashes
  as "undefined" does, so all such messages go to one bucket, as with the plugin;
* an exchange without bindings routes nowhere.

Unlike the plugin, which keeps one bucket range per destination, each binding keeps its own, so
unbinding one of two bindings of a queue leaves the other's buckets in place. The hash is
BLAKE2b of the value (stable across processes and restarts, where Python's ``hash`` is not);
the bucket order is the binding order, which the broker's definitions keep across restarts.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_right
from collections.abc import Collection
from datetime import datetime
from typing import Any, Final

from jackalope.core.exchanges.base import (
    EMPTY_ROUTE,
    ArgumentInvalid,
    Binding,
    BindingInvalid,
    Destination,
    Exchange,
    HeadersThunk,
    freeze_value,
    message_property,
)

HASH_HEADER: Final = "hash-header"
HASH_PROPERTY: Final = "hash-property"
PROPERTIES: Final = ("correlation_id", "message_id", "timestamp")

_WEIGHT: Final = re.compile(r"[+-]?[0-9]+\Z")  # what Erlang's list_to_integer accepts
_UNDEFINED: Final = b"\x00undefined"  # the hashed form of a missing header or property
_MASK: Final = (1 << 64) - 1


def weight_of(routing_key: str) -> int:
    """A binding key as a weight; raises :class:`BindingInvalid` as the plugin refuses it."""
    if not _WEIGHT.match(routing_key):
        quoted = routing_key.replace("\\", "\\\\").replace('"', '\\"')
        raise BindingInvalid(f'The binding key must be an integer: <<"{quoted}">>')
    weight = int(routing_key)
    if weight < 1:
        raise BindingInvalid("The binding key must be greater than 0")
    return weight


def jump_hash(key: int, buckets: int) -> int:
    """Jump consistent hash: a bucket in ``[0, buckets)`` for a 64-bit ``key``; growing
    ``buckets`` by one moves only ``1/buckets`` of the keys (to the new bucket)."""
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * 2862933555777866757 + 1) & _MASK
        j = int((b + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return b


def hash_value(value: Any) -> int:
    """A 64-bit hash of a routing key, header or property value, the same in every process."""
    if isinstance(value, str):
        data = value.encode()
    elif isinstance(value, bytes):
        data = value
    elif value is None:
        data = _UNDEFINED
    else:
        data = repr(freeze_value(value)).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


class ConsistentHashExchange(Exchange):
    """Bindings weighted by their keys; one destination per message, by consistent hashing."""

    type_name = "x-consistent-hash"

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__(name, **options)
        header = self.arguments.get(HASH_HEADER)
        prop = self.arguments.get(HASH_PROPERTY)
        for key, value in ((HASH_HEADER, header), (HASH_PROPERTY, prop)):
            if value is not None and not isinstance(value, str):
                raise ArgumentInvalid(f"invalid arg '{key}' for exchange '{name}': it must be a string")
        if header is not None and prop is not None:
            raise ArgumentInvalid("hash-header and hash-property are mutually exclusive")
        if prop is not None and prop not in PROPERTIES:
            raise ArgumentInvalid(f"Unsupported property: {prop}")
        self.hash_header: str | None = header
        self.hash_property: str | None = prop
        self._weights: dict[Binding, int] = {}  # in binding order: the order of the buckets
        self._ends: list[int] = []  # cumulative weights (built lazily after a change)
        self._targets: list[frozenset[Destination]] = []
        self._built = True

    @property
    def buckets(self) -> int:
        """The ring's size: the sum of the bindings' weights."""
        return sum(self._weights.values())

    def route(self, routing_key: str, headers: HeadersThunk) -> Collection[Destination]:
        """One destination (a shared frozenset), or none without bindings."""
        if not self._built:
            self._build()
        ends = self._ends
        if not ends:
            return EMPTY_ROUTE
        if self.hash_header is not None:
            value: Any = headers().get(self.hash_header)
        elif self.hash_property is not None:
            value = message_property(headers, self.hash_property)
            if isinstance(value, datetime):  # the plugin hashes the timestamp's decimal seconds
                value = str(int(value.timestamp()))
        else:
            value = routing_key
        bucket = jump_hash(hash_value(value), ends[-1])
        return self._targets[bisect_right(ends, bucket)]

    def _build(self) -> None:
        ends: list[int] = []
        targets: list[frozenset[Destination]] = []
        singletons: dict[Destination, frozenset[Destination]] = {}
        total = 0
        for binding, weight in self._weights.items():
            total += weight
            ends.append(total)
            dest = binding.destination
            targets.append(singletons.setdefault(dest, frozenset((dest,))))
        self._ends, self._targets, self._built = ends, targets, True

    def _validate(self, binding: Binding) -> None:
        weight_of(binding.routing_key)

    def _add(self, binding: Binding) -> None:
        self._weights[binding] = weight_of(binding.routing_key)
        self._built = False

    def _remove(self, binding: Binding) -> None:
        del self._weights[binding]
        self._built = False
