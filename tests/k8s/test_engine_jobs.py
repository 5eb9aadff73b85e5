"""The Jobs engine on the test cluster: the digits DAG as Jobs that kwok completes."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import wait_for

from scanflow.engines.base import follow
from scanflow.engines.kubernetes.engine import DRIVER
from scanflow.engines.kubernetes.jobs import parent_name
from scanflow.engines.local.ref import LocalProcessRef
from scanflow.store import Store

from .engine_support import digits_project, engine_for
from .k8s_support import K8sCluster


def _jobs(k8s_cluster: K8sCluster, namespace: str, run_id: str) -> list[dict]:
    import json

    out = k8s_cluster.kubectl(
        "get", "jobs", "-n", namespace, "-l", f"scanflow.io/run={run_id}", "-o", "json"
    )
    return json.loads(out.stdout)["items"]


def test_digits_dag_runs_to_success_as_jobs(k8s_cluster: K8sCluster, tmp_path) -> None:
    project = digits_project(tmp_path, "digits-jobs")
    engine = engine_for(project, k8s_cluster, "jobs")
    started = time.monotonic()
    run = follow(engine, engine.submit("train"))
    wall = time.monotonic() - started
    print(f"digits on the Jobs engine: {wall:.2f}s")
    assert run.status == "succeeded", run.error
    assert run.engine == "kubernetes" and run.engine_ref["kind"] == "ConfigMap"
    steps = {s.name: s.status for s in engine.store.steps(run.id)}
    assert set(steps.values()) == {"succeeded"} and len(steps) == 4
    jobs = {
        j["metadata"]["labels"]["scanflow.io/step"]: j
        for j in _jobs(k8s_cluster, run.engine_ref["namespace"], run.id)
    }
    assert set(jobs) == set(steps)
    for job in jobs.values():
        [owner] = job["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"]) == ("ConfigMap", parent_name(run.id))
        assert job["spec"]["template"]["spec"]["containers"][0]["command"][:2] == ["python", "-m"]
    created = lambda s: jobs[s]["metadata"]["creationTimestamp"]  # noqa: E731
    done = lambda s: jobs[s]["status"]["completionTime"]  # noqa: E731
    assert created("evaluate") >= max(done("train-logreg"), done("train-forest"))
    assert min(created("train-logreg"), created("train-forest")) >= done("load-data")
    stored = Store.for_state_dir(project.state_dir).get_run(run.id)
    driver = LocalProcessRef.from_ref(stored.engine_ref[DRIVER])
    assert driver.pid and driver.pid_started_at  # the driver ran as a process of its own
    wait_for(lambda: not driver.alive(), 60, "the driver to exit")


def test_a_failing_step_is_retried_to_its_limit_and_fails_the_run(
    k8s_cluster: K8sCluster, tmp_path
) -> None:
    project = digits_project(tmp_path, "digits-jobs-fail")
    engine = engine_for(project, k8s_cluster, "jobs", fail={"train-forest"}, retries=1)
    events = []
    run = follow(engine, engine.submit("train"), events.append)
    assert run.status == "failed"
    assert "train-forest" in run.error and "BackoffLimitExceeded" in run.error
    assert events[-1].ends_run and "train-forest" in events[-1].message
    steps = {s.name: s.status for s in engine.store.steps(run.id)}
    assert steps == {
        "load-data": "succeeded",
        "train-logreg": "succeeded",
        "train-forest": "failed",
        "evaluate": "skipped",
    }
    [job] = [
        j
        for j in _jobs(k8s_cluster, run.engine_ref["namespace"], run.id)
        if j["metadata"]["labels"]["scanflow.io/step"] == "train-forest"
    ]
    assert job["spec"]["backoffLimit"] == 1 and job["status"]["failed"] == 2  # 1 + 1 retry


def test_cancel_stops_the_run_and_removes_its_jobs(k8s_cluster: K8sCluster, tmp_path) -> None:
    project = digits_project(tmp_path, "digits-jobs-cancel")
    engine = engine_for(project, k8s_cluster, "jobs", hold={"train-forest"})
    run_id = engine.submit("train")
    events = []
    for event in engine.watch(run_id):
        events.append(event)
        if event.step == "train-forest" and event.status == "running":
            engine.cancel(run_id)
    assert events[-1].status == "cancelled" and events[-1].ends_run
    run = engine.get_run(run_id)
    steps = {s.name: s.status for s in engine.store.steps(run_id)}
    assert steps["train-forest"] == "cancelled" and steps["evaluate"] == "cancelled"
    wait_for(
        lambda: _jobs(k8s_cluster, run.engine_ref["namespace"], run_id) == [],
        60,
        "the run's Jobs to be deleted",
    )
    driver = LocalProcessRef.from_ref(run.engine_ref[DRIVER])
    assert driver.pid
    wait_for(lambda: not driver.alive(), 60, "the driver to exit")


def test_resume_submits_only_what_did_not_succeed(k8s_cluster: K8sCluster, tmp_path) -> None:
    project = digits_project(tmp_path, "digits-jobs-resume")
    failing = engine_for(project, k8s_cluster, "jobs", fail={"evaluate"})
    run = follow(failing, failing.submit("train"))
    assert run.status == "failed" and "evaluate" in run.error
    engine = engine_for(project, k8s_cluster, "jobs")
    assert engine.resume(run.id) == run.id
    assert follow(engine, run.id).status == "succeeded"
    jobs = _jobs(k8s_cluster, run.engine_ref["namespace"], run.id)
    rounds = sorted(
        (j["metadata"]["labels"]["scanflow.io/step"], j["metadata"]["labels"]["scanflow.io/round"])
        for j in jobs
    )
    assert rounds == [
        ("evaluate", "0"),
        ("evaluate", "1"),
        ("load-data", "0"),
        ("train-forest", "0"),
        ("train-logreg", "0"),
    ]


def test_cli_runs_on_the_cluster_and_show_reads_the_run(k8s_cluster: K8sCluster, tmp_path) -> None:
    import json
    import os
    import subprocess
    import sys

    project = digits_project(tmp_path, "digits-cli")
    env = {**os.environ, "KUBECONFIG": str(k8s_cluster.kubeconfig)}
    cli = [str(Path(sys.executable).parent / "scanflow"), "--app", str(project.base_dir)]
    done = subprocess.run(
        [*cli, "run", "--target", "kubernetes", "--engine", "jobs", "train"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "evaluate" in done.stdout and "succeeded" in done.stdout
    [run] = Store.for_state_dir(project.state_dir).list_runs()
    shown = subprocess.run(
        [*cli, "show", run.id, "-o", "json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert json.loads(shown.stdout)["status"] == "succeeded"
    wrong = subprocess.run(
        [*cli, "run", "--target", "local", "--engine", "jobs", "train"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        wrong.returncode != 0
        and "--engine (argo or jobs) goes with --target kubernetes" in wrong.stderr
    )


def test_a_run_whose_driver_is_killed_is_interrupted_then_cancelled(
    k8s_cluster: K8sCluster, tmp_path
) -> None:
    import os
    import signal

    project = digits_project(tmp_path, "digits-jobs-driver")
    engine = engine_for(project, k8s_cluster, "jobs", hold={"load-data"})
    run_id = engine.submit("train")
    driver = LocalProcessRef.from_ref(engine.get_run(run_id).engine_ref[DRIVER])
    assert driver.alive()
    os.kill(driver.pid, signal.SIGKILL)  # the driver this test started, by its recorded PID
    wait_for(lambda: not driver.alive(), 60, "the driver to die")
    events = list(engine.watch(run_id))
    assert (events[-1].status, events[-1].message) == ("interrupted", "its driver process is gone")
    engine.cancel(run_id)  # no driver is left to end it: the engine does
    run = engine.get_run(run_id)
    assert (run.status, run.error) == ("cancelled", "cancelled")
    assert {s.status for s in engine.store.steps(run_id)} == {"cancelled"}
    wait_for(
        lambda: _jobs(k8s_cluster, run.engine_ref["namespace"], run_id) == [],
        60,
        "the run's Jobs to be deleted",
    )
