"""The runs table of the API layer over a real store holding 10,000 runs."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import text

from scanflow.api import runs as runs_api
from scanflow.api.errors import Invalid, NotFound
from scanflow.api.runs import RunQuery
from scanflow.api.workspace import AppHandle
from scanflow.spec import load_project
from scanflow.store import RunRecord
from scanflow.store.metric_models import RunMetricRecord

from .apps import STEPS, pipeline

N = 10_000


def accuracy(run_id: str) -> float:
    return (int(run_id.split("-")[1]) * 37 % 1000) / 1000


STATES = ["succeeded", "failed", "running", "cancelled"]


@pytest.fixture(scope="module")
def handle(tmp_path_factory) -> AppHandle:
    root = tmp_path_factory.mktemp("runs") / "vision"
    root.mkdir()
    (root / "scanflow.yaml").write_text(pipeline("vision", "vision"))
    (root / "steps.py").write_text(STEPS)
    handle = AppHandle(load_project(root))
    rng = random.Random(7)
    rows = [
        RunRecord(
            id=f"pipe-{i:05d}",
            app="vision" if i % 10 else "other",  # another application in the same store
            team="vision",
            workflow="pipe",
            status=STATES[i % 4],
            parameters={"lr": round(rng.uniform(0, 1), 4), "data.name": f"set{i % 3}"},
            spec="",
            base_dir=str(root),
            run_dir=str(root),
            engine="kubernetes",  # not probed as a local process
            created_at=1_000_000.0 + i,
        )
        for i in range(N)
    ]
    with handle.store.session() as s:
        s.add_all(rows)
        s.flush()
        s.add_all(  # metrics as copied from MLflow, for every second run
            RunMetricRecord(run_id=r.id, key="accuracy", value=accuracy(r.id), step="train")
            for r in rows[::2]
        )
    yield handle
    handle.close()


def test_pages_are_counted_and_ordered_newest_first(handle) -> None:
    page = runs_api.list_runs(handle, RunQuery(limit=25))
    assert page.total == N - N // 10  # only this application's runs
    assert [r.id for r in page.items][:3] == ["pipe-09999", "pipe-09998", "pipe-09997"]
    later = runs_api.list_runs(handle, RunQuery(limit=25, offset=25))
    assert later.items[0].created_at < page.items[-1].created_at


def test_status_and_parameter_filters_run_in_sql(handle) -> None:
    with handle.store.session() as s:
        rows = s.query(RunRecord).filter(RunRecord.app == "vision").all()
        want = {
            r.id
            for r in rows
            if r.status == "failed"
            and r.parameters["lr"] >= 0.5
            and r.parameters["data.name"] == "set1"
        }
    page = runs_api.list_runs(
        handle,
        RunQuery(status=["failed"], params=["lr>=0.5", "data.name=set1"], limit=500),
    )
    assert page.total == len(want) > 0
    assert {r.id for r in page.items} == want


def test_sorting_by_a_parameter(handle) -> None:
    page = runs_api.list_runs(handle, RunQuery(sort="-param.lr", limit=50))
    values = [r.parameters["lr"] for r in page.items]
    assert values == sorted(values, reverse=True) and values[0] > 0.99


def test_the_list_query_uses_the_indexes(handle) -> None:
    with handle.store.session() as s:
        plan = s.execute(
            text(
                "EXPLAIN QUERY PLAN SELECT * FROM runs WHERE app = 'vision' AND status = 'failed' "
                "ORDER BY created_at DESC LIMIT 50"
            )
        ).fetchall()
    assert "ix_runs_app_status_created" in " ".join(str(row) for row in plan)


def test_metric_filters_sorting_and_values(handle) -> None:
    with handle.store.session() as s:
        rows = s.query(RunRecord).filter(RunRecord.app == "vision").all()
        want = {r.id for r in rows if r.status == "succeeded" and int(r.id[5:]) % 2 == 0}
        want = {i for i in want if accuracy(i) >= 0.9 and r_lr(rows, i) < 0.5}
    query = RunQuery(status=["succeeded"], params=["lr<0.5"], metrics=["accuracy>=0.9"], limit=500)
    page = runs_api.list_runs(handle, query)
    assert page.total == len(want) > 0
    assert {r.id for r in page.items} == want
    assert all(r.metrics == {"accuracy": accuracy(r.id)} for r in page.items)
    best = runs_api.list_runs(handle, RunQuery(sort="-metric.accuracy", limit=20))
    values = [r.metrics["accuracy"] for r in best.items]
    assert values == sorted(values, reverse=True) and values[0] == 0.998
    worst = runs_api.list_runs(handle, RunQuery(sort="metric.accuracy", offset=8900, limit=50))
    assert worst.items[-1].metrics == {}  # runs without the metric come last either way


def r_lr(rows: list[RunRecord], run_id: str) -> float:
    return next(r.parameters["lr"] for r in rows if r.id == run_id)


def test_a_metric_filter_searches_the_metrics_index(handle) -> None:
    from sqlalchemy import select
    from sqlalchemy.dialects import sqlite

    statement = select(RunRecord.id).where(
        RunRecord.app == "vision",
        RunRecord.status == "failed",
        runs_api.metric_condition("accuracy>=0.5"),
    )
    compiled = statement.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
    with handle.store.session() as s:
        plan = " ".join(str(r) for r in s.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "ix_runs_app_status_created" in plan
    assert "SEARCH run_metrics USING" in plan and "SCAN run_metrics" not in plan


def _plan(handle, condition) -> str:
    from sqlalchemy import select
    from sqlalchemy.dialects import sqlite

    statement = select(RunRecord.id).where(
        RunRecord.app == "vision", RunRecord.status == "failed", condition
    )
    compiled = statement.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
    with handle.store.session() as s:
        return " ".join(str(r) for r in s.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))


@pytest.mark.parametrize(
    ("wanted", "index"),
    [
        ("lr>=0.95", "ix_run_params_key_num (key=? AND num_value>?)"),
        ("lr<0.5", "ix_run_params_key_num (key=? AND num_value<?)"),
        ("data.name=set1", "ix_run_params_key_text (key=? AND text_value=?)"),
    ],
)
def test_a_parameter_filter_searches_the_parameters_index(handle, wanted, index) -> None:
    handle.analyzed_at = float("-inf")
    runs_api.refresh_statistics(handle)  # as the runs list does before filtering
    plan = _plan(handle, runs_api.param_condition(wanted))
    assert f"SEARCH run_params USING COVERING INDEX {index}" in plan, plan
    assert "SCAN" not in plan, plan  # neither every run nor every parameter is read


def test_parameters_are_indexed_rows_of_every_run(handle) -> None:
    from scanflow.store.param_models import RunParamRecord

    with handle.store.session() as s:
        rows = s.query(RunParamRecord).filter(RunParamRecord.run_id == "pipe-00001").all()
        lr = s.get(RunRecord, "pipe-00001").parameters["lr"]
        count = s.query(RunParamRecord).count()
    found = {(r.key, r.num_value, r.text_value) for r in rows}
    assert found == {("lr", lr, None), ("data.name", None, "set1")}
    assert count == 2 * N


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (RunQuery(params=["lr~1"]), "is not NAME<op>VALUE"),
        (RunQuery(params=["data.name>set1"]), "compares text"),
        (RunQuery(sort="spec"), "cannot sort by 'spec'"),
        (RunQuery(metrics=["accuracy>high"]), "must compare with a number"),
        (RunQuery(metrics=["accuracy"]), "is not NAME<op>NUMBER"),
        (RunQuery(limit=0), "limit 0 is out of range"),
    ],
)
def test_bad_queries_say_what_to_fix(handle, query, message) -> None:
    with pytest.raises(Invalid, match=message):
        runs_api.list_runs(handle, query)


def test_a_run_of_another_application_is_not_found(handle) -> None:
    assert runs_api.get_record(handle, "pipe-00001").app == "vision"
    with pytest.raises(NotFound, match="no run 'pipe-00010'"):
        runs_api.get_record(handle, "pipe-00010")


@pytest.mark.parametrize("path", ["../x", "a/../../b", "/etc/passwd", "..", "", "a\\..\\b"])
def test_paths_that_leave_a_folder_are_refused(path) -> None:
    with pytest.raises(Invalid, match="no '..'"):
        runs_api.safe_relative(path)


def test_the_declared_dag(handle) -> None:
    view = runs_api.workflow_view(handle, "pipe")
    assert [(s.name, s.depends_on) for s in view.steps] == [
        ("prepare", []),
        ("train", ["prepare"]),
        ("report", ["train"]),
    ]
    with pytest.raises(NotFound):
        runs_api.workflow_view(handle, "nope")
