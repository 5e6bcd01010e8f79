"""One log on real files: appends, reads, rolling, retention, truncation, recovery, durability."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from storage_helpers import batches_in, crash_copy, open_log, read_all, segment_files

from jackalope.storage import (
    CorruptRecordError,
    Durability,
    Log,
    LogClosedError,
    LogConfig,
    OffsetOutOfRangeError,
    Record,
    StorageError,
)
from jackalope.storage.compression import GZIP
from jackalope.storage.errors import RecordTooLargeError
from jackalope.storage.log import CLEAN_SHUTDOWN, now_ms
from jackalope.storage.records import (
    TIMESTAMP_TYPE_LOG_APPEND,
    decode_records,
    encode_batch,
    iter_batches,
    parse_header,
)

HOUR = 3_600_000


def values(records: list[Record]) -> list[bytes | None]:
    return [r.value for r in records]


def fill(log: Log, count: int, size: int = 100, per_batch: int = 1, ts: int | None = None) -> list[bytes]:
    """Append ``count`` records of ``size`` bytes in batches of ``per_batch``; return the values."""
    out = []
    for i in range(0, count, per_batch):
        batch = [
            Record(f"{log.end_offset + j:08d}".encode().ljust(size, b"."))
            for j in range(min(per_batch, count - i))
        ]
        log.append(batch, timestamp=ts)
        out.extend(r.value for r in batch if r.value is not None)
    return out


@pytest.fixture
def log(tmp_path: Path) -> Log:
    return Log.open(tmp_path / "log")


# -- appending and reading ----------------------------------------------------------------------


def test_empty_log(log: Log) -> None:
    assert (log.start_offset, log.durable_offset, log.flushed_offset, log.end_offset) == (0, 0, 0, 0)
    assert log.read(0).data == b""
    assert log.read(0).next_offset == 0
    assert log.read_records(0) == []
    assert log.offset_for_time(0) is None
    assert log.segment_count == 1


def test_append_and_read_records(log: Log) -> None:
    info = log.append([Record(b"a", key=b"k", headers=(("h", None),)), Record(None)], timestamp=1_000)
    assert (info.base_offset, info.last_offset, info.max_timestamp) == (0, 1, 1_000)
    info = log.append([Record(b"c", timestamp=5)], timestamp=2_000)
    assert (info.base_offset, info.last_offset, info.max_timestamp) == (2, 2, 5)
    assert log.end_offset == 3
    assert log.read_records(0) == [
        Record(b"a", key=b"k", headers=(("h", None),), timestamp=1_000, offset=0),
        Record(None, timestamp=1_000, offset=1),
        Record(b"c", timestamp=5, offset=2),
    ]
    # From the middle of a batch: the records before ``offset`` are skipped.
    assert [r.offset for r in log.read_records(1)] == [1, 2]
    assert log.read_records(3) == []


def test_append_without_timestamp_uses_now(log: Log) -> None:
    before = now_ms()
    log.append([Record(b"x")])
    after = now_ms()
    (record,) = log.read_records(0)
    assert record.timestamp is not None
    assert before <= record.timestamp <= after


def test_read_returns_whole_batches(log: Log) -> None:
    for i in range(10):
        log.append([Record(f"{i}-{j}".encode() * 10) for j in range(3)], timestamp=i)
    sizes = [h.size for _, h in iter_batches(log.read(0, 1 << 20).data)]
    assert len(sizes) == 10
    # Offset 4 is the middle record of the second batch: the read starts at that batch.
    result = log.read(4, 1)
    ((pos, header),) = list(iter_batches(result.data))
    assert (pos, header.base_offset, len(result.data)) == (0, 3, sizes[1])
    assert result.next_offset == 6
    # max_bytes below one batch still returns one whole batch.
    for tiny in (0, 1, sizes[0] - 1):
        result = log.read(0, tiny)
        assert len(result.data) == sizes[0]
        assert result.next_offset == 3
    # Room for two and a half batches: two.
    result = log.read(3, sizes[1] + sizes[2] + sizes[3] // 2)
    assert [h.base_offset for _, h in iter_batches(result.data)] == [3, 6]
    assert len(result.data) == sizes[1] + sizes[2]
    assert result.next_offset == 9
    # Everything, followed from next_offset to the end.
    offset, seen = 0, []
    while offset < log.end_offset:
        result = log.read(offset, 200)
        for p, _ in iter_batches(result.data):
            seen.extend(r.offset for r in decode_records(result.data, p))
        offset = result.next_offset
    assert seen == list(range(30))
    assert log.read(30).data == b""


def test_read_out_of_range(log: Log) -> None:
    fill(log, 10)
    with pytest.raises(OffsetOutOfRangeError) as info:
        log.read(11)
    assert (info.value.offset, info.value.start, info.value.end) == (11, 0, 10)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(-1)
    with pytest.raises(OffsetOutOfRangeError):
        log.read_records(11)
    log.truncate_prefix(4)
    with pytest.raises(OffsetOutOfRangeError) as info:
        log.read(3)
    assert info.value.start == 4
    assert log.read(10).data == b""
    assert isinstance(info.value, StorageError)


def test_read_sees_unflushed_appends(log: Log) -> None:
    log.append([Record(b"a")])
    assert log.flushed_offset == 0
    assert values(log.read_records(0)) == [b"a"]


# -- rolling --------------------------------------------------------------------------------------


def test_roll_by_segment_bytes(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log", segment_bytes=1024)
    written = fill(log, 60, size=100)
    assert log.segment_count > 5
    log.flush()
    files = segment_files(log.directory)
    assert len(files) == log.segment_count
    next_base = 0
    for path in files:
        assert path.stat().st_size <= 1024
        batches = batches_in(path)
        assert int(path.stem) == batches[0][1] == next_base
        next_base = batches[-1][2]
        assert path.with_suffix(".index").exists() or path == files[-1]
    assert next_base == 60
    assert values(read_all(log)) == written
    assert values(read_all(log, max_bytes=1)) == written


def test_a_batch_larger_than_a_segment_gets_a_segment_of_its_own(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log", segment_bytes=1024)
    log.append([Record(b"small")])
    log.append([Record(b"x" * 5000)])
    log.append([Record(b"small")])
    assert log.segment_count == 3
    assert values(read_all(log)) == [b"small", b"x" * 5000, b"small"]


def test_roll_by_segment_ms(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log", segment_ms=HOUR)
    t0 = now_ms()
    log.append([Record(b"a")], timestamp=t0)
    log.append([Record(b"b")], timestamp=t0 + HOUR // 2)
    assert log.segment_count == 1
    log.append([Record(b"c")], timestamp=t0 + HOUR)
    assert log.segment_count == 2
    # The new segment's age counts from its first append, on the clock the appends give.
    log.append([Record(b"d")], timestamp=t0 + HOUR + 1)
    log.append([Record(b"e")], timestamp=t0 + HOUR + HOUR // 2)
    assert log.segment_count == 2
    log.append([Record(b"f")], timestamp=t0 + 2 * HOUR)
    assert log.segment_count == 3
    assert [p.stem for p in segment_files(log.directory)] == [f"{b:020d}" for b in (0, 2, 5)]
    assert values(read_all(log)) == [b"a", b"b", b"c", b"d", b"e", b"f"]


def test_an_empty_segment_does_not_roll(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log", segment_ms=HOUR)
    log.append([Record(b"a")], timestamp=now_ms() + 10 * HOUR)
    assert log.segment_count == 1


# -- retention ------------------------------------------------------------------------------------


def test_retention_by_time(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log", segment_bytes=1024, retention_ms=10_000)
    t0 = 1_000_000
    fill(log, 12, size=200, ts=t0)
    fill(log, 12, size=200, ts=t0 + 5_000)
    fill(log, 1, size=200, ts=t0 + 9_000)
    segments = log.segment_count
    assert segments > 3
    assert log.enforce_retention(now=t0 + 10_000) == 0  # nothing is older than 10 s yet
    deleted = log.enforce_retention(now=t0 + 10_001)
    assert deleted >= 1
    assert log.segment_count == segments - deleted
    # Exactly the segments holding only t0 records went; the first left holds t0 + 5000.
    first = log.read_records(log.start_offset)[0]
    assert first.timestamp in (t0, t0 + 5_000)
    assert all(r.timestamp is not None and r.timestamp >= t0 for r in read_all(log))
    bases = [int(p.stem) for p in segment_files(log.directory)]
    assert bases[0] == log.start_offset
    # Later: everything but the last segment's newest record is gone ...
    log.enforce_retention(now=t0 + 15_001)
    assert all(r.timestamp is not None and r.timestamp >= t0 + 5_000 for r in read_all(log))
    # ... and when the active segment expires too it is rolled and deleted.
    end = log.end_offset
    log.enforce_retention(now=t0 + 20_000)
    assert log.start_offset == log.end_offset == end
    assert log.segment_count == 1
    assert read_all(log) == []
    log.append([Record(b"new")], timestamp=t0 + 20_000)
    assert log.read_records(end) == [Record(b"new", timestamp=t0 + 20_000, offset=end)]
    log.close()
    log = open_log(tmp_path / "log", segment_bytes=1024, retention_ms=10_000)
    assert (log.start_offset, log.end_offset) == (end, end + 1)


def test_retention_forever(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log", segment_bytes=1024, retention_ms=-1)
    fill(log, 20, size=200, ts=0)
    assert log.enforce_retention(now=10**15) == 0
    assert log.start_offset == 0


def test_retention_by_size(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log", segment_bytes=1024, retention_bytes=2500, retention_ms=-1)
    written = fill(log, 60, size=100)
    segments = log.segment_count
    deleted = log.enforce_retention()
    assert deleted == segments - log.segment_count > 0
    # What is left is within the limit, and deleting one more segment would not be needed.
    files = segment_files(log.directory)
    assert int(files[0].stem) == log.start_offset
    assert log.size_bytes - files[0].stat().st_size < 2500 <= log.size_bytes + 1024
    assert values(read_all(log)) == written[log.start_offset :]
    assert log.enforce_retention() == 0


def test_retention_by_size_never_deletes_the_active_segment(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log", segment_bytes=1024, retention_bytes=0, retention_ms=-1)
    fill(log, 30, size=100)
    log.enforce_retention()
    assert log.segment_count == 1
    assert log.start_offset == int(segment_files(log.directory)[-1].stem) < log.end_offset
    assert values(read_all(log))[-1] == f"{29:08d}".encode().ljust(100, b".")


# -- truncate_prefix ------------------------------------------------------------------------------


def test_truncate_prefix_within_a_segment(log: Log) -> None:
    written = fill(log, 10, per_batch=3)
    log.truncate_prefix(4)  # the middle of the second batch
    assert log.start_offset == 4
    assert [r.offset for r in log.read_records(4)] == list(range(4, 10))
    assert values(read_all(log)) == written[4:]
    with pytest.raises(OffsetOutOfRangeError):
        log.read_records(3)
    log.truncate_prefix(2)  # never moves back
    assert log.start_offset == 4


def test_truncate_prefix_deletes_whole_segments_and_survives_reopen(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log", segment_bytes=1024)
    written = fill(log, 50, size=100)
    log.flush()
    files = segment_files(log.directory)
    bases = [int(p.stem) for p in files]
    cut = bases[3] + 1
    log.truncate_prefix(cut)
    assert log.start_offset == cut
    assert [int(p.stem) for p in segment_files(log.directory)] == bases[3:]
    for gone in files[:3]:
        assert not gone.exists()
        assert not gone.with_suffix(".index").exists()
        assert not gone.with_suffix(".timeindex").exists()
    assert values(read_all(log)) == written[cut:]
    log.close()
    log = open_log(tmp_path / "log", segment_bytes=1024)
    assert (log.start_offset, log.end_offset) == (cut, 50)
    assert values(read_all(log)) == written[cut:]
    with pytest.raises(OffsetOutOfRangeError):
        log.read(cut - 1)
    # And after an unclean shutdown too.
    log.truncate_prefix(cut + 2)
    log = Log.open(crash_copy(log, tmp_path / "copy"), LogConfig(segment_bytes=1024))
    assert (log.start_offset, log.end_offset) == (cut + 2, 50)
    assert values(read_all(log)) == written[cut + 2 :]


def test_truncate_prefix_past_the_end_clamps(log: Log) -> None:
    fill(log, 5)
    log.truncate_prefix(100)
    assert log.start_offset == log.end_offset == 5


@pytest.mark.parametrize("lose_segment_file", [False, True])
def test_numbering_continues_after_full_truncation_and_reopen(
    tmp_path: Path, lose_segment_file: bool
) -> None:
    log = open_log(tmp_path / "log", segment_bytes=1024)
    fill(log, 30, size=100)
    log.truncate_prefix(30)
    assert log.start_offset == log.end_offset == 30
    assert log.segment_count == 1
    assert [int(p.stem) for p in segment_files(log.directory)] == [30]
    log.close()
    if lose_segment_file:  # even if the empty segment is gone, the start offset file remains
        for path in log.directory.glob("00000000000000000030.*"):
            path.unlink()
    log = open_log(tmp_path / "log", segment_bytes=1024)
    assert log.start_offset == log.end_offset == 30
    info = log.append([Record(b"next")])
    assert info.base_offset == 30
    assert values(read_all(log)) == [b"next"]


def test_truncate_prefix_of_unflushed_data_then_crash(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log")
    fill(log, 5)
    log.flush()
    fill(log, 5)  # buffered only
    log.truncate_prefix(8)
    log = Log.open(crash_copy(log, tmp_path / "copy"))
    # 5..9 were never written to the OS; 8 was handed out as the start and stays the floor.
    assert log.start_offset == log.end_offset == 8
    assert log.append([Record(b"x")]).base_offset == 8


# -- offset_for_time ------------------------------------------------------------------------------


def _expected_offset_for_time(records: list[Record], target: int) -> int | None:
    return next((r.offset for r in records if r.timestamp is not None and r.timestamp >= target), None)


@pytest.mark.parametrize("index_interval_bytes", [1, 300, 4096])
def test_offset_for_time(tmp_path: Path, index_interval_bytes: int) -> None:
    log = open_log(tmp_path / "log", segment_bytes=2048, index_interval_bytes=index_interval_bytes)
    # Mostly increasing timestamps, with some going back in time inside and across batches.
    ts = 1_000
    for i in range(80):
        batch = []
        for j in range(1 + i % 3):
            jitter = -25 if (i + j) % 7 == 0 else 0
            batch.append(Record(b"v" * 50, timestamp=ts + jitter))
            ts += 10
        log.append(batch)
    assert log.segment_count > 3
    records = read_all(log)
    targets = list(range(900, ts + 30, 7)) + [r.timestamp for r in records if r.timestamp is not None]
    for target in targets:
        assert log.offset_for_time(target) == _expected_offset_for_time(records, target), target
    assert log.offset_for_time(ts + 1_000) is None
    # After a truncation only readable records count; and the same after a reopen.
    log.truncate_prefix(100)
    records = read_all(log)
    for reopen in (False, True):
        if reopen:
            log.close()
            log = open_log(tmp_path / "log", segment_bytes=2048, index_interval_bytes=index_interval_bytes)
        for target in targets[::5]:
            assert log.offset_for_time(target) == _expected_offset_for_time(records, target), target


# -- client-encoded batches -----------------------------------------------------------------------


def test_append_batches_assigns_offsets(log: Log) -> None:
    log.append([Record(b"first")], timestamp=1)
    a = encode_batch(
        [Record(b"a0", timestamp=10), Record(b"a1", timestamp=12)],
        base_offset=987_654,
        producer_id=5,
        producer_epoch=0,
        base_sequence=0,
    )
    b = encode_batch([Record(b"b0", key=b"k", timestamp=11)], base_offset=0, compression=GZIP)
    c = encode_batch([Record(b"c0", timestamp=3)] * 3, base_offset=-1)
    data = bytearray(a + b + c)
    info = log.append_batches(data)
    assert (info.base_offset, info.last_offset, info.max_timestamp) == (1, 6, 12)
    assert log.end_offset == 7
    got = read_all(log)
    assert [(r.offset, r.value, r.timestamp) for r in got] == [
        (0, b"first", 1),
        (1, b"a0", 10),
        (2, b"a1", 12),
        (3, b"b0", 11),
        (4, b"c0", 3),
        (5, b"c0", 3),
        (6, b"c0", 3),
    ]
    # Stored byte for byte as given, but for the base offset.
    raw = log.read(1).data
    stored_batches = [raw[p : p + h.size] for p, h in iter_batches(raw)]
    for original, stored_batch in zip([a, b, c], stored_batches, strict=True):
        assert stored_batch[8:] == original[8:]
    assert parse_header(stored_batches[0]).producer_id == 5
    assert parse_header(stored_batches[0]).base_offset == 1


@pytest.mark.parametrize("damage", ["crc", "magic", "truncated", "trailing", "short-length", "empty"])
def test_append_batches_rejects_the_whole_call(tmp_path: Path, damage: str) -> None:
    log = open_log(tmp_path / "log")
    fill(log, 3)
    log.flush()
    size_before = log.size_bytes
    good = encode_batch([Record(b"good")])
    bad = bytearray(encode_batch([Record(b"bad"), Record(b"worse")]))
    if damage == "crc":
        bad[-1] ^= 0xFF
    elif damage == "magic":
        bad[16] = 1
    elif damage == "truncated":
        bad = bad[:-3]
    elif damage == "trailing":
        bad += b"\x00" * 10
    elif damage == "short-length":
        struct.pack_into(">i", bad, 8, 20)
    else:
        bad = bytearray()
        good = bytearray()
    with pytest.raises(CorruptRecordError):
        log.append_batches(bytearray(good + bad + good))
    assert log.end_offset == 3
    assert log.size_bytes == size_before
    log.flush()
    assert sum(p.stat().st_size for p in segment_files(log.directory)) == size_before
    assert log.append([Record(b"after")]).base_offset == 3
    assert values(read_all(log))[-1] == b"after"


def test_append_batches_with_log_append_time(log: Log) -> None:
    data = bytearray(
        encode_batch([Record(b"a", timestamp=5), Record(b"b", timestamp=6)])
        + encode_batch([Record(b"c", timestamp=7)], compression=GZIP)
    )
    before = now_ms()
    info = log.append_batches(data, log_append_time=True)
    after = now_ms()
    assert before <= info.max_timestamp <= after
    got = read_all(log)
    assert {r.timestamp for r in got} == {info.max_timestamp}
    assert values(got) == [b"a", b"b", b"c"]
    raw = log.read(0).data
    assert all(h.attributes & TIMESTAMP_TYPE_LOG_APPEND for _, h in iter_batches(raw))
    log.close()
    log = Log.open(log.directory)
    assert read_all(log) == got  # and it is what a verifying recovery sees


def test_append_batches_survive_reopen(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log", segment_bytes=1024)
    expected = []
    for i in range(30):
        recs = [Record(f"{i}-{j}".encode() * 20, timestamp=i) for j in range(2)]
        log.append_batches(encode_batch(recs, base_offset=1_000 - i))
        expected += recs
    log.close()
    log = open_log(tmp_path / "log", segment_bytes=1024)
    assert [r._replace(offset=-1) for r in read_all(log)] == expected


# -- reopening and recovery -----------------------------------------------------------------------


def _index_inodes(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_ino for p in [*directory.glob("*.index"), *directory.glob("*.timeindex")]}


def test_clean_reopen_reuses_the_indexes(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=2048, index_interval_bytes=200)
    log = Log.open(tmp_path / "log", config)
    written = fill(log, 80, size=100)
    log.close()
    assert (log.directory / CLEAN_SHUTDOWN).exists()
    inodes = _index_inodes(log.directory)
    assert len(inodes) == 2 * log.segment_count
    log = Log.open(tmp_path / "log", config)
    assert not (log.directory / CLEAN_SHUTDOWN).exists()
    assert _index_inodes(log.directory) == inodes  # loaded, not rebuilt
    assert (log.start_offset, log.durable_offset, log.flushed_offset, log.end_offset) == (0, 80, 80, 80)
    assert values(read_all(log)) == written
    assert log.offset_for_time(0) == 0
    fill(log, 5)
    assert log.end_offset == 85


def test_unclean_reopen_rebuilds_the_last_segment(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=2048, index_interval_bytes=200)
    log = Log.open(tmp_path / "log", config)
    written = fill(log, 80, size=100)
    log.close()
    (log.directory / CLEAN_SHUTDOWN).unlink()
    inodes = _index_inodes(log.directory)
    log = Log.open(tmp_path / "log", config)
    after = _index_inodes(log.directory)
    last = segment_files(log.directory)[-1].with_suffix(".index").name
    assert after[last] != inodes[last]  # the last segment was verified and re-indexed
    assert values(read_all(log)) == written


def test_unclean_reopen_loses_only_unflushed_appends(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log", segment_bytes=1024)
    written = fill(log, 30, size=100)
    log.flush()
    fill(log, 2, size=10)  # still in the write buffer
    assert log.flushed_offset == 30 < log.end_offset
    log = Log.open(crash_copy(log, tmp_path / "copy"), LogConfig(segment_bytes=1024))
    assert (log.start_offset, log.durable_offset, log.flushed_offset, log.end_offset) == (0, 30, 30, 30)
    assert values(read_all(log)) == written
    assert log.append([Record(b"again")]).base_offset == 30


def test_a_large_burst_reaches_the_os_without_flush(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log")
    written = fill(log, 200, size=1000)  # more than the 64 KiB write buffer
    log = Log.open(crash_copy(log, tmp_path / "copy"))
    assert 0 < log.end_offset <= 200
    assert values(read_all(log)) == written[: log.end_offset]


@pytest.mark.parametrize("clean", [True, False])
@pytest.mark.parametrize("damage", ["missing", "garbage", "torn", "zeroed", "misplaced"])
def test_damaged_indexes_are_rebuilt(tmp_path: Path, clean: bool, damage: str) -> None:
    config = LogConfig(segment_bytes=4096, index_interval_bytes=150)
    log = Log.open(tmp_path / "log", config)
    ts = 10_000
    for _ in range(40):
        log.append([Record(b"r" * 80, timestamp=ts), Record(b"s" * 80, timestamp=ts + 1)])
        ts += 5
    expected = read_all(log)
    times = {t: log.offset_for_time(t) for t in range(9_990, ts + 10, 3)}
    log.close()
    if not clean:
        (log.directory / CLEAN_SHUTDOWN).unlink()
    for path in sorted([*log.directory.glob("*.index"), *log.directory.glob("*.timeindex")]):
        size = path.stat().st_size
        if damage == "missing":
            path.unlink()
        elif damage == "garbage":
            path.write_bytes(os.urandom(size or 24))
        elif damage == "torn":
            path.write_bytes(path.read_bytes()[: max(size - 5, 0)])
        elif damage == "zeroed":
            path.write_bytes(b"\x00" * size)
        elif path.suffix == ".index":  # entries pointing into the middle of batches
            path.write_bytes(b"".join(struct.pack(">II", i, 7 + 13 * i) for i in range(1, 6)))
    log = Log.open(tmp_path / "log", config)
    assert read_all(log) == expected
    assert read_all(log, max_bytes=1) == expected
    for t, offset in times.items():
        assert log.offset_for_time(t) == offset, t
    for offset in range(0, log.end_offset, 7):
        assert log.read_records(offset, 1)[0].offset == offset
    log.append([Record(b"more", timestamp=ts)])
    log.close()
    log = Log.open(tmp_path / "log", config)
    assert read_all(log) == [*expected, Record(b"more", timestamp=ts, offset=80)]


def test_index_pointing_at_a_fake_header_inside_a_value(tmp_path: Path) -> None:
    """A wrong index entry that lands on bytes that look like a header with magic 2 and length 0."""
    fake = bytearray(64)
    struct.pack_into(">qi", fake, 0, 0, -12)  # base offset 0, batch length -12 (size 0)
    fake[16] = 2
    config = LogConfig(index_interval_bytes=1)
    log = Log.open(tmp_path / "log", config)
    for _ in range(5):
        log.append([Record(bytes(fake))], timestamp=1)
    expected = read_all(log)
    log.close()
    raw = (log.directory / "00000000000000000000.log").read_bytes()
    at = raw.index(bytes(fake), raw.index(bytes(fake)) + 1)  # inside the second batch
    (log.directory / "00000000000000000000.index").write_bytes(struct.pack(">II", 1, at))
    log = Log.open(tmp_path / "log", config)
    assert read_all(log) == expected


def test_damaged_middle_segment_drops_what_follows_on_unclean_reopen(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log", segment_bytes=1024, durability=Durability.NEVER)
    fill(log, 40, size=100)
    log.flush()
    files = segment_files(log.directory)
    assert len(files) >= 4
    victim = files[1]
    batches = batches_in(victim)
    pos, base, _ = batches[2]
    log = Log.open(crash_copy(log, tmp_path / "copy"), LogConfig(segment_bytes=1024))
    raw = bytearray((log.directory / victim.name).read_bytes())
    log.close()
    raw[pos + 70] ^= 0xFF  # a byte of the third batch's records: its CRC no longer matches
    (tmp_path / "copy" / victim.name).write_bytes(raw)
    (tmp_path / "copy" / CLEAN_SHUTDOWN).unlink()
    log = Log.open(tmp_path / "copy", LogConfig(segment_bytes=1024))
    assert log.end_offset == base
    assert [int(p.stem) for p in segment_files(log.directory)] == [int(f.stem) for f in files[:2]]
    assert [r.offset for r in read_all(log)] == list(range(base))


def test_stray_files_are_cleaned_up(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log", segment_bytes=1024)
    fill(log, 20, size=100)
    log.close()
    (log.directory / "log-start-offset.tmp").write_text("999\n")
    (log.directory / "00000000000000000999.index").write_bytes(b"\x00" * 8)
    (log.directory / "00000000000000000999.timeindex").write_bytes(b"\x00" * 12)
    log = open_log(tmp_path / "log", segment_bytes=1024)
    assert not list(log.directory.glob("*.tmp"))
    assert not list(log.directory.glob("*999*"))
    assert log.start_offset == 0 and log.end_offset == 20


# -- durability -----------------------------------------------------------------------------------


class Waiter:
    def __init__(self) -> None:
        self.calls: list[BaseException | None] = []

    def __call__(self, error: BaseException | None) -> None:
        self.calls.append(error)


def test_when_durable_never(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log", durability=Durability.NEVER)
    info = log.append([Record(b"a"), Record(b"b")])
    w = Waiter()
    log.when_durable(info.last_offset, w)
    assert w.calls == []
    log.flush()
    assert w.calls == [None]
    assert log.durable_offset == log.flushed_offset == 2
    late = Waiter()
    log.when_durable(1, late)  # already durable: called at once
    assert late.calls == [None]
    assert log.begin_sync() is None or log.durable_offset == 2


@pytest.mark.parametrize("durability", [Durability.ALWAYS, Durability.INTERVAL])
def test_when_durable_needs_sync(tmp_path: Path, durability: Durability) -> None:
    log = open_log(tmp_path / "log", durability=durability)
    info = log.append([Record(b"a")])
    w = Waiter()
    log.when_durable(info.last_offset, w)
    log.flush()
    assert w.calls == []
    assert (log.durable_offset, log.flushed_offset) == (0, 1)
    log.sync()
    assert w.calls == [None]
    assert log.durable_offset == 1


def test_when_durable_with_a_sync_job(tmp_path: Path) -> None:
    """begin_sync/end_sync: only what was flushed when the job began becomes durable."""
    log = open_log(tmp_path / "log", segment_bytes=1024)
    fill(log, 5)
    early, late = Waiter(), Waiter()
    log.when_durable(4, early)
    job = log.begin_sync()
    assert job is not None and job.target == 5
    fill(log, 20)  # rolls segments meanwhile
    log.when_durable(24, late)
    job.run()
    log.end_sync(job, None)
    assert early.calls == [None] and late.calls == []
    assert log.durable_offset == 5
    assert log.needs_sync()
    log.sync()
    assert late.calls == [None]
    assert log.durable_offset == log.end_offset == 25
    assert not log.needs_sync()


def test_waiters_registered_out_of_order(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log")
    fill(log, 5)
    job = log.begin_sync()
    assert job is not None
    fill(log, 5)
    high, low = Waiter(), Waiter()
    log.when_durable(8, high)
    log.when_durable(3, low)
    job.run()
    log.end_sync(job, None)
    assert low.calls == [None]
    assert high.calls == []
    log.sync()
    assert high.calls == [None]


def test_failed_sync_fails_the_waiters_and_the_log(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log")
    fill(log, 3)
    w = Waiter()
    log.when_durable(2, w)
    job = log.begin_sync()
    assert job is not None
    log.end_sync(job, OSError(5, "Input/output error"))
    assert len(w.calls) == 1 and isinstance(w.calls[0], StorageError)
    assert isinstance(log.failed, StorageError)
    with pytest.raises(StorageError):
        log.append([Record(b"x")])
    late = Waiter()
    log.when_durable(2, late)
    assert len(late.calls) == 1 and isinstance(late.calls[0], StorageError)
    log.close()
    assert not (log.directory / CLEAN_SHUTDOWN).exists()
    log = Log.open(log.directory)
    assert log.failed is None and log.end_offset == 3


def test_a_failing_callback_does_not_stop_the_others(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log", durability=Durability.NEVER)
    fill(log, 2)

    def broken(error: BaseException | None) -> None:
        raise RuntimeError("boom")

    w = Waiter()
    log.when_durable(0, broken)
    log.when_durable(1, w)
    log.flush()
    assert w.calls == [None]


def test_close_makes_everything_durable(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log")
    fill(log, 3)
    w = Waiter()
    log.when_durable(2, w)
    log.close()
    assert w.calls == [None]
    assert log.durable_offset == 3


# -- closed logs ----------------------------------------------------------------------------------


def test_closed_log_raises(log: Log) -> None:
    fill(log, 3)
    log.close()
    log.close()  # twice is fine
    with pytest.raises(LogClosedError):
        log.append([Record(b"x")])
    with pytest.raises(LogClosedError):
        log.append_batches(encode_batch([Record(b"x")]))
    with pytest.raises(LogClosedError):
        log.read(0)
    with pytest.raises(LogClosedError):
        log.read_records(0)
    with pytest.raises(LogClosedError):
        log.truncate_prefix(1)
    assert log.enforce_retention(now=10**15) == 0
    w = Waiter()
    log.when_durable(5, w)  # will never be durable in this log object
    assert len(w.calls) == 1 and isinstance(w.calls[0], LogClosedError)


def test_deleted_log(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log")
    fill(log, 3)
    w = Waiter()
    log.when_durable(2, w)
    log.delete()
    assert len(w.calls) == 1 and isinstance(w.calls[0], LogClosedError)
    assert not log.directory.exists()
    with pytest.raises(LogClosedError):
        log.append([Record(b"x")])


def test_retention_after_a_crash_that_left_the_start_past_the_end(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=1024, retention_ms=1_000)
    log = Log.open(tmp_path / "log", config)
    fill(log, 5, ts=1)
    log.truncate_prefix(5)  # rolls: an empty segment at 5
    fill(log, 3, ts=1)  # 5..7, only buffered
    log.truncate_prefix(7)
    log = Log.open(crash_copy(log, tmp_path / "copy"), config)
    assert log.start_offset == log.end_offset == 7
    fill(log, 30, size=100, ts=1)
    assert log.segment_count > 2
    log.enforce_retention(now=10_000)
    assert log.start_offset == log.end_offset == 37
    assert log.segment_count == 1
    assert log.size_bytes == 0


@pytest.mark.parametrize("keep", [1, 30, 60])
def test_torn_first_batch_shorter_than_a_header(tmp_path: Path, keep: int) -> None:
    """A crash while writing the first batch of a segment leaves less than a batch header."""
    log = open_log(tmp_path / "log", segment_bytes=1024)
    written = fill(log, 20, size=100)
    log.flush()
    last = segment_files(log.directory)[-1]
    base = int(last.stem)
    raw = last.read_bytes()
    first_batch = batches_in(last)[0][2] - base  # records in the segment's first batch
    assert first_batch == 1
    log = Log.open(crash_copy(log, tmp_path / "copy"), LogConfig(segment_bytes=1024))
    log.close()
    damaged = tmp_path / "copy" / last.name
    damaged.write_bytes(raw[:keep])
    (tmp_path / "copy" / CLEAN_SHUTDOWN).unlink()
    log = Log.open(tmp_path / "copy", LogConfig(segment_bytes=1024))
    assert log.end_offset == base
    assert damaged.stat().st_size == 0
    assert values(read_all(log)) == written[:base]
    assert log.append([Record(b"again")]).base_offset == base


@pytest.mark.parametrize(("byte", "flip"), [(0, 0x10), (3, 0x10), (4, 0x80), (7, 0x04), (7, 0x06)])
def test_damaged_base_offset_is_caught_by_recovery(tmp_path: Path, byte: int, flip: int) -> None:
    """The CRC does not cover the base offset; recovery checks each batch starts after the
    previous one ends (offsets may be sparse after compaction) and within 2**31 of the base."""
    log = open_log(tmp_path / "log")
    written = fill(log, 10, per_batch=2)
    log.close()
    (log.directory / CLEAN_SHUTDOWN).unlink()
    path = segment_files(log.directory)[0]
    raw = bytearray(path.read_bytes())
    pos = batches_in(path)[3][0]  # the fourth batch: offsets 6 and 7
    raw[pos + byte] ^= flip  # moved far ahead, or backwards (6 ^ 4 = 2, 6 ^ 6 = 0)
    path.write_bytes(raw)
    log = Log.open(log.directory)
    assert log.end_offset == 6
    assert values(read_all(log)) == written[:6]


def test_a_base_offset_moved_ahead_is_caught_by_the_batch_after_it(tmp_path: Path) -> None:
    """A gap is legal (compaction makes them), so a base offset damaged to a little further on
    passes; the next batch, now starting before it ends, does not."""
    log = open_log(tmp_path / "log")
    written = fill(log, 10, per_batch=2)
    log.close()
    (log.directory / CLEAN_SHUTDOWN).unlink()
    path = segment_files(log.directory)[0]
    raw = bytearray(path.read_bytes())
    pos = batches_in(path)[3][0]
    raw[pos + 7] ^= 0x10  # offsets 6, 7 -> 22, 23; the next batch starts at 8
    path.write_bytes(raw)
    log = Log.open(log.directory)
    assert log.end_offset == 24
    assert [(r.offset, r.value) for r in log.read_records(0)] == [
        *enumerate(written[:6]),
        (22, written[6]),
        (23, written[7]),
    ]


def test_start_runs_ahead_of_durable_until_the_next_sync(tmp_path: Path) -> None:
    """The documented exception to ``start <= durable``: truncating records not yet durable."""
    log = open_log(tmp_path / "log")
    fill(log, 5)
    w = Waiter()
    log.when_durable(4, w)
    log.truncate_prefix(5)
    assert (log.start_offset, log.durable_offset, log.flushed_offset, log.end_offset) == (5, 0, 0, 5)
    log.sync()
    assert (log.start_offset, log.durable_offset, log.flushed_offset, log.end_offset) == (5, 5, 5, 5)
    assert w.calls == [None]


# -- configuration: reconfigure, cleanup policy, append limits ------------------------------------


def test_reconfigure_applies_to_later_operations(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log", durability=Durability.ALWAYS)
    fill(log, 20, size=100, ts=1)
    assert log.segment_count == 1
    assert log.enforce_retention(now=10 * HOUR) == 0  # seven days by default
    log.flush()
    assert log.durable_offset == 0
    log.reconfigure(log.config.replace(segment_bytes=1024, durability=Durability.NEVER, retention_ms=HOUR))
    assert log.durable_offset == 20  # written to the OS counts as durable under "never"
    fill(log, 20, size=100, ts=1)
    assert log.segment_count > 2  # the new segment size rolls
    log.flush()
    assert log.durable_offset == 40
    assert log.enforce_retention(now=10 * HOUR) > 0  # the new retention applies


@pytest.mark.parametrize(
    ("policy", "deletes"),
    [("delete", True), ("compact", False), ("compact,delete", True), ("delete,compact", True)],
)
def test_retention_honours_the_cleanup_policy(tmp_path: Path, policy: str, deletes: bool) -> None:
    log = open_log(
        tmp_path / "log", segment_bytes=1024, retention_ms=HOUR, retention_bytes=2048, cleanup_policy=policy
    )
    fill(log, 50, size=100, ts=1)
    count = log.segment_count
    deleted = log.enforce_retention(now=10 * HOUR)
    assert (deleted > 0) is deletes
    assert (log.start_offset > 0) is deletes
    assert (log.segment_count < count) is deletes


def test_a_batch_over_max_message_bytes_is_refused_whole(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log", max_message_bytes=200)
    small = encode_batch([Record(b"x" * 50)])
    large = encode_batch([Record(b"x" * 150)])
    assert len(small) <= 200 < len(large)
    with pytest.raises(RecordTooLargeError):
        log.append_batches(bytearray(small + large))
    assert log.end_offset == 0
    assert log.append_batches(bytearray(small + small)).last_offset == 1
    log.reconfigure(log.config.replace(max_message_bytes=len(large)))
    assert log.append_batches(bytearray(large)).base_offset == 2


def test_log_append_time_from_the_config(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log", log_append_time=True)
    before = now_ms()
    info = log.append_batches(encode_batch([Record(b"a", timestamp=5), Record(b"b", timestamp=7)]))
    info2 = log.append([Record(b"c", timestamp=9)])
    after = now_ms()
    assert before <= info.max_timestamp <= after and before <= info2.max_timestamp <= after
    got = log.read_records(0)
    assert [r.timestamp for r in got] == [info.max_timestamp] * 2 + [info2.max_timestamp]
    raw = log.read(0).data
    assert all(h.attributes & TIMESTAMP_TYPE_LOG_APPEND for _, h in iter_batches(raw))
    assert [r.value for r in read_all(Log.open(crash_copy(log, tmp_path / "copy")))] == [b"a", b"b", b"c"]
