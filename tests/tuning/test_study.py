"""Trials as workflow runs: nested MLflow runs, cached upstream steps, failures."""

from __future__ import annotations

import os

import optuna
import pytest
from mlflow.tracking import MlflowClient

from scanflow.store import Store
from scanflow.tracking.config import tracking_uri
from scanflow.tuning.register import register_best
from scanflow.tuning.study import Tuner, TuningError, find_study, load

from .conftest import STUDY, scanflow_cli

WARM = """
  - name: warm
    workflow: train
    space:
      x: {type: float, low: 0.0, high: 1.0}
    objective: {metric: score, step: fit, direction: maximize}
    algorithm: random
    seed: 8
    pruner: {type: none}
    warm_start: search
    warm_start_trials: 1
    max_trials: 2
"""
# both trials warm-started from 'search', so their steps are all reused from the cache
PARETO = (
    WARM.replace("name: warm", "name: pareto")
    .replace(
        "objective: {metric: score, step: fit, direction: maximize}",
        "objective:\n      - {metric: score, step: fit}\n"
        "      - {metric: cost, step: fit, direction: minimize}",
    )
    .replace("warm_start_trials: 1", "warm_start_trials: 2")
)
CAPPED = WARM.replace("name: warm", "name: capped").replace(
    "max_trials: 2", "max_trials: 1\n    parallel_trials: 4"
)


def _tune(project, name="search", **options):
    tuner = Tuner(project, find_study(project, None, name), poll_interval=0.1)
    return tuner, tuner.run(**options)


@pytest.fixture(scope="module")
def searched(shared_project):
    """Study ``search`` of two trials whose ``fit`` logs a model, run once for the tests that
    read it (studies ``warm``, ``pareto`` and ``capped`` start from it)."""
    studies = STUDY.replace("max_trials: 3", "max_trials: 2") + WARM + PARETO + CAPPED
    project = shared_project(studies, model=True)
    return project, _tune(project)[1]


def test_trials_are_runs_nested_under_the_study_run_and_reuse_the_cached_upstream(searched):
    project, study = searched
    trials = study.trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 2
    for trial in trials:  # the objective is the last score, which is x
        assert trial.value == pytest.approx(trial.params["x"])
    assert study.best_value == max(t.params["x"] for t in trials)

    store = Store.for_state_dir(project.state_dir)
    runs = [store.get_run(t.user_attrs["run_id"]) for t in trials]
    assert all(r.status == "succeeded" for r in runs)
    prep = [{s.name: s.status for s in store.steps(r.id)}["prep"] for r in runs]
    assert prep == ["succeeded", "cached"]
    fits = [{s.name: s for s in store.steps(r.id)}["fit"] for r in runs]
    assert all(f.status == "succeeded" for f in fits)

    client = MlflowClient(tracking_uri(project.app, project.base_dir))
    study_run = client.get_run(study.user_attrs["mlflow_run_id"])
    assert study_run.info.status == "FINISHED"
    assert float(study_run.data.tags["best.x"]) == pytest.approx(study.best_params["x"])
    assert study_run.data.metrics["best.score"] == pytest.approx(study.best_value)
    for trial, run in zip(trials, runs, strict=True):
        tags = client.get_run(run.mlflow_run_id).data.tags
        assert tags["mlflow.parentRunId"] == study_run.info.run_id
        assert tags["scanflow.trial"] == str(trial.number)
        fit_params = client.get_run(fits[trials.index(trial)].mlflow_run_id).data.params
        assert float(fit_params["x"]) == pytest.approx(trial.params["x"])
    # every trial's step was forked from one server that had imported its libraries
    servers = {client.get_run(f.mlflow_run_id).data.tags["started_by"] for f in fits}
    assert len(servers) == 1 and servers != {str(os.getpid())}


def test_a_study_that_ran_needs_resume_and_more_extends_it(tiny):
    project = tiny()
    with pytest.raises(TuningError, match="has not run yet, so --more has nothing to extend"):
        _tune(project, more=1)
    _tune(project, trials=1)
    with pytest.raises(TuningError, match="--resume"):
        _tune(project)
    _, study = _tune(project, more=1)  # as 'scanflow tune train --more 1'
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 2
    assert study.trials[0].params != study.trials[1].params  # the resumed sampler draws anew
    _, study = _tune(project, resume=True, trials=2)  # already 2: nothing to run
    assert len(study.trials) == 2
    client = MlflowClient(tracking_uri(project.app, project.base_dir))
    tags = client.get_run(study.user_attrs["mlflow_run_id"]).data.tags
    assert float(tags["best.x"]) == pytest.approx(study.best_params["x"])
    with pytest.raises(TuningError, match=r"trial \d of study 'search' logged no model \(step"):
        register_best(project, find_study(project, None, "search"), study, "tiny")


def test_objective_never_logged_fails_each_trial_and_the_study(tiny):
    project = tiny(
        STUDY.replace("x: {type", "log: {type: categorical, choices: [false]}\n      x: {type")
    )
    tuner = Tuner(project, find_study(project, None, "search"), poll_interval=0.1)
    with pytest.raises(TuningError, match="none of its 3 trials succeeded") as info:
        tuner.run()
    assert "objective metric 'score' was never logged by step 'fit'" in str(info.value)
    study = load(project, tuner.study)
    assert {t.state for t in study.trials} == {optuna.trial.TrialState.FAIL}
    client = MlflowClient(tracking_uri(project.app, project.base_dir))
    run = client.get_run(study.user_attrs["mlflow_run_id"])
    assert run.info.status == "FAILED"
    assert not any(k.startswith("best.") for k in {**run.data.tags, **run.data.metrics})
    with pytest.raises(TuningError, match="study 'search' has no finished trial to register"):
        register_best(project, tuner.study, study, "tiny")


def test_every_trial_failing_stops_at_max_failed_trials(tiny):
    study_yaml = STUDY.replace("low: 0.0, high: 1.0", "low: -2.0, high: -1.0").replace(
        "max_trials: 3", "max_trials: 5\n    max_failed_trials: 2"
    )
    project = tiny(study_yaml)
    tuner = Tuner(project, find_study(project, "train", None), poll_interval=0.1)
    with pytest.raises(TuningError, match="first reason: run train-.* ended failed"):
        tuner.run()
    study = load(project, tuner.study)
    assert len(study.trials) == 2
    assert all("ended failed" in t.user_attrs["reason"] for t in study.trials)


def test_parallel_trials_beyond_the_cores_are_capped_with_a_warning(searched, monkeypatch):
    import scanflow.tuning.study as module

    monkeypatch.setattr(module, "usable_cores", lambda: 1)
    tuner, study = _tune(searched[0], "capped")
    assert tuner.warnings == [
        "study 'capped': parallel_trials 4 is more than the 1 cores here; running 1 trials at once"
    ]
    assert [t.state.name for t in study.trials] == ["COMPLETE"]


def test_tune_show_prints_the_leaderboard_and_the_best_trial(tiny, searched):
    fresh = str(tiny().base_dir)
    never = scanflow_cli("--app", fresh, "tune", "show")
    assert never.returncode == 1 and "has not run yet" in never.stderr  # never ran
    more = scanflow_cli("--app", fresh, "tune", "train", "--more", "2")
    assert more.returncode == 1 and "so --more has nothing to extend" in more.stderr
    project, study = searched
    shown = scanflow_cli("--app", str(project.base_dir), "tune", "show", "--study", "search")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    best = study.best_trial
    assert f"best: trial {best.number} (run {best.user_attrs['run_id']}) score=" in out
    assert out.count(" complete ") == 2


def test_a_second_tuner_on_the_same_study_is_refused(tiny):
    from filelock import FileLock

    project = tiny()
    project.state_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(project.state_dir / "tuning-search.lock")):  # as a running tuner holds it
        with pytest.raises(TuningError, match="being tuned by another process"):
            _tune(project)
    assert not (project.state_dir / "runs").exists()  # no trial ran


def test_two_objectives_give_a_pareto_front_shown_with_plots(searched, tmp_path):
    project, _ = searched
    _, study = _tune(project, "pareto")
    assert len(study.best_trials) == 2  # a higher x scores more and costs more: no trial dominates
    for trial in study.trials:
        assert trial.values == pytest.approx([trial.params["x"], 2 * trial.params["x"]])
    plots = tmp_path / "plots"
    app = str(project.base_dir)
    shown = scanflow_cli("--app", app, "tune", "show", "pareto", "--plots", str(plots))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("best: trial") == 2
    assert sorted(p.name for p in plots.iterdir()) == ["history.png", "pareto.png"]
    assert (plots / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    client = MlflowClient(tracking_uri(project.app, project.base_dir))
    listed = client.list_artifacts(study.user_attrs["mlflow_run_id"], "plots")
    assert sorted(a.path for a in listed) == ["plots/history.png", "plots/pareto.png"]


def test_the_best_trials_model_is_registered_and_aliased_in_one_command(searched):
    import mlflow.sklearn

    project, study = searched
    best = study.best_trial
    app = str(project.base_dir)
    done = scanflow_cli(
        "--app", app, "tune", "register", "search", "--model", "tiny", "--alias", "champion"
    )
    assert done.returncode == 0, done.stderr
    run_id = best.user_attrs["run_id"]
    assert f"registered trial {best.number} (run {run_id}) of study search as tiny version 1 " in (
        done.stdout
    )
    client = MlflowClient(tracking_uri(project.app, project.base_dir))
    version = client.get_model_version_by_alias("tiny", "champion")
    assert str(version.version) == "1"
    assert version.tags == {"scanflow.study": "search", "scanflow.trial": str(best.number)}
    fit = {s.name: s for s in Store.for_state_dir(project.state_dir).steps(run_id)}["fit"]
    assert version.run_id == fit.mlflow_run_id  # the model the best trial's fit step logged
    model = mlflow.sklearn.load_model(version.source)  # the stored model files
    assert model.predict([[0]])[0] == pytest.approx(best.params["x"])
    study_run = client.get_run(study.user_attrs["mlflow_run_id"])
    assert study_run.data.tags["scanflow.registered"] == "tiny/1"


def test_a_study_warm_starts_from_the_best_trials_of_another(searched):
    project, source = searched
    best = source.best_trial
    _, study = _tune(project, "warm")
    first, second = study.trials
    assert first.params == best.params and first.value == pytest.approx(best.value)
    assert first.user_attrs["warm_start"] == f"search#{best.number}"
    store = Store.for_state_dir(project.state_dir)
    steps = {s.name: s.status for s in store.steps(first.user_attrs["run_id"])}
    assert steps == {"prep": "cached", "fit": "cached"}  # the same values: nothing re-ran,
    # and the objective is the value the cached fit logged in its first run
    assert second.state.name == "COMPLETE" and "warm_start" not in second.user_attrs
    assert second.params != first.params  # then the sampler draws


def test_warm_starting_from_a_study_that_never_ran_is_refused(tiny):
    project = tiny(STUDY + WARM)
    with pytest.raises(TuningError, match="study 'search' has not run yet"):
        _tune(project, "warm")


def test_the_cli_shows_a_failed_studys_warnings_with_its_error(tiny):
    never_logged = STUDY.replace(
        "x: {type", "log: {type: categorical, choices: [false]}\n      x: {type"
    ).replace("max_trials: 3", "max_trials: 1\n    parallel_trials: 512")
    project = tiny(never_logged)
    done = scanflow_cli("--app", str(project.base_dir), "tune", "train")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "parallel_trials 512 is more than the" in done.stderr
    assert "none of its 1 trials succeeded" in done.stderr
    assert "Traceback" not in done.stderr
