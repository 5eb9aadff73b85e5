"""Per-step orchestration overhead: Scanflow local vs KFP local vs Metaflow local vs bare Python.

Usage: ``python bench/workflow_steps.py [--steps 10 200] [--repeat 3] [--peers PYTHON]``

Every system runs the same trivial step (a Python process that does nothing) as a chain
of N steps and as a fan-out of N steps. Times are wall-clock seconds of one workflow run,
measured inside an already started Python process (imports done), divided by N.
Scanflow runs with MLflow tracking on (embedded SQLite store, created before timing) and
with the cache off. Fan-outs run with each system's default parallelism: Scanflow one
step per CPU, Metaflow 16 workers, KFP local one task at a time. Peers run in the
interpreter given by ``--peers`` (a virtualenv with ``kfp`` and ``metaflow``); they are
skipped, and said so, when it is missing.
Results: JSON on stdout and ``bench/results/workflow_steps.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEER_PYTHON = HERE / ".venv-peers" / "bin" / "python"


def scanflow_spec(n: int, shape: str) -> str:
    lines = ["name: bench", "workflows:", f"- name: {shape}", "  executors:"]
    for i in range(n):
        lines += [f"  - name: s{i}", "    script: step.py"]
        if shape == "chain" and i:
            lines += [f"    depends_on: [s{i - 1}]"]
    return "\n".join(lines) + "\n"


SCANFLOW_TIMER = """
import json, sys, time
from scanflow.spec import load_project
from scanflow.engines.local import LocalEngine
project = load_project(sys.argv[1])
engine = LocalEngine(project)
engine.run("warmup", use_cache=False)  # creates the MLflow store and warms imports
start = time.perf_counter()
run = engine.run(sys.argv[2], use_cache=False, max_parallel=int(sys.argv[3]))
elapsed = time.perf_counter() - start
assert run.status == "succeeded", run.error
print(json.dumps({"seconds": elapsed}))
"""


def time_scanflow(n: int, shape: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spec = scanflow_spec(n, shape).replace(
            "workflows:\n",
            "workflows:\n- name: warmup\n  executors:\n  - name: w\n    script: step.py\n",
            1,
        )
        (root / "scanflow.yaml").write_text(spec)
        (root / "step.py").write_text("pass\n")
        parallel = str(os.cpu_count() if shape == "fanout" else 1)  # the engine's default
        out = subprocess.run(
            [sys.executable, "-c", SCANFLOW_TIMER, tmp, shape, parallel],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return json.loads(out.splitlines()[-1])["seconds"]


KFP_TIMER = """
import json, sys, time, tempfile
from kfp import dsl, local
n, shape = int(sys.argv[1]), sys.argv[2]
local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=tempfile.mkdtemp())

@dsl.component
def step(x: int) -> int:
    return x

@dsl.pipeline
def chain(x: int = 0) -> int:
    out = step(x=x)
    for _ in range(n - 1):
        out = step(x=out.output)
    return out.output

@dsl.pipeline
def fanout(x: int = 0):
    for _ in range(n):
        step(x=x)

pipeline = chain if shape == "chain" else fanout
start = time.perf_counter()
pipeline()
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def time_kfp(python: Path, n: int, shape: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "kfp_bench.py"  # KFP reads component source from a file
        script.write_text(KFP_TIMER)
        out = subprocess.run(
            [str(python), str(script), str(n), shape],
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp,
        ).stdout
    return json.loads(out.splitlines()[-1])["seconds"]


def metaflow_flow(n: int, shape: str) -> str:
    body = ["from metaflow import FlowSpec, step", "", "class Bench(FlowSpec):"]
    if shape == "chain":
        names = ["start"] + [f"s{i}" for i in range(1, n - 1)] + ["end"]
        for name, nxt in zip(names, names[1:] + [None], strict=True):
            body += ["    @step", f"    def {name}(self):"]
            body += [f"        self.next(self.{nxt})" if nxt else "        pass"]
    else:
        branches = [f"b{i}" for i in range(n)]  # plus Metaflow's required start/join/end
        body += [
            "    @step",
            "    def start(self):",
            f"        self.next({', '.join('self.' + b for b in branches)})",
        ]
        for b in branches:
            body += ["    @step", f"    def {b}(self):", "        self.next(self.join)"]
        body += [
            "    @step",
            "    def join(self, inputs):",
            "        self.next(self.end)",
            "    @step",
            "    def end(self):",
            "        pass",
        ]
    body += ["", "if __name__ == '__main__':", "    Bench()"]
    return "\n".join(body) + "\n"


def time_metaflow(python: Path, n: int, shape: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        flow = Path(tmp) / "bench_flow.py"
        flow.write_text(metaflow_flow(n, shape))
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": tmp,
            "USERNAME": "bench",
            "METAFLOW_DEFAULT_METADATA": "local",
            "METAFLOW_DEFAULT_DATASTORE": "local",
        }
        timer = textwrap.dedent(f"""
            import subprocess, sys, time, json
            start = time.perf_counter()
            subprocess.run([sys.executable, {str(flow)!r}, "--quiet", "run",
                            "--max-workers", "{16 if shape == "fanout" else 1}"],
                           check=True, cwd={tmp!r}, capture_output=True)
            print(json.dumps({{"seconds": time.perf_counter() - start}}))
        """)
        out = subprocess.run(
            [str(python), "-c", timer], capture_output=True, text=True, check=True, env=env, cwd=tmp
        ).stdout
        return json.loads(out.splitlines()[-1])["seconds"]


TRACKING_TIMER = """
import json, sys, tempfile, time
from mlflow.tracking import MlflowClient
n = int(sys.argv[1])
tmp = tempfile.mkdtemp()
client = MlflowClient(f"sqlite:///{tmp}/mlflow.db")
exp = client.create_experiment("bench", artifact_location=f"file://{tmp}/artifacts")
start = time.perf_counter()
parent = client.create_run(exp, run_name="parent").info.run_id
for i in range(n):
    run = client.create_run(exp, run_name=f"s{i}", tags={"mlflow.parentRunId": parent})
    client.set_terminated(run.info.run_id, "FINISHED")
client.set_terminated(parent, "FINISHED")
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def time_tracking(n: int, shape: str) -> float:
    """MLflow alone: one parent run and n nested runs created and ended, in process."""
    out = subprocess.run(
        [sys.executable, "-c", TRACKING_TIMER, str(n)], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.splitlines()[-1])["seconds"]


def time_bare(n: int, shape: str) -> float:
    start = time.perf_counter()
    if shape == "chain":
        for _ in range(n):
            subprocess.run([sys.executable, "-c", "pass"], check=True)
    else:
        procs = [subprocess.Popen([sys.executable, "-c", "pass"]) for _ in range(n)]
        for proc in procs:
            proc.wait()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shapes", nargs="+", default=["chain", "fanout"])
    parser.add_argument("--out", default="workflow_steps.json", help="file in bench/results")
    parser.add_argument("--peers", type=Path, default=PEER_PYTHON)
    parser.add_argument(
        "--systems",
        nargs="+",
        default=["bare", "tracking", "scanflow", "kfp", "metaflow"],
    )
    args = parser.parse_args()
    runners = {"bare": time_bare, "tracking": time_tracking, "scanflow": time_scanflow}
    if args.peers.exists():
        runners["kfp"] = lambda n, s: time_kfp(args.peers, n, s)
        runners["metaflow"] = lambda n, s: time_metaflow(args.peers, n, s)
    else:
        print(f"peers skipped: no interpreter at {args.peers}", file=sys.stderr)
    results = []
    for n in args.steps:
        for shape in [s for s in args.shapes if n > 1 or s == "chain"]:
            samples: dict[str, list[float]] = {name: [] for name in args.systems if name in runners}
            for _ in range(args.repeat):  # interleaved: every system once per round
                for name in samples:
                    samples[name].append(runners[name](n, shape))
            for name, values in samples.items():
                row = {
                    "system": name,
                    "steps": n,
                    "shape": shape,
                    "median_s": statistics.median(values),
                    "min_s": min(values),
                    "max_s": max(values),
                    "per_step_s": statistics.median(values) / n,
                }
                results.append(row)
                print(json.dumps(row), flush=True)
    out = HERE / "results" / args.out
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
