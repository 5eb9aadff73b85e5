"""What a swap reports while it runs, and a swap overtaken by a rollback of the alias."""

from __future__ import annotations

import textwrap

import httpx
import pytest
from conftest import start_service, wait_for

from scanflow.spec import Service

from .conftest import oip_body

pytestmark = pytest.mark.slow

GATED = """
import os
import time

import mlflow
import numpy as np

GATE = {gate!r}


class Gated(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        deadline = time.monotonic() + 600  # loading lasts until the test opens the gate
        while not os.path.exists(GATE) and time.monotonic() < deadline:
            time.sleep(0.05)

    def predict(self, context, model_input, params=None):
        return np.zeros(len(model_input))


mlflow.models.set_model(Gated())
"""


@pytest.fixture(scope="module")
def gated(registry, tmp_path_factory):
    """Model 'gated': v1 the digits classifier, v2 a model whose loading waits for a file."""
    import mlflow

    root = tmp_path_factory.mktemp("gated")
    (root / "gated.py").write_text(textwrap.dedent(GATED.format(gate=str(root / "open"))))
    mlflow.set_tracking_uri(registry.tracking_uri)  # MLflow resolves logged models through it
    try:
        with mlflow.start_run(
            experiment_id=registry.client().get_experiment_by_name("serving-tests").experiment_id
        ):
            info = mlflow.pyfunc.log_model(
                name="gated", python_model=str(root / "gated.py"), pip_requirements=["mlflow"]
            )
        for source in ("models:/digits/1", info.model_uri):
            mlflow.register_model(source, "gated")
    finally:
        mlflow.set_tracking_uri(None)
    registry.client().set_registered_model_alias("gated", "champion", "1")
    return root / "open"


def test_a_swap_overtaken_by_a_rollback_never_serves_the_rolled_back_version(
    gated, registry, tmp_path
):
    service = Service("gated", model="models:/gated@champion", workers=2, poll_interval=0.2)
    proc = start_service(service, tmp_path, registry.tracking_uri)
    try:
        proc.wait_ready(120)
        wait_for(lambda: proc.client.status()["workers_ready"] == 2, 120, "two workers")
        registry.client().set_registered_model_alias("gated", "champion", "2")
        loading = wait_for(
            lambda: (s := proc.client.status()["staging"]) and s["phase"] == "loading" and s,
            120,
            "version 2 loading",
        )
        assert loading["version"] == "2" and loading["waiting"] == 2
        registry.client().set_registered_model_alias("gated", "champion", "1")  # rolled back
        gated.touch()  # now the workers finish loading version 2
        status = wait_for(
            lambda: (s := proc.client.status())["staging"] is None and s, 120, "staging over"
        )
        assert status["model_version"] == "1"
        events = [(h["event"], h.get("version")) for h in status["history"]]
        assert ("abandoned", "2") in events and ("serving", "2") not in events
        r = httpx.post(f"{proc.url}/v2/models/gated/infer", json=oip_body(registry.X[:1]))
        assert r.status_code == 200 and r.headers["x-model-version"] == "1"
        log = (tmp_path / "server.log").read_text()
        assert "moved to version 1 while version 2 was loading: not switching to it" in log
    finally:
        proc.stop()


def test_a_swap_reports_its_phases_and_a_failed_version_by_number(registry, tmp_path):
    registry.set_alias("champion", "1")
    service = Service("digits", model="models:/digits@champion", workers=1, poll_interval=0.2)
    proc = start_service(service, tmp_path, registry.tracking_uri)
    try:
        proc.wait_ready(120)
        registry.set_alias("champion", "2")
        status = wait_for(
            lambda: (s := proc.client.status())["model_version"] == "2" and s, 120, "version 2"
        )
        swap = status["history"][-1]
        assert (swap["event"], swap["version"], swap["previous"]) == ("serving", "2", "1")
        assert set(swap["took"]) == {"downloading", "loading", "smoke test", "confirming"}
        assert swap["seconds"] >= sum(swap["took"].values()) - 0.01
        assert status["failed_versions"] == {}
        registry.set_alias("champion", registry.broken_version)
        failed = wait_for(
            lambda: (s := proc.client.status())["failed_versions"] and s, 120, "the failure"
        )
        record = failed["failed_versions"][registry.broken_version]
        assert "cannot predict" in record["error"] and record["at"] > swap["at"]
        assert failed["model_version"] == "2" and failed["staging"] is None
        refreshed = proc.client.refresh()  # forgets the failure and tries again
        assert registry.broken_version not in refreshed["failed_versions"]
        assert refreshed["staging"]["version"] == registry.broken_version
        log = (tmp_path / "server.log").read_text()
        for phase in ("seen", "downloading", "loading in 1 worker", "smoke test", "switched"):
            assert f"{phase}" in log, phase
    finally:
        proc.stop()
        registry.set_alias("champion", "1")
