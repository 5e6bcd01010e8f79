"""Exchange types against RabbitMQ's routing rules: unit tables per type, a property test of the
topic trie (and its route cache) against a plain recursive matcher, and the headers x-match modes.

Destinations are plain strings (any hashable will do) or other exchanges; nothing is mocked.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jackalope.core.exchanges import (
    EMPTY_ROUTE,
    Binding,
    BindingInvalid,
    ConsistentHashExchange,
    DelayedMessageExchange,
    DirectExchange,
    Exchange,
    FanoutExchange,
    HeadersExchange,
    TopicExchange,
    UnknownExchangeType,
    exchange_types,
    make_exchange,
)

ALL_TYPES = ["direct", "fanout", "topic", "headers"]


def no_headers() -> Mapping[str, Any]:
    """The headers thunk for exchanges that must never decode headers."""
    raise AssertionError("only the headers exchange may decode the headers table")


class Headers:
    """A headers thunk that counts its calls (the decode it stands for is what route saves)."""

    def __init__(self, table: Mapping[str, Any] | None = None) -> None:
        self.table: Mapping[str, Any] = table or {}
        self.calls = 0

    def __call__(self) -> Mapping[str, Any]:
        self.calls += 1
        return self.table


def routed(exchange: Exchange, key: str = "", headers: Mapping[str, Any] | None = None) -> set[Any]:
    thunk = Headers(headers) if isinstance(exchange, HeadersExchange) else no_headers
    return set(exchange.route(key, thunk))


# -- registry ---------------------------------------------------------------------------------


def test_exchange_types_registry() -> None:
    types = exchange_types()
    assert types == {
        "direct": DirectExchange,
        "fanout": FanoutExchange,
        "topic": TopicExchange,
        "headers": HeadersExchange,
        "x-consistent-hash": ConsistentHashExchange,
        "x-delayed-message": DelayedMessageExchange,
    }
    assert all(cls.type_name == name for name, cls in types.items())
    types.clear()
    assert len(exchange_types()) == 6  # a copy: the registry is not the caller's to change


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_make_exchange(type_name: str) -> None:
    args = {"alternate-exchange": "ae"}
    ex = make_exchange(type_name, "x", durable=False, auto_delete=True, internal=True, arguments=args)
    assert (ex.name, ex.type_name, ex.durable, ex.auto_delete, ex.internal) == (
        "x",
        type_name,
        False,
        True,
        True,
    )
    args["alternate-exchange"] = "changed"
    assert dict(ex.arguments) == {"alternate-exchange": "ae"}
    defaults = make_exchange(type_name, "y")
    assert (defaults.durable, defaults.auto_delete, defaults.internal, dict(defaults.arguments)) == (
        True,
        False,
        False,
        {},
    )
    assert not defaults.has_bindings() and defaults.bindings() == []


def test_unknown_exchange_type() -> None:
    with pytest.raises(UnknownExchangeType) as caught:
        make_exchange("x-foo", "x")
    assert isinstance(caught.value, ValueError)
    assert caught.value.type_name == "x-foo"
    assert "x-foo" in str(caught.value)


# -- binding identity -------------------------------------------------------------------------


def test_binding_identity_ignores_argument_order() -> None:
    one = Binding("q", "k", {"a": 1, "b": {"x": "y", "z": [1, 2]}})
    two = Binding("q", "k", {"b": {"z": [1, 2], "x": "y"}, "a": 1})
    assert one == two and hash(one) == hash(two)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({"a": True}, {"a": 1}),  # AMQP bool and int are different values
        ({"a": 1}, {"a": 1.0}),
        ({"a": "1"}, {"a": b"1"}),
        ({"a": None}, {"a": ""}),
        ({"a": [1, 2]}, {"a": [2, 1]}),  # arrays are ordered
        ({"a": {"b": False}}, {"a": {"b": 0}}),
        ({"a": Decimal("1.0")}, {"a": Decimal("1.00")}),  # AMQP decimals carry their scale
        ({"a": 0.0}, {"a": -0.0}),
        ({"a": 1}, {}),
    ],
)
def test_binding_identity_respects_value_types(left: dict[str, Any], right: dict[str, Any]) -> None:
    assert Binding("q", "k", left) != Binding("q", "k", right)


def test_binding_arguments_are_a_frozen_copy() -> None:
    args: dict[str, Any] = {"a": 1}
    binding = Binding("q", "k", args)
    args["a"] = 2
    assert dict(binding.arguments) == {"a": 1}
    with pytest.raises(TypeError):
        binding.arguments["a"] = 3  # type: ignore[index]
    assert Binding("q", "k", {"n": float("nan")}) == Binding("q", "k", {"n": float("nan")})


# -- what every type shares --------------------------------------------------------------------


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_bind_is_idempotent(type_name: str) -> None:
    ex = make_exchange(type_name, "x")
    assert ex.bind("q1", "k") is True
    assert ex.bind("q1", "k") is False
    assert ex.bind("q1", "k", {}) is False  # None and {} are the same (empty) arguments
    assert ex.bind("q1", "k", {"a": 1, "b": 2}) is True
    assert ex.bind("q1", "k", {"b": 2, "a": 1}) is False
    assert ex.bind("q1", "other") is True
    assert ex.bind("q2", "k") is True
    assert ex.bindings() == [
        Binding("q1", "k", {}),
        Binding("q1", "k", {"a": 1, "b": 2}),
        Binding("q1", "other", {}),
        Binding("q2", "k", {}),
    ]
    assert ex.has_bindings()


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_unbind(type_name: str) -> None:
    ex = make_exchange(type_name, "x")
    ex.bind("q", "k")
    ex.bind("q", "k", {"a": 1})
    assert ex.unbind("q", "k", {"a": 2}) is False
    assert ex.unbind("q", "other") is False
    assert ex.unbind("other-q", "k") is False
    assert ex.unbind("q", "k", {"a": 1}) is True
    assert ex.unbind("q", "k", {"a": 1}) is False
    assert ex.bindings() == [Binding("q", "k", {})]
    assert ex.unbind("q", "k") is True
    assert not ex.has_bindings() and ex.bindings() == []
    assert routed(ex, "k") == set()
    assert ex.bind("q", "k") is True  # and it can come back


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_unbind_destination(type_name: str) -> None:
    ex = make_exchange(type_name, "x")
    ex.bind("gone", "k")
    ex.bind("stays", "k")
    ex.bind("gone", "k2", {"a": 1})
    assert "gone" in routed(ex, "k", {"a": 1})
    removed = ex.unbind_destination("gone")
    assert removed == [Binding("gone", "k", {}), Binding("gone", "k2", {"a": 1})]
    assert ex.bindings() == [Binding("stays", "k", {})]
    assert routed(ex, "k", {"a": 1}) == {"stays"}
    assert routed(ex, "k2", {"a": 1}) <= {"stays"}
    assert ex.unbind_destination("gone") == []
    assert ex.unbind_destination("stays") == [Binding("stays", "k", {})]
    assert not ex.has_bindings()


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_destination_bound_twice_is_routed_once_until_both_bindings_go(type_name: str) -> None:
    ex = make_exchange(type_name, "x")
    ex.bind("q", "k")
    ex.bind("q", "k", {"extra": "arg"})
    headers = {"extra": "arg"}  # satisfies both bindings on a headers exchange
    result = ex.route("k", Headers(headers))
    assert list(result) == ["q"]
    ex.unbind("q", "k")
    assert routed(ex, "k", headers) == {"q"}
    ex.unbind("q", "k", {"extra": "arg"})
    assert routed(ex, "k", headers) == set()


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_exchanges_are_destinations(type_name: str) -> None:
    source = make_exchange(type_name, "source")
    target = make_exchange("fanout", "target")
    twin = make_exchange("fanout", "target")  # same name, different object: a different destination
    source.bind(target, "k")
    source.bind(twin, "k")
    assert routed(source, "k") == {target, twin}
    assert source.unbind_destination(target) == [Binding(target, "k", {})]
    assert routed(source, "k") == {twin}


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_equivalent(type_name: str) -> None:
    ex = make_exchange(type_name, "x", durable=True, arguments={"alternate-exchange": "ae", "x-other": 1})
    same = {"alternate-exchange": "ae", "x-other": 1}
    assert ex.equivalent(type_name, True, False, False, same)
    # RabbitMQ compares only alternate-exchange among the arguments.
    assert ex.equivalent(type_name, True, False, False, {"alternate-exchange": "ae"})
    assert ex.equivalent(type_name, True, False, False, {"alternate-exchange": "ae", "x-other": 2})
    other_type = "direct" if type_name != "direct" else "topic"
    assert not ex.equivalent(other_type, True, False, False, same)
    assert not ex.equivalent(type_name, False, False, False, same)
    assert not ex.equivalent(type_name, True, True, False, same)
    assert not ex.equivalent(type_name, True, False, True, same)
    assert not ex.equivalent(type_name, True, False, False, {"alternate-exchange": "other"})
    assert not ex.equivalent(type_name, True, False, False, {"alternate-exchange": b"ae"})
    assert not ex.equivalent(type_name, True, False, False, {})
    plain = make_exchange(type_name, "y", auto_delete=True)
    assert plain.equivalent(type_name, True, True, False, {})
    assert plain.equivalent(type_name, True, True, False, {"x-anything": 1})
    assert not plain.equivalent(type_name, True, True, False, {"alternate-exchange": "ae"})


# -- direct ------------------------------------------------------------------------------------


def test_direct_routes_on_exact_key() -> None:
    ex = DirectExchange("d")
    ex.bind("q1", "a")
    ex.bind("q2", "a")
    ex.bind("q3", "b")
    ex.bind("q4", "")
    assert routed(ex, "a") == {"q1", "q2"}
    assert routed(ex, "b") == {"q3"}
    assert routed(ex, "") == {"q4"}
    assert routed(ex, "A") == set()
    assert routed(ex, "a.b") == set()
    assert routed(ex, "*") == set()


def test_direct_result_is_shared_and_immutable() -> None:
    ex = DirectExchange("d")
    ex.bind("q1", "a")
    first = ex.route("a", no_headers)
    assert isinstance(first, frozenset)
    assert ex.route("a", no_headers) is first  # no copy per message
    assert ex.route("missing", no_headers) is EMPTY_ROUTE
    ex.bind("q2", "a")
    assert first == {"q1"}  # a result held across a bind does not change under the holder
    assert routed(ex, "a") == {"q1", "q2"}
    ex.unbind("q1", "a")
    assert routed(ex, "a") == {"q2"}


# -- fanout ------------------------------------------------------------------------------------


def test_fanout_ignores_routing_key() -> None:
    ex = FanoutExchange("f")
    assert ex.route("any", no_headers) is EMPTY_ROUTE
    ex.bind("q1", "")
    ex.bind("q2", "whatever")
    for key in ("", "whatever", "a.b.c"):
        assert routed(ex, key) == {"q1", "q2"}
    first = ex.route("x", no_headers)
    assert ex.route("y", no_headers) is first
    ex.bind("q3", "")
    assert first == {"q1", "q2"}
    assert routed(ex, "x") == {"q1", "q2", "q3"}
    ex.unbind("q1", "")
    assert routed(ex, "x") == {"q2", "q3"}


# -- topic -------------------------------------------------------------------------------------

# The binding table of RabbitMQ's own topic-exchange test, with its expected matches.
RABBIT_TOPIC_BINDINGS = {
    "t1": "a.b.c",
    "t2": "a.*.c",
    "t3": "a.#.b",
    "t4": "a.b.b.c",
    "t5": "#",
    "t6": "#.#",
    "t7": "#.b",
    "t8": "*.*",
    "t9": "a.*",
    "t10": "*.b.c",
    "t11": "a.#",
    "t12": "a.#.#",
    "t13": "b.b.c",
    "t14": "a.b.b",
    "t15": "a.b",
    "t16": "b.c",
    "t17": "",
    "t18": "*.*.*",
    "t19": "vodka.martini",
    "t20": "a.b.c",
    "t21": "*.#",
    "t22": "#.*.#",
    "t23": "*.#.#",
    "t24": "#.#.#",
    "t25": "*",
    "t26": "#.b.#",
}
ALWAYS = {"t5", "t6", "t24"}
ONE_OR_MORE = {"t21", "t22", "t23"}
RABBIT_TOPIC_EXPECTED = {
    "a.b.c": ALWAYS | ONE_OR_MORE | {"t1", "t2", "t10", "t11", "t12", "t18", "t20", "t26"},
    "a.b": ALWAYS | ONE_OR_MORE | {"t3", "t7", "t8", "t9", "t11", "t12", "t15", "t26"},
    "a.b.b": ALWAYS | ONE_OR_MORE | {"t3", "t7", "t11", "t12", "t14", "t18", "t26"},
    "": ALWAYS | {"t17"},
    "b.c.c": ALWAYS | ONE_OR_MORE | {"t18", "t26"},
    "a.a.a.a.a": ALWAYS | ONE_OR_MORE | {"t11", "t12"},
    "vodka.gin": ALWAYS | ONE_OR_MORE | {"t8"},
    "vodka.martini": ALWAYS | ONE_OR_MORE | {"t8", "t19"},
    "b.b.c": ALWAYS | ONE_OR_MORE | {"t10", "t13", "t18", "t26"},
    "nothing.here.at.all": ALWAYS | ONE_OR_MORE,
    "oneword": ALWAYS | ONE_OR_MORE | {"t25"},
}


@pytest.mark.parametrize("key", list(RABBIT_TOPIC_EXPECTED))
def test_topic_rabbitmq_table(key: str) -> None:
    ex = TopicExchange("t")
    for destination, binding_key in RABBIT_TOPIC_BINDINGS.items():
        ex.bind(destination, binding_key)
    assert routed(ex, key) == RABBIT_TOPIC_EXPECTED[key]


@pytest.mark.parametrize(
    ("binding_key", "matching", "not_matching"),
    [
        ("#", ["", "a", "a.b.c", ".", "a..b"], []),
        ("", [""], ["a", ".", "*"]),
        ("*", ["a", "*", "#"], ["", ".", "a.b"]),  # "." is two empty words
        ("a..b", ["a..b"], ["a.b", "a...b", "a.x.b"]),
        ("a.*.b", ["a..b", "a.x.b"], ["a.b", "a.x.y.b"]),
        ("*.*", [".", "a.", ".a", "a.b"], ["", "a", "a.b.c"]),
        ("a.", ["a."], ["a", "a.b"]),
        ("a.#.b", ["a.b", "a.x.b", "a.x.y.b", "a..b"], ["a", "b", "a.b.c", "x.a.b"]),
        ("#.#", ["", "a", "a.b"], []),
        ("#.a.#", ["a", "x.a", "a.x", "x.y.a.z"], ["", "b", "ab"]),
        ("#.*", ["a", "a.b", "."], [""]),
        ("a#", ["a#"], ["a", "a.b", "ab"]),  # wildcards are whole words only
        ("a*.b", ["a*.b"], ["ax.b"]),
    ],
)
def test_topic_edge_cases(binding_key: str, matching: list[str], not_matching: list[str]) -> None:
    ex = TopicExchange("t")
    ex.bind("q", binding_key)
    for key in matching:
        assert routed(ex, key) == {"q"}, key
    for key in not_matching:
        assert routed(ex, key) == set(), key


def test_topic_many_hash_wildcards_stay_polynomial() -> None:
    """Without memoising (#-node, position) this walk is combinatorial in the key length."""
    ex = TopicExchange("t")
    ex.bind("q", "#.a.#.a.#.a.#.a.#.a.#.b")
    ex.bind("r", "#.*.#.*.#.*.#.*.#.*.#.*.#.c")
    ex.route_cache_size = 0
    long_key = ".".join(["a"] * 120)
    assert routed(ex, long_key) == set()
    assert routed(ex, long_key + ".b") == {"q"}
    assert routed(ex, long_key + ".c") == {"r"}


def test_topic_route_cache_is_used_and_invalidated() -> None:
    ex = TopicExchange("t")
    ex.bind("q1", "a.*")
    first = ex.route("a.b", no_headers)
    assert first == {"q1"}
    assert ex.route("a.b", no_headers) is first  # a cache hit returns the stored frozenset
    ex.bind("q2", "#")
    assert routed(ex, "a.b") == {"q1", "q2"}
    assert first == {"q1"}
    ex.unbind("q1", "a.*")
    assert routed(ex, "a.b") == {"q2"}
    ex.bind("q1", "a.b")
    assert routed(ex, "a.b") == {"q1", "q2"}
    ex.unbind_destination("q2")
    assert routed(ex, "a.b") == {"q1"}
    ex.unbind_destination("q1")
    assert ex.route("a.b", no_headers) is EMPTY_ROUTE


def test_topic_route_cache_is_bounded() -> None:
    ex = TopicExchange("t")
    ex.route_cache_size = 3
    ex.bind("q", "k.*")
    for i in range(10):
        assert routed(ex, f"k.{i}") == {"q"}
        assert len(ex._cache) <= 3
    assert list(ex._cache) == ["k.7", "k.8", "k.9"]  # FIFO: the oldest entries went first


def test_topic_trie_is_pruned_on_unbind() -> None:
    ex = TopicExchange("t")
    ex.bind("q", "a.b.#.c")
    ex.bind("q", "a.b")
    ex.unbind("q", "a.b.#.c")
    assert list(ex._root.children["a"].children["b"].children) == []
    ex.unbind("q", "a.b")
    assert ex._root.children == {} and ex._root.destinations == {}


def split(key: str) -> list[str]:
    return key.split(".") if key else []


def reference_match(pattern: str, key: str) -> bool:
    """Topic matching written straight from the rules, word list against word list."""

    def match(p: list[str], k: list[str]) -> bool:
        if not p:
            return not k
        if p[0] == "#":
            return match(p[1:], k) or (bool(k) and match(p, k[1:]))
        if not k:
            return False
        return (p[0] == "*" or p[0] == k[0]) and match(p[1:], k[1:])

    return match(split(pattern), split(key))


PATTERN_WORDS = st.sampled_from(["a", "b", "", "*", "#"])
KEY_WORDS = st.sampled_from(["a", "b", "c", "", "*", "#"])
PATTERNS = st.lists(PATTERN_WORDS, max_size=5).map(".".join)
KEYS = st.lists(KEY_WORDS, max_size=6).map(".".join)
DESTINATIONS = st.sampled_from(["q1", "q2", "q3", "q4"])
ARGUMENTS = st.sampled_from([None, {"v": 1}])

OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("bind"), DESTINATIONS, PATTERNS, ARGUMENTS),
        st.tuples(st.just("unbind"), st.integers(0, 30)),
        st.tuples(st.just("unbind_destination"), DESTINATIONS),
        st.tuples(st.just("route"), KEYS),
    ),
    max_size=40,
)


def test_reference_matcher_itself() -> None:
    assert reference_match("#", "") and reference_match("a.#.b", "a.b") and reference_match("#.#", "")
    assert not reference_match("*", "") and not reference_match("a.*", "a")


@settings(max_examples=250, deadline=None)
@given(patterns=st.lists(PATTERNS, max_size=12), keys=st.lists(KEYS, min_size=1, max_size=12))
def test_topic_trie_matches_reference(patterns: list[str], keys: list[str]) -> None:
    ex = TopicExchange("t")
    for i, pattern in enumerate(patterns):
        ex.bind(i, pattern)
    for key in keys:
        expected = {i for i, pattern in enumerate(patterns) if reference_match(pattern, key)}
        assert set(ex.route(key, no_headers)) == expected, key
        assert set(ex.route(key, no_headers)) == expected, key  # again, from the cache


@settings(max_examples=500, deadline=None)
@given(operations=OPERATIONS, cache_size=st.sampled_from([0, 1, 3, 1024]))
def test_topic_trie_and_cache_follow_binding_changes(
    operations: list[tuple[Any, ...]], cache_size: int
) -> None:
    """Any mix of binds, unbinds and routes; every routing key seen so far is re-checked after
    each change, so an answer left stale in the cache would show."""
    ex = TopicExchange("t")
    ex.route_cache_size = cache_size
    model: dict[Binding, None] = {}
    keys_seen: set[str] = set()

    def check(key: str) -> None:
        expected = {b.destination for b in model if reference_match(b.routing_key, key)}
        assert set(ex.route(key, no_headers)) == expected, (key, list(model))

    for operation in operations:
        kind = operation[0]
        if kind == "bind":
            _, destination, pattern, arguments = operation
            binding = Binding(destination, pattern, arguments or {})
            assert ex.bind(destination, pattern, arguments) is (binding not in model)
            model[binding] = None
        elif kind == "unbind":
            if not model:
                continue
            binding = list(model)[operation[1] % len(model)]
            assert ex.unbind(binding.destination, binding.routing_key, binding.arguments) is True
            del model[binding]
        elif kind == "unbind_destination":
            removed = [b for b in model if b.destination == operation[1]]
            assert ex.unbind_destination(operation[1]) == removed
            for binding in removed:
                del model[binding]
        else:
            keys_seen.add(operation[1])
        assert ex.bindings() == list(model)
        assert ex.has_bindings() == bool(model)
        for key in keys_seen:
            check(key)


# -- headers -----------------------------------------------------------------------------------

HEADERS_CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    # (case, binding arguments, message headers, routed?)
    # x-match all (also the default)
    ("all: every condition", {"x-match": "all", "a": 1, "b": "x"}, {"a": 1, "b": "x"}, True),
    ("all: extra headers are fine", {"x-match": "all", "a": 1}, {"a": 1, "c": 3}, True),
    ("all: one missing", {"x-match": "all", "a": 1, "b": "x"}, {"a": 1}, False),
    ("all: one different", {"x-match": "all", "a": 1, "b": "x"}, {"a": 1, "b": "y"}, False),
    ("all: default mode", {"a": 1, "b": "x"}, {"a": 1}, False),
    ("all: default mode matches", {"a": 1, "b": "x"}, {"a": 1, "b": "x"}, True),
    ("all: bool is not int", {"a": True}, {"a": 1}, False),
    ("all: int is not bool", {"a": 1}, {"a": True}, False),
    ("all: int is not float", {"a": 1}, {"a": 1.0}, False),
    ("all: str is not bytes", {"a": "x"}, {"a": b"x"}, False),
    ("all: bytes", {"a": b"x"}, {"a": b"x"}, True),
    ("all: bool", {"a": False}, {"a": False}, True),
    ("all: float", {"a": 1.5}, {"a": 1.5}, True),
    ("all: decimal", {"a": Decimal("1.25")}, {"a": Decimal("1.25")}, True),
    ("all: timestamp", {"a": datetime(2024, 1, 2)}, {"a": datetime(2024, 1, 2)}, True),
    ("all: nested table", {"a": {"p": 1, "q": [True]}}, {"a": {"q": [True], "p": 1}}, True),
    ("all: nested types count", {"a": {"p": 1}}, {"a": {"p": True}}, False),
    ("all: array order counts", {"a": [1, 2]}, {"a": [2, 1]}, False),
    ("all: void means present", {"a": None}, {"a": "anything"}, True),
    ("all: void header is present", {"a": None}, {"a": None}, True),
    ("all: void needs presence", {"a": None}, {"b": 1}, False),
    ("all: value vs void header", {"a": 1}, {"a": None}, False),
    ("all: x- args ignored", {"x-match": "all", "x-foo": "bar", "a": 1}, {"a": 1}, True),
    ("all: only x- args", {"x-match": "all", "x-foo": "bar"}, {}, True),
    ("all: no args at all", {}, {}, True),
    ("all: no conditions, any headers", {}, {"a": 1}, True),
    ("all: x- headers are just headers", {"a": 1}, {"a": 1, "x-foo": 1}, True),
    # x-match any
    ("any: one of them", {"x-match": "any", "a": 1, "b": 2}, {"b": 2}, True),
    ("any: all of them", {"x-match": "any", "a": 1, "b": 2}, {"a": 1, "b": 2}, True),
    ("any: none", {"x-match": "any", "a": 1, "b": 2}, {"a": 2, "c": 1}, False),
    ("any: no headers", {"x-match": "any", "a": 1}, {}, False),
    ("any: types count", {"x-match": "any", "a": 1}, {"a": True}, False),
    ("any: void presence", {"x-match": "any", "a": None, "b": 1}, {"a": 0}, True),
    ("any: nothing to compare", {"x-match": "any"}, {"a": 1}, False),
    ("any: x- args ignored", {"x-match": "any", "x-foo": "bar"}, {"x-foo": "bar"}, False),
    ("any: x- ignored, other matches", {"x-match": "any", "x-foo": "bar", "a": 1}, {"a": 1}, True),
    # x-match all-with-x
    (
        "all-with-x: x- arg compared",
        {"x-match": "all-with-x", "x-foo": "bar", "a": 1},
        {"x-foo": "bar", "a": 1},
        True,
    ),
    ("all-with-x: x- arg missing", {"x-match": "all-with-x", "x-foo": "bar", "a": 1}, {"a": 1}, False),
    ("all-with-x: x- arg differs", {"x-match": "all-with-x", "x-foo": "bar"}, {"x-foo": "baz"}, False),
    ("all-with-x: x-match not compared", {"x-match": "all-with-x", "a": 1}, {"a": 1}, True),
    ("all-with-x: nothing to compare", {"x-match": "all-with-x"}, {}, True),
    ("all-with-x: void x- arg", {"x-match": "all-with-x", "x-foo": None}, {"x-foo": 3}, True),
    # x-match any-with-x
    ("any-with-x: x- arg matches", {"x-match": "any-with-x", "x-foo": "bar", "a": 1}, {"x-foo": "bar"}, True),
    ("any-with-x: plain arg matches", {"x-match": "any-with-x", "x-foo": "bar", "a": 1}, {"a": 1}, True),
    ("any-with-x: none", {"x-match": "any-with-x", "x-foo": "bar", "a": 1}, {"x-foo": "baz", "a": 2}, False),
    ("any-with-x: x-match not compared", {"x-match": "any-with-x"}, {"x-match": "any-with-x"}, False),
    ("any-with-x: bytes mode", {"x-match": b"any-with-x", "x-foo": 1}, {"x-foo": 1}, True),
]


@pytest.mark.parametrize(
    ("arguments", "headers", "expected"),
    [case[1:] for case in HEADERS_CASES],
    ids=[case[0] for case in HEADERS_CASES],
)
def test_headers_matching(arguments: dict[str, Any], headers: dict[str, Any], expected: bool) -> None:
    ex = HeadersExchange("h")
    ex.bind("q", "ignored-key", arguments)
    thunk = Headers(headers)
    assert set(ex.route("other-key", thunk)) == ({"q"} if expected else set())
    assert thunk.calls <= 1


@pytest.mark.parametrize("x_match", ["some", "ALL", "", 1, True, None, b"\xff"])
def test_headers_rejects_invalid_x_match(x_match: Any) -> None:
    ex = HeadersExchange("h")
    with pytest.raises(BindingInvalid):
        ex.bind("q", "", {"x-match": x_match, "a": 1})
    assert not ex.has_bindings()
    assert isinstance(BindingInvalid("x"), ValueError)


def test_headers_thunk_called_at_most_once_and_only_when_needed() -> None:
    ex = HeadersExchange("h")
    thunk = Headers({"a": 1, "b": 2})
    assert ex.route("", thunk) is EMPTY_ROUTE
    assert thunk.calls == 0  # no bindings: the headers are never decoded

    ex.bind("everything", "")  # all, no conditions: matches without looking
    ex.bind("nothing", "", {"x-match": "any"})
    assert set(ex.route("", thunk)) == {"everything"}
    assert thunk.calls == 0

    ex.bind("q1", "", {"a": 1})
    ex.bind("q2", "", {"x-match": "any", "b": 2, "c": 3})
    ex.bind("q3", "", {"a": 2})
    ex.bind("q1", "", {"b": 2})  # second binding of an already matched destination
    assert set(ex.route("", thunk)) == {"everything", "q1", "q2"}
    assert thunk.calls == 1


def test_headers_routing_key_is_ignored() -> None:
    ex = HeadersExchange("h")
    ex.bind("q", "some.key", {"a": 1})
    assert set(ex.route("another.key", Headers({"a": 1}))) == {"q"}
    assert set(ex.route("some.key", Headers({"a": 2}))) == set()
