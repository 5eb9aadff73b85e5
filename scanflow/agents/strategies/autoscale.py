"""LatencyAutoscale: queue depth, request rate, p95 latency and CPU -> number of workers.

Monitor: a sensor scrapes the service's metrics and samples CPU (the machine's, and the
service's workers'); its watermark is the previous scrape, so each tick sees the window
since the last one. Analyse and plan, as pure functions of the facts:

- :func:`target_workers`: up when the workers are busy and requests wait or answer slowly,
  down when fewer workers would carry the load, with hysteresis;
- :func:`review_scale_up`: a scale-up that did not help (latency and throughput no better
  after ``settle`` seconds, or the CPU saturated by other processes) is undone, and
  scale-ups are held off for ``hold`` seconds.

Execute: the service's live scaling API. A cooldown separates two changes.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    settle: float = Field(
        default=10.0, gt=0, description="seconds after a scale-up before judging whether it helped"
    )
    improve_margin: float = Field(
        default=0.2, ge=0, lt=1, description="share by which p95 must fall or throughput rise"
    )
    hold: float = Field(
        default=60.0, ge=0, description="seconds without scale-ups after one that did not help"
    )
    cpu_high: float = Field(
        default=0.9, gt=0, le=1, description="machine CPU share that counts as saturated"
    )
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
    """Requests wait (queue), or the workers are loaded and answer slowly, or each serves
    more than ``rps_per_worker_high``. Slow answers at a low load are not a shortage of
    workers (a slow model, or a CPU busy with other work): more workers would not help."""
    p95 = w.get("p95_ms")
    per_worker = w.get("rps", 0.0) / max(workers, 1)
    loaded = per_worker >= c.rps_per_worker_low or w.get("queue_depth", 0) > 0
    busy = c.rps_per_worker_high is not None and per_worker > c.rps_per_worker_high
    slow = p95 is not None and p95 > c.p95_high_ms and loaded
    return slow or w.get("queue_depth", 0) > c.queue_high or busy


def _calm(w: dict[str, Any], c: AutoscaleConfig, workers: int) -> bool:
    """The queue is short and one worker fewer would still serve fewer than
    ``rps_per_worker_low`` each (whatever the latency), or latency is under ``p95_low_ms``
    and each worker serves fewer than ``rps_per_worker_low``."""
    p95 = w.get("p95_ms")
    rps = w.get("rps", 0.0)
    if w.get("queue_depth", 0) > c.queue_high / 2:
        return False
    fewer = rps / max(workers - 1, 1) < c.rps_per_worker_low
    fast = (p95 is None or p95 < c.p95_low_ms) and rps / max(workers, 1) < c.rps_per_worker_low
    return fewer or fast


def held_until(
    decisions: Sequence[dict[str, Any]], config: AutoscaleConfig
) -> tuple[float, str] | None:
    """Until when scale-ups are held off, and why: ``hold`` seconds after one that did not
    help, ``settle`` seconds after any that happened (it is judged before another); None:
    not held."""
    for decision in reversed(decisions):
        evidence = decision.get("evidence") or {}
        if decision.get("action") != "scale" or decision.get("status") in ("blocked", "failed"):
            continue  # a scale that did not happen holds nothing back
        if evidence.get("futile"):
            return float(decision["created_at"]) + config.hold, "the last scale-up did not help"
        if evidence.get("target", 0) > evidence.get("workers", 0):
            done = decision.get("finished_at") or decision["created_at"]
            return float(done) + config.settle, "the last scale-up is settling"
        return None
    return None


def target_workers(
    windows: list[dict[str, Any]],
    workers: int,
    config: AutoscaleConfig,
    now: float | None = None,
    hold: tuple[float, str] | None = None,
) -> tuple[int, str]:
    """How many workers the recent ``windows`` call for, and why (pure); no scale-up before
    ``hold`` (a time and its reason, from :func:`held_until`)."""
    rated = [w for w in windows if "rps" in w]
    if not rated:
        return workers, "no complete window yet"
    last = rated[-1]
    up = rated[-config.up_after :]
    if len(up) == config.up_after and all(_hot(w, config, workers) for w in up):
        target = min(config.max_workers, workers + config.step)
        if target > workers and hold is not None and now is not None and now < hold[0]:
            return workers, f"hot, but {hold[1]}: held for {hold[0] - now:.0f}s"
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
                f"calm for {config.down_after} windows: queue {last['queue_depth']:g}, "
                f"{last['rps']:.1f} req/s for {workers} worker(s) "
                f"(low {config.rps_per_worker_low:g} per worker)"
            )
    return workers, "within the band"


def _mean(windows: list[dict[str, Any]], key: str) -> float | None:
    values = [float(w[key]) for w in windows if w.get(key) is not None]
    return sum(values) / len(values) if values else None


def figures(windows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Mean p95, throughput and CPU shares of ``windows`` (what a scale-up is judged on)."""
    keys = ("p95_ms", "rps", "cpu_busy", "cpu_service", "cpu_others")
    return {key: _mean(windows, key) for key in keys}


def saturated_by_others(fig: dict[str, float | None], config: AutoscaleConfig) -> bool:
    """The machine's CPU is saturated and other processes use more of it than the service."""
    busy, others, service = fig.get("cpu_busy"), fig.get("cpu_others"), fig.get("cpu_service")
    return busy is not None and busy >= config.cpu_high and (others or 0.0) > (service or 0.0)


def review_scale_up(
    windows: list[dict[str, Any]],
    decisions: Sequence[dict[str, Any]],
    now: float,
    config: AutoscaleConfig,
) -> tuple[int, str, dict[str, Any]] | None:
    """Undo the last scale-up when, ``settle`` seconds after it, neither p95 fell nor
    throughput rose by ``improve_margin``, or the CPU was saturated by others: the workers
    it had before, why, and the evidence (pure). None while it settles or when it helped."""
    last = next(
        (
            d
            for d in reversed(decisions)
            if d.get("action") == "scale" and d.get("status") != "blocked"
        ),
        None,
    )
    if last is None or last.get("status") != "succeeded" or not last.get("finished_at"):
        return None
    evidence = last.get("evidence") or {}
    before, workers = evidence.get("before"), evidence.get("workers")
    if not before or workers is None or evidence.get("target", 0) <= workers:
        return None  # not a scale-up, or one recorded without figures
    done = float(last["finished_at"])
    if now < done + config.settle:
        return None
    since = [  # windows that began after the scale-up finished
        w
        for w in windows
        if "rps" in w and w.get("at") is not None and w["at"] - w.get("seconds", 0.0) >= done
    ]
    after_windows = [w for w in since if w["at"] <= done + config.settle] or since[:1]
    if not after_windows:
        return None
    after = figures(after_windows)
    margin = config.improve_margin
    p95_before, p95_after = before.get("p95_ms"), after.get("p95_ms")
    faster = (
        p95_before is not None and p95_after is not None and p95_after <= p95_before * (1 - margin)
    )
    more = (after.get("rps") or 0.0) >= (before.get("rps") or 0.0) * (1 + margin)
    crowded = saturated_by_others(after, config)
    if (faster or more) and not crowded:
        return None
    why = (
        "the CPU is saturated by other processes"
        if crowded
        else f"p95 {p95_after or 0:.0f} ms (was {p95_before or 0:.0f}), "
        f"{after.get('rps') or 0:.0f} req/s (was {before.get('rps') or 0:.0f})"
    )
    return (
        int(workers),
        f"scale-up to {evidence['target']} did not help after {config.settle:g}s: {why}; "
        f"back to {workers}, no scale-up for {config.hold:g}s",
        {"futile": True, "before": before, "after": after, "scale_up": last.get("id")},
    )


def stuck(last: dict[str, Any], decisions: Sequence[dict[str, Any]]) -> bool:
    """The last scale failed and the service still reports pods that cannot start (an image
    that cannot be pulled): scaling again would fail the same way, so the agent waits until
    the problem is gone instead of retrying every tick."""
    if not last.get("problems"):
        return False
    tried = next(
        (
            d
            for d in reversed(decisions)
            if d.get("action") == "scale" and d.get("status") != "blocked"
        ),
        None,
    )
    return tried is not None and tried.get("status") == "failed"


class LatencyAutoscale(Strategy):
    """Scale a service's workers on queue depth, request rate, latency and CPU; undo a
    scale-up that did not help."""

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

        @reg.sensor(name="service_metrics", keep=max(config.up_after, config.down_after) + 30)
        def service_metrics(ctx: Any) -> Reading:
            from scanflow.agents.strategies import cpu

            control = ctx.toolkit.service(config.service)
            previous = ctx.watermark or {}
            scraped = {**control.metrics(), "at": ctx.now}
            facts = window(previous or None, scraped, scraped["at"])
            status = control.status()
            sampler = ctx.toolkit.extras.get("cpu_sampler", cpu.sample)
            scraped["cpu"] = sampler(list(status.get("worker_pids") or []), ctx.now)
            facts.update(cpu.shares(previous.get("cpu"), scraped["cpu"]))
            facts["workers"] = int(status.get("workers") or facts.get("workers") or 0)
            if status.get("problems"):
                facts["problems"] = list(status["problems"])
            facts["at"] = ctx.now
            return Reading(facts, watermark=scraped)

        @reg.rule(name="scale_on_load")
        def scale_on_load(facts: Facts) -> Decision | None:
            if not facts.is_new("service_metrics"):
                return None
            history = facts.last("service_metrics", max(config.up_after, config.down_after) + 30)
            last = history[-1]
            if stuck(last, facts.decisions):
                return None
            workers = int(last.get("workers") or config.min_workers)
            review = review_scale_up(history, facts.decisions, facts.now, config)
            if review is not None and review[0] < workers:
                target, reason, evidence = review
                return decide(
                    reason,
                    ("scale", {"workers": target}),
                    key="scale",
                    evidence={**evidence, "workers": workers, "target": target},
                )
            windows = history[-max(config.up_after, config.down_after) :]
            target, reason = target_workers(
                windows, workers, config, facts.now, held_until(facts.decisions, config)
            )
            if target == workers:
                return None
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
                    "cpu_busy": last.get("cpu_busy"),
                    "before": figures(windows[-config.up_after :]),
                    "p95_high_ms": config.p95_high_ms,
                    "p95_low_ms": config.p95_low_ms,
                },
            )

        @reg.actuator(name="scale", timeout=60)
        def scale(ctx: Any, workers: int) -> dict[str, Any]:
            status = ctx.toolkit.service(config.service).scale(workers)
            return {"workers": status.get("workers", workers)}

        return reg
