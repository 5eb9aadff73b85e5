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
    """Stand-in for the serving layer: each scrape adds one window of traffic. A window's
    latency is a number of seconds, or a function of the number of workers."""

    def __init__(self, windows: list[tuple[int, Any]]) -> None:
        self.windows = list(windows)  # (requests, latency seconds of all of them)
        self.totals = {
            "requests": 0.0,
            "errors": 0.0,
            "buckets": {b: 0.0 for b in (0.05, 0.1, 0.2, 0.5, 1.0, float("inf"))},
        }
        self.workers = 1
        self.calls: list[int] = []

    def metrics(self) -> dict[str, Any]:
        if self.windows:
            n, latency = self.windows.pop(0)
            latency = latency(self.workers) if callable(latency) else latency
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


class ScriptedCpu:
    """The machine's CPU as the scaler samples it: ``busy`` share of 2 cores, the service's
    workers using none of it (all of it is other processes')."""

    def __init__(self, busy: float) -> None:
        self.busy, self.seconds = busy, 0.0

    def __call__(self, pids: list[int], at: float) -> dict[str, Any]:
        return {"at": at, "busy": self.busy * 2 * at, "total": 2 * at, "workers": {}}


def _drive(
    store, service: ScriptedService, config: AutoscaleConfig, ticks: int, busy: float = 0.2
) -> list[Any]:
    """Tick the scaler every 2 s of a scripted clock, the machine's CPU ``busy``; its
    decisions, oldest first."""
    strategy = LatencyAutoscale(config)
    setup = AgentSetup(
        "scaler", strategy.declare(), guardrails=strategy.guardrails(), config=config.model_dump()
    )
    clock = {"now": 0.0}

    async def scenario() -> None:
        toolkit = Toolkit(services={"svc": service}, extras={"cpu_sampler": ScriptedCpu(busy)})
        rt = AgentRuntime(setup, store, toolkit, clock=lambda: clock["now"])
        await rt.start()
        for _ in range(ticks):
            clock["now"] += 2.0
            for decision_id in await rt.tick():
                await rt.execute(decision_id)
        await rt.stop()

    run(scenario())
    return AgentState(store, "scaler").decisions()[::-1]


SLOW, CALM = (200, lambda workers: 0.6 / workers), (10, 0.01)  # more workers: faster


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
        settle=2,
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
        settle=2,
    )
    rows = _drive(store, service, config, 7)
    # t=4 scale to 2; t=6 and t=8 still slow but inside the 7 s cooldown; t=10 one calm
    # window (no change); t=12 two calm windows, cooldown over: back to 1
    assert service.calls == [2, 1]
    assert [r.status for r in rows] == ["succeeded", "blocked", "succeeded"]
    assert "cooldown" in rows[1].outcome


STUCK = (200, 0.3)  # a saturated machine: the same latency whatever the number of workers


def test_a_scale_up_that_does_not_help_is_undone_and_held_off(store) -> None:
    service = ScriptedService([STUCK] * 12)
    config = AutoscaleConfig(
        service="svc",
        min_workers=1,
        max_workers=3,
        p95_high_ms=200,
        p95_low_ms=50,
        up_after=2,
        down_after=2,
        cooldown=0,
        settle=4,
        hold=60,
    )
    rows = _drive(store, service, config, 12)
    # t=6: two slow windows: 1->2; t=8, t=10: slow but settling (and held: no 2->3 before
    # the review); the windows after it are no faster and serve no more: back to 1, and no
    # scale-up for 60 s although every window stays slow
    assert service.calls == [2, 1]
    up, back = rows
    assert up.evidence["before"]["p95_ms"] > 200 and up.evidence["workers"] == 1
    assert back.reason.startswith("scale-up to 2 did not help after 4s: p95")
    assert back.evidence["futile"] is True and back.evidence["after"]["rps"] == 100.0


def test_the_pool_returns_to_the_minimum_while_the_machine_stays_busy(store) -> None:
    slow_calm = (10, 0.4)  # little traffic, answered slowly: the CPU is busy with other work
    service = ScriptedService([SLOW] * 3 + [slow_calm] * 8)
    config = AutoscaleConfig(
        service="svc",
        min_workers=1,
        max_workers=3,
        p95_high_ms=200,
        p95_low_ms=50,
        down_after=2,
        cooldown=0,
        settle=60,
    )
    rows = _drive(store, service, config, 11, busy=0.99)
    assert service.calls == [2, 1] and service.workers == config.min_workers
    up, down = rows
    assert down.reason.startswith("calm for 2 windows: queue 0, 5.0 req/s for 2 worker(s)")
    assert down.evidence["p95_ms"] > 200 and down.evidence["cpu_busy"] > 0.9  # still slow
