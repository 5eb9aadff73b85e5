"""Live cluster state written to the local store, as events: one place for both flavours."""

from __future__ import annotations

from scanflow.engines.events import StepEvent
from scanflow.engines.kubernetes.jobs import JobState
from scanflow.store import DONE_OK, TERMINAL, StepRecord, Store
from scanflow.store.store import now


def record_states(
    store: Store, run_id: str, steps: list[StepRecord], states: dict[str, JobState]
) -> list[StepEvent]:
    """Write each step's new state; returns the events of what changed."""
    events = []
    for step in steps:
        state = states.get(step.name)
        if state is None or step.status in DONE_OK:
            continue
        if state.status == step.status and state.message == (step.error or ""):
            continue
        fields: dict = {"status": state.status, "error": state.message or None}
        if state.started and not step.started_at:
            fields["started_at"] = state.started
        if state.status in TERMINAL:
            fields["finished_at"] = state.finished or now()
        store.update_step(step.id, **fields)
        for key, value in fields.items():
            setattr(step, key, value)
        duration = (
            step.finished_at - step.started_at
            if state.status in TERMINAL and step.started_at and step.finished_at
            else None
        )
        events.append(
            StepEvent(run_id, step.name, state.status, state.attempts, duration, state.message)
        )
    return events


def skip_or_cancel_rest(store: Store, run_id: str, steps: list[StepRecord], status: str) -> list:
    """Steps that never ended become ``cancelled`` (run cancelled) or ``skipped``."""
    events = []
    for step in steps:
        if step.status not in TERMINAL:
            why = "cancelled" if status == "cancelled" else "an upstream step failed"
            step_status = "cancelled" if status == "cancelled" else "skipped"
            store.update_step(step.id, status=step_status, error=why, finished_at=now())
            step.status = step_status
            events.append(StepEvent(run_id, step.name, step_status, message=why))
    return events


def failure_message(steps: list[StepRecord]) -> str:
    """``step(s) failed: a (why); b (why)``."""
    failed = [f"{s.name} ({s.error})" if s.error else s.name for s in steps if s.status == "failed"]
    return "step(s) failed: " + "; ".join(failed) if failed else "failed"


def finish_run(store: Store, run_id: str, status: str, error: str | None) -> StepEvent:
    """Record the run's end; returns its last event."""
    store.update_run(run_id, status=status, error=error, finished_at=now())
    return StepEvent(run_id, "", status, message=error or "")
