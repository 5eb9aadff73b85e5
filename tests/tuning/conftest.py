"""A tiny seeded workflow to tune: ``prep`` (no tuned parameter, so cached after the first
trial) then ``fit``, whose ``score`` at epoch k is ``x * (k + 1) / epochs`` (logged each
epoch, so its final value is ``x``) and which logs a tiny model when ``model`` is true.

A trial costs about one step process importing MLflow (seconds on a busy machine): tests
that only read a study share one per module (``shared_project``), and the failing
trials fail before they log anything."""

from __future__ import annotations

import textwrap

import pytest

STEPS = """
import json
import os
import time
from pathlib import Path

from scanflow import tracking


def prep(dataset):
    Path(dataset).write_text(json.dumps({"rows": 10}))


def fit(dataset, x, epochs, delay, log=True, model=False):
    json.loads(Path(dataset).read_text())
    if x < 0:
        raise SystemExit("negative x")
    if log:  # connect to the store before the epochs: they reach the pruner as they end
        tracking.set_tag("phase", "training")
        tracking.set_tag("started_by", os.getppid())  # the fork server, for trials
        tracking.flush()
    for k in range(epochs):
        time.sleep(delay)  # the work of one epoch
        if log:
            tracking.log_metric("score", x * (k + 1) / epochs, step=k)
            tracking.flush()
    if log:
        tracking.log_metric("cost", 2 * x)
    if model:
        from sklearn.dummy import DummyRegressor

        model = DummyRegressor(strategy="constant", constant=x).fit([[0]], [x])
        tracking.log_model(model, pip_requirements=["scikit-learn"])  # no inference: faster
"""


def spec(study: str = "", epochs: int = 3, delay: float = 0.0, model: bool = False) -> str:
    """``scanflow.yaml`` with the workflow ``train`` and the given ``tuning:`` text."""
    logs = str(model).lower()
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
            parameters: {{x: 0.5, epochs: {epochs}, delay: {delay}, log: true, model: {logs}}}
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


@pytest.fixture(scope="module")
def shared_project(tmp_path_factory):
    """``shared_project(study_yaml, **options)``: a project for the tests of one module
    (the environment isolated as ``_isolated_env`` does for one test)."""
    from conftest import write_files

    from scanflow.spec import load_project

    with pytest.MonkeyPatch.context() as patch:
        for name in ("SCANFLOW_TRACKING_URI", "MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID"):
            patch.delenv(name, raising=False)
        patch.setenv("SCANFLOW_ENV_CACHE", str(tmp_path_factory.getbasetemp() / "envs"))

        def make(study: str = STUDY, **options):
            root = tmp_path_factory.mktemp("shared") / "app"
            write_files(root, {"scanflow.yaml": spec(study, **options), "steps.py": STEPS})
            return load_project(root)

        yield make


def scanflow_cli(*args: str):
    """Run the ``scanflow`` command in its own process (its output is its own, whatever an
    earlier test did to this process's streams or logging)."""
    import subprocess
    import sys
    from pathlib import Path

    command = [str(Path(sys.executable).parent / "scanflow"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)
