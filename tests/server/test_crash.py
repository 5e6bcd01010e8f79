"""SIGKILL a real `jackalope serve` in the middle of durable appends: every acknowledged
append must be intact after a restart."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiohttp

from tests.conftest import GUEST_AUTH, start_serve

GUEST = {"Authorization": GUEST_AUTH}

WRITERS = 16
KILL_AFTER_ACKS = 400


async def _appender(
    http: aiohttp.ClientSession, url: str, writer: int, acked: dict[int, str], stop: asyncio.Event
) -> None:
    n = 0
    while not stop.is_set():
        value = f"w{writer}-{n}-" + "x" * (n % 200)
        n += 1
        try:
            record = {"value": value, "key": f"w{writer}", "partition": 0}
            async with http.post(url, json={"records": [record]}) as resp:
                if resp.status != 200:
                    continue
                body = await resp.json()
        except (TimeoutError, aiohttp.ClientError):
            return  # the broker died under us: this append was never acknowledged
        acked[body["offsets"][0]["offset"]] = value
        if len(acked) >= KILL_AFTER_ACKS:
            stop.set()


async def _drive(url: str, pid: int) -> dict[int, str]:
    acked: dict[int, str] = {}
    stop = asyncio.Event()
    async with aiohttp.ClientSession(headers=GUEST, timeout=aiohttp.ClientTimeout(total=20)) as http:
        async with http.put(url.rsplit("/", 1)[0], json={}) as resp:
            assert resp.status in (201, 409)  # the second round finds the topic there
        tasks = [asyncio.create_task(_appender(http, url, w, acked, stop)) for w in range(WRITERS)]
        await stop.wait()
        os.kill(pid, signal.SIGKILL)  # with appends of the other writers still in flight
        await asyncio.gather(*tasks)
    return acked


def test_acknowledged_appends_survive_sigkill(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for round_ in range(2):  # the second round crashes a log that was already recovered once
        server = start_serve(data, "--durability", "always", "--segment-bytes", "65536")
        url = server.urls["http"] + "/api/kafka/topics/crash/records"
        acked = asyncio.run(_drive(url, server.proc.pid))
        assert server.proc.wait(10) == -signal.SIGKILL
        assert len(acked) >= KILL_AFTER_ACKS

        again = start_serve(data)
        try:
            records = again.urls["http"] + "/api/kafka/topics/crash/partitions/0/records"
            stored = asyncio.run(_read_all(records))
        finally:
            assert again.stop() == 0
        for offset, value in acked.items():
            assert stored.get(offset) == value, f"round {round_}: acknowledged offset {offset} lost"
        assert sorted(stored) == list(range(len(stored))), "offsets must stay dense"


async def _read_all(url: str) -> dict[int, str]:
    out: dict[int, str] = {}
    offset = 0
    async with aiohttp.ClientSession(headers=GUEST) as http:
        while True:
            async with http.get(url, params={"offset": str(offset), "limit": "1000"}) as resp:
                body = await resp.json()
            if not body["records"]:
                return out
            for record in body["records"]:
                out[record["offset"]] = record["value"]
            offset = body["next_offset"]
