"""Serving benchmark: Scanflow vs `mlflow models serve`, MLServer and BentoML, same run.

Usage (from the repository root, after `make venv` and `bench/serving/setup_peers.sh`):

    .venv/bin/python bench/serving/run.py [--rounds 3] [--duration 5] [--only scanflow-2w,...]

Every server is started, warmed up, loaded with wrk (1 thread, closed loop, 127.0.0.1) for
each case (1 and 32 rows x 1, 8, 64 connections), measured for memory, and stopped; the
servers' order rotates every round. Results go to bench/results/serving-<time>.json and a
Markdown summary (medians over rounds, min-max, ratios) to the matching .md file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
VENV = ROOT / ".venv" / "bin"
PEERS = HERE / ".peers"
RESULTS = ROOT / "bench" / "results"
CASES = [(1, 1), (1, 8), (1, 64), (32, 1), (32, 8), (32, 64)]  # (rows, connections)
ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the model ----------------------------------------------------------------------------
def make_model(work: Path) -> dict:
    """Train the digits classifier once, log and register it with MLflow, dump a joblib."""
    code = f"""
import json, joblib, mlflow
from mlflow.models import infer_signature
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits
work = {str(work)!r}
uri = f"sqlite:///{{work}}/mlflow.db"
mlflow.set_tracking_uri(uri)
exp = mlflow.create_experiment("bench", artifact_location="file://" + work + "/art")
X, y = load_digits(return_X_y=True)
with threadpool_limits(1):
    model = LogisticRegression(max_iter=500, random_state=0).fit(X, y)
with mlflow.start_run(experiment_id=exp):
    info = mlflow.sklearn.log_model(model, name="model", registered_model_name="digits",
                                    signature=infer_signature(X[:2], model.predict(X[:2])))
mlflow.MlflowClient().set_registered_model_alias("digits", "champion", "1")
joblib.dump(model, work + "/model.joblib")
print(json.dumps({{"tracking_uri": uri, "rows": X[:32].tolist()}}))
"""
    out = subprocess.run(
        [str(VENV / "python"), "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV},
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_bodies(work: Path, rows: list[list[float]]) -> dict[str, dict[int, Path]]:
    """Request bodies per protocol and row count (the same rows for everyone)."""
    bodies: dict[str, dict[int, Path]] = {"oip": {}, "mlflow": {}, "bento": {}}
    for n in (1, 32):
        data = rows[:n]
        payloads = {
            "oip": {
                "inputs": [
                    {
                        "name": "input-0",
                        "shape": [n, 64],
                        "datatype": "FP64",
                        "data": [v for row in data for v in row],
                    }
                ]
            },
            "mlflow": {"inputs": data},
            "bento": {"input": data},
        }
        for proto, payload in payloads.items():
            path = work / f"{proto}-{n}.json"
            path.write_text(json.dumps(payload))
            bodies[proto][n] = path
    return bodies


# -- servers -------------------------------------------------------------------------------
@dataclass
class Server:
    name: str
    protocol: str  # oip | mlflow | bento
    path: str  # prediction path
    health: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path | None = None


def servers(work: Path, model: dict, port: int) -> dict[str, Server]:
    uri = model["tracking_uri"]
    mlserver_dir = work / "mlserver"
    mlserver_dir.mkdir(exist_ok=True)
    (mlserver_dir / "settings.json").write_text(
        json.dumps(
            {
                "parallel_workers": 0,
                "http_port": port,
                "grpc_port": free_port(),
                "metrics_port": free_port(),
                "host": "127.0.0.1",
                "debug": False,
            }
        )
    )
    (mlserver_dir / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "digits",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": str(work / "model.joblib"), "version": "1"},
            }
        )
    )
    scanflow = [
        str(VENV / "scanflow"),
        "serve",
        "models:/digits@champion",
        "--tracking-uri",
        uri,
        "--state-dir",
        str(work / "scanflow-state"),
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    mlflow = [
        str(VENV / "mlflow"),
        "models",
        "serve",
        "-m",
        "models:/digits/1",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    return {
        "scanflow-1w": Server(
            "scanflow-1w",
            "oip",
            "/v2/models/digits/infer",
            "/v2/health/ready",
            [*scanflow, "--workers", "1"],
            {},
        ),
        "scanflow-2w": Server(
            "scanflow-2w",
            "oip",
            "/v2/models/digits/infer",
            "/v2/health/ready",
            [*scanflow, "--workers", "2"],
            {},
        ),
        "mlflow-1w": Server(
            "mlflow-1w",
            "mlflow",
            "/invocations",
            "/ping",
            [*mlflow, "--workers", "1"],
            {"MLFLOW_TRACKING_URI": uri},
        ),
        "mlflow-2w": Server(
            "mlflow-2w",
            "mlflow",
            "/invocations",
            "/ping",
            [*mlflow, "--workers", "2"],
            {"MLFLOW_TRACKING_URI": uri},
        ),
        "mlserver": Server(
            "mlserver",
            "oip",
            "/v2/models/digits/infer",
            "/v2/models/digits/ready",
            [str(PEERS / "mlserver" / "bin" / "mlserver"), "start", str(mlserver_dir)],
            {},
        ),
        "bentoml": Server(
            "bentoml",
            "bento",
            "/predict",
            "/readyz",
            [
                str(PEERS / "bentoml" / "bin" / "bentoml"),
                "serve",
                "bento_service:Digits",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            {
                "DIGITS_JOBLIB": str(work / "model.joblib"),
                "BENTO_WORKERS": "2",
                "BENTOML_HOME": str(work / "bentoml"),
            },
            cwd=HERE,
        ),
        "constant": Server(
            "constant",
            "oip",
            "/",
            "/",
            [
                str(VENV / "python"),
                "-m",
                "uvicorn",
                "constant_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                "--no-access-log",
                "--log-level",
                "warning",
                "--http",
                "httptools",
                "--loop",
                "uvloop",
            ],
            {},
            cwd=HERE,
        ),
    }


def available(name: str) -> bool:
    if name == "mlserver":
        return (PEERS / "mlserver" / ".installed").exists()
    if name == "bentoml":
        return (PEERS / "bentoml" / ".installed").exists()
    return True


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            method = "POST" if url.endswith(":/") else "GET"
            with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=2):
                return
        except Exception:
            time.sleep(0.25)
    raise RuntimeError(f"{url} not ready in {timeout} s")


def tree_memory(pid: int) -> tuple[float, float]:
    """Resident and proportional memory (MB) of a process and all its descendants."""
    import psutil

    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    rss = pss = 0
    for p in procs:
        try:
            info = p.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
        except psutil.Error:
            pass
    return rss / 2**20, pss / 2**20


def wrk(url: str, body: Path, conns: int, seconds: float) -> dict:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{conns}",
            f"-d{int(seconds)}s",
            "--timeout",
            "10s",
            "-s",
            str(HERE / "wrk_post.lua"),
            url,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "WRK_BODY": str(body)},
    )
    line = [x for x in out.stdout.splitlines() if x.startswith("{")]
    if not line:
        raise RuntimeError(f"wrk failed: {out.stdout} {out.stderr}")
    r = json.loads(line[-1])
    secs = r["duration_us"] / 1e6
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return {
        "rps": r["requests"] / secs,
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "errors": errors,
        "requests": r["requests"],
    }


def run_server(server: Server, bodies: dict, port: int, duration: float, log: Path) -> list[dict]:
    env = {
        **os.environ,
        **ENV,
        **server.env,
        "PATH": f"{Path(server.argv[0]).parent}:{os.environ.get('PATH', '')}",
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            server.argv,
            cwd=server.cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    results = []
    try:
        started = time.monotonic()
        if server.name == "constant":
            wait_ready_post(base + "/", proc)
        else:
            wait_ready(base + server.health, proc)
        startup = time.monotonic() - started
        url = base + server.path
        wrk(url, bodies[server.protocol][1], 64, 2.0)  # warm-up
        for rows, conns in CASES:
            r = wrk(url, bodies[server.protocol][rows], conns, duration)
            r.update(server=server.name, rows=rows, conns=conns, rows_per_s=r["rps"] * rows)
            results.append(r)
            print(
                f"  {server.name:12s} rows={rows:2d} c={conns:2d} {r['rps']:9.0f} req/s "
                f"p50 {r['p50_ms']:7.2f} ms p99 {r['p99_ms']:8.2f} ms err {r['errors']}",
                flush=True,
            )
        rss, pss = tree_memory(proc.pid)
        for r in results:
            r.update(rss_mb=rss, pss_mb=pss, startup_s=startup)
        print(
            f"  {server.name:12s} memory rss {rss:.0f} MB pss {pss:.0f} MB, "
            f"ready in {startup:.1f} s",
            flush=True,
        )
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        wait_port_free(port)
    return results


def wait_ready_post(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url, data=b"{}", method="POST")
            with urllib.request.urlopen(req, timeout=2):
                return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"{url} not ready")


def wait_port_free(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                return
            except OSError:
                time.sleep(0.2)


# -- in-process limits ------------------------------------------------------------------
def in_process(work: Path) -> dict:
    code = f"""
import json, time, numpy as np, pandas as pd, mlflow
from scanflow.serving.model import load_model
mlflow.set_tracking_uri("sqlite:///{work}/mlflow.db")
mlflow.set_registry_uri("sqlite:///{work}/mlflow.db")
path = mlflow.artifacts.download_artifacts("models:/digits/1", dst_path="{work}/inproc")
direct = load_model(path, name="digits", version="1")
pyfunc = mlflow.pyfunc.load_model(path)
from sklearn.datasets import load_digits
X = load_digits().data
def rate(fn, arg, seconds=2.0):
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn(arg); n += 1
    return n / (time.perf_counter() - t0)
print(json.dumps({{
    "predict_1row_calls_s": rate(direct.predict, X[:1]),
    "predict_32rows_calls_s": rate(direct.predict, X[:32]),
    "pyfunc_1row_dataframe_calls_s": rate(pyfunc.predict, pd.DataFrame(X[:1])),
}}))
"""
    out = subprocess.run(
        [str(VENV / "python"), "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV},
    )
    lines = [x for x in out.stdout.splitlines() if x.startswith("{")]
    return json.loads(lines[-1]) if lines else {"error": out.stderr[-500:]}


# -- summary ------------------------------------------------------------------------------
def summarize(results: list[dict], inproc: dict, rounds: int, duration: float) -> str:
    def agg(server: str, rows: int, conns: int, key: str) -> tuple[float, float, float]:
        vals = [
            r[key]
            for r in results
            if r["server"] == server and r["rows"] == rows and r["conns"] == conns
        ]
        return (statistics.median(vals), min(vals), max(vals)) if vals else (0, 0, 0)

    names = sorted(
        {r["server"] for r in results},
        key=lambda n: [
            "scanflow-2w",
            "scanflow-1w",
            "mlserver",
            "bentoml",
            "mlflow-2w",
            "mlflow-1w",
            "constant",
        ].index(n),
    )
    lines = [
        f"Rounds: {rounds} (interleaved), {duration:g} s per case, wrk 1 thread, "
        "closed loop on 127.0.0.1. Median (min-max).",
        "",
    ]
    lines.append("| server | rows | conns | req/s | rows/s | p50 ms | p99 ms | errors |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for rows, conns in CASES:
        for n in names:
            rps, lo, hi = agg(n, rows, conns, "rps")
            p50 = agg(n, rows, conns, "p50_ms")[0]
            p99 = agg(n, rows, conns, "p99_ms")[0]
            errs = sum(
                r["errors"]
                for r in results
                if r["server"] == n and r["rows"] == rows and r["conns"] == conns
            )
            lines.append(
                f"| {n} | {rows} | {conns} | {rps:,.0f} ({lo:,.0f}-{hi:,.0f}) | "
                f"{rps * rows:,.0f} | {p50:.2f} | {p99:.2f} | {errs} |"
            )
    lines += [
        "",
        "| server | RSS MB (all processes) | PSS MB | ready in s |",
        "|---|---:|---:|---:|",
    ]
    for n in names:
        vals = [r for r in results if r["server"] == n]
        lines.append(
            f"| {n} | {statistics.median(r['rss_mb'] for r in vals):.0f} | "
            f"{statistics.median(r['pss_mb'] for r in vals):.0f} | "
            f"{statistics.median(r['startup_s'] for r in vals):.1f} |"
        )
    peers = [n for n in names if n.startswith(("mlserver", "bentoml", "mlflow"))]
    lines += [
        "",
        "Scanflow / fastest peer of each case (ratios of median req/s; p99 in ms):",
        "",
        "| case | fastest peer (req/s) | scanflow-1w | scanflow-2w | "
        "p99 1w / 2w / peer | p50 1w / 2w / peer |",
        "|---|---|---:|---:|---|---|",
    ]
    for rows, conns in CASES:
        if not peers:
            break
        best = max(peers, key=lambda n: agg(n, rows, conns, "rps")[0])
        peer = agg(best, rows, conns, "rps")[0] or 1
        cells = []
        for key in ("p99_ms", "p50_ms"):
            cells.append(
                " / ".join(
                    f"{agg(n, rows, conns, key)[0]:.2f}"
                    for n in ("scanflow-1w", "scanflow-2w", best)
                )
            )
        lines.append(
            f"| {rows} row(s), {conns} conn | {best} ({peer:,.0f}) | "
            f"{agg('scanflow-1w', rows, conns, 'rps')[0] / peer:.2f}x | "
            f"{agg('scanflow-2w', rows, conns, 'rps')[0] / peer:.2f}x | {cells[0]} | "
            f"{cells[1]} |"
        )
    if inproc and "error" not in inproc:
        lines += [
            "",
            "In-process limits (one process, no HTTP): "
            f"`predict` 1 row {inproc['predict_1row_calls_s']:,.0f} calls/s, "
            f"32 rows {inproc['predict_32rows_calls_s']:,.0f} calls/s "
            f"({inproc['predict_32rows_calls_s'] * 32:,.0f} rows/s); "
            f"pyfunc on a 1-row DataFrame {inproc['pyfunc_1row_dataframe_calls_s']:,.0f}"
            " calls/s.",
        ]
        s = agg("scanflow-2w", 1, 64, "rps")[0]
        lines.append(
            f"Scanflow (2 workers) at 1 row / 64 connections reaches "
            f"{s / inproc['predict_1row_calls_s']:.2f}x the in-process 1-row "
            f"`predict` rate."
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--only", default="")
    args = parser.parse_args()

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # run the clean-ups that stop the server under test

    signal.signal(signal.SIGTERM, stop)
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    work = Path(tempfile.mkdtemp(prefix="scanflow-bench-serving-"))
    log = RESULTS / f"serving-{stamp}.log"
    print(f"work dir {work}; server logs in {log}", flush=True)
    model = make_model(work)
    bodies = write_bodies(work, model["rows"])
    port = free_port()
    table = servers(work, model, port)
    order = [n for n in table if available(n) and (not args.only or n in args.only.split(","))]
    results: list[dict] = []
    for rnd in range(args.rounds):
        rotated = order[rnd % len(order) :] + order[: rnd % len(order)]
        print(f"round {rnd + 1}: {', '.join(rotated)}", flush=True)
        for name in rotated:
            try:
                for r in run_server(table[name], bodies, port, args.duration, log):
                    results.append({**r, "round": rnd + 1})
            except Exception as exc:
                print(f"  {name}: FAILED {exc}", flush=True)
    inproc = in_process(work)
    out = RESULTS / f"serving-{stamp}.json"
    out.write_text(json.dumps({"results": results, "in_process": inproc}, indent=1))
    summary = summarize(results, inproc, args.rounds, args.duration)
    (RESULTS / f"serving-{stamp}.md").write_text(summary)
    print(summary)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
