"""How batch scoring sets itself up: worker memory settings, the reused input matrix, the
default chunk size and its record in the manifest."""

from __future__ import annotations

import importlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from batch.conftest import PIXELS, Store, pixels_frame
from scanflow.batch import BatchError, memory, score, worker
from scanflow.batch.features import Features
from scanflow.batch.parse import MatrixBuffer

score_module = importlib.import_module("scanflow.batch.score")  # the name is the function


def _numpy_huge_pages() -> bool | None:
    """numpy's current huge-page setting (read by setting it and setting it back)."""
    before = memory._set_numpy_huge_pages(True)
    if before is not None:
        memory._set_numpy_huge_pages(before)
    return before


def _worker_view() -> dict:
    return {
        "pool": pa.default_memory_pool().backend_name,
        "huge_pages": _numpy_huge_pages(),
        "memory": worker._state["memory"],
        "threads_limited": "limits" in worker._state,
    }


def test_a_worker_process_is_set_up_to_reuse_freed_memory():
    job = worker.Job(
        model_path="unused",  # the model is passed in, as a forked worker inherits it
        model_name="m",
        version="1",
        features=Features(("a",), (np.dtype("float64"),), True),
        id_column=None,
        policy="fail",
        parts="unused",
        files=(),
        name_files=False,
    )
    pool = ProcessPoolExecutor(
        1, mp_context=get_context("fork"), initializer=worker.init, initargs=(job, object())
    )
    try:
        seen = pool.submit(_worker_view).result(timeout=120)
    finally:
        pool.shutdown()
    glibc = os.confstr("CS_GNU_LIBC_VERSION") is not None
    assert seen["pool"] == "system"
    assert seen["huge_pages"] is False
    assert seen["memory"] == {"arrow_pool": True, "numpy_small_pages": True, "mallopt": glibc}
    assert seen["threads_limited"]


def test_scoring_in_this_process_leaves_its_allocators_as_they_were(store: Store, tmp_path: Path):
    pixels_frame(store, 300).to_parquet(tmp_path / "pixels.parquet", index=False)
    pool, huge = pa.default_memory_pool().backend_name, _numpy_huge_pages()
    summary = score(
        "models:/digits@champion",
        str(tmp_path / "pixels.parquet"),
        str(tmp_path / "out"),
        id_column="id",
        chunk_size=100,
        workers=1,
        tracking_uri=store.tracking_uri,
    )
    assert summary.rows == 300
    assert (pa.default_memory_pool().backend_name, _numpy_huge_pages()) == (pool, huge)


def test_the_matrix_buffer_is_reused_and_grows_when_needed():
    buffer = MatrixBuffer()
    first = buffer.matrix(1000, 8, np.dtype("float64"))
    smaller = buffer.matrix(600, 8, np.dtype("float64"))
    assert smaller.shape == (600, 8) and smaller.flags.f_contiguous
    assert np.shares_memory(first, smaller)
    larger = buffer.matrix(2000, 8, np.dtype("float64"))
    assert larger.shape == (2000, 8) and not np.shares_memory(first, larger)
    other = buffer.matrix(10, 8, np.dtype("float32"))
    assert other.dtype == np.float32 and other.flags.f_contiguous


@pytest.mark.parametrize(
    ("width", "dtype", "rows"),
    [
        (64, "float64", 50_000),
        (64, "float32", 50_000),
        (1000, "float64", 2_000),
        (10**5, "int8", 1_000),
    ],
)
def test_the_default_chunk_size_follows_the_models_width(width: int, dtype: str, rows: int):
    names = tuple(f"c{i}" for i in range(width))
    features = Features(names, (np.dtype(dtype),) * width, True)
    assert score_module.default_chunk_size(features) == rows


def test_the_default_chunk_size_is_kept_when_a_run_resumes(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The chunk size a run started with is in its manifest: a resumed run cuts the same
    chunks even if the default has changed since."""
    frame = pixels_frame(store, 3000, seed=4)
    frame.to_parquet(tmp_path / "pixels.parquet", index=False, row_group_size=1000)
    args = ("models:/digits@champion", str(tmp_path / "pixels.parquet"), str(tmp_path / "out"))
    options = {"id_column": "id", "workers": 1, "tracking_uri": store.tracking_uri}
    monkeypatch.setattr(score_module, "CHUNK_ROWS", (1000,))
    first = score(*args, **options)
    assert (first.chunk_size, first.chunks) == (1000, 3)
    staging = tmp_path / ".out.partial"
    (tmp_path / "out").rename(staging)  # back to a run killed after its first chunk
    (staging / "_summary.json").unlink()
    (staging / "part-0000-000001.parquet").unlink()
    (staging / "part-0000-000002.parquet").unlink()
    lines = (staging / "_manifest.jsonl").read_text().splitlines()
    headers = [json.loads(line) for line in lines if "header" in line]
    assert headers[-1]["header"]["chunk_size"] == 1000
    monkeypatch.setattr(score_module, "CHUNK_ROWS", (700,))
    again = score(*args, **options)
    assert (again.chunk_size, again.chunks_resumed, again.chunks_scored) == (1000, 1, 2)
    got = pd.read_parquet(tmp_path / "out").sort_values("id")
    assert got["id"].tolist() == frame["id"].tolist()
    assert np.array_equal(got["prediction"], store.estimator.predict(frame[PIXELS]))


def test_a_negative_chunk_size_is_refused(store: Store, tmp_path: Path):
    pixels_frame(store, 10).to_csv(tmp_path / "pixels.csv", index=False)
    with pytest.raises(BatchError, match="chunk_size is -5; give a number of rows, or 0"):
        score(
            "models:/digits@champion",
            str(tmp_path / "pixels.csv"),
            str(tmp_path / "o"),
            chunk_size=-5,
        )


@pytest.mark.parametrize("frozen_before", [False, True])
def test_the_callers_objects_are_frozen_as_before_after_scoring_with_workers(
    store: Store, tmp_path: Path, frozen_before: bool
):
    import gc

    if frozen_before:  # as a pre-fork server does
        gc.freeze()
    try:
        pixels_frame(store, 3000, seed=5).to_parquet(tmp_path / "pixels.parquet", index=False)
        summary = score(
            "models:/digits@champion",
            str(tmp_path / "pixels.parquet"),
            str(tmp_path / "out"),
            id_column="id",
            chunk_size=1000,
            workers=2,
            tracking_uri=store.tracking_uri,
        )
        assert (summary.rows, summary.chunks) == (3000, 3)
        # unfrozen when it froze them, still frozen when the caller did (frozen objects
        # can still be freed, so the count itself may change)
        assert (gc.get_freeze_count() > 0) == frozen_before
    finally:
        gc.unfreeze()
