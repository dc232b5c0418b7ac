"""README's "Use from Python" example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_example() -> str:
    text = README.read_text()
    section = text[text.index("## Use from Python"):]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README has no Python example in 'Use from Python'"
    return match.group(1)


def test_use_from_python_example_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    rng = np.random.default_rng(3)
    n = 400
    r, phi, z = rng.uniform(0.03, 1.0, n), rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    event = tmp_path / "evt_1.csv"
    np.savetxt(event, np.stack([r, phi, z], axis=1), delimiter=",", fmt="%.6f")
    exec(compile(python_example(), str(README), "exec"), {"EVENT_FILE": event})
    out = capsys.readouterr().out
    assert "400 hits" in out
    assert "edges after build, filter, gnn:" in out
    assert "refused:" in out and "[N, 3]" in out
