"""The local scheduler on a test clock: due times, catch-up after downtime, max_concurrent,
pause and resume kept in the store, manual triggers; runs are real local-engine runs."""

from __future__ import annotations

from conftest import wait_for

from scanflow.engines.base import follow
from scanflow.schedules import Scheduler

HOURLY = """
- name: hourly
  workflow: quick
  cron: "0 * * * *"
  parameters: {n: 21}
"""


def _finish(scheduler: Scheduler, run_id: str) -> str:
    return follow(scheduler.engine, run_id).status


def test_first_tick_only_registers_then_each_due_time_starts_a_run(scheduler_for, clock) -> None:
    scheduler = scheduler_for(HOURLY)
    assert scheduler.tick() == []  # registering is not a firing: nothing was due since
    clock.advance(3599)
    assert scheduler.tick() == []
    clock.advance(1)  # 09:00:00 UTC
    [firing] = scheduler.tick()
    assert firing.status == "started" and firing.kind == "cron"
    assert firing.due_at == clock.now and firing.cause == {"due": "2027-01-15T09:00:00+00:00"}
    run = scheduler.engine.get_run(firing.run_id)
    assert run.workflow == "quick" and run.parameters == {"n": 21}
    assert _finish(scheduler, firing.run_id) == "succeeded"
    assert scheduler.tick() == []  # the same due time never fires twice
    [view] = scheduler.views()
    assert view.last is not None and view.last.run_id == firing.run_id
    assert view.next_due == clock.now + 3600


def _down_for_five_hours(scheduler_for, clock, policy: str, max_concurrent: int = 1):
    scheduler = scheduler_for(
        f"""
- name: hourly
  workflow: quick
  cron: "0 * * * *"
  catch_up: {policy}
  max_concurrent: {max_concurrent}
"""
    )
    scheduler.tick()
    clock.advance(5 * 3600 + 120)  # 09:00 ... 13:00 fell due while nothing ran; now 13:02
    return scheduler


def test_catch_up_latest_runs_the_newest_missed_time_once(scheduler_for, clock) -> None:
    scheduler = _down_for_five_hours(scheduler_for, clock, "latest")
    skipped, started = scheduler.tick()
    assert skipped.status == "skipped" and skipped.cause["missed"] == 4
    assert "4 due time(s) missed" in skipped.reason and "catch_up: latest" in skipped.reason
    assert started.status == "started" and started.cause == {"due": "2027-01-15T13:00:00+00:00"}
    assert _finish(scheduler, started.run_id) == "succeeded"
    assert scheduler.tick() == []


def test_catch_up_none_runs_nothing_that_was_missed(scheduler_for, clock) -> None:
    scheduler = _down_for_five_hours(scheduler_for, clock, "none")
    [skipped] = scheduler.tick()
    assert skipped.status == "skipped" and skipped.cause["missed"] == 5
    assert scheduler.engine.store.list_runs() == []
    clock.advance(3600 - 120)  # 14:00 sharp: on time again
    [started] = scheduler.tick()
    assert started.status == "started" and started.cause["due"].endswith("14:00:00+00:00")
    _finish(scheduler, started.run_id)


def test_catch_up_all_runs_every_missed_time_max_concurrent_at_a_time(
    scheduler_for, clock, tmp_path
) -> None:
    scheduler = scheduler_for(
        """
- name: hourly
  workflow: held
  cron: "0 * * * *"
  catch_up: all
  max_concurrent: 3
"""
    )
    scheduler.tick()
    clock.advance(5 * 3600 + 120)
    first = scheduler.tick()
    assert [f.status for f in first] == ["started"] * 3  # the other two wait their turn
    assert [f.cause["due"][11:16] for f in first] == ["09:00", "10:00", "11:00"]
    assert scheduler.tick() == []  # still three running: deferred, not skipped
    (tmp_path / "gate").touch()
    for firing in first:
        assert _finish(scheduler, firing.run_id) == "succeeded"
    rest = scheduler.tick()
    assert [f.cause["due"][11:16] for f in rest] == ["12:00", "13:00"]
    for firing in rest:
        _finish(scheduler, firing.run_id)
    assert len(scheduler.engine.store.list_runs()) == 5


def test_a_firing_beyond_max_concurrent_is_skipped_with_the_reason(
    scheduler_for, clock, tmp_path
) -> None:
    scheduler = scheduler_for(
        """
- name: often
  workflow: held
  interval: 10m
"""
    )
    scheduler.tick()
    clock.advance(600)
    [first] = scheduler.tick()
    assert first.status == "started"
    wait_for(lambda: scheduler.engine.get_run(first.run_id).status == "running", 60)
    clock.advance(600)
    [second] = scheduler.tick()
    assert second.status == "skipped" and second.run_id is None
    assert second.reason == f"max_concurrent=1 reached: {first.run_id} still running"
    manual = scheduler.trigger("often")  # by hand too
    assert manual.status == "skipped" and manual.kind == "manual"
    (tmp_path / "gate").touch()
    assert _finish(scheduler, first.run_id) == "succeeded"
    clock.advance(600)
    [third] = scheduler.tick()
    assert third.status == "started"
    _finish(scheduler, third.run_id)
    statuses = [f.status for f in scheduler.book.firings("often")]
    assert statuses == ["started", "skipped", "skipped", "started"]


def test_pause_is_kept_across_restarts_and_resume_does_not_backfill(scheduler_for, clock) -> None:
    scheduler = scheduler_for(HOURLY)
    scheduler.tick()
    scheduler.pause("hourly")
    clock.advance(3 * 3600)
    assert scheduler.tick() == []
    again = Scheduler(scheduler.project, engine=scheduler.engine, clock=clock)  # a restart
    assert again.paused(again.schedule("hourly")) is True
    assert again.tick() == []
    [view] = again.views()
    assert view.paused and view.next_due is None
    again.resume("hourly")
    assert again.tick() == []  # the three hours paused do not fire
    clock.advance(3600)
    [firing] = again.tick()
    assert firing.status == "started"
    _finish(again, firing.run_id)


def test_declared_paused_schedule_fires_only_by_hand(scheduler_for, clock) -> None:
    scheduler = scheduler_for(HOURLY + "  paused: true\n")
    clock.advance(5 * 3600)
    assert scheduler.tick() == []
    firing = scheduler.trigger("hourly")
    assert firing.status == "started" and firing.kind == "manual"
    assert firing.cause == {"by": "scanflow schedule trigger"}
    assert _finish(scheduler, firing.run_id) == "succeeded"


def test_an_unknown_schedule_names_the_known_ones(scheduler_for) -> None:
    import pytest

    from scanflow.schedules.scheduler import ScheduleNotFound

    scheduler = scheduler_for(HOURLY)
    with pytest.raises(ScheduleNotFound, match=r"no schedule 'hourley'.*known: hourly"):
        scheduler.pause("hourley")


def test_one_scheduler_per_application(scheduler_for, clock) -> None:
    import pytest

    from scanflow.errors import ScanflowError

    first = scheduler_for(HOURLY)
    thread, stop = first.start()
    try:
        second = Scheduler(first.project, engine=first.engine, clock=clock)
        with pytest.raises(ScanflowError, match="another scheduler runs the schedules"):
            second.start()
    finally:
        stop.set()
        thread.join(60)
    again, stop = Scheduler(first.project, engine=first.engine, clock=clock).start()
    stop.set()  # free again once the first stopped
    again.join(60)


def test_a_run_the_engine_refuses_is_recorded_as_failed_with_its_error(make_project, clock) -> None:
    from scanflow.engines.local import LocalEngine

    project = make_project(
        """
name: refused
workflows:
- name: wf
  executors:
  - name: step
    script: step.py
schedules:
- name: hourly
  workflow: wf
  interval: 1h
""",
        {"step.py": "print('hi')\n"},
    )
    (project.base_dir / "step.py").unlink()  # gone after the spec was loaded
    scheduler = Scheduler(project, engine=LocalEngine(project, tracking=False), clock=clock)
    scheduler.tick()
    clock.advance(3600)
    [firing] = scheduler.tick()
    assert firing.status == "failed" and firing.run_id is None
    assert "script file 'step.py' not found" in firing.reason
    assert scheduler.tick() == []  # the due time was handled: it is not retried every tick
