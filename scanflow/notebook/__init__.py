"""Notebook -> workflow: a tagged Jupyter notebook becomes plain step scripts and a workflow.

``convert`` reads the tags (:mod:`.cells`), plans the steps by static analysis of names
(:mod:`.plan`, :mod:`.names`), derives requirements from imports (:mod:`.requirements`)
and writes scripts and scanflow.yaml (:mod:`.writer`). Steps pass values as artifacts
serialised by type (:mod:`.artifacts`) through :mod:`.runtime`; :mod:`.verify` runs the
notebook and the workflow and compares what they made.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scanflow.notebook.errors import NotebookError
from scanflow.notebook.plan import Plan
from scanflow.notebook.writer import Written

__all__ = ["Conversion", "NotebookError", "convert"]


@dataclass(frozen=True)
class Conversion:
    """A converted notebook: the plan of its steps and what was written."""

    plan: Plan
    written: Written


def convert(
    notebook: str | Path,
    app_dir: str | Path = ".",
    workflow: str | None = None,
    steps_dir: str | None = None,
) -> Conversion:
    """Convert ``notebook`` into step scripts and a workflow of the application in ``app_dir``.

    ``workflow`` names the workflow (default: from the notebook's file name); scripts go
    to ``steps_dir`` (default ``steps/<workflow>``) relative to ``app_dir``.
    """
    from scanflow.notebook.cells import read_notebook
    from scanflow.notebook.plan import build_plan
    from scanflow.notebook.writer import write

    plan = build_plan(read_notebook(notebook))
    return Conversion(plan, write(plan, Path(app_dir), workflow, steps_dir))
