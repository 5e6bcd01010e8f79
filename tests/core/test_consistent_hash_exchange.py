"""The consistent-hash exchange: weights from binding keys (and their refusals), one destination
per message, shares proportional to the weights over a fixed set of keys, the same key always to
the same destination (in a new exchange too, as after a restart), few keys moved by a new
binding, hashing on a header or a property, and the declaration's refusals."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from jackalope.core.exchanges import (
    EMPTY_ROUTE,
    ArgumentInvalid,
    BindingInvalid,
    ConsistentHashExchange,
    make_exchange,
)
from jackalope.core.exchanges.consistent_hash import jump_hash

KEYS = [f"order-{i}" for i in range(30_000)]


def no_headers() -> Mapping[str, Any]:
    raise AssertionError("hashing on the routing key must not decode the headers")


class Message:
    """A headers thunk that also answers properties, as the AMQP front-end's does."""

    def __init__(self, headers: Mapping[str, Any] | None = None, **properties: Any) -> None:
        self.headers = headers or {}
        self.properties = properties

    def __call__(self) -> Mapping[str, Any]:
        return self.headers

    def property(self, name: str) -> Any:
        return self.properties.get(name)


def exchange(weights: Mapping[str, str], **arguments: Any) -> ConsistentHashExchange:
    ex = make_exchange("x-consistent-hash", "chx", arguments=arguments)
    assert isinstance(ex, ConsistentHashExchange)
    for queue, weight in weights.items():
        ex.bind(queue, weight)
    return ex


def only(ex: ConsistentHashExchange, key: str, headers: Any = no_headers) -> Any:
    found = ex.route(key, headers)
    assert len(found) == 1
    return next(iter(found))


def shares(ex: ConsistentHashExchange, keys: list[str] = KEYS) -> Counter[Any]:
    return Counter(only(ex, key) for key in keys)


# -- weights -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("abc", 'The binding key must be an integer: <<"abc">>'),
        ("", 'The binding key must be an integer: <<"">>'),
        ("1.5", 'The binding key must be an integer: <<"1.5">>'),
        (" 2", 'The binding key must be an integer: <<" 2">>'),
        ("0", "The binding key must be greater than 0"),
        ("-3", "The binding key must be greater than 0"),
    ],
)
def test_a_binding_key_must_be_a_positive_integer(key: str, message: str) -> None:
    ex = exchange({})
    with pytest.raises(BindingInvalid) as caught:
        ex.bind("q", key)
    assert str(caught.value) == message
    assert not ex.has_bindings() and ex.route("k", no_headers) is EMPTY_ROUTE


def test_an_exchange_without_bindings_routes_nowhere() -> None:
    ex = exchange({"q": "1"})
    assert only(ex, "k") == "q"
    ex.unbind("q", "1")
    assert ex.route("k", no_headers) is EMPTY_ROUTE
    assert ex.buckets == 0


# -- distribution ------------------------------------------------------------------------------


def test_shares_are_proportional_to_the_weights() -> None:
    ex = exchange({"q1": "1", "q2": "1", "q3": "2", "q4": "+4"})
    assert ex.buckets == 8
    got = shares(ex)
    for queue, weight in (("q1", 1), ("q2", 1), ("q3", 2), ("q4", 4)):
        expected = len(KEYS) * weight / 8
        assert abs(got[queue] - expected) < 0.05 * expected, got


def test_a_key_always_goes_to_the_same_destination() -> None:
    ex = exchange({"a": "3", "b": "1", "c": "2"})
    first = {key: only(ex, key) for key in KEYS[:2000]}
    assert {key: only(ex, key) for key in KEYS[:2000]} == first
    # A new exchange with the same bindings (as after a restart) agrees.
    assert {key: only(exchange({"a": "3", "b": "1", "c": "2"}), key) for key in KEYS[:2000]} == first


def test_a_new_binding_moves_only_its_share_of_keys_and_only_to_itself() -> None:
    ex = exchange({"a": "1", "b": "1", "c": "1"})
    before = {key: only(ex, key) for key in KEYS}
    ex.bind("d", "1")
    after = {key: only(ex, key) for key in KEYS}
    moved = [key for key in KEYS if before[key] != after[key]]
    assert {after[key] for key in moved} == {"d"}
    assert abs(len(moved) - len(KEYS) / 4) < 0.05 * len(KEYS) / 4


def test_unbinding_one_of_two_bindings_of_a_queue_keeps_the_other() -> None:
    ex = exchange({"a": "1", "b": "1"})
    ex.bind("a", "2")  # a second binding of a, with its own buckets
    assert ex.buckets == 4
    ex.unbind("a", "1")
    assert ex.buckets == 3
    assert set(shares(ex, KEYS[:3000])) == {"a", "b"}
    ex.unbind_destination("a")
    assert set(shares(ex, KEYS[:100])) == {"b"}


def test_jump_hash_fills_every_bucket_and_grows_gently() -> None:
    keys = range(0, 2**64, 2**64 // 5000)
    assert {jump_hash(k, 7) for k in keys} == set(range(7))
    assert all(jump_hash(k, 1) == 0 for k in keys)
    assert all(jump_hash(k, 8) in (jump_hash(k, 7), 7) for k in keys)


# -- what is hashed ----------------------------------------------------------------------------


def test_hash_header() -> None:
    ex = exchange({"a": "1", "b": "1", "c": "1"}, **{"hash-header": "customer"})
    by_header = Counter(only(ex, "same key", Message({"customer": f"c{i}"})) for i in range(3000))
    assert set(by_header) == {"a", "b", "c"}  # the routing key does not decide
    assert len({only(ex, f"key {i}", Message({"customer": "c7"})) for i in range(100)}) == 1
    # Without the header every message hashes alike, so all go to one destination.
    assert len({only(ex, f"key {i}", Message({})) for i in range(100)}) == 1


def test_hash_property() -> None:
    ex = exchange({"a": "1", "b": "1", "c": "1"}, **{"hash-property": "message_id"})
    by_id = Counter(only(ex, "k", Message(message_id=f"m{i}")) for i in range(3000))
    assert set(by_id) == {"a", "b", "c"}
    assert len({only(ex, f"k{i}", Message(message_id="m1")) for i in range(100)}) == 1
    assert len({only(ex, f"k{i}", Message()) for i in range(100)}) == 1

    stamped = exchange({"a": "1", "b": "1", "c": "1"}, **{"hash-property": "timestamp"})
    times = [datetime.fromtimestamp(1_700_000_000 + i, UTC) for i in range(3000)]
    assert set(Counter(only(stamped, "k", Message(timestamp=t)) for t in times)) == {"a", "b", "c"}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"hash-header": "h", "hash-property": "message_id"},
            "hash-header and hash-property are mutually exclusive",
        ),
        ({"hash-property": "reply_to"}, "Unsupported property: reply_to"),
        ({"hash-header": 5}, "invalid arg 'hash-header' for exchange 'chx': it must be a string"),
    ],
)
def test_declare_refusals(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ArgumentInvalid) as caught:
        make_exchange("x-consistent-hash", "chx", arguments=arguments)
    assert str(caught.value) == message
