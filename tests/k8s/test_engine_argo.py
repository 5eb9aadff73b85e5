"""The Kubernetes engine on Argo: rendered objects accepted by the API server, and the
digits workflow run by Argo's real workflow-controller (pods completed by kwok)."""

from __future__ import annotations

import json
import time

import pytest

from scanflow.engines.base import follow
from scanflow.engines.kubernetes import argo as render
from scanflow.engines.kubernetes.steps import plan_run
from scanflow.errors import EngineError
from scanflow.kube.apply import apply, claim_namespace
from scanflow.kube.cluster import connect
from scanflow.kube.names import labels_of, namespace_of

from .engine_support import digits_project, engine_for
from .k8s_support import K8sCluster


def _has_argo(k8s_cluster: K8sCluster) -> bool:
    found = k8s_cluster.kubectl("get", "crd", "workflows.argoproj.io", check=False)
    return found.returncode == 0


def test_without_argo_the_error_names_the_jobs_engine(k8s_cluster: K8sCluster, tmp_path) -> None:
    if _has_argo(k8s_cluster):
        pytest.skip("Argo's CRDs are installed on this session's cluster already")
    project = digits_project(tmp_path, "digits-no-argo")
    engine = engine_for(project, k8s_cluster, "argo")
    with pytest.raises(
        EngineError, match=r"no Argo Workflows.*workflow_engine: jobs.*--engine jobs"
    ):
        engine.submit("train")
    assert engine.store.list_runs() == []  # nothing recorded


def test_rendered_objects_pass_the_api_servers_dry_run(argo, k8s_cluster, tmp_path) -> None:
    project = digits_project(tmp_path, "digits-dry-run")
    app = project.app
    app.kubernetes.serving_node_label = "scanflow.io/serving=true"
    cluster = connect(kubeconfig=k8s_cluster.kubeconfig)
    namespace = namespace_of(app)
    claim_namespace(cluster, namespace, labels_of(app))
    plans = plan_run(app, "train", "train-1", {"seed": 7}, by_reference=True)
    workflow = render.render_workflow(app, "train", plans, {"seed": 7}, namespace, {})
    resource = cluster.resource(render.API_VERSION, "Workflow")
    made = cluster.dynamic.create(resource, body=workflow, namespace=namespace, dry_run="All")
    assert made.metadata.name.startswith("digits-dry-run-train-")
    template_plans = plan_run(app, "train", render.TEMPLATE_RUN_ID, {}, by_reference=True)
    for body in (
        render.render_workflow_template(app, "train", template_plans, namespace),
        render.render_cron_workflow(app, "train", template_plans, namespace, "*/5 * * * *"),
    ):
        assert apply(cluster, body, dry_run=True).action == "created"


def test_digits_workflow_succeeds_on_argo(argo, k8s_cluster: K8sCluster, tmp_path) -> None:
    project = digits_project(tmp_path, "digits-argo")
    assert argo.watches(namespace_of(project.app))
    engine = engine_for(project, k8s_cluster, "argo")
    started = time.monotonic()
    events = []
    run = follow(engine, engine.submit("train"), events.append)
    print(f"digits on Argo: {time.monotonic() - started:.2f}s")
    assert run.status == "succeeded", run.error
    assert run.engine_ref["kind"] == "Workflow"
    steps = {s.name: s.status for s in engine.store.steps(run.id)}
    assert steps == dict.fromkeys(
        ["load-data", "train-logreg", "train-forest", "evaluate"], "succeeded"
    )
    live = json.loads(
        k8s_cluster.kubectl(
            "get",
            "workflow",
            run.engine_ref["name"],
            "-n",
            run.engine_ref["namespace"],
            "-o",
            "json",
        ).stdout
    )
    assert live["status"]["phase"] == "Succeeded"
    assert live["metadata"]["labels"]["scanflow.io/run"] == run.id
    order = [e.step for e in events if e.status == "succeeded" and e.step]
    assert order[0] == "load-data" and order[-1] == "evaluate"


def test_a_failing_step_is_retried_and_fails_the_argo_run(argo, k8s_cluster, tmp_path) -> None:
    project = digits_project(tmp_path, "digits-argo-fail")
    engine = engine_for(project, k8s_cluster, "argo", fail={"train-forest"}, retries=1)
    run = follow(engine, engine.submit("train"))
    assert run.status == "failed" and "train-forest" in run.error, run.error
    steps = {s.name: s.status for s in engine.store.steps(run.id)}
    assert steps["train-forest"] == "failed" and steps["load-data"] == "succeeded"
    assert steps["evaluate"] in ("skipped", "failed")
    pods = k8s_cluster.kubectl(
        "get",
        "pods",
        "-n",
        run.engine_ref["namespace"],
        "-l",
        f"scanflow.io/run={run.id},scanflow.io/step=train-forest",
        "-o",
        "name",
    ).stdout.split()
    assert len(pods) == 2  # the first try and one retry


def test_cancel_stops_the_argo_run(argo, k8s_cluster: K8sCluster, tmp_path) -> None:
    project = digits_project(tmp_path, "digits-argo-cancel")
    engine = engine_for(project, k8s_cluster, "argo", hold={"train-forest"})
    run_id = engine.submit("train")
    events = []
    for event in engine.watch(run_id):
        events.append(event)
        if event.step == "train-forest" and event.status == "running":
            engine.cancel(run_id)
    assert events[-1].status == "cancelled" and events[-1].ends_run
    run = engine.get_run(run_id)
    live = json.loads(
        k8s_cluster.kubectl(
            "get",
            "workflow",
            run.engine_ref["name"],
            "-n",
            run.engine_ref["namespace"],
            "-o",
            "json",
        ).stdout
    )
    assert live["spec"]["shutdown"] == "Terminate" and live["status"]["phase"] in (
        "Failed",
        "Error",
    )
    steps = {s.name: s.status for s in engine.store.steps(run_id)}
    assert steps["train-forest"] == "cancelled" and steps["evaluate"] == "cancelled"
