"""Registering the model the best trial of a study logged, under a name and an alias."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scanflow.tuning.study import TuningError

if TYPE_CHECKING:
    import optuna

    from scanflow.spec.loader import Project
    from scanflow.spec.model import Study

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registered:
    """A model version made from a trial's logged model."""

    name: str
    version: str
    alias: str | None
    trial: int
    run_id: str  # the trial's workflow run
    model_id: str  # MLflow's logged model
    value: list[float]


def best_trial(study: optuna.Study, spec: Study, number: int | None = None) -> Any:
    """Trial ``number`` if given (it must have completed), else the best one; a clear error
    when no trial completed or several are best (a Pareto front: pick one)."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise TuningError(
            f"study {spec.name!r} has no finished trial to register; run it with "
            f"'scanflow tune {spec.workflow}' (or --more N to add trials)"
        )
    if number is not None:
        found = [t for t in complete if t.number == number]
        if not found:
            done = ", ".join(str(t.number) for t in complete)
            raise TuningError(
                f"trial {number} of study {spec.name!r} did not complete ({done} did)"
            )
        return found[0]
    best = study.best_trials
    if len(best) > 1:
        numbers = ", ".join(str(t.number) for t in best)
        raise TuningError(
            f"study {spec.name!r} has several best trials (Pareto front: {numbers}); "
            "pick one with --trial N"
        )
    return best[0]


def logged_models(project: Project, spec: Study, run_id: str) -> list[Any]:
    """The models logged by the steps of workflow run ``run_id`` (by the objective's step
    when it names one), including steps it reused from the cache."""
    from scanflow.store import Store
    from scanflow.tracking.config import mlflow_client, tracking_uri
    from scanflow.tuning.metrics import MetricReader

    uri = tracking_uri(project.app, project.base_dir)
    client = mlflow_client(uri)
    reader = MetricReader(uri, project.app.name)
    step = spec.objectives()[0].step
    store = Store.for_state_dir(project.state_dir)
    try:
        cached = [s.cached_from for s in store.steps(run_id) if step in (None, s.name)]
    finally:
        store.close()
    sources = [run_id, *(c for c in cached if c)]
    experiment = client.get_experiment_by_name(project.app.name)
    if experiment is None:
        return []
    found = []
    for source in sources:
        for name, mlflow_id in reader.step_runs(source).items():
            if step is not None and name != step:
                continue
            found += client.search_logged_models(
                [experiment.experiment_id], filter_string=f"source_run_id = '{mlflow_id}'"
            )
    return found


def register_best(
    project: Project,
    spec: Study,
    study: optuna.Study,
    model: str,
    alias: str | None = None,
    trial: int | None = None,
    artifact: str | None = None,
) -> Registered:
    """Register the model the best trial (or trial ``trial``) logged as a new version of
    ``model`` and point ``alias`` at it; the version is tagged with the study and trial."""
    from scanflow.tracking.config import mlflow_client, tracking_uri

    chosen = best_trial(study, spec, trial)
    run_id = chosen.user_attrs.get("run_id", "")
    models = logged_models(project, spec, run_id)
    if artifact is not None:
        models = [m for m in models if m.name == artifact]
    if not models:
        where = f"step {spec.objectives()[0].step!r} of " if spec.objectives()[0].step else ""
        named = f" named {artifact!r}" if artifact else ""
        raise TuningError(
            f"trial {chosen.number} of study {spec.name!r} logged no model{named} "
            f"({where}run {run_id}); log one in the step with tracking.log_model(model)"
        )
    names = sorted({m.name for m in models})
    if len(names) > 1:
        raise TuningError(
            f"trial {chosen.number} of study {spec.name!r} logged several models "
            f"({', '.join(names)}); pick one with --artifact NAME"
        )
    logged = max(models, key=lambda m: m.creation_timestamp)
    from mlflow.exceptions import MlflowException

    client = mlflow_client(tracking_uri(project.app, project.base_dir))
    try:
        client.get_registered_model(model)
    except MlflowException:
        client.create_registered_model(model)
    tags = {"scanflow.study": spec.name, "scanflow.trial": str(chosen.number)}
    version = client.create_model_version(
        model,
        source=logged.artifact_location,
        run_id=logged.source_run_id,
        tags=tags,
        model_id=logged.model_id,
    )
    if alias:
        client.set_registered_model_alias(model, alias, version.version)
    study_run = study.user_attrs.get("mlflow_run_id")
    if study_run:
        client.set_tag(study_run, "scanflow.registered", f"{model}/{version.version}")
    log.info("registered trial %d of %s as %s v%s", chosen.number, spec.name, model, version)
    return Registered(
        name=model,
        version=str(version.version),
        alias=alias,
        trial=chosen.number,
        run_id=run_id,
        model_id=logged.model_id,
        value=list(chosen.values),
    )
