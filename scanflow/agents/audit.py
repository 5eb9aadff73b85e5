"""The audit trail in MLflow: one run per decision in experiment ``<app>-agents``.

Decisions are already in the store; this mirrors each finished (or blocked) decision to
MLflow from one background thread, so a slow or absent tracking server never stalls an
agent. Numeric evidence becomes metrics, the rest parameters and a ``decision.json``.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from pathlib import Path
from typing import Any

from scanflow.agents.state import AgentState
from scanflow.store.agent_models import DecisionRecord
from scanflow.tracking.config import embedded_artifact_root

log = logging.getLogger(__name__)
_STATUS = {"succeeded": "FINISHED", "failed": "FAILED", "blocked": "KILLED"}


def experiment_name(app: str) -> str:
    """The MLflow experiment of an application's agents."""
    return f"{app}-agents"


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


class MlflowAudit:
    """Writes decisions as MLflow runs in the background."""

    def __init__(self, tracking_uri: str, app: str, base_dir: str | Path) -> None:
        self.uri = tracking_uri
        self.experiment = experiment_name(app)
        self.base_dir = Path(base_dir)
        self.errors: list[str] = []
        self._client: Any = None
        self._experiment_id: str | None = None
        self._queue: queue.Queue[tuple[AgentState, str] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="scanflow-audit", daemon=True)
        self._thread.start()

    def record(self, state: AgentState, decision_id: str) -> None:
        """Queue ``decision_id`` to be written to MLflow."""
        self._queue.put((state, decision_id))

    def close(self, timeout: float = 60.0) -> None:
        """Write what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            state, decision_id = item
            try:
                run_id = self._write(state.decision(decision_id))
                state.update_decision(decision_id, mlflow_run_id=run_id)
            except Exception as exc:  # noqa: BLE001 - the audit must never stop an agent
                self.errors.append(f"{type(exc).__name__}: {exc}")
                log.warning("cannot write decision %s to MLflow: %s", decision_id, exc)

    def _mlflow(self) -> Any:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            client = MlflowClient(self.uri)
            found = client.get_experiment_by_name(self.experiment)
            if found is None:
                location = None
                if self.uri.startswith("sqlite:"):
                    location = f"{embedded_artifact_root(self.base_dir)}/{self.experiment}"
                try:
                    self._experiment_id = client.create_experiment(
                        self.experiment, artifact_location=location
                    )
                except Exception:  # created meanwhile by another agent process
                    found = client.get_experiment_by_name(self.experiment)
                    if found is None:
                        raise
            if found is not None:
                self._experiment_id = found.experiment_id
            self._client = client
        return self._client

    def _write(self, row: DecisionRecord) -> str:
        from mlflow.entities import Metric, Param, RunTag

        client = self._mlflow()
        tags = {
            "scanflow.agent": row.agent,
            "scanflow.rule": row.rule,
            "scanflow.action": row.action,
            "scanflow.status": row.status,
            "scanflow.decision_id": row.id,
            "scanflow.outcome": (row.outcome or "")[:4000],
        }
        if row.correlation_id:
            tags["scanflow.correlation_id"] = row.correlation_id
        run = client.create_run(
            self._experiment_id,
            run_name=f"{row.agent}:{row.action}",
            start_time=int(row.created_at * 1000),
            tags=tags,
        )
        evidence = flatten(row.evidence or {})
        stamp = int(row.created_at * 1000)
        metrics = [
            Metric(k[:250], float(v), stamp, 0)
            for k, v in evidence.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        params = [Param("reason", row.reason[:6000]), Param("key", row.key)]
        for index, step in enumerate(row.steps):
            for k, v in flatten(step.get("params") or {}).items():
                params.append(Param(f"step{index}.{step['action']}.{k}"[:250], str(v)[:6000]))
        client.log_batch(
            run.info.run_id,
            metrics=metrics[:1000],
            params=params[:100],
            tags=[RunTag("scanflow.key", row.key)],
        )
        document = {
            "id": row.id,
            "agent": row.agent,
            "rule": row.rule,
            "reason": row.reason,
            "status": row.status,
            "outcome": row.outcome,
            "evidence": row.evidence,
            "steps": row.steps,
            "created_at": row.created_at,
            "finished_at": row.finished_at,
        }
        client.log_text(
            run.info.run_id, json.dumps(document, indent=2, default=str), "decision.json"
        )
        end = int((row.finished_at or row.created_at) * 1000)
        client.set_terminated(run.info.run_id, _STATUS.get(row.status, "FAILED"), end_time=end)
        return run.info.run_id
