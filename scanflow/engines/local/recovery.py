"""Runs of other processes: resume one (refuse a live one, stop orphaned step processes,
reset unfinished steps), cancel one whose engine is gone, follow one through the store."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterator

from scanflow.engines.events import StepEvent
from scanflow.engines.local.process import kill_group
from scanflow.engines.local.ref import LocalProcessRef
from scanflow.errors import EngineError
from scanflow.store import DONE_OK, TERMINAL, RunRecord, StepRecord, Store
from scanflow.store.store import now

POLL_SECONDS = 0.2

log = logging.getLogger(__name__)


def stop_orphan(step: StepRecord) -> None:
    """Kill the process group of ``step`` if it is recorded running and still alive."""
    process = LocalProcessRef.from_ref(step.engine_ref)
    if step.status == "running" and process.pid and process.alive():
        log.warning("stopping orphaned process group %d of step %s", process.pid, step.name)
        kill_group(process.pid, signal.SIGKILL)


def prepare_resume(store: Store, run_id: str) -> RunRecord:
    """Make ``run_id`` ready to run again; returns its record."""
    run = store.get_run(run_id)
    if run.status == "succeeded":
        raise EngineError(f"run {run.id} already succeeded; nothing to resume")
    if run.status in ("running", "pending") and engine_alive(run):
        raise EngineError(
            f"run {run.id} is still running under engine process {_engine_pid(run)}; "
            "stop it first (Ctrl-C or kill it) or wait for it to end"
        )
    for step in store.steps(run.id):
        if step.status in DONE_OK:
            continue
        stop_orphan(step)
        store.update_step(step.id, status="pending", error=None, engine_ref=None, finished_at=None)
    return run


def cancel_orphaned(store: Store, run: RunRecord) -> None:
    """Cancel ``run`` of another process: refused while that engine lives; else its
    orphaned step processes are killed and its unfinished steps and itself end cancelled."""
    if engine_alive(run):
        raise EngineError(
            f"run {run.id} is running under engine process {_engine_pid(run)}; "
            "cancel it there (Ctrl-C or SIGTERM to that process)"
        )
    for step in store.steps(run.id):
        if step.status in TERMINAL:
            continue
        stop_orphan(step)
        store.update_step(step.id, status="cancelled", error="cancelled", finished_at=now())
    store.update_run(
        run.id, status="cancelled", error="cancelled", finished_at=now(), engine_ref=None
    )


def poll_events(store: Store, run_id: str) -> Iterator[StepEvent]:
    """Events of a run driven by another process, read from the store until it is over
    (``interrupted`` when its engine died)."""
    seen: dict[str, str] = {}
    while True:
        run = store.get_run(run_id)
        for step in store.steps(run_id):
            if seen.get(step.name, "pending") != step.status:
                seen[step.name] = step.status
                duration = (
                    step.finished_at - step.started_at
                    if step.finished_at and step.started_at
                    else None
                )
                yield StepEvent(run_id, step.name, step.status, 0, duration, step.error or "")
        if run.status in TERMINAL:
            yield StepEvent(run_id, "", run.status, message=run.error or "")
            return
        if interrupted(run):
            yield StepEvent(run_id, "", "interrupted", message="its engine process is gone")
            return
        time.sleep(POLL_SECONDS)


def engine_alive(run: RunRecord) -> bool:
    """Whether another live process is the engine recorded for ``run`` (PID and start time)."""
    import os

    engine = LocalProcessRef.from_ref(run.engine_ref)
    return engine.pid != os.getpid() and engine.alive()


def interrupted(run: RunRecord) -> bool:
    """Whether ``run`` is recorded as running or pending but its engine is gone (killed)."""
    return run.status in ("running", "pending") and LocalProcessRef.from_ref(run.engine_ref).gone()


def _engine_pid(run: RunRecord) -> int | None:
    return LocalProcessRef.from_ref(run.engine_ref).pid


def resume_command(run: RunRecord) -> str:
    """The command that resumes ``run`` (with ``--app`` unless run from its folder)."""
    import shlex
    from pathlib import Path

    app = (
        ""
        if Path.cwd().resolve() == Path(run.base_dir).resolve()
        else f" --app {shlex.quote(run.base_dir)}"
    )
    return f"scanflow{app} run --resume {run.id}"
