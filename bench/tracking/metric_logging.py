"""Metric logging from one step: Scanflow's batched API vs ``mlflow.log_metric`` per call.

Usage: ``python bench/tracking/metric_logging.py [--metrics 1000] [--repeat 5]
[--backends sqlite postgres] [--uri http://...]``

For each backend, every round logs ``--metrics`` values of one metric (steps 0..N-1) into a
fresh run, once per contender, in a new (seeded) random order every round:

- ``mlflow.log_metric``: MLflow's fluent API, one synchronous call per value (the peer);
- ``mlflow async``: the same calls with ``synchronous=False``, then
  ``mlflow.flush_async_logging()`` (MLflow's own asynchronous logging, for reference);
- ``mlflow log_batch``: all values built by hand into one ``MlflowClient.log_batch`` call
  (what the store itself costs for them: the floor for any batching);
- ``scanflow``: ``scanflow.tracking.log_metric`` per value, then ``tracking.flush()``.

Times run from the first call until the data is stored (flush returned); each run's
metric history is then read back and must hold every value. The time spent inside the
logging calls themselves (what the step's own loop pays) is reported too.

Backends: ``sqlite`` is the embedded store every step uses by default; ``postgres`` is the
tracker stack's MLflow server on PostgreSQL (started in a temporary app folder, or
``--uri`` of a running one).
Results: JSON on stdout and in ``bench/results/metric_logging.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "results" / "metric_logging.json"
CONTENDERS = ("mlflow.log_metric", "mlflow async", "mlflow log_batch", "scanflow")


def log_with_mlflow(n: int, synchronous: bool) -> float:
    import mlflow

    start = time.perf_counter()
    for i in range(n):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i, synchronous=synchronous)
    in_calls = time.perf_counter() - start
    if not synchronous:
        mlflow.flush_async_logging()
    return in_calls


def log_with_scanflow(n: int) -> float:
    from scanflow import tracking

    start = time.perf_counter()
    for i in range(n):
        tracking.log_metric("loss", 1.0 / (i + 1), step=i)
    in_calls = time.perf_counter() - start
    tracking.flush()
    return in_calls


def log_with_one_batch(n: int, run_id: str) -> float:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    start = time.perf_counter()
    stamp = int(time.time() * 1000)
    metrics = [Metric("loss", 1.0 / (i + 1), stamp, i) for i in range(n)]
    MlflowClient().log_batch(run_id, metrics=metrics)
    return time.perf_counter() - start


def one_round(contender: str, n: int, experiment_id: str) -> tuple[float, float]:
    """Log ``n`` values into a fresh run.

    Returns the seconds until they are stored and the seconds spent inside the calls.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    run = client.create_run(experiment_id, run_name=contender)
    run_id = run.info.run_id
    os.environ["MLFLOW_RUN_ID"] = run_id  # what the engine sets for a step
    with mlflow.start_run(run_id=run_id):
        start = time.perf_counter()
        if contender == "scanflow":
            in_calls = log_with_scanflow(n)
        elif contender == "mlflow log_batch":
            in_calls = log_with_one_batch(n, run_id)
        else:
            in_calls = log_with_mlflow(n, synchronous=contender == "mlflow.log_metric")
        elapsed = time.perf_counter() - start
    stored = len(client.get_metric_history(run_id, "loss"))
    if stored != n:
        raise SystemExit(f"{contender}: {stored} of {n} values stored")
    return elapsed, in_calls


def bench_backend(uri: str, n: int, repeat: int) -> dict[str, Any]:
    import mlflow
    from mlflow.tracking import MlflowClient

    from scanflow.tracking import step

    mlflow.set_tracking_uri(uri)
    os.environ["MLFLOW_TRACKING_URI"] = uri
    step._state.clear()
    client = MlflowClient()
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    name = f"metric-logging-{int(time.time())}"
    experiment_id = client.create_experiment(name, artifact_location=location)
    for contender in CONTENDERS:  # warm-up: imports, connections, first batches
        one_round(contender, n, experiment_id)
    times: dict[str, list[float]] = {c: [] for c in CONTENDERS}
    in_calls: dict[str, list[float]] = {c: [] for c in CONTENDERS}
    shuffle = random.Random(5)  # a new seeded order every round: disk hiccups hit all alike
    for _ in range(repeat):
        order = list(CONTENDERS)
        shuffle.shuffle(order)
        for contender in order:
            stored, calls = one_round(contender, n, experiment_id)
            times[contender].append(stored)
            in_calls[contender].append(calls)
    peer = statistics.median(times["mlflow.log_metric"])
    summary = {}
    for contender, values in times.items():
        median = statistics.median(values)
        ratios = [p / v for p, v in zip(times["mlflow.log_metric"], values, strict=True)]
        summary[contender] = {
            "median_s": round(median, 5),
            "min_s": round(min(values), 5),
            "max_s": round(max(values), 5),
            "per_call_ms": round(median / n * 1000, 4),
            "speedup_vs_per_call": round(peer / median, 1),
            "speedup_min": round(min(ratios), 1),
            "speedup_max": round(max(ratios), 1),
            "in_calls_median_s": round(statistics.median(in_calls[contender]), 6),
            "in_calls_speedup": round(peer / statistics.median(in_calls[contender]), 1),
        }
    return {
        "uri": uri.split("@")[-1],
        "metrics": n,
        "repeat": repeat,
        "results": summary,
        "load_average_1min": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metrics", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--backends", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"]
    )
    parser.add_argument("--uri", help="tracking URI of a running server for 'postgres'")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    report: dict[str, Any] = {"python": sys.version.split()[0], "backends": {}}
    import mlflow

    report["mlflow"] = mlflow.__version__
    with tempfile.TemporaryDirectory(prefix="scanflow-bench-") as tmp:
        os.chmod(tmp, 0o755)  # the stack's PostgreSQL runs as another user when we are root
        for backend in args.backends:
            if backend == "sqlite":
                uri = f"sqlite:///{tmp}/sqlite/mlflow.db"
                Path(tmp, "sqlite").mkdir()
                report["backends"]["sqlite"] = bench_backend(uri, args.metrics, args.repeat)
            else:
                report["backends"]["postgres"] = bench_postgres(Path(tmp) / "app", args)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def bench_postgres(app_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    if args.uri:
        return bench_backend(args.uri, args.metrics, args.repeat)
    from scanflow.spec.loader import load_project
    from scanflow.tracking.stack import TrackerStack

    app_dir.mkdir()
    (app_dir / "scanflow.yaml").write_text("name: bench\ntracker:\n  managed: true\n")
    stack = TrackerStack(load_project(app_dir))
    result = stack.up()
    try:
        report = bench_backend(result.status.uri or "", args.metrics, args.repeat)
        report["stack"] = {
            "start_seconds": round(result.seconds, 2),
            "resident_memory_mb": round(stack.status().memory["rss"] / 2**20),
            "proportional_memory_mb": round(stack.status().memory["pss"] / 2**20),
        }
        return report
    finally:
        stack.down()


if __name__ == "__main__":
    main()
