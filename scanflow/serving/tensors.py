"""Turning decoded request data into model inputs, checked against the model's signature.

Shared by the OIP v2 and ``/invocations`` codecs: every refusal is a
:class:`~scanflow.serving.errors.RequestError` that says which input was wrong and what the
model expects.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scanflow.serving.columns import first_non_finite, layout_of
from scanflow.serving.errors import RequestError
from scanflow.serving.model import ModelInput
from scanflow.serving.signature import ColumnSpec, Signature, TensorSpec

FLOAT_KINDS = "fc"


def as_array(name: str, data: Any, dtype: str | None) -> np.ndarray:
    """``data`` as a numpy array of ``dtype``; a 400 naming the input if it does not convert."""
    try:
        if dtype is None:
            return np.asarray(data)
        arr = np.asarray(data, dtype=dtype)
    except (ValueError, TypeError) as exc:
        want = dtype or "a numeric type"
        raise RequestError(
            f"input {name!r}: data cannot be read as {want} ({exc}); send numbers of the "
            "declared datatype in a rectangular list"
        ) from None
    if arr.dtype == object and dtype != "object":
        raise RequestError(f"input {name!r}: data is ragged; every row needs the same length")
    return arr


def check_finite(name: str, arr: np.ndarray) -> None:
    """Refuse NaN and infinity in float inputs (they are not valid model inputs)."""
    if arr.dtype.kind in FLOAT_KINDS and arr.size and not np.isfinite(arr).all():
        raise RequestError(
            f"input {name!r} contains NaN or infinity; send finite numbers "
            "(or set the service's 'allow_non_finite: true' if the model handles them)"
        )


def check_all_finite(named: list[tuple[str, np.ndarray]]) -> None:
    """:func:`check_finite` for many inputs at once (one pass over their float values)."""
    floats = [(n, a) for n, a in named if a.dtype.kind in FLOAT_KINDS and a.size]
    if len(floats) > 1 and np.isfinite(np.concatenate([a.ravel() for _, a in floats])).all():
        return
    for name, arr in floats:
        check_finite(name, arr)


def check_rows(data: ModelInput) -> int:
    """The number of rows of a decoded input; 400 when there are none."""
    first = next(iter(data.values())) if isinstance(data, dict) else data
    rows = first.shape[0] if first.ndim else 1
    if rows == 0:
        raise RequestError(
            f"the request has no rows (shape {list(first.shape)}); send at least one row"
        )
    return rows


def check_shape(name: str, shape: tuple[int, ...], spec: TensorSpec) -> None:
    """The request's shape must have the spec's rank and fixed dimensions."""
    ok = len(shape) == len(spec.shape) and all(
        want < 0 or got == want for got, want in zip(shape, spec.shape, strict=True)
    )
    if not ok:
        raise RequestError(
            f"input {name!r} has shape {list(shape)} but the model expects {list(spec.shape)} "
            "(-1 is any size)"
        )


def match_names(
    given: list[str], signature: Signature, *, strict: bool = False
) -> list[tuple[str, Any]]:
    """Pair request input names with signature specs; 400 on missing or extra names.

    A model whose only tensor has no recorded name takes any single name, unless ``strict``
    (the OIP, whose model metadata names that tensor ``input-0``)."""
    specs = signature.inputs
    if len(specs) == 1 and isinstance(specs[0], TensorSpec) and not specs[0].named:
        if strict and given != [specs[0].name]:
            unknown = [g for g in given if g != specs[0].name]
            raise RequestError(
                f"unexpected input {unknown[0]!r}; the model's inputs are: {specs[0].name}"
                if unknown
                else f"the model takes one input tensor, got {len(given)} ({', '.join(given)})"
            )
        if len(given) != 1:
            raise RequestError(
                f"the model takes one input tensor, got {len(given)} ({', '.join(given)})"
            )
        return [(given[0], specs[0])]
    by_name = {s.name: s for s in specs}
    extra = [g for g in given if g not in by_name]
    if extra:
        raise RequestError(
            f"unexpected input {extra[0]!r}; the model's inputs are: {', '.join(by_name) or 'none'}"
        )
    sent = set(given)
    missing = [
        s.name
        for s in specs
        if s.name not in sent and not (isinstance(s, ColumnSpec) and not s.required)
    ]
    if missing:
        raise RequestError(
            f"missing input {missing[0]!r}; the model's inputs are: {', '.join(by_name)}"
        )
    return [(g, by_name[g]) for g in given]


def table_to_input(
    columns: list[str] | None, rows: Any, signature: Signature, *, allow_non_finite: bool = False
) -> ModelInput:
    """Rows of a table (``dataframe_split``, CSV, list of lists) as the model's input."""
    if isinstance(rows, list) and not rows:
        raise RequestError("the request has no rows; send at least one row")
    if signature.is_tensor and len(signature.inputs) == 1:
        spec = signature.inputs[0]
        assert isinstance(spec, TensorSpec)
        arr = as_array(spec.name, rows, spec.dtype)
        if arr.ndim == 1 and len(spec.shape) == 2:
            arr = arr.reshape(1, -1) if spec.shape[1] == arr.shape[0] else arr.reshape(-1, 1)
        check_shape(spec.name, arr.shape, spec)
        if not allow_non_finite:
            check_finite(spec.name, arr)
        return arr
    fast: ModelInput | None = _dense_table(columns, rows, signature, allow_non_finite)
    if fast is None:
        fast = _grouped_table(columns, rows, signature, allow_non_finite)
    if fast is not None:
        return fast
    arr = as_array("data", rows, None)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1) if columns and len(columns) == arr.shape[0] else arr
    if arr.ndim != 2:
        raise RequestError(f"table data must be a list of rows, got {arr.ndim} dimensions")
    if columns is None:
        if signature.is_columns:
            columns = [s.name for s in signature.inputs]
        else:
            columns = [str(i) for i in range(arr.shape[1])]
    if len(columns) != arr.shape[1]:
        raise RequestError(f"rows have {arr.shape[1]} values but {len(columns)} columns are named")
    return columns_to_input(
        {c: arr[:, i] for i, c in enumerate(columns)},
        signature,
        allow_non_finite=allow_non_finite,
    )


def columns_to_input(
    columns: dict[str, Any], signature: Signature, *, allow_non_finite: bool = False
) -> ModelInput:
    """Named columns (or named tensors) as the model's input, typed by the signature."""
    if not signature.inputs:
        out = {k: as_array(k, v, None) for k, v in columns.items()}
        return _same_rows(out)
    if signature.is_tensor and len(signature.inputs) == 1 and len(columns) > 1:
        # a table sent to a single-tensor model: the columns, in order, are its features
        spec = signature.inputs[0]
        assert isinstance(spec, TensorSpec)
        arrays = [as_array(k, v, spec.dtype) for k, v in columns.items()]
        return table_to_input(
            None, np.column_stack(arrays), signature, allow_non_finite=allow_non_finite
        )
    out = {}
    for given, spec in match_names(list(columns), signature):
        arr = as_array(given, columns[given], spec.dtype)
        if isinstance(spec, TensorSpec):
            check_shape(given, arr.shape, spec)
        elif arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        elif arr.ndim != 1:
            raise RequestError(
                f"column {given!r} must be one value per row, got shape {list(arr.shape)}"
            )
        out[spec.name] = arr
    if not allow_non_finite:
        check_all_finite(list(out.items()))
    if signature.is_tensor and len(signature.inputs) == 1:
        return next(iter(out.values()))
    out = _same_rows(out)
    layout = layout_of(signature)
    return out if layout is None else layout.pack(out)


def _dense_table(
    columns: list[str] | None, rows: Any, signature: Signature, allow_non_finite: bool
) -> np.ndarray | None:
    """Table rows read straight into a column model's dense array (signature order);
    ``None`` when the model has no dense layout or the rows need the per-column checks
    (which then name the offending column)."""
    layout = layout_of(signature)
    if layout is None or layout.dense is None:
        return None
    if columns is not None:
        if not isinstance(columns, list) or list(columns) != list(layout.names):
            if not isinstance(columns, list) or sorted(map(str, columns)) != sorted(layout.names):
                return None  # missing, extra or repeated names: refused with the name below
    try:
        arr = np.asarray(rows, dtype=layout.dense)
    except (ValueError, TypeError):
        return None
    if arr.ndim == 1 and arr.shape[0] == layout.width:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != layout.width:
        return None
    if columns is not None and list(columns) != list(layout.names):
        arr = arr[:, [columns.index(n) for n in layout.names]]
    if not allow_non_finite:
        bad = first_non_finite(layout, arr)
        if bad is not None:
            check_finite(bad, arr[:, layout.index[bad]])
    return arr


def _grouped_table(
    columns: list[str] | None, rows: Any, signature: Signature, allow_non_finite: bool
) -> dict[str, np.ndarray] | None:
    """Table rows of a column model of several dtypes read column-wise, one conversion per
    dtype; ``None`` when the per-column checks are needed (they name the column)."""
    layout = layout_of(signature)
    if layout is None or layout.dense is not None:
        return None
    names = list(layout.names) if columns is None else columns
    if (
        not isinstance(names, list)
        or not all(type(n) is str for n in names)
        or sorted(names) != sorted(layout.names)
    ):
        return None  # missing, extra or repeated names: refused with the name below
    if not isinstance(rows, list) or not all(
        type(r) is list and len(r) == len(names) for r in rows
    ):
        return None
    by_column = zip(*rows, strict=True)  # the rows' lengths are checked above
    out = layout.read_grouped(list(zip(names, by_column, strict=True)), len(rows))
    if out is not None and not allow_non_finite:
        check_all_finite(list(out.items()))
    return out


def _same_rows(out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    lengths = {k: (len(v) if v.ndim else 1) for k, v in out.items()}
    if len(set(lengths.values())) > 1:
        raise RequestError(
            "inputs have different numbers of rows: "
            + ", ".join(f"{k}={n}" for k, n in lengths.items())
        )
    return out
