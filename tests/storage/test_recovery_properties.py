"""Property tests of a log against a model: any mix of operations, reopens and crashes."""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)
from storage_helpers import batches_in, crash_copy, read_all, read_sparse, records, segment_files, stored

from jackalope.storage import Durability, Log, LogConfig, OffsetOutOfRangeError, Record
from jackalope.storage.compression import GZIP, NONE
from jackalope.storage.records import encode_batch, iter_batches

# -- (a) a stateful model -------------------------------------------------------------------------


class LogMachine(RuleBasedStateMachine):
    """A log and a model of it: ``start``, ``end`` and the records in between.

    A crash keeps what the OS has: everything below ``flushed_offset`` at the time, and possibly
    more (segment rolls and a full write buffer write without a flush), but always a prefix.
    """

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="jackalope-model-"))
        self.generation = 0
        self.log: Log | None = None
        self.config = LogConfig()
        self.model: dict[int, Record] = {}
        self.start = 0
        self.end = 0
        self.clock = 1_000_000
        self.reported_durable = -1  # the highest offset a when_durable callback confirmed
        self.violations: list[str] = []

    @property
    def directory(self) -> Path:
        return self.root / f"log-{self.generation}"

    @initialize(
        segment_bytes=st.integers(1024, 4096),
        retention_bytes=st.integers(1024, 12_000),
        durability=st.sampled_from(list(Durability)),
        index_interval_bytes=st.sampled_from([1, 300, 4096]),
    )
    def open(
        self, segment_bytes: int, retention_bytes: int, durability: Durability, index_interval_bytes: int
    ) -> None:
        self.config = LogConfig(
            segment_bytes=segment_bytes,
            retention_bytes=retention_bytes,
            retention_ms=-1,
            durability=durability,
            index_interval_bytes=index_interval_bytes,
        )
        self.log = Log.open(self.directory, self.config)

    def teardown(self) -> None:
        try:
            if self.log is not None:
                self.log.close()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def the_log(self) -> Log:
        assert self.log is not None
        return self.log

    def _on_durable(self, log: Log, offset: int):  # type: ignore[no-untyped-def]
        def callback(error: BaseException | None) -> None:
            if error is not None:
                return
            if offset >= log.durable_offset:
                self.violations.append(f"{offset} reported durable below {log.durable_offset}")
            self.reported_durable = max(self.reported_durable, offset)

        return callback

    # -- rules -------------------------------------------------------------------------------

    @rule(batch=st.lists(records(max_value=300), min_size=1, max_size=5), tick=st.integers(0, 50))
    def append(self, batch: list[Record], tick: int) -> None:
        log = self.the_log
        self.clock += tick
        info = log.append(batch, timestamp=self.clock)
        assert info.base_offset == self.end
        assert info.last_offset == self.end + len(batch) - 1
        for i, record in enumerate(batch):
            self.model[self.end + i] = stored(record, self.end + i, self.clock)
        self.end += len(batch)
        log.when_durable(info.last_offset, self._on_durable(log, info.last_offset))

    @rule(
        batches=st.lists(st.lists(records(max_value=200), min_size=1, max_size=3), min_size=1, max_size=3),
        codec=st.sampled_from([NONE, GZIP]),
        client_base=st.integers(-5, 10**6),
    )
    def append_client_batches(self, batches: list[list[Record]], codec: int, client_base: int) -> None:
        """Batches encoded by a client (a Kafka producer): the log assigns their offsets."""
        log = self.the_log
        data = bytearray()
        for batch in batches:
            data += encode_batch(batch, base_offset=client_base, now_ms=self.clock, compression=codec)
        info = log.append_batches(data)
        flat = [record for batch in batches for record in batch]
        assert (info.base_offset, info.last_offset) == (self.end, self.end + len(flat) - 1)
        for i, record in enumerate(flat):
            self.model[self.end + i] = stored(record, self.end + i, self.clock)
        self.end += len(flat)
        log.when_durable(info.last_offset, self._on_durable(log, info.last_offset))

    @rule()
    def flush(self) -> None:
        log = self.the_log
        log.flush()
        assert log.flushed_offset == self.end
        if self.config.durability is Durability.NEVER:
            assert log.start_offset <= log.durable_offset == self.end

    @rule()
    def sync(self) -> None:
        log = self.the_log
        log.sync()
        assert log.start_offset <= log.durable_offset == log.flushed_offset == self.end
        assert not log.needs_sync()

    @rule(data=st.data(), max_bytes=st.sampled_from([1, 150, 1000, 1 << 20]))
    def read(self, data: st.DataObject, max_bytes: int) -> None:
        log = self.the_log
        offset = data.draw(st.integers(self.start, self.end), label="offset")
        got = log.read_records(offset, max_bytes)
        if offset == self.end:
            assert got == []
            return
        assert got, offset
        assert got == [self.model[o] for o in range(offset, offset + len(got))]
        result = log.read(offset, max_bytes)
        assert result.next_offset == got[-1].offset + 1
        assert sum(h.size for _, h in iter_batches(result.data)) == len(result.data)
        for bad in (self.start - 1, self.end + 1):
            if bad >= 0:
                try:
                    log.read(bad)
                except OffsetOutOfRangeError:
                    pass
                else:
                    raise AssertionError(f"read({bad}) outside [{self.start}, {self.end}] succeeded")

    @rule(data=st.data())
    def truncate_prefix(self, data: st.DataObject) -> None:
        log = self.the_log
        offset = data.draw(st.integers(self.start, self.end + 3), label="offset")
        log.truncate_prefix(offset)
        self.start = max(self.start, min(offset, self.end))
        assert log.start_offset == self.start
        self._forget_below_start()

    @rule()
    def enforce_retention(self) -> None:
        log = self.the_log
        before = log.segment_count
        deleted = log.enforce_retention()
        assert log.segment_count == before - deleted >= 1
        if deleted:
            assert log.start_offset > self.start
            assert log.start_offset == int(segment_files(log.directory)[0].stem)
        assert log.start_offset >= self.start
        self.start = log.start_offset
        self._forget_below_start()

    @rule()
    def clean_reopen(self) -> None:
        self.the_log.close()
        self.log = log = Log.open(self.directory, self.config)
        assert (log.start_offset, log.end_offset) == (self.start, self.end)
        assert log.durable_offset == log.flushed_offset == self.end

    @rule()
    def unclean_reopen(self) -> None:
        old = self.the_log
        flushed, end, start = old.flushed_offset, old.end_offset, old.start_offset
        old_directory = self.directory
        self.generation += 1
        self.log = None
        log = Log.open(crash_copy(old, self.directory), self.config)
        self.log = log
        assert not old_directory.exists()
        new_end = log.end_offset
        # Everything the OS had survives, and what survives is a prefix of what was appended.
        assert max(flushed, start) <= new_end <= max(end, start), (flushed, new_end, end)
        assert self.reported_durable < max(new_end, start), "a record reported durable was lost"
        assert log.start_offset == start
        assert log.durable_offset == log.flushed_offset == new_end
        self.end = new_end
        for offset in [o for o in self.model if o >= new_end]:
            del self.model[offset]

    def _forget_below_start(self) -> None:
        for offset in [o for o in self.model if o < self.start]:
            del self.model[offset]

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def marks_are_ordered(self) -> None:
        if self.log is None:
            return
        log = self.log
        marks = (log.start_offset, log.durable_offset, log.flushed_offset, log.end_offset)
        assert (log.start_offset, log.end_offset) == (self.start, self.end)
        # start <= durable holds except right after truncate_prefix or retention deleted records
        # that were not durable yet; the next sync (or flush, under ``never``) catches up.
        assert log.durable_offset <= log.flushed_offset <= log.end_offset, marks
        assert log.start_offset <= log.end_offset, marks
        assert not self.violations, self.violations

    @invariant()
    def reads_match_the_model(self) -> None:
        if self.log is None:
            return
        assert read_all(self.log) == [self.model[o] for o in range(self.start, self.end)]


LogMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestLogMachine = LogMachine.TestCase


# -- (b) damage to the last segment ---------------------------------------------------------------

damage = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("garbage"), st.binary(min_size=1, max_size=200)),
    st.tuples(st.just("zeros"), st.integers(1, 200)),
    st.tuples(st.just("flip"), st.floats(0, 1)),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batches=st.lists(
        st.tuples(
            st.lists(records(max_value=200), min_size=1, max_size=4), st.sampled_from(["", "flush", "sync"])
        ),
        min_size=1,
        max_size=25,
    ),
    segment_bytes=st.integers(1024, 3000),
    harm=damage,
)
def test_damaged_tail_recovers_to_the_last_whole_batch(
    batches: list[tuple[list[Record], str]], segment_bytes: int, harm: tuple[str, object]
) -> None:
    with tempfile.TemporaryDirectory(prefix="jackalope-damage-") as tmp:
        root = Path(tmp)
        config = LogConfig(segment_bytes=segment_bytes, index_interval_bytes=200)
        log = Log.open(root / "log", config)
        model: list[Record] = []
        for i, (batch, then) in enumerate(batches):
            info = log.append(batch, timestamp=1_000 + i)
            model += [stored(r, info.base_offset + j, 1_000 + i) for j, r in enumerate(batch)]
            if then == "flush":
                log.flush()
            elif then == "sync":
                log.sync()
        log.flush()
        directory = crash_copy(log, root / "crashed")

        last = segment_files(directory)[-1]
        raw = last.read_bytes()
        whole = batches_in(last)
        assert sum(1 for _ in whole) == 0 or whole[-1][2] == len(model)
        base = int(last.stem)
        kind, arg = harm
        ends = {pos: pos + _size(whole, pos, raw) for pos, _, _ in whole}
        if kind == "truncate":
            assert isinstance(arg, float)
            cut = int(len(raw) * arg)
            os.truncate(last, cut)
            kept = [(ends[pos], nxt) for pos, _, nxt in whole if ends[pos] <= cut]
            valid_bytes, intact = kept[-1] if kept else (0, base)
        elif kind in ("garbage", "zeros"):  # zeros: a torn write that extended the file only
            junk = arg if isinstance(arg, bytes) else b"\x00" * int(arg)  # type: ignore[call-overload]
            with last.open("ab") as f:
                f.write(junk)
            valid_bytes, intact = len(raw), len(model)
        else:
            assert isinstance(arg, float)
            if not raw:
                return
            at = min(int(len(raw) * arg), len(raw) - 1)
            damaged = bytearray(raw)
            damaged[at] ^= 0x5A
            last.write_bytes(damaged)
            valid_bytes, intact, nxt = next((pos, b, n) for pos, b, n in whole if pos <= at < ends[pos])
            if 12 <= at - valid_bytes < 16:  # the partition leader epoch: not covered by the CRC
                valid_bytes, intact = len(raw), len(model)
            elif at - valid_bytes < 8:  # the base offset: not covered by the CRC either
                moved = struct.unpack_from(">q", damaged, valid_bytes)[0]
                if intact < moved and moved + nxt - intact - 1 - base <= 2**31 - 1:
                    # Moved ahead a little: a legal gap (compaction makes them), so the batch stays
                    # at its new offsets; the next batch now starts too early and is cut.
                    log = Log.open(directory, config)
                    try:
                        shifted = [r._replace(offset=moved + j) for j, r in enumerate(model[intact:nxt])]
                        assert log.end_offset == moved + nxt - intact
                        assert read_sparse(log) == model[:intact] + shifted
                        assert last.stat().st_size == ends[valid_bytes]
                    finally:
                        log.close()
                    return

        log = Log.open(directory, config)
        try:
            # Whole batches before the damage are intact, nothing after it is returned.
            assert log.end_offset == intact
            assert read_all(log) == model[:intact]
            assert read_all(log, max_bytes=1) == model[:intact]
            assert last.stat().st_size == valid_bytes
            # And the log goes on.
            info = log.append([Record(b"after", timestamp=5)])
            assert info.base_offset == intact
            assert log.read_records(intact) == [Record(b"after", timestamp=5, offset=intact)]
            log.close()
            log = Log.open(directory, config)
            assert read_all(log) == [*model[:intact], Record(b"after", timestamp=5, offset=intact)]
        finally:
            log.close()


def _size(whole: list[tuple[int, int, int]], pos: int, raw: bytes) -> int:
    """Bytes of the batch at ``pos`` (up to the next batch, or the end of the file)."""
    later = [p for p, _, _ in whole if p > pos]
    return (later[0] if later else len(raw)) - pos
