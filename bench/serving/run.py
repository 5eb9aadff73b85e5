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


# -- the models ---------------------------------------------------------------------------
KINDS = ("numpy", "dataframe", "mixed")
MODEL_CODE = """
import json, joblib, mlflow, numpy as np, pandas as pd
from mlflow.models import infer_signature
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from threadpoolctl import threadpool_limits
work, kind = {work!r}, {kind!r}
uri = f"sqlite:///{{work}}/mlflow.db"
mlflow.set_tracking_uri(uri)
exp = mlflow.create_experiment("bench", artifact_location="file://" + work + "/art")
X, y = load_digits(return_X_y=True)
columns = [f"p{{i}}" for i in range(64)]
if kind == "numpy":
    data = X
    model = LogisticRegression(max_iter=500, random_state=0)
elif kind == "dataframe":
    data = pd.DataFrame(X, columns=columns)
    model = LogisticRegression(max_iter=500, random_state=0)
else:  # the pixels and a string column, one-hot encoded
    data = pd.DataFrame(X, columns=columns)
    data["device"] = np.random.default_rng(0).choice(["scanner", "phone", "tablet"], len(X))
    columns = [*columns, "device"]
    prep = ColumnTransformer([("px", "passthrough", columns[:64]),
                              ("dev", OneHotEncoder(handle_unknown="ignore"), ["device"])])
    model = make_pipeline(prep, LogisticRegression(max_iter=500, random_state=0))
with threadpool_limits(1):
    model.fit(data, y)
head = data[:2]
with mlflow.start_run(experiment_id=exp):
    mlflow.sklearn.log_model(model, name="model", registered_model_name="digits",
                             signature=infer_signature(head, model.predict(head)))
mlflow.MlflowClient().set_registered_model_alias("digits", "champion", "1")
joblib.dump(model, work + "/model.joblib")
rows = data[:32]
rows = rows.tolist() if kind == "numpy" else rows.values.tolist()
print(json.dumps({{"tracking_uri": uri, "rows": rows, "columns": columns}}))
"""


def make_model(work: Path, kind: str) -> dict:
    """Train the digits classifier of one kind, log and register it, dump a joblib."""
    work.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        [str(VENV / "python"), "-c", MODEL_CODE.format(work=str(work), kind=kind)],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV},
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _oip_columns(columns: list[str], data: list[list], pandas: bool = False) -> dict:
    """One OIP input per column (``pandas``: with MLServer's content types)."""
    inputs = []
    for i, name in enumerate(columns):
        values = [row[i] for row in data]
        text = isinstance(values[0], str)
        entry = {
            "name": name,
            "shape": [len(data)],
            "datatype": "BYTES" if text else "FP64",
            "data": values,
        }
        if pandas and text:
            entry["parameters"] = {"content_type": "str"}
        inputs.append(entry)
    body: dict = {"inputs": inputs}
    if pandas:
        body["parameters"] = {"content_type": "pd"}
    return body


def write_bodies(work: Path, model: dict, kind: str) -> dict[str, dict[int, Path]]:
    """Request bodies per protocol and row count (the same rows for everyone)."""
    rows, columns = model["rows"], model["columns"]
    bodies: dict[str, dict[int, Path]] = {}
    for n in (1, 32):
        data = rows[:n]
        tensor = {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [n, len(data[0])],
                    "datatype": "FP64",
                    "data": [v for row in data for v in row],
                }
            ]
        }
        split = {"dataframe_split": {"columns": columns, "data": data}}
        payloads = {
            "numpy": {"oip": tensor, "mlflow": {"inputs": data}, "bento": {"input": data}},
            "dataframe": {
                "oip": tensor,
                "oip-cols": _oip_columns(columns, data),
                "mlflow": split,
                "bento": {"input": data},
            },
            "mixed": {
                "oip-cols": _oip_columns(columns, data),
                "oip-pd": _oip_columns(columns, data, pandas=True),
                "mlflow": split,
            },
        }[kind]
        for proto, payload in payloads.items():
            path = work / f"{proto}-{n}.json"
            path.write_text(json.dumps(payload))
            bodies.setdefault(proto, {})[n] = path
    return bodies


# -- servers -------------------------------------------------------------------------------
@dataclass
class Server:
    name: str
    protocol: str  # the request body: oip | oip-cols | oip-pd | mlflow | bento
    path: str  # prediction path
    health: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path | None = None


OIP_PATH = "/v2/models/digits/infer"
# the servers of each model kind, in summary order (scanflow defaults first)
LINEUP = {
    "numpy": ["scanflow", "scanflow-1w", "mlserver", "bentoml", "mlflow-2w", "constant"],
    "dataframe": [
        "scanflow-cols",
        "scanflow-tensor",
        "scanflow-inv",
        "scanflow-1w-cols",
        "mlserver",
        "bentoml",
        "mlflow-2w",
    ],
    "mixed": ["scanflow-cols", "scanflow-inv", "scanflow-1w-cols", "mlserver", "mlflow-2w"],
}


def servers(work: Path, model: dict, port: int, kind: str) -> dict[str, Server]:
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
    one = [*scanflow, "--workers", "1"]
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
    ready = "/v2/health/ready"
    table = {
        "scanflow": Server("scanflow", "oip", OIP_PATH, ready, scanflow, {}),
        "scanflow-1w": Server("scanflow-1w", "oip", OIP_PATH, ready, one, {}),
        "scanflow-cols": Server("scanflow-cols", "oip-cols", OIP_PATH, ready, scanflow, {}),
        "scanflow-tensor": Server("scanflow-tensor", "oip", OIP_PATH, ready, scanflow, {}),
        "scanflow-inv": Server("scanflow-inv", "mlflow", "/invocations", ready, scanflow, {}),
        "scanflow-1w-cols": Server("scanflow-1w-cols", "oip-cols", OIP_PATH, ready, one, {}),
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
            "oip-pd" if kind == "mixed" else "oip",
            OIP_PATH,
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
    return {name: table[name] for name in LINEUP[kind]}


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


def run_server(
    server: Server,
    bodies: dict,
    port: int,
    duration: float,
    log: Path,
    cases: list[tuple[int, int]],
) -> list[dict]:
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
        for rows, conns in cases:
            r = wrk(url, bodies[server.protocol][rows], conns, duration)
            r.update(server=server.name, rows=rows, conns=conns, rows_per_s=r["rps"] * rows)
            results.append(r)
            print(
                f"  {server.name:16s} rows={rows:2d} c={conns:2d} {r['rps']:9.0f} req/s "
                f"p50 {r['p50_ms']:7.2f} ms p99 {r['p99_ms']:8.2f} ms err {r['errors']}",
                flush=True,
            )
        rss, pss = tree_memory(proc.pid)
        for r in results:
            r.update(rss_mb=rss, pss_mb=pss, startup_s=startup)
        print(
            f"  {server.name:16s} memory rss {rss:.0f} MB pss {pss:.0f} MB, "
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
    """Calls/s of Scanflow's loaded model and of MLflow's pyfunc on 1 and 32 rows."""
    code = f"""
import json, time, numpy as np, pandas as pd, mlflow
from scanflow.serving.model import load_model
mlflow.set_tracking_uri("sqlite:///{work}/mlflow.db")
mlflow.set_registry_uri("sqlite:///{work}/mlflow.db")
path = mlflow.artifacts.download_artifacts("models:/digits/1", dst_path="{work}/inproc")
direct = load_model(path, name="digits", version="1")
pyfunc = mlflow.pyfunc.load_model(path)
rows = json.load(open("{work}/rows.json"))
cols = rows["columns"]
frame = pd.DataFrame(rows["rows"], columns=cols)
X = frame.to_numpy(dtype=float) if frame.dtypes.nunique() == 1 else None
def rate(fn, arg, seconds=2.0):
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn(arg); n += 1
    return n / (time.perf_counter() - t0)
arg1 = X[:1] if X is not None else {{c: frame[c].to_numpy()[:1] for c in cols}}
arg32 = X[:32] if X is not None else {{c: frame[c].to_numpy()[:32] for c in cols}}
print(json.dumps({{
    "predict_1row_calls_s": rate(direct.predict, arg1),
    "predict_32rows_calls_s": rate(direct.predict, arg32),
    "pyfunc_1row_dataframe_calls_s": rate(pyfunc.predict, frame[:1]),
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
def summarize(
    results: list[dict],
    inproc: dict,
    kind: str,
    cases: list[tuple[int, int]],
) -> str:
    """One model kind's tables: every server and case, memory, and Scanflow / fastest peer."""

    def agg(server: str, rows: int, conns: int, key: str) -> tuple[float, float, float]:
        vals = [
            r[key]
            for r in results
            if r["server"] == server and r["rows"] == rows and r["conns"] == conns
        ]
        return (statistics.median(vals), min(vals), max(vals)) if vals else (0, 0, 0)

    present = {r["server"] for r in results}
    names = [n for n in LINEUP[kind] if n in present]
    lines = [f"### Model fitted on {KIND_TITLE[kind]}", ""]
    lines.append("| server | rows | conns | req/s | rows/s | p50 ms | p99 ms | errors |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for rows, conns in cases:
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
    ours = [n for n in names if n.startswith("scanflow")]
    if peers and ours:
        lines += [
            "",
            "Scanflow / fastest peer of each case (ratio of median req/s; p50 and p99 in ms):",
            "",
            "| case | fastest peer: req/s, p50, p99 | "
            + " | ".join(f"{n}: ratio, p50, p99" for n in ours)
            + " |",
            "|---|---|" + "---|" * len(ours),
        ]
        for rows, conns in cases:
            best = max(peers, key=lambda n: agg(n, rows, conns, "rps")[0])
            peer = agg(best, rows, conns, "rps")[0] or 1
            cells = [
                f"{agg(n, rows, conns, 'rps')[0] / peer:.2f}x, "
                f"{agg(n, rows, conns, 'p50_ms')[0]:.2f}, {agg(n, rows, conns, 'p99_ms')[0]:.1f}"
                for n in ours
            ]
            lines.append(
                f"| {rows} row(s), {conns} conn | {best}: {peer:,.0f}, "
                f"{agg(best, rows, conns, 'p50_ms')[0]:.2f}, "
                f"{agg(best, rows, conns, 'p99_ms')[0]:.1f} | " + " | ".join(cells) + " |"
            )
    if inproc and "error" not in inproc:
        lines += [
            "",
            "In-process limits (one process, no HTTP): Scanflow's loaded model "
            f"{inproc['predict_1row_calls_s']:,.0f} calls/s on 1 row, "
            f"{inproc['predict_32rows_calls_s']:,.0f} calls/s on 32 rows "
            f"({inproc['predict_32rows_calls_s'] * 32:,.0f} rows/s); MLflow's pyfunc on a "
            f"1-row DataFrame {inproc['pyfunc_1row_dataframe_calls_s']:,.0f} calls/s.",
        ]
    return "\n".join(lines) + "\n"


KIND_TITLE = {
    "numpy": "a numpy array (tensor signature `[-1, 64]`)",
    "dataframe": "a 64-column DataFrame (column signature `p0`..`p63`, double)",
    "mixed": "a DataFrame of 64 pixel columns and a string column (`device`, one-hot encoded)",
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--only", default="", help="servers to run, comma-separated")
    parser.add_argument("--kinds", default=",".join(KINDS), help="model kinds, comma-separated")
    parser.add_argument(
        "--cases", default="", help="rows x connections to run, e.g. 1x1,1x64,32x64 (all)"
    )
    args = parser.parse_args()

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # run the clean-ups that stop the server under test

    signal.signal(signal.SIGTERM, stop)
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2
    cases = CASES
    if args.cases:
        cases = [tuple(int(x) for x in c.split("x")) for c in args.cases.split(",")]  # type: ignore[misc]
    kinds = [k for k in args.kinds.split(",") if k]
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    root = Path(tempfile.mkdtemp(prefix="scanflow-bench-serving-"))
    log = RESULTS / f"serving-{stamp}.log"
    print(f"work dir {root}; server logs in {log}", flush=True)
    load = [os.getloadavg()]
    port = free_port()
    plan = []
    for kind in kinds:
        work = root / kind
        model = make_model(work, kind)
        (work / "rows.json").write_text(json.dumps(model))
        bodies = write_bodies(work, model, kind)
        table = servers(work, model, port, kind)
        order = [
            n
            for n in table
            if available(n)
            and table[n].protocol in bodies  # e.g. no single tensor for the mixed model
            and (not args.only or n in args.only.split(","))
        ]
        plan.append((kind, bodies, table, order))
    results: list[dict] = []
    for rnd in range(args.rounds):
        for kind, bodies, table, order in plan:
            rotated = order[rnd % len(order) :] + order[: rnd % len(order)]
            print(f"round {rnd + 1}, {kind}: {', '.join(rotated)}", flush=True)
            for name in rotated:
                try:
                    for r in run_server(table[name], bodies, port, args.duration, log, cases):
                        results.append({**r, "round": rnd + 1, "kind": kind})
                except Exception as exc:
                    print(f"  {name}: FAILED {exc}", flush=True)
                load.append(os.getloadavg())
    inproc = {kind: in_process(root / kind) for kind in kinds}
    out = RESULTS / f"serving-{stamp}.json"
    out.write_text(
        json.dumps({"results": results, "in_process": inproc, "loadavg": load}, indent=1)
    )
    one_min = [x[0] for x in load]
    parts = [
        f"Rounds: {args.rounds} (interleaved), {args.duration:g} s per case, wrk 1 thread, "
        "closed loop on 127.0.0.1. Median (min-max). Load average (1 min) during the run: "
        f"{min(one_min):.1f}-{max(one_min):.1f}.",
        "",
    ]
    for kind in kinds:
        mine = [r for r in results if r["kind"] == kind]
        parts.append(summarize(mine, inproc[kind], kind, cases))
    summary = "\n".join(parts)
    (RESULTS / f"serving-{stamp}.md").write_text(summary)
    print(summary)
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
