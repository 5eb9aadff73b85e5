"""Batch inference: Scanflow's scorer against plain ``mlflow.pyfunc`` in pandas chunks
(and Ray Data's ``map_batches`` when a Python with Ray is given), same model, same table,
same Parquet output; the baseline and Ray in chunks of ``--chunk-size`` rows, Scanflow in
chunks of ``--scanflow-chunk-size`` (0: its default, from the model's width).

    .venv/bin/python bench/batch/score.py --rows 1000000 --repeats 3 \
        [--ray-python /path/to/venv-with-ray/bin/python]

Every method first scores a small table once (imports and lazy loading are not timed);
then each trial runs the methods back to back, in a rotating order, per format. Prints
one JSON line per run (wall and CPU seconds of the process and its children, where the
time went, the load average) and a summary (medians).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PIXELS = [f"pixel_{i}" for i in range(64)]


def build(work: Path, rows: int) -> tuple[str, Path, dict[str, Path]]:
    """A digits model registered as digits@champion, and the seeded table (CSV, Parquet)."""
    import mlflow
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    from mlflow.models import infer_signature
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    uri = f"sqlite:///{work / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    X, y = load_digits(return_X_y=True, as_frame=True)
    X.columns = PIXELS
    model = LogisticRegression(max_iter=300, random_state=0).fit(X, y)
    exp = mlflow.create_experiment("bench", artifact_location=(work / "art").as_uri())
    with mlflow.start_run(experiment_id=exp):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X.head(2), model.predict(X.head(2))),
            registered_model_name="digits",
        )
    mlflow.MlflowClient().set_registered_model_alias("digits", "champion", "1")
    model_dir = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(work)))
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(X), rows)
    columns = {"id": np.arange(rows, dtype=np.int64)}
    columns |= {c: X[c].to_numpy()[pick] for c in PIXELS}
    table = pa.table(columns)
    paths = {"parquet": work / "pixels.parquet", "csv": work / "pixels.csv"}
    pq.write_table(table, paths["parquet"], row_group_size=100_000)
    pacsv.write_csv(table, paths["csv"])
    pq.write_table(table.slice(0, WARM_ROWS), work / "warm.parquet")
    pacsv.write_csv(table.slice(0, WARM_ROWS), work / "warm.csv")
    return uri, model_dir, paths


WARM_ROWS = 20_000


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (user + system)."""
    me, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_pandas(uri: str, data: Path, out: Path, chunk: int) -> dict:
    """The baseline: pyfunc model, pandas chunks in one process, one Parquet file out."""
    import mlflow.pyfunc
    import pandas as pd
    import pyarrow.parquet as pq

    started = time.perf_counter()
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/digits@champion")
    version = mlflow.MlflowClient().get_model_version_by_alias("digits", "champion").version
    load = time.perf_counter()
    if data.suffix == ".csv":
        chunks = pd.read_csv(data, chunksize=chunk, dtype=dict.fromkeys(PIXELS, "float64"))
    else:
        chunks = (b.to_pandas() for b in pq.ParquetFile(data).iter_batches(batch_size=chunk))
    parts = []
    read = predict = 0.0
    mark = time.perf_counter()
    for frame in chunks:  # the phase timers around the loop's two steps cost nothing
        got = time.perf_counter()
        prediction = model.predict(frame[PIXELS])
        parts.append(pd.DataFrame({"id": frame["id"], "prediction": prediction}))
        read, predict, mark = (
            read + got - mark,
            predict + time.perf_counter() - got,
            time.perf_counter(),
        )
    written = time.perf_counter()
    result = pd.concat(parts, ignore_index=True)
    result["model_version"] = version
    result.to_parquet(out)
    end = time.perf_counter()
    phases = {"load": load - started, "read": read, "predict": predict, "write": end - written}
    return {"seconds": end - started, "phases": _rounded(phases)}


def run_scanflow(uri: str, data: Path, out: Path, chunk: int | None, workers: int) -> dict:
    from scanflow.batch import score

    started = time.perf_counter()
    summary = score(
        "models:/digits@champion",
        str(data),
        str(out),
        id_column="id",
        chunk_size=chunk,
        workers=workers,
        tracking_uri=uri,
        track=False,
    )
    phases = {  # summed over the workers
        "read": summary.read_seconds,
        "predict": summary.predict_seconds,
        "write": summary.write_seconds,
    }
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "phases": _rounded(phases), "chunk_size": summary.chunk_size}


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in values.items()}


def run_ray(python: str, model_dir: Path, data: Path, out: Path, chunk: int, workers: int) -> dict:
    """Ray Data in its own interpreter (a virtualenv with ray[data] and the same MLflow)."""
    cmd = [
        python,
        __file__,
        "--ray-child",
        str(model_dir),
        str(data),
        str(out),
        str(chunk),
        str(workers),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def ray_child(model_dir: str, data: str, out: str, chunk: int, workers: int) -> None:
    import pandas as pd
    import ray

    t0 = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    t1 = time.perf_counter()
    cache: dict = {}

    def predict(batch: pd.DataFrame) -> pd.DataFrame:
        if "model" not in cache:  # once per Ray worker process
            import mlflow.pyfunc

            cache["model"] = mlflow.pyfunc.load_model(model_dir)
        pred = cache["model"].predict(batch[PIXELS])
        return pd.DataFrame({"id": batch["id"], "prediction": pred, "model_version": "1"})

    if data.endswith(".csv"):  # pixels as float64, as the model's signature says
        import pyarrow as pa
        import pyarrow.csv as pacsv

        types = dict.fromkeys(PIXELS, pa.float64())
        options = pacsv.ConvertOptions(column_types=types)
        dataset = ray.data.read_csv(data, convert_options=options)
    else:
        dataset = ray.data.read_parquet(data)
    dataset.map_batches(predict, batch_size=chunk, batch_format="pandas").write_parquet(out)
    t2 = time.perf_counter()
    rows = ray.data.read_parquet(out).count()
    ray.shutdown()
    print(
        json.dumps(
            {"seconds": t2 - t1, "init_seconds": t1 - t0, "rows": rows, "ray": ray.__version__}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=10_000, help="baseline and Ray")
    parser.add_argument("--scanflow-chunk-size", type=int, default=0, help="0: the default")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--formats", default="parquet,csv")
    parser.add_argument("--ray-python", help="Python of a virtualenv with ray[data] installed")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    formats = args.formats.split(",")
    try:
        uri, model_dir, paths = build(work, args.rows)

        def methods(data: Path) -> dict:
            found = {
                "pandas": lambda o: run_pandas(uri, data, o, args.chunk_size),
                "scanflow": lambda o: run_scanflow(
                    uri, data, o, args.scanflow_chunk_size, args.workers
                ),
            }
            if args.ray_python:
                found["ray"] = lambda o: run_ray(
                    args.ray_python, model_dir, data, o, args.chunk_size, args.workers
                )
            return found

        for fmt in formats:  # warm-up: imports, lazy loading, the registry's first queries
            for name, run in methods(work / f"warm.{fmt}").items():
                if name != "ray":
                    run(work / f"warm-{name}-{fmt}")
        rates: dict[str, list[float]] = {}
        cpus: dict[str, list[float]] = {}
        for trial in range(args.repeats):
            for fmt in formats:
                order = list(methods(paths[fmt]).items())
                shift = trial % len(order)
                for name, run in order[shift:] + order[:shift]:
                    out = work / f"out-{name}-{fmt}-{trial}"
                    load = os.getloadavg()[0]
                    cpu = cpu_seconds()
                    got = run(out)
                    cpu = cpu_seconds() - cpu
                    rate = args.rows / got["seconds"]
                    rates.setdefault(f"{name}/{fmt}", []).append(rate)
                    if name != "ray":  # Ray's workers are not this process's children
                        cpus.setdefault(f"{name}/{fmt}", []).append(cpu)
                    record = {"trial": trial, "method": name, "format": fmt, "load1": load}
                    record |= {"rows_per_s": round(rate), "cpu_seconds": round(cpu, 2)}
                    print(json.dumps(record | got), flush=True)
                    shutil.rmtree(out, ignore_errors=True)
                    out.unlink(missing_ok=True)
        summary: dict[str, float] = {k: round(statistics.median(v)) for k, v in rates.items()}
        for fmt in formats:
            base = summary[f"pandas/{fmt}"]
            summary[f"scanflow_vs_pandas/{fmt}"] = round(summary[f"scanflow/{fmt}"] / base, 2)
            if f"ray/{fmt}" in summary:
                summary[f"scanflow_vs_ray/{fmt}"] = round(
                    summary[f"scanflow/{fmt}"] / summary[f"ray/{fmt}"], 2
                )
        print(
            json.dumps(
                {
                    "median_rows_per_s": summary,
                    "median_cpu_seconds": {
                        k: round(statistics.median(v), 2) for k, v in cpus.items()
                    },
                    "rows": args.rows,
                    "chunk_size": args.chunk_size,
                    "scanflow_chunk_size": args.scanflow_chunk_size or "default",
                    "workers": args.workers,
                    "cores": os.cpu_count(),
                }
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--ray-child":
        a = sys.argv[2:]
        ray_child(a[0], a[1], a[2], int(a[3]), int(a[4]))
    else:
        main()
