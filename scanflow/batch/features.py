"""Which input columns feed the model, with which types: from the model's signature.

- a column signature names the columns (its optional ones are used when present);
- a single tensor ``[-1, K]`` (or no signature) takes ``features`` if given, else every
  column except the id column, in file order; a tensor needs exactly K of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scanflow.batch.errors import BatchError
from scanflow.serving.columns import layout_of
from scanflow.serving.signature import ColumnSpec, Signature, TensorSpec


@dataclass(frozen=True)
class Features:
    """The model's input columns in order, their dtypes, and how a chunk is packed:
    ``matrix`` one 2-D array (a tensor model or a column model of one numeric type),
    else one array per column."""

    names: tuple[str, ...]
    dtypes: tuple[np.dtype, ...]
    matrix: bool


def features_for(
    signature: Signature, columns: list[str], id_column: str | None, chosen: list[str] | None
) -> Features:
    """The :class:`Features` of a model on a file with ``columns``; :class:`BatchError` when
    the file lacks some of them."""
    if id_column and id_column not in columns:
        raise BatchError(
            f"the id column {id_column!r} is not in the input (columns: {_short(columns)}); "
            "name an existing column or leave id_column empty to use row numbers"
        )
    layout = layout_of(signature)
    if layout is not None:
        specs = [s for s in signature.inputs if isinstance(s, ColumnSpec)]
        missing = [s.name for s in specs if s.required and s.name not in columns]
        if missing:
            raise BatchError(
                f"the input lacks {len(missing)} column(s) the model's signature needs: "
                f"{_short(missing)} (input columns: {_short(columns)}); rename the columns "
                "or score with the model they were made for"
            )
        used = [s for s in specs if s.name in columns]
        return Features(
            tuple(s.name for s in used),
            tuple(np.dtype(s.dtype) for s in used),
            layout.dense is not None and len(used) == layout.width,
        )
    names = list(chosen or [c for c in columns if c != id_column])
    absent = [n for n in names if n not in columns]
    if absent:
        raise BatchError(
            f"features {_short(absent)} are not in the input (columns: {_short(columns)})"
        )
    dtype = np.dtype("float64")
    if signature.is_tensor and len(signature.inputs) == 1:
        spec = signature.inputs[0]
        assert isinstance(spec, TensorSpec)
        width = spec.shape[-1] if len(spec.shape) == 2 else None
        if width is not None and width > 0 and width != len(names):
            raise BatchError(
                f"the model takes rows of {width} values but the input gives {len(names)} "
                f"feature columns ({_short(names)}); pass features: [...] with {width} columns"
            )
        dtype = np.dtype(spec.dtype)
    return Features(tuple(names), (dtype,) * len(names), True)


def _short(names: list[str], keep: int = 8) -> str:
    if len(names) <= keep:
        return ", ".join(names)
    return ", ".join(names[: keep - 1]) + f", ... ({len(names)} in all)"
