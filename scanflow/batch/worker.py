"""One scoring process: the model loaded once, then task after task scored and written.

A task is a list of consecutive chunks of one file (a Parquet span, read here, or one
chunk with its data). Each chunk's predictions are written to a temporary file in the
parts folder and renamed to ``part-FFFF-CCCCCC.parquet``, so a part is either whole or
absent; the part's footer also holds the chunk's :class:`ChunkResult`, so a part written
just before a crash counts as done even if the parent had not recorded it yet.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scanflow.batch.errors import BatchInputError
from scanflow.batch.features import Features
from scanflow.batch.lines import read_lines
from scanflow.batch.manifest import RESULT_KEY
from scanflow.batch.memory import keep_freed_memory
from scanflow.batch.parse import ROW_ID, MatrixBuffer, parse_chunk
from scanflow.batch.source import Chunk, read_span
from scanflow.serving.model import LoadedModel, load_model, normalise_output

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """What every worker shares: the model, the columns, the options and where parts go."""

    model_path: str
    model_name: str
    version: str
    features: Features
    id_column: str | None
    policy: str
    parts: str
    files: tuple[tuple[str, str], ...]  # (path, format) per input file
    name_files: bool  # add a ``file`` column (more than one input file)


@dataclass
class ChunkResult:
    """What scoring one chunk did; the manifest keeps it."""

    key: str
    file: int
    index: int
    rows: int
    bad_rows: int
    bad: list[tuple[int, str]] = field(default_factory=list)  # the first few, with reasons
    read_s: float = 0.0
    predict_s: float = 0.0
    write_s: float = 0.0
    part: bool = True  # False: nothing of the chunk could be read (policy skip)


_state: dict[str, Any] = {}
BAD_ROWS_KEPT = 20


def init(job: Job, model: LoadedModel | None = None, own_process: bool = True) -> None:
    """Set this process up: ``model`` (inherited from the parent by fork) or the model
    loaded once from ``job.model_path``. A worker process (``own_process``) also gets one
    BLAS thread (processes give parallelism) and keeps freed memory for the next chunk
    (see :mod:`~scanflow.batch.memory`)."""
    if own_process:
        from threadpoolctl import threadpool_limits

        _state["limits"] = threadpool_limits(1)
        _state["memory"] = keep_freed_memory()
    _state["job"] = job
    _state["buffer"] = MatrixBuffer()
    _state["model"] = model or load_model(
        job.model_path, name=job.model_name, version=job.version, smoke=False
    )


def score_task(task: list[Chunk]) -> list[ChunkResult]:
    """Score the chunks of ``task`` in this process (after :func:`init`)."""
    return list(iter_task(task))


def iter_task(task: list[Chunk]) -> Iterator[ChunkResult]:
    """Each chunk of ``task`` read, scored and written, in order (a task that cannot be
    read fails, or with policy ``skip`` counts as bad rows)."""
    started = time.perf_counter()
    try:
        task = _read(task)
    except Exception as exc:
        yield from _unreadable(task, exc)
        return
    read_s = time.perf_counter() - started
    for chunk in task:
        yield score_chunk(chunk, read_s)
        read_s = 0.0  # the task's read counts once, with its first chunk


def _read(task: list[Chunk]) -> list[Chunk]:
    """``task`` with its chunks' data: a Parquet span's record batches, CSV lines."""
    path, fmt = _state["job"].files[task[0].file]
    if fmt == "parquet" and task[0].payload is None:
        return read_span(_reader(path), task, _columns(_state["job"]))
    if fmt == "csv":
        return [dataclasses.replace(c, payload=read_lines(path, c.payload)) for c in task]
    return task


def _reader(path: str) -> Any:
    import pyarrow.parquet as pq

    readers = _state.setdefault("readers", {})
    if path not in readers:
        readers.clear()
        readers[path] = pq.ParquetFile(path, memory_map=True)
    return readers[path]


def _columns(job: Job) -> list[str]:
    return ([job.id_column] if job.id_column else []) + list(job.features.names)


def _unreadable(task: list[Chunk], exc: Exception) -> Iterator[ChunkResult]:
    job: Job = _state["job"]
    first = task[0]
    rows = sum(c.rows for c in task)
    where = f"input {job.files[first.file][0]}, chunk {first.index} (rows {first.start}..)"
    if job.policy == "fail":
        raise BatchInputError(f"{where} cannot be read: {exc}") from exc
    logger.warning("skipping %d unreadable row(s) of %s: %s", rows, where, exc)
    reason = f"unreadable: {exc}"
    for chunk in task:
        bad = [(chunk.start, reason)]
        yield ChunkResult(chunk.key, chunk.file, chunk.index, 0, chunk.rows, bad, part=False)


def score_chunk(chunk: Chunk, read_s: float = 0.0) -> ChunkResult:
    """Parse, predict and write one chunk in this process (after :func:`init`);
    ``read_s``: time already spent reading it."""
    job: Job = _state["job"]
    model: LoadedModel = _state["model"]
    path, fmt = job.files[chunk.file]
    t0 = time.perf_counter()
    parsed = parse_chunk(
        chunk, fmt, path, job.features, job.id_column, job.policy, _state["buffer"]
    )
    t1 = time.perf_counter()
    rows = len(parsed.ids)
    output = normalise_output(model.predict(parsed.data)) if rows else np.empty(0)
    t2 = time.perf_counter()
    result = ChunkResult(
        chunk.key,
        chunk.file,
        chunk.index,
        rows,
        len(parsed.bad),
        parsed.bad[:BAD_ROWS_KEPT],
        read_s + t1 - t0,
        t2 - t1,
    )
    table = _table(parsed.ids, output, job, Path(path).name, rows)
    table = table.replace_schema_metadata({RESULT_KEY: json.dumps(dataclasses.asdict(result))})
    _write_atomically(table, Path(job.parts) / f"part-{chunk.key}.parquet")
    result.write_s = time.perf_counter() - t2
    return result


def _table(ids: Any, output: Any, job: Job, file_name: str, rows: int) -> Any:
    import pyarrow as pa

    columns: dict[str, Any] = {job.id_column or ROW_ID: ids}
    if job.name_files:
        columns["file"] = _repeat(file_name, rows)
    if isinstance(output, dict):
        columns.update({f"prediction_{k}": np.asarray(v) for k, v in output.items()})
    elif hasattr(output, "iloc"):
        columns.update({f"prediction_{k}": output[k].to_numpy() for k in output.columns})
    elif output.ndim == 2:
        columns.update({f"prediction_{j}": output[:, j] for j in range(output.shape[1])})
    else:
        columns["prediction"] = output
    columns["model_version"] = _repeat(job.version, rows)
    return pa.table(columns)


def _repeat(value: str, rows: int) -> Any:
    import pyarrow as pa

    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, np.int32)), pa.array([value]))


def _write_atomically(table: Any, dest: Path) -> None:
    import pyarrow.parquet as pq

    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, dest)
