"""A whole notebook as one executor (``notebook:``), run with papermill by the local engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanflow.engines.registry import get_engine
from scanflow.errors import SpecError
from scanflow.spec import load_project
from scanflow.spec.model import Executor
from scanflow.store import Store
from tests.notebook.conftest import write_notebook

SPEC = """\
name: pm
workflows:
- name: report
  parameters:
    rows: 5
  executors:
  - name: count
    notebook: count.ipynb
    outputs: [report]
  - name: broken
    notebook: broken.ipynb
"""


def test_an_executor_is_one_of_script_function_or_notebook() -> None:
    assert Executor("a", notebook="x.ipynb").notebook == "x.ipynb"
    with pytest.raises(ValueError, match="exactly one of 'script'.*'notebook'"):
        Executor("a", script="x.py", notebook="x.ipynb")


def test_a_missing_notebook_file_is_named(app_dir: Path) -> None:
    (app_dir / "scanflow.yaml").write_text(SPEC)
    with pytest.raises(SpecError, match=r"notebook file 'count.ipynb' not found"):
        load_project(app_dir).app.check(app_dir)


@pytest.mark.slow
def test_notebook_executor_gets_parameters_and_logs_the_executed_notebook(app_dir: Path) -> None:
    from mlflow.tracking import MlflowClient

    from scanflow.tracking.config import embedded_tracking_uri

    (app_dir / "scanflow.yaml").write_text(SPEC)
    write_notebook(
        app_dir / "count.ipynb",
        [
            (["parameters"], "rows = 1\nreport = None"),
            (
                [],
                "import json, os\nos.makedirs(report, exist_ok=True)\n"
                "with open(os.path.join(report, 'r.json'), 'w') as f:\n"
                "    json.dump({'rows': rows, 'cwd': os.getcwd()}, f)",
            ),
        ],
    )
    write_notebook(
        app_dir / "broken.ipynb",
        [
            (None, "A notebook that fails."),
            (["parameters"], "rows = 1"),
            ([], "x = 1"),
            ([], "raise ValueError('bad row count %d' % rows)"),
        ],
    )
    engine = get_engine(load_project(app_dir), "local")
    run = engine.run("report")
    assert run.status == "failed"
    steps = {s.name: s for s in Store.for_state_dir(app_dir / ".scanflow").steps(run.id)}
    assert steps["count"].status == "succeeded" and steps["broken"].status == "failed"
    written = json.loads((Path(steps["count"].output_dir) / "report" / "r.json").read_text())
    assert written == {"rows": 5, "cwd": str(app_dir.resolve())}
    log = "".join(engine.logs(run.id, "broken"))
    assert "broken.ipynb: failed in notebook cell 4: ValueError: bad row count 5" in log
    client = MlflowClient(embedded_tracking_uri(app_dir))
    for step, name in (("count", "count.output.ipynb"), ("broken", "broken.output.ipynb")):
        logged = [a.path for a in client.list_artifacts(steps[step].mlflow_run_id)]
        assert name in logged
