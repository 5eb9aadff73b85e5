"""The ``k8s_cluster`` fixture: one real control plane (scripts/k8s-sim) per test session.

Every test under tests/k8s gets the ``k8s`` marker. Set ``K8S_SIM_USE_RUNNING=1`` to run the
tests against the cluster of the default state directory (started if needed, left running)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .k8s_support import UP_TIMEOUT, K8sCluster, running_pids, sim


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.k8s)


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
