"""The state store: a store made by an older Scanflow opens, upgrades and keeps its runs;
the same store and migrations on a real PostgreSQL server (``$SCANFLOW_STORE_URI``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from scanflow.engines.local.ref import LocalProcessRef
from scanflow.errors import StoreError
from scanflow.store import RunRecord, Store, schema
from scanflow.store.config import ENV_STORE_URI, STORE_SCHEMA, store_url


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test twice: the default SQLite store under ``.scanflow``, and a new database
    on a real PostgreSQL server named by ``$SCANFLOW_STORE_URI``."""
    if request.param == "postgresql":
        monkeypatch.setenv(ENV_STORE_URI, request.getfixturevalue("postgres_server").database())
    return request.param


def _run_script(engine: sa.Engine, script: str) -> None:
    """Several SQL statements at once, on either database."""
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "sqlite":
            raw.driver_connection.executescript(script)
        else:
            raw.driver_connection.execute(script)
        raw.commit()
    finally:
        raw.close()


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


def test_a_new_store_is_created_at_head(tmp_path: Path, backend: str) -> None:
    store = Store.for_state_dir(tmp_path / ".scanflow")
    assert store._engine.dialect.name == backend
    assert schema.current(store._engine) == schema.head()
    assert _differences(store) == []
    store.add_run(_run("r", parameters={"lr": 0.1}), [])
    assert (store.get_run("r").engine, store.get_run("r").parameters) == ("local", {"lr": 0.1})
    if backend == "postgresql":  # its own schema: MLflow's tables (and alembic_version) apart
        tables = sa.inspect(store._engine)
        assert {"runs", "alembic_version"} <= set(tables.get_table_names(schema=STORE_SCHEMA))
        assert tables.get_table_names(schema="public") == []
    else:
        assert (tmp_path / ".scanflow" / "scanflow.db").is_file()


def test_concurrent_first_opens_of_one_store_are_safe(tmp_path: Path, backend: str) -> None:
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
    store = Store.for_state_dir(state)
    with store._engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    assert versions == [(schema.head(),)]
    assert _differences(store) == []


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
    from scanflow.store.store import _engine, creation_lock

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
    url, _ = store_url(base / ".scanflow")
    engine = _engine(url)
    with creation_lock(engine, url):
        assert schema.upgrade(engine, "0004") == "0004"
    _run_script(engine, RUNS_AT_0004.format(base=base, log1=log1, log2=log2))
    engine.dispose()
    return base, log1, log2


def test_a_store_at_0004_moves_engine_fields_into_engine_refs(tmp_path: Path, backend: str) -> None:
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


def test_the_downgrade_to_0004_puts_the_engine_fields_back(tmp_path: Path, backend: str) -> None:
    base, log1, log2 = _store_at_0004(tmp_path)
    query = sa.text(
        "SELECT r.id, r.engine_pid, r.engine_started_at, r.engine_ref, s.pid, s.pid_started_at,"
        " a.number, a.pid, a.log_path FROM runs r JOIN steps s ON s.run_id = r.id"
        " JOIN attempts a ON a.step_id = s.id ORDER BY r.id, a.number"
    )
    store = Store.for_state_dir(base / ".scanflow")  # upgrades to the newest revision
    assert schema.current(store._engine) == schema.head()
    schema.downgrade(store._engine, "0004")
    assert schema.current(store._engine) == "0004"
    with store._engine.connect() as conn:
        after = conn.execute(query).all()
    json = sa.JSON().result_processor(store._engine.dialect, None) or (lambda v: v)
    assert [(*r[:3], json(r[3]), *r[4:]) for r in after] == [
        ("kube-run", 99, 1700000001.25, KUBE_REF, None, None, 1, None, "pod/only-abc12"),
        ("local-run", 4242, 1700000000.5, None, 77, 1700000002.5, 1, 77, str(log1)),
        ("local-run", 4242, 1700000000.5, None, 77, 1700000002.5, 2, 78, str(log2)),
    ]
    assert "engine_ref" not in {c["name"] for c in sa.inspect(store._engine).get_columns("steps")}
    if backend == "sqlite":
        with sqlite3.connect(base / ".scanflow" / "scanflow.db") as conn:
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    store.close()
    assert schema.current(Store.for_state_dir(base / ".scanflow")._engine) == schema.head()


KUBE_REF = {"kind": "ConfigMap", "name": "run-kube-run", "namespace": "engine-test-t"}


# -- choosing the store, and a store that cannot be opened ------------------------------
def test_the_store_setting_chooses_postgresql_for_every_command(
    tmp_path: Path, postgres_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from scanflow.cli.main import main

    url = postgres_server.database()
    for project in ("one", "two"):  # two folders, one shared store
        (tmp_path / project).mkdir()
    monkeypatch.setenv(ENV_STORE_URI, url)
    Store.for_state_dir(tmp_path / "one" / ".scanflow").add_run(_run("shared-run"), [])
    assert Store.for_state_dir(tmp_path / "two" / ".scanflow").get_run("shared").id == (
        "shared-run"
    )
    assert not (tmp_path / "one" / ".scanflow" / "scanflow.db").exists()
    assert store_url(tmp_path)[0].startswith("postgresql+psycopg://team:")

    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(out):
        code = main(["--app", str(tmp_path / "two"), "server", "token", "create", "--team", "t"])
    assert code == 0, out.getvalue()
    with Store(url)._engine.connect() as conn:  # the token is kept in the shared store
        teams = conn.execute(sa.text("SELECT team FROM api_tokens")).scalars().all()
    assert teams == ["t"]
    monkeypatch.setenv(ENV_STORE_URI, url.replace("postgresql://", "postgres://", 1))
    assert Store.for_state_dir(tmp_path / "one" / ".scanflow").get_run("shared-run").app == "app"


def _refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> str:
    """The error opening the project's store when ``$SCANFLOW_STORE_URI`` is ``url``, and
    what the CLI prints for it (no traceback)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from scanflow.cli.main import main

    monkeypatch.setenv(ENV_STORE_URI, url)
    with pytest.raises(StoreError) as caught:
        Store.for_state_dir(tmp_path / ".scanflow")
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(out):
        code = main(["--app", str(tmp_path), "server", "token", "list"])
    printed = " ".join(out.getvalue().split())
    assert code != 0 and "Traceback" not in printed
    assert " ".join(str(caught.value).split()) in printed
    return str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "SCANFLOW_STORE_URI is not a database URL"),
        ("mysql://u:pw@db/scanflow", "must be SQLite or PostgreSQL, not 'mysql'"),
        ("postgresql://u:pw@/nodb", "a PostgreSQL URL needs a host and a database"),
    ],
)
def test_a_malformed_store_url_is_refused_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, expected: str
) -> None:
    message = _refused(tmp_path, monkeypatch, url)
    assert expected in message and "postgresql://USER:PASSWORD@HOST:5432/DATABASE" in message
    assert "pw" not in message


def test_an_unreachable_postgresql_store_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_server
) -> None:
    from conftest import free_port

    port = free_port()  # nothing listens there
    message = _refused(tmp_path, monkeypatch, postgres_server.url("scanflow", port=port))
    assert message.startswith(
        f"cannot open the state store postgresql+psycopg://team:***@127.0.0.1:{port}/scanflow"
        " (from SCANFLOW_STORE_URI): connection failed"
    )
    assert "Connection refused" in message and message.endswith("; check SCANFLOW_STORE_URI")
    assert postgres_server.password not in message


def test_a_wrong_postgresql_password_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_server
) -> None:
    url = postgres_server.url(postgres_server.database().rsplit("/", 1)[1], password="wrong")
    message = _refused(tmp_path, monkeypatch, url)
    assert 'password authentication failed for user "team"' in message
    assert "(from SCANFLOW_STORE_URI)" in message and "wrong" not in message


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
