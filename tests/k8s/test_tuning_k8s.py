"""Tuning on the Kubernetes engine: each trial is a workflow run on the test cluster whose
step pods really run (the pod player) and log to a real MLflow server; the objective reaches
the tuner through it, a pruned trial's pod is deleted and its process stopped, and a trial
that never logs its objective fails with the clear message."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, wait_for, write_files
from kubernetes import client
from mlflow.tracking import MlflowClient

from scanflow.kube.names import dns_label, namespace_of
from scanflow.spec import load_project
from scanflow.store import Store
from scanflow.tuning.study import Tuner, TuningError, find_study, load

from .engine_support import engine_for
from .k8s_support import K8sCluster, PodPlayer, running_pids

EPOCHS = 10
STEPS = """
import time

from scanflow import tracking


def fit(x, epochs, delay):
    tracking.set_tag("phase", "training")  # connected before the epochs: they reach the
    tracking.flush()                       # pruner as they end
    for k in range(epochs):
        time.sleep(delay)  # the work of one epoch
        tracking.log_metric("score", x * (k + 1) / epochs, step=k)
        tracking.flush()
"""
SPEC = """
name: {name}
tracker:
  uri: {tracker}
workflows:
  - name: train
    executors:
      - name: fit
        function: steps:fit
        parameters: {{x: 0.5, epochs: {epochs}, delay: 0.4}}
tuning:
  - name: search
    workflow: train
    space:
      x: {{type: categorical, choices: [0.8, 0.2]}}
    objective: {{metric: score, step: fit, direction: maximize}}
    algorithm: grid
    seed: 1          # 0.8 first, then 0.2, worse at every epoch
    pruner: {{type: median, startup_trials: 1}}
    max_trials: 2
  - name: unlogged
    workflow: train
    space:
      x: {{type: float, low: 0.0, high: 1.0}}
    objective: {{metric: accuracy, step: fit, direction: maximize}}
    seed: 0
    max_trials: 1
"""


@pytest.fixture(scope="module")
def tracker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow server (SQLite, artifacts it serves) on a free port; stopped by PID."""
    root = tmp_path_factory.mktemp("tracker")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    argv = [sys.executable, "-m", "scanflow.tracking.stack.mlflow_main"]
    argv += ["--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"]
    argv += ["--artifacts-destination", (root / "artifacts").as_uri()]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with open(root / "server.log", "wb") as out:
        server = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    uri = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if server.poll() is not None:
            raise AssertionError((root / "server.log").read_text()[-3000:])
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                return True
        except OSError:
            return False

    try:
        wait_for(healthy, 180, "the MLflow server")
        yield uri
    finally:
        server.terminate()
        server.wait(60)


@pytest.fixture
def make_app(tmp_path: Path, tracker: str, k8s_cluster: K8sCluster) -> Iterator:
    """``make_app(name)``: the project of application ``name``; its namespace is deleted
    after the test."""
    made = []

    def make(name: str):
        root = tmp_path / name
        text = SPEC.format(name=name, tracker=tracker, epochs=EPOCHS)
        write_files(root, {"scanflow.yaml": text, "steps.py": STEPS})
        made.append(load_project(root))
        return made[-1]

    yield make
    with k8s_cluster.api_client() as api:
        names = {n.metadata.name for n in client.CoreV1Api(api).list_namespace().items}
        for project in made:
            if namespace_of(project.app) in names:  # made by the first run
                client.CoreV1Api(api).delete_namespace(namespace_of(project.app))


def _pods(k8s_cluster: K8sCluster, namespace: str, run_id: str) -> list:
    with k8s_cluster.api_client() as api:
        selector = f"scanflow.io/run={dns_label(run_id)}"
        return client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items


@pytest.fixture(params=["argo", "jobs"])
def flavour(request) -> str:
    """The workflow engine; Argo's controller is started for the session when asked."""
    if request.param == "argo":
        request.getfixturevalue("argo")
    return request.param


def test_trials_run_on_the_cluster_and_a_pruned_trials_pod_is_stopped(
    k8s_cluster: K8sCluster, pod_player: PodPlayer, flavour: str, make_app
) -> None:
    project = make_app(f"tune-{flavour}")
    engine = engine_for(project, k8s_cluster, flavour, play=True)
    spec = find_study(project, None, "search")

    study = Tuner(project, spec, engine=engine, poll_interval=0.2).run()

    assert [(t.params["x"], t.state.name) for t in study.trials] == [
        (0.8, "COMPLETE"),
        (0.2, "PRUNED"),
    ]
    assert study.trials[0].value == pytest.approx(0.8)  # logged in the pod, read from MLflow
    store = Store.for_state_dir(project.state_dir)
    namespace = namespace_of(project.app)
    done, pruned = (store.get_run(t.user_attrs["run_id"]) for t in study.trials)
    kind = {"argo": "Workflow", "jobs": "ConfigMap"}[flavour]
    assert (done.engine, done.engine_ref["kind"], done.status) == ("kubernetes", kind, "succeeded")
    [pod] = _pods(k8s_cluster, namespace, done.id)
    assert pod.status.phase == "Succeeded"  # the player ran it to its end

    reason = study.trials[1].user_attrs["reason"]
    assert reason.startswith("pruned at step ") and "the median pruner" in reason
    assert pruned.status == "cancelled"
    assert {s.name: s.status for s in store.steps(pruned.id)} == {"fit": "cancelled"}
    wait_for(lambda: not _pods(k8s_cluster, namespace, pruned.id), 60, "the pruned pod deleted")
    wait_for(lambda: running_pids(pod_player.started()) == [], 60, "the pods' processes ended")
    assert len(pod_player.started()) == 2  # one process per trial

    mlflow = MlflowClient(project.app.tracker.uri)
    runs = {
        r.data.tags["scanflow.run_id"]: r
        for r in mlflow.search_runs(
            [mlflow.get_experiment_by_name(project.app.name).experiment_id],
            "tags.`scanflow.step` = 'fit'",
        )
    }
    logged = mlflow.get_metric_history(runs[pruned.id].info.run_id, "score")
    assert logged and max(m.step for m in logged) < EPOCHS - 1  # stopped before its end
    assert runs[pruned.id].info.status == "RUNNING"  # killed: it could not end its run
    assert runs[done.id].info.status == "FINISHED"
    study_run = study.user_attrs["mlflow_run_id"]
    for trial, run in zip(study.trials, (done, pruned), strict=True):
        tags = runs[run.id].data.tags  # the step runs are nested under the study's run
        assert tags["mlflow.parentRunId"] == study_run
        assert tags["scanflow.trial"] == str(trial.number)
        assert tags["scanflow.trial.state"] == trial.state.name
    assert runs[pruned.id].data.tags["scanflow.trial.reason"] == reason


def test_a_trial_that_never_logs_its_objective_fails_with_the_message(
    k8s_cluster: K8sCluster, pod_player: PodPlayer, make_app
) -> None:
    project = make_app("tune-unlogged")
    engine = engine_for(project, k8s_cluster, "jobs", play=True)
    spec = find_study(project, None, "unlogged")

    with pytest.raises(TuningError) as failed:
        Tuner(project, spec, engine=engine).run()

    [trial] = load(project, spec).trials
    run = Store.for_state_dir(project.state_dir).get_run(trial.user_attrs["run_id"])
    assert run.status == "succeeded"  # the step ran, it just never logged 'accuracy'
    expected = (
        f"objective metric 'accuracy' was never logged by step 'fit' of run {run.id}; "
        "log it with tracking.log_metric('accuracy', value)"
    )
    assert (trial.state.name, trial.user_attrs["reason"]) == ("FAIL", expected)
    assert str(failed.value) == (
        f"study 'unlogged' failed: none of its 1 trials succeeded; first reason: {expected}"
    )


def test_scanflow_tune_target_kubernetes_runs_trials_on_the_cluster(
    k8s_cluster: K8sCluster, make_app
) -> None:
    """The command a user types; without the pod player, KWOK completes the step pods
    without running them, so the trials fail with the message a user would see."""
    project = make_app("tune-cli")
    spec = project.base_dir / "scanflow.yaml"
    # 3 trials at once, more than the 2 cores of the machine this was written on
    text = spec.read_text().replace("max_trials: 1\n", "max_trials: 3\n    parallel_trials: 3\n")
    spec.write_text(text + "kubernetes:\n  workflow_engine: jobs\n")
    env = {**os.environ, "KUBECONFIG": str(k8s_cluster.kubeconfig)}
    command = [str(Path(sys.executable).parent / "scanflow"), "--app", str(project.base_dir)]

    tuned = subprocess.run(
        [*command, "tune", "train", "--study", "unlogged", "--target", "kubernetes"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )

    runs = Store.for_state_dir(project.state_dir).list_runs()
    assert [(r.engine, r.engine_ref["kind"], r.status) for r in runs] == 3 * [
        ("kubernetes", "ConfigMap", "succeeded")
    ], tuned.stderr
    # all at once: trials on a cluster are not capped to this machine's cores
    assert max(r.created_at for r in runs) < min(r.finished_at for r in runs)
    assert tuned.returncode == 1
    message = " ".join(tuned.stderr.split())  # as printed, wrapped to the terminal
    assert (
        "study 'unlogged' failed: none of its 3 trials succeeded; first reason: objective "
        "metric 'accuracy' was never logged by step 'fit' of run "
    ) in message
