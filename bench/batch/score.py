"""Batch inference: Scanflow's scorer against plain ``mlflow.pyfunc`` in pandas chunks
(and Ray Data's ``map_batches`` when a Python with Ray is given), same model, same table,
same chunk size, same Parquet output.

    .venv/bin/python bench/batch/score.py --rows 1000000 --repeats 3 \
        [--ray-python /path/to/venv-with-ray/bin/python]

Prints one JSON line per trial and a summary (median rows/s per method and format).
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
    return uri, model_dir, paths


def run_pandas(uri: str, data: Path, out: Path, chunk: int) -> float:
    """The baseline: pyfunc model, pandas chunks in one process, one Parquet file out."""
    import mlflow.pyfunc
    import pandas as pd
    import pyarrow.parquet as pq

    started = time.perf_counter()
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/digits@champion")
    version = mlflow.MlflowClient().get_model_version_by_alias("digits", "champion").version
    if data.suffix == ".csv":
        chunks = pd.read_csv(data, chunksize=chunk, dtype=dict.fromkeys(PIXELS, "float64"))
    else:
        chunks = (b.to_pandas() for b in pq.ParquetFile(data).iter_batches(batch_size=chunk))
    parts = []
    for frame in chunks:
        prediction = model.predict(frame[PIXELS])
        parts.append(pd.DataFrame({"id": frame["id"], "prediction": prediction}))
    result = pd.concat(parts, ignore_index=True)
    result["model_version"] = version
    result.to_parquet(out)
    return time.perf_counter() - started


def run_scanflow(uri: str, data: Path, out: Path, chunk: int, workers: int) -> float:
    from scanflow.batch import score

    started = time.perf_counter()
    score(
        "models:/digits@champion",
        str(data),
        str(out),
        id_column="id",
        chunk_size=chunk,
        workers=workers,
        tracking_uri=uri,
        track=False,
    )
    return time.perf_counter() - started


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
    parser.add_argument("--chunk-size", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--formats", default="parquet,csv")
    parser.add_argument("--ray-python", help="Python of a virtualenv with ray[data] installed")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        uri, model_dir, paths = build(work, args.rows)
        results: dict[str, list[float]] = {}
        for trial in range(args.repeats):
            for fmt in args.formats.split(","):
                data = paths[fmt]
                methods = {
                    "pandas": lambda o, d=data: run_pandas(uri, d, o, args.chunk_size),
                    "scanflow": lambda o, d=data: run_scanflow(
                        uri, d, o, args.chunk_size, args.workers
                    ),
                }
                if args.ray_python:
                    methods["ray"] = lambda o, d=data: run_ray(
                        args.ray_python, model_dir, d, o, args.chunk_size, args.workers
                    )
                for name, run in methods.items():
                    out = work / f"out-{name}-{fmt}-{trial}"
                    load = os.getloadavg()[0]
                    got = run(out)
                    seconds = got["seconds"] if isinstance(got, dict) else got
                    rate = args.rows / seconds
                    results.setdefault(f"{name}/{fmt}", []).append(rate)
                    extra = got if isinstance(got, dict) else {}
                    print(
                        json.dumps(
                            {
                                "trial": trial,
                                "method": name,
                                "format": fmt,
                                "seconds": round(seconds, 2),
                                "rows_per_s": round(rate),
                                "load1": load,
                                **extra,
                            }
                        ),
                        flush=True,
                    )
                    shutil.rmtree(out, ignore_errors=True)
                    Path(out).unlink(missing_ok=True) if Path(out).is_file() else None
        summary = {k: round(statistics.median(v)) for k, v in results.items()}
        for fmt in args.formats.split(","):
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
                    "rows": args.rows,
                    "chunk_size": args.chunk_size,
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
