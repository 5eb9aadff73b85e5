"""A real MLflow store with a digits model whose signature names its 64 pixel columns,
and a model that holds any chunk holding a marked row until a gate file exists."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from serving.conftest import mlflow_store

PIXELS = [f"pixel_{i}" for i in range(64)]
GATE_ROW = -1.0  # pixel_0 of the row that makes the gated model wait


@dataclass
class Store:
    """The store, the training data and the registered models."""

    tracking_uri: str
    X: pd.DataFrame
    estimator: object
    gate: Path  # the gated model predicts a marked row only once this file exists


GATED = """
import os
import time

import mlflow
import numpy as np


class Gated(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        x = np.asarray(model_input, dtype=float)
        if (x[:, 0] == -1).any():
            gate = os.environ["BATCH_TEST_GATE"]
            while not os.path.exists(gate):  # the test kills the process meanwhile
                time.sleep(0.05)
        return x.sum(axis=1)


mlflow.models.set_model(Gated())
"""


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    root = tmp_path_factory.mktemp("batch-mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    X, y = load_digits(return_X_y=True, as_frame=True)
    X.columns = PIXELS
    with threadpool_limits(1):
        model = LogisticRegression(max_iter=300, random_state=0).fit(X, y)
    (root / "gated.py").write_text(textwrap.dedent(GATED))
    with mlflow_store(uri):
        exp = mlflow.create_experiment("batch", artifact_location=(root / "art").as_uri())
        with mlflow.start_run(experiment_id=exp):
            signature = infer_signature(X.head(2), model.predict(X.head(2)))
            mlflow.sklearn.log_model(
                model, name="model", signature=signature, registered_model_name="digits"
            )
            mlflow.sklearn.log_model(
                model, name="model2", signature=signature, registered_model_name="digits"
            )
            mlflow.pyfunc.log_model(
                name="gated",
                python_model=str(root / "gated.py"),
                signature=signature,
                pip_requirements=["mlflow"],
                registered_model_name="gated",
            )
        client = mlflow.MlflowClient()
        client.set_registered_model_alias("digits", "champion", "2")
        client.set_registered_model_alias("gated", "champion", "1")
    return Store(uri, X, model, root / "gate")


def pixels_frame(store: Store, rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` digits drawn with ``seed``, with an ``id`` column (ids 1000, 1001, ...)."""
    rng = np.random.default_rng(seed)
    frame = store.X.iloc[rng.integers(0, len(store.X), rows)].reset_index(drop=True)
    frame.insert(0, "id", np.arange(1000, 1000 + rows))
    return frame
