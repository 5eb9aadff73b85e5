"""IPython magics and shell lines in a cell: dropped, turned into Python or requirements, or
refused with the cell and line.

- Harmless outside Jupyter (``%matplotlib inline``, ``%load_ext autoreload``, ``%config``,
  ``%%capture`` ...): dropped, with a note.
- ``%time STATEMENT`` keeps the statement; ``%%time``/``%%timeit``/``%%capture`` keep the
  cell's body.
- ``!pip install X`` and ``%pip install X``: X becomes a requirement of the step.
- Anything else (``!ls``, ``%cd``, ``%run``, ``%%bash`` ...) is refused: a step is a plain
  Python script.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from scanflow.notebook.errors import NotebookError

DROPPED_LINE_MAGICS = {
    "matplotlib",
    "load_ext",
    "reload_ext",
    "autoreload",
    "config",
    "precision",
    "pprint",
    "xmode",
    "timeit",
    "who",
    "whos",
    "lsmagic",
}
BODY_CELL_MAGICS = {"time", "timeit", "capture"}
_PIP = re.compile(
    r"^(?:pip3?|python3?\s+-m\s+pip|\{sys\.executable\}\s+-m\s+pip)\s+install\s+(.*)$"
)
_OPTIONS_WITH_VALUE = {"-i", "--index-url", "--extra-index-url", "-c", "--constraint", "-f"}


@dataclass
class CleanCell:
    """A cell's Python source (same line count) and what was done to its magics."""

    source: str
    notes: list[str] = field(default_factory=list)
    requirements: list[str] = field(default_factory=list)


def _refuse(cell: int, line: int, text: str, why: str) -> NotebookError:
    return NotebookError(f"cell {cell}, line {line}: {text.strip()!r} {why}")


def _pip_requirements(cell: int, line: int, text: str, args: str) -> list[str]:
    from packaging.requirements import InvalidRequirement, Requirement

    words = shlex.split(args)
    found: list[str] = []
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
        elif word in ("-r", "--requirement", "-e", "--editable"):
            raise _refuse(
                cell,
                line,
                text,
                "installs from a file or folder; list the packages in the step's "
                "'requirements' in scanflow.yaml instead",
            )
        elif word in _OPTIONS_WITH_VALUE:
            skip_next = True
        elif not word.startswith("-"):
            try:
                Requirement(word)
            except InvalidRequirement as exc:
                raise _refuse(cell, line, text, f"names an invalid requirement: {exc}") from None
            found.append(word)
    return found


def clean_cell(number: int, source: str) -> CleanCell:
    """``source`` with its magics handled; raises :class:`NotebookError` for refused ones."""
    lines = source.splitlines()
    out = CleanCell("")
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        name = lines[first].strip()[2:].split()[0] if lines[first].strip()[2:] else ""
        if name not in BODY_CELL_MAGICS:
            raise _refuse(
                number,
                first + 1,
                lines[first],
                "is a cell magic that runs something other than Python; rewrite the cell in "
                "Python or tag it skip",
            )
        out.notes.append(f"cell {number}: dropped {lines[first].strip()!r}, kept its body")
        lines[first] = f"# {lines[first].strip()}  (dropped)"
    for index, text in enumerate(lines):
        stripped = text.strip()
        indent = text[: len(text) - len(text.lstrip())]
        if not stripped.startswith(("%", "!")) or stripped.startswith("%%"):
            continue
        line = index + 1
        command = stripped[1:].strip()
        pip = _PIP.match(command) if stripped[0] == "!" or command.startswith("pip") else None
        if pip:
            out.requirements += _pip_requirements(number, line, text, pip.group(1))
            out.notes.append(f"cell {number}: {stripped!r} became requirement(s)")
            lines[index] = f"{indent}# {stripped}  (a requirement of the step)"
            continue
        if stripped[0] == "!":
            raise _refuse(
                number,
                line,
                text,
                "is a shell command, which a step does not run; do it in Python "
                "(subprocess, pathlib, shutil) or tag the cell skip",
            )
        name, _, rest = command.partition(" ")
        if name == "time" and rest.strip():
            lines[index] = f"{indent}{rest.strip()}"
            out.notes.append(f"cell {number}: kept the statement of {stripped!r}")
        elif name in DROPPED_LINE_MAGICS:
            lines[index] = f"{indent}# {stripped}  (dropped)"
            out.notes.append(f"cell {number}: dropped {stripped!r} (not needed outside Jupyter)")
        else:
            raise _refuse(
                number,
                line,
                text,
                "is an IPython magic a step cannot run; write it in Python or tag the cell skip",
            )
    out.source = "\n".join(lines)
    return out
