"""A chunk's payload to the model's input, the row ids, and the rows left out.

The fast path parses a whole chunk with Arrow in the column types the model needs. Only a
chunk that fails it is read again row by row, to name each bad row (wrong number of
fields, a value that is not of the column's type, a missing value): with the policy
``skip`` the good rows go on and the bad ones are counted, with ``fail`` the first bad
row stops the run.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scanflow.batch.errors import BatchInputError
from scanflow.batch.features import Features
from scanflow.batch.source import Chunk
from scanflow.serving.model import ModelInput

ROW_ID = "row"  # the id column of the output when the input has none: 0-based row number


@dataclass
class Parsed:
    """A chunk ready to predict: ``ids`` (an Arrow array), ``data`` and the bad rows."""

    ids: Any
    data: ModelInput
    bad: list[tuple[int, str]] = field(default_factory=list)


class MatrixBuffer:
    """The memory of a process's chunk matrices, reused from chunk to chunk (a chunk's
    matrix is used up, predicted and written, before the next chunk is parsed): a fresh
    multi-MB array per chunk would be faulted in, and zeroed, by the kernel each time."""

    def __init__(self) -> None:
        self._flat = np.empty(0)

    def matrix(self, rows: int, columns: int, dtype: np.dtype) -> np.ndarray:
        """A ``rows`` x ``columns`` Fortran-ordered array (contents undefined) in the
        buffer, which grows when it is too small."""
        size = rows * columns
        if self._flat.dtype != dtype or self._flat.size < size:
            self._flat = np.empty(0)  # the old one is freed before the new one is made
            self._flat = np.empty(size, dtype=dtype)
        return self._flat[:size].reshape((rows, columns), order="F")


def parse_chunk(
    chunk: Chunk,
    fmt: str,
    where: str,
    features: Features,
    id_column: str | None,
    policy: str,
    buffer: MatrixBuffer | None = None,
) -> Parsed:
    """Parse ``chunk`` of the file ``where`` (``fmt``: ``csv`` or ``parquet``); a matrix
    input is built in ``buffer`` (valid until the next call with it) if given."""
    fast = _csv_table if fmt == "csv" else _batch_table
    buffer = buffer or MatrixBuffer()
    try:
        table = fast(chunk.payload, features, id_column)
        return _parsed(table, chunk.start, None, features, id_column, buffer)
    except _Slow:
        pass
    rows = _csv_rows if fmt == "csv" else _batch_rows
    good, bad = _check_rows(rows(chunk.payload, features), features, chunk.start)
    if bad and policy == "fail":
        row, reason = bad[0]
        raise BatchInputError(
            f"input {where}, chunk {chunk.index} (rows {chunk.start}..): row {row}: {reason}; "
            "fix the file, or score with on_error: skip to leave such rows out"
        )
    kept = _keep(chunk.payload, fmt, good)
    table = fast(kept, features, id_column) if good else None
    return _parsed(table, chunk.start, good, features, id_column, buffer, bad)


class _Slow(Exception):
    """The fast path cannot take this chunk as it is."""


@functools.cache
def _arrow_types(features: Features) -> dict[str, Any]:
    import pyarrow as pa

    return {n: pa.from_numpy_dtype(d) for n, d in zip(features.names, features.dtypes, strict=True)}


def _csv_table(payload: bytes, features: Features, id_column: str | None) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    include = ([id_column] if id_column else []) + list(features.names)
    try:
        table = pacsv.read_csv(
            pa.py_buffer(payload),
            read_options=pacsv.ReadOptions(use_threads=False),
            convert_options=pacsv.ConvertOptions(
                column_types=_arrow_types(features), include_columns=include
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:
        raise _Slow from exc
    if any(table.column(n).null_count for n in features.names):
        raise _Slow
    return table


def _batch_table(batch: Any, features: Features, id_column: str | None) -> Any:
    import pyarrow as pa

    types = _arrow_types(features)
    columns, names = [], []
    if id_column:
        columns.append(batch.column(id_column))
        names.append(id_column)
    for name in features.names:
        col = batch.column(name)
        if col.null_count:
            raise _Slow
        try:
            columns.append(col if col.type == types[name] else col.cast(types[name]))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise _Slow from exc
        names.append(name)
    return pa.table(columns, names=names)


def _csv_rows(payload: bytes, features: Features) -> list[list[Any] | str]:
    """Each data row's feature values, or why the row cannot be read."""
    text = [line.decode("utf-8", errors="replace") for line in payload.splitlines()]
    header = [h.strip() for h in next(csv.reader(text[:1]))]
    where = [header.index(n) for n in features.names]
    out: list[list[Any] | str] = []
    for fields in csv.reader(text[1:]):
        if len(fields) != len(header):
            out.append(f"has {len(fields)} fields, the header has {len(header)}")
        else:
            out.append([fields[i] for i in where])
    return out


def _batch_rows(batch: Any, features: Features) -> list[list[Any] | str]:
    columns = [batch.column(n).to_pylist() for n in features.names]
    return [list(values) for values in zip(*columns, strict=True)]


def _check_rows(
    rows: list[list[Any] | str], features: Features, start: int
) -> tuple[list[int], list[tuple[int, str]]]:
    good, bad = [], []
    for i, values in enumerate(rows):
        reason = values if isinstance(values, str) else _problem(values, features)
        if reason:
            bad.append((start + i, reason))
        else:
            good.append(i)
    return good, bad


def _problem(values: list[Any], features: Features) -> str | None:
    for name, dtype, value in zip(features.names, features.dtypes, values, strict=True):
        if value is None or (isinstance(value, str) and not value.strip()):
            return f"column {name!r}: missing value"
        try:
            dtype.type(value)
        except (TypeError, ValueError, OverflowError):
            return f"column {name!r}: {value!r} is not of type {dtype}"
    return None


def _keep(payload: Any, fmt: str, good: list[int]) -> Any:
    if fmt == "csv":
        lines = payload.splitlines(keepends=True)
        return lines[0] + b"".join(lines[1 + i] for i in good)
    import pyarrow as pa

    return payload.take(pa.array(good, type=pa.int64()))


def _parsed(
    table: Any,
    start: int,
    good: list[int] | None,
    features: Features,
    id_column: str | None,
    buffer: MatrixBuffer,
    bad: list[tuple[int, str]] | None = None,
) -> Parsed:
    import pyarrow as pa

    rows = table.num_rows if table is not None else 0
    if id_column and table is not None:
        ids = table.column(id_column).combine_chunks()
    elif good is None:
        ids = pa.array(np.arange(start, start + rows, dtype=np.int64))
    else:
        ids = pa.array(np.asarray(good, dtype=np.int64) + start)
    if rows == 0:
        data: ModelInput = np.empty((0, len(features.names)))
    else:
        columns = [table.column(n) for n in features.names]
        if features.matrix:
            data = buffer.matrix(rows, len(columns), features.dtypes[0])
            for j, column in enumerate(columns):  # piece by piece: no concatenated copy
                at = 0
                for piece in column.chunks:
                    data[at : at + len(piece), j] = piece.to_numpy(zero_copy_only=False)
                    at += len(piece)
        else:
            data = {n: c.to_numpy() for n, c in zip(features.names, columns, strict=True)}
    return Parsed(ids, data, bad or [])
