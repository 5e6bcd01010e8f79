"""Incremental fetch sessions (KIP-227) without a broker: contexts, epochs, what an incremental
response carries, and the bounded cache's eviction."""

from __future__ import annotations

import uuid

from jackalope.kafka.fetch_sessions import FetchContext, FetchSessionCache, FetchTarget, next_epoch
from jackalope.kafka.protocol import ErrorCode


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def parts(*keys: tuple[str, int], offset: int = 0) -> list[tuple[tuple[str | uuid.UUID, int], FetchTarget]]:
    return [(k, FetchTarget(offset, 1 << 20)) for k in keys]


def sent(
    ctx: FetchContext, results: dict[tuple[str, int], tuple[int, int, int, int]]
) -> list[tuple[str, int]]:
    """Which partitions the response carries; ``results``: key -> (hw, log start, error, records)."""
    out = []
    for key, _ in ctx.partitions:
        hw, start, error, records = results.get(key, (10, 0, 0, 0))  # type: ignore[call-overload]
        if ctx.select(key, high_watermark=hw, log_start_offset=start, error=error, records=records):
            out.append(key)
    return out


def test_sessionless_full_fetch() -> None:
    cache = FetchSessionCache()
    ctx = cache.context(0, -1, parts(("a", 0), ("a", 1)))
    assert ctx.session_id == 0 and not ctx.error and len(cache) == 0
    assert sent(ctx, {}) == [("a", 0), ("a", 1)]
    assert sent(ctx, {}) == [("a", 0), ("a", 1)], "no session: always everything"


def test_full_fetch_opens_a_session_and_incremental_ones_carry_only_news() -> None:
    cache = FetchSessionCache(rng=__import__("random").Random(1))
    full = cache.context(0, 0, parts(("a", 0), ("a", 1), ("b", 0)))
    assert full.session_id != 0 and len(cache) == 1
    assert sent(full, {}) == [("a", 0), ("a", 1), ("b", 0)]
    sid = full.session_id

    # nothing changed: an incremental response carries no partition
    inc = cache.context(sid, 1, [])
    assert inc.incremental and inc.session_id == sid
    assert [k for k, _ in inc.partitions] == [("a", 0), ("a", 1), ("b", 0)], "every partition is read"
    assert sent(inc, {}) == []

    # records, a new high watermark, a new log start offset, an error: each is sent
    inc = cache.context(sid, 2, [])
    results = {("a", 0): (10, 0, 0, 5), ("a", 1): (11, 0, 0, 0), ("b", 0): (10, 3, 0, 0)}
    assert sent(inc, results) == [("a", 0), ("a", 1), ("b", 0)]
    inc = cache.context(sid, 3, [])
    assert [k for k, _ in inc.partitions] == [("a", 1), ("b", 0), ("a", 0)], (
        "a partition that returned records is read last next time (fairness under max_bytes)"
    )
    assert sent(inc, {("a", 1): (11, 0, 0, 0), ("b", 0): (10, 3, 0, 0)}) == []
    inc = cache.context(sid, 4, [])
    assert sent(inc, {("a", 1): (11, 0, 3, 0), ("b", 0): (10, 3, 0, 0)}) == [("a", 1)]
    inc = cache.context(sid, 5, [])
    assert sent(inc, {("a", 1): (11, 0, 0, 0), ("b", 0): (10, 3, 0, 0)}) == [("a", 1)], (
        "once the error is gone the partition is sent again"
    )


def test_incremental_updates_adds_and_forgets() -> None:
    cache = FetchSessionCache()
    sid = cache.context(0, 0, parts(("a", 0), ("a", 1))).session_id
    inc = cache.context(sid, 1, parts(("a", 1), ("c", 0), offset=7), forgotten=[("a", 0)])
    reads = dict(inc.partitions)
    assert set(reads) == {("a", 1), ("c", 0)}
    assert reads[("a", 1)].fetch_offset == 7 and reads[("c", 0)].fetch_offset == 7
    assert sent(inc, {}) == [("a", 1), ("c", 0)], "never answered (a full fetch not sent): sent"
    assert sent(cache.context(sid, 2, parts(("a", 1), offset=9)), {}) == [], "a new offset alone: not sent"
    session = cache.get(sid)
    assert session is not None and session.epoch == 3
    # forgetting the last partitions ends the session: a sessionless response
    inc = cache.context(sid, 3, [], forgotten=[("a", 1), ("c", 0)])
    assert inc.session_id == 0 and len(cache) == 0


def test_session_errors() -> None:
    cache = FetchSessionCache()
    assert cache.context(12345, 1, []).error == ErrorCode.fetch_session_id_not_found
    sid = cache.context(0, 0, parts(("a", 0))).session_id
    assert cache.context(sid, 2, []).error == ErrorCode.invalid_fetch_session_epoch
    assert cache.context(sid, 1, [], uses_topic_ids=True).error == ErrorCode.fetch_session_topic_id_error
    assert cache.context(sid, 1, []).incremental, "errors leave the session as it was"


def test_full_fetches_close_sessions() -> None:
    cache = FetchSessionCache()
    sid = cache.context(0, 0, parts(("a", 0))).session_id
    again = cache.context(sid, 0, parts(("a", 0)))
    assert again.session_id not in (0, sid) and cache.get(sid) is None, "(id, 0): closed and reopened"
    closed = cache.context(again.session_id, -1, parts(("a", 0)))
    assert closed.session_id == 0 and len(cache) == 0, "(id, -1): closed, no new session"


def test_epochs_wrap_to_one() -> None:
    assert next_epoch(0) == 1 and next_epoch(41) == 42
    assert next_epoch(0x7FFFFFFF) == 1
    assert next_epoch(-1) == -1


def test_cache_is_bounded_and_evicts_as_kafka() -> None:
    clock = Clock()
    cache = FetchSessionCache(max_slots=2, eviction_seconds=120, clock=clock)
    s1 = cache.context(0, 0, parts(("a", 0))).session_id
    s2 = cache.context(0, 0, parts(("a", 0), ("a", 1))).session_id
    assert len(cache) == 2
    # full and nothing evictable yet: the fetch is served without a session
    assert cache.context(0, 0, parts(("b", 0), ("b", 1), ("b", 2))).session_id == 0
    assert len(cache) == 2

    # once older than the eviction time, a smaller session gives way to a bigger one
    clock.now += 121
    cache.context(s1, 1, [])  # s1 is in use (not stale) but old
    cache.context(s2, 1, [])
    assert cache.context(0, 0, parts(("b", 0))).session_id == 0, "not bigger than any: no eviction"
    s3 = cache.context(0, 0, parts(("b", 0), ("b", 1), ("b", 2))).session_id
    assert s3 != 0 and cache.get(s1) is None and cache.get(s2) is not None, "the smallest went"
    assert cache.evictions == 1

    # a session unused for longer than the eviction time goes first, whatever its size
    clock.now += 60
    cache.context(s3, 1, [])
    clock.now += 61  # s2 unused for 121 s, s3 for 61 s
    s4 = cache.context(0, 0, parts(("c", 0))).session_id
    assert s4 != 0 and cache.get(s2) is None and cache.get(s3) is not None
