"""What an engine reports while a run goes on: one :class:`StepEvent` per change."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

RUN_ENDS = frozenset({"succeeded", "failed", "cancelled", "interrupted"})
"""Statuses of a run's last event (``interrupted``: the engine died, see ``resume``)."""


@dataclass(frozen=True)
class StepEvent:
    """Something that happened to a step (or to the run, when ``step`` is empty)."""

    run_id: str
    step: str
    status: str
    attempt: int = 0
    duration: float | None = None
    message: str = ""

    @property
    def ends_run(self) -> bool:
        """Whether this is the run's last event (the run reached a final status)."""
        return not self.step and self.status in RUN_ENDS


EventHandler = Callable[[StepEvent], None]
