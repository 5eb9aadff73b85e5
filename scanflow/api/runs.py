"""Runs of an application: the paged table (filtered and sorted in SQL), one run with its
steps and attempts, its logs and artifacts, and the actions on runs (start a workflow,
retry from the failed step, cancel) through the engine registry."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import ColumnElement, func, select, text

from scanflow.api.errors import Conflict, Invalid, NotFound
from scanflow.api.views import (
    ActionResult,
    AttemptView,
    Page,
    RunSummary,
    RunView,
    StepSpecView,
    StepView,
    WorkflowView,
)
from scanflow.api.workspace import AppHandle, store_errors
from scanflow.engines.refs import attempt_log
from scanflow.errors import EngineError, SpecError, StoreError
from scanflow.store import TERMINAL, RunRecord, Store
from scanflow.store.param_models import RunParamRecord

log = logging.getLogger(__name__)

MAX_LIMIT = 500
SORTABLE = ("created_at", "started_at", "finished_at", "status", "workflow", "id")
ENDED = TERMINAL | {"interrupted"}
RESTART_SECONDS = 60.0  # how long a retry waits for the engine to record the run running
RESTART_POLL_SECONDS = 0.02
STATISTICS_SECONDS = 600.0  # how often the runs list refreshes SQLite's planner statistics
_FILTER = re.compile(r"^([A-Za-z0-9_.\-]+)\s*(>=|<=|!=|=|>|<)\s*(.*)$")


@dataclass
class RunQuery:
    """Which runs, in which order, which page.

    ``params`` holds filters on parameters such as ``lr>=0.1`` or ``dataset=digits``
    (numbers compare as numbers), ``metrics`` filters on the runs' last metric values
    (``accuracy>=0.9``); ``sort`` is a field of :data:`SORTABLE`, ``param.NAME`` or
    ``metric.NAME``, ``-`` first for descending. ``with_metrics`` fills each run's metrics.
    """

    status: list[str] = field(default_factory=list)
    workflow: str | None = None
    params: list[str] = field(default_factory=list)
    sort: str = "-created_at"
    offset: int = 0
    limit: int = 50
    metrics: list[str] = field(default_factory=list)
    with_metrics: bool = False
    engine: str | None = None

    def __post_init__(self) -> None:
        self.status = [s for s in self.status if s.strip()]  # empty form fields mean "any"
        self.params = [p for p in self.params if p.strip()]
        self.metrics = [m for m in self.metrics if m.strip()]

    @property
    def uses_metrics(self) -> bool:
        return bool(self.metrics or self.with_metrics or "metric." in self.sort)

    def check(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise Invalid(f"limit {self.limit} is out of range: give 1 to {MAX_LIMIT}")
        if self.offset < 0:
            raise Invalid(f"offset {self.offset} is negative")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def param_condition(text: str) -> ColumnElement[bool]:
    """The SQL condition of one parameter filter (``name op value``): the runs found in the
    parameters' index (``run_params``); a number compares with numbers, a text with texts."""
    from scanflow.api.metrics import COMPARISONS

    found = _FILTER.match(text.strip())
    if not found:
        raise Invalid(
            f"parameter filter {text!r} is not NAME<op>VALUE with op one of = != > < >= <= "
            "(e.g. lr>=0.1)"
        )
    name, op, raw = found.groups()
    value: float | str | None = _number(raw)
    column: Any = RunParamRecord.num_value
    if value is None:
        if op not in ("=", "!="):
            raise Invalid(f"parameter filter {text!r} compares text: only = and != apply")
        column, value = RunParamRecord.text_value, raw
    matching = select(RunParamRecord.run_id).where(
        RunParamRecord.key == name, COMPARISONS[op](column, value)
    )
    return RunRecord.id.in_(matching)


def refresh_statistics(app: AppHandle) -> None:
    """Let SQLite's planner know the tables' sizes (``ANALYZE``, at most every
    :data:`STATISTICS_SECONDS`), so that a selective parameter filter is answered from the
    parameters' index instead of reading every run of the application. PostgreSQL keeps its
    statistics itself; a store too busy to analyze now is analyzed on a later call."""
    now = time.monotonic()
    if now - app.analyzed_at < STATISTICS_SECONDS:
        return
    app.analyzed_at = now
    try:
        with app.store.session() as s:
            if s.get_bind().dialect.name == "sqlite":
                s.execute(text("ANALYZE runs"))
                s.execute(text("ANALYZE run_params"))
    except Exception as exc:  # noqa: BLE001 - the query works without; the plan may be slower
        log.debug("could not analyze the store of %s: %s", app.name, exc)


def metric_condition(text: str) -> ColumnElement[bool]:
    """The SQL condition of one metric filter (``name op number``)."""
    from scanflow.api import metrics

    found = _FILTER.match(text.strip())
    if not found:
        raise Invalid(
            f"metric filter {text!r} is not NAME<op>NUMBER with op one of = != > < >= <= "
            "(e.g. accuracy>=0.9)"
        )
    name, op, raw = found.groups()
    return metrics.condition(name, op, metrics.check_number(text, raw))


def _order(sort: str) -> Any:
    from scanflow.api import metrics

    descending = sort.startswith("-")
    key = sort.lstrip("-+")
    if key.startswith("param."):
        # read from each run's JSON: at 10,000 runs faster than a lookup per run
        column: Any = RunRecord.parameters[key.removeprefix("param.")].as_float()
    elif key.startswith("metric."):
        column = metrics.sort_column(key.removeprefix("metric."))
    elif key in SORTABLE:
        column = getattr(RunRecord, key)
    else:
        raise Invalid(
            f"cannot sort by {key!r}: use one of {', '.join(SORTABLE)}, param.NAME or "
            "metric.NAME ('-' first for descending)"
        )
    ordered = column.desc() if descending else column.asc()
    return ordered if key in SORTABLE else ordered.nulls_last()  # runs without it last


def _duration(start: float | None, end: float | None) -> float | None:
    return None if start is None else (end or time.time()) - start


def shown_status(run: RunRecord) -> str:
    """The stored status, or ``interrupted`` for a local run whose engine process died."""
    if run.engine == "local" and run.status in ("pending", "running"):
        from scanflow.engines.local.recovery import interrupted

        if interrupted(run):
            return "interrupted"
    return run.status


def summary(run: RunRecord) -> RunSummary:
    return RunSummary(
        id=run.id,
        app=run.app,
        team=run.team,
        workflow=run.workflow,
        status=shown_status(run),
        engine=run.engine,
        parameters=run.parameters or {},
        error=run.error,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration=_duration(run.started_at, run.finished_at),
    )


def list_runs(app: AppHandle, query: RunQuery) -> Page[RunSummary]:
    """One page of ``app``'s runs matching ``query``, counted and sorted by the database."""
    from scanflow.api import metrics

    query.check()
    if query.uses_metrics:
        metrics.sync(app)
    if query.params:
        refresh_statistics(app)
    conditions: list[ColumnElement[bool]] = [RunRecord.app == app.name]
    if query.status:
        conditions.append(RunRecord.status.in_(query.status))
    if query.workflow:
        conditions.append(RunRecord.workflow == query.workflow)
    if query.engine:
        conditions.append(RunRecord.engine == query.engine)
    conditions += [param_condition(p) for p in query.params]
    conditions += [metric_condition(m) for m in query.metrics]
    order = [_order(query.sort), RunRecord.id.desc()]
    with store_errors(f"application {app.name!r}"), app.store.session() as s:
        total = s.scalar(select(func.count()).select_from(RunRecord).where(*conditions)) or 0
        rows = s.scalars(
            select(RunRecord)
            .where(*conditions)
            .order_by(*order)
            .offset(query.offset)
            .limit(query.limit)
        ).all()
        items = [summary(r) for r in rows]
    if query.uses_metrics:
        found = metrics.values(app, [r.id for r in items])
        for item in items:
            item.metrics = found[item.id]
    return Page[RunSummary](items=items, total=total, offset=query.offset, limit=query.limit)


def get_record(app: AppHandle, run_id: str) -> RunRecord:
    """The record of ``app``'s run ``run_id`` (exact id); :class:`NotFound` otherwise."""
    with store_errors(f"application {app.name!r}"), app.store.session() as s:
        run = s.get(RunRecord, run_id)
    if run is None or run.app != app.name:
        raise NotFound(f"no run {run_id!r} in application {app.name!r}")
    return run


def get_run(app: AppHandle, run_id: str) -> RunView:
    """Run ``run_id`` with its steps and their attempts."""
    run = get_record(app, run_id)
    with store_errors(f"application {app.name!r}"):
        return run_view(app.store, run)


def run_view(store: Store, run: RunRecord) -> RunView:
    """``run`` (a record of ``store``) with its steps and their attempts."""
    steps = store.steps(run.id)
    attempts = store.attempts(run.id)
    return RunView(
        **summary(run).model_dump(),
        mlflow_run_id=run.mlflow_run_id,
        tracking_uri=run.tracking_uri,
        run_dir=run.run_dir,
        steps=[
            StepView(
                name=s.name,
                status=s.status,
                depends_on=list(s.depends_on or []),
                error=s.error,
                cached_from=s.cached_from,
                mlflow_run_id=s.mlflow_run_id,
                started_at=s.started_at,
                finished_at=s.finished_at,
                duration=_duration(s.started_at, s.finished_at),
                output_dir=s.output_dir,
                attempts=[
                    AttemptView(
                        number=a.number,
                        exit_code=a.exit_code,
                        error=a.error,
                        started_at=a.started_at,
                        finished_at=a.finished_at,
                        duration=_duration(a.started_at, a.finished_at),
                        log=attempt_log(run.engine, a.engine_ref),
                    )
                    for a in attempts.get(s.id, [])
                ],
            )
            for s in steps
        ],
    )


def workflow_view(app: AppHandle, name: str) -> WorkflowView:
    """Workflow ``name`` of ``app`` as a DAG of steps (declared order)."""
    from scanflow.spec.graph import topological_order, upstreams

    try:
        workflow = app.project.app.workflow(name)
    except SpecError:
        raise NotFound(f"no workflow {name!r} in application {app.name!r}") from None
    edges = upstreams(workflow)
    return WorkflowView(
        app=app.name,
        name=workflow.name,
        steps=[StepSpecView(name=n, depends_on=sorted(edges[n])) for n in topological_order(edges)],
        parameters=dict(getattr(workflow, "parameters", None) or {}),
    )


def _step(app: AppHandle, run: RunRecord, step: str) -> Any:
    for record in app.store.steps(run.id):
        if record.name == step:
            return record
    raise NotFound(f"run {run.id} has no step {step!r}")


def logs(app: AppHandle, run_id: str, step: str | None = None) -> Iterator[str]:
    """The logs of ``run_id`` (one step, or all) in chunks, read by the run's engine."""
    run = get_record(app, run_id)
    if step is not None:
        _step(app, run, step)
    try:
        return app.engine(run.engine).logs(run.id, step)
    except EngineError as exc:
        raise NotFound(str(exc)) from None


def safe_relative(path: str) -> PurePosixPath:
    """``path`` as a relative path inside a folder; :class:`Invalid` for ``..`` or ``/x``."""
    pure = PurePosixPath(path.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise Invalid(f"path {path!r} must be relative and stay inside the folder (no '..')")
    return pure


def artifact_path(app: AppHandle, run_id: str, step: str, path: str) -> Path:
    """The file ``path`` among step ``step``'s outputs (never outside them)."""
    relative = safe_relative(path)
    run = get_record(app, run_id)
    record = _step(app, run, step)
    if not record.output_dir:
        raise NotFound(f"step {step!r} of run {run.id} has no outputs")
    root = Path(record.output_dir).resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root):
        raise Invalid(f"path {path!r} leaves the step's outputs")
    if not target.is_file():
        raise NotFound(f"step {step!r} of run {run.id} has no output file {path!r}")
    return target


def artifacts(app: AppHandle, run_id: str, step: str) -> list[str]:
    """The output files of step ``step`` (paths relative to its output folder)."""
    run = get_record(app, run_id)
    record = _step(app, run, step)
    if not record.output_dir or not Path(record.output_dir).is_dir():
        return []
    root = Path(record.output_dir)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# -- actions --------------------------------------------------------------------------
def _engine_call(action: str, call: Any) -> Any:
    try:
        return call()
    except SpecError as exc:
        raise Invalid(str(exc)) from None
    except (EngineError, StoreError) as exc:
        raise Conflict(f"cannot {action}: {exc}") from None


def submit(app: AppHandle, workflow: str, parameters: dict[str, Any] | None = None) -> ActionResult:
    """Start ``workflow`` on the application's engine; returns the new run's id at once."""
    workflow_view(app, workflow)  # NotFound before anything starts
    engine = app.engine()
    run_id = _engine_call(f"run {workflow}", lambda: engine.submit(workflow, parameters or {}))
    log.info("started run %s of %s/%s", run_id, app.name, workflow)
    return ActionResult(message=f"run {run_id} started", run_id=run_id)


def resume(app: AppHandle, run_id: str) -> ActionResult:
    """Start again the steps of ``run_id`` that did not succeed (from the failed one on)."""
    run = get_record(app, run_id)
    if run.status in ("pending", "running") and shown_status(run) != "interrupted":
        raise Conflict(f"run {run.id} is {run.status}; only an ended run can be retried")
    engine = app.engine(run.engine)

    def retry() -> str:
        for _ in engine.watch(run.id):  # an ended run may still flush its tracking
            pass
        return engine.resume(run.id)

    _engine_call(f"retry run {run.id}", retry)
    _wait_restarted(app, run)
    return ActionResult(message=f"run {run.id} retried from its failed step", run_id=run.id)


def _wait_restarted(app: AppHandle, before: RunRecord) -> None:
    """Wait until the store shows ``before`` (an ended run) started again, so that a client
    reading the run right after the retry never sees its old end: engines start a resumed
    run on a thread or a cluster and record it as running a moment later."""
    deadline = time.monotonic() + RESTART_SECONDS
    while time.monotonic() < deadline:
        current = get_record(app, before.id)
        if shown_status(current) not in ENDED or current.finished_at != before.finished_at:
            return
        time.sleep(RESTART_POLL_SECONDS)
    log.warning("run %s was retried but is not recorded as running yet", before.id)


def cancel(app: AppHandle, run_id: str) -> ActionResult:
    """Stop run ``run_id``: running steps are stopped, the run ends cancelled."""
    run = get_record(app, run_id)
    if run.status not in ("pending", "running"):
        raise Conflict(f"run {run.id} already ended ({run.status})")
    engine = app.engine(run.engine)
    _engine_call(f"cancel run {run.id}", lambda: engine.cancel(run.id))
    return ActionResult(message=f"run {run.id} cancelled", run_id=run.id)
