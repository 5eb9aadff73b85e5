"""Converted notebooks run with the real local engine and MLflow store; --verify runs the
notebook with a real kernel; errors at run time name the notebook cell."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scanflow.cli.main import main
from scanflow.notebook import NotebookError, convert
from scanflow.notebook.artifacts import load
from scanflow.notebook.verify import verify
from scanflow.store import Store
from tests.notebook.conftest import kale_cells, write_notebook

pytestmark = pytest.mark.slow


def test_kale_notebook_converts_runs_and_verifies(app_dir: Path, capsys) -> None:
    from mlflow.tracking import MlflowClient

    from scanflow.tracking.config import embedded_tracking_uri

    notebook = write_notebook(app_dir / "demo.ipynb", kale_cells())
    code = main(["--app", str(app_dir), "notebook", "convert", str(notebook), "--verify"])
    shown = capsys.readouterr()
    assert code == 0, shown.err
    assert "verified: the notebook and workflow demo made the same 8 value(s)" in shown.out
    assert "evaluate.metric accuracy" in shown.out  # compared with the MLflow metric

    store = Store.for_state_dir(app_dir / ".scanflow")
    (run,) = store.list_runs()
    assert run.status == "succeeded" and run.workflow == "demo"
    steps = {s.name: s for s in store.steps(run.id)}
    files = {
        p.relative_to(Path(s.output_dir)).as_posix()
        for s in steps.values()
        for p in Path(s.output_dir).rglob("*")
        if p.is_file()
    }
    assert files == {
        "df/df.parquet",
        "threshold/threshold.json",
        "settings/settings.json",
        "model/model.joblib",
        "X/X.npy",
        "y/y.npy",
    }
    train = Path(steps["train"].output_dir)
    model, X, y = (load(train / v) for v in ("model", "X", "y"))
    expected = float((model.predict(X) == y).mean())
    assert load(Path(steps["load-data"].output_dir) / "settings") == {
        "classes": [0, 1],
        "note": "demo",
    }
    client = MlflowClient(embedded_tracking_uri(app_dir))
    logged = client.get_run(steps["evaluate"].mlflow_run_id).data.metrics
    assert logged == {"accuracy": pytest.approx(expected)}
    assert 0.5 < expected <= 1.0


def test_verify_names_the_cell_of_a_value_that_diverges(app_dir: Path) -> None:
    notebook = write_notebook(
        app_dir / "noisy.ipynb",
        [
            (["imports"], "import numpy as np"),
            (["step:draw"], "size = 3\nnoise = np.random.default_rng().normal(size=size)"),
            (["step:use", "prev:draw"], "total = float(noise.sum())"),
            (["pipeline-metrics"], "print(total)"),
        ],
    )
    done = convert(notebook, app_dir)
    with pytest.raises(NotebookError) as caught:
        verify(done.plan, app_dir, "noisy")
    message = str(caught.value)
    assert "2 of 2 value(s) differ" in message
    assert "step 'draw', cell 2: 'noise' differs between the notebook and the workflow" in message
    assert "step 'use', cell 4: 'metric total' differs" in message


def test_run_time_errors_name_the_cell_and_the_variable(app_dir: Path, capsys) -> None:
    notebook = write_notebook(
        app_dir / "broken.ipynb",
        [
            (None, "Two branches that fail at run time."),
            (["step:divide"], "x = 1\ny = x / 0"),
            (["step:connect"], "import sqlite3\nconn = sqlite3.connect(':memory:')"),
            (["step:query", "prev:connect"], "rows = conn.execute('select 1').fetchall()"),
        ],
    )
    code = main(["--app", str(app_dir), "notebook", "convert", str(notebook), "--run"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1
    assert (
        "step 'divide': failed in notebook cell 2, line 2: ZeroDivisionError: division by zero"
        in err
    )
    assert "step 'connect': cell 3: variable 'conn' is a sqlite3.Connection" in err
    (run,) = Store.for_state_dir(app_dir / ".scanflow").list_runs()
    statuses = {s.name: s.status for s in Store.for_state_dir(app_dir / ".scanflow").steps(run.id)}
    assert statuses == {"divide": "failed", "connect": "failed", "query": "skipped"}
    assert not np.any([p.suffix == ".pkl" for p in app_dir.rglob("*")])
