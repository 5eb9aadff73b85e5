"""drift-retrain's retrain action on the Kubernetes toolkit: the training workflow is submitted
through the Kubernetes engine (here its Jobs flavour, chosen in scanflow.yaml), with the
recent data's path as its parameter, and followed to its end on the test cluster."""

from __future__ import annotations

import json

from scanflow.agents.context import ActionContext
from scanflow.agents.service import toolkit_for
from scanflow.agents.strategies.actions import retrain
from scanflow.agents.strategies.drift_retrain import DriftRetrainConfig
from scanflow.kube.names import namespace_of
from scanflow.spec.loader import load_project
from scanflow.store import Store

from .engine_support import digits_project
from .k8s_support import K8sCluster

DATA = "/data/recent-window.npz"  # the collected data's path, as a checkpoint holds it


def test_the_retrain_action_runs_the_workflow_on_the_kubernetes_engine(
    k8s_cluster: K8sCluster, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(k8s_cluster.kubeconfig))
    project = digits_project(tmp_path, "digits-retrain", "kubernetes:\n  workflow_engine: jobs\n")
    spec = project.base_dir / "scanflow.yaml"
    text = spec.read_text().replace("    seed: 42\n", "    seed: 42\n    recent_data: ''\n")
    spec.write_text(text)
    project = load_project(project.base_dir)  # the workflow takes the data's path
    config = DriftRetrainConfig(service="predictor", model="digits")
    saved: list[dict] = []
    ctx = ActionContext(
        agent="retrainer",
        decision_id="0123456789abcdef",
        step=0,
        action="retrain",
        config=config.model_dump(),
        toolkit=toolkit_for(project, "kubernetes"),
        checkpoint={"data": {"train": DATA}, "before": None},  # data already collected
        _save=saved.append,
    )

    outcome = retrain(ctx, config, since=None)

    run_id = outcome.result["run_id"]
    assert saved and saved[-1]["run_id"] == run_id  # a restarted agent resumes this run
    assert outcome.result["run_status"] == "succeeded"
    run = Store.for_state_dir(project.state_dir).get_run(run_id)
    assert run.engine == "kubernetes" and run.engine_ref["kind"] == "ConfigMap"  # Jobs
    out = k8s_cluster.kubectl(
        "get",
        "jobs",
        "-n",
        namespace_of(project.app),
        "-l",
        f"scanflow.io/run={run_id}",
        "-o",
        "json",
    ).stdout
    jobs = {j["metadata"]["labels"]["scanflow.io/step"]: j for j in json.loads(out)["items"]}
    assert set(jobs) == {"load-data", "train-logreg", "train-forest", "evaluate"}
    [container] = jobs["load-data"]["spec"]["template"]["spec"]["containers"]
    assert f"recent_data={DATA}" in container["command"] + container.get("args", [])
    # kwok completes the pods without running them: no model was registered
    assert not outcome.ok and "registered no new digits@candidate" in outcome.message
