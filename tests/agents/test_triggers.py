"""Triggers: declared forms, schedules, event matching, and every bad form rejected clearly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from scanflow.agents.triggers import (
    At,
    Cron,
    Event,
    Every,
    OnAliasMoved,
    OnMessage,
    OnMetric,
    OnPredictions,
    OnRunFinished,
    parse_seconds,
    parse_trigger,
)


def test_every_in_strings_and_mappings() -> None:
    assert parse_trigger("every 5s") == Every(every=5)
    assert parse_trigger({"every": "250ms"}) == Every(every=0.25)
    assert parse_trigger({"every": 2}).next_fire(100.0) == 102.0


def test_cron_fires_on_its_schedule() -> None:
    trigger = parse_trigger({"cron": "*/5 * * * *"})
    assert isinstance(trigger, Cron)
    start = datetime(2026, 1, 1, 10, 2, tzinfo=UTC).timestamp()
    assert trigger.next_fire(start) == datetime(2026, 1, 1, 10, 5, tzinfo=UTC).timestamp()


def test_at_fires_once() -> None:
    trigger = parse_trigger({"at": "2026-01-01T00:00:00"})
    assert isinstance(trigger, At)
    stamp = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert trigger.next_fire(stamp - 10) == stamp
    assert trigger.next_fire(stamp) is None


def test_event_triggers_match_their_events() -> None:
    assert parse_trigger("on message") == OnMessage()
    drift = parse_trigger({"on": "message", "intent": "drift"})
    assert drift.matches(Event("message", {"intent": "drift", "sender": "m"}))
    assert not drift.matches(Event("message", {"intent": "other"}))
    runs = parse_trigger({"on": "run_finished", "workflow": "train", "poll": "2s"})
    assert isinstance(runs, OnRunFinished) and runs.poll == 2.0
    assert runs.matches(Event("run_finished", {"workflow": "train", "status": "failed"}))
    assert not runs.matches(Event("run_finished", {"workflow": "other"}))
    alias = parse_trigger({"on": "alias_moved", "model": "digits"})
    assert isinstance(alias, OnAliasMoved) and alias.alias == "champion"
    preds = parse_trigger({"on": "predictions", "service": "digits", "count": 50})
    assert isinstance(preds, OnPredictions) and preds.count == 50
    metric = parse_trigger({"on": "metric", "metric": "p95_ms", "service": "s", "above": 200})
    assert isinstance(metric, OnMetric) and metric.crossed(201) and not metric.crossed(200)


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ({"every": "soon"}, "is not a duration"),
        ({"every": -1}, "greater than 0"),
        ({"cron": "every monday"}, "is not a cron expression"),
        ({"on": "sunrise"}, "unknown event 'sunrise'"),
        ({"on": "metric", "metric": "p95"}, "exactly one of 'above' or 'below'"),
        ({"on": "predictions"}, "Field required"),
        ({"every": 5, "cron": "* * * * *"}, "exactly one of 'every', 'cron', 'at' or 'event'"),
        ({"on": "message", "colour": "red"}, "Extra inputs are not permitted"),
        ("whenever", "starts with 'every', 'cron', 'at' or 'on'"),
        (42, "a trigger is a mapping or a string"),
    ],
)
def test_bad_triggers_are_rejected_with_the_reason(declared: object, message: str) -> None:
    with pytest.raises((ValueError, ValidationError), match=message):
        parse_trigger(declared)


def test_durations() -> None:
    assert parse_seconds("2m") == 120 and parse_seconds("1h") == 3600 and parse_seconds(3) == 3.0


def test_yaml_on_key_read_as_true_and_event_synonym() -> None:
    import yaml

    declared = yaml.safe_load("{on: message, intent: go}")
    assert True in declared  # YAML 1.1
    assert parse_trigger(declared) == OnMessage(intent="go")
    assert parse_trigger({"event": "alias_moved", "model": "m"}) == OnAliasMoved(model="m")
