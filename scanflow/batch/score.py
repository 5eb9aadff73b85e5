"""``score``: the built-in batch inference executor (``function: scanflow.batch:score``).

The parent process cuts the inputs into chunks (CSV: read here; Parquet: only their row
numbers, grouped into spans that the workers read themselves); worker processes (each
loading the model once) parse, predict and write one part per chunk; the parent records
finished chunks in the manifest, then renames the staging folder to the output folder.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

from scanflow.batch import worker
from scanflow.batch.errors import BatchError, BatchInputError
from scanflow.batch.features import Features, features_for
from scanflow.batch.manifest import Manifest, staging_for
from scanflow.batch.memory import freed_memory_kept
from scanflow.batch.source import (
    Chunk,
    InputFile,
    chunks,
    columns_of,
    list_inputs,
    parquet_rows,
    parquet_spans,
)
from scanflow.serving.errors import ModelLoadError
from scanflow.serving.model import LoadedModel, load_model
from scanflow.serving.resolve import parse_uri, resolve

logger = logging.getLogger(__name__)

POLICIES = ("fail", "skip")
SUMMARY = "_summary.json"


@dataclass
class Summary:
    """What a batch run did (also written to ``_summary.json`` in the output folder)."""

    output: str
    model_uri: str
    model_version: str
    chunk_size: int = 0  # rows per chunk (the default's value when none was given)
    chunks: int = 0
    chunks_scored: int = 0  # by this call (the others were done before a resume)
    chunks_resumed: int = 0
    rows: int = 0
    bad_rows: int = 0
    bad_chunks: int = 0
    skipped_files: list[str] = field(default_factory=list)
    bad_examples: list[list[Any]] = field(default_factory=list)  # [row, reason] (first ones)
    seconds: float = 0.0
    read_seconds: float = 0.0
    predict_seconds: float = 0.0
    write_seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def score(
    model: str,
    data: str,
    predictions: str,
    id_column: str | None = None,
    features: list[str] | None = None,
    chunk_size: int | None = None,
    workers: int = 0,
    on_error: str = "fail",
    tracking_uri: str | None = None,
    track: bool | None = None,
) -> Summary:
    """Score ``data`` (a CSV/Parquet file or a folder of them) with the MLflow model
    ``model`` into the folder ``predictions`` (Parquet parts).

    ``workers`` processes score chunks of ``chunk_size`` rows (None or 0: the largest of
    ``CHUNK_ROWS`` whose model input fits in ``CHUNK_BYTES``, 50,000 rows for 64 float
    columns; workers 0: one per core, or this process alone for less than
    ``IN_PROCESS_ROWS`` rows);
    ``on_error`` is ``fail`` (stop at the first bad row, output not written) or ``skip``
    (leave bad rows and unreadable files out, counted). ``track`` logs to MLflow (default:
    when running as a workflow step). A run killed half-way resumes when called again."""
    started = time.perf_counter()
    if on_error not in POLICIES:
        raise BatchError(f"on_error is {on_error!r}; use one of: {', '.join(POLICIES)}")
    if chunk_size is not None and int(chunk_size) < 0:
        raise BatchError(f"chunk_size is {chunk_size}; give a number of rows, or 0 for the default")
    inputs = list_inputs(data)
    output = Path(predictions)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise BatchError(f"output {output} already exists; remove it or choose another path")
    fingerprint = {
        "inputs": [[str(f.path.resolve()), *_stamp(f.path)] for f in inputs],
        "model": model,
        "chunk_size": int(chunk_size or 0),
        "id_column": id_column,
        "features": features,
        "on_error": on_error,
    }
    staging = staging_for(output)
    manifest = Manifest.open(staging, fingerprint)
    try:
        resolved = _resolve(model, manifest, tracking_uri, staging)
        loaded = load_model(resolved.path, name=resolved.name, version=resolved.version)
        summary = Summary(str(output), model, resolved.version)
        readable, feats = _check_inputs(inputs, loaded.signature, id_column, features, on_error)
        if "chunk_size" not in manifest.header:  # a resumed run keeps its chunks' rows
            manifest.pin(chunk_size=int(chunk_size or 0) or default_chunk_size(feats))
        size = summary.chunk_size = int(manifest.header["chunk_size"])
        summary.skipped_files = [str(f.path) for f in inputs if f not in readable]
        job = worker.Job(
            model_path=resolved.path,
            model_name=resolved.name,
            version=resolved.version,
            features=feats,
            id_column=id_column,
            policy=on_error,
            parts=str(staging),
            files=tuple((str(f.path), f.format) for f in inputs),
            name_files=len(inputs) > 1,
        )
        rows = _rows_estimate(readable)
        workers = _workers(int(workers), rows, size)
        target = max(size, rows // (SPANS_PER_WORKER * workers))
        _run(job, loaded, inputs, readable, size, target, workers, manifest, summary)
    finally:
        manifest.close()
    _totals(summary, manifest, started)
    _finish(staging, output, summary)
    if track if track is not None else _in_step():
        _log(summary, chunk_size=summary.chunk_size, workers=workers, on_error=on_error)
    logger.info(
        "scored %d rows (%d bad) in %.1f s with %s version %s into %s",
        summary.rows,
        summary.bad_rows,
        summary.seconds,
        model,
        summary.model_version,
        output,
    )
    return summary


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


@contextmanager
def _process_uris_kept() -> Iterator[None]:
    """Resolving sets MLflow's process-wide URIs (and their environment variables, which
    child processes inherit); a caller scoring in its own process gets its own back."""
    import mlflow

    keys = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    before = {key: os.environ.get(key) for key in keys}
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before["MLFLOW_TRACKING_URI"])  # type: ignore[arg-type]
        mlflow.set_registry_uri(before["MLFLOW_REGISTRY_URI"])  # type: ignore[arg-type]
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _resolve(model: str, manifest: Manifest, tracking_uri: str | None, staging: Path) -> Any:
    """Resolve the model URI; a resumed run keeps the version it started with."""
    uri = model
    if "version" in manifest.header and parse_uri(model).kind == "alias":
        uri = f"models:/{parse_uri(model).name}/{manifest.header['version']}"
    try:
        with _process_uris_kept():
            resolved = resolve(uri, tracking_uri=tracking_uri, cache_dir=staging / ".models")
    except ModelLoadError as exc:
        raise BatchError(f"cannot score with model {model}: {exc}") from exc
    if "version" not in manifest.header:
        manifest.pin(version=resolved.version, name=resolved.name)
    return dataclasses.replace(resolved, uri=model)


def _check_inputs(
    inputs: list[InputFile],
    signature: Any,
    id_column: str | None,
    chosen: list[str] | None,
    policy: str,
) -> tuple[list[InputFile], Features]:
    """The readable inputs and the model's features; every file must have those columns."""
    readable, found = [], None
    for source in inputs:
        try:
            columns = columns_of(source)
        except BatchInputError:
            if policy == "fail":
                raise
            logger.warning("skipping unreadable input %s", source.path, exc_info=True)
            continue
        try:
            feats = features_for(signature, columns, id_column, chosen)
        except BatchError as exc:
            raise BatchError(f"input {source.path}: {exc}") from exc
        if found is not None and feats != found:
            raise BatchError(
                f"input {source.path} has other feature columns than {readable[0].path}; "
                "score files of one layout together"
            )
        found = feats
        readable.append(source)
    if found is None:
        raise BatchInputError(f"no input could be read ({', '.join(str(f.path) for f in inputs)})")
    return readable, found


def _run(
    job: worker.Job,
    model: LoadedModel,
    inputs: list[InputFile],
    readable: list[InputFile],
    size: int,
    target: int,
    workers: int,
    manifest: Manifest,
    summary: Summary,
) -> None:
    todo = _todo(job, inputs, readable, size, target, manifest, summary)
    if workers == 1:
        from threadpoolctl import threadpool_limits

        worker.init(job, model, own_process=False)
        with threadpool_limits(1), freed_memory_kept():  # as in a worker
            for task in todo:
                for result in worker.iter_task(task):
                    _record(manifest, [result])
        return
    context = _context()
    shared = model if context.get_start_method() == "fork" else None  # spawn: loaded anew
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=worker.init, initargs=(job, shared)
    )
    pending: set[Future] = set()
    # The collector leaves today's objects alone, in the forked workers too: their
    # collections then do not write to (and so copy) every shared page holding one. A
    # caller that froze objects itself (a pre-fork server) keeps them as they are.
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    try:
        for task in todo:
            pending.add(pool.submit(worker.score_task, task))
            if len(pending) >= 2 * workers:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    _record(manifest, future.result())
        for future in pending:
            _record(manifest, future.result())
    except BaseException as exc:
        pool.shutdown(wait=True, cancel_futures=True)
        for tmp in Path(job.parts).glob(".part-*.tmp"):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, BrokenProcessPool):
            raise BatchError(
                "a scoring process died (killed, or out of memory: lower chunk_size or "
                "workers); the chunks done so far are kept: run the same call again to resume"
            ) from exc
        raise
    finally:
        if freeze:
            gc.unfreeze()
    pool.shutdown()


CHUNK_ROWS = (50_000, 20_000, 10_000, 5_000, 2_000, 1_000)  # default chunk sizes
CHUNK_BYTES = 32 << 20  # a default chunk's model input takes at most this (per worker)


def default_chunk_size(features: Features) -> int:
    """The largest of ``CHUNK_ROWS`` whose model input fits in ``CHUNK_BYTES``: large
    chunks spread the fixed costs of a chunk (a model call, a part file) over many rows;
    the bound keeps a wide model's chunks in memory. These sizes divide the usual Parquet
    row group sizes, so chunks rarely straddle row groups."""
    row = sum(dtype.itemsize for dtype in features.dtypes) or 8
    return next((rows for rows in CHUNK_ROWS if rows * row <= CHUNK_BYTES), CHUNK_ROWS[-1])


SPANS_PER_WORKER = 4  # Parquet spans per worker at least (a slow span is not left alone)
IN_PROCESS_ROWS = 100_000  # fewer rows than this: forking workers does not pay back
CSV_SAMPLE = 1 << 20  # bytes of a CSV file read to estimate its rows


def _workers(asked: int, rows: int, size: int) -> int:
    """The processes to use: as asked (0: one per core, or one for a small table); one
    when there is a single chunk."""
    if rows <= size:
        return 1
    if asked:
        return asked
    return len(os.sched_getaffinity(0)) if rows >= IN_PROCESS_ROWS else 1


def _rows_estimate(readable: list[InputFile]) -> int:
    """The rows of the inputs: exact for Parquet, from the first lines' length for CSV."""
    rows = 0
    for source in readable:
        if source.format == "parquet":
            rows += parquet_rows(source.path)
            continue
        with source.path.open("rb") as fh:
            sample = fh.read(CSV_SAMPLE)
        lines = max(sample.count(b"\n"), 1)
        rows += lines * source.path.stat().st_size // max(len(sample), 1)
    return rows


def _context() -> Any:
    """``fork`` where there is one (the workers share the parent's loaded model and its
    imported modules, so they start at once), else ``spawn``."""
    return get_context("fork" if "fork" in get_all_start_methods() else "spawn")


def _todo(
    job: worker.Job,
    inputs: list[InputFile],
    readable: list[InputFile],
    size: int,
    target: int,
    manifest: Manifest,
    summary: Summary,
) -> Iterator[list[Chunk]]:
    """The tasks still to score (lists of consecutive chunks of one file); a file that
    breaks while read by this process is failed or skipped."""
    columns = ([job.id_column] if job.id_column else []) + list(job.features.names)
    for number, source in enumerate(inputs):
        if source not in readable:
            continue
        spans = parquet_spans(source, number, size, target) if source.format == "parquet" else None
        if spans is not None:
            for span in spans:
                left = [c for c in span if not _done(c, manifest, job, summary)]
                if left:
                    yield left
            continue
        index, start = 0, 0
        try:
            for chunk in chunks(source, number, size, columns):
                index, start = chunk.index + 1, chunk.start + size
                if not _done(chunk, manifest, job, summary):
                    yield [chunk]
        except BatchInputError:
            raise
        except Exception as exc:
            where = f"input {source.path}, chunk {index} (rows {start}..)"
            if job.policy == "fail":
                raise BatchInputError(f"{where} cannot be read: {exc}") from exc
            lost = parquet_rows(source.path) - start if source.format == "parquet" else 0
            logger.warning("skipping the rest of %s: %s", where, exc)
            manifest.add(
                {
                    "key": f"{number:04d}-rest",
                    "rows": 0,
                    "bad_rows": max(lost, 0),
                    "bad": [[start, f"unreadable from here: {exc}"]],
                    "part": False,
                }
            )


def _done(chunk: Chunk, manifest: Manifest, job: worker.Job, summary: Summary) -> bool:
    """Whether ``chunk`` was finished by an earlier call (then it counts as resumed)."""
    entry = manifest.done.get(chunk.key)
    part = Path(job.parts) / f"part-{chunk.key}.parquet"
    if entry and (not entry.get("part") or part.is_file()):
        summary.chunks_resumed += 1
        return True
    return False


def _record(manifest: Manifest, results: list[worker.ChunkResult]) -> None:
    manifest.add_many([dataclasses.asdict(result) for result in results])


def _totals(summary: Summary, manifest: Manifest, started: float) -> None:
    for entry in manifest.done.values():
        summary.chunks += 1 if entry.get("part") else 0
        summary.rows += entry["rows"]
        summary.bad_rows += entry["bad_rows"]
        summary.bad_chunks += 1 if entry["bad_rows"] else 0
        summary.read_seconds += entry.get("read_s", 0.0)
        summary.predict_seconds += entry.get("predict_s", 0.0)
        summary.write_seconds += entry.get("write_s", 0.0)
        left = 20 - len(summary.bad_examples)
        summary.bad_examples += [list(b) for b in entry.get("bad", [])[: max(left, 0)]]
    summary.chunks_scored = summary.chunks - summary.chunks_resumed
    summary.seconds = time.perf_counter() - started


def _finish(staging: Path, output: Path, summary: Summary) -> None:
    """Write the summary and make the output appear at once (a rename)."""
    import json

    shutil.rmtree(staging / ".models", ignore_errors=True)
    payload = dataclasses.asdict(summary) | {"rows_per_second": summary.rows_per_second}
    (staging / SUMMARY).write_text(json.dumps(payload, indent=2))
    if output.is_dir():
        output.rmdir()  # an empty folder made for it
    output.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, output)


def _in_step() -> bool:
    from scanflow.tracking.step import ENV_RUN_FILE, ENV_RUN_ID

    return bool(os.environ.get(ENV_RUN_ID) or os.environ.get(ENV_RUN_FILE))


def _log(summary: Summary, **options: Any) -> None:
    from scanflow import tracking

    tracking.log_params({"model_uri": summary.model_uri, **options})
    tracking.set_tag("scanflow.batch.model_version", summary.model_version)
    tracking.log_metrics(
        {
            "rows": summary.rows,
            "bad_rows": summary.bad_rows,
            "bad_chunks": summary.bad_chunks,
            "chunks": summary.chunks,
            "chunks_scored": summary.chunks_scored,
            "chunks_resumed": summary.chunks_resumed,
            "skipped_files": len(summary.skipped_files),
            "seconds": summary.seconds,
            "rows_per_second": summary.rows_per_second,
            "read_seconds": summary.read_seconds,
            "predict_seconds": summary.predict_seconds,
            "write_seconds": summary.write_seconds,
        }
    )
    tracking.flush()
