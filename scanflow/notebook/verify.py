"""Verification: run the notebook itself and its workflow on the same data and parameters,
and compare every value the steps hand on.

The notebook runs with nbclient in a ``python3`` kernel, in its own folder, with its own
parameter values (the workflow's defaults) and the cells the workflow uses (``skip`` cells
left out, magics handled as in the steps); after each step's last cell, the values the
step hands on are saved the way the step saves them. The workflow runs with the local
engine, without its cache.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scanflow.notebook.cells import SKIP
from scanflow.notebook.errors import NotebookError
from scanflow.notebook.magics import clean_cell
from scanflow.notebook.plan import Plan

log = logging.getLogger(__name__)

KERNEL = "python3"
CELL_KEY = "scanflow_cell"
METRICS_FOLDER = "__metrics__"


@dataclass(frozen=True)
class Comparison:
    """One value compared: the step that hands it on, the cell that made it, the outcome."""

    step: str
    variable: str
    cell: int
    difference: str | None

    @property
    def same(self) -> bool:
        """Whether the notebook and the workflow made the same value."""
        return self.difference is None


def notebook_for_capture(plan: Plan, capture_dir: Path) -> Any:
    """The notebook to run: the workflow's cells, each step followed by a cell saving the
    values it hands on into ``capture_dir/<step>/<variable>``."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3"}
    last_cell = {plan.steps[s].cells[-1]: s for s in plan.steps}
    for cell in plan.notebook.cells:
        if cell.role == SKIP:
            continue
        source = clean_cell(cell.number, cell.source).source
        code = nbformat.v4.new_code_cell(source, metadata={CELL_KEY: cell.number})
        notebook.cells.append(code)
        step = plan.steps.get(last_cell.get(cell.number, ""))
        if step is not None and (step.outputs or step.metrics):
            lines = ["from scanflow.notebook import artifacts as _scanflow_artifacts"]
            lines += [
                f"_scanflow_artifacts.save({v}, {str(capture_dir / step.name / v)!r}, "
                f"{v!r}, cell={c})"
                for v, c in step.outputs.items()
            ]
            if step.metrics:
                values = ", ".join(f"{m!r}: float({m})" for m in step.metrics)
                folder = str(capture_dir / step.name / METRICS_FOLDER)
                lines.append(f"_scanflow_artifacts.save({{{values}}}, {folder!r}, 'metrics')")
            notebook.cells.append(
                nbformat.v4.new_code_cell("\n".join(lines), metadata={CELL_KEY: cell.number})
            )
    return notebook


def run_notebook(plan: Plan, capture_dir: Path, timeout: float = 600) -> None:
    """Run the notebook (see :func:`notebook_for_capture`); an error names the cell."""
    try:
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError
    except ImportError:
        raise NotebookError(
            "running a notebook needs nbclient and ipykernel: pip install 'scanflow[notebook]'"
        ) from None
    shutil.rmtree(capture_dir, ignore_errors=True)
    notebook = notebook_for_capture(plan, capture_dir)
    folder = plan.notebook.path.resolve().parent
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name=KERNEL, resources={"metadata": {"path": folder}}
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        failed = [
            (c.metadata.get(CELL_KEY), o)
            for c in notebook.cells
            for o in c.get("outputs", [])
            if o.get("output_type") == "error"
        ]
        cell, output = failed[-1] if failed else ("?", {})
        what = f"{output.get('ename', 'error')}: {output.get('evalue', exc)}"
        raise NotebookError(f"the notebook failed in cell {cell}: {what}") from None


def compare_outputs(
    plan: Plan, capture_dir: Path, output_dirs: dict[str, Path]
) -> list[Comparison]:
    """Compare what the notebook saved in ``capture_dir`` with the steps' output folders."""
    from scanflow.notebook.artifacts import load
    from scanflow.notebook.compare import difference

    found = []
    for step in plan.steps.values():
        ours = {v: load(capture_dir / step.name / v) for v in step.outputs}
        theirs = {v: load(output_dirs[step.name] / v) for v in step.outputs}
        data = list(ours.values())
        for variable, cell in step.outputs.items():
            diff = difference(ours[variable], theirs[variable], data)
            found.append(Comparison(step.name, variable, cell, diff))
    return found


def compare_metrics(
    plan: Plan, capture_dir: Path, uri: str, runs: dict[str, str]
) -> list[Comparison]:
    """Compare the notebook's ``pipeline-metrics`` with those the steps logged to MLflow."""
    from mlflow.tracking import MlflowClient

    from scanflow.notebook.artifacts import load
    from scanflow.notebook.compare import difference

    client = MlflowClient(uri)
    found = []
    for step in plan.steps.values():
        if not step.metrics:
            continue
        ours = load(capture_dir / step.name / METRICS_FOLDER)
        logged = client.get_run(runs[step.name]).data.metrics if step.name in runs else {}
        for name, cell in step.metrics.items():
            theirs = logged.get(name)
            diff = "not logged" if theirs is None else difference(ours[name], float(theirs))
            found.append(Comparison(step.name, f"metric {name}", cell, diff))
    return found


def verify(
    plan: Plan,
    app_dir: Path,
    workflow: str,
    on_event: Callable[[Any], None] | None = None,
    timeout: float = 600,
) -> list[Comparison]:
    """Run the workflow and the notebook and compare their values; raises
    :class:`NotebookError` naming the step and cell when a run fails or a value differs."""
    from scanflow.notebook.running import cell_errors, run_workflow
    from scanflow.spec.loader import load_project
    from scanflow.store import Store
    from scanflow.tracking.config import tracking_uri

    project = load_project(app_dir)
    engine, run = run_workflow(project, workflow, on_event, use_cache=False)
    if run.status != "succeeded":
        problems = "; ".join(cell_errors(project, engine, run)) or run.error or run.status
        raise NotebookError(f"the workflow run {run.id} {run.status}: {problems}")
    capture_dir = project.state_dir / "notebook-verify" / workflow
    run_notebook(plan, capture_dir, timeout)
    steps = Store.for_state_dir(project.state_dir).steps(run.id)
    output_dirs = {s.name: Path(s.output_dir) for s in steps if s.output_dir}
    comparisons = compare_outputs(plan, capture_dir, output_dirs)
    runs = {s.name: s.mlflow_run_id for s in steps if s.mlflow_run_id}
    comparisons += compare_metrics(plan, capture_dir, tracking_uri(project.app, app_dir), runs)
    differ = [c for c in comparisons if not c.same]
    if differ:
        lines = [
            f"step {c.step!r}, cell {c.cell}: {c.variable!r} differs between the notebook and "
            f"the workflow: {c.difference}"
            for c in differ
        ]
        raise NotebookError(
            f"{len(differ)} of {len(comparisons)} value(s) differ (a step that draws random "
            "numbers without a seed, or reads something that changed, does this):\n  "
            + "\n  ".join(lines)
        )
    log.info("verified %d values of workflow %s", len(comparisons), workflow)
    return comparisons
