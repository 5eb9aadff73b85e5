"""The examples in docs/monitoring.md run, in order, as written."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "monitoring.md"


def test_examples_run(capsys) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 4
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "False"
    assert out[1].startswith("True ['features'")
    assert out[-3:] == ["noise True", "rotation True", "brightness True"]
