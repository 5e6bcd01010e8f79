"""The topic exchange: binding keys are dot-separated word patterns with ``*`` and ``#``.

Semantics are RabbitMQ's (``rabbit_db_topic_exchange``):

* a key is split on every ``.``; the empty key is *zero* words, while ``"a..b"`` is three words
  (the middle one empty) and ``"."`` is two empty words;
* ``*`` in a binding key matches exactly one word (an empty word too);
* ``#`` matches zero or more words, so ``"#"`` matches every key including ``""``, ``"a.#.b"``
  matches ``"a.b"``, and ``"#.#"`` means the same as ``"#"``;
* anything else, including ``*`` or ``#`` inside a longer word, is compared literally, and a
  routing key's own ``*``/``#`` words are just words.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection
from typing import Any

from jackalope.core.exchanges.base import EMPTY_ROUTE, Binding, Destination, Exchange, HeadersThunk


def split_key(key: str) -> list[str]:
    """The words of a routing or binding key (``""`` is no words at all, as in RabbitMQ)."""
    return key.split(".") if key else []


def _trie_words(binding_key: str) -> list[str]:
    """The trie path of a binding key: its words with runs of ``#`` collapsed into one.

    ``#.#`` matches exactly what ``#`` matches, and collapsing keeps routing polynomial: each
    ``#`` node fans out over every remaining suffix of the routing key, and nested ``#`` nodes
    would multiply those fan-outs.
    """
    words: list[str] = []
    for word in split_key(binding_key):
        if word != "#" or not words or words[-1] != "#":
            words.append(word)
    return words


class _Node:
    """One trie node: children by the next binding-key word (literal, ``*`` or ``#``), and the
    destinations of the bindings whose key ends here, counted (see ``DirectExchange``)."""

    __slots__ = ("children", "destinations")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.destinations: dict[Destination, int] = {}


def _collect(
    node: _Node, words: list[str], i: int, n: int, out: set[Destination], seen: set[tuple[_Node, int]]
) -> None:
    """Add to ``out`` the destinations of every binding under ``node`` matching ``words[i:]``.

    The walk follows, per routing-key word, at most the literal edge and the ``*`` edge, and at a
    ``#`` edge every possible number of skipped words. ``seen`` remembers which ``#`` node was
    entered at which word index: the trie is a tree, so the same (node, index) state can only
    recur through different ``#`` expansions, and visiting it again would add nothing. That bounds
    the work by trie size times key length for patterns like ``#.a.#.a.#``.
    """
    children = node.children
    if i == n:
        if node.destinations:
            out.update(node.destinations)
    elif children:
        word = words[i]
        # A routing-key word "*" or "#" is taken literally; its literal edge would be the "*"
        # edge (visited next) or a one-word "#" skip (covered below), so skip the duplicate walk.
        if word != "*" and word != "#":
            child = children.get(word)
            if child is not None:
                _collect(child, words, i + 1, n, out, seen)
        child = children.get("*")
        if child is not None:
            _collect(child, words, i + 1, n, out, seen)
    if not children:
        return
    hashed = children.get("#")
    if hashed is None:
        return
    if not hashed.children:
        # A trailing "#" matches whatever remains: no need to try each split.
        out.update(hashed.destinations)
        return
    for j in range(i, n + 1):
        state = (hashed, j)
        if state not in seen:
            seen.add(state)
            _collect(hashed, words, j, n, out, seen)


class TopicExchange(Exchange):
    """A trie of binding-key words, as RabbitMQ's topic trie, plus a small route cache.

    Routing walks only the trie branches the routing key can take, so its cost grows with the
    key's length and the number of wildcard branches, not with the number of bindings. Real
    traffic repeats a small set of routing keys, so the answer per key is kept in a bounded FIFO
    cache (:attr:`route_cache_size` entries); any bind or unbind clears it, which is cheap because
    binding changes are rare next to messages.
    """

    type_name = "topic"

    route_cache_size: int = 1024
    """Routing keys whose answer is remembered; 0 disables the cache. Per instance if assigned."""

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__(name, **options)
        self._root = _Node()
        # FIFO eviction: OrderedDict.popitem(last=False) is O(1), and a hit costs a plain lookup
        # (no reordering), which matters more than LRU precision for a cache this size.
        self._cache: OrderedDict[str, frozenset[Destination]] = OrderedDict()

    def route(self, routing_key: str, headers: HeadersThunk) -> Collection[Destination]:
        """Shared read-only frozenset (cached per routing key); see :meth:`Exchange.route`."""
        found = self._cache.get(routing_key)
        if found is not None:
            return found
        root = self._root
        if not root.children and not root.destinations:
            return EMPTY_ROUTE
        words = split_key(routing_key)
        matched: set[Destination] = set()
        _collect(root, words, 0, len(words), matched, set())
        found = frozenset(matched) if matched else EMPTY_ROUTE
        limit = self.route_cache_size
        if limit > 0:
            cache = self._cache
            if len(cache) >= limit:
                cache.popitem(last=False)
            cache[routing_key] = found
        return found

    def _add(self, binding: Binding) -> None:
        node = self._root
        for word in _trie_words(binding.routing_key):
            child = node.children.get(word)
            if child is None:
                child = node.children[word] = _Node()
            node = child
        destination = binding.destination
        node.destinations[destination] = node.destinations.get(destination, 0) + 1
        self._cache.clear()

    def _remove(self, binding: Binding) -> None:
        words = _trie_words(binding.routing_key)
        path = [self._root]
        for word in words:
            path.append(path[-1].children[word])
        leaf = path[-1]
        destination = binding.destination
        remaining = leaf.destinations[destination] - 1
        if remaining:
            leaf.destinations[destination] = remaining
        else:
            del leaf.destinations[destination]
            # Prune the nodes left with neither bindings nor children, deepest first, so the
            # trie (and every later walk) only holds paths that lead to a binding.
            for depth in range(len(words), 0, -1):
                node = path[depth]
                if node.children or node.destinations:
                    break
                del path[depth - 1].children[words[depth - 1]]
        self._cache.clear()
