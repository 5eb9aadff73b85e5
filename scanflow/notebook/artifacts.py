"""Values passed between notebook steps, serialised by type into a folder per value.

=====================================  ============  ===========================
type                                   file          written with
=====================================  ============  ===========================
pandas DataFrame                       NAME.parquet  ``DataFrame.to_parquet``
pandas Series                          NAME.series.parquet  (a one-column table)
numpy array (not of Python objects)    NAME.npy      ``numpy.save``
scikit-learn estimator                 NAME.joblib   ``joblib.dump``
None, bool, int, float, str, and lists
and dicts (string keys) of those;
numpy scalars                          NAME.json     ``json.dump``
=====================================  ============  ===========================

Anything else is refused with an error naming the cell and the variable: nothing is
pickled silently. Libraries are imported only for the type at hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from scanflow.notebook.errors import NotebookError

SUPPORTED = (
    "pandas DataFrames and Series (parquet), numpy arrays (npy), scikit-learn estimators "
    "(joblib), and plain data: None, bool, int, float, str and lists or dicts of them (JSON)"
)


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def kind_of(value: Any) -> str | None:
    """The format ``value`` is saved in (``parquet``, ``series``, ``npy``, ``joblib``,
    ``json``), or None when it cannot pass between steps."""
    module = type(value).__module__.split(".")[0]
    if module == "pandas":
        import pandas as pd

        if isinstance(value, pd.DataFrame):
            return "parquet"
        if isinstance(value, pd.Series):
            return "series"
    if module == "numpy":
        import numpy as np

        if isinstance(value, np.ndarray):
            return None if value.dtype.hasobject else "npy"
        if isinstance(value, np.generic) and not isinstance(value, np.object_):
            return "json"
    if "sklearn" in sys.modules:
        from sklearn.base import BaseEstimator

        if isinstance(value, BaseEstimator):
            return "joblib"
    return "json" if _is_plain(value) else None


_SUFFIX = {
    "parquet": ".parquet",
    "series": ".series.parquet",
    "npy": ".npy",
    "joblib": ".joblib",
    "json": ".json",
}
_SERIES_COLUMN = "__value__"


def save(value: Any, folder: str | Path, variable: str, cell: int | None = None) -> Path:
    """Write ``value`` into ``folder`` as ``<variable><suffix>``; returns the file.

    Raises :class:`NotebookError` naming ``cell`` and ``variable`` when the type (or
    this value of it) cannot be saved.
    """
    where = f"cell {cell}: " if cell is not None else ""
    kind = kind_of(value)
    if kind is None:
        raise NotebookError(
            f"{where}variable {variable!r} is a {type(value).__module__}."
            f"{type(value).__qualname__}, which cannot be passed to another step; passed "
            f"are {SUPPORTED}. Make it in the step that uses it, or convert it to one of these"
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{variable}{_SUFFIX[kind]}"
    try:
        _write(kind, value, path)
    except (ValueError, TypeError, OverflowError) as exc:
        path.unlink(missing_ok=True)
        raise NotebookError(
            f"{where}variable {variable!r} ({type(value).__qualname__}) could not be saved "
            f"as {kind}: {exc}"
        ) from None
    return path


def _write(kind: str, value: Any, path: Path) -> None:
    if kind == "parquet":
        value.to_parquet(path)
    elif kind == "series":
        name = _SERIES_COLUMN if value.name is None else value.name
        value.to_frame(name=name).to_parquet(path)
    elif kind == "npy":
        import numpy as np

        np.save(path, value, allow_pickle=False)
    elif kind == "joblib":
        import joblib

        joblib.dump(value, path)
    else:
        plain = value.item() if hasattr(value, "item") and not _is_plain(value) else value
        path.write_text(json.dumps(plain), encoding="utf-8")


def artifact_file(folder: str | Path) -> Path:
    """The one value file in an artifact folder."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    if len(files) != 1:
        raise NotebookError(
            f"{folder} should hold exactly one value file written by a notebook step "
            f"(found {len(files)})"
        )
    return files[0]


def load(folder: str | Path) -> Any:
    """Read back the value :func:`save` wrote into ``folder``."""
    path = artifact_file(folder)
    name = path.name
    if name.endswith(".series.parquet"):
        import pandas as pd

        series = pd.read_parquet(path).iloc[:, 0]
        return series.rename(None) if series.name == _SERIES_COLUMN else series
    if name.endswith(".parquet"):
        import pandas as pd

        return pd.read_parquet(path)
    if name.endswith(".npy"):
        import numpy as np

        return np.load(path, allow_pickle=False)
    if name.endswith(".joblib"):
        import joblib

        return joblib.load(path)
    if name.endswith(".json"):
        return json.loads(path.read_text(encoding="utf-8"))
    raise NotebookError(f"{path}: unknown artifact format (expected one written by a step)")
