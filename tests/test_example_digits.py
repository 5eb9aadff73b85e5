"""The digits example end to end: load, train two models in parallel, register the best."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import cli

from scanflow.store import Store


@pytest.mark.slow
def test_demo_registers_the_best_digits_model(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from scanflow.tracking.config import embedded_tracking_uri

    app = tmp_path / "demo"
    code, out, err = cli("demo", "--workflow-only", "--dir", str(app))
    assert code == 0, out + err
    store = Store.for_state_dir(app / ".scanflow")
    [run] = store.list_runs()
    steps = {s.name: s for s in store.steps(run.id)}
    # the two trainings overlapped: both started before either finished
    a, b = steps["train-logreg"], steps["train-forest"]
    assert a.started_at < b.finished_at and b.started_at < a.finished_at
    report = json.loads((Path(steps["evaluate"].output_dir) / "report").read_text())
    assert report["scores"][report["best"]] == max(report["scores"].values()) > 0.9
    client = MlflowClient(embedded_tracking_uri(app))
    champion = client.get_model_version_by_alias("digits", "champion")
    assert str(champion.version) == report["version"] == "1"
    import mlflow.pyfunc
    import numpy as np
    from sklearn.datasets import load_digits

    mlflow.set_tracking_uri(embedded_tracking_uri(app))
    try:
        model = mlflow.pyfunc.load_model("models:/digits@champion")
    finally:
        mlflow.set_tracking_uri(None)  # process-wide: later tests must not inherit it
    X, y = load_digits(return_X_y=True)
    accuracy = float(np.mean(model.predict(X[:200] / 16.0) == y[:200]))
    assert accuracy > 0.9
