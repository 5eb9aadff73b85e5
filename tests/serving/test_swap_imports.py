"""A swap that brings new libraries into a worker (a lean scikit-learn model, served without
pandas, replaced by a pyfunc model that needs pandas) fails no request of the old model."""

from __future__ import annotations

import pytest
from conftest import start_service, wait_for

from scanflow.spec import Service

from .conftest import Load, oip_body

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mixed(registry) -> str:
    """Model 'lean-then-pyfunc' (a name of its own in the session's registry): v1 the lean
    digits classifier, v2 a pyfunc model (needs pandas)."""
    import mlflow

    name = "lean-then-pyfunc"
    mlflow.set_tracking_uri(registry.tracking_uri)  # MLflow resolves logged models through it
    try:
        for source in ("models:/digits/1", registry.flaky_uri):
            mlflow.register_model(source, name)
    finally:
        mlflow.set_tracking_uri(None)
    registry.client().set_registered_model_alias(name, "champion", "1")
    return name


def test_lean_sklearn_to_pyfunc_under_load_fails_no_request(mixed, registry, tmp_path):
    service = Service("mixed", model=f"models:/{mixed}@champion", workers=2, poll_interval=0.2)
    proc = start_service(service, tmp_path, registry.tracking_uri)
    try:
        proc.wait_ready(120)
        wait_for(lambda: proc.client.status()["workers_ready"] == 2, 120, "two workers")
        body = oip_body(registry.X[:1])
        url = f"{proc.url}/v2/models/{service.name}/infer"
        with Load(url, body, clients=6, max_seconds=300) as load:
            wait_for(lambda: load.count() > 200, 60, "load on version 1")
            registry.client().set_registered_model_alias(mixed, "champion", "2")
            wait_for(lambda: proc.client.status()["model_version"] == "2", 120, "version 2")
            after = load.count()
            wait_for(lambda: load.count() > after + 200, 60, "load on version 2")
        records = load.result.records
        assert {r[3] for r in records} == {"1", "2"}
        assert load.result.failures == []
        # the old model was lean: its workers held no pandas until the new model came
        log = (tmp_path / "server.log").read_text()
        assert "partially initialized module" not in log
    finally:
        proc.stop()
