"""The built-in executor in a workflow: ``function: scanflow.batch:score`` on the local engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from serving.conftest import mlflow_store

from batch.conftest import PIXELS, Store, pixels_frame

SPEC = """
name: scoring
workflows:
- name: nightly
  executors:
  - name: load
    function: steps:load
    outputs: [dataset]
  - name: score
    function: scanflow.batch:score
    parameters: {{model: "{model}", id_column: id, chunk_size: 250, workers: 2}}
    inputs: {{data: load.dataset}}
    outputs: [predictions]
"""

STEPS = """
import pandas as pd


def load(dataset):
    pd.read_csv("{source}").to_csv(dataset, index=False)
"""


def test_a_workflow_step_scores_and_logs_to_its_run(store: Store, tmp_path: Path, make_project):
    import mlflow

    from scanflow.engines.local import LocalEngine
    from scanflow.tracking.config import embedded_tracking_uri

    frame = pixels_frame(store, 1000, seed=7)
    frame.to_csv(tmp_path / "source.csv", index=False)
    with mlflow_store(store.tracking_uri):
        model = mlflow.artifacts.download_artifacts(
            "models:/digits/2", dst_path=str(tmp_path / "m")
        )
    project = make_project(
        SPEC.format(model=model), {"steps.py": STEPS.format(source=tmp_path / "source.csv")}
    )
    engine = LocalEngine(project)
    run = engine.run("nightly", {})
    assert run.status == "succeeded", "".join(engine.logs(run.id, "score"))[-3000:]
    out = project.state_dir / "runs" / run.id / "steps" / "score" / "outputs"
    got = pd.read_parquet(out / "predictions").sort_values("id")
    assert got["id"].tolist() == frame["id"].tolist()
    assert np.array_equal(got["prediction"], store.estimator.predict(frame[PIXELS]))
    client = mlflow.MlflowClient(embedded_tracking_uri(project.base_dir))
    steps = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "params.chunk_size = '250'"
    )
    assert len(steps) == 1
    assert steps[0].data.metrics["rows"] == 1000
    assert steps[0].data.metrics["chunks"] == 4
    assert steps[0].data.params["model_uri"] == model
    assert steps[0].data.tags["scanflow.batch.model_version"] == run_version(model)


def run_version(model: str) -> str:
    from scanflow.serving.resolve import local_version

    return local_version(Path(model))
