"""Kafka transactions in the storage engine: markers, the last stable offset, the transaction
index, committed-only reads, recovery, retention and compaction."""

from __future__ import annotations

import asyncio
import errno
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from crc32c import crc32c
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storage_helpers import crash_copy, open_log, read_sparse, segment_files

from jackalope.storage import (
    AbortedTxn,
    CorruptRecordError,
    InvalidProducerEpochError,
    InvalidTxnStateError,
    Log,
    LogManager,
    OpenTxn,
    Record,
    StorageError,
    TransactionCoordinatorFencedError,
)
from jackalope.storage import segment as segment_module
from jackalope.storage.log import CLEAN_SHUTDOWN, PRODUCER_STATE_FILE
from jackalope.storage.producers import ProducerStateManager, decode_snapshot, encode_snapshot
from jackalope.storage.records import CONTROL, TRANSACTIONAL, decode_records, encode_batch, iter_batches
from jackalope.storage.transactions import decode_marker


def batch(
    pid: int,
    seq: int,
    n: int = 1,
    *,
    epoch: int = 0,
    txn: bool = True,
    key: bytes | None = None,
    tag: bytes = b"v",
) -> bytearray:
    return encode_batch(
        [Record(tag + b"%d-%d" % (pid, seq + i), key=key, timestamp=1) for i in range(n)],
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        attributes=TRANSACTIONAL if txn else 0,
    )


@pytest.fixture
def log(tmp_path: Path) -> Log:
    return Log.open(tmp_path / "log")


def read_committed(log: Log, max_bytes: int = 1 << 20) -> list[Record]:
    """Every record a read_committed reader gets from the start, read in ``max_bytes`` steps."""
    out: list[Record] = []
    offset = log.start_offset
    while chunk := log.read_records(offset, max_bytes, committed_only=True):
        out.extend(chunk)
        offset = chunk[-1].offset + 1
    return out


def values(records: list[Record]) -> list[bytes | None]:
    return [r.value for r in records]


# -- unit tests ----------------------------------------------------------------------------------


def test_a_transactional_batch_opens_the_producers_transaction(log: Log) -> None:
    log.append([Record(b"plain")])
    assert log.first_unstable_offset is None
    assert log.last_stable_offset() == 1
    log.append_batches(batch(7, 0, 3))
    log.append_batches(batch(7, 3, 2))
    assert log.first_unstable_offset == 1
    assert log.last_stable_offset() == 1
    assert log.last_stable_offset(high_watermark=0) == 0
    assert log.open_transactions() == [OpenTxn(7, 0, 1)]
    (state,) = log.producer_states()
    assert (state.producer_id, state.producer_epoch, state.last_sequence, state.current_txn_start_offset) == (
        7,
        0,
        4,
        1,
    )
    assert values(log.read_records(0, committed_only=True)) == [b"plain"]
    assert log.read_records(1, committed_only=True) == []
    assert len(log.read_records(1)) == 5  # read_uncommitted sees it all


def test_commit_makes_the_records_visible_and_writes_a_control_batch(log: Log) -> None:
    log.append_batches(batch(7, 0, 2))
    info = log.append_control(7, 0, commit=True, coordinator_epoch=3, timestamp=1234)
    assert (info.base_offset, info.last_offset, info.max_timestamp) == (2, 2, 1234)
    assert log.first_unstable_offset is None
    assert log.last_stable_offset() == 3
    assert log.aborted_transactions(0, 3) == []
    assert values(log.read_records(0, committed_only=True)) == [b"v7-0", b"v7-1"]
    data = log.read(2).data
    ((pos, header),) = list(iter_batches(data))
    assert header.attributes & (TRANSACTIONAL | CONTROL) == TRANSACTIONAL | CONTROL
    assert (header.producer_id, header.producer_epoch, header.base_sequence, header.record_count) == (
        7,
        0,
        -1,
        1,
    )
    (record,) = decode_records(data, pos)
    assert record.key == struct.pack(">hh", 0, 1)
    assert record.value == struct.pack(">hi", 0, 3)
    assert decode_marker(data) == (True, 3)
    (state,) = log.producer_states()
    assert (state.coordinator_epoch, state.current_txn_start_offset, state.last_timestamp) == (3, -1, 1234)


def test_abort_lists_the_transaction_and_hides_its_records(log: Log) -> None:
    log.append_batches(batch(7, 0, 2))
    log.append([Record(b"plain")])
    log.append_batches(batch(7, 2))
    log.append_control(7, 0, commit=False, coordinator_epoch=0)
    assert log.aborted_transactions(0, log.end_offset) == [AbortedTxn(7, 0, 4)]
    assert log.aborted_transactions(5, 6) == []
    assert log.aborted_transactions(4, 5) == [AbortedTxn(7, 0, 4)]
    assert values(log.read_records(0, committed_only=True)) == [b"plain"]
    assert values(log.read_records(3, committed_only=True)) == []
    # the index file: Kafka's 34-byte entries
    raw = (log.directory / "00000000000000000000.txnindex").read_bytes()
    assert raw == struct.pack(">hqqqq", 0, 7, 0, 4, 5)


def test_the_last_stable_offset_of_an_abort_entry_is_the_next_open_transaction(log: Log) -> None:
    log.append_batches(batch(1, 0))  # 0: txn of 1
    log.append_batches(batch(2, 0))  # 1: txn of 2
    log.append_control(2, 0, commit=False, coordinator_epoch=0)  # 2
    raw = (log.directory / "00000000000000000000.txnindex").read_bytes()
    assert struct.unpack(">hqqqq", raw) == (0, 2, 1, 2, 0)
    assert log.last_stable_offset() == 0
    assert log.read_records(0, committed_only=True) == []
    log.close()
    log = Log.open(log.directory)  # an entry whose last stable offset is 0 loads
    assert log.aborted_transactions(0, 3) == [AbortedTxn(2, 1, 2)]
    log.append_control(1, 0, commit=True, coordinator_epoch=0)
    assert values(log.read_records(0, committed_only=True)) == [b"v1-0"]  # 2's aborted record skipped
    assert (log.directory / "00000000000000000000.txnindex").read_bytes() == raw  # not rebuilt
    log.close()


def test_producers_may_not_write_control_batches_or_anonymous_transactional_ones(log: Log) -> None:
    control = encode_batch(
        [Record(b"x")], producer_id=7, producer_epoch=0, attributes=TRANSACTIONAL | CONTROL
    )
    with pytest.raises(CorruptRecordError):
        log.append_batches(control)
    anonymous = encode_batch([Record(b"x")], attributes=TRANSACTIONAL)
    with pytest.raises(CorruptRecordError):
        log.append_batches(anonymous)
    assert log.end_offset == 0


def test_a_plain_batch_while_the_transaction_is_open_is_refused(log: Log) -> None:
    log.append_batches(batch(7, 0))
    with pytest.raises(InvalidTxnStateError):
        log.append_batches(batch(7, 1, txn=False))
    # nor in the same request after a transactional one
    with pytest.raises(InvalidTxnStateError):
        log.append_batches(batch(8, 0) + batch(8, 1, txn=False))
    assert log.end_offset == 1
    log.append_control(7, 0, commit=True, coordinator_epoch=0)
    log.append_batches(batch(7, 1, txn=False))  # idempotent again once it is over
    assert log.end_offset == 3


def test_a_retried_transactional_batch_is_a_duplicate(log: Log) -> None:
    first = log.append_batches(batch(7, 0, 2))
    again = log.append_batches(batch(7, 0, 2))
    assert again.duplicate and again.base_offset == first.base_offset
    assert log.end_offset == 2


def test_fenced_markers_are_refused(log: Log) -> None:
    log.append_batches(batch(7, 0, epoch=2))
    with pytest.raises(InvalidProducerEpochError):
        log.append_control(7, 1, commit=True, coordinator_epoch=0)
    log.append_control(7, 2, commit=True, coordinator_epoch=5)
    with pytest.raises(TransactionCoordinatorFencedError):
        log.append_control(7, 2, commit=False, coordinator_epoch=4)
    assert log.end_offset == 2
    with pytest.raises(CorruptRecordError):
        log.append_control(-1, 0, commit=True, coordinator_epoch=0)


def test_a_marker_without_an_open_transaction_is_written(log: Log) -> None:
    log.append_control(9, 0, commit=False, coordinator_epoch=0)
    assert log.end_offset == 1
    assert log.aborted_transactions(0, 1) == [AbortedTxn(9, 0, 0)]
    assert log.first_unstable_offset is None
    # an epoch bump by the marker fences the older epoch's batches
    log.append_control(9, 1, commit=True, coordinator_epoch=0)
    with pytest.raises(InvalidProducerEpochError):
        log.append_batches(batch(9, 0, epoch=0))


def test_markers_are_durable_like_any_append(tmp_path: Path) -> None:
    async def main() -> None:
        manager = LogManager(tmp_path / "data")
        manager.open()
        await manager.start()
        log = manager.create("t")
        log.append_batches(batch(7, 0))
        info = log.append_control(7, 0, commit=False, coordinator_epoch=0)
        await manager.wait_durable(log, info.last_offset)
        assert log.durable_offset > info.last_offset
        await manager.close()

    asyncio.run(main())


def test_aborts_span_segments_and_the_entry_sits_with_the_marker(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log", segment_bytes=1024)
    log.append_batches(batch(1, 0))  # 0
    while log.segment_count < 3:
        log.append([Record(b"x" * 200)])
    log.append_control(1, 0, commit=False, coordinator_epoch=0)
    marker = log.end_offset - 1
    indexes = sorted(log.directory.glob("*.txnindex"))
    assert len(indexes) == log.segment_count  # one per segment, empty unless something aborted
    assert [p.stat().st_size for p in indexes] == [0] * (len(indexes) - 1) + [34]
    assert log.aborted_transactions(0, 1) == [AbortedTxn(1, 0, marker)]
    assert log.aborted_transactions(marker, marker + 1) == [AbortedTxn(1, 0, marker)]
    committed = log.read_records(0, committed_only=True)
    assert committed and all(r.value == b"x" * 200 for r in committed)
    log.close()


def test_state_survives_a_clean_reopen(tmp_path: Path) -> None:
    log = Log.open(tmp_path / "log")
    log.append_batches(batch(1, 0, 2))
    log.append_batches(batch(2, 0))
    log.append_control(2, 0, commit=False, coordinator_epoch=4)
    log.append_batches(batch(3, 0))
    log.append_control(3, 0, commit=True, coordinator_epoch=1)
    before = (log.open_transactions(), log.aborted_transactions(0, 100), log.producer_states())
    log.close()
    log = Log.open(tmp_path / "log")
    assert (log.open_transactions(), log.aborted_transactions(0, 100), log.producer_states()) == before
    with pytest.raises(InvalidTxnStateError):
        log.append_batches(batch(1, 2, txn=False))
    log.close()


@pytest.mark.parametrize("damage", ["delete", "garbage", "unclean"])
def test_the_transaction_index_is_rebuilt(tmp_path: Path, damage: str) -> None:
    log = open_log(tmp_path / "log", segment_bytes=1024)
    for pid in range(1, 12):
        log.append_batches(batch(pid, 0, tag=b"x" * 100))
        log.append_control(pid, 0, commit=pid % 3 != 0, coordinator_epoch=0)
    log.append_batches(batch(50, 0))
    before = (log.aborted_transactions(0, log.end_offset), log.open_transactions(), log.producer_states())
    assert log.segment_count > 2 and before[0]
    log.close()
    for index in (tmp_path / "log").glob("*.txnindex"):
        if damage == "delete":
            index.unlink()
        elif damage == "garbage":
            index.write_bytes(index.read_bytes() + b"\x01")
        else:
            index.write_bytes(b"")
    if damage == "unclean":  # everything beyond the recovery point is rebuilt
        (tmp_path / "log" / CLEAN_SHUTDOWN).unlink()
        (tmp_path / "log" / "recovery-point").write_text("0\n")
    log = Log.open(tmp_path / "log")
    assert (
        log.aborted_transactions(0, log.end_offset),
        log.open_transactions(),
        log.producer_states(),
    ) == before
    log.close()


def test_an_old_snapshot_loads_and_means_no_transactions(tmp_path: Path) -> None:
    log = Log.open(tmp_path / "log")
    log.append_batches(batch(7, 0, 2, txn=False))
    log.close()
    directory = tmp_path / "log"
    state = ProducerStateManager()
    state.update(7, 0, 0, 1, 0, 1, 1)
    entry = state.entries[7]
    old = struct.pack(">8sqI", b"JKPS0001", 2, 1) + struct.pack(">qhB", 7, 0, 1)
    old += struct.pack(">iiqqq", *entry.batches[0])
    (directory / PRODUCER_STATE_FILE).write_bytes(old + struct.pack(">I", crc32c(old)))
    for index in directory.glob("*.txnindex"):
        index.unlink()
    log = Log.open(directory)
    assert log.producer_states()[0].last_sequence == 1
    assert log.aborted_transactions(0, 10) == []
    assert log.append_batches(batch(7, 0, 2, txn=False)).duplicate
    log.close()


def test_snapshot_round_trip_keeps_open_transactions() -> None:
    state = ProducerStateManager()
    state.update(7, 3, 0, 4, 10, 14, 99, transactional=True)
    state.end_txn(8, 1, 6, 20, 100)
    offset, copy = decode_snapshot(encode_snapshot(state, 21)) or (0, ProducerStateManager())
    assert offset == 21
    assert copy.ongoing == {7: 10}
    assert copy.entries[8].coordinator_epoch == 6 and copy.entries[8].last_timestamp == 100
    assert copy.entries[7].txn_first_offset == 10


def test_retention_deletes_a_segments_transaction_index(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log", segment_bytes=1024, retention_bytes=1)
    log.append_batches(batch(1, 0, tag=b"x" * 300))
    log.append_control(1, 0, commit=False, coordinator_epoch=0)
    while log.segment_count < 3:
        log.append([Record(b"y" * 300)])
    first = tmp_path / "log" / "00000000000000000000.txnindex"
    assert first.stat().st_size == 34
    log.enforce_retention()
    assert not first.exists()
    assert log.aborted_transactions(log.start_offset, log.end_offset) == []
    assert sorted(p.stem for p in (tmp_path / "log").glob("*.txnindex")) == sorted(
        p.stem for p in segment_files(tmp_path / "log")
    )
    log.close()


def test_compaction_stops_at_the_first_unstable_offset_and_drops_aborted_records(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log", segment_bytes=1024, cleanup_policy="compact")
    log.append_batches(batch(1, 0, key=b"k", tag=b"aborted" + b"x" * 100))
    log.append_control(1, 0, commit=False, coordinator_epoch=0)
    log.append([Record(b"old" + b"x" * 100, key=b"j")])
    while log.segment_count < 2:
        log.append([Record(b"y" * 200, key=b"y")])
    log.append_batches(batch(2, 0, key=b"j", tag=b"open" + b"x" * 100))  # open: may still abort
    unstable = log.first_unstable_offset
    while log.segment_count < 4:
        log.append([Record(b"z" * 200, key=b"z")])
    log.compact()
    assert log.first_unstable_offset == unstable
    kept = read_sparse(log)
    got = [r.value for r in kept if r.key in (b"k", b"j")]
    assert got[0] == b"old" + b"x" * 100  # not superseded by the open transaction's record
    assert not any(v and v.startswith(b"aborted") for v in got)
    assert any(v and v.startswith(b"open") for v in got)
    # the marker stays, and the abort stays listed
    assert log.aborted_transactions(0, 2) == [AbortedTxn(1, 0, 1)]
    markers = [h for p, h in iter_batches(log.read(0).data) if h.attributes & CONTROL]
    assert markers and markers[0].base_offset == 1
    segments = segment_files(tmp_path / "log")
    assert int(segments[1].stem) <= unstable  # the open transaction's segment was not cleaned
    log.close()
    log = Log.open(tmp_path / "log")
    assert log.aborted_transactions(0, 2) == [AbortedTxn(1, 0, 1)]
    assert log.first_unstable_offset == unstable
    log.close()


# -- a model ---------------------------------------------------------------------------------------


@dataclass
class Model:
    """What the log should say: open transactions, aborted ones, every record with its fate."""

    end: int = 0
    open: dict[int, int] = field(default_factory=dict)  # pid -> first offset
    aborted: list[AbortedTxn] = field(default_factory=list)
    records: list[tuple[int, int, bytes, bool]] = field(default_factory=list)  # offset, pid, value, txn
    seq: dict[int, int] = field(default_factory=dict)

    def data(self, pid: int, n: int, txn: bool, tag: bytes) -> bytearray | None:
        if not txn and pid in self.open:
            return None  # refused
        seq = self.seq.get(pid, 0)
        data = encode_batch(
            [Record(tag + b"%d" % i, timestamp=1) for i in range(n)],
            producer_id=pid,
            producer_epoch=0,
            base_sequence=seq,
            attributes=TRANSACTIONAL if txn else 0,
        )
        for i in range(n):
            self.records.append((self.end + i, pid, tag + b"%d" % i, txn))
        if txn:
            self.open.setdefault(pid, self.end)
        self.seq[pid] = seq + n
        self.end += n
        return data

    def marker(self, pid: int, commit: bool) -> None:
        first = self.open.pop(pid, self.end)
        if not commit:
            self.aborted.append(AbortedTxn(pid, first, self.end))
        self.end += 1

    @property
    def lso(self) -> int:
        return min(self.open.values(), default=self.end)

    def committed(self) -> list[bytes]:
        def hidden(offset: int, pid: int) -> bool:
            return any(
                a.producer_id == pid and a.first_offset <= offset <= a.last_offset for a in self.aborted
            )

        return [v for o, pid, v, txn in self.records if o < self.lso and not (txn and hidden(o, pid))]


def check(log: Log, model: Model) -> None:
    assert log.end_offset == model.end
    assert log.last_stable_offset() == model.lso
    assert log.first_unstable_offset == (model.lso if model.open else None)
    assert {t.producer_id: t.first_offset for t in log.open_transactions()} == model.open
    assert log.aborted_transactions(0, model.end + 1) == model.aborted
    got: list[bytes | None] = []
    offset = 0
    while True:
        chunk = log.read_records(offset, 200, committed_only=True)
        if not chunk:
            break
        got.extend(r.value for r in chunk)
        offset = chunk[-1].offset + 1
    assert got == model.committed()
    # the Fetch view: each aborted transaction overlapping a window
    for start in range(0, model.end, 7):
        expected = [a for a in model.aborted if a.last_offset >= start and a.first_offset < start + 5]
        assert log.aborted_transactions(start, start + 5) == expected


ops = st.lists(
    st.one_of(
        st.tuples(st.just("data"), st.integers(1, 3), st.integers(1, 4), st.booleans()),
        st.tuples(st.just("end"), st.integers(1, 3), st.booleans()),
        st.tuples(st.just("plain"), st.integers(1, 3)),
        st.tuples(st.just("reopen"), st.sampled_from(["clean", "unclean", "lose-index"])),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops)
def test_interleaved_transactions_match_the_model(
    tmp_path_factory: pytest.TempPathFactory, ops: list
) -> None:  # type: ignore[type-arg]
    directory = tmp_path_factory.mktemp("txn") / "log"
    log = open_log(directory, segment_bytes=1024)
    model = Model()
    try:
        for op in ops:
            if op[0] == "data":
                _, pid, n, txn = op
                data = model.data(pid, n, txn, b"p" * 40)
                if data is None:
                    seq = model.seq.get(pid, 0)
                    with pytest.raises(InvalidTxnStateError):
                        log.append_batches(batch(pid, seq, n, txn=False))
                else:
                    log.append_batches(data)
            elif op[0] == "end":
                _, pid, commit = op
                log.append_control(pid, 0, commit=commit, coordinator_epoch=0)
                model.marker(pid, commit)
            elif op[0] == "plain":
                log.append([Record(b"plain%d" % model.end, timestamp=1)])
                model.records.append((model.end, -1, b"plain%d" % model.end, False))
                model.end += 1
            else:
                if op[1] == "clean":
                    log.close()
                elif op[1] == "unclean":
                    log.flush()
                    shutil.rmtree(directory.with_name("copy"), ignore_errors=True)
                    crash_copy(log, directory.with_name("copy"))
                    shutil.move(directory.with_name("copy"), directory)
                else:
                    log.close()
                    for index in directory.glob("*.txnindex"):
                        index.unlink()
                log = Log.open(directory, log.config)
            check(log, model)
    finally:
        log.close()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops, cut=st.floats(0, 1), which=st.floats(0, 1))
def test_restart_after_a_torn_file_recovers_a_consistent_state(
    tmp_path_factory: pytest.TempPathFactory,
    ops: list,  # type: ignore[type-arg]
    cut: float,
    which: float,
) -> None:
    directory = tmp_path_factory.mktemp("torn") / "log"
    log = open_log(directory, segment_bytes=1024)
    steps: list[tuple[int, tuple[object, ...]]] = []  # (end offset after the op, op)
    model = Model()
    for op in ops:
        if op[0] == "data":
            data = model.data(op[1], op[2], op[3], b"q" * 40)
            if data is not None:
                log.append_batches(data)
                steps.append((model.end, op))
        elif op[0] == "end":
            log.append_control(op[1], 0, commit=op[2], coordinator_epoch=0)
            model.marker(op[1], op[2])
            steps.append((model.end, op))
    log.close()
    # tear one segment file and lose everything after it, as a crash before any fsync would
    segments = segment_files(directory)
    i = int(which * (len(segments) - 1))
    victim = segments[i]
    size = victim.stat().st_size
    with victim.open("r+b") as f:
        f.truncate(int(size * cut))
    for later in segments[i + 1 :]:
        for path in directory.glob(later.stem + ".*"):
            path.unlink()
    (directory / CLEAN_SHUTDOWN).unlink()
    (directory / "recovery-point").write_text("0\n")
    log = Log.open(directory, log.config)
    try:
        survived = log.end_offset
        replay = Model()
        for end, op in steps:
            if end > survived:
                break
            if op[0] == "data":
                replay.data(op[1], op[2], op[3], b"q" * 40)  # type: ignore[arg-type]
            else:
                replay.marker(op[1], op[2])  # type: ignore[arg-type]
        assert replay.end == survived
        check(log, replay)
    finally:
        log.close()


def test_a_lost_tail_reopens_the_transaction_its_marker_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = open_log(tmp_path / "log")
    log.append_batches(batch(1, 0))
    log.flush()
    log.append_control(1, 0, commit=False, coordinator_epoch=0)
    log.append_batches(batch(2, 0))
    assert log.aborted_transactions(0, 3) == [AbortedTxn(1, 0, 1)]

    def disk_full(fd: int, data: memoryview, offset: int) -> int:
        del data  # no reference to the caller's buffer may outlive the call
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(segment_module.os, "pwrite", disk_full)
        with pytest.raises(StorageError):
            log.flush()
    assert log.end_offset == 1
    assert log.open_transactions() == [OpenTxn(1, 0, 0)]
    assert log.aborted_transactions(0, 3) == []
    assert (tmp_path / "log" / "00000000000000000000.txnindex").read_bytes() == b""
    log.append_control(1, 0, commit=True, coordinator_epoch=0)
    assert values(log.read_records(0, committed_only=True)) == [b"v1-0"]
    log.close()
    log = Log.open(tmp_path / "log")
    assert log.aborted_transactions(0, 3) == [] and log.last_stable_offset() == 2
    log.close()


compaction_ops = st.lists(
    st.one_of(
        st.tuples(st.just("data"), st.integers(1, 3), st.sampled_from([b"a", b"b", b"c"]), st.booleans()),
        st.tuples(st.just("end"), st.integers(1, 3), st.booleans()),
        st.tuples(st.just("compact")),
        st.tuples(st.just("reopen")),
    ),
    max_size=50,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=compaction_ops)
def test_compaction_keeps_the_latest_committed_value_of_each_key(
    tmp_path_factory: pytest.TempPathFactory,
    ops: list,  # type: ignore[type-arg]
) -> None:
    """Whatever the interleaving, a read_committed reader of a compacted log sees, for each key,
    the latest value it would have seen without compaction, and never an aborted one."""
    directory = tmp_path_factory.mktemp("ctxn") / "log"
    config = {"segment_bytes": 1024, "cleanup_policy": "compact"}
    log = open_log(directory, **config)
    model = Model()
    keys: dict[int, bytes] = {}  # offset -> key of each data record
    try:
        for n, op in enumerate(ops):
            if op[0] == "data":
                _, pid, key, txn = op
                if not txn and pid in model.open:
                    continue
                seq = model.seq.get(pid, 0)
                value = b"%s-%d-" % (key, n) + b"x" * 60
                data = encode_batch(
                    [Record(value, key=key, timestamp=1)],
                    producer_id=pid,
                    producer_epoch=0,
                    base_sequence=seq,
                    attributes=TRANSACTIONAL if txn else 0,
                )
                keys[model.end] = key
                model.records.append((model.end, pid, value, txn))
                if txn:
                    model.open.setdefault(pid, model.end)
                model.seq[pid] = seq + 1
                model.end += 1
                log.append_batches(data)
            elif op[0] == "end":
                log.append_control(op[1], 0, commit=op[2], coordinator_epoch=0)
                model.marker(op[1], op[2])
            elif op[0] == "compact":
                log.compact(now=1 << 50)
            else:
                log.close()
                log = open_log(directory, **config)
            latest: dict[bytes, bytes] = {}
            for value in model.committed():
                latest[value[:1]] = value
            got: dict[bytes, bytes] = {}
            offset = 0
            while chunk := log.read_records(offset, 300, committed_only=True):
                for record in chunk:
                    assert record.key is not None and record.value is not None
                    assert record.value in model.committed()  # nothing aborted, nothing open
                    got[record.key] = record.value
                offset = chunk[-1].offset + 1
            assert got == latest
            assert log.last_stable_offset() == model.lso
            assert log.aborted_transactions(0, model.end + 1) == model.aborted
    finally:
        log.close()


@pytest.mark.parametrize("stage", ["swap-renamed", "olds-deleted", "index-written"])
def test_a_crash_in_a_compaction_swap_keeps_the_aborted_transactions(tmp_path: Path, stage: str) -> None:
    from jackalope.storage.compaction import swap_path

    log = open_log(tmp_path / "log", segment_bytes=1024, cleanup_policy="compact")
    for n in range(30):
        log.append_batches(batch(n % 3 + 1, n // 3, key=b"k%d" % (n % 4), tag=b"x" * 60))
        if n % 3 == 2:
            for pid in (1, 2, 3):
                log.append_control(pid, 0, commit=pid != n % 4 + 1, coordinator_epoch=0)
    aborted = log.aborted_transactions(0, log.end_offset)
    committed = [(r.key, r.value) for r in read_committed(log)]
    assert aborted and log.segment_count > 3
    job = log.begin_compaction(now=1 << 50)
    assert job is not None
    job.run()
    assert job.outputs
    copy = crash_copy(log, tmp_path / "copy")
    for out in job.outputs:
        first, last = out.segments[0].base_offset, out.segments[-1].base_offset
        swap = swap_path(copy, first, last)
        (copy / out.path.name).rename(swap)
        if stage != "swap-renamed":
            for view in out.segments:
                for path in copy.glob(f"{view.base_offset:020d}.*"):
                    path.unlink()
        if stage == "index-written":  # as _swap_in writes it, before the final rename
            (copy / f"{first:020d}.txnindex").write_bytes(b"")
    log = Log.open(copy)
    # The swapped segment's index is rebuilt: an abort whose first records compaction removed
    # now starts at the first one left (or at its marker), which hides the same records.
    rebuilt = log.aborted_transactions(0, log.end_offset)
    assert [(a.producer_id, a.last_offset) for a in rebuilt] == [
        (a.producer_id, a.last_offset) for a in aborted
    ]
    assert all(new.first_offset >= old.first_offset for new, old in zip(rebuilt, aborted, strict=True))
    latest = dict(committed)
    assert {r.key: r.value for r in read_committed(log)} == latest
    log.close()
