"""Failover: a service that is not ready or keeps failing -> serve the backup model; back to
the primary once the service is healthy and the primary model passes a probe.

Where the backup model has its own deployment (on Kubernetes: the ``<service>-backup``
Deployment, see :class:`~scanflow.agents.interfaces.TrafficRouter`), routing sends the
traffic to it and back, and the primary's readiness decides the way back. Otherwise the
served model follows a registry alias, so routing is moving that alias between the
primary version and the backup version; the service hot-swaps either way. The backup is,
first found: the strategy's ``backup_model``, the service's ``backup_model`` in
``scanflow.yaml``, the ``backup_alias`` of the model (``backup``). A ``backup_model`` is
``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` of the served registered model.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from scanflow.agents.declare import Registry
from scanflow.agents.facts import Facts, Reading
from scanflow.agents.guards import Guardrails
from scanflow.agents.interfaces import TrafficRouter
from scanflow.agents.plans import Decision, Outcome, decide
from scanflow.agents.strategies.base import Strategy, StrategyConfig
from scanflow.agents.strategies.windows import window


class FailoverConfig(StrategyConfig):
    """Options of Failover."""

    service: str
    model: str
    alias: str = "champion"
    backup_alias: str = "backup"
    backup_model: str | None = Field(
        default=None,
        description="models:/NAME@ALIAS or models:/NAME/VERSION; default: the service's "
        "backup_model, else MODEL@backup_alias",
    )
    unhealthy_after: int = Field(default=3, ge=1, description="bad checks in a row")
    healthy_after: int = Field(default=5, ge=1, description="good checks in a row to restore")
    max_error_rate: float = Field(default=0.5, ge=0, le=1)
    min_requests: int = Field(default=5, ge=0, description="fewer requests: error rate ignored")
    swap_timeout: float = Field(default=60.0, gt=0)
    cooldown: float = Field(default=30.0, ge=0)
    interval: float = Field(default=2.0, gt=0)

    @field_validator("backup_model")
    @classmethod
    def _registry_uri(cls, value: str | None) -> str | None:
        if value is not None:
            backup_ref(value)
        return value


def backup_ref(uri: str) -> tuple[str, str, str]:
    """``(name, "alias" | "version", alias or version)`` of a registry model URI."""
    body = uri.removeprefix("models:/").strip("/") if uri.startswith("models:/") else ""
    if "@" in body:
        name, alias = body.split("@", 1)
        if name and alias:
            return name, "alias", alias
    elif "/" in body:
        name, version = body.rsplit("/", 1)
        if name and version.isdigit():
            return name, "version", version
    raise ValueError(
        f"backup model {uri!r} is not models:/NAME@ALIAS or models:/NAME/VERSION; failover "
        "moves the served alias, so the backup must be a version of the served registered model"
    )


def backup_version(toolkit: Any, registry: Any, config: FailoverConfig) -> tuple[str | None, str]:
    """The registry version to fail over to (None when there is none) and its name."""
    uri = config.backup_model
    if uri is None:
        spec = toolkit.extras.get("service_specs", {}).get(config.service)
        uri = spec.backup_model if spec is not None else None
    if uri is None:
        return registry.alias_version(config.model, config.backup_alias), (
            f"{config.model}@{config.backup_alias}"
        )
    name, kind, ref = backup_ref(uri)
    if name != config.model:
        raise ValueError(
            f"backup model {uri!r} is not a version of {config.model!r}, the model failover "
            f"routes; register it as a version of {config.model!r}"
        )
    return (registry.alias_version(name, ref) if kind == "alias" else ref), uri


def healthy(reading: dict[str, Any], config: FailoverConfig) -> bool:
    """Ready, and not failing more than ``max_error_rate`` of enough requests."""
    if not reading.get("ready"):
        return False
    requests = reading.get("requests") or 0
    return requests < config.min_requests or reading.get("error_rate", 0.0) <= config.max_error_rate


def failed_over(facts: Facts) -> dict[str, Any] | None:
    """The failover in force (the last successful one not followed by a restore)."""
    moved = facts.last_decision("failover")
    restored = facts.last_decision("restore")
    if moved is None or (restored is not None and restored["created_at"] > moved["created_at"]):
        return None
    return moved


def route(facts: Facts, config: FailoverConfig) -> Decision | None:
    """Fail over after ``unhealthy_after`` bad checks; restore after ``healthy_after`` good
    ones on the backup (pure)."""
    if not facts.is_new("health"):
        return None
    active = failed_over(facts)
    if active is None:
        recent = facts.last("health", config.unhealthy_after)
        if len(recent) == config.unhealthy_after and not any(healthy(r, config) for r in recent):
            last = recent[-1]
            return decide(
                f"service {config.service} unhealthy for {config.unhealthy_after} checks "
                f"(ready={last.get('ready')}, error rate {last.get('error_rate', 0):.2f})",
                ("failover", {}),
                key="failover",
                evidence={"checks": recent, "max_error_rate": config.max_error_rate},
            )
        return None
    since = active.get("finished_at") or active["created_at"]
    recent = [r for r in facts.last("health", config.healthy_after) if r.get("at", 0) > since]
    if len(recent) == config.healthy_after and all(healthy(r, config) for r in recent):
        primary = active["results"].get("failover", {}).get("primary")
        return decide(
            f"healthy for {config.healthy_after} checks on the backup; try the primary again",
            ("restore", {"version": primary}),
            key="restore",
            evidence={"checks": len(recent), "primary": primary},
            correlation_id=active["id"],
        )
    return None


def router(control: Any) -> TrafficRouter | None:
    """``control`` when it can send the traffic to a backup deployment, else None."""
    if isinstance(control, TrafficRouter) and control.can_route():
        return control
    return None


def probe(toolkit: Any, model: str, version: str) -> str | None:
    """None when ``model`` version ``version`` loads and predicts; else what went wrong."""
    check = toolkit.extras.get("probe")
    if check is None:
        from scanflow.agents.clients import MlflowProbe

        check = toolkit.extras["probe"] = MlflowProbe(toolkit.extras["tracking_uri"])
    return check(model, version)


class Failover(Strategy):
    """Serve the backup model while the primary fails; restore it when it is healthy."""

    name = "failover"
    Config = FailoverConfig
    config: FailoverConfig

    def guardrails(self) -> Guardrails:
        return Guardrails(
            cooldowns={"failover": self.config.cooldown, "restore": self.config.cooldown},
            max_actions_per_day=self.config.max_actions_per_day,
        )

    def declare(self) -> Registry:
        from scanflow.agents.strategies.actions import wait_served

        reg = Registry()
        config = self.config

        @reg.sensor(name="health", keep=max(config.unhealthy_after, config.healthy_after) + 2)
        def health(ctx: Any) -> Reading:
            control = ctx.toolkit.service(config.service)
            now = ctx.now
            status = control.status()
            facts: dict[str, Any] = {
                "ready": bool(status.get("ready")),
                "version": status.get("model_version"),
                "reachable": status.get("reachable", True),
                "at": now,
            }
            mark = ctx.watermark
            if facts["reachable"]:
                try:
                    scraped = {**control.metrics(), "at": now}
                    rates = window(mark, scraped, now)
                    facts.update(
                        requests=rates.get("requests", 0), error_rate=rates.get("error_rate", 0.0)
                    )
                    mark = scraped
                except Exception as exc:  # noqa: BLE001 - no metrics: judge on readiness
                    facts["metrics_error"] = str(exc)
            return Reading(facts, watermark=mark)

        @reg.rule(name="route")
        def route_rule(facts: Facts) -> Decision | None:
            return route(facts, config)

        @reg.actuator(name="failover", timeout=config.swap_timeout + 30)
        def failover(ctx: Any) -> Outcome:
            switch = router(ctx.toolkit.service(config.service))
            if switch is not None:
                switch.route("backup")
                return Outcome(
                    result={"primary": None, "routed": "backup"},
                    message=f"service {config.service}: traffic -> the backup deployment",
                )
            registry = ctx.toolkit.model_registry()
            primary = ctx.checkpoint.get("primary") or registry.alias_version(
                config.model, config.alias
            )
            try:
                backup, named = backup_version(ctx.toolkit, registry, config)
            except ValueError as exc:
                return Outcome(ok=False, message=str(exc))
            if backup is None:
                return Outcome(
                    ok=False,
                    message=f"no model version behind {named} to fail over to; register one "
                    "or set backup_model",
                )
            if str(backup) == str(primary):
                return Outcome(
                    ok=False, message=f"the backup {named} is the failing version v{primary}"
                )
            ctx.save({"primary": primary})
            registry.set_alias(config.model, config.alias, backup)
            problem = wait_served(ctx, config.service, backup, config.swap_timeout)
            return Outcome(
                result={"primary": primary, "backup": backup, "served": problem is None},
                message=f"{config.alias} -> backup v{backup}"
                + (f" ({problem})" if problem else ""),
            )

        @reg.actuator(name="restore", timeout=config.swap_timeout + 120)
        def restore(ctx: Any, version: str | None) -> Outcome:
            control = ctx.toolkit.service(config.service)
            switch = router(control)
            if switch is not None and switch.routed_to() == "backup":
                status = control.status()
                if not status.get("ready"):
                    return Outcome(ok=False, message="the primary deployment is not ready")
                switch.route("primary")
                return Outcome(
                    result={"routed": "primary"},
                    message=f"service {config.service}: traffic -> the primary deployment "
                    f"({status.get('ready_workers')} pod(s) ready)",
                )
            if not version:
                return Outcome(ok=False, message="the failover recorded no primary version")
            failure = probe(ctx.toolkit, config.model, version)
            if failure is not None:
                return Outcome(ok=False, message=f"primary v{version} still fails: {failure}")
            registry = ctx.toolkit.model_registry()
            backup = registry.alias_version(config.model, config.alias)
            registry.set_alias(config.model, config.alias, version)
            problem = wait_served(ctx, config.service, version, config.swap_timeout)
            if problem is not None:
                registry.set_alias(config.model, config.alias, str(backup))
                return Outcome(ok=False, message=f"{problem}; staying on backup v{backup}")
            return Outcome(result={"version": version}, message=f"primary v{version} restored")

        return reg
