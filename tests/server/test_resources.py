"""The resource monitor: RabbitMQ's size units and limit forms, refused when wrong, and alarms
raised and cleared from real measurements of this process."""

from __future__ import annotations

from pathlib import Path

import pytest

from jackalope import resources
from jackalope.core.alarms import DISK, MEMORY, Alarms
from jackalope.resources import Limit, ResourceMonitor, parse_disk_limit, parse_memory_watermark, parse_size
from jackalope.settings import Settings, SettingsError


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1024", 1024),
        ("512MiB", 512 * 1024**2),
        ("512M", 512 * 1024**2),
        ("2G", 2 * 1024**3),
        ("4k", 4096),
        ("4kiB", 4096),
        ("50MB", 50_000_000),
        ("1GB", 1_000_000_000),
        ("3kB", 3000),
        ("1.5GiB", 3 * 1024**3 // 2),
        (" 7 TB ", 7 * 10**12),
    ],
)
def test_sizes_in_rabbitmq_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MB", "12 parsecs", "-5MB", "1e9", "0x10"])
def test_what_is_not_a_size(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_limit_forms() -> None:
    assert parse_memory_watermark("0.4") == Limit(relative=0.4)
    assert parse_memory_watermark("512MiB") == Limit(absolute=512 * 1024**2)
    assert parse_disk_limit("50MB") == Limit(absolute=50_000_000)
    assert parse_disk_limit("mem_relative:1.5") == Limit(relative=1.5)
    assert parse_disk_limit("mem_relative=2") == Limit(relative=2.0)
    assert Limit(relative=0.5).bytes(1000) == 500
    with pytest.raises(ValueError):
        parse_memory_watermark("1.5")  # a fraction of memory is at most 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("memory_high_watermark", "lots"),
        ("memory_high_watermark", "2.0"),
        ("disk_free_limit", "mem_relative"),
    ],
)
def test_settings_refuse_bad_limits(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings(**{name: value})  # type: ignore[arg-type]


def test_the_monitor_measures_this_process(tmp_path: Path) -> None:
    alarms = Alarms()
    used = resources.resident_memory()
    assert used > 10 * 1024**2
    low = ResourceMonitor(alarms, tmp_path, Limit(absolute=used // 2), Limit(absolute=0))
    low.check()
    assert alarms.active == (MEMORY,)
    roomy = ResourceMonitor(alarms, tmp_path, Limit(relative=1.0), Limit(absolute=0))
    roomy.check()
    assert alarms.active == ()
    free = resources.free_disk(tmp_path)
    full = ResourceMonitor(alarms, tmp_path, Limit(relative=1.0), Limit(absolute=free * 2))
    full.check()
    assert alarms.active == (DISK,) and full.disk_free > 0
    assert full.next_check() == resources.MIN_INTERVAL  # below the limit: look often
    assert roomy.next_check() <= resources.INTERVAL
    assert resources.machine_memory() > 0 and roomy.memory_limit == roomy.machine_memory
