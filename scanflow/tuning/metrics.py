"""Reading what a trial's steps logged: the metric histories of its MLflow step runs.

Steps log with ``scanflow.tracking`` as always (no database credentials); the tuner reads
the tracking store, found through the tags every step run carries (``scanflow.run_id``,
``scanflow.step``), so this works whatever engine ran the steps.
"""

from __future__ import annotations

from typing import Any


class MetricReader:
    """The metrics of the step runs of one application's workflow runs."""

    def __init__(self, tracking_uri: str, experiment: str) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri)
        self.experiment = experiment
        self._experiment_id: str | None = None

    def _experiment(self) -> str | None:
        if self._experiment_id is None:
            found = self.client.get_experiment_by_name(self.experiment)
            self._experiment_id = found.experiment_id if found else None
        return self._experiment_id

    def step_runs(self, run_id: str) -> dict[str, str]:
        """``{step: MLflow run id}`` of workflow run ``run_id`` (empty until they exist)."""
        experiment = self._experiment()
        if experiment is None:
            return {}
        runs = self.client.search_runs(
            [experiment], filter_string=f"tags.`scanflow.run_id` = '{run_id}'", max_results=1000
        )
        return {
            r.data.tags["scanflow.step"]: r.info.run_id
            for r in runs
            if "scanflow.step" in r.data.tags
        }

    def history(self, run_id: str, metric: str, step: str | None) -> dict[str, list[Any]]:
        """``{step name: [Metric, ...]}`` of ``metric`` in the steps of ``run_id`` (only
        ``step`` when given), ordered by their ``step`` index then time."""
        found = {}
        for name, mlflow_id in self.step_runs(run_id).items():
            if step is not None and name != step:
                continue
            points = self.client.get_metric_history(mlflow_id, metric)
            if points:
                found[name] = sorted(points, key=lambda m: (m.step, m.timestamp))
        return found
