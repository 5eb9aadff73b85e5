"""When a time schedule is due: cron in its time zone, or every ``interval`` seconds
counted from the epoch (so ``6h`` fires at 00:00, 06:00, 12:00 and 18:00 UTC)."""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

from scanflow.spec.schedule import Schedule

MAX_DUE = 1000  # due times enumerated at most per look (catch-up after a long downtime)


def next_due(schedule: Schedule, after: float) -> float:
    """The first due time strictly after ``after`` (epoch seconds)."""
    if schedule.interval is not None:
        step = schedule.interval
        return (math.floor(after / step) + 1) * step
    if schedule.cron is None:
        raise ValueError(f"schedule {schedule.name!r} is not a time schedule")
    from croniter import croniter

    start = datetime.fromtimestamp(after, ZoneInfo(schedule.timezone))
    return float(croniter(schedule.cron, start).get_next(float))


def due_times(schedule: Schedule, after: float, until: float) -> tuple[list[float], int]:
    """Due times in ``(after, until]``, oldest first, the newest :data:`MAX_DUE` of them,
    and how many older ones were left out."""
    found: list[float] = []
    dropped = 0
    due = next_due(schedule, after)
    while due <= until:
        found.append(due)
        if len(found) > MAX_DUE:
            found.pop(0)
            dropped += 1
        due = next_due(schedule, due)
    return found, dropped
