"""LatencyAutoscale: p95 latency, queue depth and request rate -> number of workers.

Monitor: a sensor scrapes the service's metrics; its watermark is the previous scrape, so
each tick sees the window since the last one. Analyse and plan: :func:`target_workers`,
a pure function with hysteresis (separate up and down thresholds, and several windows in a
row before scaling down). Execute: the service's live scaling API. A cooldown separates
two changes.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from scanflow.agents.declare import Registry
from scanflow.agents.facts import Facts, Reading
from scanflow.agents.guards import Guardrails
from scanflow.agents.plans import Decision, decide
from scanflow.agents.strategies.base import Strategy, StrategyConfig
from scanflow.agents.strategies.windows import window


class AutoscaleConfig(StrategyConfig):
    """Options of LatencyAutoscale."""

    service: str
    min_workers: int = Field(default=1, ge=1)
    max_workers: int = Field(default=4, ge=1)
    p95_high_ms: float = Field(default=200.0, gt=0, description="scale up above this")
    p95_low_ms: float = Field(default=50.0, ge=0, description="may scale down below this")
    queue_high: float = Field(default=8.0, ge=0)
    rps_per_worker_low: float = Field(
        default=20.0, ge=0, description="may scale down when each worker serves less"
    )
    rps_per_worker_high: float | None = Field(
        default=None, gt=0, description="scale up when each worker serves more"
    )
    up_after: int = Field(default=1, ge=1, description="windows in a row over the threshold")
    down_after: int = Field(default=3, ge=1, description="calm windows in a row to scale down")
    step: int = Field(default=1, ge=1)
    cooldown: float = Field(default=15.0, ge=0)
    interval: float = Field(default=2.0, gt=0)

    @model_validator(mode="after")
    def _bands(self) -> AutoscaleConfig:
        if self.min_workers > self.max_workers:
            raise ValueError(f"min_workers={self.min_workers} > max_workers={self.max_workers}")
        if self.rps_per_worker_high is not None and self.rps_per_worker_low >= (
            self.rps_per_worker_high
        ):
            raise ValueError(
                f"rps_per_worker_low={self.rps_per_worker_low} must be below "
                f"rps_per_worker_high={self.rps_per_worker_high}"
            )
        if self.p95_low_ms >= self.p95_high_ms:
            raise ValueError(
                f"p95_low_ms={self.p95_low_ms} must be below p95_high_ms={self.p95_high_ms} "
                "(the gap between them is the hysteresis)"
            )
        return self


def _hot(w: dict[str, Any], c: AutoscaleConfig, workers: int) -> bool:
    p95 = w.get("p95_ms")
    busy = c.rps_per_worker_high is not None and w.get("rps", 0.0) / max(workers, 1) > (
        c.rps_per_worker_high
    )
    return (
        (p95 is not None and p95 > c.p95_high_ms) or w.get("queue_depth", 0) > c.queue_high or busy
    )


def _calm(w: dict[str, Any], c: AutoscaleConfig, workers: int) -> bool:
    p95 = w.get("p95_ms")
    per_worker = w.get("rps", 0.0) / max(workers, 1)
    return (
        (p95 is None or p95 < c.p95_low_ms)
        and w.get("queue_depth", 0) <= c.queue_high / 2
        and per_worker < c.rps_per_worker_low
    )


def target_workers(
    windows: list[dict[str, Any]], workers: int, config: AutoscaleConfig
) -> tuple[int, str]:
    """How many workers the recent ``windows`` call for, and why (pure)."""
    rated = [w for w in windows if "rps" in w]
    if not rated:
        return workers, "no complete window yet"
    last = rated[-1]
    up = rated[-config.up_after :]
    if len(up) == config.up_after and all(_hot(w, config, workers) for w in up):
        target = min(config.max_workers, workers + config.step)
        if target > workers:
            return target, (
                f"busy for {config.up_after} window(s): p95 {last.get('p95_ms') or 0:.0f} ms "
                f"(high {config.p95_high_ms:g}), queue {last['queue_depth']:g} "
                f"(high {config.queue_high:g}), {last['rps']:.0f} req/s on {workers} worker(s)"
            )
        return workers, f"hot but already at max_workers={config.max_workers}"
    down = rated[-config.down_after :]
    if len(down) == config.down_after and all(_calm(w, config, workers) for w in down):
        target = max(config.min_workers, workers - config.step)
        if target < workers:
            return target, (
                f"calm for {config.down_after} windows: p95 < {config.p95_low_ms:g} ms, "
                f"{last['rps']:.1f} req/s for {workers} worker(s)"
            )
    return workers, "within the band"


class LatencyAutoscale(Strategy):
    """Scale a service's workers on latency, queue depth and request rate."""

    name = "latency-autoscale"
    Config = AutoscaleConfig
    config: AutoscaleConfig

    def guardrails(self) -> Guardrails:
        return Guardrails(
            cooldown=self.config.cooldown, max_actions_per_day=self.config.max_actions_per_day
        )

    def declare(self) -> Registry:
        reg = Registry()
        config = self.config

        @reg.sensor(name="service_metrics", keep=max(config.up_after, config.down_after) + 2)
        def service_metrics(ctx: Any) -> Reading:
            control = ctx.toolkit.service(config.service)
            scraped = {**control.metrics(), "at": ctx.now}
            facts = window(ctx.watermark, scraped, scraped["at"])
            status = control.status()
            facts["workers"] = int(status.get("workers") or facts.get("workers") or 0)
            return Reading(facts, watermark=scraped)

        @reg.rule(name="scale_on_latency")
        def scale_on_latency(facts: Facts) -> Decision | None:
            if not facts.is_new("service_metrics"):
                return None
            windows = facts.last("service_metrics", max(config.up_after, config.down_after))
            workers = int(windows[-1].get("workers") or config.min_workers)
            target, reason = target_workers(windows, workers, config)
            if target == workers:
                return None
            last = windows[-1]
            return decide(
                reason,
                ("scale", {"workers": target}),
                key="scale",
                evidence={
                    "workers": workers,
                    "target": target,
                    "p95_ms": last.get("p95_ms"),
                    "queue_depth": last.get("queue_depth"),
                    "rps": last.get("rps"),
                    "p95_high_ms": config.p95_high_ms,
                    "p95_low_ms": config.p95_low_ms,
                },
            )

        @reg.actuator(name="scale", timeout=60)
        def scale(ctx: Any, workers: int) -> dict[str, Any]:
            status = ctx.toolkit.service(config.service).scale(workers)
            return {"workers": status.get("workers", workers)}

        return reg
