"""Schedules: when a workflow runs by itself (on a clock, or when something happens).

A schedule names a workflow and exactly one thing that fires it: ``cron`` or ``interval``
(time), ``watch`` (new files under a folder or an S3 prefix), ``alias`` (a registry alias
moved) or ``after`` (another workflow finished). Rules across objects (the workflow and
its parameters exist, the watched folder exists) live in :mod:`scanflow.spec.checks`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from scanflow.spec.names import Name, Parameters

TIME_KINDS = ("cron", "interval")
EVENT_KINDS = ("watch", "alias", "after")
CatchUp = Literal["none", "latest", "all"]
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> Any:
    """``30``, ``"30s"``, ``"5m"``, ``"6h"``, ``"1d"`` -> seconds (other types pass on)."""
    if not isinstance(value, str):
        return value
    raw = value.strip().lower()
    unit = _UNITS.get(raw[-1:]) if raw else None
    number = raw[:-1] if unit else raw
    try:
        return float(number) * (unit or 1.0)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a duration; write seconds or a number with s, m, h or d "
            "(e.g. 90, '15m', '6h')"
        ) from None


Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]


class Schedule(BaseModel):
    """One schedule of ``schedules:``: ``workflow`` run with ``parameters`` whenever its
    trigger fires, at most ``max_concurrent`` runs at once."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    def __init__(self, name: str | None = None, /, **data: Any) -> None:
        if name is not None:
            data["name"] = name
        super().__init__(**data)

    name: Name
    workflow: Name
    cron: str | None = Field(default=None, description="Five cron fields, e.g. '0 3 * * *'.")
    interval: Duration | None = Field(default=None, description="Every so long, e.g. '6h'.")
    watch: str | None = Field(
        default=None,
        description="A folder (relative to scanflow.yaml) or 's3://bucket/prefix' whose new "
        "files fire the schedule.",
    )
    pattern: str = Field(default="*", description="Glob the new files' names must match.")
    alias: str | None = Field(default=None, description="'model@alias' whose moves fire it.")
    after: str | None = Field(default=None, description="A workflow whose finished runs fire it.")
    after_status: Literal["succeeded", "failed", "any"] = "succeeded"
    timezone: str = "UTC"
    parameters: Parameters = Field(default_factory=dict)
    max_concurrent: int = Field(default=1, ge=1)
    catch_up: CatchUp = "latest"
    poll: Duration = Field(default=10.0, description="Seconds between checks of an event.")
    paused: bool = False

    @property
    def kind(self) -> str:
        """What fires it: ``cron``, ``interval``, ``watch``, ``alias`` or ``after``."""
        return next(k for k in (*TIME_KINDS, *EVENT_KINDS) if getattr(self, k) is not None)

    @property
    def timed(self) -> bool:
        """Whether a clock fires it (cron or interval), rather than an event."""
        return self.kind in TIME_KINDS

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        from croniter import croniter

        if value is not None and (len(value.split()) != 5 or not croniter.is_valid(value)):
            raise ValueError(
                f"{value!r} is not a cron expression; write five fields, minute hour "
                "day-of-month month day-of-week, e.g. '0 3 * * *' (03:00 every day)"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA time zone; write e.g. 'UTC', 'Europe/Madrid' "
                "or 'America/New_York'"
            ) from None
        return value

    @field_validator("alias")
    @classmethod
    def _model_at_alias(cls, value: str | None) -> str | None:
        if value is not None:
            model, at, alias = value.rpartition("@")
            if not at or not model or not alias:
                raise ValueError(f"{value!r} is not 'model@alias' (e.g. 'digits@champion')")
        return value

    @model_validator(mode="after")
    def _one_trigger(self) -> Schedule:
        given = [k for k in (*TIME_KINDS, *EVENT_KINDS) if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"schedule {self.name!r} needs exactly one of 'cron', 'interval', 'watch', "
                f"'alias' or 'after' (got {', '.join(given) or 'none'})"
            )
        if self.after is not None and self.after == self.workflow:
            raise ValueError(
                f"schedule {self.name!r} runs {self.workflow!r} after {self.workflow!r} "
                "itself, which would loop forever; name another workflow in 'after'"
            )
        return self
