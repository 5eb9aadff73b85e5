"""Batch scoring against a real MLflow store: outputs, resume after a kill, bad input."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import wait_for

from batch.conftest import GATE_ROW, PIXELS, Store, pixels_frame
from scanflow.batch import BatchError, BatchInputError, score


def _read(folder: Path, by: str) -> pd.DataFrame:
    return pd.read_parquet(folder).sort_values(by).reset_index(drop=True)


def _no_partial_output(output: Path) -> None:
    assert not output.exists()
    visible = [p.name for p in output.parent.iterdir() if not p.name.startswith(".")]
    assert not any(name.startswith(output.name) for name in visible)
    assert not list(output.parent.rglob("*.tmp"))


@pytest.mark.parametrize(("fmt", "workers"), [("csv", 2), ("parquet", 1)])
def test_scores_match_the_model_row_by_row(store: Store, tmp_path: Path, fmt: str, workers: int):
    frame = pixels_frame(store, 3000, seed=1)
    data = tmp_path / f"pixels.{fmt}"
    frame.to_csv(data, index=False) if fmt == "csv" else frame.to_parquet(data, index=False)
    out = tmp_path / "predictions"
    summary = score(
        "models:/digits@champion",
        str(data),
        str(out),
        id_column="id",
        chunk_size=700,
        workers=workers,
        tracking_uri=store.tracking_uri,
    )
    got = _read(out, "id")
    assert got["id"].tolist() == frame["id"].tolist()
    expected = store.estimator.predict(frame[PIXELS])
    assert np.array_equal(got["prediction"].to_numpy(), expected)
    assert set(got["model_version"]) == {"2"}
    assert (summary.rows, summary.chunks, summary.chunks_scored) == (3000, 5, 5)
    assert (summary.bad_rows, summary.model_version) == (0, "2")
    assert sorted(p.name for p in out.glob("part-*.parquet"))[-1] == "part-0000-000004.parquet"
    assert json.loads((out / "_summary.json").read_text())["rows"] == 3000
    assert not (tmp_path / ".predictions.partial").exists()


def test_row_numbers_are_the_ids_without_an_id_column(store: Store, tmp_path: Path):
    frame = pixels_frame(store, 500, seed=2).drop(columns="id")
    frame.to_parquet(tmp_path / "pixels.parquet", index=False)
    score(
        "models:/digits/1",
        str(tmp_path / "pixels.parquet"),
        str(tmp_path / "out"),
        chunk_size=128,
        workers=1,
        tracking_uri=store.tracking_uri,
    )
    got = _read(tmp_path / "out", "row")
    assert got["row"].tolist() == list(range(500))
    assert np.array_equal(got["prediction"], store.estimator.predict(frame[PIXELS]))
    assert set(got["model_version"]) == {"1"}


def test_counts_and_timings_are_logged_to_the_run(store: Store, tmp_path: Path):
    import mlflow
    from serving.conftest import mlflow_store

    pixels_frame(store, 400, seed=3).to_csv(tmp_path / "pixels.csv", index=False)
    with mlflow_store(store.tracking_uri), mlflow.start_run() as run:
        score(
            "models:/digits@champion",
            str(tmp_path / "pixels.csv"),
            str(tmp_path / "out"),
            chunk_size=150,
            workers=1,
            track=True,
        )
        logged = mlflow.MlflowClient().get_run(run.info.run_id).data
    assert logged.metrics["rows"] == 400
    assert logged.metrics["chunks"] == 3
    assert logged.metrics["bad_rows"] == 0
    assert logged.metrics["rows_per_second"] > 0
    assert logged.params["model_uri"] == "models:/digits@champion"
    assert logged.tags["scanflow.batch.model_version"] == "2"


def _chunks_done(staging: Path) -> int:
    manifest = staging / "_manifest.jsonl"
    if not manifest.is_file():
        return 0
    return sum('"key"' in line for line in manifest.read_text().splitlines())


def test_a_killed_run_resumes_without_rescoring_finished_chunks(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    frame = pixels_frame(store, 2000, seed=4)
    frame.loc[1250, "pixel_0"] = GATE_ROW  # chunk 12 (of 20) waits for the gate file
    frame.to_csv(tmp_path / "pixels.csv", index=False)
    out, staging = tmp_path / "out", tmp_path / ".out.partial"
    args = ["models:/gated@champion", str(tmp_path / "pixels.csv"), str(out), "--id-column", "id"]
    env = os.environ | {"BATCH_TEST_GATE": str(store.gate), "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanflow.cli.main", "score", *args, "--chunk-size", "100"]
        + ["--workers", "1", "--tracking-uri", store.tracking_uri],
        env=env,
        start_new_session=True,
    )
    try:
        wait_for(lambda: _chunks_done(staging) >= 12, what="12 chunks in the manifest")
        assert proc.poll() is None
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert _chunks_done(staging) == 12
    _no_partial_output(out)

    store.gate.touch()
    monkeypatch.setenv("BATCH_TEST_GATE", str(store.gate))
    summary = score(
        "models:/gated@champion",
        str(tmp_path / "pixels.csv"),
        str(out),
        id_column="id",
        chunk_size=100,
        workers=2,
        tracking_uri=store.tracking_uri,
    )
    assert (summary.chunks_resumed, summary.chunks_scored, summary.chunks) == (12, 8, 20)
    manifest = (out / "_manifest.jsonl").read_text().splitlines()
    assert sum('"key"' in line for line in manifest) == 20  # no chunk scored twice
    got = _read(out, "id")
    assert got["id"].tolist() == frame["id"].tolist()
    assert np.allclose(got["prediction"], frame[PIXELS].sum(axis=1))
    assert set(got["model_version"]) == {"1"}


def _corrupt_csv(store: Store, path: Path) -> pd.DataFrame:
    frame = pixels_frame(store, 1000, seed=5)
    frame.to_csv(path, index=False)
    lines = path.read_text().splitlines()
    fields = lines[1 + 450].split(",")
    fields[5] = "abc"  # pixel_4: not a number
    lines[1 + 450] = ",".join(fields)
    lines[1 + 451] = ",".join(lines[1 + 451].split(",")[:40])  # a cut line
    fields = lines[1 + 820].split(",")
    fields[10] = ""  # a missing value
    lines[1 + 820] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    return frame


def test_a_corrupt_csv_is_scored_without_its_bad_rows_with_skip(store: Store, tmp_path: Path):
    frame = _corrupt_csv(store, tmp_path / "pixels.csv")
    summary = score(
        "models:/digits@champion",
        str(tmp_path / "pixels.csv"),
        str(tmp_path / "out"),
        id_column="id",
        chunk_size=300,
        workers=1,
        on_error="skip",
        tracking_uri=store.tracking_uri,
    )
    assert (summary.rows, summary.bad_rows, summary.bad_chunks) == (997, 3, 2)
    reasons = dict((row, reason) for row, reason in summary.bad_examples)
    assert set(reasons) == {450, 451, 820}
    assert "is not of type float64" in reasons[450]
    assert "has 40 fields, the header has 65" in reasons[451]
    assert reasons[820] == "column 'pixel_9': missing value"
    got = _read(tmp_path / "out", "id")
    good = frame.drop(index=[450, 451, 820])
    assert got["id"].tolist() == good["id"].tolist()
    assert np.array_equal(got["prediction"], store.estimator.predict(good[PIXELS]))


def test_a_corrupt_csv_fails_naming_file_chunk_and_row(store: Store, tmp_path: Path):
    _corrupt_csv(store, tmp_path / "pixels.csv")
    out = tmp_path / "out"
    with pytest.raises(BatchInputError) as failure:
        score(
            "models:/digits@champion",
            str(tmp_path / "pixels.csv"),
            str(out),
            chunk_size=300,
            workers=2,
            tracking_uri=store.tracking_uri,
        )
    message = str(failure.value)  # the first bad chunk a worker finishes (two run at once)
    assert re.search(
        r"pixels\.csv, chunk (1 \(rows 300\.\.\): row 450: column 'pixel_4'"
        r"|2 \(rows 600\.\.\): row 820: column 'pixel_9')",
        message,
    ), message
    assert "on_error: skip" in message
    _no_partial_output(out)


def test_an_unreadable_parquet_file_is_skipped_or_fails(store: Store, tmp_path: Path):
    folder = tmp_path / "in"
    folder.mkdir()
    frame = pixels_frame(store, 600, seed=6)
    frame.to_parquet(folder / "a.parquet", index=False)
    (folder / "b.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(BatchInputError, match=r"b\.parquet is not a readable Parquet file"):
        score(
            "models:/digits@champion",
            str(folder),
            str(tmp_path / "out1"),
            workers=1,
            tracking_uri=store.tracking_uri,
        )
    _no_partial_output(tmp_path / "out1")
    summary = score(
        "models:/digits@champion",
        str(folder),
        str(tmp_path / "out2"),
        id_column="id",
        workers=1,
        on_error="skip",
        tracking_uri=store.tracking_uri,
    )
    assert summary.skipped_files == [str(folder / "b.parquet")]
    got = _read(tmp_path / "out2", "id")
    assert (len(got), set(got["file"])) == (600, {"a.parquet"})
    assert np.array_equal(got["prediction"], store.estimator.predict(frame[PIXELS]))


def test_missing_columns_and_missing_model_are_clear_errors(store: Store, tmp_path: Path):
    pixels_frame(store, 50).drop(columns=["pixel_63", "pixel_7"]).to_csv(
        tmp_path / "few.csv", index=False
    )
    with pytest.raises(BatchError) as failure:
        score(
            "models:/digits@champion",
            str(tmp_path / "few.csv"),
            str(tmp_path / "o1"),
            tracking_uri=store.tracking_uri,
        )
    assert "few.csv" in str(failure.value)
    assert "lacks 2 column(s) the model's signature needs: pixel_7, pixel_63" in str(failure.value)
    with pytest.raises(BatchError, match="cannot score with model models:/nope@champion"):
        score(
            "models:/nope@champion",
            str(tmp_path / "few.csv"),
            str(tmp_path / "o2"),
            tracking_uri=store.tracking_uri,
        )
    with pytest.raises(BatchError, match="on_error is 'ignore'; use one of: fail, skip"):
        score(
            "models:/digits@champion",
            str(tmp_path / "few.csv"),
            str(tmp_path / "o3"),
            on_error="ignore",
        )


def _parquet_in_row_groups(
    store: Store, path: Path, corrupt_group: int | None = None
) -> pd.DataFrame:
    """3000 rows in row groups of 1000; ``corrupt_group``'s pages overwritten."""
    import pyarrow.parquet as pq

    frame = pixels_frame(store, 3000, seed=7)
    frame.to_parquet(path, index=False, row_group_size=1000)
    if corrupt_group is not None:
        data = bytearray(path.read_bytes())
        group = pq.ParquetFile(path).metadata.row_group(corrupt_group)
        for j in range(group.num_columns):
            column = group.column(j)
            begin = (column.dictionary_page_offset or column.data_page_offset) + 20
            end = begin + column.total_compressed_size - 24
            data[begin:end] = b"\xff" * (end - begin)
        path.write_bytes(bytes(data))
    return frame


def test_parquet_row_groups_are_read_by_the_workers(store: Store, tmp_path: Path):
    frame = _parquet_in_row_groups(store, tmp_path / "pixels.parquet")
    summary = score(
        "models:/digits@champion",
        str(tmp_path / "pixels.parquet"),
        str(tmp_path / "out"),
        id_column="id",
        chunk_size=400,  # chunks across row group ends
        workers=2,
        tracking_uri=store.tracking_uri,
    )
    assert (summary.rows, summary.chunks) == (3000, 8)
    got = _read(tmp_path / "out", "id")
    assert got["id"].tolist() == frame["id"].tolist()
    assert np.array_equal(got["prediction"], store.estimator.predict(frame[PIXELS]))


def test_a_corrupt_parquet_row_group_is_skipped_or_fails(store: Store, tmp_path: Path):
    frame = _parquet_in_row_groups(store, tmp_path / "pixels.parquet", corrupt_group=1)
    args = ("models:/digits@champion", str(tmp_path / "pixels.parquet"))
    options = {"id_column": "id", "chunk_size": 500, "workers": 2}
    with pytest.raises(BatchInputError, match=r"pixels\.parquet, chunk [23] \(rows 1[05]00\.\.\)"):
        score(*args, str(tmp_path / "out1"), tracking_uri=store.tracking_uri, **options)
    _no_partial_output(tmp_path / "out1")
    summary = score(
        *args, str(tmp_path / "out2"), on_error="skip", tracking_uri=store.tracking_uri, **options
    )
    assert (summary.rows, summary.bad_rows, summary.bad_chunks) == (2000, 1000, 2)
    assert sorted(row for row, _ in summary.bad_examples) == [1000, 1500]
    got = _read(tmp_path / "out2", "id")
    good = frame.drop(index=range(1000, 2000))
    assert got["id"].tolist() == good["id"].tolist()
    assert np.array_equal(got["prediction"], store.estimator.predict(good[PIXELS]))


def test_parts_written_before_a_crash_but_not_recorded_are_not_scored_again(
    store: Store, tmp_path: Path
):
    """A crash between a part's rename and its manifest line: the part's footer counts."""
    frame = _parquet_in_row_groups(store, tmp_path / "pixels.parquet")
    args = ("models:/digits@champion", str(tmp_path / "pixels.parquet"), str(tmp_path / "out"))
    options = {"id_column": "id", "chunk_size": 500, "workers": 2}
    score(*args, tracking_uri=store.tracking_uri, **options)
    staging = tmp_path / ".out.partial"
    (tmp_path / "out").rename(staging)  # back to the state of a run killed at its end
    (staging / "_summary.json").unlink()
    manifest = (staging / "_manifest.jsonl").read_text().splitlines()
    (staging / "_manifest.jsonl").write_text("\n".join(manifest[:3]) + "\n")  # 2 of 6 kept
    summary = score(*args, tracking_uri=store.tracking_uri, **options)
    assert (summary.chunks_resumed, summary.chunks_scored, summary.chunks) == (6, 0, 6)
    keys = [json.loads(line).get("key") for line in (tmp_path / "out/_manifest.jsonl").open()]
    assert sorted(k for k in keys if k) == [f"0000-{i:06d}" for i in range(6)]
    got = _read(tmp_path / "out", "id")
    assert got["id"].tolist() == frame["id"].tolist()
