"""Open Inference Protocol v2 (KServe, Triton, MLServer) request and response bodies.

Both the JSON form and the binary tensor data extension are spoken: a request whose
``Inference-Header-Content-Length`` header is set carries its JSON header followed by the
raw bytes of the inputs that have ``parameters.binary_data_size`` (little-endian, row
major, in input order; ``BYTES`` elements as a 4-byte length then the bytes). Outputs
asked for with ``parameters.binary_data: true`` (or all of them with the request's
``parameters.binary_data_output: true``) come back the same way after the JSON response.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from scanflow.serving.columns import ColumnLayout, first_non_finite, layout_of
from scanflow.serving.errors import RequestError
from scanflow.serving.model import ModelInput
from scanflow.serving.signature import OIP_TO_NUMPY, Signature, TensorSpec, oip_datatype
from scanflow.serving.tensors import (
    as_array,
    check_all_finite,
    check_finite,
    check_rows,
    check_shape,
    match_names,
)

_DUMP = orjson.OPT_SERIALIZE_NUMPY
# the output name of a model without an output signature (MLServer's name for it); also
# accepted as another name of a model's only output, so older clients keep working
DEFAULT_OUTPUT = "predict"


@dataclass(slots=True)
class OutputRequest:
    """An output the client asked for: its name and whether it wants it as binary data
    (``None``: as the request's ``binary_data_output`` says)."""

    name: str
    binary: bool | None = None


@dataclass(slots=True)
class InferRequest:
    """A decoded ``infer`` request: the model input, its row count, the client's id, the
    outputs asked for (``None``: all) and whether outputs default to binary data."""

    data: ModelInput
    rows: int
    id: str | None
    outputs: list[OutputRequest] | None = None
    binary_output: bool = False


def loads_json(body: bytes | memoryview) -> Any:
    """Parse a JSON body; 400 with a hint for empty bodies, NaN literals and bad syntax."""
    if not body:
        raise RequestError("empty request body; send a JSON object (see docs/serving.md)")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        hint = ""
        raw = bytes(body)
        if b"NaN" in raw or b"Infinity" in raw or "infinity" in str(exc):
            hint = " (NaN and Infinity are not JSON numbers; send finite values)"
        elif raw[:1] == b"{" and b"binary_data_size" in raw:
            hint = (
                " (binary tensor data needs the Inference-Header-Content-Length header: "
                "the length of the JSON part)"
            )
        raise RequestError(f"request body is not valid JSON: {exc}{hint}") from None


def header_length(value: bytes) -> int:
    """The ``Inference-Header-Content-Length`` header as an int (400 when not a number)."""
    if not value.strip().isdigit():
        raise RequestError(
            f"Inference-Header-Content-Length must be the byte length of the JSON part, got "
            f"{value.decode(errors='replace')!r}"
        )
    return int(value)


def _size(shape: list[int]) -> int:
    return math.prod(shape)


def _tensor(entry: Any, index: int) -> tuple[str, str, list[int], Any, int | None]:
    """Name, datatype, shape, JSON data and binary size of one request input."""
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
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise RequestError(f"input {name!r} needs 'shape', a list of non-negative integers")
    params = entry.get("parameters")
    size = params.get("binary_data_size") if params and isinstance(params, dict) else None
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise RequestError(
                f"input {name!r}: parameters.binary_data_size must be a byte count, got {size!r}"
            )
        if data is not None:
            raise RequestError(
                f"input {name!r} has both 'data' and parameters.binary_data_size; send one"
            )
    elif not isinstance(data, list):
        raise RequestError(
            f"input {name!r} needs 'data', a list of values (or parameters.binary_data_size "
            "with its bytes after the JSON header)"
        )
    return name, datatype, shape, data, size


def _from_binary(name: str, datatype: str, shape: list[int], raw: memoryview) -> np.ndarray:
    """A tensor's raw little-endian bytes as a (writable, native-order) numpy array."""
    count = _size(shape)
    if datatype == "BYTES":
        items: list[Any] = []
        pos = 0
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise RequestError(f"input {name!r}: BYTES data ends inside an element length")
            (length,) = struct.unpack_from("<I", raw, pos)
            item = bytes(raw[pos + 4 : pos + 4 + length])
            if len(item) != length:
                raise RequestError(f"input {name!r}: BYTES element {len(items)} is cut short")
            try:
                items.append(item.decode("utf-8"))
            except UnicodeDecodeError:
                items.append(item)
            pos += 4 + length
        if len(items) != count:
            raise RequestError(
                f"input {name!r} has {len(items)} BYTES elements but shape {shape} needs {count}"
            )
        arr = np.empty(count, dtype=object)
        arr[:] = items
        return arr
    native = np.dtype(OIP_TO_NUMPY[datatype])
    need = count * native.itemsize
    if len(raw) != need:
        raise RequestError(
            f"input {name!r}: parameters.binary_data_size is {len(raw)} bytes but shape "
            f"{shape} of {datatype} needs {need}"
        )
    return np.frombuffer(raw, dtype=native.newbyteorder("<")).astype(native)


def _to_array(name: str, datatype: str, shape: list[int], data: Any) -> np.ndarray:
    if isinstance(data, np.ndarray):  # from binary data, already counted
        return data.reshape(shape)
    arr = as_array(name, data, OIP_TO_NUMPY[datatype])
    size = _size(shape)
    if arr.size != size:
        raise RequestError(f"input {name!r} has {arr.size} values but shape {shape} needs {size}")
    return arr.reshape(shape)


def _read_binary(
    tensors: list[tuple[str, str, list[int], Any, int | None]], binary: memoryview | None
) -> list[tuple[str, str, list[int], Any, int | None]]:
    """Cut the bytes after the JSON header into the inputs that declared a binary size."""
    if binary is None and not any(t[4] is not None for t in tensors):  # plain JSON
        return tensors
    out = []
    offset = 0
    for name, datatype, shape, data, size in tensors:
        if size is not None:
            if binary is None:
                raise RequestError(
                    f"input {name!r} has parameters.binary_data_size but the request has no "
                    "Inference-Header-Content-Length header (the length of the JSON part)"
                )
            if offset + size > len(binary):
                raise RequestError(
                    f"input {name!r} declares {size} bytes of binary data but only "
                    f"{len(binary) - offset} remain after the JSON header"
                )
            data = _from_binary(name, datatype, shape, binary[offset : offset + size])
            offset += size
        out.append((name, datatype, shape, data, size))
    if binary is not None and offset != len(binary):
        raise RequestError(
            f"{len(binary) - offset} bytes after the JSON header belong to no input "
            f"(the inputs' binary_data_size add up to {offset})"
        )
    return out


def _requested_outputs(req: dict[str, Any], signature: Signature) -> list[OutputRequest] | None:
    raw = req.get("outputs")
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in raw
    ):
        raise RequestError("'outputs' must be a list of objects with a 'name'")
    known = output_names(signature)
    wanted = []
    for entry in raw:
        name = entry["name"]
        params = entry.get("parameters") or {}
        if not isinstance(params, dict):
            raise RequestError(f"output {name!r}: 'parameters' must be an object")
        if params.get("classification"):
            raise RequestError(
                f"output {name!r} asks for the classification extension, which this server "
                "does not support; ask for the output itself"
            )
        if known and name not in known:
            raise RequestError(
                f"unknown output {name!r}; the model's outputs are: "
                f"{', '.join(n for n in known if n != DEFAULT_OUTPUT)}"
            )
        binary = params.get("binary_data")
        wanted.append(OutputRequest(name, bool(binary) if binary is not None else None))
    return wanted


def output_names(signature: Signature) -> list[str]:
    """The names a client may ask outputs by: the metadata's (and ``predict`` for a model
    with one output); empty when the signature declares no outputs."""
    names = [s.name for s in signature.outputs]
    return [*names, DEFAULT_OUTPUT] if len(names) == 1 else names


def decode_infer(
    body: bytes,
    signature: Signature,
    *,
    json_length: int | None = None,
    allow_non_finite: bool = False,
) -> InferRequest:
    """Decode and check an OIP ``infer`` body against ``signature``; ``json_length`` is the
    ``Inference-Header-Content-Length`` of a request with binary tensor data."""
    binary: memoryview | None = None
    if json_length is not None:
        if not 0 < json_length <= len(body):
            raise RequestError(
                f"Inference-Header-Content-Length is {json_length} but the body has "
                f"{len(body)} bytes; it must be the length of the JSON part"
            )
        view = memoryview(body)
        header, binary = view[:json_length], view[json_length:]
        req = loads_json(header)
    else:
        req = loads_json(body)
    if not isinstance(req, dict):
        raise RequestError("the infer body must be a JSON object with an 'inputs' list")
    inputs = req.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise RequestError("the infer body needs 'inputs', a non-empty list of tensors")
    tensors = _read_binary([_tensor(e, i) for i, e in enumerate(inputs)], binary)
    names = [t[0] for t in tensors]
    if len(set(names)) != len(names):
        raise RequestError(f"input names must be unique, got {names}")
    rid = req.get("id")
    params = req.get("parameters")
    binary_output = isinstance(params, dict) and bool(params.get("binary_data_output"))
    outputs = _requested_outputs(req, signature) if "outputs" in req else None
    if not signature.inputs:
        arrays = {n: _to_array(n, dt, sh, d) for n, dt, sh, d, _ in tensors}
        data: ModelInput = arrays[names[0]] if len(arrays) == 1 else arrays
    else:
        data = _model_input(tensors, signature)
    if isinstance(data, np.ndarray) and signature.is_columns:  # a column model's dense rows
        rows_seen = {data.shape[0]}
        named: list[tuple[str, np.ndarray]] = []
        layout = layout_of(signature)
        bad = None if allow_non_finite or layout is None else first_non_finite(layout, data)
        if bad is not None:
            check_finite(bad, data[:, layout.index[bad]])  # type: ignore[union-attr,index]
    else:
        named = list(data.items()) if isinstance(data, dict) else [(names[0], data)]
        rows_seen = {(a.shape[0] if a.ndim else 1) for _, a in named}
    if len(rows_seen) != 1:
        raise RequestError(f"inputs have different numbers of rows: {sorted(rows_seen)}")
    check_rows(data)
    if not allow_non_finite:
        check_all_finite(named)
    return InferRequest(
        data=data,
        rows=rows_seen.pop(),
        id=rid if isinstance(rid, str) else None,
        outputs=outputs,
        binary_output=binary_output,
    )


Tensor = tuple[str, str, list[int], Any, int | None]


def _model_input(tensors: list[Tensor], signature: Signature) -> ModelInput:
    """The request's inputs, checked against the signature, as the model's input."""
    layout = layout_of(signature)
    if layout is not None and len(tensors) == 1 and tensors[0][0] not in layout.index:
        return _matrix(tensors[0], layout)  # one [rows, columns] tensor for a column model
    by_name = {t[0]: t for t in tensors}
    checked: list[tuple[Any, Tensor]] = []
    for given, spec in match_names([t[0] for t in tensors], signature, strict=True):
        name, datatype, shape, values, _ = tensor = by_name[given]
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
        checked.append((spec, tensor))
    if layout is not None:
        fast = _dense_json(checked, layout) if layout.dense else _grouped_json(checked, layout)
        if fast is not None:
            return fast
    out: dict[str, np.ndarray] = {}
    for spec, (name, datatype, shape, values, _) in checked:
        arr = _to_array(name, datatype, shape, values)
        if not isinstance(spec, TensorSpec) and arr.ndim == 2:
            arr = arr[:, 0]
        out[spec.name] = arr
    if signature.is_tensor and len(signature.inputs) == 1:
        return out[signature.inputs[0].name]
    if layout is None:
        return out
    lengths = {len(a) for a in out.values()}
    if len(lengths) != 1:
        raise RequestError(f"inputs have different numbers of rows: {sorted(lengths)}")
    return layout.pack(out)


def _dense_json(checked: list[tuple[Any, Tensor]], layout: ColumnLayout) -> np.ndarray | None:
    """Per-column JSON data read in one conversion into the dense ``[rows, columns]``
    array; ``None`` when a column needs the per-column path (which names it in errors)."""
    rows = checked[0][1][2][0]
    ordered: list[Any] = [None] * layout.width
    for spec, (_, _, shape, values, _) in checked:
        if shape[0] != rows or type(values) is not list or len(values) != rows:
            return None
        ordered[layout.index[spec.name]] = values
    try:
        arr = np.array(ordered, dtype=layout.dense)
    except (ValueError, TypeError):
        return None
    return arr.T if arr.ndim == 2 else None


def _grouped_json(
    checked: list[tuple[Any, Tensor]], layout: ColumnLayout
) -> dict[str, np.ndarray] | None:
    """Per-column JSON data of a column model of several dtypes read with one conversion
    per dtype (the columns sharing it together); ``None`` when a column needs the
    per-column path (which names it in errors)."""
    rows = checked[0][1][2][0]
    columns = []
    for spec, (_, _, shape, values, _) in checked:
        if shape[0] != rows or type(values) is not list or len(values) != rows:
            return None
        columns.append((spec.name, values))
    return layout.read_grouped(columns, rows)


def _matrix(tensor: Tensor, layout: ColumnLayout) -> np.ndarray:
    """A single ``[rows, columns]`` tensor sent to a column model (columns in signature
    order, as MLServer's clients send a DataFrame's values)."""
    name, datatype, shape, values, _ = tensor
    layout.check_matrix(name, shape)
    if datatype != layout.datatype:
        raise RequestError(
            f"input {name!r} has datatype {datatype} but the model's columns are "
            f"{layout.datatype}; send {layout.datatype} values"
        )
    return _to_array(name, datatype, shape, values)


def _outputs(output: Any, signature: Signature) -> list[tuple[str, np.ndarray]]:
    """The model's output as named arrays, named as the model metadata names them."""
    if isinstance(output, np.ndarray):
        specs = signature.outputs
        return [(specs[0].name if len(specs) == 1 else DEFAULT_OUTPUT, output)]
    if isinstance(output, dict):
        return [(str(k), np.asarray(v)) for k, v in output.items()]
    return [(str(c), output[c].to_numpy()) for c in output.columns]  # DataFrame


def _pick(
    produced: list[tuple[str, np.ndarray]], wanted: list[OutputRequest] | None, default: bool
) -> list[tuple[str, np.ndarray, bool]]:
    """The outputs to answer with, in the order asked, each with its binary flag."""
    if wanted is None:
        return [(name, arr, default) for name, arr in produced]
    by_name = dict(produced)
    picked = []
    for want in wanted:
        arr = by_name.get(want.name)
        if arr is None and want.name == DEFAULT_OUTPUT and len(produced) == 1:
            arr = produced[0][1]
        if arr is None:
            raise RequestError(
                f"unknown output {want.name!r}; the model's outputs are: "
                f"{', '.join(n for n, _ in produced)}"
            )
        picked.append((want.name, arr, default if want.binary is None else want.binary))
    return picked


def _raw(arr: np.ndarray) -> bytes:
    """A tensor as binary tensor data: little-endian, row major; BYTES length-prefixed."""
    if arr.dtype.kind in "OUS":
        parts = []
        for x in arr.ravel().tolist():
            b = x if isinstance(x, bytes) else str(x).encode("utf-8")
            parts.append(struct.pack("<I", len(b)))
            parts.append(b)
        return b"".join(parts)
    return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()


def _out(name: str, arr: np.ndarray, binary: bool, chunks: list[bytes]) -> dict[str, Any]:
    """One response output; its bytes go to ``chunks`` when it is sent as binary data."""
    datatype = "BYTES" if arr.dtype.kind in "OUS" else oip_datatype(arr.dtype)
    if binary:
        raw = _raw(arr)
        chunks.append(raw)
        return {
            "name": name,
            "datatype": datatype,
            "shape": list(arr.shape),
            "parameters": {"binary_data_size": len(raw)},
        }
    if datatype == "BYTES":
        data: Any = [
            x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x)
            for x in arr.ravel().tolist()
        ]
    else:
        data = np.ascontiguousarray(arr).ravel()
    return {"name": name, "datatype": datatype, "shape": list(arr.shape), "data": data}


def encode_infer(
    output: Any,
    *,
    model_name: str,
    version: str,
    request_id: str | None,
    signature: Signature,
    outputs: list[OutputRequest] | None = None,
    binary_output: bool = False,
) -> tuple[bytes, int | None]:
    """The OIP ``infer`` response body for one request's output, and the length of its JSON
    part when binary tensor data follows it (``None`` for a plain JSON body)."""
    chunks: list[bytes] = []
    body = {
        "model_name": model_name,
        "model_version": version,
        "outputs": [
            _out(name, arr, binary, chunks)
            for name, arr, binary in _pick(_outputs(output, signature), outputs, binary_output)
        ],
    }
    if request_id is not None:
        body["id"] = request_id
    try:
        header = orjson.dumps(body, option=_DUMP)
    except TypeError:
        header = orjson.dumps(body, option=_DUMP, default=str)
    if not chunks:
        return header, None
    return b"".join([header, *chunks]), len(header)
