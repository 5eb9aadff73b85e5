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
    ],
)
def test_bad_study_is_refused_with_a_clear_message(change, message):
    with pytest.raises(SpecError, match=message):
        _load(STUDY.replace(*change))


def test_a_good_study_loads_and_round_trips():
    app = _load(STUDY)
    assert app.tuning[0].space["x"] == SearchParameter(type="float", low=0.0, high=1.0)
    assert Application.from_yaml(app.to_yaml(), check_files=False) == app
