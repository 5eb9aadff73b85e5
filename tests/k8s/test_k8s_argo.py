"""Argo's real workflow-controller on the real control plane: a DAG runs to Succeeded, a
failing step is retried to its limit, a CronWorkflow fires, a stopped run ends, and a second
controller on the machine waits for the first."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import wait_for

from .k8s_support import ArgoController, K8sCluster, running_pids, sim

GROUP, VERSION = "argoproj.io", "v1alpha1"
IMAGE = "registry.invalid/scanflow-step:1"
OUTCOME = "k8s-sim.scanflow.io/outcome"
DONE = ("Succeeded", "Failed", "Error")


def _template(name: str, command: list[str], outcome: str | None = None, **extra) -> dict:
    """A container template with an explicit command (the controller never looks an image's
    entrypoint up); ``outcome`` makes its pods fail (``fail``) or keep running (``hold``)."""
    template = {"name": name, "container": {"image": IMAGE, "command": command}, **extra}
    if outcome:
        template["metadata"] = {"annotations": {OUTCOME: outcome}}
    return template


def _workflow(name: str, tasks: list[dict], templates: list[dict], **spec) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {
            "entrypoint": "main",
            "templates": [{"name": "main", "dag": {"tasks": tasks}}, *templates],
            **spec,
        },
    }


def _task(name: str, template: str, *deps: str) -> dict:
    return {"name": name, "template": template, **({"dependencies": list(deps)} if deps else {})}


class Workflows:
    """Workflows and their pods in one namespace."""

    def __init__(self, api, namespace: str) -> None:
        from kubernetes import client

        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.ns = namespace

    def create(self, body: dict, plural: str = "workflows") -> dict:
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, plural, body)

    def get(self, name: str) -> dict:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, "workflows", name)

    def finished(self, name: str, timeout: float = 120) -> dict:
        """The Workflow once its phase is final."""
        return wait_for(
            lambda: (wf := self.get(name)).get("status", {}).get("phase") in DONE and wf,
            timeout,
            f"Workflow {name} to finish",
        )

    def pods(self, workflow: str) -> list:
        selector = f"workflows.argoproj.io/workflow={workflow}"
        return self.core.list_namespaced_pod(self.ns, label_selector=selector).items


def _nodes(wf: dict) -> dict[str, dict]:
    """The Workflow's nodes by display name (``train``, ``train(0)``, ...)."""
    return {n["displayName"]: n for n in wf["status"]["nodes"].values()}


def _main_command(pod) -> list[str]:
    """The step's own command: what Argo's emissary executor runs after ``--``."""
    main = next(c for c in pod.spec.containers if c.name == "main")
    argv = [*main.command, *(main.args or [])]
    assert argv[0] == "/var/run/argo/argoexec", argv
    return argv[argv.index("--") + 1 :]


@pytest.fixture
def workflows(k8s_cluster: K8sCluster, argo_namespace: str) -> Iterator[Workflows]:
    with k8s_cluster.api_client() as api:
        yield Workflows(api, argo_namespace)


def test_dag_workflow_succeeds(workflows: Workflows) -> None:
    uri = "s3://scanflow/runs/r1/data.csv"
    workflows.create(
        _workflow(
            "digits",
            [
                _task("prepare", "prepare"),
                _task("train", "train", "prepare"),
                _task("validate", "validate", "prepare"),
            ],
            [
                _template(
                    "prepare", ["python", "-m", "prepare", "--out", "{{workflow.parameters.data}}"]
                ),
                _template(
                    "train", ["python", "-m", "train", "--data", "{{workflow.parameters.data}}"]
                ),
                _template("validate", ["python", "-m", "validate"]),
            ],
            arguments={"parameters": [{"name": "data", "value": uri}]},
        )
    )
    wf = workflows.finished("digits")
    assert wf["status"]["phase"] == "Succeeded", wf["status"]
    nodes = _nodes(wf)
    steps = {name: nodes[name] for name in ("prepare", "train", "validate")}
    assert {n["type"] for n in steps.values()} == {"Pod"}
    assert {n["phase"] for n in steps.values()} == {"Succeeded"}
    for later in ("train", "validate"):  # RFC 3339 UTC strings compare in time order
        assert steps["prepare"]["finishedAt"] <= steps[later]["startedAt"]
    pods = {
        p.metadata.annotations["workflows.argoproj.io/node-name"]: p
        for p in workflows.pods("digits")
    }
    assert sorted(pods) == ["digits.prepare", "digits.train", "digits.validate"]
    assert {p.status.phase for p in pods.values()} == {"Succeeded"}
    assert {o.kind for p in pods.values() for o in p.metadata.owner_references} == {"Workflow"}
    assert _main_command(pods["digits.train"]) == ["python", "-m", "train", "--data", uri]
    assert _main_command(pods["digits.validate"]) == ["python", "-m", "validate"]


def test_failing_step_is_retried_to_its_limit(workflows: Workflows) -> None:
    workflows.create(
        _workflow(
            "flaky",
            [_task("prepare", "prepare"), _task("train", "train", "prepare")],
            [
                _template("prepare", ["python", "-m", "prepare"]),
                _template(
                    "train", ["python", "-m", "train"], outcome="fail", retryStrategy={"limit": "2"}
                ),
            ],
        )
    )
    wf = workflows.finished("flaky")
    assert wf["status"]["phase"] == "Failed"
    nodes = _nodes(wf)
    assert nodes["prepare"]["phase"] == "Succeeded"
    assert nodes["train"]["type"] == "Retry"
    assert nodes["train"]["phase"] == "Failed"
    assert nodes["train"]["message"] == "No more retries left"
    attempts = sorted(n for n in nodes if n.startswith("train("))
    assert attempts == ["train(0)", "train(1)", "train(2)"]
    for attempt in attempts:
        assert nodes[attempt]["phase"] == "Failed"
        assert nodes[attempt]["message"] == "main: Error (exit code 1)"
    pods = workflows.pods("flaky")
    train = [p for p in pods if p.metadata.annotations.get(OUTCOME) == "fail"]
    assert len(train) == 3 and len(pods) == 4
    assert {p.status.phase for p in train} == {"Failed"}


def test_stopping_a_running_workflow_ends_it(workflows: Workflows) -> None:
    """``spec.shutdown: Stop`` ends a run whose step is still running; what follows never
    starts; deleting the Workflow removes its pods."""
    workflows.create(
        _workflow(
            "serve",
            [
                _task("prepare", "prepare"),
                _task("serve", "serve", "prepare"),
                _task("report", "report", "serve"),
            ],
            [
                _template("prepare", ["python", "-m", "prepare"]),
                _template("serve", ["python", "-m", "serve"], outcome="hold"),
                _template("report", ["python", "-m", "report"]),
            ],
        )
    )
    wait_for(
        lambda: any(
            p.metadata.annotations.get(OUTCOME) == "hold" and p.status.phase == "Running"
            for p in workflows.pods("serve")
        ),
        120,
        "the serve step's pod to run",
    )
    assert workflows.get("serve")["status"]["phase"] == "Running"
    workflows.custom.patch_namespaced_custom_object(
        GROUP, VERSION, workflows.ns, "workflows", "serve", {"spec": {"shutdown": "Stop"}}
    )
    wf = workflows.finished("serve", timeout=60)
    assert wf["status"]["phase"] == "Failed"
    assert wf["status"]["message"] == "Stopped with strategy 'Stop'"
    nodes = _nodes(wf)
    assert nodes["prepare"]["phase"] == "Succeeded"
    assert nodes["serve"]["phase"] == "Failed"
    assert nodes["serve"]["message"].startswith("workflow shutdown with strategy:")
    assert nodes["report"]["phase"] == "Omitted"
    assert len(workflows.pods("serve")) == 2  # prepare and serve; report never got a pod

    workflows.custom.delete_namespaced_custom_object(
        GROUP, VERSION, workflows.ns, "workflows", "serve"
    )
    wait_for(lambda: not workflows.pods("serve"), 120, "the stopped Workflow's pods to be deleted")


def test_cron_workflow_creates_a_workflow_on_schedule(workflows: Workflows) -> None:
    spec = _workflow(
        "unused", [_task("retrain", "retrain")], [_template("retrain", ["python", "-m", "retrain"])]
    )
    workflows.create(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "CronWorkflow",
            "metadata": {"name": "nightly"},
            "spec": {
                "schedules": ["@every 5s"],  # as scanflow renders an interval schedule
                "concurrencyPolicy": "Forbid",
                "workflowSpec": spec["spec"],
            },
        },
        plural="cronworkflows",
    )
    selector = "workflows.argoproj.io/cron-workflow=nightly"
    runs = wait_for(
        lambda: workflows.custom.list_namespaced_custom_object(
            GROUP, VERSION, workflows.ns, "workflows", label_selector=selector
        )["items"],
        150,
        "the CronWorkflow to create a Workflow within its interval",
    )
    name = runs[0]["metadata"]["name"]
    assert re.fullmatch(r"nightly-\d+", name)
    assert workflows.finished(name)["status"]["phase"] == "Succeeded"
    cron = workflows.custom.get_namespaced_custom_object(
        GROUP, VERSION, workflows.ns, "cronworkflows", "nightly"
    )
    assert cron["status"]["lastScheduledTime"]


def test_second_controller_waits_for_the_machine_lock(argo: ArgoController, tmp_path: Path) -> None:
    """While the session's controller runs, ``argo up`` for another cluster waits for the
    machine-wide lock and gives up naming the holder; it starts nothing."""
    env = {**os.environ, "K8S_SIM_STATE": str(tmp_path / "run")}
    no_cluster = sim("argo", "up", env=env)
    assert no_cluster.returncode == 1
    assert (
        "the cluster is not up" in no_cluster.stderr
        and "run: scripts/k8s-sim up" in no_cluster.stderr
    )
    assert sim("up", "--nodes", "1", env=env, timeout=300).returncode == 0
    try:
        proc = sim("argo", "up", "--lock-timeout", "2", env=env, timeout=300)
        assert proc.returncode == 1
        assert "waiting up to 2 s for it to stop" in proc.stderr
        assert f"it is held by workflow-controller pid {argo.pid} " in proc.stderr
        assert "Traceback" not in proc.stderr
        assert sim("argo", "status", env=env).returncode == 3
        assert not (tmp_path / "run" / "argo.json").exists()
        assert running_pids([argo.pid]) == [argo.pid]
        down = sim("argo", "down", env=env)
        assert down.returncode == 0 and down.stdout.strip() == "no workflow-controller was running"
    finally:
        assert sim("down", env=env).returncode == 0
