"""Model loading (direct scikit-learn path vs pyfunc) and micro-batching on a real model."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from scanflow.serving.batcher import Batcher
from scanflow.serving.errors import ModelLoadError, RequestError
from scanflow.serving.model import EstimatorModel, PyfuncModel, load_model


@pytest.fixture(scope="module")
def direct(registry):
    return load_model(registry.model_dir, name="digits", version="1")


def test_direct_and_pyfunc_paths_agree(registry, direct):
    pyfunc = load_model(registry.model_dir, name="digits", version="1", fast=False)
    assert isinstance(direct, EstimatorModel) and direct.inline
    assert isinstance(pyfunc, PyfuncModel) and not pyfunc.inline
    X = registry.X[:50]
    np.testing.assert_array_equal(direct.predict(X), pyfunc.predict(X))
    assert (direct.predict(registry.X) == registry.y).mean() > 0.95


def test_a_folder_without_mlmodel_is_a_clear_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="not an MLflow model directory"):
        load_model(tmp_path, name="x", version="1")


def test_a_model_failing_its_smoke_prediction_is_refused(registry):
    import mlflow

    source = registry.client().get_model_version_download_uri("digits", registry.broken_version)
    path = mlflow.artifacts.download_artifacts(artifact_uri=source)
    with pytest.raises(ModelLoadError, match="failed its smoke prediction.*cannot predict"):
        load_model(path, name="digits", version=registry.broken_version)


def _run(batcher: Batcher, inputs: list[np.ndarray]):
    async def main():
        return await asyncio.gather(*(batcher.predict(x) for x in inputs), return_exceptions=True)

    return asyncio.run(main())


def test_concurrent_requests_share_model_calls_and_get_their_own_rows(registry, direct):
    calls: list[tuple[int, int]] = []
    batcher = Batcher(lambda: direct, max_batch_size=64, on_batch=lambda n, r: calls.append((n, r)))
    inputs = [registry.X[i : i + 1 + i % 3] for i in range(20)]  # 1 to 3 rows each
    results = _run(batcher, inputs)
    assert sum(n for n, _ in calls) == 20 and len(calls) == 1  # all in one model call
    for x, res in zip(inputs, results, strict=True):
        np.testing.assert_array_equal(res.output, direct.predict(x))
        assert res.version == "1"


def test_max_batch_size_caps_rows_per_call(registry, direct):
    calls: list[tuple[int, int]] = []
    batcher = Batcher(lambda: direct, max_batch_size=8, on_batch=lambda n, r: calls.append((n, r)))
    _run(batcher, [registry.X[i : i + 2] for i in range(10)])  # 20 rows
    assert [r for _, r in calls] == [8, 8, 4]


def test_batching_disabled_calls_the_model_once_per_request(registry, direct):
    calls: list[tuple[int, int]] = []
    batcher = Batcher(lambda: direct, enabled=False, on_batch=lambda n, r: calls.append((n, r)))
    _run(batcher, [registry.X[i : i + 1] for i in range(5)])
    assert calls == [(1, 1)] * 5


def test_one_bad_request_fails_alone(registry, direct):
    good = [registry.X[i : i + 1] for i in range(3)]
    bad = np.zeros((1, 3))  # wrong width: the estimator raises
    results = _run(Batcher(lambda: direct), [good[0], bad, good[1], good[2]])
    assert isinstance(results[1], RequestError) and results[1].status == 500
    assert "the model raised ValueError" in str(results[1])
    for x, res in zip(good, [results[0], results[2], results[3]], strict=True):
        np.testing.assert_array_equal(res.output, direct.predict(x))


def test_no_model_answers_503(registry):
    results = _run(Batcher(lambda: None), [registry.X[:1]])
    assert isinstance(results[0], RequestError) and results[0].status == 503


def test_slow_models_batch_in_a_thread(registry):
    pyfunc = load_model(registry.model_dir, name="digits", version="1", fast=False)
    calls: list[tuple[int, int]] = []
    batcher = Batcher(lambda: pyfunc, on_batch=lambda n, r: calls.append((n, r)))
    inputs = [registry.X[i : i + 1] for i in range(12)]
    results = _run(batcher, inputs)
    assert [int(r.output[0]) for r in results] == list(pyfunc.predict(registry.X[:12]))
    assert sum(n for n, _ in calls) == 12 and len(calls) < 12


def test_a_lone_request_is_not_held_for_the_batch_window(registry, direct):
    async def main():
        batcher = Batcher(lambda: direct, max_wait_ms=600_000)  # a 10-minute window
        lone = await asyncio.wait_for(batcher.predict(registry.X[:1]), 60)  # nothing queued
        batcher.arriving = 1  # another request is still being read: the next one waits
        held = batcher.predict(registry.X[1:2])
        for _ in range(50):
            await asyncio.sleep(0)
        waited = not held.done()
        batcher.arriving = 0  # it arrived (or went away): the batch closes
        return lone, waited, await asyncio.wait_for(held, 60)

    lone, waited, held = asyncio.run(main())
    assert waited
    assert lone.output.tolist() == [registry.y[0]] and held.output.tolist() == [registry.y[1]]


def _strict_mixed_model(path, *, with_example: bool):
    """A pipeline whose one-hot encoder refuses unknown categories (empty strings too)."""
    import mlflow.sklearn
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    X = pd.DataFrame({"colour": ["red", "blue", "red", "green"], "size": [1.0, 2.0, 3.0, 4.0]})
    encode = ColumnTransformer(
        [("onehot", OneHotEncoder(handle_unknown="error"), ["colour"])], remainder="passthrough"
    )
    model = make_pipeline(encode, LogisticRegression()).fit(X, [0, 1, 0, 1])
    signature = mlflow.models.infer_signature(X, model.predict(X))
    example = X.head(2) if with_example else None
    mlflow.sklearn.save_model(model, path, signature=signature, input_example=example)
    return path


def test_the_smoke_prediction_uses_the_logged_input_example(tmp_path):
    path = _strict_mixed_model(tmp_path / "with-example", with_example=True)
    model = load_model(path, name="shapes", version="1")
    assert model.predict({"colour": np.array(["green"]), "size": np.array([2.0])}).shape == (1,)


def test_without_an_example_a_strict_model_says_to_log_one(tmp_path):
    path = _strict_mixed_model(tmp_path / "no-example", with_example=False)
    with pytest.raises(ModelLoadError, match="one row of zeros.*log an input example"):
        load_model(path, name="shapes", version="1")


@pytest.mark.parametrize(("seconds_per_call", "inline"), [(0.0001, True), (0.005, False)])
def test_a_slow_model_predicts_off_the_event_loop(registry, monkeypatch, seconds_per_call, inline):
    import itertools

    import scanflow.serving.model as model_module

    model = load_model(registry.model_dir, name="digits", version="1", smoke=False)
    assert model.inline
    ticks = itertools.count()  # a clock on which every call lasts seconds_per_call
    monkeypatch.setattr(model_module, "_clock", lambda: (next(ticks) + 1) // 2 * seconds_per_call)
    model_module.smoke_test(model)
    assert model.inline is inline
