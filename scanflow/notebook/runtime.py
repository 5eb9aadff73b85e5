"""What a step script written from a notebook calls: argument types, the notebook's folder,
reading and writing artifacts, logging metrics, and errors that name the notebook cell.

A step script marks where each cell's code starts with ``# %% cell N`` (or
``# %% cell N, line L`` for a piece that starts at line L of the cell); an uncaught
error is reported as ``failed in notebook cell N, line L`` from those marks, so the map
stays right when the script is edited.
"""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any

from scanflow.notebook import artifacts
from scanflow.notebook.errors import NotebookError

MARK = re.compile(r"^# %% (?:cell (\d+)(?:, line (\d+))?|scanflow\b)")
FAILED = "failed in notebook cell"


def boolean(text: str) -> bool:
    """A command-line word as a boolean (``true``/``false``, ``1``/``0``, ``yes``/``no``)."""
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(f"{text!r} is not a boolean (true or false)")


def json_value(text: str) -> Any:
    """A command-line word holding JSON (list parameters arrive so)."""
    return json.loads(text)


def cell_of(script: str | Path, line: int) -> tuple[int, int] | None:
    """``(cell, line in the cell)`` of line ``line`` of a step script, from its marks."""
    found = None
    lines = Path(script).read_text(encoding="utf-8").splitlines()
    for number, text in enumerate(lines[:line], start=1):
        mark = MARK.match(text)
        if mark:
            found = (int(mark.group(1)), int(mark.group(2) or 1), number) if mark.group(1) else None
    if found is None:
        return None
    cell, first, marked = found
    return cell, first + line - marked - 1


def _hook(script: str) -> Any:
    def report(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        if isinstance(error, NotebookError):
            sys.stderr.write(f"scanflow: {error}\n")
            return
        traceback.print_exception(kind, error, tb)
        frames = [f for f in traceback.extract_tb(tb) if Path(f.filename) == Path(script)]
        where = cell_of(script, frames[-1].lineno or 0) if frames else None
        if where is not None:
            sys.stderr.write(
                f"scanflow: {FAILED} {where[0]}, line {where[1]}: {kind.__name__}: {error}\n"
            )

    return report


def start(script: str, notebook_folder: str) -> None:
    """Report errors by notebook cell, and work in the notebook's folder (as in Jupyter).

    ``notebook_folder`` is relative to the script's folder.
    """
    script = str(Path(script).resolve())
    sys.excepthook = _hook(script)
    os.chdir(Path(script).parent / notebook_folder)


def display(*objects: Any) -> None:
    """IPython's ``display`` outside Jupyter: each object's text on standard output."""
    for value in objects:
        sys.stdout.write(f"{value}\n")


def load(folder: str) -> Any:
    """The value an upstream step handed on (see :mod:`scanflow.notebook.artifacts`)."""
    return artifacts.load(folder)


def save(value: Any, folder: str, variable: str, cell: int) -> None:
    """Hand ``value`` on to downstream steps; an unsupported type names ``cell``."""
    artifacts.save(value, folder, variable, cell)


def log_metrics(values: dict[str, Any], cell: int) -> None:
    """Log the notebook's ``pipeline-metrics`` to the step's MLflow run."""
    from scanflow import tracking

    metrics = {}
    for name, value in values.items():
        try:
            metrics[name] = float(value)
        except (TypeError, ValueError):
            raise NotebookError(
                f"cell {cell}: metric {name!r} is a {type(value).__name__} ({value!r:.60}); "
                "a metric must be a number"
            ) from None
    tracking.log_metrics(metrics)
    tracking.flush()
