"""The ``k8s_cluster`` fixture: one real control plane (scripts/k8s-sim) per test session;
``argo``: Argo's workflow-controller for it; ``argo_namespace``: a namespace it runs;
``pod_player``: the stand-in for a kubelet that runs the pods which ask for it.

A plugin of the whole suite (``pytest_plugins`` in tests/conftest.py), so that each runs
once per session wherever it is used. Set ``K8S_SIM_USE_RUNNING=1`` to run the
tests against the cluster of the default state directory (started if needed, left running,
with its controller)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .k8s_support import (
    ARGO_LOCK_TIMEOUT,
    ARGO_UP_TIMEOUT,
    SIM,
    UP_TIMEOUT,
    ArgoController,
    K8sCluster,
    PodPlayer,
    running_pids,
    sim,
)


@pytest.fixture(scope="session")
def k8s_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[K8sCluster]:
    """A real control plane with 3 kwok nodes, shared by the session; stopped at its end, and
    checked to leave no process behind."""
    use_running = os.environ.get("K8S_SIM_USE_RUNNING") == "1"
    env = dict(os.environ)
    if not use_running:
        env["K8S_SIM_STATE"] = str(tmp_path_factory.mktemp("k8s-sim") / "run")
    up = sim("up", "--nodes", "3", env=env, timeout=UP_TIMEOUT)
    if up.returncode != 0:
        pytest.fail(
            f"scripts/k8s-sim up failed (exit {up.returncode}):\n{up.stderr}", pytrace=False
        )
    kubeconfig = sim("kubeconfig", env=env)
    state = Path(kubeconfig.stdout.strip()).parent
    cluster = K8sCluster(state, json.loads((state / "cluster.json").read_text()), env)
    yield cluster
    if use_running:
        return
    down = sim("down", env=env)
    assert down.returncode == 0, down.stderr
    assert running_pids(list(cluster.pids.values())) == [], "k8s-sim down left processes behind"
    assert not state.exists()


@pytest.fixture(scope="session")
def argo(k8s_cluster: K8sCluster) -> Iterator[ArgoController]:
    """Argo's workflow-controller (CRDs applied, all namespaces watched) for the session's
    cluster; stopped at the session's end and checked to leave no process behind.

    One controller runs per machine: while another session's runs, this waits for it."""
    use_running = os.environ.get("K8S_SIM_USE_RUNNING") == "1"
    env = k8s_cluster.env
    up = sim(
        "argo", "up", "--lock-timeout", str(ARGO_LOCK_TIMEOUT), env=env, timeout=ARGO_UP_TIMEOUT
    )
    if up.returncode != 0:
        pytest.fail(
            f"scripts/k8s-sim argo up failed (exit {up.returncode}):\n{up.stderr}", pytrace=False
        )
    record_path = k8s_cluster.state / "argo.json"
    record = json.loads(record_path.read_text())
    controller = ArgoController(
        record["namespace"], record["namespaced"], record["process"]["pid"], record
    )
    yield controller
    if use_running:
        return
    down = sim("argo", "down", env=env)
    assert down.returncode == 0, down.stderr
    assert running_pids([controller.pid]) == [], "k8s-sim argo down left the controller running"
    assert not record_path.exists()


@pytest.fixture
def argo_namespace(argo: ArgoController, k8s_cluster: K8sCluster) -> Iterator[str]:
    """A fresh namespace whose Workflows the session's controller runs (as an application's
    namespace would be); deleted after the test."""
    from kubernetes import client

    with k8s_cluster.api_client() as api:
        core = client.CoreV1Api(api)
        name = core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(generate_name="wf-"))
        ).metadata.name
        assert argo.watches(name)
        yield name
        core.delete_namespace(name)


@pytest.fixture
def pod_player(k8s_cluster: K8sCluster, tmp_path: Path) -> Iterator[PodPlayer]:
    """``scripts/k8s-sim play`` for the test: the pods annotated
    ``k8s-sim.scanflow.io/outcome: play`` run on this host; stopped (SIGTERM, by PID) after
    the test, checked to exit 0 and to leave none of the processes it started."""
    logs = tmp_path / "pod-logs"
    logs.mkdir()
    with open(tmp_path / "pod-player.log", "wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(SIM), "play", "--log-dir", str(logs)],
            env=k8s_cluster.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    player = PodPlayer(process.pid, logs, tmp_path / "pod-player.log")
    try:
        yield player
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=120)
    assert code == 0, player.output()
    assert running_pids(player.started()) == [], "the pod player left processes behind"
