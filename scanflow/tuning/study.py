"""A study run to its end: Optuna's RDB storage beside the state store, one workflow run per
trial nested under the study's MLflow run, resumable after the tuner was killed."""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scanflow.errors import ScanflowError
from scanflow.tuning.algorithms import pruner, sampler
from scanflow.tuning.trial import TrialFailed, TrialRunner

if TYPE_CHECKING:
    import optuna

    from scanflow.engines.base import Engine
    from scanflow.spec.loader import Project
    from scanflow.spec.model import Study

log = logging.getLogger(__name__)

STORAGE_FILE = "tuning.db"
INTERRUPTED = "interrupted: the tuner stopped during this trial"


class TuningError(ScanflowError):
    """A study that cannot start, or ended without a successful trial."""


def storage_url(project: Project) -> str:
    """Optuna's storage for ``project``: ``.scanflow/tuning.db`` (SQLite), or, when the state
    store is on PostgreSQL (``$SCANFLOW_STORE_URI``), the same database in the schema
    ``scanflow_tuning`` (Optuna's tables and ``alembic_version`` apart from the store's and
    MLflow's)."""
    from scanflow.store.config import store_url

    url, setting = store_url(project.state_dir)
    if url.startswith("postgresql"):
        return _postgres_storage(url, setting)
    project.state_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{project.state_dir.resolve() / STORAGE_FILE}"


@functools.cache
def _postgres_storage(store: str, setting: str | None) -> str:
    """The store's URL in the tuning schema (made on first use)."""
    from scanflow.store.config import TUNING_SCHEMA, in_schema
    from scanflow.store.store import ensure_schema

    ensure_schema(store, TUNING_SCHEMA, setting)
    return in_schema(store, TUNING_SCHEMA)


def find_study(project: Project, workflow: str | None, name: str | None) -> Study:
    """The study called ``name``, or the only one of ``workflow`` (or of the application)."""
    studies = project.app.tuning
    chosen = [s for s in studies if (name is None or s.name == name)]
    chosen = [s for s in chosen if workflow is None or s.workflow == workflow]
    if len(chosen) == 1:
        return chosen[0]
    listed = ", ".join(f"{s.name} ({s.workflow})" for s in studies) or "none"
    if not chosen:
        raise TuningError(
            f"no tuning study{f' {name!r}' if name else ''}"
            f"{f' for workflow {workflow!r}' if workflow else ''} in scanflow.yaml "
            f"(studies: {listed}); declare one under 'tuning:'"
        )
    raise TuningError(f"several studies match ({listed}); pick one with --study NAME")


def load(project: Project, study: Study) -> optuna.Study:
    """The stored Optuna study (:class:`TuningError` if it was never run)."""
    import optuna

    try:
        return optuna.load_study(study_name=study.name, storage=storage_url(project))
    except KeyError:
        raise TuningError(
            f"study {study.name!r} has not run yet; start it with 'scanflow tune {study.workflow}'"
        ) from None


def log_plots(project: Project, study: optuna.Study, folder: Path) -> None:
    """Upload the PNGs in ``folder`` under ``plots/`` of the study's MLflow run."""
    from scanflow.tracking.config import mlflow_client, tracking_uri

    run_id = study.user_attrs.get("mlflow_run_id")
    if run_id:
        client = mlflow_client(tracking_uri(project.app, project.base_dir))
        client.log_artifacts(run_id, str(folder), "plots")


def usable_cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass
class Tuner:
    """Runs ``study`` of ``project`` through ``engine`` (default: the app's target)."""

    project: Project
    study: Study
    engine: Engine | None = None
    target: str | None = None
    poll_interval: float = 0.5
    parameters: dict[str, Any] = field(default_factory=dict)  # every trial's run gets them
    warnings: list[str] = field(default_factory=list)

    def run(
        self, trials: int | None = None, resume: bool = False, more: int | None = None
    ) -> optuna.Study:
        """Run trials until ``trials`` (default ``max_trials``) have finished in the study,
        the wall-time budget is spent or ``max_failed_trials`` failed; returns the study.
        ``more`` extends a study that ran by that many trials."""
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.project.state_dir / f"tuning-{self.study.name}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise TuningError(
                f"study {self.study.name!r} is being tuned by another process; wait for it "
                "or stop it, then resume with --resume"
            ) from None
        try:
            return self._run(trials or self.study.max_trials, resume, more)
        finally:
            lock.release()

    def _run(self, total: int, resume: bool, more: int | None) -> optuna.Study:
        import optuna

        optuna.logging.disable_default_handler()
        optuna.logging.enable_propagation()
        trial_log = logging.getLogger("optuna.study._optimize")  # "Trial N failed ..."
        if _NO_TRACEBACK not in trial_log.filters:
            trial_log.addFilter(_NO_TRACEBACK)
        engine = self.engine or self._engine()
        try:
            return self._optimize(engine, total, resume, more)
        finally:
            if self.engine is None and hasattr(engine, "close"):
                engine.close()

    def _optimize(self, engine: Engine, total: int, resume: bool, more: int | None) -> optuna.Study:
        import optuna

        directions = [o.direction for o in self.study.objectives()]
        exists = self.study.name in optuna.get_all_study_names(storage_url(self.project))
        if more is not None and not exists:
            raise TuningError(
                f"study {self.study.name!r} has not run yet, so --more has nothing to extend; "
                f"start it with 'scanflow tune {self.study.workflow}'"
            )
        if exists and not resume and more is None:
            raise TuningError(
                f"study {self.study.name!r} already ran; continue it with --resume "
                "(--trials N to extend it to N trials, --more N to add N trials)"
            )
        done = len(load(self.project, self.study).trials) if exists else 0
        study = optuna.create_study(
            study_name=self.study.name,
            storage=storage_url(self.project),
            directions=directions,
            sampler=sampler(self.study, done),
            pruner=pruner(self.study.pruner),
            load_if_exists=True,
        )
        self._close_interrupted(study, engine)
        if not exists and self.study.warm_start:
            self._warm_start(study)
        tracking = StudyTracking(self.project, self.study, study)
        counted = [
            t
            for t in study.trials
            if t.state.is_finished() and t.user_attrs.get("reason") != INTERRUPTED
        ]
        if more is not None:
            total = len(counted) + more
        remaining = total - len(counted)
        jobs = self._parallel(engine)
        runner = TrialRunner(
            engine,
            self.study,
            self.project.app.workflow(self.study.workflow),
            tracking.reader,
            self.poll_interval,
            self.parameters,
        )
        if remaining > 0:
            study.optimize(
                runner,
                n_trials=remaining,
                timeout=self.study.timeout,
                n_jobs=jobs,
                catch=(ScanflowError,),
                callbacks=[partial_callback(tracking, engine, self.study.max_failed_trials)],
            )
        tracking.finish(study)
        return study

    def _engine(self) -> Engine:
        """The target's engine; the local one forks trials from a server that has imported
        the steps' libraries, unless an executor sets its own ``start_method``."""
        from scanflow.engines.registry import get_engine, target_of

        if target_of(self.project, self.target) == "local":
            return get_engine(self.project, "local", start_method="forkserver")
        return get_engine(self.project, self.target)

    def _parallel(self, engine: Engine) -> int:
        """Trials at once: ``parallel_trials``, capped to this machine's cores when the
        trials run here (on a cluster they use its nodes; the tuner only follows them)."""
        cores = usable_cores()
        if self.study.parallel_trials <= cores or engine.name != "local":
            return self.study.parallel_trials
        message = (
            f"study {self.study.name!r}: parallel_trials {self.study.parallel_trials} is more "
            f"than the {cores} cores here; running {cores} trials at once"
        )
        log.warning(message)
        self.warnings.append(message)
        return cores

    def _warm_start(self, study: optuna.Study) -> None:
        """Enqueue the best ``warm_start_trials`` of the ``warm_start`` study (their values
        this space can draw; the sampler draws the rest) as this study's first trials."""
        from scanflow.tuning.space import contains

        other = load(self.project, find_study(self.project, None, self.study.warm_start))
        direction = other.directions[0].name.lower()
        complete = [t for t in other.trials if t.state.name == "COMPLETE"]
        ranked = sorted(complete, key=lambda t: t.values[0], reverse=direction == "maximize")
        for trial in ranked[: self.study.warm_start_trials]:
            values = contains(self.study.space, trial.params)
            if values:
                origin = f"{self.study.warm_start}#{trial.number}"
                study.enqueue_trial(values, user_attrs={"warm_start": origin})
                log.info("warm start: trial %s with %s", origin, values)

    def _close_interrupted(self, study: optuna.Study, engine: Engine) -> None:
        """Fail trials a killed tuner left running, and stop their runs."""
        import optuna

        for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            run_id = trial.user_attrs.get("run_id")
            if run_id:
                try:
                    engine.cancel(run_id)
                except ScanflowError as exc:
                    log.warning("could not stop run %s of trial %d: %s", run_id, trial.number, exc)
            study._storage.set_trial_user_attr(trial._trial_id, "reason", INTERRUPTED)
            study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
            log.warning("trial %d was interrupted; it is not counted", trial.number)


class _KnownTrialFailure(logging.Filter):
    """Optuna logs each failed trial with its traceback; a trial that failed for a reason
    Scanflow states (:class:`TrialFailed`) is logged with the reason alone."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], TrialFailed):
            record.exc_info = None
            record.exc_text = None
        return True


_NO_TRACEBACK = _KnownTrialFailure()


def partial_callback(tracking: StudyTracking, engine: Engine, max_failed: int | None) -> Any:
    """After each trial: nest its run under the study's run; stop after ``max_failed``."""
    import optuna

    def after(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        tracking.nest(trial, engine)
        if trial.state == optuna.trial.TrialState.FAIL and max_failed is not None:
            failed = [
                t
                for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))
                if t.user_attrs.get("reason") != INTERRUPTED
            ]
            if len(failed) >= max_failed:
                log.warning("%d trials failed (max_failed_trials): stopping", len(failed))
                study.stop()

    return after


class StudyTracking:
    """The study's MLflow run: trials' workflow runs nested under it, best values at the end."""

    def __init__(self, project: Project, spec: Study, study: optuna.Study) -> None:
        from scanflow.tracking.config import mlflow_client, tracking_uri
        from scanflow.tracking.workflow_runs import WorkflowTracking
        from scanflow.tuning.metrics import MetricReader

        uri = tracking_uri(project.app, project.base_dir)
        self.client = mlflow_client(uri)
        self.reader = MetricReader(uri, project.app.name)
        self.spec = spec
        run_id = study.user_attrs.get("mlflow_run_id")
        if run_id is None:
            tracker = WorkflowTracking(uri, project.app.name, Path(project.base_dir))
            tags = {
                "scanflow.app": project.app.name,
                "scanflow.study": spec.name,
                "scanflow.workflow": spec.workflow,
            }
            params = {
                f"space.{k}": v.model_dump_json(exclude_defaults=True)
                for k, v in spec.space.items()
            }
            run_id = tracker.start_run(f"study-{spec.name}", tags, params, None).result()
            tracker.close()
            study.set_user_attr("mlflow_run_id", run_id)
        else:
            self.client.update_run(run_id, status="RUNNING")
        self.run_id: str = run_id

    def nest(self, trial: optuna.trial.FrozenTrial, engine: Engine) -> None:
        """Tag trial's workflow run as a child of the study's run, with its state; a run
        without an MLflow run of its own (on Kubernetes, each step pod records one) has
        its step runs tagged instead."""
        run_id = trial.user_attrs.get("run_id")
        if not run_id:
            return
        mlflow_id = engine.get_run(run_id).mlflow_run_id
        targets = [mlflow_id] if mlflow_id else list(self.reader.step_runs(run_id).values())
        tags = {
            "mlflow.parentRunId": self.run_id,
            "scanflow.study": self.spec.name,
            "scanflow.trial": str(trial.number),
            "scanflow.trial.state": trial.state.name,
        }
        if "reason" in trial.user_attrs:
            tags["scanflow.trial.reason"] = str(trial.user_attrs["reason"])[:5000]
        for target in targets:
            for key, value in tags.items():
                self.client.set_tag(target, key, value)

    def finish(self, study: optuna.Study) -> None:
        """Log the best trial(s) and end the study's run; :class:`TuningError` when no trial
        succeeded (the run ends FAILED, nothing is recorded as best)."""
        import optuna

        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if not complete:
            self.client.set_terminated(self.run_id, status="FAILED")
            reasons = [
                t.user_attrs.get("reason", "") for t in study.trials if t.state.is_finished()
            ]
            first = next((r for r in reasons if r), "no trial finished")
            raise TuningError(
                f"study {self.spec.name!r} failed: none of its {len(study.trials)} trials "
                f"succeeded; first reason: {first}"
            )
        best = study.best_trials
        for name, value in best[0].params.items():  # tags: a resumed study may find better
            self.client.set_tag(self.run_id, f"best.{name}", str(value))
        for objective, value in zip(self.spec.objectives(), best[0].values, strict=True):
            self.client.log_metric(self.run_id, f"best.{objective.metric}", value)
        self.client.set_tag(self.run_id, "scanflow.best_trial", str(best[0].number))
        self.client.set_tag(self.run_id, "scanflow.best_run", best[0].user_attrs.get("run_id", ""))
        self.client.set_terminated(self.run_id, status="FINISHED")


__all__ = ["TrialFailed", "Tuner", "TuningError", "find_study", "load", "storage_url"]
