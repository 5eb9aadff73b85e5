"""What users declare: sensors, rules and actuators (decorators), gathered in registries.

Nothing here runs anything; :mod:`scanflow.agents.runtime` reacts to what is declared.

    from scanflow.agents import sensor, rule, actuator, decide

    @sensor(timeout=5)
    def queue(ctx):                       # ctx.watermark: what the last tick saw
        ...
        return Reading({"depth": depth}, watermark=offset)

    @rule
    def too_deep(facts):                  # a pure function of the facts
        if facts.get("queue", "depth", 0) > 100:
            return decide("queue too deep", ("scale", {"workers": 4}))

    @actuator
    def scale(ctx, workers):
        ctx.toolkit.service("digits").scale(workers)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from scanflow.agents.triggers import Trigger, parse_trigger

F = TypeVar("F", bound=Callable[..., Any])
ATTRIBUTE = "__scanflow_declared__"


@dataclass(frozen=True)
class SensorDecl:
    """A sensor: ``fn(ctx) -> Reading | dict | None``; runs on ``trigger`` or every tick."""

    name: str
    fn: Callable[..., Any]
    trigger: Trigger | None = None
    timeout: float | None = None
    keep: int = 20


@dataclass(frozen=True)
class RuleDecl:
    """A rule: ``fn(facts) -> Decision | list[Decision] | None``, pure."""

    name: str
    fn: Callable[..., Any]


@dataclass(frozen=True)
class ActuatorDecl:
    """An actuator: ``fn(ctx, **params) -> Outcome | dict | None``; the only side effects."""

    name: str
    fn: Callable[..., Any]
    timeout: float | None = None


Declaration = SensorDecl | RuleDecl | ActuatorDecl


@dataclass
class Registry:
    """Sensors, rules and actuators by name."""

    sensors: dict[str, SensorDecl] = field(default_factory=dict)
    rules: dict[str, RuleDecl] = field(default_factory=dict)
    actuators: dict[str, ActuatorDecl] = field(default_factory=dict)
    strict: bool = True

    def add(self, decl: Declaration) -> None:
        """Register one declaration (a name may be declared once per kind)."""
        table: dict[str, Any] = (
            self.sensors
            if isinstance(decl, SensorDecl)
            else self.rules
            if isinstance(decl, RuleDecl)
            else self.actuators
        )
        if self.strict and decl.name in table and table[decl.name].fn is not decl.fn:
            kind = type(decl).__name__.removesuffix("Decl").lower()
            raise ValueError(f"{kind} {decl.name!r} is declared twice; give one a name=")
        table[decl.name] = decl

    def merge(self, other: Registry) -> Registry:
        """Everything of ``other`` added to this registry; returns self."""
        decls: list[Declaration] = [*other.sensors.values(), *other.rules.values()]
        for decl in [*decls, *other.actuators.values()]:
            self.add(decl)
        return self

    # -- decorators -------------------------------------------------------------------
    def sensor(
        self,
        fn: F | None = None,
        *,
        name: str | None = None,
        trigger: Any = None,
        timeout: float | None = None,
        keep: int = 20,
    ) -> Any:
        """Declare a sensor (bare ``@sensor`` or ``@sensor(trigger={"every": 5}, timeout=2)``);
        without ``timeout`` it gets the agent's ``sensor_timeout``."""

        def wrap(f: F) -> F:
            decl = SensorDecl(
                name or f.__name__,
                f,
                parse_trigger(trigger) if trigger is not None else None,
                timeout,
                keep,
            )
            self.add(decl)
            setattr(f, ATTRIBUTE, decl)
            return f

        return wrap(fn) if fn is not None else wrap

    def rule(self, fn: F | None = None, *, name: str | None = None) -> Any:
        """Declare a rule (bare ``@rule`` or ``@rule(name=...)``)."""

        def wrap(f: F) -> F:
            decl = RuleDecl(name or f.__name__, f)
            self.add(decl)
            setattr(f, ATTRIBUTE, decl)
            return f

        return wrap(fn) if fn is not None else wrap

    def actuator(
        self, fn: F | None = None, *, name: str | None = None, timeout: float | None = None
    ) -> Any:
        """Declare an actuator (bare ``@actuator`` or ``@actuator(name=..., timeout=...)``)."""

        def wrap(f: F) -> F:
            decl = ActuatorDecl(name or f.__name__, f, timeout)
            self.add(decl)
            setattr(f, ATTRIBUTE, decl)
            return f

        return wrap(fn) if fn is not None else wrap


# Module-level decorators only mark functions; agents pick them by reference.
default_registry = Registry(strict=False)
sensor = default_registry.sensor
rule = default_registry.rule
actuator = default_registry.actuator


def import_object(reference: str) -> Any:
    """The object named by ``'package.module:name'``."""
    module_name, _, attr = reference.partition(":")
    if not module_name or not attr:
        raise ValueError(f"{reference!r} is not 'module:name' (e.g. 'agents.drift:check')")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r} for {reference!r}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"module {module_name!r} has no {attr!r} (from {reference!r})")
        obj = getattr(obj, part)
    return obj


def resolve(reference: str, kind: type[Declaration]) -> Declaration:
    """The declaration behind ``'module:function'``; a plain function gets default options."""
    obj = import_object(reference)
    decl = getattr(obj, ATTRIBUTE, None)
    if isinstance(decl, kind):
        return decl
    if decl is not None:
        found = type(decl).__name__.removesuffix("Decl").lower()
        wanted = kind.__name__.removesuffix("Decl").lower()
        raise ValueError(f"{reference!r} is declared as a {found}, not a {wanted}")
    if not callable(obj):
        raise ValueError(f"{reference!r} is not a function")
    name = reference.rpartition(":")[2].rpartition(".")[2]
    return kind(name, obj)
