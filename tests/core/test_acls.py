"""core/acls.py: Kafka's ACL rule (StandardAuthorizer) and filters (AclBindingFilter), and the
bindings kept in acls.json."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jackalope.core.acls import (
    AclBinding,
    AclFilter,
    Acls,
    InvalidAcl,
    Operation,
    PatternType,
    Permission,
    ResourceType,
)

T, G = ResourceType.TOPIC, ResourceType.GROUP
LIT, PRE = PatternType.LITERAL, PatternType.PREFIXED


def binding(
    name: str,
    operation: Operation = Operation.READ,
    permission: Permission = Permission.ALLOW,
    principal: str = "User:alice",
    pattern: PatternType = LIT,
    host: str = "*",
    rtype: ResourceType = T,
) -> AclBinding:
    return AclBinding.make(rtype, name, pattern, principal, host, operation, permission)


def decide(
    acls: Acls, operation: Operation, name: str, principal: str = "User:alice", host: str = "h"
) -> Permission | None:
    return acls.decide(principal, host, operation, T, name).permission


def test_deny_wins_and_allow_implies_describe_but_deny_does_not() -> None:
    acls = Acls()
    acls.create(
        [binding("orders", Operation.WRITE), binding("or", Operation.READ, Permission.DENY, pattern=PRE)]
    )
    assert decide(acls, Operation.WRITE, "orders") == Permission.ALLOW
    assert decide(acls, Operation.DESCRIBE, "orders") == Permission.ALLOW  # Write implies Describe
    assert decide(acls, Operation.READ, "orders") == Permission.DENY
    assert decide(acls, Operation.READ, "other") is None
    acls.create([binding("orders", Operation.WRITE, Permission.DENY, principal="User:*")])
    assert decide(acls, Operation.WRITE, "orders") == Permission.DENY


def test_wildcards_hosts_and_alter_configs() -> None:
    acls = Acls()
    acls.create(
        [
            binding("*", Operation.ALTER_CONFIGS, principal="User:*"),
            binding("t", Operation.ALL, host="10.0.0.1", principal="User:bob"),
        ]
    )
    assert decide(acls, Operation.DESCRIBE_CONFIGS, "any") == Permission.ALLOW
    assert decide(acls, Operation.DESCRIBE, "any") is None
    assert decide(acls, Operation.DELETE, "t", "User:bob", "10.0.0.1") == Permission.ALLOW
    assert decide(acls, Operation.DELETE, "t", "User:bob", "10.0.0.2") is None
    decision = acls.decide("User:carol", "h", Operation.READ, T, "t")
    assert decision.permission is None and decision.resource_has_acls


@pytest.mark.parametrize(
    "args",
    [
        (ResourceType.ANY, "t", LIT, "User:a", "*", Operation.READ, Permission.ALLOW),
        (T, "t", PatternType.MATCH, "User:a", "*", Operation.READ, Permission.ALLOW),
        (T, "t", LIT, "User:a", "*", Operation.ANY, Permission.ALLOW),
        (T, "t", LIT, "User:a", "*", Operation.READ, Permission.ANY),
        (T, "", LIT, "User:a", "*", Operation.READ, Permission.ALLOW),
        (T, "t", LIT, "alice", "*", Operation.READ, Permission.ALLOW),
        (ResourceType.CLUSTER, "c", LIT, "User:a", "*", Operation.ALTER, Permission.ALLOW),
        (ResourceType.DELEGATION_TOKEN, "t", LIT, "User:a", "*", Operation.DESCRIBE, Permission.ALLOW),
        (ResourceType.USER, "User:b", LIT, "User:a", "*", Operation.CREATE_TOKENS, Permission.ALLOW),
        (42, "t", LIT, "User:a", "*", Operation.READ, Permission.ALLOW),
    ],
)
def test_invalid_bindings(args: tuple[int, str, int, str, str, int, int]) -> None:
    with pytest.raises(InvalidAcl):
        AclBinding.make(*args)


def test_filters_as_kafka_matches_them() -> None:
    literal, prefixed, wildcard = binding("foobar"), binding("foo", pattern=PRE), binding("*")
    group = binding("foobar", rtype=G)

    def matching(rtype: ResourceType, name: str | None, pattern: PatternType) -> set[AclBinding]:
        f = AclFilter.make(rtype, name, pattern, None, None, Operation.ANY, Permission.ANY)
        return {b for b in (literal, prefixed, wildcard, group) if f.matches(b)}

    assert matching(T, "foobar", PatternType.MATCH) == {literal, prefixed, wildcard}
    assert matching(T, "foobar", PatternType.ANY) == {literal}
    assert matching(T, "foo", PatternType.PREFIXED) == {prefixed}
    assert matching(T, None, PatternType.LITERAL) == {literal, wildcard}
    assert matching(ResourceType.ANY, None, PatternType.ANY) == {literal, prefixed, wildcard, group}
    with pytest.raises(InvalidAcl):
        AclFilter.make(ResourceType.UNKNOWN, None, PatternType.ANY, None, None, Operation.ANY, Permission.ANY)


def test_bindings_are_kept_across_a_restart(tmp_path: Path) -> None:
    acls = Acls(tmp_path)
    kept = [binding("a"), binding("b", Operation.WRITE, Permission.DENY, pattern=PRE, host="1.2.3.4")]
    acls.create(kept + kept)
    again = Acls(tmp_path)
    again.load()
    assert again.bindings == kept
    removed = again.delete([AclFilter.make(T, "a", LIT, None, None, Operation.ANY, Permission.ANY)])
    assert removed == [[kept[0]]]
    third = Acls(tmp_path)
    third.load()
    assert third.bindings == [kept[1]]


@given(name=st.text(min_size=1, max_size=8), resource=st.text(min_size=1, max_size=8))
def test_a_prefixed_binding_covers_exactly_the_names_it_starts(name: str, resource: str) -> None:
    acls = Acls()
    acls.create([binding(name, pattern=PRE)])
    expected = Permission.ALLOW if resource.startswith(name) else None
    assert decide(acls, Operation.READ, resource) == expected
