"""Producer ids for Kafka's idempotent producer, unique across restarts of the broker.

Ids are handed out from blocks; a block is reserved in a file (written, fsynced, renamed)
before its first id is used, so a crash can skip ids but never hand one out twice.  A reused
id would make the storage engine judge a new producer's first batch against an old
producer's sequence numbers.
"""

from __future__ import annotations

from pathlib import Path

from jackalope.storage.files import write_int


class ProducerIds:
    BLOCK = 1000

    def __init__(self, path: Path | None) -> None:
        self._path = path
        start = 0
        if path is not None and path.exists():
            start = int(path.read_text())  # a damaged file is an error, not a restart from 0
        self._next = start
        self._reserved = start

    def allocate(self) -> int:
        pid = self._next
        if pid >= self._reserved:
            self._reserve(pid + self.BLOCK)
        self._next += 1
        return pid

    def _reserve(self, upto: int) -> None:
        if self._path is not None:
            write_int(self._path, upto)
        self._reserved = upto
