"""Actions and logs of the API layer on a real local engine."""

from __future__ import annotations

from pathlib import Path

from conftest import wait_for, write_files

from scanflow.api import runs as runs_api
from scanflow.api.workspace import AppHandle
from scanflow.spec import load_project

from .apps import STEPS, pipeline


def settle(handle: AppHandle) -> None:
    """Let the engine's runs end their tracking, then close ``handle``."""
    engine = handle.engine()
    for run in handle.store.list_runs():
        for _ in engine.watch(run.id):
            pass
    handle.close()


def test_a_retried_run_never_reads_as_its_old_end(tmp_path: Path) -> None:
    root = tmp_path / "vision"
    write_files(root, {"scanflow.yaml": pipeline("vision", "vision"), "steps.py": STEPS})
    fail = tmp_path / "fail"
    fail.touch()
    handle = AppHandle(load_project(root))
    try:
        run_id = runs_api.submit(handle, "pipe", {"fail": str(fail)}).run_id
        assert run_id is not None

        def ended() -> str | None:
            status = runs_api.get_record(handle, run_id).status
            return status if status in runs_api.ENDED else None

        assert wait_for(ended, what="the first attempt to end") == "failed"
        first = runs_api.get_record(handle, run_id)
        fail.unlink()
        runs_api.resume(handle, run_id)
        after = runs_api.get_record(handle, run_id)  # at once, no waiting
        assert after.status in ("pending", "running") or after.finished_at != first.finished_at
        assert wait_for(ended, what="the retry to end") == "succeeded"
        attempts = {s.name: len(s.attempts) for s in runs_api.get_run(handle, run_id).steps}
        assert attempts == {"prepare": 1, "train": 2, "report": 1}
    finally:
        settle(handle)


def test_a_10_mb_log_is_read_in_blocks_never_whole(tmp_path: Path) -> None:
    import tracemalloc

    from scanflow.engines.local.logs import CHUNK_BYTES

    root = tmp_path / "vision"
    write_files(root, {"scanflow.yaml": pipeline("vision", "vision"), "steps.py": STEPS})
    handle = AppHandle(load_project(root))
    try:
        run_id = runs_api.submit(handle, "pipe", {"loud": 10_000_000}).run_id
        assert run_id is not None
        wait_for(
            lambda: runs_api.get_record(handle, run_id).status in runs_api.ENDED,
            what="the loud run to end",
        )
        tracemalloc.start()
        sizes, lines, last = [], 0, ""
        for chunk in runs_api.logs(handle, run_id, "prepare"):
            sizes.append(len(chunk))
            lines += chunk.count("\n")
            last = (last + chunk)[-200:]
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert sum(sizes) > 9_900_000 and max(sizes) <= CHUNK_BYTES, (sum(sizes), max(sizes))
        assert lines == 100_000 + 2  # the attempt's header, the note, the 100-byte lines
        assert last.endswith("000099999 <b>é</b> " + "x" * 79 + "\n")
        assert peak < 5_000_000, f"reading the log held {peak} bytes at once"  # whole: >20 MB
    finally:
        settle(handle)
