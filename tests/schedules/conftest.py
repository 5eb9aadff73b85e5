"""A tiny application with schedules, a clock the tests move, and a scheduler over both."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from scanflow.engines.base import follow
from scanflow.engines.local import LocalEngine
from scanflow.schedules import Scheduler
from scanflow.spec import Project

START = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC, a multiple of 60 and 3600

STEPS = """
import time
from pathlib import Path


def work(result, n=1):
    if n < 0:
        raise SystemExit(f"n={n} is negative")
    Path(result).write_text(str(n * 2))


def gated(result, gate=""):
    # holds the run until the test creates the gate file (the workload, not a test sleep)
    while gate and not Path(gate).exists():
        time.sleep(0.05)
    Path(result).write_text("opened")
"""


def app_yaml(schedules: str, gate: str = "") -> str:
    return f"""
name: sched-test
workflows:
- name: quick
  parameters: {{n: 1}}
  executors:
  - name: only
    function: steps:work
    outputs: [result]
- name: held
  parameters: {{gate: "{gate}"}}
  executors:
  - name: wait
    function: steps:gated
    outputs: [result]
schedules:
{schedules}
"""


class Clock:
    """Time that moves only when a test says so."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def scheduler_for(make_project, clock, tmp_path) -> Callable[..., Scheduler]:
    """``scheduler_for(schedules_yaml)``: the app with those schedules, its scheduler on the
    test clock, its engine local without tracking; every run is over when the test ends."""
    made: list[LocalEngine] = []

    def make(schedules: str, **options) -> Scheduler:
        gate = str(tmp_path / "gate")
        project: Project = make_project(app_yaml(schedules, gate), {"steps.py": STEPS})
        engine = LocalEngine(project, tracking=False)
        made.append(engine)
        return Scheduler(project, engine=engine, clock=clock, **options)

    yield make
    (tmp_path / "gate").touch()
    for engine in made:
        for run in engine.store.list_runs(limit=1000):
            follow(engine, run.id)  # the gate is open: every run ends
