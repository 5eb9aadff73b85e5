"""The custom-strategy example of docs/agents.md runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "agents.md"


def test_custom_strategy_example_runs(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    (example,) = [b for b in blocks if "class QueueWatch" in b]
    script = tmp_path / "example.py"
    script.write_text(example)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "queue too deep succeeded {'paged': 'queue at 250'}"


def test_label_feed_example_runs(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    (example,) = [b for b in blocks if "labels" in b and "JsonlFeed" in b]
    script = tmp_path / "labels.py"
    script.write_text(example)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[7, 3] {'reviewers': 86}"


def test_every_option_of_the_built_in_strategies_is_documented() -> None:
    from scanflow.agents.strategies.autoscale import LatencyAutoscale
    from scanflow.agents.strategies.drift_retrain import DriftRetrain
    from scanflow.agents.strategies.failover import Failover

    text = DOC.read_text()
    for strategy in (DriftRetrain, LatencyAutoscale, Failover):
        table = text.split(f"**{strategy.name}**\n\n| option |", 1)[1].split("\n\n", 1)[0]
        rows = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
        documented = {name.strip(" `") for row in rows for name in row.split(",")}
        assert documented == set(strategy.Config.model_fields), strategy.name
