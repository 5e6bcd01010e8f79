"""Policies in the core: validation, which policy applies, and how a queue's arguments, its
policy and its operator policy resolve (RabbitMQ's rules), applied live to a vhost's queues."""

from __future__ import annotations

from pathlib import Path

import pytest

from jackalope.core.errors import InvalidArgument
from jackalope.core.message import Message
from jackalope.core.policies import choose, effective_arguments, make_policy
from jackalope.core.vhost import VirtualHost
from jackalope.storage import LogManager


def test_the_highest_priority_matching_policy_applies() -> None:
    low = make_policy("low", {"pattern": "^orders", "definition": {"max-length": 5}, "priority": 1})
    high = make_policy(
        "high", {"pattern": "orders", "definition": {"max-length": 9}, "priority": 7, "apply-to": "queues"}
    )
    exchanges = make_policy(
        "ex", {"pattern": ".*", "definition": {"alternate-exchange": "ae"}, "apply-to": "exchanges"}
    )
    policies = [low, high, exchanges]
    assert choose(policies, "orders.eu", "classic") is high
    assert choose(policies, "my-orders", "quorum") is high
    assert choose(policies, "payments", "classic") is None
    assert choose(policies, "orders", "exchange") is low  # "all" by default, and a higher priority
    assert choose(policies, "payments", "exchange") is exchanges


def test_apply_to_a_queue_type() -> None:
    quorum = make_policy(
        "q", {"pattern": ".", "definition": {"delivery-limit": 3}, "apply-to": "quorum_queues"}
    )
    assert choose([quorum], "a", "quorum") is quorum
    assert choose([quorum], "a", "classic") is None


def test_limits_resolve_to_the_lowest_and_the_rest_to_the_argument() -> None:
    policy = make_policy(
        "p",
        {"pattern": ".", "definition": {"max-length": 10, "message-ttl": 500, "dead-letter-exchange": "pol"}},
    )
    operator = make_policy(
        "op", {"pattern": ".", "definition": {"max-length": 3}, "apply-to": "queues"}, operator=True
    )
    arguments = {"x-max-length": 7, "x-message-ttl": 60_000, "x-dead-letter-exchange": "arg"}
    assert effective_arguments(arguments, policy, operator) == {
        "x-max-length": 3,  # the operator's cap
        "x-message-ttl": 500,  # the policy's, lower than the argument
        "x-dead-letter-exchange": "arg",  # the argument wins
    }
    assert effective_arguments({}, policy, None)["x-dead-letter-exchange"] == "pol"


def test_an_unlimited_delivery_limit_is_the_highest() -> None:
    policy = make_policy("p", {"pattern": ".", "definition": {"delivery-limit": 5}})
    assert effective_arguments({"x-delivery-limit": -1}, policy, None)["x-delivery-limit"] == 5


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"pattern": ".", "definition": {"ha-mode": "all"}}, "mirrored"),
        ({"pattern": ".", "definition": {"max-priority": 5}}, "fixed when it is declared"),
        ({"pattern": ".", "definition": {"bogus": 1}}, "['bogus'] are not recognised policy settings"),
        ({"pattern": ".", "definition": {"max-length": -1}}, "not a valid value for max-length"),
        ({"pattern": ".", "definition": {"overflow": "sideways"}}, "not a valid value for overflow"),
        ({"pattern": "(", "definition": {"max-length": 1}}, "is not a valid regex"),
        ({"pattern": ".", "definition": {}}, "definition must be a non-empty object"),
        ({"pattern": ".", "definition": {"max-length": 1}, "apply-to": "everything"}, "apply-to"),
        (
            {"pattern": ".", "definition": {"max-length": 1}, "apply-to": "streams"},
            "streams are not supported",
        ),
    ],
)
def test_bad_policies_are_refused(body: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        make_policy("p", body)
    assert str(err.value).startswith("Validation failed") and reason in str(err.value)


def test_operator_policies_take_only_limits() -> None:
    with pytest.raises(InvalidArgument, match="not recognised"):
        make_policy(
            "op",
            {"pattern": ".", "definition": {"dead-letter-exchange": "x"}, "apply-to": "queues"},
            operator=True,
        )


def test_policies_apply_live_to_existing_and_new_queues(tmp_path: Path) -> None:
    vhost = VirtualHost("/", LogManager(tmp_path))
    owner = object()
    old = vhost.declare_queue("jobs.old", owner=owner)
    for i in range(5):
        old.enqueue(Message("", "jobs.old", b"", b"%d" % i, False))
    vhost.set_policy("cap", {"pattern": "^jobs", "definition": {"max-length": 2}, "apply-to": "queues"})
    assert old.message_count == 2  # drop-head: the oldest went
    new = vhost.declare_queue("jobs.new", owner=owner)
    assert new.max_length == 2
    vhost.delete_policy("cap")
    assert old.max_length is None and new.max_length is None
