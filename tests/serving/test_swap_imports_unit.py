"""The import barrier's parts: which modules a model needs (read from its files, nothing
executed) and a batcher that holds model calls while those are imported."""

from __future__ import annotations

import asyncio
import pickle

import numpy as np
import pytest

from scanflow.serving.batcher import Batcher
from scanflow.serving.imports import needed_modules
from scanflow.serving.model import load_model


@pytest.fixture(scope="module")
def direct(registry):
    return load_model(registry.model_dir, name="digits", version="1")


def test_a_lean_skops_model_needs_its_estimator_module_and_not_pandas(registry):
    needs = needed_modules(registry.model_dir)
    assert needs.complete
    assert "skops.io" in needs.modules and "sklearn.linear_model._logistic" in needs.modules
    assert "pandas" not in needs.modules and "mlflow.pyfunc" not in needs.modules


def test_a_pickled_model_lists_the_globals_of_its_file_and_mlflow_loader(registry, tmp_path):
    import mlflow.sklearn
    import pandas as pd
    from sklearn.tree import DecisionTreeClassifier

    model = DecisionTreeClassifier(random_state=0).fit(registry.X[:100], registry.y[:100])
    mlflow.sklearn.save_model(model, tmp_path / "m", serialization_format="cloudpickle")
    needs = needed_modules(tmp_path / "m")
    assert needs.complete and needs.modules[:2] == ["pandas", "mlflow.sklearn"]
    assert "sklearn.tree._classes" in needs.modules and "sklearn.tree._tree" in needs.modules
    # an extra pickle beside it (a pyfunc artifact, say) is read too
    frame = pd.DataFrame({"a": [1.0]})
    (tmp_path / "m" / "extra.pkl").write_bytes(pickle.dumps([frame, np.float32(1)]))
    assert "pandas.core.internals.managers" in needed_modules(tmp_path / "m").modules


def test_a_model_from_code_is_not_completely_listed(registry):
    import mlflow

    source = registry.client().get_model_version_download_uri("digits", registry.broken_version)
    path = mlflow.artifacts.download_artifacts(
        artifact_uri=source, tracking_uri=registry.tracking_uri
    )
    needs = needed_modules(path)
    assert not needs.complete  # its code may import anything: the worker loads it held
    assert needs.modules[:2] == ["pandas", "mlflow.pyfunc"]


def test_paused_holds_model_calls_and_answers_the_queue_afterwards(registry, direct):
    calls: list[int] = []

    class Counting:  # the real model, counting its calls
        inline, version = True, "1"

        def predict(self, data):
            calls.append(len(data))
            return direct.predict(data)

    batcher = Batcher(lambda: Counting())  # type: ignore[arg-type, return-value]

    async def main():
        async with batcher.paused():
            futures = [batcher.predict(registry.X[i : i + 1]) for i in range(5)]
            for _ in range(20):  # the loop runs freely: nothing is called while held
                await asyncio.sleep(0)
            held = list(calls)
        return held, await asyncio.gather(*futures)

    held, results = asyncio.run(main())
    assert held == []
    assert sum(calls) == 5
    assert [int(r.output[0]) for r in results] == [int(v) for v in direct.predict(registry.X[:5])]
