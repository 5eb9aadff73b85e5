"""Actions of the API layer on a real local engine: what a client reads right after one."""

from __future__ import annotations

from pathlib import Path

from conftest import wait_for, write_files

from scanflow.api import runs as runs_api
from scanflow.api.workspace import AppHandle
from scanflow.spec import load_project

from .apps import STEPS, pipeline


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
        handle.close()
