"""Failover of a real service under real traffic: while the primary version fails its
requests, the service's ``backup_model`` answers them; the primary serves again once it is
healthy. A real MLflow registry, a real ``scanflow`` service process, the agent in-process."""

from __future__ import annotations

import os
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import start_service

from scanflow.agents.clients import HttpServiceControl, MlflowRegistry
from scanflow.agents.runtime import AgentRuntime, AgentSetup
from scanflow.agents.state import AgentState
from scanflow.agents.strategies.failover import Failover, FailoverConfig
from scanflow.agents.toolkit import Toolkit

from .conftest import run, until

pytestmark = pytest.mark.slow

# Version 1 answers until the file named below exists, then raises on every request: a
# primary that loads but fails (a broken feature store, a bad dependency at run time...).
SWITCH = """
import os

import mlflow
import numpy as np

FLAG = {flag!r}


class Switch(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        if os.path.exists(FLAG):
            raise RuntimeError("the primary is failing")
        return np.zeros(len(model_input), dtype=np.int64)


mlflow.models.set_model(Switch())
"""

BROKEN = """
import mlflow


class Broken(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        raise RuntimeError("this version cannot predict")


mlflow.models.set_model(Broken())
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, np.ndarray]:
    """Model ``m``: v1 the switchable primary (champion), v2 a digits classifier, v3 a
    version that never loads in a service (its smoke prediction fails)."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("failover-service")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    flag = root / "primary-fails"
    X, y = load_digits(return_X_y=True)
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        exp = mlflow.create_experiment("failover", artifact_location=(root / "art").as_uri())
        (root / "switch.py").write_text(textwrap.dedent(SWITCH.format(flag=str(flag))))
        signature = infer_signature(X[:2], np.zeros(2, dtype=np.int64))
        with mlflow.start_run(experiment_id=exp):
            mlflow.pyfunc.log_model(
                name="switch",
                python_model=str(root / "switch.py"),
                signature=signature,
                input_example=X[:2],
                pip_requirements=["mlflow"],
                registered_model_name="m",
            )
            model = LogisticRegression(max_iter=300, random_state=0).fit(X[:500], y[:500])
            mlflow.sklearn.log_model(
                model, name="backup", signature=signature, registered_model_name="m"
            )
            (root / "broken.py").write_text(textwrap.dedent(BROKEN))
            mlflow.pyfunc.log_model(
                name="broken",
                python_model=str(root / "broken.py"),
                signature=signature,
                pip_requirements=["mlflow"],
                registered_model_name="m",
            )
        mlflow.MlflowClient().set_registered_model_alias("m", "champion", "1")
        mlflow.MlflowClient().set_registered_model_alias("m", "edge", "3")
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return uri, flag, X


class Traffic:
    """One client posting 1-row requests until stopped: (sent, status, model version)."""

    def __init__(self, url: str, row: np.ndarray, max_seconds: float = 300.0) -> None:
        self.url, self.max_seconds = url, max_seconds
        self.body = {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [1, row.size],
                    "datatype": "FP64",
                    "data": row.tolist(),
                }
            ]
        }
        self.records: list[tuple[float, int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import httpx

        deadline = time.monotonic() + self.max_seconds
        with httpx.Client(timeout=30) as http:
            while not self._stop.is_set() and time.monotonic() < deadline:
                sent = time.monotonic()
                try:
                    r = http.post(self.url, json=self.body)
                    record = (sent, r.status_code, r.headers.get("x-model-version", ""))
                except httpx.HTTPError as exc:
                    record = (sent, -1, type(exc).__name__)
                self.records.append(record)
                time.sleep(0.01)  # a steady, light load

    def answered_by(self, version: str, since: float = 0.0) -> int:
        return sum(
            1 for s, code, v in list(self.records) if s >= since and code == 200 and v == version
        )

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)


def test_the_backup_model_serves_while_the_primary_fails_and_the_primary_comes_back(
    registry: tuple[str, Path, np.ndarray], store, tmp_path: Path
) -> None:
    from scanflow.spec import Service

    uri, flag, X = registry
    spec = Service("svc", model="models:/m@champion", backup_model="models:/m/2", poll_interval=0.5)
    proc = start_service(spec, tmp_path / "svc", uri)
    control = HttpServiceControl(proc.url, token=proc.token)
    try:
        proc.wait_ready(120)
        assert control.status()["model_version"] == "1"
        config = FailoverConfig(
            service="svc",
            model="m",
            unhealthy_after=2,
            healthy_after=3,
            min_requests=3,
            cooldown=0,
            interval=0.5,
            swap_timeout=60,
        )
        strategy = Failover(config)
        setup = AgentSetup.for_strategy("failover", strategy)
        toolkit = Toolkit(
            registry=MlflowRegistry(uri),
            services={"svc": control},
            extras={"tracking_uri": uri, "service_specs": {"svc": spec}},
        )
        runtime = AgentRuntime(setup, store, toolkit)
        marks: dict[str, float] = {}

        async def scenario(traffic: Traffic) -> None:
            await runtime.start()
            try:
                await until(lambda: traffic.answered_by("1") > 20, 60, "traffic on v1")
                marks["fail"] = time.monotonic()
                flag.touch()  # the primary starts failing every request
                await until(lambda: traffic.answered_by("2") > 20, 120, "the backup answering")
                marks["backup"] = time.monotonic()
                assert MlflowRegistry(uri).alias_version("m", "champion") == "2"
                flag.unlink()  # the primary is healthy again
                marks["healed"] = time.monotonic()
                await until(
                    lambda: traffic.answered_by("1", marks["healed"]) > 20,
                    180,
                    "the primary answering again",
                )
                await until(
                    lambda: any(
                        r.action == "restore" and r.status == "succeeded"
                        for r in AgentState(store, "failover").decisions()
                    ),
                    120,
                    "the restore recorded as done",
                )
            finally:
                await runtime.stop()

        with Traffic(f"{proc.url}/v2/models/svc/infer", X[0]) as traffic:
            run(scenario(traffic), timeout=400)
    finally:
        flag.unlink(missing_ok=True)
        control.close()
        proc.stop()

    records = traffic.records
    assert MlflowRegistry(uri).alias_version("m", "champion") == "1"
    # before the primary failed every request was answered, by the primary (one client
    # posting in turn: only the last request sent before the flag may meet the failure)
    before = [(c, v) for s, c, v in records if s < marks["fail"]]
    assert set(before[:-1]) == {(200, "1")} and before[-1] in {(200, "1"), (500, "1")}
    # it failed (500s) until the backup took over; from then on nothing failed
    assert any(c == 500 for s, c, v in records if marks["fail"] <= s < marks["backup"])
    first_backup = min(s for s, c, v in records if v == "2")
    assert [r for r in records if r[0] > first_backup and r[1] != 200] == []
    # the backup served until the primary was healthy, then the primary again
    assert {v for s, c, v in records if first_backup <= s < marks["healed"]} == {"2"}
    assert records[-1][2] == "1"
    rows = AgentState(store, "failover").decisions()[::-1]
    # checks made while a plan ran are recorded as blocked ("in progress"), not acted on
    assert all("in progress" in r.outcome for r in rows if r.status == "blocked")
    acted = [r for r in rows if r.status != "blocked"]
    actions = [(r.action, r.status) for r in acted]
    assert actions[0] == ("failover", "succeeded") and actions[-1] == ("restore", "succeeded")
    assert acted[0].steps[0]["result"] == {"primary": "1", "backup": "2", "served": True}
    # restores tried while the primary still failed were refused, the backup kept serving
    for row in acted[1:-1]:
        assert (row.action, row.status) == ("restore", "failed"), actions
        assert "still fails" in row.outcome


def test_a_service_that_is_not_ready_is_routed_to_the_backup_and_stays_there(
    registry: tuple[str, Path, np.ndarray], store, tmp_path: Path
) -> None:
    from scanflow.spec import Service

    uri, _, X = registry
    spec = Service("edge", model="models:/m@edge", poll_interval=0.5)  # v3: never loads
    proc = start_service(spec, tmp_path / "edge", uri)
    control = HttpServiceControl(proc.url, token=proc.token)
    config = FailoverConfig(
        service="edge",
        model="m",
        alias="edge",
        backup_model="models:/m/2",
        unhealthy_after=2,
        healthy_after=2,
        cooldown=0,
        interval=0.5,
        swap_timeout=30,
    )
    strategy = Failover(config)
    setup = AgentSetup.for_strategy("edge-failover", strategy)
    toolkit = Toolkit(
        registry=MlflowRegistry(uri), services={"edge": control}, extras={"tracking_uri": uri}
    )
    runtime = AgentRuntime(setup, store, toolkit)
    state = AgentState(store, "edge-failover")

    def restores_failed() -> int:
        return sum(1 for r in state.decisions() if r.action == "restore" and r.status == "failed")

    async def scenario() -> None:
        await until(lambda: control.status().get("last_error"), 120, "the failed load")
        assert control.status()["ready"] is False
        await runtime.start()
        try:
            await until(lambda: control.status()["model_version"] == "2", 120, "the backup serving")
            await until(lambda: restores_failed() >= 1, 120, "a restore attempt")
        finally:
            await runtime.stop()

    try:
        proc.wait_ready(120, model=False)
        run(scenario(), timeout=300)
        status = control.status()
        r = control._http.post(
            "/v2/models/edge/infer",
            json={
                "inputs": [
                    {"name": "input-0", "shape": [1, 64], "datatype": "FP64", "data": X[0].tolist()}
                ]
            },
        )
    finally:
        control.close()
        proc.stop()
    assert status["ready"] is True and status["model_version"] == "2"
    assert r.status_code == 200 and r.headers["x-model-version"] == "2"
    # the primary still cannot be served: the restore was refused and the alias left on v2
    assert MlflowRegistry(uri).alias_version("m", "edge") == "2"
    rows = [r for r in state.decisions()[::-1] if r.status != "blocked"]
    assert (rows[0].action, rows[0].status) == ("failover", "succeeded")
    assert "not ready" in rows[0].reason or "ready=False" in rows[0].reason
    # (a later attempt may still be open when the agent stopped: it resumes on restart)
    restores = [r for r in rows if r.action == "restore"]
    failed = [r for r in restores if r.status == "failed"]
    assert failed and not any(r.status == "succeeded" for r in restores)
    assert "could not load v3" in failed[0].outcome and "staying on backup v2" in failed[0].outcome
