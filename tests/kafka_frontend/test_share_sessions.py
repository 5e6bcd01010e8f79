"""Share sessions (kafka/share_sessions.py), sans-IO."""

from __future__ import annotations

import uuid

from jackalope.kafka.protocol import ErrorCode
from jackalope.kafka.share_sessions import MAX_EPOCH, ShareSessionCache, next_epoch

T = uuid.uuid4()
KEY = ("g", "m")


def test_open_then_incremental_then_close() -> None:
    cache = ShareSessionCache()
    opened = cache.fetch(KEY, 0, [(T, 0), (T, 1)])
    assert not opened.error and opened.partitions == ((T, 0), (T, 1))
    more = cache.fetch(KEY, 1, [(T, 2)], forgotten=[(T, 0)])
    assert more.partitions == ((T, 1), (T, 2))
    assert cache.fetch(KEY, 2, []).partitions == ((T, 1), (T, 2))
    closed = cache.fetch(KEY, -1, [])
    assert closed.closed and len(cache) == 0


def test_wrong_and_unknown_epochs() -> None:
    cache = ShareSessionCache()
    assert cache.fetch(KEY, 1, []).error == ErrorCode.share_session_not_found
    assert cache.acknowledge(KEY, 1).error == ErrorCode.share_session_not_found
    cache.fetch(KEY, 0, [])
    assert cache.fetch(KEY, 5, []).error == ErrorCode.invalid_share_session_epoch
    assert cache.acknowledge(KEY, 0).error == ErrorCode.invalid_share_session_epoch
    assert not cache.acknowledge(KEY, 1).error
    assert not cache.fetch(KEY, 2, []).error
    assert cache.acknowledge(KEY, -1).closed


def test_reopening_replaces_the_session() -> None:
    cache = ShareSessionCache()
    cache.fetch(KEY, 0, [(T, 0)])
    cache.fetch(KEY, 1, [])
    assert cache.fetch(KEY, 0, [(T, 1)]).partitions == ((T, 1),)
    assert not cache.fetch(KEY, 1, []).error


def test_the_cache_is_bounded() -> None:
    cache = ShareSessionCache(max_sessions=2)
    cache.fetch(("g", "a"), 0, [])
    cache.fetch(("g", "b"), 0, [])
    assert cache.fetch(("g", "c"), 0, []).error == ErrorCode.share_session_limit_reached
    cache.drop_group("g")
    assert not cache.fetch(("g", "c"), 0, []).error


def test_epochs_wrap_to_one() -> None:
    assert next_epoch(MAX_EPOCH) == 1
    assert next_epoch(7) == 8
