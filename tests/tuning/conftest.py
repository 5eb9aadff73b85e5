"""A tiny seeded workflow to tune: ``prep`` (no tuned parameter, so cached after the first
trial) then ``fit``, whose ``score`` at epoch k is ``x * (k + 1) / epochs`` (logged each
epoch, so its final value is ``x``)."""

from __future__ import annotations

import textwrap

import pytest

STEPS = """
import json
import time
from pathlib import Path

from scanflow import tracking


def prep(dataset):
    Path(dataset).write_text(json.dumps({"rows": 10}))


def fit(dataset, x, epochs, delay, log=True):
    json.loads(Path(dataset).read_text())
    for k in range(epochs):
        time.sleep(delay)  # the work of one epoch
        if log:
            tracking.log_metric("score", x * (k + 1) / epochs, step=k)
            tracking.flush()
    if log:
        tracking.log_metric("cost", 2 * x)
    if x < 0:
        raise SystemExit("negative x")
"""


def spec(study: str = "", epochs: int = 3, delay: float = 0.0) -> str:
    """``scanflow.yaml`` with the workflow ``train`` and the given ``tuning:`` text."""
    head = f"""
    name: tiny
    workflows:
      - name: train
        executors:
          - name: prep
            function: steps:prep
            outputs: [dataset]
          - name: fit
            function: steps:fit
            inputs: [prep.dataset]
            parameters: {{x: 0.5, epochs: {epochs}, delay: {delay}, log: true}}
    """
    return textwrap.dedent(head) + textwrap.dedent(study)


STUDY = """
tuning:
  - name: search
    workflow: train
    space:
      x: {type: float, low: 0.0, high: 1.0}
    objective: {metric: score, step: fit, direction: maximize}
    algorithm: random
    seed: 7
    pruner: {type: none}
    max_trials: 3
"""


@pytest.fixture
def tiny(make_project):
    """``tiny(study_yaml, epochs=..., delay=...)`` makes the project."""

    def make(study: str = STUDY, **options):
        return make_project(spec(study, **options), {"steps.py": STEPS})

    return make


def scanflow_cli(*args: str):
    """Run the ``scanflow`` command in its own process (its output is its own, whatever an
    earlier test did to this process's streams or logging)."""
    import subprocess
    import sys
    from pathlib import Path

    command = [str(Path(sys.executable).parent / "scanflow"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)
