"""The local scheduler: fires an application's schedules and starts their runs.

Each :meth:`Scheduler.tick` looks at every schedule once: a time schedule fires for the
due times since the last one it handled (persisted, so downtime is seen and handled by
``catch_up``), an event schedule asks its watcher. A firing starts a run through the
engine registry, as ``scanflow run`` does, unless ``max_concurrent`` runs of the schedule
are still going; every firing is recorded with what caused it. The clock is injectable,
so tests move time instead of waiting.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from scanflow.errors import ScanflowError
from scanflow.schedules.records import ScheduleBook
from scanflow.schedules.timing import due_times, next_due
from scanflow.schedules.watchers import (
    AliasLookup,
    AliasMoved,
    NewFiles,
    UpstreamFinished,
    Watcher,
    folder_lister,
    mlflow_alias_lookup,
    s3_lister,
)
from scanflow.store import Store
from scanflow.store.schedule_models import FiringRecord

if TYPE_CHECKING:
    from scanflow.engines.base import Engine
    from scanflow.spec.loader import Project
    from scanflow.spec.schedule import Schedule

log = logging.getLogger(__name__)

GRACE = 60.0  # a due time this late is on time; older ones were missed (scheduler down)
MAX_WAIT = 5.0  # longest sleep between ticks: pause and resume are seen this fast


class ScheduleNotFound(ScanflowError):
    """No schedule of that name."""


@dataclass(frozen=True)
class ScheduleView:
    """What ``scanflow schedule list`` shows of one schedule."""

    name: str
    workflow: str
    trigger: str
    paused: bool
    last: FiringRecord | None
    next_due: float | None


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


class Scheduler:
    """Fires the schedules of ``project``; state in its store, runs through its engine."""

    def __init__(
        self,
        project: Project,
        *,
        store: Store | None = None,
        engine: Engine | None = None,
        clock: Callable[[], float] = time.time,
        alias_lookup: AliasLookup | None = None,
        s3_client: Any = None,
        engine_options: dict[str, Any] | None = None,
    ) -> None:
        """``engine``: default, the application's (``target``) made with ``engine_options``
        (e.g. ``{"tracking": False}``); ``clock``: epoch seconds."""
        self.project = project
        self._engine_options = engine_options or {}
        self.store = store or Store.for_state_dir(project.state_dir)
        self.book = ScheduleBook(self.store)
        self.clock = clock
        self._engine = engine
        self._alias_lookup = alias_lookup
        self._s3_client = s3_client
        self._watchers: dict[str, Watcher] = {}
        self._next_check: dict[str, float] = {}

    @property
    def schedules(self) -> list[Schedule]:
        """The application's schedules."""
        return list(self.project.app.schedules)

    def schedule(self, name: str) -> Schedule:
        """The schedule called ``name``."""
        for schedule in self.schedules:
            if schedule.name == name:
                return schedule
        known = ", ".join(s.name for s in self.schedules) or "none"
        raise ScheduleNotFound(
            f"no schedule {name!r} in application {self.project.app.name!r} (known: {known})"
        )

    @property
    def engine(self) -> Engine:
        """The engine runs are submitted to (the application's ``target``)."""
        if self._engine is None:
            from scanflow.engines.registry import get_engine

            self._engine = get_engine(self.project, **self._engine_options)
        return self._engine

    # -- state --------------------------------------------------------------------------
    def paused(self, schedule: Schedule) -> bool:
        """Paused by ``scanflow schedule pause``, else as declared (``paused:``)."""
        state = self.book.state(schedule.name)
        if state is not None and state.paused is not None:
            return state.paused
        return schedule.paused

    def pause(self, name: str) -> None:
        """Stop firing ``name`` until :meth:`resume` (kept across restarts)."""
        self.book.save_state(self.schedule(name).name, self.clock(), paused=True)

    def resume(self, name: str) -> None:
        """Fire ``name`` again; what fell due or happened while paused does not fire."""
        now = self.clock()
        self.book.save_state(
            self.schedule(name).name, now, paused=False, last_due_at=now, watermark=None
        )
        self._next_check.pop(name, None)

    def views(self) -> list[ScheduleView]:
        """Every schedule with its pause state, last firing and next due time."""
        now = self.clock()
        views = []
        for s in self.schedules:
            state = self.book.state(s.name)
            paused = self.paused(s)
            upcoming = None
            if s.timed and not paused:
                last = state.last_due_at if state and state.last_due_at is not None else now
                upcoming = next_due(s, max(last, now - GRACE))
            last_firing = next(iter(self.book.firings(s.name, limit=1)), None)
            views.append(
                ScheduleView(s.name, s.workflow, _describe(s), paused, last_firing, upcoming)
            )
        return views

    # -- firing -------------------------------------------------------------------------
    def trigger(self, name: str) -> FiringRecord:
        """Fire ``name`` now, by hand (``max_concurrent`` still holds; paused or not)."""
        return self.fire(self.schedule(name), "manual", {"by": "scanflow schedule trigger"})

    def fire(
        self, schedule: Schedule, kind: str, cause: dict[str, Any], due_at: float | None = None
    ) -> FiringRecord:
        """Start a run of ``schedule`` for ``cause``, or record why not (``skipped`` when
        ``max_concurrent`` runs are going, ``failed`` when the engine refused)."""
        firing = self._fire(schedule, kind, cause, due_at, defer=False)
        assert firing is not None, "only a deferred firing is None"
        return firing

    def _fire(
        self,
        schedule: Schedule,
        kind: str,
        cause: dict[str, Any],
        due_at: float | None,
        *,
        defer: bool,
    ) -> FiringRecord | None:
        """:meth:`fire`, or None when ``defer`` and ``max_concurrent`` runs are going."""
        now = self.clock()
        firing = FiringRecord(
            schedule=schedule.name, kind=kind, due_at=due_at, fired_at=now, cause=cause
        )
        active = self.book.active_runs(schedule.name)
        if len(active) >= schedule.max_concurrent:
            if defer:
                return None
            firing.status = "skipped"
            firing.reason = (
                f"max_concurrent={schedule.max_concurrent} reached: "
                f"{', '.join(r.id for r in active)} still running"
            )
        else:
            try:
                firing.run_id = self.engine.submit(schedule.workflow, dict(schedule.parameters))
                firing.status = "started"
            except Exception as exc:  # noqa: BLE001 - recorded on the firing, the loop goes on
                firing.status, firing.reason = "failed", str(exc) or type(exc).__name__
        log.info(
            "schedule %s fired (%s): %s %s",
            schedule.name,
            kind,
            firing.status,
            firing.run_id or firing.reason,
        )
        return self.book.add_firing(firing)

    def tick(self) -> list[FiringRecord]:
        """Look at every schedule once; returns the firings recorded."""
        fired: list[FiringRecord] = []
        for schedule in self.schedules:
            if self.paused(schedule):
                continue
            try:
                if schedule.timed:
                    fired += self._tick_timed(schedule)
                else:
                    fired += self._tick_event(schedule)
            except Exception as exc:  # noqa: BLE001 - one broken schedule must not stop the rest
                log.warning("schedule %s: %s", schedule.name, exc)
        return fired

    def _tick_timed(self, schedule: Schedule) -> list[FiringRecord]:
        now = self.clock()
        state = self.book.state(schedule.name)
        if state is None or state.last_due_at is None:
            self.book.save_state(schedule.name, now, last_due_at=now)
            return []
        dues, dropped = due_times(schedule, state.last_due_at, now)
        if not dues:
            return []
        if schedule.catch_up == "all":
            run, missed = dues, []
        elif schedule.catch_up == "latest":
            run, missed = dues[-1:], dues[:-1]
        else:
            run = [d for d in dues if now - d <= GRACE][-1:]
            missed = [d for d in dues if d not in run]
        fired = []
        if missed or dropped:
            count = len(missed) + dropped
            cause: dict[str, Any] = {"missed": count}
            if missed:
                cause["last_missed"] = _iso(missed[-1])
            fired.append(
                self.book.add_firing(
                    FiringRecord(
                        schedule=schedule.name,
                        kind=schedule.kind,
                        due_at=missed[-1] if missed else dues[0],
                        fired_at=now,
                        cause=cause,
                        status="skipped",
                        reason=f"{count} due time(s) missed while the scheduler was not running "
                        f"(catch_up: {schedule.catch_up})",
                    )
                )
            )
        handled = dues[-1]
        for due in run:
            firing = self._fire(
                schedule,
                schedule.kind,
                {"due": _iso(due)},
                due,
                defer=schedule.catch_up == "all",
            )
            if firing is None:  # catch_up all: wait for a run to end, then go on from here
                handled = due - 1e-3
                break
            fired.append(firing)
        self.book.save_state(schedule.name, now, last_due_at=handled)
        return fired

    def _tick_event(self, schedule: Schedule) -> list[FiringRecord]:
        now = self.clock()
        if now < self._next_check.get(schedule.name, 0.0):
            return []
        self._next_check[schedule.name] = now + schedule.poll
        state = self.book.state(schedule.name)
        causes, watermark = self._watcher(schedule).check(state.watermark if state else None)
        self.book.save_state(schedule.name, now, watermark=watermark)
        return [self.fire(schedule, schedule.kind, cause) for cause in causes]

    def _watcher(self, schedule: Schedule) -> Watcher:
        if schedule.name not in self._watchers:
            self._watchers[schedule.name] = self._make_watcher(schedule)
        return self._watchers[schedule.name]

    def _make_watcher(self, schedule: Schedule) -> Watcher:
        if schedule.watch is not None:
            if schedule.watch.startswith("s3://"):
                return NewFiles(s3_lister(schedule.watch, self._s3_client), schedule.pattern)
            return NewFiles(folder_lister(self.project.base_dir / schedule.watch), schedule.pattern)
        if schedule.alias is not None:
            lookup = self._alias_lookup
            if lookup is None:
                from scanflow.tracking.config import tracking_uri

                lookup = mlflow_alias_lookup(
                    tracking_uri(self.project.app, self.project.base_dir, None)
                )
            return AliasMoved(schedule.alias, lookup)
        assert schedule.after is not None, "an event schedule has watch, alias or after"
        return UpstreamFinished(self.store, schedule.after, schedule.after_status, self.clock)

    # -- the loop -----------------------------------------------------------------------
    def wait_time(self) -> float:
        """Seconds until something may be due (at most :data:`MAX_WAIT`)."""
        now = self.clock()
        wake = now + MAX_WAIT
        for schedule in self.schedules:
            if schedule.timed:
                state = self.book.state(schedule.name)
                if state is not None and state.last_due_at is not None:
                    wake = min(wake, next_due(schedule, state.last_due_at))
            else:
                wake = min(wake, self._next_check.get(schedule.name, now))
        return wake - now if wake > now else 1.0  # overdue and not fired: runs still going

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set (see :meth:`start` for the one-scheduler rule)."""
        log.info("scheduler of %s started", self.project.app.name)
        while not stop.is_set():
            try:
                self.tick()
                wait = self.wait_time()
            except Exception:  # noqa: BLE001 - e.g. the store busy for long: try again soon
                log.exception("scheduler of %s: tick failed", self.project.app.name)
                wait = MAX_WAIT
            stop.wait(wait)

    def cancel_runs(self) -> None:
        """Cancel the runs of every schedule that are still going (when shutting down)."""
        if self._engine is None:
            return
        for schedule in self.schedules:
            for run in self.book.active_runs(schedule.name):
                self._engine.cancel(run.id)

    def start(self) -> tuple[threading.Thread, threading.Event]:
        """:meth:`run` on a daemon thread; set the returned event to stop it.

        One scheduler per application: a second one (another ``scanflow up``) would fire
        every schedule twice, so it is refused while the first holds
        ``.scanflow/scheduler.lock``.
        """
        from filelock import FileLock, Timeout

        self.project.state_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.project.state_dir / "scheduler.lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise ScanflowError(
                f"another scheduler runs the schedules of {self.project.app.name!r} "
                f"(it holds {lock.lock_file}); stop that 'scanflow up' first, or start this "
                "one with --no-schedules"
            ) from None
        stop = threading.Event()

        def run_then_unlock() -> None:
            try:
                self.run(stop)
            finally:
                lock.release()

        thread = threading.Thread(target=run_then_unlock, name="scheduler", daemon=True)
        thread.start()
        return thread, stop


def _describe(schedule: Schedule) -> str:
    """The trigger in a few words, e.g. ``cron 0 3 * * * Europe/Madrid``."""
    if schedule.cron is not None:
        return f"cron {schedule.cron} ({schedule.timezone})"
    if schedule.interval is not None:
        return f"every {schedule.interval:g}s"
    if schedule.watch is not None:
        return f"new files {schedule.watch}/{schedule.pattern}"
    if schedule.alias is not None:
        return f"alias {schedule.alias} moved"
    return f"after {schedule.after} {schedule.after_status}"
