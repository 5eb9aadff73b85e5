"""scripts/k8s-sim: cached build, start and stop times, and memory of the control plane.

Usage: ``python bench/k8s_sim.py [--repeat 3] [--nodes 3] [--cold]``

Each round starts a cluster in a fresh state directory with ``scripts/k8s-sim up``, records
the wall time of ``up`` and its own ready time (start of etcd to nodes Ready), the resident
memory (RSS) of every component right after the start and again after a test-like load
(Argo's Workflow CRD applied server-side, a Deployment of 10 replicas Running), then the wall
time of ``down``. ``--cold`` first builds everything once with empty Go and k8s-sim caches in a
temporary directory (needs ~5 GB of disk and several minutes of both cores).
No peer runs here: kind, k3d and minikube need a container engine, which this machine lacks.
Results: JSON on stdout and ``bench/results/k8s_sim.json``.
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIM = HERE.parent / "scripts" / "k8s-sim"
ARGO_CRD = HERE.parent.parent / "shared" / "k8s" / "argo-v4.1.2" / "argoproj.io_workflows.yaml"
DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: load}
spec:
  replicas: 10
  selector: {matchLabels: {app: load}}
  template:
    metadata: {labels: {app: load}}
    spec: {containers: [{name: c, image: registry.invalid/load:1}]}
"""


def run(*args: str, env: dict[str, str], input: str | None = None) -> tuple[float, str]:
    """Run a command, fail loudly, return (wall seconds, stdout)."""
    t0 = time.perf_counter()
    proc = subprocess.run(args, env=env, input=input, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return elapsed, proc.stdout


def rss_mib(state: Path) -> dict[str, float]:
    """RSS of each recorded component, MiB."""
    out = {}
    for proc in json.loads((state / "cluster.json").read_text())["processes"]:
        for line in Path(f"/proc/{proc['pid']}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out[proc["name"]] = round(int(line.split()[1]) / 1024, 1)
    out["total"] = round(sum(out.values()), 1)
    return out


def _established(kubectl: list[str], env: dict[str, str]) -> bool:
    proc = subprocess.run(
        [
            *kubectl,
            "get",
            "crd/workflows.argoproj.io",
            "-o",
            'jsonpath={.status.conditions[?(@.type=="Established")].status}',
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    return proc.stdout.strip() == "True"


def one_round(nodes: int, base_env: dict[str, str]) -> dict:
    """Start, load, measure and stop one cluster (stopped also when a step fails)."""
    with tempfile.TemporaryDirectory(prefix="k8s-sim-bench-") as tmp:
        env = {**base_env, "K8S_SIM_STATE": str(Path(tmp) / "run")}
        state = Path(tmp) / "run"
        try:
            up_s, _ = run(sys.executable, str(SIM), "-q", "up", "--nodes", str(nodes), env=env)
            record = json.loads((state / "cluster.json").read_text())
            after_up = rss_mib(state)
            kubectl = [
                str(Path(record["cache"]) / "bin" / "kubectl"),
                f"--kubeconfig={record['kubeconfig']}",
            ]
            t0 = time.perf_counter()
            run(*kubectl, "apply", "--server-side", "-f", str(ARGO_CRD), env=env)
            deadline = time.monotonic() + 120
            while not _established(kubectl, env):
                if time.monotonic() > deadline:
                    sys.exit("the Workflow CRD was not Established within 120 s")
                time.sleep(0.2)
            run(*kubectl, "apply", "-f", "-", env=env, input=DEPLOYMENT)
            run(*kubectl, "rollout", "status", "deployment/load", "--timeout=120s", env=env)
            load_s = time.perf_counter() - t0
            after_load = rss_mib(state)
        finally:
            down_s, _ = run(sys.executable, str(SIM), "-q", "down", env=env)
    return {
        "up_s": round(up_s, 2),
        "ready_s": record["ready_seconds"],
        "nodes_ready_s": record["nodes_ready_seconds"],
        "load_s": round(load_s, 2),
        "down_s": round(down_s, 2),
        "rss_after_up_mib": after_up,
        "rss_after_load_mib": after_load,
    }


def cold_build(base_env: dict[str, str]) -> dict:
    """Build everything with empty Go caches and an empty k8s-sim cache."""
    with tempfile.TemporaryDirectory(prefix="k8s-sim-cold-") as tmp:
        env = {
            **base_env,
            "K8S_SIM_CACHE": f"{tmp}/sim",
            "GOCACHE": f"{tmp}/gocache",
            "GOMODCACHE": f"{tmp}/gomod",
        }
        seconds, _ = run(sys.executable, str(SIM), "-q", "build", env=env)
        parts = json.loads(Path(f"{tmp}/sim/manifest.json").read_text())["components"]
        subprocess.run(["chmod", "-R", "u+w", f"{tmp}/gomod"], check=False)  # Go makes it read-only
        return {
            "total_s": round(seconds, 1),
            "parts_s": {name: part["seconds"] for name, part in parts.items()},
        }


def summary(values: list[float]) -> dict:
    """Median and range."""
    return {"median": round(statistics.median(values), 2), "min": min(values), "max": max(values)}


def main() -> None:
    """Run the rounds and print/save the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="also time a fully cold build")
    args = parser.parse_args()
    env = dict(os.environ)
    result: dict = {"nodes": args.nodes, "load_before": os.getloadavg()}
    if args.cold:
        result["cold_build"] = cold_build(env)
    warm = [run(sys.executable, str(SIM), "-q", "build", env=env)[0] for _ in range(args.repeat)]
    result["cached_build_s"] = summary([round(w, 2) for w in warm])
    rounds = [one_round(args.nodes, env) for _ in range(args.repeat)]
    result["rounds"] = rounds
    for key in ("up_s", "nodes_ready_s", "ready_s", "load_s", "down_s"):
        result[key] = summary([r[key] for r in rounds])
    for key in ("rss_after_up_mib", "rss_after_load_mib"):
        names = rounds[0][key]
        result[key] = {n: summary([r[key][n] for r in rounds]) for n in names}
    result["load_after"] = os.getloadavg()
    out = HERE / "results" / "k8s_sim.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
