"""Keeping libraries a model does not need out of a worker's memory.

scikit-learn imports pandas, pandas imports pyarrow, and scikit-learn imports pytest
whenever they are installed, though all three are optional for it. A serving worker
declines the ones its model does not need (:func:`not_needed`):

- pytest, always: a test framework is never needed to serve (~8 MB);
- pyarrow, for a scikit-learn model loaded by skops: its DataFrames hold strings in
  Python objects instead (~30 MB);
- pandas too, for such a model on tensors or on columns of one numeric type, which is
  called on numpy alone (~60 MB more).

:func:`let_in` lifts that as soon as a model that needs them is loaded.

Such a worker also runs with docstrings and asserts stripped (``PYTHONOPTIMIZE=2``, ~16 MB
less): numpy, scipy, scikit-learn, pandas and skops support it (:func:`optimizable`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from importlib.abc import MetaPathFinder
from typing import Any

NEVER_NEEDED = ("pytest", "_pytest")


class _KeepOut(MetaPathFinder):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.split(".", 1)[0] in self.names:
            raise ImportError(f"{name} is not loaded by this serving worker (lean mode)")
        return None


_finder = _KeepOut()


def keep_out(names: Iterable[str] = ("pandas", "pyarrow", *NEVER_NEEDED)) -> None:
    """Make importing ``names`` fail, for those not imported yet."""
    _finder.names |= {n for n in names if n not in sys.modules}
    if _finder.names and _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def let_in(names: Iterable[str] | None = None) -> None:
    """Allow ``names`` again (all of them by default) before loading a model needing them."""
    if names is None:
        _finder.names.clear()
    else:
        _finder.names -= set(names)
    if not _finder.names and _finder in sys.meta_path:
        sys.meta_path.remove(_finder)


def kept_out() -> frozenset[str]:
    """The libraries whose import is refused in this process."""
    return frozenset(_finder.names) if _finder in sys.meta_path else frozenset()


def keeps_out(name: str) -> bool:
    """Whether importing ``name`` is refused in this process."""
    return name in kept_out()


def only_needed(mlmodel: dict[str, Any], fast_path: bool = True) -> None:
    """Let in what the model in ``mlmodel`` needs of the libraries kept out so far."""
    let_in(kept_out() - set(not_needed(mlmodel, fast_path)))


def not_needed(mlmodel: dict[str, Any], fast_path: bool = True) -> tuple[str, ...]:
    """The optional libraries loading and calling this model will not import."""
    if not _skops_estimator(mlmodel, fast_path):
        return NEVER_NEEDED
    if _on_numpy(mlmodel):
        return ("pandas", "pyarrow", *NEVER_NEEDED)
    return ("pyarrow", *NEVER_NEEDED)


def optimizable(mlmodel: dict[str, Any], fast_path: bool = True) -> bool:
    """Whether a worker serving this model may run with ``PYTHONOPTIMIZE=2``: a scikit-learn
    estimator loaded by skops, whose libraries all support it (MLflow's loaders and a
    model's own code are not assumed to)."""
    return _skops_estimator(mlmodel, fast_path)


def model_is_lean(mlmodel: dict[str, Any], fast_path: bool = True) -> bool:
    """True when the model will be called directly on numpy (scikit-learn; tensor inputs or
    columns of one numeric type). :func:`~scanflow.serving.model.load_model` lets pandas in
    after all when such an estimator turns out to need a DataFrame."""
    return _skops_estimator(mlmodel, fast_path) and _on_numpy(mlmodel)


def _skops_estimator(mlmodel: dict[str, Any], fast_path: bool) -> bool:
    """A scikit-learn model without code of its own, saved by skops, loaded directly
    (pickle formats go through MLflow's loader, which needs pandas)."""
    flavors = mlmodel.get("flavors") or {}
    sk = flavors.get("sklearn")
    pyfunc = flavors.get("python_function") or {}
    if not (fast_path and sk) or sk.get("code") or pyfunc.get("code"):
        return False
    return bool(sk.get("serialization_format") == "skops")


def _on_numpy(mlmodel: dict[str, Any]) -> bool:
    """Its inputs travel as one array: tensors, or columns of one numeric type."""
    from scanflow.serving.signature import parse_signature

    signature = parse_signature(mlmodel)  # imports no numpy: the supervisor calls this
    return not signature.is_columns or signature.dense_dtype is not None
