"""Run metrics for the runs list and for comparing runs.

The metrics live in MLflow, one nested run per step. So that the runs list can show,
filter and sort on them in SQL with thousands of runs, the last value of each metric of an
ended run is copied once into the state store (``run_metrics``); a run that ends again
(a retry) is copied again. Curves (every logged value) are read from MLflow on demand,
only for the few runs being compared.
"""

from __future__ import annotations

import logging
import operator
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, or_, select

from scanflow.api.errors import Invalid
from scanflow.api.workspace import AppHandle, store_errors
from scanflow.store import RunRecord, StepRecord
from scanflow.store.metric_models import RunMetricRecord, RunMetricSyncRecord

log = logging.getLogger(__name__)

ENDED = ("succeeded", "failed", "cancelled")
COMPARISONS = {  # the operators of run filters, on parameters and on metrics
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}
BATCH = 100  # MLflow run ids per search


def condition(name: str, op: str, value: float) -> ColumnElement[bool]:
    """``metric NAME op value`` as an EXISTS over the metrics index (``ix_run_metrics``)."""
    test = COMPARISONS[op](RunMetricRecord.value, value)
    return exists().where(RunMetricRecord.run_id == RunRecord.id, RunMetricRecord.key == name, test)


def check_number(text: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise Invalid(
            f"metric filter {text!r} must compare with a number (e.g. accuracy>=0.9)"
        ) from None


def values(app: AppHandle, run_ids: Iterable[str]) -> dict[str, dict[str, float]]:
    """The copied metrics of ``run_ids``: run id -> {name: last value}."""
    ids = list(run_ids)
    out: dict[str, dict[str, float]] = {i: {} for i in ids}
    if not ids:
        return out
    with store_errors(f"application {app.name!r}"), app.store.session() as s:
        rows = s.execute(
            select(RunMetricRecord.run_id, RunMetricRecord.key, RunMetricRecord.value).where(
                RunMetricRecord.run_id.in_(ids)
            )
        ).all()
    for run_id, key, value in rows:
        out[run_id][key] = value
    return out


def names(app: AppHandle) -> list[str]:
    """Every metric name copied for ``app``'s runs."""
    with store_errors(f"application {app.name!r}"), app.store.session() as s:
        found = s.scalars(
            select(RunMetricRecord.key)
            .join(RunRecord, RunRecord.id == RunMetricRecord.run_id)
            .where(RunRecord.app == app.name)
            .distinct()
        ).all()
    return sorted(found)


def _stale(app: AppHandle) -> list[tuple[str, float, str | None]]:
    """Ended runs of ``app`` whose metrics were not copied since they last ended."""
    sync = RunMetricSyncRecord
    with app.store.session() as s:
        rows = s.execute(
            select(RunRecord.id, RunRecord.finished_at, RunRecord.tracking_uri)
            .outerjoin(sync, sync.run_id == RunRecord.id)
            .where(
                RunRecord.app == app.name,
                RunRecord.status.in_(ENDED),
                RunRecord.finished_at.is_not(None),
                or_(sync.run_id.is_(None), sync.finished_at != RunRecord.finished_at),
            )
        ).all()
    return [(r[0], r[1] or 0.0, r[2]) for r in rows]  # finished_at is set (filtered)


def _last_values(client: Any, mlflow_ids: dict[str, tuple[str, str]]) -> list[RunMetricRecord]:
    """The metrics of the MLflow runs ``mlflow_ids`` (MLflow id -> (run id, step)), the
    newest value per run and name."""
    best: dict[tuple[str, str], tuple[int, RunMetricRecord]] = {}
    experiments = [e.experiment_id for e in client.search_experiments(max_results=1000)]
    ids = list(mlflow_ids)
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        quoted = ", ".join(f"'{i}'" for i in chunk)
        for found in client.search_runs(
            experiments, f"attributes.run_id IN ({quoted})", max_results=len(chunk)
        ):
            run_id, step = mlflow_ids[found.info.run_id]
            stamp = found.info.end_time or found.info.start_time or 0
            for key, value in found.data.metrics.items():
                previous = best.get((run_id, key))
                if previous is None or stamp >= previous[0]:
                    record = RunMetricRecord(run_id=run_id, key=key, value=value, step=step)
                    best[(run_id, key)] = (stamp, record)
    return [record for _, record in best.values()]


def sync(app: AppHandle) -> int:
    """Copy the metrics of ``app``'s runs that ended since the last copy; how many runs.

    A tracking server that does not answer leaves those runs for the next call.
    """
    from scanflow.tracking.config import mlflow_client

    with store_errors(f"application {app.name!r}"):
        stale = _stale(app)
        if not stale:
            return 0
        ended = {run_id: finished for run_id, finished, _ in stale}
        with app.store.session() as s:
            steps = s.execute(
                select(StepRecord.run_id, StepRecord.name, StepRecord.mlflow_run_id).where(
                    StepRecord.run_id.in_(list(ended)), StepRecord.mlflow_run_id.is_not(None)
                )
            ).all()
    by_uri: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)
    uris = {run_id: uri for run_id, _, uri in stale}
    for run_id, step, mlflow_id in steps:
        if mlflow_id is not None:
            by_uri[uris[run_id] or app.tracking_uri][mlflow_id] = (run_id, step)
    records: list[RunMetricRecord] = []
    done = set(ended)
    for uri, mlflow_ids in by_uri.items():
        try:
            records += _last_values(mlflow_client(uri), mlflow_ids)
        except Exception as exc:  # noqa: BLE001 - copied on a later call instead
            log.warning("cannot read run metrics from %s yet: %s", uri, exc)
            done -= {run_id for run_id, _ in mlflow_ids.values()}
    now = time.time()
    with store_errors(f"application {app.name!r}"), app.store.session() as s:
        s.execute(delete(RunMetricRecord).where(RunMetricRecord.run_id.in_(list(done))))
        s.execute(delete(RunMetricSyncRecord).where(RunMetricSyncRecord.run_id.in_(list(done))))
        s.add_all(r for r in records if r.run_id in done)
        s.add_all(RunMetricSyncRecord(run_id=i, finished_at=ended[i], synced_at=now) for i in done)
    log.debug("copied the metrics of %d run(s) of %s", len(done), app.name)
    return len(done)


def sort_column(name: str) -> Any:
    """The value of metric ``name`` of each run, for ORDER BY (a correlated subquery)."""
    return (
        select(RunMetricRecord.value)
        .where(and_(RunMetricRecord.run_id == RunRecord.id, RunMetricRecord.key == name))
        .scalar_subquery()
    )
