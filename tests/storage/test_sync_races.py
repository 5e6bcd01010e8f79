"""Group commit racing deletions: a segment deleted or truncated away while its fsync is in
flight is synced as it was (the job holds descriptors of its own), and the log never fails."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from storage_helpers import open_log

from jackalope.storage import Durability, LogConfig, LogManager, Record

GUARD = 30  # seconds: a hang guard, not a timing assertion


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_job_outlives_the_segments_it_syncs(tmp_path: Path) -> None:
    log = open_log(tmp_path / "q", segment_bytes=2048)
    for i in range(40):
        log.append([Record(b"%04d" % i + b"." * 100)])
    job = log.begin_sync(acks=True)
    assert job is not None and len(job.fds) >= 2
    log.settle_range(0, 40)  # every rolled segment goes, their descriptors closed
    log.truncate_prefix(40)
    assert log.segment_count == 1
    fd = os.open(tmp_path / "other", os.O_RDWR | os.O_CREAT)  # reuses a freed number
    try:
        job.run()
        log.end_sync(job, None)
    finally:
        os.close(fd)
    assert log.failed is None
    assert log.durable_offset == 40
    log.append([Record(b"after")])
    log.close()


def test_a_job_for_a_deleted_log_is_harmless(tmp_path: Path) -> None:
    log = open_log(tmp_path / "q")
    log.append([Record(b"x")])
    before = open_fds()
    job = log.begin_sync()
    assert job is not None
    log.delete()
    job.run()  # the directory is gone too
    log.end_sync(job, None)
    assert log.failed is None
    assert open_fds() <= before  # the job closed its descriptors


async def test_group_commits_racing_settlements_never_fail_the_log(tmp_path: Path) -> None:
    """Appends, syncs on the worker thread and settlements that delete segments, interleaved
    for many iterations (the settling consumer keeps up, so segments go while being synced)."""
    manager = LogManager(tmp_path / "logs", LogConfig(segment_bytes=4096, durability=Durability.ALWAYS))
    manager.open()
    await manager.start()
    try:
        log = manager.create("queue/race")
        settled = 0
        for round_ in range(300):
            info = log.append([Record(b"%05d" % round_ + b"." * 300) for _ in range(3)])
            durable = asyncio.ensure_future(manager.wait_durable(log, info.last_offset))
            await asyncio.sleep(0)  # the flush runs and the sync starts
            while settled <= info.last_offset - 1:  # a consumer one message behind
                log.settle(settled)
                settled += 1
            await asyncio.wait_for(durable, GUARD)
            assert log.failed is None
        assert log.segment_count <= 2
    finally:
        await manager.close()
