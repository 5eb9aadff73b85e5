"""A model's input signature, read from its ``MLmodel`` file without importing MLflow.

Tensor signatures become :class:`TensorSpec` entries (OIP inputs with a datatype and a
shape); column signatures become :class:`ColumnSpec` entries (one OIP input per column).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

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


def oip_datatype(dtype: np.dtype) -> str:
    """The OIP datatype name of a numpy dtype (strings and objects are ``BYTES``)."""
    return NUMPY_TO_OIP.get(np.dtype(dtype).name, "BYTES")


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor: numpy dtype and shape (``-1`` for a free dimension)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    named: bool = True  # False when MLflow recorded no name (any single input name is accepted)

    @cached_property
    def datatype(self) -> str:
        return oip_datatype(np.dtype(self.dtype))


@dataclass(frozen=True)
class ColumnSpec:
    """One named column of a tabular input."""

    name: str
    dtype: str
    required: bool = True

    @cached_property
    def datatype(self) -> str:
        return oip_datatype(np.dtype(self.dtype))

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
                    dtype=np.dtype(tspec.get("dtype", "float64")).name,
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
