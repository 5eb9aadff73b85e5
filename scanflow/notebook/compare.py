"""Whether two values a notebook and its workflow made are the same, and if not, how they differ.

Arrays and tables are compared with numpy's and pandas' testing helpers (floats to a
relative 1e-9); estimators by type and, when a 2-D array or table of the same step fits
them, by their predictions on it; plain data by value (floats to a relative 1e-9).
"""

from __future__ import annotations

import math
from typing import Any

RTOL = 1e-9


def _first_lines(error: AssertionError, count: int = 6) -> str:
    return " ".join(str(error).strip().splitlines()[:count])


def _plain_difference(a: Any, b: Any, where: str = "") -> str | None:
    if isinstance(a, float) and isinstance(b, float):
        same = math.isclose(a, b, rel_tol=RTOL) or (math.isnan(a) and math.isnan(b))
        return None if same else f"{where or 'value'}: {a!r} != {b!r}"
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where or 'list'}: {len(a)} items != {len(b)} items"
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            if found := _plain_difference(x, y, f"{where}[{index}]"):
                return found
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return f"{where or 'dict'}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            if found := _plain_difference(a[key], b[key], f"{where}[{key!r}]"):
                return found
        return None
    return None if a == b and type(a) is type(b) else f"{where or 'value'}: {a!r} != {b!r}"


def _fits(estimator: Any, data: Any) -> bool:
    shape = getattr(data, "shape", None)
    return shape is not None and len(shape) == 2 and shape[1] == estimator.n_features_in_


def _estimator_difference(a: Any, b: Any, data: list[Any]) -> str | None:
    import numpy as np

    if type(a) is not type(b):
        return f"estimator types {type(a).__name__} != {type(b).__name__}"
    if not (hasattr(a, "predict") and hasattr(a, "n_features_in_")):
        return None
    for candidate in data:
        if _fits(a, candidate):
            try:
                np.testing.assert_array_equal(a.predict(candidate), b.predict(candidate))
            except AssertionError as exc:
                return f"predictions differ: {_first_lines(exc)}"
            return None
    return None


def difference(a: Any, b: Any, data: list[Any] = ()) -> str | None:  # type: ignore[assignment]
    """How ``b`` differs from ``a`` (None when they are the same); ``data``: the step's other
    values, on which estimators are compared by their predictions."""
    module = type(a).__module__.split(".")[0]
    if module == "pandas":
        import pandas as pd

        try:
            if isinstance(a, pd.DataFrame):
                pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=RTOL)
            else:
                pd.testing.assert_series_equal(a, b, check_exact=False, rtol=RTOL)
        except AssertionError as exc:
            return _first_lines(exc)
        return None
    if module == "numpy" and hasattr(a, "shape"):
        import numpy as np

        try:
            if np.issubdtype(a.dtype, np.inexact):
                np.testing.assert_allclose(a, b, rtol=RTOL, atol=0)
            else:
                np.testing.assert_array_equal(a, b)
        except AssertionError as exc:
            return _first_lines(exc)
        return None
    if hasattr(a, "get_params"):
        return _estimator_difference(a, b, list(data))
    return _plain_difference(a, b)
