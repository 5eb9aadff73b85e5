"""The input side: which files, their columns, and their rows cut into numbered chunks.

A chunk is ``size`` consecutive data rows of one file, so chunk ``k`` of a file always
holds the same rows and a resumed run can skip the chunks it already scored. The data
itself does not cross a pipe: a CSV chunk travels as its byte range (see ``lines``; CSV
fields must not hold line breaks, one line is one row), and Parquet chunks as their row
numbers, grouped in *spans* that a worker reads at once (memory-mapped, only the needed
columns and row groups); spans follow the row groups so that none is decoded twice. A
Parquet file whose row groups are far larger than a span is read by the parent instead
and its chunks sent as Arrow record batches. Workers parse the chunks, in parallel.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scanflow.batch.errors import BatchError, BatchInputError
from scanflow.batch.lines import line_ranges

SMALL_GROUP = 65_536  # rows of a row group cheap enough to decode for a span of any size
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class InputFile:
    """One input file and its format (``csv`` or ``parquet``)."""

    path: Path
    format: str


@dataclass
class Chunk:
    """Rows ``start .. start+rows-1`` of file number ``file`` (0-based data rows)."""

    file: int
    index: int
    start: int
    payload: Any  # CSV: Lines, then bytes; Parquet: a RecordBatch, or None in a span
    rows: int = 0  # the row count of a chunk sent without its data (0: unknown)

    @property
    def key(self) -> str:
        return f"{self.file:04d}-{self.index:06d}"


def list_inputs(data: str | Path) -> list[InputFile]:
    """The files to score: ``data`` itself, or the CSV/Parquet files of the folder ``data``
    in name order. A file without a suffix is Parquet if it starts so, else CSV."""
    path = Path(data)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in FORMATS and p.is_file())
        if not files:
            raise BatchError(f"no .csv or .parquet file in the input folder {path}")
        return [InputFile(p, FORMATS[p.suffix.lower()]) for p in files]
    if not path.is_file():
        raise BatchError(f"input {path} does not exist; pass a CSV or Parquet file or a folder")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None and not path.suffix:  # e.g. a step's output: Parquet by its magic bytes
        with path.open("rb") as fh:
            fmt = "parquet" if fh.read(4) == b"PAR1" else "csv"
    if fmt is None:
        raise BatchError(
            f"input {path}: unknown format {path.suffix}; name it .csv, .parquet or .pq"
        )
    return [InputFile(path, fmt)]


def columns_of(source: InputFile) -> list[str]:
    """The column names of ``source`` (CSV header line, Parquet schema)."""
    if source.format == "csv":
        import csv

        with source.path.open(newline="", encoding="utf-8", errors="replace") as fh:
            header = next(csv.reader(fh), None)
        if not header:
            raise BatchInputError(f"input {source.path} is empty: a CSV needs a header line")
        return [h.strip() for h in header]
    return list(_parquet(source.path).schema_arrow.names)


def _parquet(path: Path) -> Any:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except Exception as exc:
        raise BatchInputError(f"input {path} is not a readable Parquet file: {exc}") from exc


def parquet_rows(path: Path) -> int:
    """Rows in the Parquet file ``path`` according to its footer."""
    return int(_parquet(path).metadata.num_rows)


def chunks(source: InputFile, file: int, size: int, columns: list[str]) -> Iterator[Chunk]:
    """The chunks of ``source`` in order (Parquet: only ``columns`` are read)."""
    if source.format == "csv":
        yield from _csv_chunks(source.path, file, size)
    else:
        yield from _parquet_chunks(source.path, file, size, columns)


def parquet_spans(
    source: InputFile, file: int, size: int, target: int
) -> Iterator[list[Chunk]] | None:
    """The chunks of the Parquet file ``source`` without their data, grouped into spans of
    at least ``target`` rows and at least a row group, that end where a row group ends (a
    worker reads a span's row groups once); None when the row groups are so large that
    spans would leave the other workers idle (then :func:`chunks` reads the file here)."""
    groups = row_groups(source.path)
    largest = max(groups, default=0)
    if largest > 4 * max(target, size, SMALL_GROUP):
        return None
    return _spans(groups, file, size, max(target, largest))


def row_groups(path: Path) -> list[int]:
    """The row count of each row group of the Parquet file ``path``."""
    meta = _parquet(path).metadata
    return [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]


def _spans(groups: list[int], file: int, size: int, target: int) -> Iterator[list[Chunk]]:
    ends = list(itertools.accumulate(groups))
    total = ends[-1] if ends else 0
    span: list[Chunk] = []
    for index, start in enumerate(range(0, total, size)):
        end = min(start + size, total)
        span.append(Chunk(file, index, start, None, end - start))
        first = span[0].start
        group_end = next(e for e in ends if e > first)
        if end >= group_end or end - first >= target:
            yield span
            span = []
    if span:
        yield span


def read_span(reader: Any, span: list[Chunk], columns: list[str]) -> list[Chunk]:
    """``span`` with each chunk's record batch, read from the Parquet file ``reader``
    (a ``pyarrow.parquet.ParquetFile``): only the row groups that hold its rows."""
    import dataclasses

    meta = reader.metadata
    first, last = span[0].start, span[-1].start + span[-1].rows
    wanted, offset, at = [], None, 0
    for g in range(meta.num_row_groups):
        rows = meta.row_group(g).num_rows
        if at < last and at + rows > first:
            wanted.append(g)
            offset = at if offset is None else offset
        at += rows
    table = reader.read_row_groups(wanted, columns=columns, use_threads=False)
    return [
        dataclasses.replace(
            chunk,
            payload=table.slice(chunk.start - (offset or 0), chunk.rows)
            .combine_chunks()
            .to_batches()[0],
        )
        for chunk in span
    ]


def _csv_chunks(path: Path, file: int, size: int) -> Iterator[Chunk]:
    start = 0
    for index, where in enumerate(line_ranges(path, size)):
        yield Chunk(file, index, start, where, where.rows)
        start += where.rows


def _parquet_chunks(path: Path, file: int, size: int, columns: list[str]) -> Iterator[Chunk]:
    import pyarrow as pa

    reader = _parquet(path)
    pending: list[Any] = []
    held, start, index = 0, 0, 0
    for batch in reader.iter_batches(batch_size=size, columns=columns):
        pending.append(batch)
        held += batch.num_rows
        while held >= size:
            table = pa.Table.from_batches(pending)
            head = table.slice(0, size).combine_chunks().to_batches()[0]
            yield Chunk(file, index, start, head)
            rest = table.slice(size)
            pending = rest.combine_chunks().to_batches() if rest.num_rows else []
            held, start, index = held - size, start + size, index + 1
    if held:
        yield Chunk(
            file, index, start, pa.Table.from_batches(pending).combine_chunks().to_batches()[0]
        )
