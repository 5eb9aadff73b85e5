"""Runs on Kubernetes that cannot go well: no cluster, a refused request, a quota, an image
that cannot be pulled. Each is a clear error or a failed run that says why, never a hang."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import free_port, wait_for

from scanflow.engines.base import follow
from scanflow.engines.kubernetes.engine import KubernetesEngine
from scanflow.errors import KubeError
from scanflow.kube.apply import claim_namespace
from scanflow.kube.cluster import connect
from scanflow.kube.names import labels_of, namespace_of
from scanflow.store import Store

from .engine_support import NOWHERE, digits_project, engine_for
from .k8s_support import K8sCluster


def _kubeconfig(path: Path, server: str, ca: Path | None = None, token: str = "x") -> Path:
    cluster = {"server": server, **({"certificate-authority": str(ca)} if ca else {})}
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": {"token": token}}],
                "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "ctx",
            }
        )
    )
    return path


@pytest.mark.parametrize("flavour", ["jobs", "argo"])
def test_no_reachable_cluster_is_a_clear_error_and_records_nothing(tmp_path, flavour) -> None:
    project = digits_project(tmp_path, "digits-nocluster")
    config = _kubeconfig(tmp_path / "kc", f"https://127.0.0.1:{free_port()}")
    engine = KubernetesEngine(project, engine=flavour, kubeconfig=config)
    with pytest.raises(KubeError, match=r"is not reachable: .*is it running"):
        engine.submit("train")
    assert Store.for_state_dir(project.state_dir).list_runs() == []


def test_a_broken_kubeconfig_is_named_and_records_nothing(tmp_path) -> None:
    project = digits_project(tmp_path, "digits-badconfig")
    broken = tmp_path / "broken.kubeconfig"
    broken.write_text("clusters: [oops\n")
    engine = KubernetesEngine(project, engine="jobs", kubeconfig=broken)
    with pytest.raises(KubeError, match=f"kubeconfig {broken} is not a valid kubeconfig"):
        engine.submit("train")
    missing = KubernetesEngine(project, engine="jobs", kubeconfig=tmp_path / "none")
    with pytest.raises(KubeError, match="no kubeconfig at .*none: set KUBECONFIG"):
        missing.submit("train")
    assert Store.for_state_dir(project.state_dir).list_runs() == []


def _claimed(k8s_cluster: K8sCluster, project) -> str:
    """The application's namespace, created by Scanflow as a deploy would."""
    app = project.app
    claim_namespace(connect(None, k8s_cluster.kubeconfig), namespace_of(app), labels_of(app))
    return namespace_of(app)


def test_a_quota_that_refuses_pods_fails_the_run_with_its_message(
    k8s_cluster: K8sCluster, tmp_path
) -> None:
    project = digits_project(tmp_path, "digits-quota")
    namespace = _claimed(k8s_cluster, project)
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-pods"}}
    quota["spec"] = {"hard": {"pods": "0"}}
    k8s_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(quota))
    engine = engine_for(project, k8s_cluster, "jobs")
    run = follow(engine, engine.submit("train"))
    assert run.status == "failed"
    assert "load-data (a ResourceQuota refused its pod:" in run.error
    assert "exceeded quota: no-pods" in run.error
    steps = {s.name: s.status for s in engine.store.steps(run.id)}
    assert steps["load-data"] == "failed" and steps["evaluate"] == "skipped"


def test_argo_a_quota_that_refuses_pods_fails_the_run(
    k8s_cluster: K8sCluster, argo, tmp_path
) -> None:
    project = digits_project(tmp_path, "digits-quota-argo")
    namespace = _claimed(k8s_cluster, project)
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-pods"}}
    quota["spec"] = {"hard": {"pods": "0"}}
    k8s_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(quota))
    engine = engine_for(project, k8s_cluster, "argo")
    run = follow(engine, engine.submit("train"))
    assert run.status == "failed"
    assert "load-data (a ResourceQuota refused its pod:" in run.error
    assert "exceeded quota: no-pods" in run.error


def _restricted_kubeconfig(k8s_cluster: K8sCluster, namespace: str, rules: list, path: Path):
    """A kubeconfig whose only credential is a TokenRequest token of a ServiceAccount that
    may claim ``namespace`` and do ``rules`` in it."""
    from kubernetes import client

    with k8s_cluster.api_client() as api:
        core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
        core.create_namespaced_service_account(namespace, {"metadata": {"name": "runner"}})
        subject = [{"kind": "ServiceAccount", "name": "runner", "namespace": namespace}]
        rbac.create_namespaced_role(namespace, {"metadata": {"name": "runner"}, "rules": rules})
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": "runner"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "runner",
                },
                "subjects": subject,
            },
        )
        name = f"claim-{namespace}"
        rbac.create_cluster_role(
            {
                "metadata": {"name": name},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["namespaces"],
                        "resourceNames": [namespace],
                        "verbs": ["get", "patch"],
                    }
                ],
            }
        )
        rbac.create_cluster_role_binding(
            {
                "metadata": {"name": name},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": name,
                },
                "subjects": subject,
            }
        )
        token = core.create_namespaced_service_account_token(
            "runner", namespace, {"spec": {"expirationSeconds": 900}}
        ).status.token
    return _kubeconfig(path, k8s_cluster.server, k8s_cluster.ca, token)


CONFIGMAPS = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get", "patch"]}
READ = ["get", "list", "watch"]
READ_JOBS = [
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": READ},
    {"apiGroups": [""], "resources": ["pods", "events"], "verbs": READ},
]


def test_rbac_refusing_jobs_fails_the_run_naming_verb_and_resource(
    k8s_cluster: K8sCluster, tmp_path
) -> None:
    project = digits_project(tmp_path, "digits-rbac")
    namespace = _claimed(k8s_cluster, project)
    rules = [CONFIGMAPS, *READ_JOBS]  # may read Jobs, not create them
    config = _restricted_kubeconfig(k8s_cluster, namespace, rules, tmp_path / "kc")
    engine = KubernetesEngine(project, engine="jobs", kubeconfig=config)
    run = follow(engine, engine.submit("train"))
    assert run.status == "failed"
    assert "forbidden: cannot create job 'train-" in run.error
    assert f'cannot create resource "jobs" in API group "batch" in the namespace "{namespace}"' in (
        run.error
    )


def test_argo_rbac_refusing_workflows_is_an_error_and_records_nothing(
    k8s_cluster: K8sCluster, argo, tmp_path
) -> None:
    project = digits_project(tmp_path, "digits-rbac-argo")
    namespace = _claimed(k8s_cluster, project)
    config = _restricted_kubeconfig(k8s_cluster, namespace, [CONFIGMAPS], tmp_path / "kc")
    engine = KubernetesEngine(project, engine="argo", kubeconfig=config)
    with pytest.raises(KubeError, match="forbidden: cannot create workflows in namespace"):
        engine.submit("train")
    assert engine.store.list_runs() == []


def _fail_image_pull(k8s_cluster: K8sCluster, namespace: str, run_id: str, step: str) -> str:
    """Patch the status of the step's (unscheduled) pod as a kubelet does when its image
    cannot be pulled; returns the pod's name."""
    from kubernetes import client

    selector = f"scanflow.io/run={run_id},scanflow.io/step={step}"
    with k8s_cluster.api_client() as api:
        core = client.CoreV1Api(api)
        [pod] = wait_for(
            lambda: core.list_namespaced_pod(namespace, label_selector=selector).items,
            120,
            f"the pod of step {step}",
        )
        container = pod.spec.containers[-1]
        status = {
            "name": container.name,
            "image": container.image,
            "imageID": "",
            "ready": False,
            "restartCount": 0,
            "state": {
                "waiting": {
                    "reason": "ErrImagePull",
                    "message": f'failed to pull image "{container.image}": not found',
                }
            },
        }
        core.patch_namespaced_pod_status(
            pod.metadata.name, namespace, {"status": {"containerStatuses": [status]}}
        )
    return pod.metadata.name


def test_an_image_that_cannot_be_pulled_is_shown_then_fails_the_step(
    k8s_cluster: K8sCluster, tmp_path
) -> None:
    project = digits_project(tmp_path, "digits-pull")
    engine = engine_for(project, k8s_cluster, "jobs", hold={"load-data"})
    engine.image_pull_grace = 15.0
    run_id = engine.submit("train")
    namespace = engine.get_run(run_id).engine_ref["namespace"]
    assert NOWHERE  # load-data's pod is never scheduled: only its status says why
    pod = _fail_image_pull(k8s_cluster, namespace, run_id, "load-data")

    def step_error() -> str | None:
        [step] = [s for s in engine.store.steps(run_id) if s.name == "load-data"]
        return step.error if step.status == "running" and step.error else None

    assert "ErrImagePull: failed to pull image" in wait_for(step_error, 60, "the pull error")
    cli = [str(Path(sys.executable).parent / "scanflow"), "--app", str(project.base_dir)]
    shown = subprocess.run(
        [*cli, "show", run_id, "-o", "json"], capture_output=True, text=True, timeout=120
    )
    [load] = [s for s in json.loads(shown.stdout)["steps"] if s["name"] == "load-data"]
    assert load["status"] == "running" and "ErrImagePull" in load["error"]
    [attempt] = load["attempts"]
    assert attempt["exit_code"] is None and attempt["error"].startswith("ErrImagePull")
    assert attempt["log"] == f"pod/{pod}"

    run = follow(engine, run_id)
    assert run.status == "failed"
    assert "load-data (its image cannot be pulled (ErrImagePull: failed to pull" in run.error
    assert "for 15 s" in run.error
    steps = {s.name: s.status for s in engine.store.steps(run_id)}
    assert steps == {
        "load-data": "failed",
        "train-logreg": "skipped",
        "train-forest": "skipped",
        "evaluate": "skipped",
    }


def test_show_lists_each_pod_of_a_retried_step_with_its_exit_code(
    k8s_cluster: K8sCluster, tmp_path
) -> None:
    project = digits_project(tmp_path, "digits-attempts")
    engine = engine_for(project, k8s_cluster, "jobs", fail={"train-forest"}, retries=1)
    run = follow(engine, engine.submit("train"))
    assert run.status == "failed"
    assert "train-forest (BackoffLimitExceeded" in run.error
    assert "attempt 2 exited with code 1 (Error)" in run.error
    cli = [str(Path(sys.executable).parent / "scanflow"), "--app", str(project.base_dir)]
    shown = subprocess.run(
        [*cli, "show", run.id, "-o", "json"], capture_output=True, text=True, timeout=120
    )
    steps = {s["name"]: s for s in json.loads(shown.stdout)["steps"]}
    forest = [(a["number"], a["exit_code"], a["error"]) for a in steps["train-forest"]["attempts"]]
    assert forest == [(1, 1, "Error"), (2, 1, "Error")]
    assert [(a["exit_code"], a["error"]) for a in steps["load-data"]["attempts"]] == [(0, None)]
    assert steps["evaluate"]["attempts"] == []
    table = subprocess.run(
        [*cli, "show", run.id], capture_output=True, text=True, timeout=120, env=_wide()
    )
    assert "2 (1, 1)" in table.stdout and "1 (0)" in table.stdout


def _wide() -> dict[str, str]:
    import os

    return {**os.environ, "COLUMNS": "250"}
