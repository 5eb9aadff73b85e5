"""What sensors and actuators are handed when they run."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scanflow.agents.toolkit import Toolkit


@dataclass
class SensorContext:
    """A sensor's view: its last ``watermark``, the agent's config and toolkit."""

    agent: str
    sensor: str
    watermark: Any
    config: Mapping[str, Any]
    toolkit: Toolkit
    now: float


@dataclass
class ActionContext:
    """An actuator step's view of its decision.

    ``results`` holds the results of the plan's earlier steps (by action name).
    ``checkpoint`` is what this step saved with :meth:`save` before a crash, and
    ``resumed`` tells that the step runs again after a restart: an actuator uses them to
    continue (e.g. resume a workflow run) instead of starting over.
    """

    agent: str
    decision_id: str
    step: int
    action: str
    config: Mapping[str, Any]
    toolkit: Toolkit
    evidence: Mapping[str, Any] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    checkpoint: dict[str, Any] = field(default_factory=dict)
    resumed: bool = False
    correlation_id: str | None = None
    _save: Callable[[dict[str, Any]], None] = lambda data: None
    _send: Callable[[str, str, dict[str, Any]], str] = lambda to, intent, payload: ""

    def save(self, checkpoint: dict[str, Any]) -> None:
        """Persist progress of this step now (kept across a crash of the agent)."""
        self.checkpoint = dict(checkpoint)
        self._save(self.checkpoint)

    def send(self, to: str, intent: str, payload: dict[str, Any] | None = None) -> str:
        """Send a message to agent ``to`` in this decision's case; returns its id."""
        return self._send(to, intent, payload or {})
