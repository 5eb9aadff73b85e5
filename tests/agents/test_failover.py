"""Failover against a real MLflow registry and a real probe: a service whose primary model
will not load is switched to the backup; the primary is restored only once it serves."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanflow.agents.clients import MlflowRegistry
from scanflow.agents.runtime import AgentRuntime, AgentSetup
from scanflow.agents.state import AgentState
from scanflow.agents.strategies.failover import Failover, FailoverConfig
from scanflow.agents.toolkit import Toolkit

from .conftest import StandInService, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def registry_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two registered versions of model ``m``: v1 as champion, v2 as backup."""
    import mlflow.sklearn
    from mlflow.tracking import MlflowClient
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("failover")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    X, y = load_digits(return_X_y=True)
    client = MlflowClient(uri, registry_uri=uri)
    client.create_registered_model("m")
    for version in ("1", "2"):
        model = LogisticRegression(max_iter=200).fit(X[:300], y[:300])
        mlflow.sklearn.save_model(model, folder / f"v{version}", input_example=X[:2])
        client.create_model_version("m", source=str(folder / f"v{version}"))
    client.set_registered_model_alias("m", "champion", "1")
    client.set_registered_model_alias("m", "backup", "2")
    return uri


def test_fail_over_to_the_backup_and_restore_when_the_primary_serves(
    registry_uri: str, store, tmp_path: Path
) -> None:
    service = StandInService(registry_uri, "m", "champion")
    service.broken.add("1")  # the primary does not load in the service
    service.refresh()
    assert service.status()["ready"] is False
    config = FailoverConfig(
        service="svc", model="m", unhealthy_after=2, healthy_after=2, cooldown=0, swap_timeout=5
    )
    strategy = Failover(config)
    setup = AgentSetup(
        "failover", strategy.declare(), guardrails=strategy.guardrails(), config=config.model_dump()
    )
    toolkit = Toolkit(
        registry=MlflowRegistry(registry_uri),
        services={"svc": service},
        extras={"tracking_uri": registry_uri},
    )
    clock = {"now": 100.0}

    async def ticks(n: int) -> None:
        for _ in range(n):
            clock["now"] += 2.0
            for decision_id in await runtime.tick():
                await runtime.execute(decision_id)

    runtime = AgentRuntime(setup, store, toolkit, clock=lambda: clock["now"])

    async def scenario() -> None:
        await runtime.start()
        await ticks(2)  # two checks not ready: fail over
        assert service.status() == {
            "ready": True,
            "model_version": "2",
            "workers": 1,
            "last_error": service.last_error,
        }
        await ticks(2)  # healthy on the backup: the probe passes (v1 loads in a fresh
        # process) but the service still cannot load v1: back to the backup
        assert service.version == "2"
        service.broken.clear()  # the service can load v1 again
        await ticks(2)
        await runtime.stop()

    run(scenario(), timeout=180)
    registry = MlflowRegistry(registry_uri)
    assert registry.alias_version("m", "champion") == "1" == service.version
    rows = AgentState(store, "failover").decisions()[::-1]
    assert [(r.action, r.status) for r in rows] == [
        ("failover", "succeeded"),
        ("restore", "failed"),
        ("restore", "succeeded"),
    ]
    assert rows[0].steps[0]["result"] == {"primary": "1", "backup": "2", "served": True}
    assert "staying on backup v2" in rows[1].outcome
    assert rows[2].outcome == "primary v1 restored"
