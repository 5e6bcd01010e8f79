"""One segment of a log: ``<base offset>.log`` plus its ``.index``, ``.timeindex``, ``.acks``
and ``.txnindex`` (aborted transactions, see :mod:`transactions`).

The log file is an append-only run of record batches (see :mod:`records`).  Appends are
collected in a small user-space buffer and written with one ``write`` per flush, so a burst
of single-record appends costs one system call, not one each.  Reads flush first, so a
reader never sees bytes the OS does not have.  A segment is not thread-safe; the only thing
done to it off the owning thread is ``fdatasync``, of descriptors duplicated for the purpose.

``.acks`` exists only for logs whose records are settled one by one (queues): an append-only
run of ``(start, end)`` pairs of big-endian u64, each settling the offsets ``start..end-1`` of
this segment, or, with ``DELIVERED_FLAG`` set in ``start``, marking them delivered.  It goes
when the segment goes; a torn last pair is ignored.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from jackalope.storage.errors import CorruptRecordError, StorageError
from jackalope.storage.index import OffsetIndex, TimeIndex
from jackalope.storage.records import (
    HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC,
    BatchHeader,
    parse_header,
    validate_batch,
)
from jackalope.storage.transactions import TXN_INDEX_SUFFIX, TxnIndex

log = logging.getLogger(__name__)

ACK_RANGE: Final = struct.Struct(">QQ")
DELIVERED_FLAG: Final = 1 << 63
WRITE_BUFFER_BYTES: Final = 64 * 1024
_SCAN_BLOCK: Final = 64 * 1024
_VERIFY_BLOCK: Final = 1024 * 1024
MAX_RELATIVE_OFFSET: Final = (1 << 31) - 1  # offsets of a segment stay within this of its base


def segment_name(base_offset: int) -> str:
    return f"{base_offset:020d}"


class Segment:
    def __init__(self, directory: Path, base_offset: int, index_interval_bytes: int) -> None:
        stem = directory / segment_name(base_offset)
        self.base_offset = base_offset
        self.path = stem.with_suffix(".log")
        self.acks_path = stem.with_suffix(".acks")
        self.index = OffsetIndex(stem.with_suffix(".index"), base_offset)
        self.time_index = TimeIndex(stem.with_suffix(".timeindex"), base_offset)
        self.txn_index = TxnIndex(stem.with_suffix(TXN_INDEX_SUFFIX))
        self.index_interval_bytes = index_interval_bytes
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        self.size = 0  # bytes including the unflushed buffer
        self.flushed_size = 0
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.created_ms = int(time.time() * 1000)
        self.needs_sync = False
        self.acks_fd = -1
        self.acks_need_sync = False
        self._pending = bytearray()
        self._bytes_since_index = 0
        self._last_read: tuple[int, int] = (-1, -1)  # (offset, position) of a batch start

    # -- writing -------------------------------------------------------------------------------

    def append(
        self, batch: bytes | bytearray | memoryview, base_offset: int, next_offset: int, max_ts: int
    ) -> int:
        """Buffer one batch (already validated, offsets assigned); return its position."""
        position = self.size
        if self._bytes_since_index >= self.index_interval_bytes:
            self.index.append(base_offset, position)
            self.time_index.append(max(max_ts, self.max_timestamp), next_offset - 1)
            self._bytes_since_index = 0
        n = len(batch)
        self._pending += batch
        self.size += n
        self._bytes_since_index += n
        self.next_offset = next_offset
        if max_ts > self.max_timestamp:
            self.max_timestamp = max_ts
        if len(self._pending) >= WRITE_BUFFER_BYTES:
            self.flush()
        return position

    def flush(self) -> None:
        """Hand the buffered bytes to the OS.  On failure the unflushed tail is dropped."""
        if not self._pending:
            return
        view = memoryview(self._pending)
        written = 0
        try:
            while written < len(view):
                written += os.pwrite(self.fd, view[written:], self.flushed_size + written)
        except OSError as exc:
            view.release()
            self._drop_unflushed()
            raise StorageError(f"write to {self.path} failed: {exc.strerror or exc}") from exc
        view.release()
        self.flushed_size += written
        self._pending.clear()
        self.needs_sync = True
        self.index.flush()
        self.time_index.flush()

    def _drop_unflushed(self) -> None:
        self._pending.clear()
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, self.flushed_size)
        self._reindex()

    def write_acks(self, ranges: bytes) -> None:
        """Append encoded ``ACK_RANGE`` pairs to ``.acks`` (to the OS, not yet synced)."""
        if self.acks_fd < 0:
            self.acks_fd = os.open(self.acks_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        view = memoryview(ranges)
        try:
            while view:
                view = view[os.write(self.acks_fd, view) :]
        except OSError as exc:
            raise StorageError(f"write to {self.acks_path} failed: {exc.strerror or exc}") from exc
        self.acks_need_sync = True

    def read_acks(self) -> list[tuple[int, int]]:
        """The settled ranges ``.acks`` holds (a torn last pair ignored)."""
        try:
            data = self.acks_path.read_bytes()
        except FileNotFoundError:
            return []
        usable = len(data) - len(data) % ACK_RANGE.size
        return [ACK_RANGE.unpack_from(data, p) for p in range(0, usable, ACK_RANGE.size)]

    # -- reading -------------------------------------------------------------------------------

    def pread(self, position: int, size: int) -> bytes:
        if self._pending and position + size > self.flushed_size:
            self.flush()
        return os.pread(self.fd, size, position)

    def headers_from(self, position: int) -> Iterator[tuple[int, BatchHeader]]:
        """Yield ``(position, header)`` of each batch from ``position`` to the end."""
        end = self.size
        while position < end:
            block = self.pread(position, min(_SCAN_BLOCK, end - position))
            p = 0
            while len(block) - p >= HEADER_SIZE:
                header = parse_header(block, p)
                if header.batch_length < HEADER_SIZE - LOG_OVERHEAD:  # would never advance
                    raise CorruptRecordError(f"bad batch length at {self.path}:{position + p}")
                yield position + p, header
                p += header.size
            if p == 0:
                raise CorruptRecordError(f"short read at {self.path}:{position}")
            position += p

    def find(self, offset: int) -> tuple[int, BatchHeader] | None:
        """The first batch that holds ``offset`` or starts after it."""
        last_offset, last_pos = self._last_read
        start = last_pos if 0 <= last_offset <= offset else self.index.lookup(offset)
        for pos, header in self.headers_from(start):
            if header.next_offset > offset:
                return pos, header
        return None

    def read(self, offset: int, max_bytes: int) -> tuple[bytes, int]:
        """Whole batches from the one holding ``offset``: at least one, then up to ``max_bytes``.

        Returns the bytes and the offset that follows them.
        """
        found = self.locate(offset, max_bytes)
        if found is None:
            return b"", self.next_offset
        start, length, next_offset = found
        return self.pread(start, length), next_offset

    def locate(self, offset: int, max_bytes: int) -> tuple[int, int, int] | None:
        """Where :meth:`read` would read: ``(file position, length, next offset)``, or None.

        The range is written to the file (flushed) when this returns.
        """
        found = self.find(offset)
        if found is None:
            return None
        start, first = found
        length = first.size
        next_offset = first.next_offset
        if length < max_bytes:
            for pos, header in self.headers_from(start + length):
                if length + header.size > max_bytes:
                    break
                length = pos + header.size - start
                next_offset = header.next_offset
        if self._pending and start + length > self.flushed_size:
            self.flush()
        self._last_read = (next_offset, start + length) if start + length < self.size else (-1, -1)
        return start, length, next_offset

    def offset_for_time(self, timestamp: int) -> int | None:
        """Base offset of the first batch whose max timestamp is >= ``timestamp``."""
        start = self.index.lookup(self.time_index.lookup(timestamp))
        for _, header in self.headers_from(start):
            if header.max_timestamp >= timestamp:
                return header.base_offset
        return None

    # -- recovery ------------------------------------------------------------------------------

    def recover(self, verify: bool) -> int:
        """Rebuild state from the file; with ``verify`` check every CRC.

        Truncates a torn or garbage tail and returns how many bytes were cut.  Without
        ``verify`` it trusts the indexes if they load and the last batch ends at end of file,
        and falls back to a verifying scan otherwise.
        """
        file_size = os.fstat(self.fd).st_size
        self.size = self.flushed_size = file_size
        if not verify and self._recover_from_indexes(file_size):
            return 0
        valid_end = self._verify_scan(file_size)
        if valid_end < file_size:
            log.warning(
                "truncating %d bytes of invalid data at the end of %s", file_size - valid_end, self.path
            )
            os.ftruncate(self.fd, valid_end)
            self.size = self.flushed_size = valid_end
        self.index.rewrite()
        self.time_index.rewrite()
        return file_size - valid_end

    def _recover_from_indexes(self, file_size: int) -> bool:
        if not self.index.load(file_size):
            return False
        position = self.index.lookup(1 << 62)
        self.max_timestamp = -1
        # Offsets are sparse once a segment was compacted.  ``expected``: the least offset the
        # next batch may start at (``exact``: it must, being the batch the last index entry names).
        expected = self.index.keys[-1] if len(self.index) else self.base_offset
        exact = bool(len(self.index))
        try:
            for pos, header in self.headers_from(position):
                if (
                    header.magic != MAGIC
                    or pos + header.size > file_size
                    or header.base_offset < expected
                    or (exact and header.base_offset != expected)
                    or header.last_offset - self.base_offset > MAX_RELATIVE_OFFSET
                ):
                    return False  # not the batch the index promised: the index is wrong
                expected = header.next_offset
                exact = False
                self._note_batch(header)
                position = pos + header.size
        except CorruptRecordError:
            return False
        if position != file_size:
            return False
        if not self.time_index.load(self.next_offset):
            return False
        if len(self.time_index):
            self.max_timestamp = max(self.max_timestamp, self.time_index.keys[-1])
        self._bytes_since_index = file_size - (self.index.values[-1] if len(self.index) else 0)
        self._set_created()
        return True

    def _verify_scan(self, file_size: int) -> int:
        """Validate batches from the start; return the end of the last valid one."""
        self.index.clear()
        self.time_index.clear()
        self.max_timestamp = -1
        self.next_offset = self.base_offset
        self._bytes_since_index = 0
        position = 0
        while file_size - position >= HEADER_SIZE:
            block = os.pread(self.fd, min(_VERIFY_BLOCK, file_size - position), position)
            p = 0
            while len(block) - p >= HEADER_SIZE:
                header = parse_header(block, p)
                if header.magic != MAGIC or header.batch_length < HEADER_SIZE - LOG_OVERHEAD:
                    return position + p
                if p + header.size > len(block):
                    break  # continues past this block
                if not self._accept(block, p, header, position + p):
                    return position + p
                p += header.size
            if p == 0:  # one batch larger than the block
                header = parse_header(block, 0)
                if position + header.size > file_size:
                    return position
                block = os.pread(self.fd, header.size, position)
                if not self._accept(block, 0, header, position):
                    return position
                p = header.size
            position += p
        self._set_created()
        return position

    def _accept(self, block: bytes, p: int, header: BatchHeader, position: int) -> bool:
        try:
            validate_batch(block, p)
        except CorruptRecordError:
            return False
        if (
            header.base_offset < self.next_offset
            or header.last_offset - self.base_offset > MAX_RELATIVE_OFFSET
        ):
            # Each batch starts after the previous one ends (densely, unless compaction removed
            # batches) and within 2**31 of the segment's base.  The CRC does not cover the base
            # offset: this is what catches a damaged one (one moved backwards or far ahead).
            return False
        self._index_batch(header, position)
        return True

    def _index_batch(self, header: BatchHeader, position: int) -> None:
        if self._bytes_since_index >= self.index_interval_bytes:
            self.index.append(header.base_offset, position)
            self.time_index.append(max(header.max_timestamp, self.max_timestamp), header.last_offset)
            self._bytes_since_index = 0
        self._bytes_since_index += header.size
        self._note_batch(header)

    def _note_batch(self, header: BatchHeader) -> None:
        self.next_offset = header.next_offset
        if header.max_timestamp > self.max_timestamp:
            self.max_timestamp = header.max_timestamp

    def _set_created(self) -> None:
        now = int(time.time() * 1000)
        # During recovery ``size`` still counts a torn tail, which may be all the file holds.
        head = os.pread(self.fd, HEADER_SIZE, 0) if self.size >= HEADER_SIZE else b""
        if len(head) == HEADER_SIZE:
            first = parse_header(head)
            self.created_ms = min(now, max(first.base_timestamp, 0))
        else:
            self.created_ms = now

    def _reindex(self) -> None:
        """Recompute offsets and indexes after the file was cut back to ``flushed_size``."""
        self.size = self.flushed_size
        self._last_read = (-1, -1)
        self._verify_scan(self.size)
        self.index.rewrite()
        self.time_index.rewrite()

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        try:
            if self.fd >= 0:
                self.flush()
        finally:
            self._close_fds()

    def delete(self) -> None:
        self._close_fds()
        self._pending.clear()
        self.path.unlink(missing_ok=True)
        self.acks_path.unlink(missing_ok=True)
        self.index.delete()
        self.time_index.delete()
        self.txn_index.delete()

    def _close_fds(self) -> None:
        self.txn_index.close()
        for fd in (self.fd, self.acks_fd):
            if fd >= 0:
                os.close(fd)
        self.fd = self.acks_fd = -1
