"""A 200-step workflow on Argo, on simulated nodes, against the floor of its pods alone.

Usage: ``python bench/k8s/workflow_scale.py [--repeat 3] [--nodes 100] [--width 198]``

Starts its own cluster (``scripts/k8s-sim up --nodes N`` in a temporary ``K8S_SIM_STATE``)
and Argo's controller (``argo up``, which waits while another controller holds the machine
lock), and stops both at the end. The DAG is a fan-out: one root step,
``width`` steps that depend on it, one join step that depends on all of them (``width + 2``
steps). Each round, in fresh namespaces:

- ``argo``: the Scanflow Kubernetes engine (flavour argo) submits the workflow; wall time
  from ``submit`` until the run is recorded ``succeeded``;
- ``floor``: the same steps as bare pods created by a minimal driver here (the root, then
  the fan-out at once, then the join, each wave created when the previous one Succeeded):
  the DAG's pods alone. kwok completes only pods that have an owner of a kind it knows, so
  each pod names a suspended Job (which creates no pods of its own) as a non-controller owner;
- ``jobs``: the same waves as Jobs (the Job controller creates and tracks each pod);
- ``burst``: all ``width + 2`` Jobs created at once, time until all completed.

kwok completes a pod as soon as it runs (no delay), so the figures are control-plane and
controller overheads only. Argo requeues on ``DEFAULT_REQUEUE_TIME`` (k8s-sim sets 1 s).
Results: JSON on stdout and ``bench/results/workflow_scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SIM = ROOT / "scripts" / "k8s-sim"
IMAGE = "registry.invalid/scale-steps:1"
POLL = 0.2


def sim(*args: str, env: dict[str, str], timeout: float = 1800) -> str:
    done = subprocess.run(
        [sys.executable, str(SIM), "-q", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise SystemExit(f"k8s-sim {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


def spec(name: str, width: int) -> str:
    lines = [f"name: {name}", "team: bench", "workflows:", "- name: fan", "  executors:"]
    lines += ["  - {name: root, script: step.py, outputs: [out]}"]
    for i in range(width):
        lines += [f"  - {{name: s{i:03d}, script: step.py, inputs: {{x: root.out}}}}"]
    deps = ", ".join(f"s{i:03d}" for i in range(width))
    lines += [f"  - {{name: join, script: step.py, depends_on: [{deps}]}}"]
    return "\n".join(lines) + "\n"


def argo_round(kubeconfig: str, width: int, name: str, work: Path) -> float:
    from scanflow.engines.base import follow
    from scanflow.engines.kubernetes.engine import KubernetesEngine
    from scanflow.spec.loader import load_project

    app = work / name
    app.mkdir()
    (app / "scanflow.yaml").write_text(spec(name, width))
    (app / "step.py").write_text("print('step')\n")
    engine = KubernetesEngine(
        load_project(app),
        engine="argo",
        kubeconfig=kubeconfig,
        tracking=False,
        image_of=lambda a, e: IMAGE,
    )
    started = time.monotonic()
    run = follow(engine, engine.submit("fan"))
    wall = time.monotonic() - started
    if run.status != "succeeded":
        raise SystemExit(f"the Argo run {run.id} ended {run.status}: {run.error}")
    return wall


def _job(name: str) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"bench": "floor"}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"bench": "floor"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": IMAGE, "command": ["python"]}],
                },
            },
        },
    }


def jobs_round(api, namespace: str, waves: list[list[str]]) -> float:
    """Create each wave's Jobs once the previous wave completed; seconds until the last."""
    from kubernetes import client

    batch = client.BatchV1Api(api)
    client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
    started = time.monotonic()
    for wave in waves:
        for name in wave:
            batch.create_namespaced_job(namespace, _job(name))
        pending = set(wave)
        while pending:
            for job in batch.list_namespaced_job(namespace).items:
                conditions = job.status.conditions or []
                if any(c.type == "Complete" and c.status == "True" for c in conditions):
                    pending.discard(job.metadata.name)
                if any(c.type == "Failed" and c.status == "True" for c in conditions):
                    raise SystemExit(f"job {job.metadata.name} failed")
            if pending:
                time.sleep(POLL)
    return time.monotonic() - started


def _pod(name: str, owner: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": "floor"}, "ownerReferences": [owner]},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": IMAGE, "command": ["python"]}],
        },
    }


def pods_round(api, namespace: str, waves: list[list[str]]) -> float:
    """Create each wave's pods at once (8 requests in flight) once the previous wave
    Succeeded; seconds until the last pod Succeeded."""
    from kubernetes import client

    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    core.create_namespace({"metadata": {"name": namespace}})
    anchor = _job("anchor")
    anchor["spec"]["suspend"] = True
    job = batch.create_namespaced_job(namespace, anchor)
    owner = {"apiVersion": "batch/v1", "kind": "Job", "name": "anchor", "uid": job.metadata.uid}
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        for wave in waves:
            create = lambda n: core.create_namespaced_pod(namespace, _pod(n, owner))  # noqa: E731
            list(pool.map(create, wave))
            pending = set(wave)
            while pending:
                raw = core.list_namespaced_pod(
                    namespace, label_selector="bench=floor", _preload_content=False
                )
                for pod in json.loads(raw.data)["items"]:
                    phase = pod["status"].get("phase")
                    if phase == "Succeeded":
                        pending.discard(pod["metadata"]["name"])
                    elif phase == "Failed":
                        raise SystemExit(f"pod {pod['metadata']['name']} failed")
                if pending:
                    time.sleep(POLL)
    return time.monotonic() - started


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--width", type=int, default=198)
    args = parser.parse_args()
    from kubernetes import config

    steps = [f"s{i:03d}" for i in range(args.width)]
    results: dict = {"steps": args.width + 2, "nodes": args.nodes, "rounds": []}
    with tempfile.TemporaryDirectory(prefix="wf-scale-") as tmp:
        env = {**os.environ, "K8S_SIM_STATE": str(Path(tmp) / "run")}
        t0 = time.monotonic()
        sim("up", "--nodes", str(args.nodes), env=env)
        results["up_seconds"] = round(time.monotonic() - t0, 2)
        try:
            t0 = time.monotonic()
            sim("argo", "up", "--lock-timeout", "1800", env=env, timeout=3600)
            results["argo_up_seconds"] = round(time.monotonic() - t0, 2)
            kubeconfig = sim("kubeconfig", env=env).strip()
            api = config.new_client_from_config(config_file=kubeconfig)
            for n in range(args.repeat):
                row = {"load_before": load()}
                row["argo"] = argo_round(kubeconfig, args.width, f"fan{n}", Path(tmp))
                row["floor"] = pods_round(api, f"floor-{n}", [["root"], steps, ["join"]])
                row["jobs"] = jobs_round(api, f"jobs-{n}", [["root"], steps, ["join"]])
                row["burst"] = jobs_round(api, f"burst-{n}", [["root", *steps, "join"]])
                row["load_after"] = load()
                print(json.dumps(row), file=sys.stderr)
                results["rounds"].append(row)
        finally:
            subprocess.run([sys.executable, str(SIM), "-q", "down"], env=env, timeout=300)
    for key in ("argo", "floor", "jobs", "burst"):
        values = [r[key] for r in results["rounds"]]
        results[key] = {
            "median": round(statistics.median(values), 2),
            "min": round(min(values), 2),
            "max": round(max(values), 2),
        }
    results["argo_over_floor"] = round(results["argo"]["median"] / results["floor"]["median"], 2)
    out = ROOT / "bench" / "results" / "workflow_scale.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
