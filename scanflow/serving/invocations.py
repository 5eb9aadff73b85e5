"""MLflow's scoring protocol (``POST /invocations``), so MLflow clients work unchanged.

JSON bodies carry exactly one of ``dataframe_split``, ``dataframe_records``, ``instances``
or ``inputs`` (and optionally ``params``); ``text/csv`` bodies are a table, with a header
row or (detected, or said with ``header=absent``) without one.
Responses are ``{"predictions": ...}``.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
import orjson

from scanflow.serving.errors import RequestError
from scanflow.serving.model import ModelInput
from scanflow.serving.oip import loads_json
from scanflow.serving.signature import Signature
from scanflow.serving.tensors import check_rows, columns_to_input, table_to_input

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def _records(records: Any, signature: Signature, allow: bool) -> ModelInput:
    if (
        not isinstance(records, list)
        or not records
        or not all(isinstance(r, dict) for r in records)
    ):
        raise RequestError("'dataframe_records' must be a non-empty list of objects")
    columns = list(records[0])
    for i, r in enumerate(records):
        if list(r) != columns and set(r) != set(columns):
            raise RequestError(f"record {i} has fields {sorted(r)}, record 0 has {sorted(columns)}")
    return columns_to_input(
        {c: [r[c] for r in records] for c in columns}, signature, allow_non_finite=allow
    )


def decode_json(
    payload: Any, signature: Signature, *, allow_non_finite: bool = False
) -> ModelInput:
    """The model input for a parsed MLflow scoring JSON payload."""
    if not isinstance(payload, dict):
        raise RequestError(f"the body must be a JSON object with one of: {', '.join(FORMATS)}")
    keys = [k for k in FORMATS if k in payload]
    unknown = sorted(set(payload) - set(FORMATS) - {"params"})
    if len(keys) != 1 or unknown:
        raise RequestError(
            f"the body must have exactly one of {', '.join(FORMATS)} (and optionally 'params');"
            f" got {', '.join(sorted(payload)) or 'nothing'}"
        )
    key = keys[0]
    value = payload[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or "data" not in value:
            raise RequestError("'dataframe_split' needs 'data' (rows) and usually 'columns'")
        return table_to_input(
            value.get("columns"), value["data"], signature, allow_non_finite=allow_non_finite
        )
    if key == "dataframe_records":
        return _records(value, signature, allow_non_finite)
    # instances / inputs: a tensor (list), named tensors (dict) or records (list of dicts)
    if isinstance(value, dict):
        return columns_to_input(value, signature, allow_non_finite=allow_non_finite)
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return _records(value, signature, allow_non_finite)
    if not isinstance(value, list) or not value:
        raise RequestError(f"'{key}' must be a non-empty list or an object of lists")
    return table_to_input(None, value, signature, allow_non_finite=allow_non_finite)


def decode_csv(
    body: bytes, signature: Signature, *, header: str | None = None, allow_non_finite: bool = False
) -> ModelInput:
    """A CSV body (parsed without pandas), with or without a header row.

    ``header`` is the content type's ``header`` parameter (``present`` or ``absent``);
    without it the first row is read as a header or as data by :func:`_first_row_is_header`.
    """
    try:
        rows = [r for r in csv.reader(io.StringIO(body.decode("utf-8-sig"))) if r]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RequestError(f"body is not valid CSV: {exc}") from None
    if not rows:
        raise RequestError("empty CSV body; send a header row and at least one data row")
    has_header = _first_row_is_header(rows[0], signature, header)
    if has_header:
        names, data = [n.strip() for n in rows[0]], rows[1:]
        if not data:
            raise RequestError("the CSV body has a header but no data rows")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise RequestError(f"the CSV header repeats column {repeated[0]!r}")
    else:
        names, data = _column_names(len(rows[0]), signature), rows
    first = "the header" if has_header else "line 1"
    for i, row in enumerate(data, start=2 if has_header else 1):
        if len(row) != len(names):
            raise RequestError(f"CSV line {i} has {len(row)} fields, {first} has {len(names)}")
    columns = {name: _numeric([row[i] for row in data]) for i, name in enumerate(names)}
    return columns_to_input(columns, signature, allow_non_finite=allow_non_finite)


def _first_row_is_header(first: list[str], signature: Signature, declared: str | None) -> bool:
    """Whether a CSV's first row names the columns (never guessed when it could be data).

    ``header=present|absent`` decides. Otherwise, for a model with named columns the row is a
    header when every field is a column name, data when none is (and it has one field per
    column); anything else is ambiguous and refused. For other models a row with a
    non-numeric field is a header, and so is ``0,1,...,n-1`` (the header pandas writes for
    unnamed columns); any other all-numeric row is data.
    """
    if declared is not None:
        if declared not in ("present", "absent"):
            raise RequestError(
                f"text/csv parameter header={declared!r}: use header=present or header=absent"
            )
        return declared == "present"
    fields = [f.strip() for f in first]
    if signature.is_columns:
        names = [s.name for s in signature.inputs]
        known = [f in names for f in fields]
        if all(known):
            return True
        if not any(known) and len(fields) == len(names):
            return False
        raise RequestError(
            f"the first CSV line ({','.join(fields)[:80]}) is neither a header of the model's "
            f"columns ({', '.join(names)}) nor a row of {len(names)} values; send the header "
            "line, or set 'Content-Type: text/csv; header=absent' for rows only"
        )
    if not all(_is_number(f) for f in fields):
        return True
    return fields == [str(i) for i in range(len(fields))]


def _column_names(count: int, signature: Signature) -> list[str]:
    """Column names for header-less CSV rows: the signature's, in order."""
    if signature.is_columns:
        names = [s.name for s in signature.inputs]
        if count != len(names):
            raise RequestError(
                f"the CSV rows have {count} fields but the model has {len(names)} columns "
                f"({', '.join(names)}); send one value per column"
            )
        return names
    return [str(i) for i in range(count)]


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _numeric(values: list[str]) -> Any:
    try:
        return np.asarray(values, dtype=np.float64)
    except ValueError:
        return np.asarray(values, dtype=object)


def decode(
    body: bytes, content_type: str, signature: Signature, *, allow_non_finite: bool = False
) -> ModelInput:
    """Decode an ``/invocations`` body by its content type (JSON or CSV)."""
    ctype, _, params = content_type.partition(";")
    ctype = ctype.strip().lower()
    if ctype == "text/csv":
        header = _media_params(params).get("header")
        data = decode_csv(body, signature, header=header, allow_non_finite=allow_non_finite)
    elif ctype in ("application/json", ""):
        data = decode_json(loads_json(body), signature, allow_non_finite=allow_non_finite)
    else:
        raise RequestError(
            f"content type {ctype!r} is not supported; use application/json or text/csv",
            status=415,
        )
    check_rows(data)
    return data


def _media_params(params: str) -> dict[str, str]:
    """``; a=b; c="d"`` of a content type as ``{"a": "b", "c": "d"}`` (names lowercased)."""
    out = {}
    for part in params.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            out[key.strip().lower()] = value.strip().strip('"').lower()
    return out


def encode(output: Any) -> bytes:
    """``{"predictions": ...}`` for one request's output."""
    if hasattr(output, "to_dict") and hasattr(output, "columns"):
        predictions: Any = output.to_dict(orient="records")
    elif isinstance(output, dict):
        predictions = {k: np.asarray(v) for k, v in output.items()}
    else:
        predictions = output
    try:
        return orjson.dumps({"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:
        if isinstance(predictions, np.ndarray):
            predictions = predictions.tolist()
        return orjson.dumps(
            {"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY, default=str
        )


def error_body(message: str, status: int) -> bytes:
    """MLflow's error shape: ``{"error_code": ..., "message": ...}``."""
    code = {
        400: "BAD_REQUEST",
        404: "RESOURCE_DOES_NOT_EXIST",
        413: "BAD_REQUEST",
        415: "BAD_REQUEST",
        503: "TEMPORARILY_UNAVAILABLE",
    }.get(status, "INTERNAL_ERROR")
    return orjson.dumps({"error_code": code, "message": message})
