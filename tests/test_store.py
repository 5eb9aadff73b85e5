"""The state store: a store made by an older Scanflow opens, upgrades and keeps its runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from scanflow.engines.local.ref import LocalProcessRef
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
        engine_ref={"pid": 4242},
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
    assert schema.current(store._engine) == schema.head() == "0008"
    assert _differences(store) == []  # the same tables, columns and indexes as a new store
    old = store.get_run("old-run")
    assert (old.status, old.parameters, old.engine) == ("failed", {"n": 3}, "local")
    assert old.engine_ref is None
    [step] = store.steps("old-run")
    assert (step.name, step.engine_ref) == ("fit", {"pid": 77})
    store.add_run(_run("new-run", engine_ref={"pid_started_at": 123.5}, created_at=2.0), [])
    assert store.get_run("new-run").engine_ref == {"pid_started_at": 123.5}
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
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (schema.head(),)
        ]
    assert _differences(Store.for_state_dir(state)) == []


def test_a_run_whose_engine_is_gone_is_interrupted(tmp_path: Path) -> None:
    import os

    import psutil

    from scanflow.engines.local.recovery import interrupted, resume_command

    me = psutil.Process(os.getpid())
    alive = _run("alive", engine_ref=LocalProcessRef.of(me.pid).to_ref())
    reused = _run("reused", engine_ref=LocalProcessRef(me.pid, me.create_time() - 3600).to_ref())
    assert not interrupted(alive)
    assert interrupted(reused)  # same PID, another process: the recorded engine is gone
    assert not interrupted(_run("done", status="succeeded", engine_ref=None))
    assert not interrupted(_run("never-started", engine_ref=None))
    assert resume_command(reused) == "scanflow --app /nowhere run --resume reused"


# A store at revision 0004 with one run of each engine, as Scanflow wrote them then: the
# local engine's processes and log files in columns of their own, a Kubernetes attempt's
# pod as its log_path.
RUNS_AT_0004 = """
INSERT INTO runs (id, app, team, workflow, status, parameters, spec, base_dir, run_dir,
    engine, engine_pid, engine_started_at, engine_ref, created_at) VALUES
    ('local-run', 'engine-test', 't', 'one', 'failed', '{{}}', 'name: engine-test',
     '{base}', '{base}/.scanflow/runs/local-run', 'local', 4242, 1700000000.5, NULL, 1.0),
    ('kube-run', 'engine-test', 't', 'one', 'succeeded', '{{}}', 'name: engine-test',
     '{base}', '{base}/.scanflow/runs/kube-run', 'kubernetes', 99, 1700000001.25,
     '{{"kind": "ConfigMap", "name": "run-kube-run", "namespace": "engine-test-t"}}', 2.0);
INSERT INTO steps (id, run_id, name, status, depends_on, pid, pid_started_at) VALUES
    (1, 'local-run', 'only', 'failed', '[]', 77, 1700000002.5),
    (2, 'kube-run', 'only', 'succeeded', '[]', NULL, NULL);
INSERT INTO attempts (step_id, number, pid, exit_code, log_path, error, started_at) VALUES
    (1, 1, 77, 1, '{log1}', 'exited with code 1', 3.0),
    (1, 2, 78, 1, '{log2}', 'exited with code 1', 4.0),
    (2, 1, NULL, 0, 'pod/only-abc12', NULL, 5.0);
"""


def _store_at_0004(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A project whose store is at revision 0004 with runs in it; its folder and logs."""
    from sqlalchemy import create_engine

    base = tmp_path / "app"
    (base / ".scanflow").mkdir(parents=True)
    (base / "scanflow.yaml").write_text(
        "name: engine-test\nworkflows:\n- name: one\n  executors:\n"
        "  - name: only\n    function: steps:main\n"
    )
    logs = base / ".scanflow" / "runs" / "local-run" / "steps" / "only" / "logs"
    logs.mkdir(parents=True)
    log1, log2 = logs / "attempt-1.log", logs / "attempt-2.log"
    log1.write_text("first try: loading data\n")
    log2.write_text("second try: out of memory\n")
    engine = create_engine(f"sqlite:///{base / '.scanflow' / 'scanflow.db'}")
    assert schema.upgrade(engine, "0004") == "0004"
    engine.dispose()
    with sqlite3.connect(base / ".scanflow" / "scanflow.db") as conn:
        conn.executescript(RUNS_AT_0004.format(base=base, log1=log1, log2=log2))
    return base, log1, log2


def test_a_store_at_0004_moves_engine_fields_into_engine_refs(tmp_path: Path) -> None:
    from scanflow.api.runs import run_view
    from scanflow.engines.local import LocalEngine
    from scanflow.spec import load_project

    base, log1, log2 = _store_at_0004(tmp_path)
    project = load_project(base)
    store = Store.for_state_dir(project.state_dir)  # upgrades to the newest revision
    assert schema.current(store._engine) == schema.head() == "0008"
    assert _differences(store) == []

    local, kube = store.get_run("local-run"), store.get_run("kube-run")
    assert local.engine_ref == {"pid": 4242, "pid_started_at": 1700000000.5}
    assert kube.engine_ref == {
        "kind": "ConfigMap",
        "name": "run-kube-run",
        "namespace": "engine-test-t",
        "driver": {"pid": 99, "pid_started_at": 1700000001.25},
    }
    [step] = store.steps("local-run")
    assert LocalProcessRef.from_ref(step.engine_ref) == LocalProcessRef(77, 1700000002.5)
    [first, second] = store.attempts("local-run")[step.id]
    assert first.engine_ref == {"pid": 77, "log_path": str(log1)}
    assert (second.number, second.exit_code, second.error) == (2, 1, "exited with code 1")
    assert LocalProcessRef.from_ref(second.engine_ref).log_path == str(log2)
    [[pod]] = store.attempts("kube-run").values()
    assert pod.engine_ref == {"pod": "only-abc12"}

    # the old run's logs are found where they were, as `scanflow logs` and `show` read them
    logs = "".join(LocalEngine(project, tracking=False).logs("local-run"))
    assert logs == (
        "==> only attempt 1 <==\nfirst try: loading data\n"
        "==> only attempt 2 <==\nsecond try: out of memory\n"
    )
    shown = [a.log for a in run_view(store, local).steps[0].attempts]
    assert shown == [str(log1), str(log2)]
    assert run_view(store, kube).steps[0].attempts[0].log == "pod/only-abc12"


def test_the_downgrade_to_0004_puts_the_engine_fields_back(tmp_path: Path) -> None:
    base, log1, log2 = _store_at_0004(tmp_path)
    db = base / ".scanflow" / "scanflow.db"
    query = (
        "SELECT r.id, r.engine_pid, r.engine_started_at, r.engine_ref, s.pid, s.pid_started_at,"
        " a.number, a.pid, a.log_path FROM runs r JOIN steps s ON s.run_id = r.id"
        " JOIN attempts a ON a.step_id = s.id ORDER BY r.id, a.number"
    )
    with sqlite3.connect(db) as conn:
        before = conn.execute(query).fetchall()
    store = Store.for_state_dir(base / ".scanflow")
    schema.downgrade(store._engine, "0004")
    assert schema.current(store._engine) == "0004"
    with sqlite3.connect(db) as conn:
        assert conn.execute(query).fetchall() == before
        assert "engine_ref" not in {r[1] for r in conn.execute("PRAGMA table_info(steps)")}
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    store.close()
    assert schema.current(Store.for_state_dir(base / ".scanflow")._engine) == schema.head()


def test_the_upgrade_to_0008_copies_the_parameters_of_existing_runs(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    state = tmp_path / ".scanflow"
    state.mkdir()
    engine = create_engine(f"sqlite:///{state / 'scanflow.db'}")
    assert schema.upgrade(engine, "0007") == "0007"
    engine.dispose()
    params = '{"lr": 0.5, "epochs": 3, "data": "digits", "fast": true, "grid": [1, 2], "x": null}'
    with sqlite3.connect(state / "scanflow.db") as conn:
        conn.execute(
            "INSERT INTO runs (id, app, team, workflow, status, parameters, spec, base_dir, "
            "run_dir, engine, created_at) VALUES ('old', 'a', 't', 'w', 'succeeded', ?, '', "
            "'/x', '/x', 'local', 1.0)",
            (params,),
        )
    store = Store.for_state_dir(state)
    with sqlite3.connect(state / "scanflow.db") as conn:
        rows = conn.execute(
            "SELECT key, num_value, text_value FROM run_params WHERE run_id = 'old' ORDER BY key"
        ).fetchall()
    assert rows == [
        ("data", None, "digits"),
        ("epochs", 3.0, None),
        ("fast", 1.0, "true"),
        ("lr", 0.5, None),
    ]
    schema.downgrade(store._engine, "0007")
    assert "run_params" not in _tables(state / "scanflow.db")
