"""A serving worker's skops trusts only the scikit-learn estimators its files hold, never
more than skops's defaults, and still refuses what skops refuses."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._mocking import CheckingClassifier

from scanflow.serving.skops_trust import estimators_named, public_estimator, schema_types

# Runs in a fresh interpreter: skops lists what it trusts once per process.
WORKER = r"""
import json, sys
import numpy as np
from scanflow.serving import skops_trust
skops_trust.narrow()
pipeline_file, ridge_file, mock_file = sys.argv[1:4]
out = {}
pipeline = skops_trust.load(pipeline_file)
from skops.io import _trusted_types
out["trusted_first"] = sorted(_trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES)
others = ("sklearn.cross_decomposition", "sklearn.gaussian_process",
    "sklearn.semi_supervised", "sklearn.neural_network")
out["modules_not_imported"] = [m for m in others if m not in sys.modules]
out["pipeline_predicts"] = pipeline.predict(np.eye(4, 8)).tolist()
ridge = skops_trust.load(ridge_file)  # another version, other estimators: trusted then
out["ridge_predicts"] = ridge.predict(np.eye(4, 8)).round(6).tolist()
out["trusted_second"] = sorted(_trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES)
try:
    skops_trust.load(mock_file)
    out["mock"] = "loaded"
except Exception as exc:
    out["mock"] = type(exc).__name__
try:
    skops_trust.load(mock_file, trusted=["sklearn.utils._mocking.CheckingClassifier"])
    out["mock_named"] = "loaded"
except Exception as exc:
    out["mock_named"] = type(exc).__name__
from sklearn.utils import all_estimators
real = {f"{c.__module__}.{c.__name__}" for _, c in all_estimators()}
out["beyond_defaults"] = sorted(set(_trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES) - real)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 8)), np.arange(60) % 3
    folder = tmp_path_factory.mktemp("skops")
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(random_state=0)).fit(X, y)
    ridge = Ridge().fit(X, y)
    mock = CheckingClassifier().fit(X, y)  # an estimator, but not a public one
    paths = {}
    for name, model in {"pipeline": pipeline, "ridge": ridge, "mock": mock}.items():
        paths[name] = folder / f"{name}.skops"
        skops.io.dump(model, paths[name])
    expected = {
        "pipeline": pipeline.predict(np.eye(4, 8)).tolist(),
        "ridge": ridge.predict(np.eye(4, 8)).round(6).tolist(),
    }
    return paths, expected


@pytest.fixture(scope="module")
def worker(files):
    paths, _ = files
    out = subprocess.run(
        [sys.executable, "-c", WORKER, *(str(paths[n]) for n in ("pipeline", "ridge", "mock"))],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_worker_trusts_only_the_estimators_of_its_file_and_imports_no_others(worker, files):
    _, expected = files
    assert worker["trusted_first"] == [
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._data.StandardScaler",
    ]
    # modules that skops's full list imports, and neither skops nor this model needs
    assert len(worker["modules_not_imported"]) == 4
    assert worker["pipeline_predicts"] == expected["pipeline"]


def test_a_later_file_adds_its_estimators(worker, files):
    _, expected = files
    assert worker["ridge_predicts"] == expected["ridge"]
    assert worker["trusted_second"] == sorted(
        [*worker["trusted_first"], "sklearn.linear_model._ridge.Ridge"]
    )


def test_what_skops_refuses_is_still_refused_and_never_more_is_trusted(worker):
    assert worker["mock"] == "UntrustedTypesFoundException"
    assert worker["mock_named"] == "loaded"  # named by the caller, as skops allows
    assert worker["beyond_defaults"] == []


def test_only_public_estimators_of_scikit_learn_are_confirmed(files):
    paths, _ = files
    assert public_estimator("sklearn.linear_model._ridge", "Ridge") is Ridge
    for module, name in [
        ("sklearn.utils._mocking", "CheckingClassifier"),  # no public package shows it
        ("sklearn.linear_model._ridge", "_BaseRidge"),  # private name
        ("sklearn.base", "BaseEstimator"),
        ("sklearn.linear_model", "Ridge"),  # not where Ridge is defined
        ("sklearn.linear_model._ridge", "np"),  # not a class
        ("sklearn.tests.test_base", "T"),
        ("os", "system"),
        ("sklearn.linear_model; import os", "Ridge"),
    ]:
        assert public_estimator(module, name) is None, (module, name)
    assert estimators_named(schema_types(paths["ridge"])) == [Ridge]
    assert estimators_named(schema_types(paths["mock"])) is None  # then the full list
