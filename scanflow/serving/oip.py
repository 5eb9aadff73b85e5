"""Open Inference Protocol v2 (KServe, Triton, MLServer) request and response bodies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from scanflow.serving.errors import RequestError
from scanflow.serving.model import ModelInput
from scanflow.serving.signature import OIP_TO_NUMPY, Signature, TensorSpec, oip_datatype
from scanflow.serving.tensors import as_array, check_finite, check_shape, match_names

_DUMP = orjson.OPT_SERIALIZE_NUMPY


@dataclass(slots=True)
class InferRequest:
    """A decoded ``infer`` request: the model input, its row count and the client's id."""

    data: ModelInput
    rows: int
    id: str | None


def loads_json(body: bytes) -> Any:
    """Parse a JSON body; 400 with a hint for empty bodies, NaN literals and bad syntax."""
    if not body:
        raise RequestError("empty request body; send a JSON object (see docs/serving.md)")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        hint = ""
        if b"NaN" in body or b"Infinity" in body or "infinity" in str(exc):
            hint = " (NaN and Infinity are not JSON numbers; send finite values)"
        raise RequestError(f"request body is not valid JSON: {exc}{hint}") from None


def _tensor(entry: Any, index: int) -> tuple[str, str, list[int], Any]:
    if not isinstance(entry, dict):
        raise RequestError(f"inputs[{index}] must be an object with name, shape, datatype, data")
    name = entry.get("name")
    datatype = entry.get("datatype")
    shape = entry.get("shape")
    data = entry.get("data")
    if not isinstance(name, str) or not name:
        raise RequestError(f"inputs[{index}] has no 'name'")
    if datatype not in OIP_TO_NUMPY:
        raise RequestError(
            f"input {name!r} has datatype {datatype!r}; use one of {', '.join(OIP_TO_NUMPY)}"
        )
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise RequestError(f"input {name!r} needs 'shape', a list of non-negative integers")
    if not isinstance(data, list):
        raise RequestError(f"input {name!r} needs 'data', a list of values")
    return name, datatype, shape, data


def _to_array(name: str, datatype: str, shape: list[int], data: Any) -> np.ndarray:
    arr = as_array(name, data, OIP_TO_NUMPY[datatype])
    size = 1
    for d in shape:
        size *= d
    if arr.size != size:
        raise RequestError(f"input {name!r} has {arr.size} values but shape {shape} needs {size}")
    return arr.reshape(shape)


def decode_infer(
    body: bytes, signature: Signature, *, allow_non_finite: bool = False
) -> InferRequest:
    """Decode and check an OIP ``infer`` body against ``signature``."""
    req = loads_json(body)
    if not isinstance(req, dict):
        raise RequestError("the infer body must be a JSON object with an 'inputs' list")
    inputs = req.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise RequestError("the infer body needs 'inputs', a non-empty list of tensors")
    tensors = [_tensor(e, i) for i, e in enumerate(inputs)]
    names = [t[0] for t in tensors]
    if len(set(names)) != len(names):
        raise RequestError(f"input names must be unique, got {names}")
    rid = req.get("id")
    if not signature.inputs:
        arrays = {n: _to_array(n, dt, sh, d) for n, dt, sh, d in tensors}
        data: ModelInput = arrays[names[0]] if len(arrays) == 1 else arrays
    else:
        by_name = {t[0]: t for t in tensors}
        out: dict[str, np.ndarray] = {}
        for given, spec in match_names(names, signature):
            name, datatype, shape, values = by_name[given]
            if datatype != spec.datatype:
                raise RequestError(
                    f"input {name!r} has datatype {datatype} but the model expects {spec.datatype}"
                )
            if isinstance(spec, TensorSpec):
                check_shape(name, tuple(shape), spec)
            elif not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
                raise RequestError(
                    f"input {name!r} is a column: shape must be [rows] or [rows, 1], got {shape}"
                )
            arr = _to_array(name, datatype, shape, values)
            if not isinstance(spec, TensorSpec) and arr.ndim == 2:
                arr = arr[:, 0]
            out[spec.name] = arr
        data = (
            out[signature.inputs[0].name]
            if (signature.is_tensor and len(signature.inputs) == 1)
            else out
        )
    arrays_ = data.values() if isinstance(data, dict) else [data]
    rows = {(a.shape[0] if a.ndim else 1) for a in arrays_}
    if len(rows) != 1:
        raise RequestError(f"inputs have different numbers of rows: {sorted(rows)}")
    if not allow_non_finite:
        for name, arr in data.items() if isinstance(data, dict) else [(names[0], data)]:
            check_finite(name, arr)
    return InferRequest(data=data, rows=rows.pop(), id=rid if isinstance(rid, str) else None)


def _outputs(output: Any, signature: Signature) -> list[dict[str, Any]]:
    if isinstance(output, np.ndarray):
        specs = signature.outputs
        name = (
            specs[0].name if len(specs) == 1 and getattr(specs[0], "named", False) else ("predict")
        )
        return [_out(name, output)]
    if isinstance(output, dict):
        return [_out(str(k), np.asarray(v)) for k, v in output.items()]
    return [_out(str(c), output[c].to_numpy()) for c in output.columns]  # DataFrame


def _out(name: str, arr: np.ndarray) -> dict[str, Any]:
    if arr.dtype.kind in "OUS":
        data: Any = [str(x) for x in arr.ravel().tolist()]
        datatype = "BYTES"
    else:
        data = np.ascontiguousarray(arr).ravel()
        datatype = oip_datatype(arr.dtype)
    return {"name": name, "datatype": datatype, "shape": list(arr.shape), "data": data}


def encode_infer(
    output: Any, *, model_name: str, version: str, request_id: str | None, signature: Signature
) -> bytes:
    """The OIP ``infer`` response body for one request's output."""
    body = {
        "model_name": model_name,
        "model_version": version,
        "outputs": _outputs(output, signature),
    }
    if request_id is not None:
        body["id"] = request_id
    try:
        return orjson.dumps(body, option=_DUMP)
    except TypeError:
        return orjson.dumps(body, option=_DUMP, default=str)
