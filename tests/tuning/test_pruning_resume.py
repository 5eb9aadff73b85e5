"""Every pruner stops a worse trial's step process; a tuner killed mid-study resumes
without re-running finished trials."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import optuna
import pytest
from conftest import wait_for
from mlflow.tracking import MlflowClient

from scanflow.cli.main import main
from scanflow.store import Store
from scanflow.tracking.config import tracking_uri
from scanflow.tuning.study import Tuner, find_study, load, storage_url

from .conftest import STUDY

EPOCHS = 10
PRUNERS = {
    "median": "{type: median, startup_trials: 1}",
    "percentile": "{type: percentile, percentile: 25, startup_trials: 1}",
    "successive-halving": "{type: successive-halving, min_resource: 1}",
    # 2 brackets; this study name puts trials 0 and 1 in the same one (Optuna hashes it)
    "hyperband": "{type: hyperband, min_resource: 1, max_resource: 8}",
}
PRUNED_STUDIES = "tuning:\n" + "".join(
    f"""
  - name: {name}-search
    workflow: train
    space:
      x: {{type: categorical, choices: [0.2, 0.8]}}
    objective: {{metric: score, step: fit, direction: maximize}}
    algorithm: grid
    seed: 0          # 0.8 first, then 0.2, worse at every epoch
    pruner: {pruner}
    max_trials: 2
"""
    for name, pruner in PRUNERS.items()
)


@pytest.fixture(scope="module")
def pruning_project(shared_project):
    """One project for every pruner's study (its ``prep`` step runs once)."""
    return shared_project(PRUNED_STUDIES, epochs=EPOCHS, delay=0.3)


@pytest.mark.parametrize("kind", list(PRUNERS))
def test_a_pruner_stops_the_worse_trials_process_and_records_why(pruning_project, kind):
    project = pruning_project
    spec = find_study(project, None, f"{kind}-search")
    study = Tuner(project, spec, poll_interval=0.1).run()
    assert [(t.params["x"], t.state.name) for t in study.trials] == [
        (0.8, "COMPLETE"),
        (0.2, "PRUNED"),
    ]
    trial = study.trials[1]
    store = Store.for_state_dir(project.state_dir)
    client = MlflowClient(tracking_uri(project.app, project.base_dir))
    reason = trial.user_attrs["reason"]
    assert reason.startswith("pruned at step ") and f"the {kind} pruner" in reason
    run = store.get_run(trial.user_attrs["run_id"])
    assert run.status == "cancelled"
    fit = {s.name: s for s in store.steps(run.id)}["fit"]
    assert fit.status == "cancelled"  # its process was stopped
    logged = client.get_metric_history(fit.mlflow_run_id, "score")
    assert max(m.step for m in logged) < EPOCHS - 1  # before its last epoch
    tags = client.get_run(run.mlflow_run_id).data.tags
    assert tags["scanflow.trial.state"] == "PRUNED"
    assert tags["scanflow.trial.reason"] == reason


def test_tuner_killed_mid_study_resumes_without_repeating_finished_trials(tiny):
    project = tiny(STUDY.replace("max_trials: 3", "max_trials: 2"), epochs=5, delay=0.2)
    spec = find_study(project, "train", None)
    cmd = [
        sys.executable,
        "-m",
        "scanflow.cli.main",
        "--app",
        str(project.base_dir),
        "tune",
        "train",
    ]
    tuner = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def complete() -> list[optuna.trial.FrozenTrial]:
        if "search" not in optuna.get_all_study_names(storage_url(project)):
            return []
        trials = load(project, spec).trials
        done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        return done

    try:
        before = wait_for(complete, timeout=300, what="a finished trial")
    finally:
        os.kill(tuner.pid, signal.SIGKILL)
        tuner.wait()
    finished_before = {t.number: t.user_attrs["run_id"] for t in before}

    assert main(["--app", str(project.base_dir), "tune", "train", "--resume"]) == 0
    study = load(project, spec)
    counted = [t for t in study.trials if not t.user_attrs.get("reason", "").startswith("interr")]
    assert len(counted) == 2
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in counted)
    for number, run_id in finished_before.items():  # kept, not re-run
        assert study.trials[number].user_attrs["run_id"] == run_id
    store = Store.for_state_dir(project.state_dir)
    # at most one run per trial, none repeated (the kill may land before a trial's run starts)
    runs = {r.id for r in store.list_runs()}
    run_ids = [t.user_attrs["run_id"] for t in study.trials if "run_id" in t.user_attrs]
    assert len(set(run_ids)) == len(run_ids) and set(run_ids) <= runs
    assert len(run_ids) <= len(runs) <= len(study.trials)
