"""A model's input signature, read from its ``MLmodel`` file without importing MLflow.

Tensor signatures become :class:`TensorSpec` entries (OIP inputs with a datatype and a
shape); column signatures become :class:`ColumnSpec` entries (one OIP input per column).
Reading one imports no numpy (the serving supervisor reads signatures and stays small).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# Open Inference Protocol datatype <-> numpy dtype.
OIP_TO_NUMPY: dict[str, str] = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}
NUMPY_TO_OIP: dict[str, str] = {v: k for k, v in OIP_TO_NUMPY.items()}
# MLflow column types -> numpy dtype.
COLUMN_TO_NUMPY: dict[str, str] = {
    "boolean": "bool",
    "integer": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "string": "object",
    "binary": "object",
    "datetime": "datetime64[ns]",
}
# Column dtypes one 2-D array holds without conversion: bool, ints, floats.
DENSE_DTYPES = frozenset({"bool", "int32", "int64", "float32", "float64"})


def oip_datatype(dtype: np.dtype | str) -> str:
    """The OIP datatype name of a numpy dtype (strings and objects are ``BYTES``)."""
    return NUMPY_TO_OIP.get(_dtype_name(dtype), "BYTES")


def _dtype_name(dtype: Any) -> str:
    """numpy's canonical name of ``dtype`` (numpy is imported only for uncommon spellings)."""
    if isinstance(dtype, str) and dtype in NUMPY_TO_OIP:
        return dtype
    import numpy as np

    return np.dtype(dtype).name


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor: numpy dtype and shape (``-1`` for a free dimension)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    named: bool = True  # False when MLflow recorded no name (any single input name is accepted)

    @cached_property
    def datatype(self) -> str:
        return oip_datatype(self.dtype)


@dataclass(frozen=True)
class ColumnSpec:
    """One named column of a tabular input."""

    name: str
    dtype: str
    required: bool = True

    @cached_property
    def datatype(self) -> str:
        return oip_datatype(self.dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return (-1,)


@dataclass(frozen=True)
class Signature:
    """Inputs (all tensors or all columns) and outputs; empty when the model declares none."""

    inputs: tuple[TensorSpec | ColumnSpec, ...] = ()
    outputs: tuple[TensorSpec | ColumnSpec, ...] = ()

    @property
    def is_tensor(self) -> bool:
        return bool(self.inputs) and isinstance(self.inputs[0], TensorSpec)

    @property
    def is_columns(self) -> bool:
        return bool(self.inputs) and isinstance(self.inputs[0], ColumnSpec)

    @property
    def dense_dtype(self) -> str | None:
        """For a column signature whose columns are all required and share one numeric
        (or boolean) dtype: that dtype, in which the columns travel as one 2-D array."""
        if not self.is_columns:
            return None
        dtypes = {s.dtype for s in self.inputs}
        if len(dtypes) != 1 or not all(getattr(s, "required", False) for s in self.inputs):
            return None
        dtype = dtypes.pop()
        return dtype if dtype in DENSE_DTYPES else None

    def to_oip(self, which: str = "inputs") -> list[dict[str, Any]]:
        """OIP model-metadata entries (``name``, ``datatype``, ``shape``)."""
        return [
            {"name": s.name, "datatype": s.datatype, "shape": list(s.shape)}
            for s in getattr(self, which)
        ]


def _specs(raw: str | None, default_prefix: str) -> tuple[TensorSpec | ColumnSpec, ...]:
    if not raw:
        return ()
    entries = json.loads(raw) if isinstance(raw, str) else raw
    specs: list[TensorSpec | ColumnSpec] = []
    for i, entry in enumerate(entries):
        if entry.get("type") == "tensor":
            tspec = entry.get("tensor-spec", {})
            specs.append(
                TensorSpec(
                    name=entry.get("name") or f"{default_prefix}-{i}",
                    dtype=_dtype_name(tspec.get("dtype", "float64")),
                    shape=tuple(int(d) for d in tspec.get("shape", [-1])),
                    named=bool(entry.get("name")),
                )
            )
        else:
            specs.append(
                ColumnSpec(
                    name=entry.get("name") or str(i),
                    dtype=COLUMN_TO_NUMPY.get(entry.get("type", "double"), "object"),
                    required=bool(entry.get("required", True)),
                )
            )
    return tuple(specs)


def parse_signature(mlmodel: dict[str, Any]) -> Signature:
    """The signature in a parsed ``MLmodel`` document (empty when absent)."""
    sig = mlmodel.get("signature") or {}
    return Signature(
        inputs=_specs(sig.get("inputs"), "input"),
        outputs=_specs(sig.get("outputs"), "output"),
    )
