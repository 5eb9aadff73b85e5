"""The state store: a store made by an older Scanflow opens, upgrades and keeps its runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from scanflow.store import RunRecord, Store


def _run(run_id: str, **fields) -> RunRecord:
    values = dict(
        id=run_id,
        app="app",
        team="t",
        workflow="train",
        status="running",
        spec="name: app",
        base_dir="/nowhere",
        run_dir="/nowhere/run",
        created_at=1.0,
        engine_pid=4242,
    )
    return RunRecord(**{**values, **fields})


def test_a_store_without_the_engine_start_time_column_opens_and_upgrades(tmp_path: Path) -> None:
    state = tmp_path / ".scanflow"
    Store.for_state_dir(state).add_run(_run("old-run"), [])
    db = state / "scanflow.db"
    with sqlite3.connect(db) as conn:  # the store as an older Scanflow left it
        conn.execute("ALTER TABLE runs DROP COLUMN engine_started_at")
    with sqlite3.connect(db) as conn:
        assert "engine_started_at" not in [r[1] for r in conn.execute("PRAGMA table_info(runs)")]

    store = Store.for_state_dir(state)
    old = store.get_run("old-run")
    assert old.engine_pid == 4242 and old.engine_started_at is None
    store.add_run(_run("new-run", engine_started_at=123.5), [])
    assert store.get_run("new-run").engine_started_at == 123.5
    assert Store.for_state_dir(state).get_run("old-run").status == "running"  # opens again


def test_a_run_whose_engine_is_gone_is_interrupted(tmp_path: Path) -> None:
    import os

    import psutil

    from scanflow.engines.local.recovery import interrupted, resume_command

    me = psutil.Process(os.getpid())
    alive = _run("alive", engine_pid=me.pid, engine_started_at=me.create_time())
    reused = _run("reused", engine_pid=me.pid, engine_started_at=me.create_time() - 3600)
    assert not interrupted(alive)
    assert interrupted(reused)  # same PID, another process: the recorded engine is gone
    assert not interrupted(_run("done", status="succeeded", engine_pid=None))
    assert resume_command(reused) == "scanflow --app /nowhere run --resume reused"
