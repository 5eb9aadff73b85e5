"""Bad ``tuning:`` sections fail at load with a message naming the field and the fix."""

from __future__ import annotations

import pytest

from scanflow.errors import SpecError
from scanflow.spec.model import Application, SearchParameter

from .conftest import STUDY, spec


def _load(study: str) -> Application:
    return Application.from_yaml(spec(study), check_files=False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("x: {type: float, low: 0.0, high: 1.0}", "{}"), "the search space is empty"),
        (("x: {type", "xx: {type"), "parameter 'xx' is not declared .*did you mean 'x'"),
        (("low: 0.0, high: 1.0", "low: 2.0, high: 1.0"), r"'low' \(2.0\) is above 'high'"),
        (("low: 0.0, high: 1.0", "low: 0.0, high: 1.0, log: true"), "log scale needs 'low' > 0"),
        (("type: float, low: 0.0, high: 1.0", "type: categorical"), "non-empty 'choices'"),
        (("type: float, low: 0.0, high: 1.0", "type: int, low: 1"), "both 'low' and 'high'"),
        (("workflow: train", "workflow: trian"), "no workflow 'trian'; did you mean 'train'"),
        (("step: fit", "step: fitt"), "objective step 'fitt' is not a step; did you mean 'fit'"),
        (("algorithm: random", "algorithm: grid"), "grid search needs finite values"),
        (("algorithm: random", "algorithm: bayes"), "algorithm"),
        (("type: none", "type: medain"), "pruner"),
        (("seed: 7", "warm_start: serch"), "warm_start names no other study 'serch'"),
    ],
)
def test_bad_study_is_refused_with_a_clear_message(change, message):
    with pytest.raises(SpecError, match=message):
        _load(STUDY.replace(*change))


def test_a_good_study_loads_and_round_trips():
    app = _load(STUDY)
    assert app.tuning[0].space["x"] == SearchParameter(type="float", low=0.0, high=1.0)
    assert Application.from_yaml(app.to_yaml(), check_files=False) == app


@pytest.mark.parametrize("algorithm", ["random", "grid", "tpe", "cmaes", "qmc"])
@pytest.mark.parametrize("pruner", ["median", "percentile", "successive-halving", "hyperband"])
def test_every_algorithm_draws_inside_the_space(algorithm, pruner):
    import optuna

    from scanflow.tuning.algorithms import pruner as make_pruner
    from scanflow.tuning.algorithms import sampler
    from scanflow.tuning.space import run_parameters, suggest

    space = (
        "x: {type: float, low: 0.1, high: 1.0, step: 0.1}\n"
        "      n: {type: int, low: 1, high: 64, log: true}\n"
        "      kind: {type: categorical, choices: [a, b]}"
    )
    if algorithm == "grid":
        space = space.replace("log: true", "step: 21")
    text = STUDY.replace("x: {type: float, low: 0.0, high: 1.0}", space)
    text = text.replace("algorithm: random", f"algorithm: {algorithm}")
    text = text.replace("type: none", f"type: {pruner}")
    app = Application.from_yaml(
        spec(text).replace("{x: 0.5,", "{x: 0.5, n: 1, kind: a,"), check_files=False
    )
    study_spec = app.tuning[0]
    study = optuna.create_study(
        direction="maximize", sampler=sampler(study_spec), pruner=make_pruner(study_spec.pruner)
    )
    drawn = []

    def objective(trial):
        values = suggest(trial, study_spec.space)
        drawn.append(run_parameters(app.workflow("train"), values))
        return values["x"] * values["n"]

    study.optimize(objective, n_trials=6)
    assert len(drawn) == 6
    for params in drawn:
        assert set(params) == {"fit.x", "fit.n", "fit.kind"}  # only the step declaring them
        assert 0.1 <= params["fit.x"] <= 1.0 and 1 <= params["fit.n"] <= 64
        assert params["fit.kind"] in ("a", "b")


def test_the_cli_reports_a_bad_study_without_a_traceback(tmp_path):
    from conftest import write_files

    from .conftest import scanflow_cli

    bad = STUDY.replace("low: 0.0, high: 1.0", "low: 0.0, high: 1.0, log: true")
    write_files(tmp_path, {"scanflow.yaml": spec(bad), "steps.py": "def prep(dataset): ...\n"})
    done = scanflow_cli("--app", str(tmp_path), "tune", "train")
    assert done.returncode == 2
    err = done.stderr
    assert "log scale needs 'low' > 0" in err and "Traceback" not in err
