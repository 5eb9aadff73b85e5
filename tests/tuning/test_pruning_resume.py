"""Pruning stops a bad trial's step; a tuner killed mid-study resumes without re-running
finished trials."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import optuna
from conftest import wait_for
from mlflow.tracking import MlflowClient

from scanflow.cli.main import main
from scanflow.store import Store
from scanflow.tracking.config import tracking_uri
from scanflow.tuning.study import Tuner, find_study, load, storage_url

from .conftest import STUDY

EPOCHS = 30
PRUNED_STUDY = (
    STUDY.replace(
        "x: {type: float, low: 0.0, high: 1.0}",
        "x: {type: categorical, choices: [0.2, 0.4, 0.6, 0.8]}",
    )
    .replace("algorithm: random", "algorithm: grid")
    .replace("pruner: {type: none}", "pruner: {type: median, startup_trials: 1}")
    .replace("max_trials: 3", "max_trials: 4")
)


def test_median_pruner_stops_a_worse_trial_and_records_why(tiny):
    project = tiny(PRUNED_STUDY, epochs=EPOCHS, delay=0.1)
    study = Tuner(project, find_study(project, "train", None), poll_interval=0.1).run()
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, [(t.params, t.state) for t in study.trials]
    store = Store.for_state_dir(project.state_dir)
    client = MlflowClient(tracking_uri(project.app, project.base_dir))
    best = max(t.value for t in study.trials if t.value is not None)
    for trial in pruned:
        assert trial.params["x"] < best
        assert trial.user_attrs["reason"].startswith("pruned at step ")
        run = store.get_run(trial.user_attrs["run_id"])
        assert run.status == "cancelled"
        fit = {s.name: s for s in store.steps(run.id)}["fit"]
        assert fit.status == "cancelled"
        logged = client.get_metric_history(fit.mlflow_run_id, "score")
        assert max(m.step for m in logged) < EPOCHS - 1  # stopped before its last epoch
        tags = client.get_run(run.mlflow_run_id).data.tags
        assert tags["scanflow.trial.state"] == "PRUNED"


def test_tuner_killed_mid_study_resumes_without_repeating_finished_trials(tiny):
    project = tiny(STUDY.replace("max_trials: 3", "max_trials: 4"), epochs=5, delay=0.2)
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
        return done if len(done) >= 2 else []

    try:
        before = wait_for(complete, timeout=300, what="two finished trials")
    finally:
        os.kill(tuner.pid, signal.SIGKILL)
        tuner.wait()
    finished_before = {t.number: t.user_attrs["run_id"] for t in before}

    assert main(["--app", str(project.base_dir), "tune", "train", "--resume"]) == 0
    study = load(project, spec)
    counted = [t for t in study.trials if not t.user_attrs.get("reason", "").startswith("interr")]
    assert len(counted) == 4
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in counted)
    for number, run_id in finished_before.items():  # kept, not re-run
        assert study.trials[number].user_attrs["run_id"] == run_id
    store = Store.for_state_dir(project.state_dir)
    assert len(store.list_runs()) == len(study.trials)  # one run per trial, none repeated
