"""Shared fixtures: one digits model per session in a real MLflow store, real servers."""

from __future__ import annotations

import os
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest


@dataclass
class Registry:
    """A SQLite MLflow store with the digits model registered."""

    root: Path
    tracking_uri: str
    X: np.ndarray
    y: np.ndarray
    model_dir: Path  # a local copy of the digits model (for local-path serving)
    flaky_uri: str  # a pyfunc model that raises on negative inputs
    broken_version: str  # a version of 'digits' that fails its smoke prediction

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def set_alias(self, alias: str, version: str) -> None:
        self.client().set_registered_model_alias("digits", alias, version)


FLAKY = """
import mlflow
import numpy as np


class Flaky(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        x = np.asarray(model_input, dtype=float)
        if (x < 0).any():
            raise ValueError("negative pixel values are not allowed")
        return x.sum(axis=1)


mlflow.models.set_model(Flaky())
"""

BROKEN = """
import mlflow


class Broken(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        raise RuntimeError("this version cannot predict")


mlflow.models.set_model(Broken())
"""


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    import mlflow
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    X, y = load_digits(return_X_y=True)
    with mlflow_store(uri):
        return _build_registry(mlflow, root, uri, X, y)


@contextmanager
def mlflow_store(uri: str) -> Iterator[None]:
    """MLflow's globals pointed at ``uri`` for the block, and restored after it (with the
    environment variables MLflow sets), so they do not leak into other tests."""
    import mlflow

    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _build_registry(mlflow, root: Path, uri: str, X: np.ndarray, y: np.ndarray) -> Registry:
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    exp = mlflow.create_experiment("serving-tests", artifact_location=(root / "art").as_uri())
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # BLAS threads on a busy 2-core machine cost seconds
        model = LogisticRegression(max_iter=500, random_state=0).fit(X, y)
    signature = infer_signature(X[:2], model.predict(X[:2]))
    with mlflow.start_run(experiment_id=exp):
        info = mlflow.sklearn.log_model(
            model, name="model", signature=signature, registered_model_name="digits"
        )
        (root / "flaky.py").write_text(textwrap.dedent(FLAKY))
        (root / "broken.py").write_text(textwrap.dedent(BROKEN))
        flaky = mlflow.pyfunc.log_model(
            name="flaky",
            python_model=str(root / "flaky.py"),
            signature=signature,
            pip_requirements=["mlflow"],
        )
        broken = mlflow.pyfunc.log_model(
            name="broken",
            python_model=str(root / "broken.py"),
            signature=signature,
            pip_requirements=["mlflow"],
        )
    client = mlflow.MlflowClient()
    v2 = str(mlflow.register_model(info.model_uri, "digits").version)  # same model, again
    v3 = str(mlflow.register_model(broken.model_uri, "digits").version)
    assert (v2, v3) == ("2", "3")
    client.set_registered_model_alias("digits", "champion", "1")
    model_dir = Path(
        mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(root / "local"))
    )
    return Registry(
        root=root,
        tracking_uri=uri,
        X=X,
        y=y,
        model_dir=model_dir,
        flaky_uri=flaky.model_uri,
        broken_version=v3,
    )


@dataclass
class LoadResult:
    """What a closed-loop load generator saw: one tuple per request."""

    records: list[tuple[float, float, int, str]] = field(default_factory=list)

    @property
    def failures(self) -> list[tuple[float, float, int, str]]:
        return [r for r in self.records if r[2] != 200]


class Load:
    """Closed-loop clients posting 1-row requests until stopped (bounded by ``max_seconds``)."""

    def __init__(self, url: str, body: dict, clients: int = 4, max_seconds: float = 60.0):
        self.url, self.body, self.max_seconds = url, body, max_seconds
        self.result = LoadResult()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with httpx.Client(timeout=30) as http:
            while not self._stop.is_set() and time.monotonic() < deadline:
                sent = time.monotonic()
                try:
                    r = http.post(self.url, json=self.body)
                    rec = (
                        sent,
                        time.monotonic(),
                        r.status_code,
                        r.headers.get("x-model-version", ""),
                    )
                except httpx.HTTPError as exc:
                    rec = (sent, time.monotonic(), -1, type(exc).__name__)
                with self._lock:
                    self.result.records.append(rec)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def count(self) -> int:
        with self._lock:
            return len(self.result.records)


def oip_body(rows: np.ndarray) -> dict:
    return {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(rows.shape),
                "datatype": "FP64",
                "data": rows.ravel().tolist(),
            }
        ]
    }


def scrape(http: httpx.Client) -> dict[str, float]:
    """The service's ``/metrics`` as ``{'name{labels}': value}``."""
    text = http.get("/metrics").text
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


@contextmanager
def small_disk(folder: Path, size: str = "256k", fill: bool = False) -> Iterator[Path]:
    """A real small filesystem (tmpfs) mounted on ``folder``, full when ``fill``; the test is
    skipped where mounting is not permitted."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {mounted.stderr.strip()}")
    try:
        if fill:
            with (folder / "filler").open("wb", buffering=0) as f:
                try:
                    while True:
                        f.write(b"\0" * 4096)
                except OSError:  # ENOSPC: the disk is full
                    pass
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@dataclass
class ColumnModels:
    """Column-signature models registered beside ``digits``: ``digits_df`` (64 float
    columns ``p0``..``p63``) and ``mixed`` (``x``, ``y`` float and ``color`` string)."""

    columns: list[str]
    mixed: object  # the mixed-type training DataFrame
    mixed_y: np.ndarray
    digits_dir: Path
    mixed_dir: Path


@pytest.fixture(scope="session")
def column_models(registry: Registry) -> ColumnModels:
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder
    from threadpoolctl import threadpool_limits

    columns = [f"p{i}" for i in range(64)]
    frame = pd.DataFrame(registry.X, columns=columns)
    rng = np.random.default_rng(0)
    mixed = pd.DataFrame(
        {
            "x": rng.normal(size=300),
            "y": rng.normal(size=300),
            "color": rng.choice(["red", "green", "blue"], size=300),
        }
    )
    mixed_y = ((mixed["x"] + (mixed["color"] == "red")) > 0.5).astype(int).to_numpy()
    with threadpool_limits(1):
        digits = LogisticRegression(max_iter=500, random_state=0).fit(frame, registry.y)
        prep = ColumnTransformer(
            [
                ("num", "passthrough", ["x", "y"]),
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["color"]),
            ]
        )
        pipe = make_pipeline(prep, LogisticRegression(random_state=0)).fit(mixed, mixed_y)
    with mlflow_store(registry.tracking_uri):
        with mlflow.start_run(
            experiment_id=mlflow.get_experiment_by_name("serving-tests").experiment_id
        ):
            d = mlflow.sklearn.log_model(
                digits,
                name="digits_df",
                signature=infer_signature(frame.head(2), digits.predict(frame.head(2))),
                registered_model_name="digits_df",
            )
            m = mlflow.sklearn.log_model(
                pipe,
                name="mixed",
                signature=infer_signature(mixed.head(2), pipe.predict(mixed.head(2))),
                registered_model_name="mixed",
            )
        root = registry.root / "columns"
        digits_dir = Path(
            mlflow.artifacts.download_artifacts(d.model_uri, dst_path=str(root / "d"))
        )
        mixed_dir = Path(mlflow.artifacts.download_artifacts(m.model_uri, dst_path=str(root / "m")))
    return ColumnModels(columns, mixed, mixed_y, digits_dir, mixed_dir)
