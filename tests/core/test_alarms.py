"""Alarms: set and cleared per resource, RabbitMQ's reasons, listeners told once per change."""

from __future__ import annotations

import logging

import pytest

from jackalope.core.alarms import DISK, MEMORY, Alarms


def test_each_change_is_told_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    alarms = Alarms()
    heard: list[tuple[str, ...]] = []
    alarms.subscribe(lambda: heard.append(alarms.active))
    caplog.set_level(logging.WARNING, logger="jackalope.core.alarms")
    assert not alarms.blocking and alarms.reason() == ""
    assert alarms.set(MEMORY, True, "rss 600 MiB")
    assert not alarms.set(MEMORY, True, "rss 610 MiB")  # no change: nobody told, nothing logged
    assert alarms.set(DISK, True)
    assert alarms.reason() == "low on memory and disk" and alarms.blocking
    assert alarms.set(MEMORY, False)
    assert alarms.reason() == "low on disk"
    assert alarms.set(DISK, False)
    assert heard == [(MEMORY,), (MEMORY, DISK), (DISK,), ()]
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "memory alarm set",
        "disk alarm set",
        "memory alarm cleared",
        "disk alarm cleared",
    ]


def test_a_broken_listener_does_not_silence_the_others() -> None:
    alarms = Alarms()
    heard: list[bool] = []

    def broken() -> None:
        raise RuntimeError("boom")

    alarms.subscribe(broken)
    alarms.subscribe(lambda: heard.append(alarms.blocking))
    alarms.set(DISK, True)
    alarms.unsubscribe(broken)
    alarms.unsubscribe(broken)  # twice is harmless
    alarms.set(DISK, False)
    assert heard == [True, False]


def test_unknown_resources_are_refused() -> None:
    with pytest.raises(ValueError):
        Alarms().set("cpu", True)
