"""Keeping libraries a model does not need out of a worker's memory.

A scikit-learn model on tensors (or on columns of one numeric type, which travel as one
array) is served on numpy alone, yet scikit-learn imports
pandas (and pandas imports pyarrow) when they are installed: ~90 MB per worker. Both are
optional imports for them, so a worker serving such a model declines to import them;
:func:`let_in` lifts that as soon as a model that needs them is loaded.
"""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder
from typing import Any

_HEAVY = ("pandas", "pyarrow")


class _KeepOut(MetaPathFinder):
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.split(".", 1)[0] in _HEAVY:
            raise ImportError(f"{name} is not loaded by this serving worker (lean mode)")
        return None


_finder = _KeepOut()


def keep_out() -> None:
    """Make ``import pandas`` / ``import pyarrow`` fail (they are optional for numpy models)."""
    if _finder not in sys.meta_path and not any(m in sys.modules for m in _HEAVY):
        sys.meta_path.insert(0, _finder)


def let_in() -> None:
    """Allow pandas and pyarrow again (before loading a model that needs them)."""
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)


def active() -> bool:
    return _finder in sys.meta_path


def model_is_lean(mlmodel: dict[str, Any], fast_path: bool = True) -> bool:
    """True when the model will be called directly on numpy (scikit-learn; tensor inputs or
    columns of one numeric type). :func:`~scanflow.serving.model.load_model` lets pandas in
    after all when such an estimator turns out to need a DataFrame."""
    flavors = mlmodel.get("flavors") or {}
    sk = flavors.get("sklearn")
    pyfunc = flavors.get("python_function") or {}
    if not (fast_path and sk) or sk.get("code") or pyfunc.get("code"):
        return False
    if sk.get("serialization_format") != "skops":
        return False  # pickle formats go through MLflow's loader, which needs pandas
    from scanflow.serving.columns import layout_of
    from scanflow.serving.signature import parse_signature

    signature = parse_signature(mlmodel)
    if not signature.is_columns:
        return True
    layout = layout_of(signature)  # columns of one numeric type travel as one array
    return layout is not None and layout.dense is not None
