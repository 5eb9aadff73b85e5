"""An application's time schedules as Argo CronWorkflows, one per schedule.

``max_concurrent: 1`` becomes ``concurrencyPolicy: Forbid`` (more: ``Allow``; Argo cannot
cap at N), ``catch_up: none`` a ``startingDeadlineSeconds`` of 0 (a missed run is not
started late), ``latest``/``all`` a deadline of one period (Argo starts the latest missed
run), ``paused`` ``suspend``. Event schedules (watch, alias, after) need the local
scheduler (``scanflow up``) and are not rendered.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

from scanflow.engines.kubernetes.argo import TEMPLATE_RUN_ID, render_cron_workflow
from scanflow.engines.kubernetes.steps import plan_run
from scanflow.kube.names import dns_label
from scanflow.schedules.timing import next_due

if TYPE_CHECKING:
    from scanflow.kube.render.context import Context
    from scanflow.spec.model import Application, Executor
    from scanflow.spec.schedule import Schedule

log = logging.getLogger(__name__)


def cron_expression(schedule: Schedule) -> str:
    """The schedule in Argo's syntax: the cron fields, or ``@every Ns`` for an interval."""
    if schedule.cron is not None:
        return schedule.cron
    return f"@every {math.ceil(schedule.interval or 0)}s"


def starting_deadline(schedule: Schedule, now: float | None = None) -> int:
    """Seconds a missed run may still start late: 0 for ``catch_up: none``, else one period."""
    if schedule.catch_up == "none":
        return 0
    first = next_due(schedule, time.time() if now is None else now)
    return max(1, math.ceil(next_due(schedule, first) - first))


def render(ctx: Context) -> list[dict]:
    """One CronWorkflow per time schedule of the application."""
    app = ctx.app
    bodies = []
    for schedule in app.schedules:
        if not schedule.timed:
            log.warning(
                "schedule %s fires on an event (%s): it runs with the local scheduler "
                "(scanflow up), not as a CronWorkflow",
                schedule.name,
                schedule.kind,
            )
            continue
        wf = schedule.workflow

        def image_of(_app: Application, executor: Executor, wf: str = wf) -> str:
            return ctx.image(f"{wf}/{executor.name}", "executor")

        plans = plan_run(
            app,
            wf,
            TEMPLATE_RUN_ID,
            dict(schedule.parameters),
            image_of=image_of,
            tracking_uri=ctx.tracking_uri(),
            by_reference=True,
        )
        bodies.append(
            render_cron_workflow(
                app,
                wf,
                plans,
                ctx.namespace,
                cron_expression(schedule),
                timezone=schedule.timezone,
                name=dns_label(app.name, schedule.name, limit=52),
                parameters=dict(schedule.parameters),
                concurrency_policy="Forbid" if schedule.max_concurrent == 1 else "Allow",
                starting_deadline_seconds=starting_deadline(schedule),
                suspend=schedule.paused,
            )
        )
    return bodies
