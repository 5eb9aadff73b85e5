"""Event triggers (a run finished, an alias moved, N predictions, a metric crossing) fire on
changes only; decisions are mirrored to MLflow and listed by ``scanflow decisions``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from scanflow.agents import Registry, decide
from scanflow.agents.clients import JsonlFeed, MlflowRegistry
from scanflow.agents.runtime import AgentRuntime, AgentSetup
from scanflow.agents.state import AgentState
from scanflow.agents.toolkit import Toolkit
from scanflow.agents.triggers import OnAliasMoved, OnMetric, OnPredictions, OnRunFinished
from scanflow.agents.watchers import watcher_for
from scanflow.errors import ScanflowError
from scanflow.store import RunRecord, StepRecord

from .conftest import run, until


def _finished_run(
    store, run_id: str, status: str, workflow: str = "train", now: float | None = None
) -> None:
    now = time.time() if now is None else now
    store.add_run(
        RunRecord(
            id=run_id,
            app="a",
            team="t",
            workflow=workflow,
            status=status,
            parameters={},
            spec="",
            base_dir="",
            run_dir="",
            created_at=now,
            finished_at=now,
        ),
        [StepRecord(run_id=run_id, name="s", status=status, depends_on=[])],
    )


def test_run_finished_watcher_sees_each_run_once(store) -> None:
    state = AgentState(store, "w")
    watcher = watcher_for(OnRunFinished(), Toolkit(), store, "watch:0", clock=lambda: 100.0)
    _finished_run(store, "old", "succeeded", now=99.0)
    assert watcher.check(state) == []  # history before the agent started does not fire
    _finished_run(store, "before", "succeeded", now=99.5)  # recorded late, finished before
    _finished_run(store, "r1", "failed", now=100.5)
    events = watcher.check(state)
    assert [(e.data["run_id"], e.data["status"]) for e in events] == [("r1", "failed")]
    assert watcher.check(state) == []


def test_predictions_and_metric_watchers_fire_on_changes(store, tmp_path: Path) -> None:
    state = AgentState(store, "w")
    feed = JsonlFeed(tmp_path / "log")
    level = {"p95": 10.0}
    toolkit = Toolkit(predictions={"svc": feed}, extras={"metric:p95": lambda: level["p95"]})
    preds = watcher_for(OnPredictions(service="svc", count=3), toolkit, store, "watch:1")
    feed.append([{"id": i, "ts": i} for i in range(5)])  # the log's history does not count
    assert preds.check(state) == []
    feed.append([{"id": i, "ts": i} for i in range(5, 7)])
    assert preds.check(state) == []
    feed.append([{"id": 9, "ts": 9}])
    assert [e.data for e in preds.check(state)] == [{"service": "svc", "new": 3}]
    assert preds.check(state) == []
    metric = watcher_for(OnMetric(metric="p95", above=100), toolkit, store, "watch:2")
    assert metric.check(state) == []
    level["p95"] = 150.0
    assert [e.data["value"] for e in metric.check(state)] == [150.0]
    assert metric.check(state) == []  # still above: no new event (the original fired forever)
    level["p95"] = 50.0
    assert metric.check(state) == []  # back below: re-armed
    level["p95"] = 120.0
    assert len(metric.check(state)) == 1


class _Exposition:
    """A service's ``/metrics`` text, parsed as the HTTP client parses it."""

    def __init__(self) -> None:
        self.depth = 0

    def metrics(self) -> dict[str, Any]:
        from scanflow.agents.clients import parse_metrics

        return parse_metrics(
            "# TYPE scanflow_queue_depth gauge\n"
            f"scanflow_queue_depth {self.depth}\n"
            "# TYPE scanflow_requests_total counter\n"
            'scanflow_requests_total{code="200"} 42\n'
        )


def test_a_service_metric_trigger_and_an_unknown_metric_name(store) -> None:
    state = AgentState(store, "w")
    service = _Exposition()
    toolkit = Toolkit(services={"svc": service})
    deep = watcher_for(
        OnMetric(service="svc", metric="queue_depth", above=20), toolkit, store, "watch:0"
    )
    assert deep.check(state) == []
    service.depth = 25
    (event,) = deep.check(state)
    assert event.data == {
        "metric": "queue_depth",
        "value": 25.0,
        "threshold": 20.0,
        "service": "svc",
    }
    assert deep.check(state) == []
    # a metric the service does not expose is an error naming the ones it does
    typo = OnMetric(service="svc", metric="p95_ms", above=200, poll=0.05)
    with pytest.raises(ScanflowError, match="exposes no metric 'p95_ms' \\(known: requests"):
        watcher_for(typo, toolkit, store, "watch:1").check(state)
    setup = AgentSetup("typo", Registry(), triggers=[typo])

    async def scenario() -> None:
        rt = AgentRuntime(setup, store, toolkit)
        await rt.start()
        await until(lambda: AgentState(store, "typo").events("watcher_error"), what="the error")
        await rt.stop()

    run(scenario())
    error = AgentState(store, "typo").events("watcher_error")[0].detail["error"]
    assert "queue_depth" in error and "fix 'metric'" in error


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{folder / 'mlflow.db'}"


def test_alias_watcher_and_a_rule_woken_by_it(store, mlflow_uri: str, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_uri, registry_uri=mlflow_uri)
    client.create_registered_model("m")
    for _ in range(2):
        client.create_model_version("m", source=(tmp_path / "model").as_uri())
    client.set_registered_model_alias("m", "champion", "1")
    reg = Registry()
    seen: list[dict[str, Any]] = []

    @reg.rule
    def moved(facts: Any) -> Any:
        if facts.event is not None and facts.event.kind == "alias_moved":
            seen.append(facts.event.data)
        return None

    toolkit = Toolkit(registry=MlflowRegistry(mlflow_uri))
    setup = AgentSetup("aliaswatch", reg, triggers=[OnAliasMoved(model="m", poll=0.05)])

    async def scenario() -> None:
        rt = AgentRuntime(setup, store, toolkit)
        await rt.start()
        await until(lambda: AgentState(store, "aliaswatch").get("watch:0"), what="first look")
        client.set_registered_model_alias("m", "champion", "2")
        await until(lambda: seen, what="the alias event")
        await rt.stop()

    run(scenario())
    assert seen[0]["version"] == "2" and seen[0]["previous"] == "1"
    assert seen[0]["model"] == "m" and len(seen) == 1


def test_decisions_are_mirrored_to_mlflow_and_listed(
    store, mlflow_uri: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow.tracking import MlflowClient

    from scanflow.agents.audit import MlflowAudit
    from scanflow.cli.main import main

    reg = Registry()

    @reg.rule
    def act(facts: Any) -> Any:
        return decide(
            "p95 over 200 ms",
            ("noop", {"workers": 3}),
            guarded=False,
            evidence={"p95_ms": 250.0, "threshold": 200, "note": "busy"},
        )

    @reg.actuator
    def noop(ctx: Any, workers: int) -> dict:
        return {"workers": workers}

    audit = MlflowAudit(mlflow_uri, "shop", tmp_path)

    async def scenario() -> None:
        rt = AgentRuntime(AgentSetup("auditor", reg, app="shop"), store, audit=audit)
        await rt.start()
        await rt.tick()
        await rt.idle()
        await rt.stop()

    run(scenario())
    audit.close()
    assert audit.errors == []
    row = AgentState(store, "auditor").decisions()[0]
    client = MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name("shop-agents")
    (mlrun,) = client.search_runs([experiment.experiment_id])
    assert mlrun.info.run_id == row.mlflow_run_id
    assert mlrun.data.metrics == {"p95_ms": 250.0, "threshold": 200.0}
    assert mlrun.data.params["step0.noop.workers"] == "3"
    assert mlrun.data.tags["scanflow.status"] == "succeeded"
    assert mlrun.info.status == "FINISHED"
    document = json.loads(
        client.download_artifacts(mlrun.info.run_id, "decision.json", str(tmp_path))
        and (Path(tmp_path) / "decision.json").read_text()
    )
    assert document["evidence"]["note"] == "busy"
    # the timeline on the command line
    app_dir = Path(store.url.removeprefix("sqlite:///")).parent.parent
    (app_dir / "scanflow.yaml").write_text("name: shop\n")
    capsys.readouterr()
    assert main(["--app", str(app_dir), "decisions", "-o", "json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["agent"] == "auditor" and listed["reason"] == "p95 over 200 ms"
    assert listed["status"] == "succeeded" and listed["mlflow_run_id"] == row.mlflow_run_id
    assert main(["--app", str(app_dir), "decisions"]) == 0
    table = capsys.readouterr().out
    assert "p95 over 200 ms" in table and "succeeded" in table
    assert main(["--app", str(app_dir), "agents", "status", "-o", "json"]) == 0
    (status,) = json.loads(capsys.readouterr().out)
    assert status["agent"] == "auditor" and status["dead_letters"] == []


def test_jsonl_feed_reads_only_new_lines_across_renames_and_deletions(tmp_path: Path) -> None:
    feed = JsonlFeed(tmp_path)
    (tmp_path / "1-9-1.open.jsonl").write_text('{"ts": 1}\n{"ts": 2}\n{"ts": 3')  # torn line
    records, cursor = feed.read_new(None)
    assert [r["ts"] for r in records] == [1, 2] and cursor == {"1-9-1": 20}
    with (tmp_path / "1-9-1.open.jsonl").open("a") as out:
        out.write("}\n")
    (tmp_path / "1-9-1.open.jsonl").rename(tmp_path / "1-9-1.jsonl")  # sealed by its writer
    records, cursor = feed.read_new(cursor)
    assert [r["ts"] for r in records] == [3]
    (tmp_path / "1-9-1.jsonl").unlink()  # rotated away
    (tmp_path / "2-9-2.open.jsonl").write_text('{"ts": 4}\n')
    records, cursor = feed.read_new(cursor)
    assert [r["ts"] for r in records] == [4] and list(cursor) == ["2-9-2"]
