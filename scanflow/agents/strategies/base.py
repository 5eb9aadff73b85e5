"""What a strategy is: a named, configurable bundle of sensors, rules and actuators."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from scanflow.agents.declare import Registry
from scanflow.agents.guards import Guardrails
from scanflow.agents.triggers import Every, Trigger


class StrategyConfig(BaseModel):
    """Options every strategy has; subclasses add their own (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")

    interval: float = Field(default=5.0, gt=0, description="seconds between ticks")
    cooldown: float = Field(default=0.0, ge=0, description="seconds between two actions")
    max_actions_per_day: int | None = Field(default=None, ge=0)
    sensor_timeout: float = Field(default=10.0, gt=0)


class Strategy:
    """Subclass, set ``name`` and ``Config``, and declare the MAPE chain in :meth:`declare`."""

    name: ClassVar[str] = "strategy"
    Config: ClassVar[type[StrategyConfig]] = StrategyConfig

    def __init__(self, config: StrategyConfig | None = None) -> None:
        self.config = config if config is not None else self.Config()

    def declare(self) -> Registry:
        """The strategy's sensors, rules and actuators."""
        return Registry()

    def triggers(self) -> list[Trigger]:
        """When the agent ticks (default: every ``interval`` seconds)."""
        return [Every(every=self.config.interval)]

    def guardrails(self) -> Guardrails:
        """Limits on how often the strategy acts."""
        return Guardrails(
            cooldown=self.config.cooldown, max_actions_per_day=self.config.max_actions_per_day
        )
