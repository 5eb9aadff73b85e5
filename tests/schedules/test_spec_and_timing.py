"""The ``schedules:`` section: load-time errors that name the field and line, and the due
times a schedule computes (cron in its time zone, intervals from the epoch)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from scanflow.errors import SpecError
from scanflow.schedules.timing import MAX_DUE, due_times, next_due
from scanflow.spec import Application, Schedule
from scanflow.spec.loader import parse
from schedules.conftest import app_yaml


def _problems(schedules: str, base_dir: Path | None = None) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse(app_yaml(schedules), source="scanflow.yaml", base_dir=base_dir)
    return caught.value.problems


def test_a_full_schedule_loads_and_round_trips() -> None:
    text = app_yaml(
        """
- name: nightly
  workflow: quick
  cron: "30 2 * * 1-5"
  timezone: Europe/Madrid
  parameters: {n: 3}
  max_concurrent: 2
  catch_up: all
  paused: true
- name: on-promote
  workflow: quick
  alias: digits@champion
  poll: 1m
"""
    )
    app = parse(text)
    nightly, promote = app.schedules
    assert (nightly.kind, nightly.timed, nightly.max_concurrent) == ("cron", True, 2)
    assert nightly.parameters == {"n": 3} and nightly.paused
    assert (promote.kind, promote.timed, promote.poll, promote.catch_up) == (
        "alias",
        False,
        60.0,
        "latest",
    )
    assert Application.from_yaml(app.to_yaml()) == app


@pytest.mark.parametrize(
    ("entry", "line", "expected"),
    [
        ('cron: "61 * * * *"', 2, "schedules[0].cron: '61 * * * *' is not a cron expression"),
        ('cron: "0 3 * *"', 2, "write five fields"),
        ("interval: 5 minutes", 2, "schedules[0].interval: '5 minutes' is not a duration"),
        ("interval: -5", 2, "schedules[0].interval: Input should be greater than 0"),
        (
            "interval: 1h\n  timezone: Europe/Madird",
            3,
            "schedules[0].timezone: 'Europe/Madird' is not an IANA time zone",
        ),
        ("interval: 1h\n  cron: '* * * * *'", 0, "needs exactly one of 'cron', 'interval'"),
        ("after: quick", 0, "would loop forever"),
        ("alias: digits", 2, "schedules[0].alias: 'digits' is not 'model@alias'"),
        ("interval: 1h\n  catch_up: backfill", 3, "schedules[0].catch_up: Input should be"),
        ("interval: 1h\n  max_concurrent: 0", 3, "schedules[0].max_concurrent"),
        ("interval: 1h\n  every: 5", 3, "unknown field 'every'"),
    ],
)
def test_malformed_fields_are_errors_naming_field_and_line(entry, line, expected) -> None:
    """``line``: of the schedule's entry, 0 for its first line (``- name: s``)."""
    schedules = f"- name: s\n  workflow: quick\n  {entry}\n"
    first = app_yaml(schedules).splitlines().index("- name: s") + 1
    [problem] = _problems(schedules)
    assert problem.startswith(f"scanflow.yaml:{first + line}: ") and expected in problem


def test_unknown_workflow_parameter_and_folder_are_reported_together(tmp_path: Path) -> None:
    (tmp_path / "steps.py").write_text("")
    problems = _problems(
        """
- name: a
  workflow: quik
  interval: 1h
- name: b
  workflow: quick
  interval: 1h
  parameters: {m: 2, only.x: 1}
- name: c
  workflow: quick
  watch: incoming
- name: d
  workflow: quick
  after: helt
- name: a
  workflow: quick
  watch: ftp://host/x
""",
        base_dir=tmp_path,
    )
    assert problems == [
        "scanflow.yaml:19: schedules[0].workflow: no workflow 'quik'; did you mean 'quick'?",
        "scanflow.yaml:24: schedules[1].parameters.m: workflow 'quick' has no parameter 'm'; "
        "known: n",
        "scanflow.yaml:24: schedules[1].parameters.only.x: workflow 'quick' has no parameter "
        "'only.x'; known: n",
        f"scanflow.yaml:27: schedules[2].watch: folder 'incoming' not found in {tmp_path}; "
        "create it or fix the path (relative to the folder of scanflow.yaml; "
        "'s3://bucket/prefix' for S3)",
        "scanflow.yaml:30: schedules[3].after: no workflow 'helt'; did you mean 'held'?",
        "scanflow.yaml:31: schedules[4].name: duplicate schedule name 'a'; names must be unique",
        "scanflow.yaml:33: schedules[4].watch: 'ftp://host/x': only folders and "
        "'s3://bucket/prefix'",
    ]


def _utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M")


def test_cron_follows_its_time_zone_across_daylight_saving() -> None:
    nightly = Schedule("n", workflow="w", cron="0 3 * * *", timezone="Europe/Madrid")
    dues, dropped = due_times(nightly, _utc("2027-03-26 12:00"), _utc("2027-03-30 12:00"))
    # 03:00 in Madrid is 02:00 UTC in winter, 01:00 UTC from 28 March (summer time)
    assert [_iso(d) for d in dues] == [
        "2027-03-27 02:00",
        "2027-03-28 01:00",
        "2027-03-29 01:00",
        "2027-03-30 01:00",
    ]
    assert dropped == 0


def test_intervals_count_from_the_epoch_and_long_gaps_keep_the_newest() -> None:
    six_hours = Schedule("s", workflow="w", interval="6h")
    assert _iso(next_due(six_hours, _utc("2027-01-01 07:59"))) == "2027-01-01 12:00"
    assert _iso(next_due(six_hours, _utc("2027-01-01 12:00"))) == "2027-01-01 18:00"
    minutely = Schedule("m", workflow="w", cron="* * * * *")
    dues, dropped = due_times(minutely, _utc("2027-01-01 00:00"), _utc("2027-01-02 00:00"))
    assert len(dues) == MAX_DUE and dropped == 24 * 60 - MAX_DUE
    assert _iso(dues[-1]) == "2027-01-02 00:00"


def test_a_malformed_field_does_not_hide_the_rules_across_objects() -> None:
    problems = _problems(
        """
- name: a
  workflow: quik
  interval: 5m
- name: b
  workflow: quick
  cron: "0 3 * *"
  parameters: {m: 1}
"""
    )
    assert [p.split(": ", 2)[1] for p in problems] == [
        "schedules[0].workflow",
        "schedules[1].cron",
        "schedules[1].parameters.m",
    ]
