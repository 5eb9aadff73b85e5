"""How a column-signature model's rows travel from the request decoders to the model.

A model logged with a column signature (fitted on a pandas DataFrame) takes named,
typed columns. When every column is required and all share one numeric (or boolean)
dtype, requests are decoded straight into one 2-D array ``[rows, columns]`` in the
signature's column order (the *dense* layout): a micro-batch is then one
``np.concatenate`` and at most one DataFrame, and a scikit-learn estimator fitted on
those very columns is called on the array itself. Other column models (mixed types,
optional columns) keep one array per column, read with one conversion per dtype and
turned into one DataFrame per batch.

The layout is computed once per signature (:func:`layout_of`) and reused by every request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scanflow.serving.errors import RequestError
from scanflow.serving.signature import ColumnSpec, Signature, oip_datatype


@dataclass(frozen=True)
class ColumnLayout:
    """The columns of a signature, their dtypes, and the dense dtype when there is one."""

    names: tuple[str, ...]
    dtypes: tuple[np.dtype, ...]
    index: dict[str, int]
    dense: np.dtype | None  # the shared dtype of the dense layout; None: one array per column

    @property
    def width(self) -> int:
        return len(self.names)

    @property
    def datatype(self) -> str | None:
        """The OIP datatype of a single ``[rows, columns]`` tensor (dense layout only)."""
        return oip_datatype(self.dense) if self.dense is not None else None

    def describe_types(self) -> str:
        """``name: DATATYPE`` for every column (for error messages)."""
        return ", ".join(
            f"{n}: {oip_datatype(d)}" for n, d in zip(self.names, self.dtypes, strict=True)
        )

    def pack(self, columns: dict[str, np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
        """Checked per-column arrays as the model input: one 2-D array in signature order
        (dense layout) or the columns themselves."""
        if self.dense is None:
            return columns
        first = next(iter(columns.values()))
        out = np.empty((len(first), self.width), dtype=self.dense, order="F")
        for name, arr in columns.items():
            out[:, self.index[name]] = arr
        return out

    def read_grouped(
        self, columns: Sequence[tuple[str, Sequence[Any]]], rows: int
    ) -> dict[str, np.ndarray] | None:
        """Named columns of ``rows`` values each as arrays of their dtypes, with one
        conversion per dtype (the columns sharing it together); ``None`` when one does not
        convert (the per-column path then names it)."""
        groups: dict[np.dtype, list[tuple[str, Sequence[Any]]]] = {}
        for name, values in columns:
            groups.setdefault(self.dtypes[self.index[name]], []).append((name, values))
        out: dict[str, np.ndarray] = {}
        for dtype, group in groups.items():
            try:
                block = np.array([values for _, values in group], dtype=dtype)
            except (ValueError, TypeError):
                return None
            if block.shape != (len(group), rows):
                return None
            out.update(zip((name for name, _ in group), block, strict=True))
        return out

    def frame(self, data: np.ndarray | dict[str, np.ndarray]) -> Any:
        """One pandas DataFrame of a batch, columns in signature order."""
        import pandas as pd

        if isinstance(data, dict):
            return pd.DataFrame(data, columns=[n for n in self.names if n in data])
        return pd.DataFrame(data, columns=list(self.names), copy=False)

    def metadata(self) -> dict[str, object]:
        """What the OIP model metadata adds under ``parameters`` for a column model: the
        single tensor it also takes (dense layout), any name, columns in signature order."""
        if self.dense is None:
            return {"tensor_input": None}
        return {
            "tensor_input": {
                "name": "input-0",
                "datatype": self.datatype,
                "shape": [-1, self.width],
                "columns": list(self.names),
            }
        }

    def check_matrix(self, name: str, shape: list[int]) -> None:
        """A single tensor's shape must be ``[rows, columns]`` and the columns one type."""
        if self.dense is None:
            raise RequestError(
                f"input {name!r}: this model's columns have different types "
                f"({self.describe_types()}), so one tensor cannot carry them; send one input "
                "per column, named as the model metadata lists them"
            )
        if len(shape) != 2 or shape[1] != self.width:
            raise RequestError(
                f"input {name!r} has shape {list(shape)} but the model's {self.width} "
                f"columns need [rows, {self.width}] (columns in this order: "
                f"{_short(self.names)}); or send one input per column"
            )


def _short(names: tuple[str, ...], keep: int = 8) -> str:
    if len(names) <= keep:
        return ", ".join(names)
    return ", ".join(names[: keep - 1]) + f", ... {names[-1]}"


def layout_of(signature: Signature) -> ColumnLayout | None:
    """The column layout of a column signature (``None`` for tensor or no signature),
    computed once and kept on the signature (hashing a signature per request costs more)."""
    try:
        return signature.__dict__["_layout"]
    except KeyError:
        layout = _layout(signature)
        object.__setattr__(signature, "_layout", layout)  # a frozen dataclass: its cache
        return layout


def _layout(signature: Signature) -> ColumnLayout | None:
    if not signature.is_columns:
        return None
    specs = [s for s in signature.inputs if isinstance(s, ColumnSpec)]
    dtypes = tuple(np.dtype(s.dtype) for s in specs)
    dense = signature.dense_dtype
    names = tuple(s.name for s in specs)
    return ColumnLayout(
        names=names,
        dtypes=dtypes,
        index={n: i for i, n in enumerate(names)},
        dense=np.dtype(dense) if dense else None,
    )


def first_non_finite(layout: ColumnLayout, arr: np.ndarray) -> str | None:
    """The name of the first column of a dense array holding NaN or infinity."""
    if arr.dtype.kind not in "fc" or not arr.size:
        return None
    bad = ~np.isfinite(arr).all(axis=0)
    return layout.names[int(np.argmax(bad))] if bad.any() else None
