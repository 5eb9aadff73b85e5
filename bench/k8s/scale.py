"""Kubernetes at scale, simulated: 200 services on 100 kwok nodes.

Usage: ``python bench/k8s/scale.py [--nodes 100] [--services 200] [--runs 3] [--ticks 30]``

Per run, starts its own cluster (``scripts/k8s-sim up --nodes N`` in a fresh state directory,
stopped at the end of the run), then: an application of ``--services`` services (1 pod each) is
rendered and deployed by ``scanflow deploy`` (images by ``--image``), and measured:

- deploy time: the ``scanflow deploy`` command's wall time (every object applied);
- time to all pods Running: from the start of the deploy until every service pod is Running;
- agents' reconcile latency: one tick reads the status of every service and decides (the
  autoscale rule's ``target_workers`` and failover's ``healthy`` on it), three ways:
  ``per_service``, each service's :class:`~scanflow.kube.services.KubeServiceControl` as
  agents get them (the controls of one backend share one listing per round);
  ``per_deployment``, the same controls each reading its own Deployment (no sharing); and
  ``batched``, one :meth:`~scanflow.kube.services.KubernetesServices.statuses` call (one
  list of Deployments); per tick and per service, over ``--ticks`` ticks.

Each run has its own cluster (``up``, the run, ``down``). Figures: JSON on stdout and in
``bench/results/k8s_scale.json``; the medians over the runs are reported.

The workflow half (a 200-step Argo workflow against the floor of its steps' pods) is
``bench/k8s/workflow_scale.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SIM = REPO / "scripts" / "k8s-sim"
IMAGE = "*=registry.example/scale:1"


def sim(env: dict[str, str], *args: str, timeout: float = 900) -> str:
    done = subprocess.run(
        [sys.executable, str(SIM), *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise SystemExit(f"scripts/k8s-sim {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def write_app(folder: Path, name: str, services: int) -> Path:
    """An application of ``services`` services of one pod each."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"name: {name}", "team: bench", "services:"]
    for i in range(services):
        lines.append(f"- {{name: svc-{i:03d}, model: 'models:/m{i}@champion', workers: 1}}")
    (folder / "scanflow.yaml").write_text("\n".join(lines) + "\n")
    return folder


def running(core: Any, namespace: str, selector: str) -> int:
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    return sum(
        1
        for p in pods
        if p.status and p.status.phase == "Running" and not p.metadata.deletion_timestamp
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def reconcile(project: Any, cluster: Any, ticks: int) -> dict[str, Any]:
    """Per-tick and per-service times of a tick reading every service's status and deciding:
    through the controls (sharing a listing), each reading its Deployment, and batched."""
    from scanflow.agents.strategies.autoscale import AutoscaleConfig, target_workers
    from scanflow.agents.strategies.failover import FailoverConfig, healthy
    from scanflow.kube.services import KubernetesServices

    backend = KubernetesServices(project, cluster)
    names = [s.name for s in project.app.services]
    controls = {n: backend.control(n) for n in names}
    alone = {n: backend.control(n) for n in names}
    for control in alone.values():
        control.shared = None  # each reads its own Deployment
    scale = AutoscaleConfig(service="x", max_workers=4)
    guard = FailoverConfig(service="x", model="m")
    window = [{"rps": 30.0, "queue_depth": 0.0, "p95_ms": 120.0}]

    def decide(status: dict[str, Any]) -> tuple[int, bool]:
        return target_workers(window, status["workers"], scale)[0], healthy(status, guard)

    figures: dict[str, Any] = {}
    for mode in ("per_service", "per_deployment", "batched"):
        tick_times, service_times = [], []
        for _ in range(ticks):
            started = time.perf_counter()
            if mode != "batched":
                chosen = controls if mode == "per_service" else alone
                for name in names:
                    t0 = time.perf_counter()
                    decide(chosen[name].status())
                    service_times.append(time.perf_counter() - t0)
            else:
                statuses = backend.statuses()
                assert len(statuses) == len(names), f"{len(statuses)} statuses read"
                for name in names:
                    t0 = time.perf_counter()
                    decide(statuses[name])
                    service_times.append(time.perf_counter() - t0)
            tick_times.append(time.perf_counter() - started)
        figures[mode] = {
            "tick_p50_s": statistics.median(tick_times),
            "tick_p99_s": percentile(tick_times, 0.99),
            "tick_max_s": max(tick_times),
            "service_p50_ms": statistics.median(service_times) * 1000,
            "service_p99_ms": percentile(service_times, 0.99) * 1000,
        }
    figures["per_service"]["listings"] = backend.snapshot.reads
    return figures


def one_run(env: dict[str, str], kubeconfig: str, work: Path, run: int, args: Any) -> dict:
    from kubernetes.client import CoreV1Api

    from scanflow.kube.cluster import connect
    from scanflow.kube.names import namespace_of, selector_of
    from scanflow.spec import load_project

    folder = write_app(work / f"app-{run}", f"scale-{run}", args.services)
    project = load_project(folder)
    cluster = connect(kubeconfig=kubeconfig)
    core = CoreV1Api(cluster.api)
    namespace = namespace_of(project.app)
    selector = selector_of(project.app, **{"scanflow.io/kind": "service"})
    command = [str(Path(sys.executable).parent / "scanflow"), "--app", str(folder), "deploy"]
    command += ["--image", IMAGE, "--kubeconfig", kubeconfig]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    deploy_s = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"scanflow deploy failed:\n{done.stderr[:2000]}")
    summary = done.stdout.strip().splitlines()[-1]
    deadline = started + 900
    while running(core, namespace, selector) < args.services:
        if time.monotonic() > deadline:
            raise SystemExit(f"not every pod Running after 900 s in {namespace}")
        time.sleep(0.25)
    running_s = time.monotonic() - started
    figures = reconcile(project, cluster, args.ticks)
    return {
        "run": run,
        "deploy_s": round(deploy_s, 2),
        "deploy_summary": summary,
        "all_running_s": round(running_s, 2),
        "reconcile": figures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ticks", type=int, default=30)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "k8s_scale.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="k8s-scale-"))
    load_before = os.getloadavg()
    runs, ups = [], []
    for run in range(args.runs):  # a cluster per run: its service IP range holds ~250
        env = {**os.environ, "K8S_SIM_STATE": str(work / f"sim-{run}")}
        t0 = time.monotonic()
        sim(env, "up", "--nodes", str(args.nodes))
        ups.append(time.monotonic() - t0)
        try:
            kubeconfig = sim(env, "kubeconfig").strip()
            runs.append(one_run(env, kubeconfig, work, run, args))
            print(json.dumps(runs[-1]), file=sys.stderr)
        finally:
            sim(env, "down")

    def median(pick: Any) -> float:
        return round(statistics.median(pick(r) for r in runs), 4)

    result = {
        "nodes": args.nodes,
        "services": args.services,
        "runs": runs,
        "cluster_up_s": [round(u, 1) for u in ups],
        "median": {
            "deploy_s": median(lambda r: r["deploy_s"]),
            "all_running_s": median(lambda r: r["all_running_s"]),
            **{
                f"{mode}_{key}": median(lambda r, m=mode, k=key: r["reconcile"][m][k])
                for mode in ("per_service", "per_deployment", "batched")
                for key in ("tick_p50_s", "tick_p99_s", "service_p99_ms")
            },
        },
        "machine": {
            "cpus": os.cpu_count(),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()],
        },
    }
    shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
