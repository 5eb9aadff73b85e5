"""Rows in, columns out: numpy arrays and pandas DataFrames behind one small interface.

pandas is never imported here; a DataFrame is recognised by its shape (``columns`` and
``iloc``), so the monitoring library works on plain numpy arrays without pandas installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from scanflow.monitoring.errors import MonitoringError


def is_frame(data: Any) -> bool:
    """Whether ``data`` is a pandas DataFrame (or anything shaped like one)."""
    return hasattr(data, "columns") and hasattr(data, "iloc")


def n_rows(data: Any) -> int:
    """Number of rows of a DataFrame, a 1-D array (one column) or a 2-D array."""
    return len(data)


def column_names(data: Any, prefix: str = "f") -> tuple[list[str], bool]:
    """Names of the columns of ``data`` and whether they were made up (positional data).

    A 1-D array is one column; a 2-D array's columns are named ``f0``, ``f1``...
    """
    if is_frame(data):
        return [str(c) for c in data.columns], False
    array = as_array(data)
    if array.ndim == 1:
        return [f"{prefix}0"], True
    return [f"{prefix}{j}" for j in range(array.shape[1])], True


def as_array(data: Any) -> np.ndarray:
    """``data`` as a numpy array of 1 or 2 dimensions, or a clear error."""
    array = np.asarray(data)
    if array.ndim not in (1, 2):
        raise MonitoringError(
            f"expected rows as a 1-D or 2-D array or a DataFrame, got an array of shape "
            f"{array.shape}; pass one row per line and one feature per column"
        )
    return array


def columns(
    data: Any,
    names: Sequence[str],
    positional: bool,
    what: str = "data",
    select: Sequence[int] | None = None,
) -> list[np.ndarray]:
    """The columns ``names`` of ``data`` (or those at indices ``select``) as 1-D arrays.

    DataFrames are matched by column name (extra columns are ignored). Arrays are matched
    by position and must have exactly ``len(names)`` columns. A DataFrame given to a
    profile fitted on an array is matched by position when it has no such names.
    """
    if is_frame(data):
        present = {str(c): c for c in data.columns}
        missing = [n for n in names if n not in present]
        keys = [present.get(n) for n in names]
        if positional and missing and len(data.columns) == len(names):
            keys, missing = list(data.columns), []
        if not missing:
            picked = range(len(names)) if select is None else select
            return [_frame_column(data, keys[j]) for j in picked]
        raise MonitoringError(
            f"{what} lacks column(s) {missing[:5]}{'...' if len(missing) > 5 else ''}; "
            f"it has {list(present)[:8]}{'...' if len(present) > 8 else ''}. Pass the same "
            f"feature columns as the reference profile"
        )
    array = as_array(data)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.shape[1] != len(names):
        raise MonitoringError(
            f"{what} has {array.shape[1]} column(s) but the reference profile has "
            f"{len(names)} feature(s); pass rows with the same features in the same order"
        )
    picked = range(array.shape[1]) if select is None else select
    return [array[:, j] for j in picked]


def _frame_column(frame: Any, key: Any) -> np.ndarray:
    column = frame[key]
    try:
        return column.to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError):
        return column.to_numpy(dtype=object)


def float_matrix(
    data: Any,
    names: Sequence[str],
    positional: bool,
    select: Sequence[int],
    what: str = "data",
) -> np.ndarray:
    """Columns ``select`` (indices into ``names``) of ``data`` as a float64 (rows, k) matrix."""
    if not is_frame(data):
        array = as_array(data)
        if array.ndim == 2 and array.shape[1] == len(names) and array.dtype.kind in "biuf":
            return np.asarray(array[:, list(select)], dtype=np.float64)
    cols = columns(data, names, positional, what, select)
    out = np.empty((n_rows(data), len(select)), dtype=np.float64)
    for k, j in enumerate(select):
        try:
            out[:, k] = np.asarray(cols[k], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise MonitoringError(
                f"{what}: feature {names[j]!r} is continuous in the reference profile but "
                f"holds non-numeric values ({exc}); send numbers, or declare it categorical "
                f"when fitting the profile"
            ) from None
    return out


def is_numeric(values: np.ndarray) -> bool:
    """Whether a column holds numbers (booleans count as categories, not numbers)."""
    if values.dtype.kind in "iuf":
        return True
    if values.dtype.kind != "O":
        return False
    try:
        np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return True


def missing_mask(values: np.ndarray) -> np.ndarray:
    """True where a value is missing: NaN or infinite for numbers, None or NaN otherwise."""
    if values.dtype.kind in "iub":
        return np.zeros(len(values), dtype=bool)
    if values.dtype.kind == "f":
        return ~np.isfinite(values)
    return np.fromiter(
        (v is None or (isinstance(v, float) and not np.isfinite(v)) for v in values),
        dtype=bool,
        count=len(values),
    )
