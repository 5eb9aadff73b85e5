"""DriftRetrain's actions against a real MLflow registry and real workflow runs on the
local engine: a better model is promoted and served; a failed run, a worse model and a
model the service cannot load all leave the champion where it was, each decision recorded.

The online service is a real ``scanflow`` service process following ``digits@champion``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import start_service

from scanflow.agents.clients import HttpServiceControl, JsonlFeed, MlflowRegistry, MlflowScorer
from scanflow.agents.plans import decide
from scanflow.agents.runtime import AgentRuntime, AgentSetup
from scanflow.agents.state import AgentState
from scanflow.agents.strategies.drift_retrain import DriftRetrain, DriftRetrainConfig
from scanflow.agents.toolkit import Toolkit
from scanflow.spec import load_project
from scanflow.store import Store

from .conftest import run

pytestmark = pytest.mark.slow

STEPS = """
import shutil
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier

from scanflow import tracking


def train(mode="good", recent_data="", alias="champion", model_name="digits"):
    if mode == "fail":
        raise RuntimeError("the training data is unreadable")
    X, y = load_digits(return_X_y=True)
    X = X[:600] / 16.0
    y = y[:600]
    if recent_data:
        recent = np.load(recent_data)
        X, y = np.vstack([X, recent["X"]]), np.concatenate([y, recent["y"]])
    if mode == "bad":
        y = np.random.default_rng(0).permutation(y)
    model = RandomForestClassifier(n_estimators=30, random_state=0, n_jobs=1).fit(X, y)
    uri = tracking.log_model(model, name="model", input_example=X[:2],
                             skops_trusted_types=["sklearn.tree._tree.Tree"])
    version = tracking.register_model(model_name, alias=alias)
    if mode == "broken":
        import mlflow
        path = mlflow.artifacts.download_artifacts(uri)  # local store: the stored files
        shutil.rmtree(path)
    return version


def train_tuned(trees=10, recent_data=""):
    X, y = load_digits(return_X_y=True)
    X, y = X[:600] / 16.0, y[:600]
    if recent_data:
        recent = np.load(recent_data)
        X, y = np.vstack([X, recent["X"]]), np.concatenate([y, recent["y"]])
    order = np.random.default_rng(0).permutation(len(y))
    fit, val = order[: len(y) * 4 // 5], order[len(y) * 4 // 5 :]
    model = RandomForestClassifier(n_estimators=trees, random_state=0, n_jobs=1)
    model.fit(X[fit], y[fit])
    tracking.log_metric("val_accuracy", float(model.score(X[val], y[val])))
    tracking.log_model(model, name="model", skops_trusted_types=["sklearn.tree._tree.Tree"])
"""

APP = """
name: retrainapp
workflows:
- name: train
  parameters: {mode: good, recent_data: "", alias: champion}
  executors:
  - name: train
    function: steps:train
- name: tune-train
  parameters: {recent_data: ""}
  executors:
  - name: fit
    function: steps:train_tuned
    parameters: {trees: 10}
tuning:
- name: retrain-search
  workflow: tune-train
  space: {trees: {type: categorical, choices: [2, 30]}}
  objective: {metric: val_accuracy, step: fit}
  algorithm: grid
  seed: 0
  pruner: {type: none}
  max_trials: 5
"""


def _corrupt(X: np.ndarray) -> np.ndarray:
    """Digits seen upside down and brighter: a drift the champion has not seen."""
    flipped = X.reshape(-1, 8, 8)[:, ::-1, :].reshape(-1, 64)
    return np.clip(flipped * 1.5, 0, 1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    """The app with champion v1 trained on clean digits, and drifted traffic with labels."""
    from sklearn.datasets import load_digits

    from scanflow.engines.local import LocalEngine
    from scanflow.tracking.config import tracking_uri

    root = tmp_path_factory.mktemp("retrain") / "app"
    root.mkdir()
    (root / "scanflow.yaml").write_text(APP)
    (root / "steps.py").write_text(STEPS)
    project = load_project(root)
    assert LocalEngine(project).run_workflow("train").status == "succeeded"
    uri = tracking_uri(project.app, project.base_dir)
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    drifted = _corrupt(X[600:1400])
    log, labels = JsonlFeed(root / "log"), JsonlFeed(root / "labels")
    log.append(
        [
            {
                "id": f"q{i}",
                "ts": 1000.0 + i,
                "model_version": "1",
                "inputs": [row.tolist()],
                "outputs": [0],
            }
            for i, row in enumerate(drifted)
        ]
    )
    labels.append([{"id": f"q{i}", "label": int(t)} for i, t in enumerate(y[600:1400])])
    np.savez(root / "holdout.npz", X_holdout=X[1400:], y_holdout=y[1400:])
    return project, uri, log, labels


@pytest.fixture(scope="module")
def service(world, tmp_path_factory: pytest.TempPathFactory):
    """A real service of ``digits@champion``, stopped by its PID at the end of the module."""

    from scanflow.spec import Service

    project, uri, _, _ = world
    state = tmp_path_factory.mktemp("service")
    spec = Service("digits", model="models:/digits@champion", poll_interval=0.5)
    proc = start_service(spec, state, uri)
    control = HttpServiceControl(proc.url, token=proc.token)
    try:
        proc.wait_ready(120)
        yield control
    finally:
        control.close()
        proc.stop()


def _served(control: HttpServiceControl) -> str | None:
    return control.status().get("model_version")


def _runtime(world, store: Store, service: HttpServiceControl, **options: Any) -> AgentRuntime:
    from scanflow.agents.service import toolkit_for

    project, uri, log, labels = world
    config = DriftRetrainConfig(
        service="digits",
        model="digits",
        min_labelled=300,
        label_wait=0,
        holdout_path=str(project.base_dir / "holdout.npz"),
        swap_timeout=180,  # generous: a busy machine loads slowly; failures return at once
        **options,
    )
    strategy = DriftRetrain(config)
    base = toolkit_for(project)
    toolkit = Toolkit(
        app="retrainapp",
        engine=base.engine,
        registry=MlflowRegistry(uri),
        services={"digits": service},
        predictions={"digits": log},
        labels={"digits": labels},
        extras={**base.extras, "scorer": MlflowScorer(uri)},
    )
    setup = AgentSetup(
        "retrainer",
        strategy.declare(),
        guardrails=strategy.guardrails(),
        config=config.model_dump(),
        app="retrainapp",
        strategy="drift-retrain",
    )
    return AgentRuntime(setup, store, toolkit)


def _retrain_once(runtime: AgentRuntime) -> Any:
    plan = decide(
        "drift confirmed (test)",
        ("retrain", {"since": 0.0}),
        ("gate", {}),
        ("promote", {}),
        key="retrain",
        guarded=False,
    )

    async def go() -> str:
        await runtime.start()
        decision_id = await runtime.submit(plan)
        await runtime.idle(timeout=300)
        await runtime.stop()
        return decision_id

    return runtime.state.decision(run(go(), timeout=330))


def _champion(world) -> str | None:
    return MlflowRegistry(world[1]).alias_version("digits", "champion")


def test_a_better_model_is_gated_promoted_and_served(world, service, store) -> None:
    runtime = _runtime(world, store, service, workflow_parameters={"mode": "good"})
    before = _champion(world)
    row = _retrain_once(runtime)
    assert row.status == "succeeded", row.outcome
    retrain, gate, promote = (s["result"] for s in row.steps)
    assert gate["passed"] is True
    assert gate["candidate_recent"] - gate["champion_recent"] >= 0.02
    assert gate["candidate_holdout"] - gate["champion_holdout"] >= -0.02
    assert retrain["train_rows"] == 560 and gate["recent_rows"] == 240
    assert promote == {
        "version": retrain["candidate"],
        "previous": before,
        "live_at": promote["live_at"],
    }
    assert _champion(world) == retrain["candidate"] == _served(service)
    # scoring and loading versions left MLflow's process-wide URIs alone (child processes
    # inherit them)
    assert "MLFLOW_REGISTRY_URI" not in os.environ and "MLFLOW_TRACKING_URI" not in os.environ


def test_a_failed_retrain_leaves_the_champion(world, service, store) -> None:
    runtime = _runtime(world, store, service, workflow_parameters={"mode": "fail"})
    before = _champion(world)
    row = _retrain_once(runtime)
    assert row.status == "failed"
    assert row.outcome.startswith("retrain: training run train-") and "failed" in row.outcome
    assert [s["status"] for s in row.steps] == ["failed", "skipped", "skipped"]
    assert _champion(world) == before == _served(service)


def test_a_worse_model_is_rejected_by_the_gate(world, service, store) -> None:
    runtime = _runtime(world, store, service, workflow_parameters={"mode": "bad"})
    before = _champion(world)
    row = _retrain_once(runtime)
    assert row.status == "succeeded"
    assert row.outcome.startswith("gate: candidate v")
    assert f"rejected, champion v{before} kept" in row.outcome
    assert [s["status"] for s in row.steps] == ["done", "done", "skipped"]
    assert row.steps[1]["result"]["passed"] is False
    assert _champion(world) == before == _served(service)


def test_a_promotion_the_service_cannot_load_is_rolled_back(world, service, store) -> None:
    runtime = _runtime(
        world,
        store,
        service,
        workflow_parameters={"mode": "broken"},
        recent_margin=-1.0,
        holdout_margin=-1.0,
    )
    runtime.toolkit.extras["scorer"] = lambda model, version, X, y: 1.0  # the gate passes
    before = _champion(world)
    row = _retrain_once(runtime)
    assert row.status == "failed"
    candidate = row.steps[0]["result"]["candidate"]
    assert f"the service could not load v{candidate}" in row.outcome
    assert row.outcome.endswith(f"alias champion rolled back to v{before}")
    assert row.steps[2]["result"] == {"version": candidate, "previous": before, "rolled_back": True}
    assert _champion(world) == before == _served(service)
    events = AgentState(store, "retrainer").decisions()
    assert len(events) == 1


def test_a_rollback_moves_the_alias_back_and_the_service_follows(world, service, store) -> None:
    runtime = _runtime(world, store, service)
    current = _champion(world)
    assert current != "1"
    plan = decide(
        "live accuracy dropped (test)",
        ("rollback", {"to": "1", "version": current}),
        key="rollback",
        guarded=False,
    )

    async def go() -> str:
        await runtime.start()
        decision_id = await runtime.submit(plan)
        await runtime.idle(timeout=120)
        await runtime.stop()
        return decision_id

    row = runtime.state.decision(run(go(), timeout=150))
    assert row.status == "succeeded", row.outcome
    assert row.outcome == f"rolled back from v{current} to v1"
    assert _champion(world) == "1" == _served(service)


def test_retraining_by_tuning_registers_the_best_trial_as_the_candidate(
    world, service, store
) -> None:
    import optuna
    from mlflow.tracking import MlflowClient

    from scanflow.tuning.study import storage_url

    project, uri, _, _ = world
    runtime = _runtime(
        world, store, service, tune_study="retrain-search", tune_trials=2, alias_parameter=None
    )
    row = _retrain_once(runtime)
    assert row.status == "succeeded", row.outcome
    assert [s["status"] for s in row.steps[:2]] == ["done", "done"]
    retrain, gate = row.steps[0]["result"], row.steps[1]["result"]
    assert retrain["study"].startswith("retrain-search-") and retrain["trials"] == 2
    study = optuna.load_study(study_name=retrain["study"], storage=storage_url(project))
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]  # the trial budget
    assert retrain["best_trial"] == study.best_trial.number
    assert retrain["best_value"] == study.best_value
    candidate = MlflowRegistry(uri).alias_version("digits", "candidate")
    assert retrain["candidate"] == candidate == gate["candidate"]  # gated as a plain retrain
    client = MlflowClient(uri)
    version = client.get_model_version("digits", candidate)
    assert version.tags["scanflow.study"] == retrain["study"]
    assert version.tags["scanflow.trial"] == str(study.best_trial.number)
    engine = runtime.toolkit.engine_for()
    for trial in study.trials:  # every trial trained on the recent labelled rows
        fit = engine.get_run(trial.user_attrs["run_id"])
        steps = {s.name: s for s in engine.store.steps(fit.id)}
        params = client.get_run(steps["fit"].mlflow_run_id).data.params
        assert params["recent_data"] == retrain["train"]
        assert int(params["trees"]) == trial.params["trees"]


_ = (asyncio, Path)
