"""A team's study on PostgreSQL: when the state store is there, Optuna's storage is the same
database in a schema of its own, and a study resumes from it."""

from __future__ import annotations

import sqlalchemy as sa

from scanflow.store import Store
from scanflow.store.config import ENV_STORE_URI, STORE_SCHEMA, TUNING_SCHEMA
from scanflow.tuning.study import Tuner, find_study, load, storage_url


def test_a_study_is_kept_beside_a_postgresql_store_and_resumes_from_it(
    tiny, postgres_server, monkeypatch
) -> None:
    url = postgres_server.database()
    monkeypatch.setenv(ENV_STORE_URI, url)
    project = tiny()
    study = find_study(project, None, "search")

    storage = storage_url(project)
    assert storage.startswith("postgresql+psycopg://team:")
    assert storage.endswith(f"options=-csearch_path%3D{TUNING_SCHEMA}")
    Tuner(project, study, poll_interval=0.1).run(trials=2)
    resumed = Tuner(project, study, poll_interval=0.1).run(resume=True, more=1)

    assert [t.state.name for t in resumed.trials] == ["COMPLETE"] * 3
    assert [t.number for t in load(project, study).trials] == [0, 1, 2]
    assert not (project.state_dir / "tuning.db").exists()
    assert not (project.state_dir / "scanflow.db").exists()
    runs = Store.for_state_dir(project.state_dir).list_runs()  # the trials' runs
    assert len(runs) == 3 and {r.workflow for r in runs} == {"train"}

    tables = sa.inspect(sa.create_engine(url.replace("postgresql:", "postgresql+psycopg:")))
    optuna_tables = set(tables.get_table_names(schema=TUNING_SCHEMA))
    assert {"studies", "trials", "alembic_version"} <= optuna_tables
    store_tables = set(tables.get_table_names(schema=STORE_SCHEMA))
    assert {"runs", "alembic_version"} <= store_tables and "trials" not in store_tables
    assert tables.get_table_names(schema="public") == []  # left to MLflow
