"""scripts/k8s-sim's command line: build cache, up/status/kubeconfig/down contract, bad input,
and a failing start that cleans up after itself."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from .k8s_support import K8sCluster, running_pids, sim


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "K8S_SIM_STATE": str(tmp_path / "run"), **extra}


def _processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (read-only scan of /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return running_pids(found)


def test_second_build_uses_the_cache(k8s_cluster: K8sCluster) -> None:
    proc = sim("build")
    assert proc.returncode == 0, proc.stderr
    assert "(cached," in proc.stdout
    manifest = json.loads((Path(k8s_cluster.record["cache"]) / "manifest.json").read_text())
    assert {k: c["version"] for k, c in manifest["components"].items() if k != "kwok-stages"} == {
        "kubernetes": "v1.36.3",
        "etcd": "v3.6.8",
        "kwok": "v0.8.0",
        "argo": "v3.7.18",
    }
    crds = sorted(p.name for p in (Path(k8s_cluster.record["cache"]) / "argo-crds").iterdir())
    assert len(crds) == 8 and "argoproj.io_workflowtaskresults.yaml" in crds


def test_stage_file_has_kwoks_stages_and_the_outcome_stages(k8s_cluster: K8sCluster) -> None:
    stages = (Path(k8s_cluster.record["cache"]) / "kwok-stages.yaml").read_text()
    for name in (
        "node-initialize",
        "node-heartbeat",
        "pod-ready",
        "pod-complete",
        "pod-delete",
        "k8s-sim-pod-fail",
        "k8s-sim-workflow-pod-complete",
        "k8s-sim-workflow-pod-fail",
    ):
        assert f"name: {name}\n" in stages
    complete = stages[stages.index("name: pod-complete") : stages.index("name: pod-delete")]
    assert '.metadata.annotations["k8s-sim.scanflow.io/outcome"]' in complete


def test_up_status_kubeconfig_down_contract(tmp_path: Path) -> None:
    env = _env(tmp_path)
    state = tmp_path / "run"
    assert sim("status", env=env).returncode == 3

    up = sim("up", "--nodes", "1", env=env, timeout=300)
    assert up.returncode == 0, up.stderr
    assert "with 1 nodes" in up.stdout
    record = json.loads((state / "cluster.json").read_text())
    pids = [p["pid"] for p in record["processes"]]
    assert [p["name"] for p in record["processes"]] == [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
    ]
    assert len(running_pids(pids)) == 5
    assert set(record["ports"].values()) and all(p > 0 for p in record["ports"].values())

    status = sim("status", env=env)
    assert status.returncode == 0
    for name, pid in zip(
        ("etcd", "kube-apiserver", "kwok"), (pids[0], pids[1], pids[4]), strict=True
    ):
        assert any(
            line.startswith(name) and f"pid {pid}" in line for line in status.stdout.splitlines()
        )

    again = sim("up", env=env)
    assert again.returncode == 0 and again.stdout.startswith("already up")
    assert json.loads((state / "cluster.json").read_text())["processes"] == record["processes"]

    kubeconfig = sim("kubeconfig", env=env)
    assert (
        kubeconfig.returncode == 0 and Path(kubeconfig.stdout.strip()) == state / "admin.kubeconfig"
    )

    nodes = sim("kubectl", "get", "nodes", "-o", "name", env=env)
    assert nodes.returncode == 0 and nodes.stdout.split() == ["node/kwok-node-0"]

    down = sim("down", env=env)
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip() == (
        "stopped kube-controller-manager, kube-scheduler, kwok, kube-apiserver, etcd"
    )
    assert running_pids(pids) == []
    assert _processes_mentioning(str(state)) == []
    assert not state.exists()

    assert sim("status", env=env).returncode == 3
    assert sim("kubeconfig", env=env).returncode == 3
    again = sim("down", env=env)
    assert again.returncode == 0 and again.stdout.strip() == "nothing was running"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["up", "--nodes", "0"], "--nodes must be between 1 and 100, got 0"),
        (["up", "--nodes", "101"], "--nodes must be between 1 and 100, got 101"),
        (["--kubernetes-version", "1.36", "build"], "Kubernetes version '1.36' is not of the form"),
        (
            ["argo", "up", "--namespace", "Team_App"],
            "--namespace 'Team_App' is not a valid namespace name",
        ),
    ],
)
def test_bad_input_is_refused_clearly(tmp_path: Path, args: list[str], message: str) -> None:
    proc = sim(*args, env=_env(tmp_path))
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_failed_start_stops_what_it_started(tmp_path: Path, k8s_cluster: K8sCluster) -> None:
    """A broken kwok stage file makes kwok exit: ``up`` reports it and leaves nothing behind."""
    real = Path(k8s_cluster.record["cache"])
    cache = tmp_path / "cache"
    (cache / "bin").mkdir(parents=True)
    for binary in (real / "bin").iterdir():
        (cache / "bin" / binary.name).symlink_to(binary)
    shutil.copy(real / "manifest.json", cache / "manifest.json")
    (cache / "kwok-stages.yaml").write_text(
        "apiVersion: kwok.x-k8s.io/v1alpha1\nkind: Stage\nspec: [\n"
    )
    env = _env(tmp_path, K8S_SIM_CACHE=str(cache))
    proc = sim("up", "--nodes", "1", env=env, timeout=300)
    assert proc.returncode == 1
    assert "kwok exited while waiting for" in proc.stderr
    assert _processes_mentioning(str(tmp_path / "run")) == []
    assert not (tmp_path / "run" / "cluster.json").exists()
    assert sim("status", env=env).returncode == 3
