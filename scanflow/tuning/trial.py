"""One trial: a workflow run with the trial's parameters, watched to its end; its
intermediate objective values go to the pruner while it runs, and a pruned run is cancelled."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scanflow.engines.base import follow
from scanflow.errors import ScanflowError
from scanflow.tuning.space import run_parameters, suggest

if TYPE_CHECKING:
    import optuna

    from scanflow.engines.base import Engine
    from scanflow.spec.model import Objective, Study, Workflow
    from scanflow.tuning.metrics import MetricReader

log = logging.getLogger(__name__)


class TrialFailed(ScanflowError):
    """A trial's run failed or never logged its objective metric."""


@dataclass
class TrialRunner:
    """Runs the trials of ``study`` through ``engine``; metrics come from ``reader``."""

    engine: Engine
    study: Study
    workflow: Workflow
    reader: MetricReader
    poll_interval: float = 0.5
    parameters: dict[str, Any] = field(default_factory=dict)  # fixed run parameters

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        try:
            return self._run(trial)
        except ScanflowError as exc:
            trial.set_user_attr("reason", str(exc))
            raise

    def _run(self, trial: optuna.Trial) -> float | list[float]:
        values = suggest(trial, self.study.space)
        params = {**self.parameters, **run_parameters(self.workflow, values)}
        run_id = self.engine.submit(self.study.workflow, params)
        trial.set_user_attr("run_id", run_id)
        log.info("trial %d: run %s with %s", trial.number, run_id, values)
        ended = threading.Event()
        watcher = threading.Thread(target=self._follow, args=(run_id, ended), daemon=True)
        watcher.start()
        reported: set[int] = set()
        objectives = self.study.objectives()
        prune = len(objectives) == 1 and self.study.pruner.type != "none"
        while not ended.wait(self.poll_interval):
            if prune:
                self._report(trial, run_id, objectives[0], reported, ended)
        record = self.engine.get_run(run_id)
        if record.status != "succeeded":
            raise TrialFailed(
                f"run {run_id} ended {record.status}: {record.error or 'see its logs'}"
            )
        if prune:
            self._replay(trial, run_id, objectives[0], reported)
        results = [self._final(run_id, objective) for objective in objectives]
        return results[0] if len(results) == 1 else results

    def _follow(self, run_id: str, ended: threading.Event) -> None:
        try:
            follow(self.engine, run_id)
        finally:
            ended.set()

    def _report(
        self,
        trial: optuna.Trial,
        run_id: str,
        objective: Objective,
        reported: set[int],
        ended: threading.Event,
    ) -> None:
        """Report new intermediate values; cancel the run and prune when the pruner says so."""
        import optuna

        for points in self.reader.history(run_id, objective.metric, objective.step).values():
            for point in points:
                if point.step in reported:
                    continue
                reported.add(point.step)
                trial.report(point.value, point.step)
                if trial.should_prune():
                    reason = (
                        f"pruned at step {point.step}: {objective.metric}={point.value:.6g} "
                        f"is worse than the {self.study.pruner.type} pruner allows"
                    )
                    trial.set_user_attr("reason", reason)
                    log.info("trial %d: %s; cancelling run %s", trial.number, reason, run_id)
                    self.engine.cancel(run_id)
                    ended.wait()
                    raise optuna.TrialPruned(reason)

    def _replay(
        self, trial: optuna.Trial, run_id: str, objective: Objective, reported: set[int]
    ) -> None:
        """Report the intermediate values of a finished run the tuner did not see, such as
        those a cached step logged in the run that computed it, so the pruner can judge
        later trials against this one."""
        for source in self._sources(run_id, objective.step):
            for points in self.reader.history(source, objective.metric, objective.step).values():
                for point in points:
                    if point.step not in reported:
                        reported.add(point.step)
                        trial.report(point.value, point.step)
                        trial.should_prune()  # records the rungs of successive halving

    def _final(self, run_id: str, objective: Objective) -> float:
        """The objective's last logged value in ``run_id``; :class:`TrialFailed` if none."""
        found = {}
        for source in self._sources(run_id, objective.step):
            found.update(self.reader.history(source, objective.metric, objective.step))
        if not found:
            where = f"step {objective.step!r}" if objective.step else "any step"
            raise TrialFailed(
                f"objective metric {objective.metric!r} was never logged by {where} of run "
                f"{run_id}; log it with tracking.log_metric({objective.metric!r}, value)"
            )
        last: Any = max((p for points in found.values() for p in points), key=_order)
        return float(last.value)

    def _sources(self, run_id: str, step: str | None) -> list[str]:
        """``run_id``, then the runs its cached steps (``step`` only, when given) reused:
        a cached step logged its metrics in the run that computed it."""
        store = getattr(self.engine, "store", None)
        if store is None:
            return [run_id]
        reused = [
            s.cached_from
            for s in store.steps(run_id)
            if s.cached_from and s.status == "cached" and step in (None, s.name)
        ]
        return [run_id, *reused]


def _order(point: Any) -> tuple[int, int]:
    return (point.step, point.timestamp)
