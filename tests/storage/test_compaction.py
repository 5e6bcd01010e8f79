"""Log compaction: the latest record per key survives at its offset; crash-safe swaps."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storage_helpers import crash_copy, read_sparse, segment_files

from jackalope.storage import Log, LogConfig, LogManager, Record
from jackalope.storage.compaction import swap_path
from jackalope.storage.compression import GZIP, ZSTD
from jackalope.storage.log import now_ms
from jackalope.storage.records import encode_batch, iter_batches, keyless_records, parse_header

DAY = 86_400_000
COMPACT = LogConfig(segment_bytes=1024, cleanup_policy="compact", index_interval_bytes=100)


def kv(log: Log) -> list[tuple[int, bytes | None, bytes | None]]:
    return [(r.offset, r.key, r.value) for r in read_sparse(log)]


def put(log: Log, key: bytes | None, value: bytes | None, ts: int = 1_000) -> int:
    return log.append([Record(value, key=key, timestamp=ts)]).base_offset


def latest(model: dict[int, tuple[bytes | None, bytes | None]], active_base: int) -> set[int]:
    """Offsets compaction must keep: the last of each key, null keys, and the active segment."""
    last: dict[bytes, int] = {}
    for offset, (key, _) in sorted(model.items()):
        if key is not None:
            last[key] = offset
    keep = set(last.values()) | {o for o, (k, _) in model.items() if k is None or o >= active_base}
    return keep


def test_keeps_the_latest_record_of_each_key_at_its_offset(tmp_path: Path) -> None:
    log = Log.open(tmp_path / "log", COMPACT)
    model = {}
    for i in range(120):
        key = None if i % 10 == 9 else b"k%d" % (i % 6)
        model[put(log, key, b"v%d-" % i + b"." * 40)] = (key, b"v%d-" % i + b"." * 40)
    before = log.segment_count
    active_base = segment_files(log.directory)[-1].stem
    result = log.compact()
    assert result.records_removed > 0 and result.segments_cleaned == before - 1
    got = kv(log)
    keep = latest(model, int(active_base))
    assert got == [(o, *model[o]) for o in sorted(keep)]
    # A read at an offset compaction removed returns the next record that exists.
    gone = min(set(model) - keep)
    assert log.read_records(gone)[0].offset == min(o for o in keep if o > gone)
    assert log.end_offset == 120 and log.start_offset == 0
    # Nothing more to do until new segments close.
    assert log.compact().segments_cleaned == 0
    log.close()
    assert kv(Log.open(tmp_path / "log", COMPACT)) == got


def test_a_key_rewritten_in_the_active_segment_goes(tmp_path: Path) -> None:
    log = Log.open(tmp_path / "log", COMPACT)
    first = put(log, b"a", b"old" * 100)
    while log.segment_count < 3:
        put(log, b"b", b"x" * 100)
    last_b = log.end_offset - 1
    newest = put(log, b"a", b"new")
    log.compact()
    assert kv(log)[0] != (first, b"a", b"old" * 100)
    assert [o for o, k, _ in kv(log) if k == b"a"] == [newest]
    assert (last_b, b"b", b"x" * 100) in kv(log)


def test_tombstones_expire_after_delete_retention(tmp_path: Path) -> None:
    log = Log.open(tmp_path / "log", COMPACT.replace(delete_retention_ms=DAY))
    put(log, b"a", b"1" * 200)
    put(log, b"b", b"2" * 200)
    tomb = put(log, b"a", None)
    while log.segment_count < 3:
        put(log, b"c", b"x" * 200)
    log.compact()
    assert (tomb, b"a", None) in kv(log)  # the value is gone, the tombstone stays for a day
    assert all(k != b"a" or v is None for _, k, v in kv(log))
    assert log.compact(now_ms() + DAY // 2).segments_cleaned == 0
    log.compact(now_ms() + DAY + 60_000)
    assert all(k != b"a" for _, k, _ in kv(log))
    assert any(k == b"b" for _, k, _ in kv(log))


def test_young_segments_wait_for_min_compaction_lag(tmp_path: Path) -> None:
    log = Log.open(tmp_path / "log", COMPACT.replace(min_compaction_lag_ms=DAY))
    now = now_ms()
    for _ in range(40):
        put(log, b"k", b"x" * 100, ts=now)
    assert log.compact(now).segments_cleaned == 0
    assert len(kv(log)) == 40
    log.compact(now + DAY)
    active_base = int(segment_files(log.directory)[-1].stem)
    assert [o for o, _, _ in kv(log)] == list(range(active_base, 40))  # all superseded but these


def test_rewritten_batches_keep_their_header(tmp_path: Path) -> None:
    log = Log.open(tmp_path / "log", COMPACT)
    records = [Record(b"v%d" % i, key=b"k%d" % i, timestamp=500 + i) for i in range(6)]
    data = encode_batch(records, producer_id=42, producer_epoch=3, base_sequence=0)
    original = parse_header(data)
    log.append_batches(data)
    for codec in (0, GZIP, ZSTD):  # supersede k0 and k1, in a batch of each codec
        log.append_batches(
            encode_batch([Record(b"new", key=b"k0"), Record(b"new", key=b"k1")], compression=codec)
        )
    while log.segment_count < 2:
        log.append([Record(b"pad" * 100, key=b"pad")])
    log.compact()
    raw = log.read(0).data
    (_, header), *rest = list(iter_batches(raw))
    assert (header.base_offset, header.last_offset_delta, header.record_count) == (0, 5, 4)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (42, 3, 0)
    assert (header.base_timestamp, header.max_timestamp) == (original.base_timestamp, original.max_timestamp)
    assert [(r.offset, r.key, r.timestamp) for r in log.read_records(0)][:4] == [
        (i, b"k%d" % i, 500 + i) for i in range(2, 6)
    ]
    # The compressed batches stay compressed.
    codecs = [h.compression for _, h in rest if h.record_count]
    assert codecs == [ZSTD]  # the earlier (plain, gzip) "new" batches were superseded entirely


def test_an_emptied_batch_that_ends_a_producer_sequence_is_kept_empty(tmp_path: Path) -> None:
    log = Log.open(tmp_path / "log", COMPACT)
    log.append_batches(
        encode_batch([Record(b"a", key=b"k")], producer_id=1, producer_epoch=0, base_sequence=0)
    )
    log.append_batches(
        encode_batch([Record(b"b", key=b"k")], producer_id=2, producer_epoch=0, base_sequence=0)
    )
    log.append_batches(
        encode_batch([Record(b"c", key=b"k")], producer_id=2, producer_epoch=0, base_sequence=1)
    )
    while log.segment_count < 2:
        log.append([Record(b"pad" * 100, key=b"k")])
    log.compact()
    headers = [h for _, h in iter_batches(segment_files(log.directory)[0].read_bytes())]
    assert [(h.base_offset, h.producer_id, h.record_count) for h in headers if h.producer_id >= 0] == [
        (0, 1, 0),
        (2, 2, 0),
    ]
    log.close()
    log = Log.open(log.directory, COMPACT)  # and the producer state rebuilds from them
    assert log.append_batches(
        encode_batch([Record(b"c", key=b"k")], producer_id=2, producer_epoch=0, base_sequence=1)
    ).duplicate


def test_null_keys(tmp_path: Path) -> None:
    keyed = encode_batch([Record(b"a", key=b"k"), Record(b"b", key=b"")])
    unkeyed = encode_batch([Record(b"a", key=b"k"), Record(b"b")], compression=GZIP)
    assert keyless_records(keyed, 0) == []
    assert keyless_records(unkeyed, 0) == [1]
    assert keyless_records(keyed + unkeyed, len(keyed)) == [1]


def _compacted_but_not_swapped(tmp_path: Path) -> tuple[Log, list[tuple[int, bytes | None, bytes | None]]]:
    log = Log.open(tmp_path / "log", COMPACT.replace(segment_bytes=4096))
    for i in range(200):
        put(log, b"k%d" % (i % 5), b"v%d" % i + b"." * 60)
    before = kv(log)
    job = log.begin_compaction()
    assert job is not None
    job.run()
    assert job.outputs
    return log, before


def test_a_crash_before_the_swap_keeps_the_old_segments(tmp_path: Path) -> None:
    log, before = _compacted_but_not_swapped(tmp_path)
    copy = crash_copy(log, tmp_path / "copy")
    log = Log.open(copy, COMPACT)
    assert kv(log) == before
    assert not list(copy.glob("*.cleaned"))


@pytest.mark.parametrize("deleted", [0, 1, "all"])
def test_a_crash_after_the_commit_point_completes_the_swap(tmp_path: Path, deleted: int | str) -> None:
    log, before = _compacted_but_not_swapped(tmp_path)
    job = log._compaction
    assert job is not None
    expected_dir = tmp_path / "expected"
    shutil.copytree(log.directory, expected_dir)
    copy = crash_copy(log, tmp_path / "copy")
    # What the commit did up to the crash: the rename to .swap, then some old segments deleted.
    for out in job.outputs:
        first, last = out.segments[0].base_offset, out.segments[-1].base_offset
        (copy / out.path.name).rename(swap_path(copy, first, last))
        olds = [copy / f"{v.base_offset:020d}.log" for v in out.segments]
        for old in olds[: len(olds) if deleted == "all" else int(deleted)]:
            old.unlink()
    log = Log.open(copy, COMPACT)
    got = kv(log)
    assert not list(copy.glob("*.swap"))
    # The same as a compaction that went through.
    reference = Log.open(expected_dir, COMPACT)
    reference.compact()
    assert got == kv(reference)
    assert len(got) < len(before)
    log.close()
    assert kv(Log.open(copy, COMPACT)) == got


async def test_the_manager_compacts_in_the_background(tmp_path: Path) -> None:
    manager = LogManager(tmp_path / "logs", retention_check_interval_ms=20)
    manager.open()
    log = manager.create("c", COMPACT)
    plain = manager.create("d", COMPACT.replace(cleanup_policy="delete", retention_ms=-1))
    for i in range(100):
        for each in (log, plain):
            put(each, b"k%d" % (i % 3), b"v" * 50)
    await manager.start()
    try:
        for _ in range(100):
            if len(kv(log)) < 20:
                break
            await asyncio.sleep(0.02)
        assert len(kv(log)) < 20
        assert len(kv(plain)) == 100  # policy "delete": never compacted
        assert (await manager.compact("c")).segments_cleaned == 0
    finally:
        await manager.close()


# -- the property -----------------------------------------------------------------------------------

ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.sampled_from([b"a", b"b", b"c", b"d", None]), st.binary(max_size=120)),
        st.tuples(st.just("delete"), st.sampled_from([b"a", b"b", b"c"]), st.none()),
        st.tuples(st.just("compact"), st.none(), st.none()),
        st.tuples(st.just("reopen"), st.none(), st.none()),
        st.tuples(st.just("crash"), st.none(), st.none()),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops, gzip=st.booleans())
def test_compaction_keeps_the_latest_of_each_key_across_restarts(
    ops: list[tuple[str, bytes | None, bytes | None]], gzip: bool
) -> None:
    root = Path(tempfile.mkdtemp(prefix="jackalope-compact-"))
    generation = 0
    log = Log.open(root / "0", COMPACT)
    model: dict[int, tuple[bytes | None, bytes | None]] = {}
    try:
        for op, key, value in [*ops, ("compact", None, None), ("crash", None, None)]:
            if op in ("put", "delete"):
                data = encode_batch([Record(value, key=key, timestamp=1)], compression=GZIP if gzip else 0)
                model[log.append_batches(data).base_offset] = (key, value)
            elif op == "compact":
                log.compact()
            elif op == "reopen":
                log.close()
                log = Log.open(log.directory, COMPACT)
            else:
                log.flush()
                generation += 1
                log = Log.open(crash_copy(log, root / str(generation)), COMPACT)
            got = {r.offset: (r.key, r.value) for r in read_sparse(log)}
            # Every record read is the one written at that offset ...
            assert all(model[o] == kv_ for o, kv_ in got.items())
            # ... and all that compaction must keep is there.
            active_base = int(segment_files(log.directory)[-1].stem)
            assert latest(model, active_base) <= set(got)
            assert log.end_offset == (max(model) + 1 if model else 0)
    finally:
        log.close()
        shutil.rmtree(root, ignore_errors=True)
