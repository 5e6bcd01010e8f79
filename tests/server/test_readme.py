"""The README's Python examples are valid Python, and the embedded-broker one runs as written
(it once had ``async with`` outside a function)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.parametrize("block", BLOCKS, ids=[b.splitlines()[0][:40] for b in BLOCKS])
def test_every_python_example_compiles(block: str) -> None:
    compile(block, "README.md", "exec")


def test_the_embedded_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (example,) = [b for b in BLOCKS if "from jackalope import Broker" in b and "asyncio.run" in b]
    script = tmp_path / "example.py"
    script.write_text(example)
    monkeypatch.chdir(tmp_path)  # its data_dir="data" lands here
    runpy.run_path(str(script), run_name="__main__")
    assert (tmp_path / "data" / "logs").is_dir()
