"""What sensors read and what rules see: readings with watermarks, and the facts of a tick."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scanflow.agents.triggers import Event


@dataclass(frozen=True)
class Reading:
    """What one sensor saw since its last ``watermark``, and the watermark to keep.

    ``facts`` is a JSON-friendly mapping. ``watermark`` is stored when the tick that
    produced the reading is recorded, so the next call sees only what is newer.
    A sensor returns ``None`` (or a reading with empty facts) when nothing is new.
    """

    facts: dict[str, Any]
    watermark: Any = None


@dataclass(frozen=True)
class Facts:
    """Everything a rule may look at; rules are pure functions of this object."""

    now: float
    readings: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    new: frozenset[str] = frozenset()
    history: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)
    event: Event | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    decisions: tuple[dict[str, Any], ...] = ()

    def get(self, sensor: str, key: str | None = None, default: Any = None) -> Any:
        """The latest reading of ``sensor`` (or one of its keys)."""
        reading = self.readings.get(sensor)
        if reading is None:
            return default
        return reading if key is None else reading.get(key, default)

    def is_new(self, sensor: str) -> bool:
        """Whether ``sensor`` produced a reading in this tick."""
        return sensor in self.new

    def last(self, sensor: str, n: int) -> list[dict[str, Any]]:
        """The ``n`` most recent readings of ``sensor``, oldest first."""
        return list(self.history.get(sensor, []))[-n:]

    def message(self) -> dict[str, Any] | None:
        """The message that woke the agent, if one did."""
        return self.event.data if self.event is not None and self.event.kind == "message" else None

    def last_decision(self, action: str, status: str | None = "succeeded") -> dict[str, Any] | None:
        """The newest recorded decision whose first step is ``action`` (with ``status``)."""
        for decision in reversed(self.decisions):
            if decision.get("action") == action and status in (None, decision.get("status")):
                return decision
        return None
