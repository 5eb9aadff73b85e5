"""Triggers: when an agent wakes up.

Time triggers (:class:`Every`, :class:`Cron`, :class:`At`) say when they fire next;
event triggers match :class:`Event` objects produced by messages and by the watchers in
:mod:`scanflow.agents.watchers` (a workflow run finished, a registry alias moved, N new
predictions logged, a metric crossed a threshold). All are plain data, so they are
declared in Python or in ``scanflow.yaml`` and tested without a running agent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

EventKind = Literal["time", "message", "run_finished", "alias_moved", "predictions", "metric"]


@dataclass(frozen=True)
class Event:
    """Something that woke an agent: ``kind`` and what it carries."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)


class _Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def next_fire(self, after: float) -> float | None:
        """When a time trigger fires next after ``after`` (None: never, or an event trigger)."""
        return None

    def matches(self, event: Event) -> bool:
        """Whether ``event`` fires this trigger."""
        return False


class Every(_Trigger):
    """Every ``every`` seconds."""

    every: float = Field(gt=0)

    def next_fire(self, after: float) -> float | None:
        return after + self.every


class Cron(_Trigger):
    """On a cron schedule such as ``*/5 * * * *`` (UTC; a sixth field means seconds)."""

    cron: str

    @field_validator("cron")
    @classmethod
    def _valid(cls, value: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError(
                f"{value!r} is not a cron expression; use five fields such as '*/5 * * * *'"
            )
        return value

    def next_fire(self, after: float) -> float | None:
        from croniter import croniter

        return float(croniter(self.cron, datetime.fromtimestamp(after, UTC)).get_next(float))


class At(_Trigger):
    """Once, at a date and time (ISO 8601; UTC when no zone is given)."""

    at: datetime

    def next_fire(self, after: float) -> float | None:
        when = self.at if self.at.tzinfo else self.at.replace(tzinfo=UTC)
        stamp = when.timestamp()
        return stamp if stamp > after else None


class OnMessage(_Trigger):
    """A message from another agent, optionally only of one intent or sender."""

    on: Literal["message"] = "message"
    intent: str | None = None
    sender: str | None = None

    def matches(self, event: Event) -> bool:
        return (
            event.kind == "message"
            and self.intent in (None, event.data.get("intent"))
            and self.sender in (None, event.data.get("sender"))
        )


class _Polled(_Trigger):
    poll: float = Field(default=1.0, gt=0, description="seconds between checks")


class OnRunFinished(_Polled):
    """A workflow run finished, optionally only of one workflow or with one status."""

    on: Literal["run_finished"] = "run_finished"
    workflow: str | None = None
    status: str | None = None

    def matches(self, event: Event) -> bool:
        return (
            event.kind == "run_finished"
            and self.workflow in (None, event.data.get("workflow"))
            and self.status in (None, event.data.get("status"))
        )


class OnAliasMoved(_Polled):
    """A registry alias (``model@alias``) now points at another version."""

    on: Literal["alias_moved"] = "alias_moved"
    model: str
    alias: str = "champion"

    def matches(self, event: Event) -> bool:
        return (
            event.kind == "alias_moved"
            and event.data.get("model") == self.model
            and event.data.get("alias") == self.alias
        )


class OnPredictions(_Polled):
    """``count`` new predictions were logged by ``service`` since this trigger last fired."""

    on: Literal["predictions"] = "predictions"
    service: str
    count: int = Field(default=100, ge=1)

    def matches(self, event: Event) -> bool:
        return event.kind == "predictions" and event.data.get("service") == self.service


class OnMetric(_Polled):
    """A metric crossed a threshold (fires once per crossing, re-arms when it goes back)."""

    on: Literal["metric"] = "metric"
    metric: str
    service: str | None = None
    above: float | None = None
    below: float | None = None

    @model_validator(mode="after")
    def _one_threshold(self) -> OnMetric:
        if (self.above is None) == (self.below is None):
            raise ValueError("a metric trigger needs exactly one of 'above' or 'below'")
        return self

    def crossed(self, value: float) -> bool:
        """Whether ``value`` is on the far side of the threshold."""
        return value > self.above if self.above is not None else value < self.below  # type: ignore[operator]

    def matches(self, event: Event) -> bool:
        return event.kind == "metric" and event.data.get("metric") == self.metric


Trigger = Every | Cron | At | OnMessage | OnRunFinished | OnAliasMoved | OnPredictions | OnMetric
EVENT_TRIGGERS = (OnMessage, OnRunFinished, OnAliasMoved, OnPredictions, OnMetric)
_ON: dict[str, type[BaseModel]] = {
    "message": OnMessage,
    "run_finished": OnRunFinished,
    "alias_moved": OnAliasMoved,
    "predictions": OnPredictions,
    "metric": OnMetric,
}
_TIME: dict[str, type[BaseModel]] = {"every": Every, "cron": Cron, "at": At}
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_seconds(text: str | float) -> float:
    """``5``, ``"5s"``, ``"250ms"``, ``"2m"``, ``"1h"`` -> seconds."""
    if isinstance(text, int | float):
        return float(text)
    raw = text.strip().lower()
    for unit in sorted(_UNITS, key=len, reverse=True):
        if raw.endswith(unit) and raw[: -len(unit)].strip().replace(".", "", 1).isdigit():
            return float(raw[: -len(unit)]) * _UNITS[unit]
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration; write e.g. 5, '5s', '250ms', '2m'") from None


def parse_trigger(value: Any) -> Trigger:
    """A trigger from its declared form.

    Mappings: ``{every: 5s}``, ``{cron: "*/5 * * * *"}``, ``{at: 2026-01-01T00:00:00}``,
    ``{event: message, intent: drift}``, ``{event: run_finished, workflow: train}``,
    ``{event: alias_moved, model: digits}``, ``{event: predictions, service: digits,
    count: 500}``, ``{event: metric, metric: p95_ms, service: digits, above: 200}``
    (``on:`` is a synonym of ``event:``). Strings: ``"every 5s"``, ``"cron */5 * * * *"``,
    ``"on message"``.
    """
    if isinstance(value, _Trigger):
        return value  # type: ignore[return-value]
    if isinstance(value, str):
        head, _, rest = value.strip().partition(" ")
        value = (
            {head: rest.strip()}
            if head in _TIME
            else {"on": rest.strip()}
            if head == "on"
            else None
        )
        if value is None:
            raise ValueError(
                "a trigger string starts with 'every', 'cron', 'at' or 'on' "
                "(e.g. 'every 5s', 'on message')"
            )
    if not isinstance(value, dict):
        raise ValueError(f"a trigger is a mapping or a string, not {type(value).__name__}")
    value = dict(value)
    if True in value:  # YAML 1.1 reads an unquoted key 'on' as true
        value["on"] = value.pop(True)
    if "event" in value:
        value["on"] = value.pop("event")
    kinds = [k for k in ("every", "cron", "at", "on") if k in value]
    if len(kinds) != 1:
        raise ValueError(
            "a trigger needs exactly one of 'every', 'cron', 'at' or 'event' "
            f"(got keys: {', '.join(map(str, value)) or 'none'})"
        )
    kind = kinds[0]
    if kind == "every":
        return Every(**{**value, "every": parse_seconds(value["every"])})
    if kind in _TIME:
        return cast(Trigger, TypeAdapter(_TIME[kind]).validate_python(value))
    cls = _ON.get(value["on"])
    if cls is None:
        raise ValueError(f"unknown event {value['on']!r}; choose one of: {', '.join(_ON)}")
    data = dict(value)
    if "poll" in data:
        data["poll"] = parse_seconds(data["poll"])
    return cast(Trigger, cls.model_validate(data))
