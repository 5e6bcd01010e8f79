"""Producer ids stay unique across restarts, including crashes between reservations."""

from __future__ import annotations

from pathlib import Path

import pytest

from jackalope.core.producer_ids import ProducerIds


def test_ids_are_unique_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "producer-ids"
    first = ProducerIds(path)
    seen = {first.allocate() for _ in range(ProducerIds.BLOCK + 5)}
    # a restart (clean or not) continues after the last reserved block, never below it
    second = ProducerIds(path)
    again = {second.allocate() for _ in range(10)}
    assert len(seen) == ProducerIds.BLOCK + 5
    assert not seen & again
    assert min(again) == 2 * ProducerIds.BLOCK


def test_a_damaged_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "producer-ids"
    path.write_text("garbage")
    with pytest.raises(ValueError):
        ProducerIds(path)
