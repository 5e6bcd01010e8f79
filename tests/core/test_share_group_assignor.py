"""The share-group assignor: every subscribed partition to at least one subscriber, balanced,
one owner per partition while partitions suffice, sticky."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from jackalope.core.share.assignor import assign

TOPICS = ["a", "b", "c"]


def load(result: dict[str, frozenset[tuple[str, int]]]) -> dict[str, int]:
    return {m: len(ps) for m, ps in result.items()}


def owners(result: dict[str, frozenset[tuple[str, int]]]) -> dict[tuple[str, int], int]:
    count: dict[tuple[str, int], int] = {}
    for ps in result.values():
        for tp in ps:
            count[tp] = count.get(tp, 0) + 1
    return count


def test_one_member_gets_everything() -> None:
    assert assign({"m": frozenset({"a"})}, {"a": 3}) == {"m": frozenset({("a", 0), ("a", 1), ("a", 2)})}


def test_more_members_than_partitions_share_them() -> None:
    result = assign({m: frozenset({"a"}) for m in "wxyz"}, {"a": 2})
    assert all(len(ps) == 1 for ps in result.values())
    assert owners(result) == {("a", 0): 2, ("a", 1): 2}


def test_unknown_topic_and_empty_subscription() -> None:
    result = assign({"m": frozenset({"nope"}), "n": frozenset()}, {"a": 1})
    assert result == {"m": frozenset(), "n": frozenset()}


def test_sticky_when_a_member_joins() -> None:
    before = assign({"m1": frozenset({"a"}), "m2": frozenset({"a"})}, {"a": 6})
    after = assign({m: frozenset({"a"}) for m in ("m1", "m2", "m3")}, {"a": 6}, before)
    assert sorted(load(after).values()) == [2, 2, 2]
    for m in ("m1", "m2"):
        assert len(after[m] & before[m]) == 2  # kept two of their three


@settings(max_examples=150, deadline=None)
@given(
    members=st.integers(1, 8),
    partitions=st.lists(st.integers(0, 5), min_size=3, max_size=3),
    data=st.data(),
)
def test_every_partition_covered_and_subscribers_only(
    members: int, partitions: list[int], data: st.DataObject
) -> None:
    topics = dict(zip(TOPICS, partitions, strict=True))
    subs = {
        f"m{i}": frozenset(data.draw(st.sets(st.sampled_from(TOPICS), min_size=1), label=f"m{i}"))
        for i in range(members)
    }
    result = assign(subs, topics)
    assert set(result) == set(subs)
    subscribed = {(t, p) for s in subs.values() for t in s for p in range(topics[t])}
    assert set(owners(result)) == subscribed  # each at least once, nothing else
    for m, ps in result.items():
        assert all(t in subs[m] for t, _ in ps)
        # a member with something to take gets something
        assert ps or not any(topics[t] for t in subs[m])


@settings(max_examples=150, deadline=None)
@given(members=st.integers(1, 10), partitions=st.integers(1, 12), sticky_seed=st.integers(1, 9))
def test_homogeneous_is_balanced(members: int, partitions: int, sticky_seed: int) -> None:
    subs = {f"m{i}": frozenset({"a"}) for i in range(members)}
    # a previous assignment of an other member count, for stickiness
    previous = assign({f"m{i}": frozenset({"a"}) for i in range(sticky_seed)}, {"a": partitions})
    result = assign(subs, {"a": partitions}, previous)
    loads = load(result).values()
    assert max(loads) - min(loads) <= 1
    counts = owners(result)
    if partitions >= members:
        assert set(counts.values()) == {1}  # one owner each
    else:
        assert set(load(result).values()) == {1}
        assert max(counts.values()) - min(counts.values()) <= 1
