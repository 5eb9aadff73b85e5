"""Guardrails: cooldowns and a daily cap on actions, as pure functions of the past."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

DAY = 86_400.0


class Guardrails(BaseModel):
    """Limits on how often an agent acts.

    ``cooldown``: seconds between two actions with the same key (``cooldowns`` overrides it
    per key). ``max_actions_per_day``: actions of any key in a rolling 24 hours.
    """

    model_config = ConfigDict(extra="forbid")

    cooldown: float = Field(default=0.0, ge=0)
    cooldowns: dict[str, float] = Field(default_factory=dict)
    max_actions_per_day: int | None = Field(default=None, ge=0)

    def cooldown_for(self, key: str) -> float:
        """The cooldown of ``key``."""
        return self.cooldowns.get(key, self.cooldown)


def blocked_by(
    key: str,
    acted: Iterable[tuple[str, float]],
    now: float,
    rails: Guardrails,
    running: Iterable[str] = (),
) -> str | None:
    """Why an action with ``key`` may not start at ``now`` (None when it may).

    ``acted`` lists ``(key, started_at)`` of the actions already taken; ``running`` the keys
    of plans not finished yet (one plan per key at a time, so decisions do not pile up
    behind a slow action).
    """
    acted = list(acted)
    if key in set(running):
        return f"in progress: a {key!r} plan has not finished yet"
    cooldown = rails.cooldown_for(key)
    same = [at for k, at in acted if k == key]
    if cooldown and same and now - max(same) < cooldown:
        left = cooldown - (now - max(same))
        return (
            f"cooldown: last {key!r} {now - max(same):.1f}s ago, {left:.1f}s left of {cooldown:g}s"
        )
    if rails.max_actions_per_day is not None:
        today = sum(1 for _, at in acted if now - at < DAY)
        if today >= rails.max_actions_per_day:
            return (
                f"daily limit: {today} action(s) in the last 24h (max {rails.max_actions_per_day})"
            )
    return None
