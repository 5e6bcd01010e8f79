"""examples/kafka_patterns.py runs against the broker and shows what it says it shows."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kafka_patterns.py"


@pytest.fixture(scope="module")
def broker() -> Iterator[Any]:
    from jackalope import Broker

    # a short initial rebalance delay: the example's two consumer groups get assignments sooner
    b = Broker(kafka_port=0, kafka_group_initial_delay_ms=200).start()
    try:
        yield b
    finally:
        b.stop()


def parse(out: str) -> dict[str, dict[str, list[str]]]:
    """``pattern:`` lines, each followed by ``  who   ['message', ...]`` lines."""
    patterns: dict[str, dict[str, list[str]]] = {}
    for line in out.splitlines():
        if not line.startswith(" "):
            current = patterns.setdefault(line.rstrip(":"), {})
        else:
            who, _, messages = line.strip().partition(" [")
            current[who.strip()] = ast.literal_eval("[" + messages)
    return patterns


def test_patterns_example(broker: Any) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), broker.kafka_bootstrap, broker.amqp_url],
        capture_output=True,
        text=True,
        timeout=40,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    got = parse(result.stdout)
    assert list(got) == [
        "publish_subscribe",
        "competing_consumers",
        "replay",
        "keyed_ordering",
        "one_log_two_protocols",
    ]

    # every group receives every record
    orders = ["order 1 placed", "order 2 placed", "order 3 placed"]
    assert got["publish_subscribe"] == {"billing": orders, "shipping": orders}

    # one group: each worker owns one partition and gets exactly that partition's records
    workers = got["competing_consumers"]
    assert sorted(who.split()[0] for who in workers) == ["worker-1", "worker-2"]
    by_partition = {who.split()[1]: messages for who, messages in workers.items()}
    assert by_partition == {
        "p0": ["resize image of bob", "resize image of dave"],
        "p1": ["resize image of alice", "resize image of carol"],
    }

    # the log keeps what was read: the same records again, from an offset or from a time
    assert got["replay"] == {
        "first read": ["click 1", "click 2", "click 3"],
        "from offset 0": ["click 1", "click 2", "click 3"],
        "from time +1s": ["click 2", "click 3"],
    }

    # each key in one partition, in the order produced; both partitions used
    partitions = got["keyed_ordering"]
    assert sorted(partitions) == ["partition 0", "partition 1"] and all(partitions.values())
    for user in ("alice", "bob", "carol"):
        holding = [events for events in partitions.values() if any(e.startswith(user) for e in events)]
        assert len(holding) == 1, f"{user} is in more than one partition: {partitions}"
        assert [e for e in holding[0] if e.startswith(user)] == [f"{user}:1", f"{user}:2", f"{user}:3"]

    # one log: Kafka reads what AMQP published, AMQP reads both
    assert got["one_log_two_protocols"] == {
        "kafka-consumer": ["from amqp 1", "from amqp 2"],
        "amqp-consumer": ["from amqp 1", "from amqp 2", "from kafka 1"],
    }


def test_exactly_once_example(broker: Any) -> None:
    example = EXAMPLE.with_name("kafka_exactly_once.py")
    result = subprocess.run(
        [sys.executable, str(example), broker.kafka_bootstrap], capture_output=True, text=True, timeout=40
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        "transaction 1: ['order-0', 'order-1'] committed",
        "transaction 2: ['order-2', 'order-3'] aborted",
        "transaction 3: ['order-2', 'order-3'] committed",
        "transaction 4: ['order-4', 'order-5'] committed",
    ]
    # read_committed: each order's invoice once, none of the aborted transaction's
    assert lines[4] == "invoices: " + str([f"order-{i}" for i in range(6)])


SHARE_EXAMPLE = EXAMPLE.parent / "kafka_share_group.py"


def test_share_group_example(broker: Any) -> None:
    """Two workers of one share group split one partition's jobs: each job finished once, the
    one given back finished on its second delivery, the poison one rejected, the log intact."""
    result = subprocess.run(
        [sys.executable, str(SHARE_EXAMPLE), broker.kafka_bootstrap],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    got = {}
    for line in result.stdout.splitlines():
        who, _, value = line.partition(": ")
        got[who] = ast.literal_eval(value)
    jobs = [f"job {i}" for i in range(1, 11)]
    finished = got["worker-1"] + got["worker-2"]
    assert sorted(finished) == sorted(j for j in jobs if j != "job 7")  # each once, poison aside
    assert got["given back"] == ["job 3"]
    assert list(got["finished later"]) == ["job 3"]
    assert got["finished later"]["job 3"].endswith("(delivery 2)")
    assert got["rejected"] == ["job 7"]
    assert got["log"] == jobs  # the share group's acknowledgements delete nothing from the log
