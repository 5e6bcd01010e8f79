"""A write the file system refuses (EFBIG, as a full disk refuses with ENOSPC) fails that
produce with KAFKA_STORAGE_ERROR, loses nothing acknowledged, and the broker keeps serving."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import URL
from tests.kafka import wire
from tests.kafka.conftest import consume_confluent, unique

KAFKA_STORAGE_ERROR = 56
LIMIT = 256 * 1024  # bytes any one file of the broker may grow to


def limited() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a refused write is EFBIG, not a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def produce(bs: str, topic: str, values: list[bytes]) -> tuple[int, int]:
    _, parts = wire.parse_produce_v3(
        wire.roundtrip(bs, wire.produce_v3(topic, 0, wire.record_batch(values), 5))
    )
    _, _, error, base = parts[0]
    return error, base


def test_a_refused_write_is_a_storage_error(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "jackalope", "serve", "--data-dir", str(tmp_path / "data")]
    cmd += ["--http-port", "0", "--amqp-port", "-1", "--kafka-port", "0"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=limited
    )
    try:
        assert proc.stdout is not None
        bs = ""
        for line in proc.stdout:
            m = URL.search(line)
            if m and m.group(1) == "kafka":
                bs = m.group(2).split("://", 1)[1]
                break
        assert bs, "no kafka listener"
        topic = unique("full")
        kept = [b"a" * 1000 for _ in range(100)]
        assert produce(bs, topic, kept) == (wire.NO_ERROR, 0)
        # this batch would take the segment file past the limit
        error, _ = produce(bs, topic, [b"b" * 1000 for _ in range(200)])
        assert error == KAFKA_STORAGE_ERROR
        # what was acknowledged is all there; other topics (and this one, within the limit) work
        assert [m.value() for m in consume_confluent(bs, topic, 100)] == kept
        other = unique("other")
        assert produce(bs, other, [b"c"]) == (wire.NO_ERROR, 0)
        assert produce(bs, topic, [b"d"]) == (wire.NO_ERROR, 100)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
