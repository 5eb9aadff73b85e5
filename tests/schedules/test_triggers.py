"""Event schedules: new files in a watched folder, a registry alias moved in a real MLflow
registry, another workflow finished; each firing records what fired it."""

from __future__ import annotations

from pathlib import Path

from scanflow.engines.base import follow


def test_new_files_in_a_watched_folder_fire_once_with_their_names(
    scheduler_for, clock, tmp_path
) -> None:
    inbox = tmp_path / "app" / "incoming"
    inbox.mkdir(parents=True)
    (inbox / "old.csv").write_text("a\n")
    scheduler = scheduler_for(
        """
- name: on-data
  workflow: quick
  watch: incoming
  pattern: "*.csv"
  poll: 30s
"""
    )
    assert scheduler.tick() == []  # the first look takes note of old.csv
    (inbox / "day1.csv").write_text("b\n")
    (inbox / "sub").mkdir()
    (inbox / "sub" / "day2.csv").write_text("c\n")
    (inbox / "notes.txt").write_text("not data")
    assert scheduler.tick() == []  # polled every 30 s: not yet
    clock.advance(30)
    [firing] = scheduler.tick()
    assert firing.kind == "watch" and firing.status == "started"
    assert firing.cause == {"files": ["day1.csv", "sub/day2.csv"]}
    assert follow(scheduler.engine, firing.run_id).status == "succeeded"
    clock.advance(30)
    assert scheduler.tick() == []  # nothing new
    (inbox / "day3.csv").write_text("d\n")
    clock.advance(30)
    [again] = scheduler.tick()
    assert again.cause == {"files": ["day3.csv"]}
    follow(scheduler.engine, again.run_id)


def test_a_watched_folder_removed_while_running_is_logged_not_fatal(
    scheduler_for, clock, tmp_path, caplog
) -> None:
    inbox = tmp_path / "app" / "incoming"
    inbox.mkdir(parents=True)
    scheduler = scheduler_for("- name: on-data\n  workflow: quick\n  watch: incoming\n")
    scheduler.tick()
    inbox.rmdir()
    clock.advance(60)
    assert scheduler.tick() == []
    assert "watched folder" in caplog.text and "does not exist" in caplog.text


def _registry(tmp_path: Path) -> tuple[str, object]:
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'registry.db'}"
    client = MlflowClient(uri, uri)
    client.create_registered_model("digits")
    for _ in range(2):
        client.create_model_version("digits", source=str(tmp_path), run_id=None)
    client.set_registered_model_alias("digits", "champion", "1")
    return uri, client


def test_a_moved_registry_alias_fires_with_old_and_new_version(
    scheduler_for, clock, tmp_path
) -> None:
    from scanflow.schedules.watchers import mlflow_alias_lookup

    uri, client = _registry(tmp_path)
    scheduler = scheduler_for(
        "- name: on-promote\n  workflow: quick\n  alias: digits@champion\n  poll: 5s\n",
        alias_lookup=mlflow_alias_lookup(uri),
    )
    assert scheduler.tick() == []  # version 1 is where it was
    clock.advance(5)
    assert scheduler.tick() == []
    client.set_registered_model_alias("digits", "champion", "2")
    clock.advance(5)
    [firing] = scheduler.tick()
    assert firing.kind == "alias" and firing.status == "started"
    assert firing.cause == {"model": "digits", "alias": "champion", "previous": "1", "version": "2"}
    follow(scheduler.engine, firing.run_id)
    client.delete_registered_model_alias("digits", "champion")
    clock.advance(5)
    [removed] = scheduler.tick()
    assert removed.cause["previous"] == "2" and removed.cause["version"] is None
    follow(scheduler.engine, removed.run_id)


def test_a_finished_upstream_workflow_fires_with_its_run_id(scheduler_for, clock) -> None:
    import time

    scheduler = scheduler_for(
        "- name: after-quick\n  workflow: held\n  after: quick\n  poll: 1s\n"
        "  parameters: {gate: ''}\n"
    )
    before = follow(scheduler.engine, scheduler.engine.submit("quick"))
    failed = follow(scheduler.engine, scheduler.engine.submit("quick", {"n": -1}))
    assert (before.status, failed.status) == ("succeeded", "failed")
    clock.now = time.time()  # runs finish on the wall clock: the watermark compares with it
    assert scheduler.tick() == []  # what finished before the schedule started does not fire
    upstream = follow(scheduler.engine, scheduler.engine.submit("quick"))
    assert upstream.status == "succeeded"
    clock.now = time.time() + 1
    [firing] = scheduler.tick()
    assert firing.kind == "after" and firing.status == "started"
    assert firing.cause == {"run_id": upstream.id, "workflow": "quick", "status": "succeeded"}
    assert follow(scheduler.engine, firing.run_id).status == "succeeded"
    clock.advance(1)
    assert scheduler.tick() == []  # its own run is not an upstream one
