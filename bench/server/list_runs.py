"""Listing runs: `scanflow server` against `mlflow server`, same 10,000 runs, same run.

Usage (from the repository root):

    .venv/bin/python bench/server/list_runs.py [--runs 10000] [--clients 50] [--rounds 3]
        [--duration 15]

Both stores hold the same runs (status, two parameters, start and end times): Scanflow's
state store (SQLite) and an MLflow backend store (SQLite) seeded through MLflow's own
SQLAlchemy models. Each server runs with its defaults on 127.0.0.1 (`scanflow server`:
one process; `mlflow server`: 4 uvicorn workers). wrk (closed loop, N connections) asks
each for the newest page of 50 runs: `GET /api/apps/bench/runs?limit=50` (with a read
token) and `POST /api/2.0/mlflow/runs/search` with `max_results: 50`, newest first. The
servers alternate within each round after a warm-up; a JSON line per measure and a
summary (medians over rounds, min-max) are printed and written to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
VENV = ROOT / ".venv" / "bin"
RESULTS = ROOT / "bench" / "results"
PAGE = 50
STATES = ["FINISHED", "FAILED", "RUNNING", "KILLED"]  # MLflow's names of our four states
OURS = {"FINISHED": "succeeded", "FAILED": "failed", "RUNNING": "running", "KILLED": "cancelled"}
APP_YAML = """
name: bench
team: bench
workflows:
- name: pipe
  parameters: {lr: 0.1}
  executors:
  - name: train
    function: steps:train
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def the_runs(n: int, seed: int = 7) -> list[dict]:
    """``n`` runs: status, parameters and times, the same for both stores."""
    rng = random.Random(seed)
    runs = []
    for i in range(n):
        start = 1_780_000_000.0 + i * 60
        runs.append(
            {
                "id": uuid.UUID(int=rng.getrandbits(128)).hex,
                "status": STATES[i % 4],
                "params": {"lr": str(round(rng.uniform(0, 1), 4)), "data.name": f"set{i % 3}"},
                "start": start,
                "end": start + rng.uniform(5, 600),
            }
        )
    return runs


def seed_scanflow(folder: Path, runs: list[dict]) -> str:
    """Scanflow's state store with ``runs``; returns a read token."""
    sys.path.insert(0, str(ROOT))
    from scanflow.api.tokens import Tokens
    from scanflow.store import RunRecord, Store

    folder.mkdir(parents=True)
    (folder / "scanflow.yaml").write_text(APP_YAML)
    (folder / "steps.py").write_text("def train(lr):\n    print(lr)\n")
    store = Store.for_state_dir(folder / ".scanflow")
    rows = [
        RunRecord(
            id=f"pipe-{r['id'][:12]}",
            app="bench",
            team="bench",
            workflow="pipe",
            status=OURS[r["status"]],
            parameters={k: float(v) if k == "lr" else v for k, v in r["params"].items()},
            spec="",
            base_dir=str(folder),
            run_dir=str(folder),
            engine="kubernetes",  # never probed as a local process
            created_at=r["start"],
            started_at=r["start"],
            finished_at=None if r["status"] == "RUNNING" else r["end"],
        )
        for r in runs
    ]
    with store.session() as s:
        s.add_all(rows)
    token = Tokens(store).create("bench", "read").token
    store.close()
    return token


def seed_mlflow(folder: Path, runs: list[dict]) -> tuple[str, str]:
    """An MLflow backend store with ``runs`` in one experiment; (store URI, experiment id)."""
    from mlflow.store.tracking.dbmodels.models import SqlParam, SqlRun, SqlTag
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    folder.mkdir(parents=True)
    uri = f"sqlite:///{folder}/mlflow.db"
    store = SqlAlchemyStore(uri, f"file://{folder}/artifacts")
    experiment = store.create_experiment("bench")
    with store.ManagedSessionMaker() as session:
        for r in runs:
            session.add(
                SqlRun(
                    run_uuid=r["id"],
                    name=f"pipe-{r['id'][:8]}",
                    source_type="LOCAL",
                    source_name="",
                    entry_point_name="",
                    user_id="bench",
                    status=r["status"],
                    start_time=int(r["start"] * 1000),
                    end_time=None if r["status"] == "RUNNING" else int(r["end"] * 1000),
                    source_version="",
                    lifecycle_stage="active",
                    artifact_uri=f"file://{folder}/artifacts/{r['id']}",
                    experiment_id=int(experiment),
                )
            )
            session.add_all(
                SqlParam(key=k, value=v, run_uuid=r["id"]) for k, v in r["params"].items()
            )
            session.add(SqlTag(key="mlflow.runName", value=f"pipe-{r['id'][:8]}", run_uuid=r["id"]))
    store.engine.dispose()
    return uri, experiment


def wait_ok(url: str, headers: dict[str, str], data: bytes | None = None) -> dict:
    deadline = time.monotonic() + 180
    while True:
        try:
            request = urllib.request.Request(url, data=data, headers=headers)
            with urllib.request.urlopen(request, timeout=30) as answer:
                return json.loads(answer.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def wrk(url: str, clients: int, duration: float, env: dict[str, str]) -> dict:
    command = ["wrk", "-t", "2", "-c", str(clients), "-d", f"{duration:g}s", "--timeout", "30s"]
    command += ["-s", str(HERE / "wrk_report.lua"), url]
    done = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **env}, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["errors"] = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=15.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-server-"))
    procs: list[subprocess.Popen] = []
    try:
        runs = the_runs(args.runs)
        t0 = time.monotonic()
        token = seed_scanflow(work / "bench", runs)
        uri, experiment = seed_mlflow(work / "mlflow", runs)
        print(f"seeded {args.runs} runs in both stores in {time.monotonic() - t0:.1f}s")

        ours_port, theirs_port = free_port(), free_port()
        scanflow_cmd = [str(VENV / "scanflow"), "--app", str(work / "bench"), "server"]
        mlflow_cmd = [str(VENV / "mlflow"), "server", "--backend-store-uri", uri]
        mlflow_cmd += ["--default-artifact-root", f"file://{work}/mlflow/artifacts"]
        mlflow_cmd += ["--host", "127.0.0.1", "--port", str(theirs_port)]
        for command in (scanflow_cmd + ["--port", str(ours_port)], mlflow_cmd):
            procs.append(
                subprocess.Popen(
                    command, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            )
        ours = f"http://127.0.0.1:{ours_port}/api/apps/bench/runs?limit={PAGE}"
        theirs = f"http://127.0.0.1:{theirs_port}/api/2.0/mlflow/runs/search"
        body = {
            "experiment_ids": [experiment],
            "max_results": PAGE,
            "order_by": ["attributes.start_time DESC"],
        }
        body_file = work / "search.json"
        body_file.write_text(json.dumps(body))
        page = wait_ok(ours, {"Authorization": f"Bearer {token}"})
        assert page["total"] == args.runs and len(page["items"]) == PAGE, page["total"]
        found = wait_ok(theirs, {"Content-Type": "application/json"}, body_file.read_bytes())
        assert len(found["runs"]) == PAGE and found.get("next_page_token"), found.keys()

        cases = {
            "scanflow": (ours, {"WRK_AUTH": token}),
            "mlflow": (theirs, {"WRK_BODY": str(body_file)}),
        }
        for url, env in cases.values():  # warm-up
            wrk(url, args.clients, 3, env)
        measures: dict[str, list[dict]] = {name: [] for name in cases}
        for round_ in range(args.rounds):
            order = list(cases) if round_ % 2 == 0 else list(reversed(cases))
            for name in order:
                url, env = cases[name]
                result = wrk(url, args.clients, args.duration, env)
                result.update(server=name, round=round_, load=os.getloadavg()[0])
                measures[name].append(result)
                print(json.dumps(result), flush=True)

        def stat(name: str, key: str, scale: float = 1.0) -> dict:
            values = [m[key] * scale for m in measures[name]]
            return {
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
            }

        summary = {
            name: {
                "p50_ms": stat(name, "p50_us", 1e-3),
                "p99_ms": stat(name, "p99_us", 1e-3),
                "rps": stat(name, "rps"),
                "errors": sum(m["errors"] for m in measures[name]),
            }
            for name in cases
        }
        ratios = [
            o["p99_us"] / t["p99_us"]
            for o, t in zip(measures["scanflow"], measures["mlflow"], strict=True)
        ]
        summary["p99_ratio"] = {
            "median": statistics.median(ratios),
            "min": min(ratios),
            "max": max(ratios),
        }
        summary["setup"] = {
            "runs": args.runs,
            "clients": args.clients,
            "rounds": args.rounds,
            "duration_s": args.duration,
            "page": PAGE,
            "cores": os.cpu_count(),
        }
        print(json.dumps(summary, indent=1))
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / f"server-list-runs-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps({"summary": summary, "measures": measures}, indent=1))
        print(f"written to {out}")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
