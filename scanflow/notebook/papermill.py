"""A notebook as one executor (``notebook: analysis.ipynb``): run whole with papermill.

The step's parameters and the paths of its inputs and outputs are injected after the
notebook's ``parameters`` cell (each under its own name, as a script would receive them
as ``--name``); the executed notebook, outputs included, is logged as an artifact of the
step's MLflow run, also when a cell fails. A failing cell is named as in the notebook
(cells counted from 1, markdown included; papermill's added cells not counted).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from scanflow.notebook.errors import NotebookError

log = logging.getLogger(__name__)

KERNEL = "python3"
_ADDED_TAGS = {"injected-parameters", "papermill-error-cell-tag"}


def failed_cell(executed: Path) -> tuple[int, str] | None:
    """``(cell number in the original notebook, 'Error: message')`` of the failed cell."""
    import nbformat

    notebook = nbformat.read(executed, as_version=4)
    original = [c for c in notebook.cells if not _ADDED_TAGS & set(c.metadata.get("tags", []))]
    for number, cell in enumerate(original, start=1):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return number, f"{output.get('ename')}: {output.get('evalue')}"
    return None


def run_notebook(notebook: str, parameters: dict[str, Any], log_to_mlflow: bool = True) -> Path:
    """Run ``notebook`` with ``parameters`` in its own folder; returns the executed copy
    (written to the current folder as ``<name>.output.ipynb``)."""
    try:
        import papermill
        from papermill.exceptions import PapermillExecutionError
    except ImportError:
        raise NotebookError(
            "a notebook executor needs papermill: pip install 'scanflow[notebook]'"
        ) from None
    source = Path(notebook)
    executed = Path.cwd() / f"{source.stem}.output.ipynb"
    failure: NotebookError | None = None
    try:
        papermill.execute_notebook(
            str(source),
            str(executed),
            parameters=parameters,
            kernel_name=KERNEL,
            language="python",
            cwd=str(source.parent),
            progress_bar=False,
        )
    except PapermillExecutionError as exc:
        where = failed_cell(executed)
        cell, what = where if where else ("?", f"{exc.ename}: {exc.evalue}")
        failure = NotebookError(f"{source.name}: failed in notebook cell {cell}: {what}")
    finally:
        if log_to_mlflow and executed.exists():
            from scanflow import tracking

            tracking.log_artifact(executed)
    if failure is not None:
        raise failure
    log.info("ran %s; executed copy at %s", source, executed)
    return executed
