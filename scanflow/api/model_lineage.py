"""Where each model version comes from: the Scanflow run and step that made it, that
run's parameters (its data among them), the datasets MLflow recorded, the team, and the
agent decision that promoted it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from scanflow.api.models import _client, _own_store, tracking_errors
from scanflow.api.views import ModelView
from scanflow.api.workspace import AppHandle, store_errors
from scanflow.store import RunRecord, StepRecord
from scanflow.store.agent_models import DecisionRecord


def _promotions(app: AppHandle) -> dict[str, str]:
    """Version -> the id of the newest decision whose plan promoted it."""
    with store_errors(f"application {app.name!r}"), app.store.session() as s:
        rows = s.scalars(
            select(DecisionRecord)
            .where(DecisionRecord.app == app.name, DecisionRecord.status == "succeeded")
            .order_by(DecisionRecord.created_at)
        ).all()
    out: dict[str, str] = {}
    for row in rows:
        for step in row.steps or []:
            result = step.get("result") or {}
            if step.get("action") == "promote" and step.get("status") == "done":
                out[str(result.get("version"))] = row.id
    return out


def _datasets(client: Any, run_id: str) -> list[str]:
    try:
        inputs = client.get_run(run_id).inputs
    except Exception:  # noqa: BLE001 - a deleted run leaves the version shown
        return []
    found = getattr(inputs, "dataset_inputs", None) or []
    return [f"{d.dataset.name} ({d.dataset.digest})" for d in found]


def with_lineage(app: AppHandle, model: ModelView) -> ModelView:
    """``model`` with each version's origin filled in."""
    run_ids = [v.run_id for v in model.versions if v.run_id]
    with store_errors(f"application {app.name!r}"), app.store.session() as s:
        made = {
            mlflow_id: (run_id, step, workflow, params)
            for mlflow_id, run_id, step, workflow, params in s.execute(
                select(
                    StepRecord.mlflow_run_id,
                    RunRecord.id,
                    StepRecord.name,
                    RunRecord.workflow,
                    RunRecord.parameters,
                )
                .join(RunRecord, RunRecord.id == StepRecord.run_id)
                .where(StepRecord.mlflow_run_id.in_(run_ids), RunRecord.app == app.name)
            )
        }
    promoted = _promotions(app)
    with tracking_errors(app):
        client = _client(app)
        tags = client.get_registered_model(model.name).tags or {}
        for version in model.versions:
            if version.run_id in made:
                run_id, step, workflow, params = made[version.run_id]
                version.workflow_run, version.step, version.workflow = run_id, step, workflow
                version.parameters = dict(params or {})
            if version.run_id:
                version.datasets = _datasets(client, version.run_id)
            version.promoted_by = promoted.get(version.version)
    model.team = tags.get("scanflow.team") or (app.team if _own_store(app) else None)
    return model
