"""The state store: a store made by an older Scanflow opens, upgrades and keeps its runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from scanflow.store import RunRecord, Store, schema


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


# The store as Scanflow made it before migrations and before runs recorded their engine
# process: no alembic_version table, no runs.engine_pid/engine_started_at, no agents' tables.
OLD_SCHEMA = """
CREATE TABLE runs (
    id VARCHAR(64) NOT NULL, app VARCHAR(63) NOT NULL, team VARCHAR(63) NOT NULL,
    workflow VARCHAR(63) NOT NULL, status VARCHAR(16) NOT NULL, parameters JSON NOT NULL,
    spec TEXT NOT NULL, base_dir TEXT NOT NULL, run_dir TEXT NOT NULL, tracking_uri TEXT,
    mlflow_run_id VARCHAR(64), error TEXT, created_at FLOAT NOT NULL, started_at FLOAT,
    finished_at FLOAT, PRIMARY KEY (id));
CREATE INDEX ix_runs_workflow ON runs (workflow);
CREATE INDEX ix_runs_status ON runs (status);
CREATE TABLE steps (
    id INTEGER NOT NULL, run_id VARCHAR(64) NOT NULL, name VARCHAR(63) NOT NULL,
    status VARCHAR(16) NOT NULL, depends_on JSON NOT NULL, cache_key VARCHAR(64),
    cached_from VARCHAR(64), output_dir TEXT, outputs_digest VARCHAR(64),
    mlflow_run_id VARCHAR(64), pid INTEGER, error TEXT, started_at FLOAT, finished_at FLOAT,
    PRIMARY KEY (id), UNIQUE (run_id, name), FOREIGN KEY(run_id) REFERENCES runs (id));
CREATE INDEX ix_steps_run_id ON steps (run_id);
CREATE TABLE attempts (
    id INTEGER NOT NULL, step_id INTEGER NOT NULL, number INTEGER NOT NULL, pid INTEGER,
    exit_code INTEGER, log_path TEXT NOT NULL, error TEXT, started_at FLOAT NOT NULL,
    finished_at FLOAT, PRIMARY KEY (id), FOREIGN KEY(step_id) REFERENCES steps (id));
CREATE INDEX ix_attempts_step_id ON attempts (step_id);
CREATE TABLE cache (
    "key" VARCHAR(64) NOT NULL, run_id VARCHAR(64) NOT NULL, step VARCHAR(63) NOT NULL,
    output_dir TEXT NOT NULL, outputs_digest VARCHAR(64) NOT NULL, created_at FLOAT NOT NULL,
    PRIMARY KEY ("key"));
INSERT INTO runs (id, app, team, workflow, status, parameters, spec, base_dir, run_dir,
    created_at) VALUES ('old-run', 'app', 't', 'train', 'failed', '{"n": 3}', 'name: app',
    '/nowhere', '/nowhere/run', 1.0);
INSERT INTO steps (run_id, name, status, depends_on, pid) VALUES
    ('old-run', 'fit', 'failed', '[]', 77);
"""


def _differences(store: Store) -> list:
    """What the store's tables lack or have beyond the models (empty: the same schema)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from scanflow.store import (  # noqa: F401
        agent_models,
        metric_models,
        schedule_models,
        token_models,
    )
    from scanflow.store.models import Base

    with store._engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_a_store_made_before_migrations_opens_and_upgrades(tmp_path: Path) -> None:
    state = tmp_path / ".scanflow"
    state.mkdir()
    db = state / "scanflow.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(OLD_SCHEMA)
    assert "alembic_version" not in _tables(db) and "agent_state" not in _tables(db)

    store = Store.for_state_dir(state)
    assert schema.current(store._engine) == schema.head() == "0006"
    assert _differences(store) == []  # the same tables, columns and indexes as a new store
    old = store.get_run("old-run")
    assert (old.status, old.parameters, old.engine) == ("failed", {"n": 3}, "local")
    assert old.engine_pid is None and old.engine_started_at is None and old.engine_ref is None
    [step] = store.steps("old-run")
    assert (step.name, step.pid, step.pid_started_at) == ("fit", 77, None)
    store.add_run(_run("new-run", engine_started_at=123.5, created_at=2.0), [])
    assert store.get_run("new-run").engine_started_at == 123.5
    reopened = Store.for_state_dir(state)  # at head: opens without migrating again
    assert [r.id for r in reopened.list_runs()] == ["new-run", "old-run"]
    assert [r.id for r in reopened.list_runs(engine="kubernetes")] == []


def test_a_new_store_is_created_at_head(tmp_path: Path) -> None:
    store = Store.for_state_dir(tmp_path / ".scanflow")
    assert schema.current(store._engine) == schema.head()
    assert _differences(store) == []
    store.add_run(_run("r"), [])
    assert store.get_run("r").engine == "local"


def test_concurrent_first_opens_of_one_store_are_safe(tmp_path: Path) -> None:
    import subprocess
    import sys

    from conftest import wait_for

    state, gate = tmp_path / ".scanflow", tmp_path / "go"
    code = (
        "import sys, time, pathlib\n"
        "from scanflow.store import Store\n"
        "gate = pathlib.Path(sys.argv[1])\n"
        "pathlib.Path(sys.argv[3]).touch()\n"
        "while not gate.exists(): time.sleep(0.01)\n"
        "Store.for_state_dir(sys.argv[2]).list_runs()\n"
    )
    ready = [tmp_path / f"ready-{i}" for i in range(4)]
    openers = [
        subprocess.Popen([sys.executable, "-c", code, str(gate), str(state), str(mark)])
        for mark in ready
    ]
    try:
        wait_for(lambda: all(m.exists() for m in ready), what="every opener to be ready")
        gate.touch()  # all four open the missing store at once
        assert [p.wait(120) for p in openers] == [0, 0, 0, 0]
    finally:
        for p in openers:
            if p.poll() is None:
                p.kill()
    with sqlite3.connect(state / "scanflow.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("0006",)]
    assert _differences(Store.for_state_dir(state)) == []


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
