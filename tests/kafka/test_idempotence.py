"""The idempotent producer at the wire: retried batches are not written twice, gaps and
fenced epochs are refused, and the producer state survives a SIGKILL of the broker."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

from tests.kafka import wire
from tests.kafka.conftest import ServeProcess, kafka_address, unique

OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47
PRODUCER_ID = 4242


def produce(bs: str, topic: str, batch: bytes) -> tuple[int, int]:
    _, parts = wire.parse_produce_v3(wire.roundtrip(bs, wire.produce_v3(topic, 0, batch, 9)))
    _, _, error, base = parts[0]
    return error, base


def batch(values: list[bytes], epoch: int, sequence: int) -> bytes:
    return wire.record_batch(values, producer=(PRODUCER_ID, epoch, sequence))


def test_sequences_epochs_and_retries(serve_kafka: Callable[..., ServeProcess], tmp_path: Path) -> None:
    data = tmp_path / "data"
    served = serve_kafka(data_dir=data)
    bs = kafka_address(served)
    topic = unique("idempotent")
    first = batch([b"a", b"b"], epoch=0, sequence=0)
    assert produce(bs, topic, first) == (wire.NO_ERROR, 0)
    assert produce(bs, topic, batch([b"c"], epoch=0, sequence=2)) == (wire.NO_ERROR, 2)
    # a retry of an acknowledged batch: its original offsets, nothing written
    assert produce(bs, topic, first) == (wire.NO_ERROR, 0)
    # a gap in the sequence, and a batch of a fenced (older) epoch after a newer one
    assert produce(bs, topic, batch([b"x"], epoch=0, sequence=7))[0] == OUT_OF_ORDER_SEQUENCE_NUMBER
    assert produce(bs, topic, batch([b"d"], epoch=1, sequence=0)) == (wire.NO_ERROR, 3)
    assert produce(bs, topic, batch([b"y"], epoch=0, sequence=3))[0] == INVALID_PRODUCER_EPOCH

    # the producer state is rebuilt after a crash: the retry is still recognised
    served.proc.send_signal(signal.SIGKILL)
    served.proc.wait()
    bs = kafka_address(serve_kafka(data_dir=data))
    assert produce(bs, topic, batch([b"d"], epoch=1, sequence=0)) == (wire.NO_ERROR, 3)
    assert produce(bs, topic, batch([b"e"], epoch=1, sequence=1)) == (wire.NO_ERROR, 4)
