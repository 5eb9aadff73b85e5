"""LatencyAutoscale as a whole MAPE chain in the runtime: metrics scraped with a watermark,
hysteresis, cooldown, and the scale call, against ``ScriptedService``: a stand-in for the
serving layer whose cumulative counters follow a script."""

from __future__ import annotations

from typing import Any

from scanflow.agents.runtime import AgentRuntime, AgentSetup
from scanflow.agents.state import AgentState
from scanflow.agents.strategies.autoscale import AutoscaleConfig, LatencyAutoscale
from scanflow.agents.toolkit import Toolkit

from .conftest import run


class ScriptedService:
    """Stand-in for the serving layer: each scrape adds one window of traffic."""

    def __init__(self, windows: list[tuple[int, float]]) -> None:
        self.windows = list(windows)  # (requests, latency seconds of all of them)
        self.totals = {
            "requests": 0.0,
            "errors": 0.0,
            "buckets": {0.05: 0.0, 0.5: 0.0, float("inf"): 0.0},
        }
        self.workers = 1
        self.calls: list[int] = []

    def metrics(self) -> dict[str, Any]:
        if self.windows:
            n, latency = self.windows.pop(0)
            self.totals["requests"] += n
            for bound in self.totals["buckets"]:
                if latency <= bound:
                    self.totals["buckets"][bound] += n
        return {
            "requests": self.totals["requests"],
            "errors": 0.0,
            "queue_depth": 0.0,
            "latency_buckets": {str(b): c for b, c in self.totals["buckets"].items()},
        }

    def status(self) -> dict[str, Any]:
        return {"ready": True, "workers": self.workers}

    def scale(self, workers: int) -> dict[str, Any]:
        self.calls.append(workers)
        self.workers = workers
        return self.status()

    def refresh(self) -> dict[str, Any]:
        return self.status()


def _drive(store, service: ScriptedService, config: AutoscaleConfig, ticks: int) -> list[Any]:
    """Tick the scaler every 2 s of a scripted clock; its decisions, oldest first."""
    strategy = LatencyAutoscale(config)
    setup = AgentSetup(
        "scaler", strategy.declare(), guardrails=strategy.guardrails(), config=config.model_dump()
    )
    clock = {"now": 0.0}

    async def scenario() -> None:
        rt = AgentRuntime(
            setup, store, Toolkit(services={"svc": service}), clock=lambda: clock["now"]
        )
        await rt.start()
        for _ in range(ticks):
            clock["now"] += 2.0
            for decision_id in await rt.tick():
                await rt.execute(decision_id)
        await rt.stop()

    run(scenario())
    return AgentState(store, "scaler").decisions()[::-1]


SLOW, CALM = (200, 0.3), (10, 0.01)


def test_scale_up_under_load_then_down_when_calm(store) -> None:
    service = ScriptedService([SLOW] * 4 + [CALM] * 5)
    config = AutoscaleConfig(
        service="svc",
        min_workers=1,
        max_workers=3,
        p95_high_ms=200,
        p95_low_ms=50,
        down_after=2,
        cooldown=0,
    )
    rows = _drive(store, service, config, 10)
    # the first scrape only sets the watermark; 3 slow windows: 1->2->3, max stops the 4th;
    # then 2 calm windows in a row per step down
    assert service.calls == [2, 3, 2, 1]
    assert [r.status for r in rows] == ["succeeded"] * 4
    assert rows[0].evidence["p95_ms"] > 200 and rows[0].evidence["workers"] == 1
    assert rows[2].reason.startswith("calm for 2 windows")


def test_the_cooldown_holds_back_a_second_change(store) -> None:
    service = ScriptedService([SLOW] * 4 + [CALM] * 3)
    config = AutoscaleConfig(
        service="svc",
        min_workers=1,
        max_workers=3,
        p95_high_ms=200,
        p95_low_ms=50,
        down_after=2,
        cooldown=7,
    )
    rows = _drive(store, service, config, 7)
    # t=4 scale to 2; t=6 and t=8 still slow but inside the 7 s cooldown; t=10 one calm
    # window (no change); t=12 two calm windows, cooldown over: back to 1
    assert service.calls == [2, 1]
    assert [r.status for r in rows] == ["succeeded", "blocked", "succeeded"]
    assert "cooldown" in rows[1].outcome
