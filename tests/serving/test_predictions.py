"""The prediction log on its own: segments, bounds, torn lines, cursors and dropping."""

from __future__ import annotations

import shutil

import numpy as np
import orjson
from conftest import wait_for

from scanflow.serving.predictions import (
    OPEN_SUFFIX,
    SEALED_SUFFIX,
    PredictionLog,
    PredictionLogWriter,
    WriterOptions,
    seal_orphans,
)

from .conftest import small_disk


def record(i: int) -> dict:
    return {
        "ts": 1000.0 + i,
        "id": f"r{i}",
        "model_version": "1",
        "latency_ms": 0.5,
        "inputs": np.full((1, 4), float(i)),
        "outputs": np.array([i]),
    }


def test_records_roundtrip_with_numpy_values(tmp_path):
    writer = PredictionLogWriter(tmp_path, WriterOptions(flush_interval=0.01))
    for i in range(5):
        writer.append(record(i))
    writer.close()
    log = PredictionLog(tmp_path)
    assert [r["id"] for r in log.read()] == [f"r{i}" for i in range(5)]
    assert log.tail(2)[-1]["inputs"] == [[4.0, 4.0, 4.0, 4.0]]
    assert [r["id"] for r in log.read(since=1001.0, until=1003.0)] == ["r1", "r2"]
    assert all(
        p.name.endswith(SEALED_SUFFIX) and not p.name.endswith(OPEN_SUFFIX) for p in log.segments()
    )  # close() seals the segment


def test_segments_rotate_and_the_folder_stays_under_its_limit(tmp_path):
    options = WriterOptions(flush_interval=0.01, segment_bytes=2_000, max_bytes=6_000)
    writer = PredictionLogWriter(tmp_path, options)
    for i in range(400):
        writer.append(record(i))
    writer.close()
    log = PredictionLog(tmp_path)
    total = sum(p.stat().st_size for p in log.segments())
    assert len(log.segments()) >= 2
    assert total <= 6_000 + 2_000 + 200  # the limit, plus at most one segment being filled
    ids = [int(r["id"][1:]) for r in log.read()]
    assert ids == sorted(ids) and ids[-1] == 399  # the oldest went first


def test_a_torn_last_line_is_skipped_and_orphans_are_sealed(tmp_path):
    dead = tmp_path / f"100-{2**22 + 7}-1{OPEN_SUFFIX}"  # a pid that cannot exist
    dead.write_bytes(orjson.dumps({"ts": 1.0, "id": "a"}) + b"\n" + b'{"ts": 2.0, "id": "b')
    assert [r["id"] for r in PredictionLog(tmp_path).read()] == ["a"]
    assert seal_orphans(tmp_path) == 1
    assert [p.name for p in PredictionLog(tmp_path).segments()] == [f"100-{2**22 + 7}-1.jsonl"]


def test_a_cursor_returns_only_new_records(tmp_path):
    log = PredictionLog(tmp_path)
    writer = PredictionLogWriter(tmp_path, WriterOptions(flush_interval=0.01))
    for i in range(3):
        writer.append(record(i))
    first, cursor = wait_for(
        lambda: (r := log.read_new()) and len(r[0]) == 3 and r, 10, "three records"
    )
    for i in range(3, 5):
        writer.append(record(i))
    writer.close()
    second, cursor = log.read_new(cursor)
    assert [r["id"] for r in second] == ["r3", "r4"]
    assert log.read_new(cursor)[0] == []


def test_a_full_queue_drops_and_counts_instead_of_waiting(tmp_path):
    dropped: list[tuple[str, int]] = []
    writer = PredictionLogWriter(
        tmp_path,
        WriterOptions(flush_interval=60, queue_size=10),
        on_dropped=lambda reason, n: dropped.append((reason, n)),
    )
    for i in range(25):
        writer.append(record(i))
    assert writer.dropped == 15 and dropped == [("queue_full", 1)] * 15
    writer.close()
    assert PredictionLog(tmp_path).count() == 10


def test_the_writer_wakes_when_flush_bytes_wait_not_only_on_its_interval(tmp_path):
    # an interval of ten minutes: only the size trigger can write these records
    writer = PredictionLogWriter(tmp_path, WriterOptions(flush_interval=600, flush_bytes=2_000))
    appended = 0
    while writer.written == 0 and writer.queued_bytes < 2_000:
        writer.append(record(appended))
        appended += 1
    wait_for(lambda: writer.written == appended, 60, "a write before the interval")
    assert writer.queued_bytes == 0
    writer.close()


def test_the_queue_is_bounded_in_bytes(tmp_path):
    dropped: list[tuple[str, int]] = []
    writer = PredictionLogWriter(  # a writer that never wakes before close(): a stuck sink
        tmp_path,
        WriterOptions(flush_interval=600, flush_bytes=10**9, queue_bytes=5_000),
        on_dropped=lambda reason, n: dropped.append((reason, n)),
    )
    sizes = [
        len(orjson.dumps(record(i), option=orjson.OPT_SERIALIZE_NUMPY)) + 1 for i in range(200)
    ]
    for i in range(200):
        writer.append(record(i))
    kept, queued = 0, 0
    while queued < 5_000:  # appended while under the bound: the last one may cross it
        queued += sizes[kept]
        kept += 1
    assert writer.queued_bytes == queued <= 5_000 + max(sizes)
    assert writer.dropped == 200 - kept and {r for r, _ in dropped} == {"queue_full"}
    writer.close()
    assert PredictionLog(tmp_path).count() == kept
    assert writer.queued_bytes == 0


def test_many_lines_are_written_whole_and_in_order(tmp_path):
    """More lines than one writev takes (1,024), of different sizes."""
    writer = PredictionLogWriter(tmp_path, WriterOptions(flush_interval=600, flush_bytes=10**9))
    for i in range(3_000):
        writer.append({**record(i), "inputs": np.full((1, i % 7 + 1), float(i))})
    writer.close()
    records = list(PredictionLog(tmp_path).read())
    assert [r["id"] for r in records] == [f"r{i}" for i in range(3_000)]
    assert records[2_999]["inputs"] == [[2_999.0] * (2_999 % 7 + 1)]


def test_a_failing_disk_drops_and_counts(tmp_path):
    folder = tmp_path / "log"
    dropped: list[tuple[str, int]] = []
    writer = PredictionLogWriter(
        folder,
        WriterOptions(flush_interval=0.01),
        on_dropped=lambda reason, n: dropped.append((reason, n)),
    )
    shutil.rmtree(folder)  # every write now fails
    for i in range(3):
        writer.append(record(i))
    wait_for(lambda: writer.dropped == 3, 10, "three dropped records")
    writer.close()
    assert {reason for reason, _ in dropped} == {"write_error"}


def test_a_disk_that_fills_up_leaves_whole_lines_and_no_empty_segments(tmp_path):
    folder = tmp_path / "log"
    with small_disk(folder, size="64k"):
        writer = PredictionLogWriter(folder, WriterOptions(flush_interval=0.01))
        appended = 0
        while writer.dropped == 0 or appended < 1_000:  # past the point the disk is full
            for _ in range(10):
                writer.append(record(appended))
                appended += 1
            wait_for(lambda n=appended: writer.written + writer.dropped == n, 10, "a flush")
            assert appended < 10_000, "the disk never filled up"
        writer.close()
        segments = PredictionLog(folder).segments()
        assert segments and all(p.stat().st_size > 0 for p in segments)
        for path in segments:  # every line is whole: torn writes were cut back
            lines = path.read_bytes().splitlines(keepends=True)
            assert all(line.endswith(b"\n") and orjson.loads(line) for line in lines)
        assert PredictionLog(folder).count() == writer.written > 0


def test_cli_reads_and_exports_a_log(tmp_path, capsys):
    import pandas as pd

    from scanflow.cli.main import main

    folder = tmp_path / ".scanflow" / "predictions" / "digits"
    writer = PredictionLogWriter(folder, WriterOptions(flush_interval=0.01))
    for i in range(5):
        writer.append(record(i))
    writer.close()
    # the only service of the app folder is found without naming it
    assert main(["--app", str(tmp_path), "predictions", "tail", "-n", "2"]) == 0
    shown = capsys.readouterr().out
    assert "r4" in shown and "r3" in shown and "r2" not in shown
    out = tmp_path / "window.parquet"
    assert (
        main(
            [
                "predictions",
                "export",
                "--dir",
                str(folder),
                "--format",
                "parquet",
                "-O",
                str(out),
                "--since",
                "1001",
                "--until",
                "1003",
            ]
        )
        == 0
    )
    assert "wrote 2 prediction(s)" in capsys.readouterr().out
    frame = pd.read_parquet(out)
    assert frame["id"].tolist() == ["r1", "r2"] and frame["model_version"].tolist() == ["1"] * 2
    lines = tmp_path / "all.jsonl"
    assert main(["--app", str(tmp_path), "predictions", "export", "digits", "-O", str(lines)]) == 0
    rows = [orjson.loads(line) for line in lines.read_bytes().splitlines()]
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(5)]
    assert rows[2]["inputs"] == [[2.0] * 4] and rows[2]["outputs"] == [2]


def test_tail_follow_prints_new_records_until_interrupted(tmp_path):
    import signal
    import subprocess
    import sys

    writer = PredictionLogWriter(tmp_path, WriterOptions(flush_interval=0.01))
    writer.append(record(0))
    wait_for(lambda: writer.written == 1, 10, "the first record")
    out = tmp_path / "tail.out"
    with out.open("wb") as f:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scanflow.cli.main",
                "predictions",
                "tail",
                "--dir",
                str(tmp_path),
                "-f",
                "-o",
                "json",
            ],
            stdout=f,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: b'"r0"' in out.read_bytes(), 60, "the existing record")
        writer.append(record(1))
        wait_for(lambda: b'"r1"' in out.read_bytes(), 30, "the new record")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        writer.close()
    assert proc.returncode == 0 and out.read_bytes().count(b'"r0"') == 1
