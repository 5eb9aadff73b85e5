"""Running a converted notebook's workflow with an engine, and reading back which notebook
cell a failed step failed in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scanflow.engines.base import Engine
from scanflow.spec.loader import Project
from scanflow.store.models import RunRecord

REPORT_PREFIX = "scanflow: "


def run_workflow(
    project: Project,
    workflow: str,
    on_event: Callable[[Any], None] | None = None,
    target: str = "local",
    use_cache: bool = True,
) -> tuple[Engine, RunRecord]:
    """Run ``workflow`` to its end with the engine ``target`` (from the engine registry)."""
    from scanflow.engines.base import follow
    from scanflow.engines.registry import get_engine

    engine = get_engine(project, target)
    run_id = engine.submit(workflow, use_cache=use_cache)
    return engine, follow(engine, run_id, on_event)


def cell_errors(project: Project, engine: Engine, run: RunRecord) -> list[str]:
    """``step 'x': failed in notebook cell N, line L: ...`` for each failed step of ``run``
    (what its step script reported last), or the engine's message when it reported none."""
    from scanflow.store import Store

    store = Store.for_state_dir(project.state_dir)
    found = []
    for step in store.steps(run.id):
        if step.status != "failed":
            continue
        text = "".join(engine.logs(run.id, step.name))
        reports = [ln for ln in text.splitlines() if ln.startswith(REPORT_PREFIX)]
        said = reports[-1][len(REPORT_PREFIX) :] if reports else step.error or "failed"
        found.append(f"step {step.name!r}: {said}")
    return found
