"""Transactions survive SIGKILL of the broker: a real ``jackalope serve`` is killed several
times in the middle of transactions; after each restart every committed transaction is visible
exactly once to read_committed consumers, no aborted record ever is, and the transactions the
kill left open are aborted (by the producer's next InitProducerId, or by their timeout).

Read-committed reads (Fetch isolation_level=1) are the Fetch handler's: these tests need it.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from tests.kafka.conftest import create_topic, kafka_address, unique
from tests.kafka.test_transactions import (
    READ_COMMITTED,
    READ_UNCOMMITTED,
    read_to_end,
    transactional_producer,
)

SERVE_ARGS = ("--kafka-transaction-abort-interval-ms", "200")
ROUNDS = 3


def test_sigkill_in_the_middle_of_transactions(serve_kafka: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    topic, tid = unique("crash"), unique("tx")
    committed: list[bytes] = []
    never: list[bytes] = []  # aborted, or open at the kill: never visible
    racing: list[list[bytes]] = []  # committing while killed: all or nothing
    keep: list[Any] = []  # producers of killed brokers, destroyed at the end
    for round_ in range(ROUNDS):
        served = serve_kafka(*SERVE_ARGS, data_dir=data)
        bootstrap = kafka_address(served)
        if round_ == 0:
            create_topic(bootstrap, topic, partitions=2)
        producer = transactional_producer(bootstrap, tid)
        keep.append(producer)
        producer.init_transactions(15)  # aborts what the killed broker left open
        if round_:
            check(bootstrap, topic, committed, never, racing)
        for t in range(3):
            values = [b"r%d-t%d-%d" % (round_, t, i) for i in range(6)]
            producer.begin_transaction()
            for i, v in enumerate(values):
                producer.produce(topic, key=b"%d" % i, value=v)
            producer.commit_transaction(15)
            committed += values
        aborted = [b"r%d-aborted-%d" % (round_, i) for i in range(4)]
        producer.begin_transaction()
        for i, v in enumerate(aborted):
            producer.produce(topic, key=b"%d" % i, value=v)
        producer.flush(15)
        producer.abort_transaction(15)
        never += aborted
        last = [b"r%d-last-%d" % (round_, i) for i in range(4)]
        producer.begin_transaction()
        for i, v in enumerate(last):
            producer.produce(topic, key=b"%d" % i, value=v)
        producer.flush(15)  # in the log, the transaction open
        if round_ == 1:  # kill while the commit is under way
            threading.Thread(target=_try_commit, args=(producer,), daemon=True).start()
            racing.append(last)
        else:
            never += last
        if round_ == ROUNDS - 1:  # another producer's transaction, left open for good
            orphan = transactional_producer(
                bootstrap, unique("orphan"), **{"transaction.timeout.ms": 3000, "message.timeout.ms": 3000}
            )
            keep.append(orphan)
            orphan.init_transactions(15)
            orphan.begin_transaction()
            orphaned = [b"orphan-%d" % i for i in range(3)]
            for v in orphaned:
                orphan.produce(topic, value=v)
            orphan.flush(15)
            never += orphaned
        served.kill9()

    served = serve_kafka(*SERVE_ARGS, data_dir=data)
    bootstrap = kafka_address(served)
    producer = transactional_producer(bootstrap, tid)
    keep.append(producer)
    producer.init_transactions(15)
    # the orphan is aborted by its timeout: read_to_end reaches the end only once it is
    check(bootstrap, topic, committed, never, racing)
    # the aborted and open records are in the log all the same
    everything = set(read_to_end(bootstrap, topic, READ_UNCOMMITTED))
    assert set(never) <= everything
    for p in keep:
        p.purge()


def check(
    bootstrap: str, topic: str, committed: list[bytes], never: list[bytes], racing: list[list[bytes]]
) -> None:
    """Every committed record visible exactly once, no aborted or open one, and each
    transaction whose commit raced the kill all or nothing."""
    seen = Counter(read_to_end(bootstrap, topic, READ_COMMITTED, timeout=20))
    assert all(n == 1 for n in seen.values()), [v for v, n in seen.items() if n > 1]
    for v in committed:
        assert seen[v] == 1, f"committed {v!r} lost"
    assert not set(never) & set(seen), sorted(set(never) & set(seen))
    for group in racing:
        assert len({seen[v] for v in group}) == 1, f"a transaction half visible: {group}"
    assert set(seen) <= set(committed) | {v for g in racing for v in g}


def _try_commit(producer: Any) -> None:
    # the broker is killed under it: the outcome is checked after the restart
    with contextlib.suppress(Exception):
        producer.commit_transaction(3)
