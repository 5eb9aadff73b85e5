"""Comparing runs, also of different workflows: parameter differences, last metric values
and every logged value of each metric (for curves overlaid on one chart)."""

from __future__ import annotations

import logging
from typing import Any

from scanflow.api import metrics as metrics_api
from scanflow.api import runs as runs_api
from scanflow.api.errors import Invalid
from scanflow.api.models import tracking_errors
from scanflow.api.views import CompareView, MetricCurve, RunSummary, ValueRow
from scanflow.api.workspace import AppHandle, store_errors

log = logging.getLogger(__name__)

MAX_RUNS = 10


def _rows(runs: list[RunSummary], field: str) -> list[ValueRow]:
    keys = sorted({k for r in runs for k in getattr(r, field)})
    rows = []
    for key in keys:
        values = {r.id: getattr(r, field).get(key) for r in runs}
        rows.append(
            ValueRow(name=key, values=values, differs=len({repr(v) for v in values.values()}) > 1)
        )
    return rows


def _curves(app: AppHandle, run: RunSummary, uri: str) -> list[MetricCurve]:
    from scanflow.tracking.config import mlflow_client

    with store_errors(f"application {app.name!r}"):
        steps = [s for s in app.store.steps(run.id) if s.mlflow_run_id]
    if not steps:
        return []
    out = []
    with tracking_errors(app):
        client = mlflow_client(uri)
        for step in steps:
            for key in sorted(client.get_run(step.mlflow_run_id).data.metrics):
                history: list[Any] = client.get_metric_history(step.mlflow_run_id, key)
                history.sort(key=lambda m: (m.step, m.timestamp))
                out.append(
                    MetricCurve(
                        run_id=run.id,
                        metric=key,
                        step=step.name,
                        steps=[m.step for m in history],
                        values=[m.value for m in history],
                        timestamps=[m.timestamp / 1000 for m in history],
                    )
                )
    return out


def compare(app: AppHandle, run_ids: list[str]) -> CompareView:
    """Runs ``run_ids`` of ``app`` side by side (2 to :data:`MAX_RUNS` distinct runs)."""
    ids = list(dict.fromkeys(i for i in run_ids if i))
    if not 2 <= len(ids) <= MAX_RUNS:
        raise Invalid(f"compare 2 to {MAX_RUNS} different runs (got {len(ids)}): repeat 'run'")
    records = [runs_api.get_record(app, i) for i in ids]
    metrics_api.sync(app)
    found = metrics_api.values(app, ids)
    runs = []
    for record in records:
        view = runs_api.summary(record)
        view.metrics = found[record.id]
        runs.append(view)
    curves = []
    for record, view in zip(records, runs, strict=True):
        curves += _curves(app, view, record.tracking_uri or app.tracking_uri)
    return CompareView(
        runs=runs,
        parameters=_rows(runs, "parameters"),
        metrics=_rows(runs, "metrics"),
        curves=curves,
    )
