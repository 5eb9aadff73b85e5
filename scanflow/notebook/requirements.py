"""A step's requirements: the distributions of the modules it imports, pinned to the versions
installed here; the standard library, Scanflow and the notebook's own modules excluded."""

from __future__ import annotations

import logging
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

from scanflow.notebook.errors import NotebookError

log = logging.getLogger(__name__)

EXCLUDED = {"scanflow"}


@cache
def _distributions() -> dict[str, list[str]]:
    return dict(metadata.packages_distributions())


def _normal(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def is_local(module: str, folders: list[Path]) -> bool:
    """Whether ``module`` is a file or package of the notebook's own (in one of ``folders``)."""
    return any((f / f"{module}.py").is_file() or (f / module).is_dir() for f in folders)


def requirements_for(
    modules: dict[str, int], pip: list[str], folders: list[Path]
) -> tuple[list[str], list[str]]:
    """``(requirements, pip lines left over)`` for the top-level ``modules`` a step imports
    (``{module: cell that imports it}``) and the ``!pip install`` lines that concern it.

    A module that is neither installed here, nor local, nor named by a pip line is an
    error naming its cell: its version cannot be pinned and the step would fail later.
    """
    from packaging.requirements import Requirement

    wanted = {_normal(Requirement(p).name): p for p in pip}
    found: dict[str, str] = {}
    for module, cell in sorted(modules.items()):
        if module in sys.stdlib_module_names or module in EXCLUDED:
            continue
        dists = _distributions().get(module)
        if not dists:
            line = wanted.get(_normal(module))
            if line is not None:
                found[_normal(module)] = line
            elif not is_local(module, folders):
                raise NotebookError(
                    f"cell {cell} imports {module!r}, which is not installed here, so its "
                    f"version cannot be pinned; install it (pip install ...) or add "
                    f"'!pip install <package>' to the notebook"
                )
            continue
        for dist in dists:
            key = _normal(dist)
            if key in {_normal(e) for e in EXCLUDED}:
                continue
            line = wanted.get(key)
            pinned = line is None or not Requirement(line).specifier
            found[key] = f"{dist}=={metadata.version(dist)}" if pinned else str(line)
    left = [line for key, line in wanted.items() if key not in found]
    return sorted(found.values(), key=str.lower), left
