"""examples/amqp_patterns.py runs against the broker and shows what it says it shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "amqp_patterns.py"


def test_patterns_example(amqp_url: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), amqp_url], capture_output=True, text=True, timeout=60, check=True
    )
    out = result.stdout
    assert "alice     ['hello alice']" in out
    assert "payments  ['order 42 paid']" in out and "auth      []" in out
    assert out.count("['maintenance at noon']") == 3
    assert "worker-1  ['job 0', 'job 2']" in out and "worker-2  ['job 1', 'job 3']" in out
    assert "item 2: refused, buffer full" in out
