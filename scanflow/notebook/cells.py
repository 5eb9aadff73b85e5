"""Reading a notebook's cell tags: Kale's (``step:``, ``prev:``, ``skip``, ``imports``,
``functions``, ``pipeline-parameters``, ``pipeline-metrics``) and papermill's ``parameters``.

Cells are numbered from 1 in notebook order, markdown cells included, so ``cell 7`` is
the seventh cell a reader counts. An untagged code cell belongs to the tagged cell
above it (as in Kale); tags this converter does not use (Kale's ``limit:``, ``image:``,
``annotation:`` ...) are ignored.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from scanflow.notebook.errors import NotebookError

log = logging.getLogger(__name__)

IMPORTS, FUNCTIONS, PARAMETERS, METRICS, STEP, SKIP = (
    "imports",
    "functions",
    "parameters",
    "metrics",
    "step",
    "skip",
)
_ROLE_TAGS = {
    "imports": IMPORTS,
    "functions": FUNCTIONS,
    "pipeline-parameters": PARAMETERS,
    "parameters": PARAMETERS,  # papermill
    "pipeline-metrics": METRICS,
    "skip": SKIP,
}
_STEP_TAG = re.compile(r"^(?:step|block):(.*)$")
_PREV_TAG = re.compile(r"^prev:(.+)$")
_STEP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")

TAGGING_GUIDE = """\
Tag its code cells (Jupyter: View > Cell Toolbar > Tags; JupyterLab: the property inspector):
  imports               cells that import modules
  functions             cells that define functions, classes and constants
  pipeline-parameters   cells of 'NAME = value' lines: the workflow's parameters
                        (papermill's 'parameters' tag works too)
  step:NAME             the first cell of a step; untagged cells below it belong to it
  prev:NAME             on a step's cell: the step runs after step NAME (one tag per step)
  pipeline-metrics      cells of 'print(NAME)' lines: values logged as metrics
  skip                  cells left out
For example:
  cell 1  [imports]                  import pandas as pd
  cell 2  [pipeline-parameters]      rows = 100
  cell 3  [step:load]                df = pd.DataFrame({"x": range(rows)})
  cell 4  [step:total, prev:load]    total = int(df["x"].sum())
  cell 5  [pipeline-metrics]         print(total)"""


@dataclass(frozen=True)
class Cell:
    """One code cell with the role its tags (or the tagged cell above it) give it."""

    number: int
    role: str
    source: str
    step: str | None = None


@dataclass
class StepDecl:
    """A step as tagged: its name, the steps it comes after, its cells in notebook order."""

    name: str
    tag: str
    prev: list[str] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)

    @property
    def first_cell(self) -> int:
        """The number of the cell that opens the step."""
        return self.cells[0].number


@dataclass
class TaggedNotebook:
    """A notebook split by its tags."""

    path: Path
    cells: list[Cell]
    steps: dict[str, StepDecl]

    def of_role(self, role: str) -> list[Cell]:
        """The cells of one role (``imports``, ``functions``, ...), in notebook order."""
        return [c for c in self.cells if c.role == role]


def step_name(tag_name: str, cell: int) -> str:
    """Kale's step name as a workflow executor name: ``load_data`` -> ``load-data``."""
    from scanflow.spec.model import DNS1123_LABEL

    name = tag_name.strip().lower().replace("_", "-")
    if not _STEP_NAME.match(tag_name.strip()) or not DNS1123_LABEL.match(name) or len(name) > 63:
        raise NotebookError(
            f"cell {cell}: step name {tag_name!r} is not usable; use letters, digits, '_' "
            "and '-', starting with a letter (e.g. step:load_data)"
        )
    return name


def read_notebook(path: str | Path) -> TaggedNotebook:
    """Read ``path`` with nbformat and split it into tagged cells and steps."""
    import nbformat

    path = Path(path)
    if not path.is_file():
        raise NotebookError(f"notebook {path} not found")
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds on bad files
        raise NotebookError(f"{path} is not a readable notebook: {exc}") from exc
    cells: list[Cell] = []
    steps: dict[str, StepDecl] = {}
    role: str | None = None
    current: str | None = None
    for number, raw in enumerate(notebook.cells, start=1):
        if raw.cell_type != "code":
            continue
        tags = [str(t) for t in raw.get("metadata", {}).get("tags", [])]
        roles = {_ROLE_TAGS[t] for t in tags if t in _ROLE_TAGS}
        named = [m.group(1) for t in tags if (m := _STEP_TAG.match(t)) and m.group(1).strip()]
        prevs = [m.group(1) for t in tags if (m := _PREV_TAG.match(t))]
        if len(roles) + bool(named) > 1 or len(named) > 1:
            raise NotebookError(
                f"{path.name}: cell {number} has conflicting tags {tags}; give it one of "
                "imports, functions, pipeline-parameters, pipeline-metrics, skip or one step:NAME"
            )
        if named:
            role, current = STEP, step_name(named[0], number)
            if current not in steps:
                steps[current] = StepDecl(current, named[0])
        elif roles:
            role, current = roles.pop(), None
        elif role is None:
            if not raw.source.strip():
                continue
            if prevs:
                raise NotebookError(
                    f"{path.name}: cell {number} has a prev: tag but no step; add step:NAME to it"
                )
            role = "untagged"
        if prevs:
            if role != STEP or current is None:
                raise NotebookError(
                    f"{path.name}: cell {number} has prev: tags but belongs to no step; "
                    "put prev:NAME on a cell tagged step:NAME"
                )
            for prev in prevs:
                name = step_name(prev, number)
                if name not in steps[current].prev:
                    steps[current].prev.append(name)
        if not raw.source.strip():
            continue
        cell = Cell(number, role, raw.source, current)
        cells.append(cell)
        if role == STEP and current is not None:
            steps[current].cells.append(cell)
    if not steps:
        raise NotebookError(
            f"{path.name} has no step:NAME tags, so it cannot be split into steps.\n"
            + TAGGING_GUIDE
        )
    loose = [c.number for c in cells if c.role == "untagged"]
    if loose:
        raise NotebookError(
            f"{path.name}: code cell(s) {', '.join(map(str, loose))} come before any tagged "
            "cell, so they belong to nothing; tag them (imports, functions or skip, or "
            f"step:NAME).\n{TAGGING_GUIDE}"
        )
    for step in steps.values():
        for prev in step.prev:
            if prev not in steps:
                raise NotebookError(
                    f"{path.name}: cell {step.first_cell} has prev:{prev} but no cell is "
                    f"tagged step:{prev} (steps: {', '.join(steps)})"
                )
        if not step.cells:
            raise NotebookError(f"{path.name}: step {step.name!r} has no code")
    log.debug("read %s: %d steps", path, len(steps))
    return TaggedNotebook(path, cells, steps)
