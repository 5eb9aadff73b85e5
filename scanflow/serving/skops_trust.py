"""Loading a skops file while importing only the scikit-learn estimators it holds.

skops trusts every public scikit-learn estimator by default. It lists them once, when
``skops.io`` is first imported, with ``sklearn.utils.all_estimators()``, which imports every
module of scikit-learn (~6 MB in a worker serving one pipeline). In a process that called
:func:`narrow` (a serving worker), that first import sees instead the estimators named in
the model's file that ``all_estimators`` would return too, checked by its own rules: a
class exposed under its public name by the public scikit-learn package that defines it
(``sklearn.compose`` for ``sklearn.compose._column_transformer.ColumnTransformer``), a
subclass of ``BaseEstimator``, not abstract, in none of the packages it skips (tests,
externals, experimental, ...).

The trusted list is therefore never wider than skops's default, and skops still checks
every type in the file against it: a type outside it is refused exactly as before. A file
naming an estimator these rules cannot confirm gets the full list, as without this module;
files loaded later add their estimators to the list the same way, and :func:`trust_all`
restores the full list before a loader other than :func:`load` (MLflow's) reads a file.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SKIPPED_PACKAGES = frozenset(  # what sklearn.utils.all_estimators never looks into
    {"tests", "externals", "setup", "conftest", "experimental", "estimator_checks"}
)


def schema_types(file: str | Path) -> list[tuple[str, str]]:
    """``(module, class)`` of every node in a skops file's ``schema.json``, in file order."""
    with zipfile.ZipFile(file) as archive:
        schema = json.loads(archive.read("schema.json"))
    found: list[tuple[str, str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            module, cls = node.get("__module__"), node.get("__class__")
            if isinstance(module, str):
                found.append((module, cls if isinstance(cls, str) else ""))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return found


def public_estimator(module: str, name: str) -> type | None:
    """The class ``module.name`` when ``sklearn.utils.all_estimators()`` would list it (by
    the rules above; importing only its public package), else None."""
    parts = module.split(".")
    if parts[0] != "sklearn" or not all(p.isidentifier() for p in parts) or not name:
        return None
    if not name.isidentifier() or name.startswith("_") or name == "BaseEstimator":
        return None
    public = []
    for part in parts:
        if part.startswith("_"):
            break
        public.append(part)
    package = ".".join(public)
    if len(public) < 2 or any(p in SKIPPED_PACKAGES for p in public):
        return None
    try:
        if importlib.util.find_spec(package) is None:
            return None
        cls = getattr(importlib.import_module(package), name, None)
    except Exception:  # not a module of this scikit-learn
        return None
    from sklearn.base import BaseEstimator

    if not isinstance(cls, type) or not issubclass(cls, BaseEstimator):
        return None
    if getattr(cls, "__abstractmethods__", None) or (cls.__module__, cls.__name__) != (
        module,
        name,
    ):
        return None
    return cls


def estimators_named(types: Iterable[tuple[str, str]]) -> list[type] | None:
    """The scikit-learn estimators among ``types``; None when one of the scikit-learn types
    there cannot be confirmed (then only the full list will do)."""
    found: list[type] = []
    for module, name in dict.fromkeys(types):
        if module != "sklearn" and not module.startswith("sklearn."):
            continue
        confirmed = public_estimator(module, name)
        if confirmed is None:
            return None
        found.append(confirmed)
    return found


def import_skops(types: Iterable[tuple[str, str]]) -> None:
    """Import ``skops.io`` trusting, of scikit-learn's estimators, those in ``types``; when
    it is imported already, add them to what it trusts."""
    if "skops.io" in sys.modules:
        if _narrowed[0]:
            _trust_more(estimators_named(types))
        return
    classes = estimators_named(types) if _narrow[0] else None
    if classes is None:
        import skops.io  # noqa: F401  the full list, as skops does by itself

        return
    import sklearn.utils

    real = sklearn.utils.all_estimators
    chosen = [(cls.__name__, cls) for cls in classes]

    def only_these(type_filter: Any = None) -> list[tuple[str, type]]:
        if type_filter is not None:  # not what skops asks: answer as scikit-learn would
            return real(type_filter)
        return list(chosen)

    sklearn.utils.all_estimators = only_these
    try:
        import skops.io  # noqa: F401,F811
    finally:
        sklearn.utils.all_estimators = real
    _narrowed[0] = True
    logger.debug("skops trusts %d scikit-learn estimator(s): %s", len(chosen), chosen)


_narrow = [False]  # whether skops, once imported here, should trust only what files hold
_narrowed = [False]  # whether this process's skops trusts a chosen few of the estimators


def narrow() -> None:
    """Make this process's first import of skops trust only the estimators in the files
    :func:`load` reads (for serving workers; other processes keep skops's defaults)."""
    _narrow[0] = True


def trust_all() -> None:
    """Give a narrowed skops every estimator back (what it trusts by default)."""
    if _narrowed[0]:
        _trust_more(None)


def _trust_more(classes: list[type] | None) -> None:
    """Extend the estimators a narrowed skops trusts (all of them for ``None``)."""
    from skops.io import _trusted_types

    if classes is None:
        from sklearn.utils import all_estimators

        classes = [cls for _, cls in all_estimators()]
        _narrowed[0] = False
    listed = _trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES  # nodes read it when they are built
    names = (f"{cls.__module__}.{cls.__name__}" for cls in classes)
    listed.extend(n for n in names if n.startswith("sklearn.") and n not in listed)


def load(file: str | Path, trusted: list[str] | None = None) -> Any:
    """``skops.io.load(file, trusted)``, having imported skops as above."""
    import_skops(schema_types(file))
    import skops.io

    return skops.io.load(file, trusted=trusted)
