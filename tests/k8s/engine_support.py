"""Helpers for the Kubernetes engine tests: the digits application on the test cluster."""

from __future__ import annotations

import shutil
from pathlib import Path

from scanflow.engines.kubernetes.engine import KubernetesEngine
from scanflow.engines.kubernetes.steps import PodOverrides
from scanflow.spec.loader import load_project

from .k8s_support import REPO, K8sCluster

FAIL = {"k8s-sim.scanflow.io/outcome": "fail"}  # kwok fails such a pod (exit code 1)
NOWHERE = {"scanflow.io/test-node": "none"}  # no node matches: the pod waits, the step runs
PLAY = {"k8s-sim.scanflow.io/outcome": "play"}  # the pod player runs such a pod on the host
PLAY_APP_DIR = "k8s-sim.scanflow.io/app-dir"  # the host folder that stands for its /app


def digits_project(tmp_path: Path, name: str, extra: str = ""):
    """A copy of examples/digits whose application is ``name`` (its own namespace)."""
    root = tmp_path / name
    shutil.copytree(REPO / "examples" / "digits", root, ignore=shutil.ignore_patterns(".scanflow"))
    spec = (root / "scanflow.yaml").read_text().replace("name: digits\n", f"name: {name}\n", 1)
    (root / "scanflow.yaml").write_text(spec + extra)
    return load_project(root)


def engine_for(
    project,
    k8s_cluster: K8sCluster,
    flavour: str,
    fail=(),
    hold=(),
    retries: int | None = None,
    play: bool = False,
) -> KubernetesEngine:
    """The engine on the test cluster; steps in ``fail`` fail, those in ``hold`` never start;
    with ``play``, the other steps' pods run their command for real through the pod player
    (the ``pod_player`` fixture), the project's folder standing for the image's /app."""
    played = {**PLAY, PLAY_APP_DIR: str(project.base_dir)} if play else {}

    if retries is not None:
        for executor in project.app.workflows[0].executors:
            executor.retries, executor.retry_backoff = retries, 1.0

    def hook(executor) -> PodOverrides:
        return PodOverrides(
            annotations=FAIL if executor.name in fail else played,
            node_selector=NOWHERE if executor.name in hold else {},
        )

    return KubernetesEngine(
        project, engine=flavour, kubeconfig=k8s_cluster.kubeconfig, pod_hook=hook
    )
