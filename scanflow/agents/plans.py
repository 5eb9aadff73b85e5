"""What rules decide: a decision is a plan of actuator steps, with its evidence."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Step(BaseModel):
    """One call of an actuator with its parameters."""

    model_config = ConfigDict(extra="forbid")

    action: str
    params: dict[str, Any] = Field(default_factory=dict)


class Decision(BaseModel):
    """A rule's verdict: why (``reason``, ``evidence``) and what to do (``steps``).

    ``key`` groups decisions for the guardrails (cooldown, actions per day); it defaults to
    the first step's action. A decision with no steps is recorded but acts on nothing.
    With ``approval`` the plan waits (status ``awaiting``) until a person approves it on
    the control server; the agent then carries it out.
    """

    model_config = ConfigDict(extra="forbid")

    reason: str
    steps: list[Step] = Field(default_factory=list)
    evidence: dict[str, Any] = Field(default_factory=dict)
    key: str | None = None
    correlation_id: str | None = None
    guarded: bool = True
    approval: bool = False

    @property
    def action(self) -> str:
        """The first step's action (``none`` when there is no step)."""
        return self.steps[0].action if self.steps else "none"

    @property
    def guard_key(self) -> str:
        """What the cooldown and the daily limit count against."""
        return self.key or self.action


def decide(
    reason: str,
    *steps: tuple[str, dict[str, Any]] | str,
    evidence: dict[str, Any] | None = None,
    key: str | None = None,
    correlation_id: str | None = None,
    guarded: bool = True,
    approval: bool = False,
) -> Decision:
    """Shorthand: ``decide("drift confirmed", ("retrain", {...}), "promote", evidence={...})``."""
    plan = [Step(action=s) if isinstance(s, str) else Step(action=s[0], params=s[1]) for s in steps]
    return Decision(
        reason=reason,
        steps=plan,
        evidence=evidence or {},
        key=key,
        correlation_id=correlation_id,
        guarded=guarded,
        approval=approval,
    )


class Outcome(BaseModel):
    """What an actuator step did.

    ``ok=False`` fails the decision; ``stop=True`` ends the plan early on purpose (e.g. a
    gate that rejects a candidate) and the decision still succeeds with this outcome.
    """

    model_config = ConfigDict(extra="forbid")

    ok: bool = True
    stop: bool = False
    message: str = ""
    result: dict[str, Any] = Field(default_factory=dict)
