"""Which connection owns a share session (kafka/share_sessions.py), sans-IO: the connection
that opened it, until another re-opens it; a closing connection ends only the sessions it owns."""

from __future__ import annotations

import uuid

from jackalope.kafka.share_sessions import ShareSessionCache

T = uuid.uuid4()
A = ("g", "a")
B = ("g", "b")


def test_the_opening_connection_owns_the_session() -> None:
    cache = ShareSessionCache()
    first, second = object(), object()
    cache.fetch(A, 0, [(T, 0)], owner=first)
    cache.fetch(B, 0, [(T, 0)], owner=first)
    assert cache.owner(A) is first
    cache.fetch(A, 1, [], owner=second)  # a later epoch on another connection does not move it
    assert cache.owner(A) is first
    assert cache.disconnected(second) == []
    assert cache.disconnected(first) == [A, B]
    assert len(cache) == 0 and cache.owner(A) is None
    assert cache.disconnected(first) == []


def test_reopening_on_another_connection_moves_ownership() -> None:
    cache = ShareSessionCache()
    old, new = object(), object()
    cache.fetch(A, 0, [(T, 0)], owner=old)
    cache.fetch(A, 0, [(T, 0)], owner=new)
    assert cache.owner(A) is new
    assert cache.disconnected(old) == []  # the member's live session stays
    assert cache.get(A) is not None
    assert cache.disconnected(new) == [A]


def test_closed_and_dropped_sessions_leave_their_connection() -> None:
    cache = ShareSessionCache()
    conn = object()
    cache.fetch(A, 0, [], owner=conn)
    cache.fetch(B, 0, [], owner=conn)
    assert cache.fetch(A, -1, []).closed
    assert cache.owner(A) is None
    cache.drop_group("g")
    assert cache.disconnected(conn) == []
    cache.fetch(A, 0, [], owner=conn)
    assert cache.acknowledge(A, -1).closed
    assert cache.disconnected(conn) == []


def test_evicted_sessions_leave_their_connection() -> None:
    cache = ShareSessionCache(max_sessions=1)
    cache.gone = lambda key: key == A
    conn = object()
    cache.fetch(A, 0, [], owner=conn)
    assert not cache.fetch(B, 0, []).error  # A's member left its group: evicted to make room
    assert cache.owner(A) is None and cache.disconnected(conn) == []


def test_without_an_owner_nothing_is_tied() -> None:
    cache = ShareSessionCache()
    cache.fetch(A, 0, [])
    assert cache.owner(A) is None and cache.get(A) is not None
