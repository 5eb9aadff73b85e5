"""Watchers turn outside changes into events, each with its own watermark in the store.

A watcher fires on a *change* (a run that finished since it last looked, an alias that
moved, N more predictions, a metric that crossed its threshold), never on a level that
merely stays crossed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from scanflow.agents.state import AgentState
from scanflow.agents.toolkit import Toolkit
from scanflow.agents.triggers import (
    Event,
    OnAliasMoved,
    OnMetric,
    OnPredictions,
    OnRunFinished,
    Trigger,
)
from scanflow.errors import ScanflowError
from scanflow.store import TERMINAL, RunRecord, Store


class RunFinishedWatcher:
    """Workflow runs of this store that finished since the last check (runs that finished
    before the first check, by ``clock``, do not count)."""

    def __init__(self, store: Store, key: str, clock: Callable[[], float] = time.time) -> None:
        self.store, self.key, self.clock = store, key, clock

    def check(self, state: AgentState) -> list[Event]:
        since = state.get(self.key)
        if since is None:
            state.put({self.key: self.clock()})
            return []
        with self.store.session() as s:
            rows = list(
                s.scalars(
                    select(RunRecord)
                    .where(RunRecord.finished_at > since, RunRecord.status.in_(TERMINAL))
                    .order_by(RunRecord.finished_at)
                )
            )
        if not rows:
            return []
        state.put({self.key: rows[-1].finished_at})
        return [
            Event(
                "run_finished",
                {"run_id": r.id, "workflow": r.workflow, "status": r.status},
                r.finished_at or self.clock(),
            )
            for r in rows
        ]


class AliasWatcher:
    """A registry alias that points at another version than last time."""

    def __init__(self, trigger: OnAliasMoved, toolkit: Toolkit, key: str) -> None:
        self.trigger, self.toolkit, self.key = trigger, toolkit, key

    def check(self, state: AgentState) -> list[Event]:
        version = self.toolkit.model_registry().alias_version(
            self.trigger.model, self.trigger.alias
        )
        seen = state.get(self.key, {"initialised": False})
        if seen.get("initialised") and seen.get("version") == version:
            return []
        state.put({self.key: {"initialised": True, "version": version}})
        if not seen.get("initialised"):
            return []
        data = {
            "model": self.trigger.model,
            "alias": self.trigger.alias,
            "version": version,
            "previous": seen.get("version"),
        }
        return [Event("alias_moved", data)]


class PredictionsWatcher:
    """Every ``count`` predictions logged by a service after the first check (the log's
    history does not count), reading at most ``MAX_READ_BYTES`` per check."""

    MAX_READ_BYTES = 4 * 2**20

    def __init__(self, trigger: OnPredictions, toolkit: Toolkit, key: str) -> None:
        self.trigger, self.toolkit, self.key = trigger, toolkit, key

    def check(self, state: AgentState) -> list[Event]:
        feed = self.toolkit.prediction_log(self.trigger.service)
        seen = state.get(self.key)
        if seen is None:
            state.put({self.key: {"cursor": feed.end(), "count": 0}})
            return []
        records, cursor = feed.read_new(seen["cursor"], self.MAX_READ_BYTES)
        count = seen["count"] + len(records)
        events = []
        if count >= self.trigger.count:
            events.append(Event("predictions", {"service": self.trigger.service, "new": count}))
            count = 0
        state.put({self.key: {"cursor": cursor, "count": count}})
        return events


class MetricWatcher:
    """A service metric crossing a threshold; re-armed once it is back on the near side."""

    def __init__(self, trigger: OnMetric, toolkit: Toolkit, key: str) -> None:
        self.trigger, self.toolkit, self.key = trigger, toolkit, key

    def value(self) -> float | None:
        if self.trigger.service is None:
            source = self.toolkit.extras.get(f"metric:{self.trigger.metric}")
            return None if source is None else float(source())
        metrics = self.toolkit.service(self.trigger.service).metrics()
        if self.trigger.metric not in metrics:
            known = ", ".join(k for k, v in metrics.items() if isinstance(v, int | float))
            raise ScanflowError(
                f"service {self.trigger.service!r} exposes no metric {self.trigger.metric!r} "
                f"(known: {known}); fix 'metric' in the agent's trigger"
            )
        return float(metrics[self.trigger.metric])

    def check(self, state: AgentState) -> list[Event]:
        value = self.value()
        if value is None:
            return []
        armed = state.get(self.key, True)
        crossed = self.trigger.crossed(value)
        if crossed and armed:
            state.put({self.key: False})
            threshold = self.trigger.above if self.trigger.above is not None else self.trigger.below
            return [
                Event(
                    "metric",
                    {
                        "metric": self.trigger.metric,
                        "value": value,
                        "threshold": threshold,
                        "service": self.trigger.service,
                    },
                )
            ]
        if not crossed and not armed:
            state.put({self.key: True})
        return []


def watcher_for(
    trigger: Trigger,
    toolkit: Toolkit,
    store: Store,
    key: str,
    clock: Callable[[], float] = time.time,
) -> Any:
    """The watcher that produces the events of ``trigger``."""
    if isinstance(trigger, OnRunFinished):
        return RunFinishedWatcher(store, key, clock)
    if isinstance(trigger, OnAliasMoved):
        return AliasWatcher(trigger, toolkit, key)
    if isinstance(trigger, OnPredictions):
        return PredictionsWatcher(trigger, toolkit, key)
    if isinstance(trigger, OnMetric):
        return MetricWatcher(trigger, toolkit, key)
    raise TypeError(f"{type(trigger).__name__} is not watched")
