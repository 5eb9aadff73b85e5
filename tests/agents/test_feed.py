"""JSON-lines feeds read with a cursor, in bounded steps, from a chosen start; and the drift
agent on a large log left by earlier traffic: its first reading comes at once and it keeps
up with what is written after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from scanflow.agents.runtime import AgentRuntime, AgentSetup
from scanflow.agents.state import AgentState
from scanflow.agents.strategies.drift_retrain import DriftRetrain, DriftRetrainConfig
from scanflow.agents.toolkit import Toolkit
from scanflow.feed import JsonlFeed
from scanflow.serving.predictions import Cursor, PredictionLog

from .conftest import run


def _records(start: int, n: int, version: str = "1", shift: float = 0.0) -> list[dict[str, Any]]:
    rows = np.random.default_rng(start).normal(shift, 1.0, size=(n, 4)).round(3)
    return [
        {
            "id": f"r{start + i}",
            "ts": 1000.0 + start + i,
            "model_version": version,
            "inputs": [row],
            "outputs": [0],
        }
        for i, row in enumerate(rows.tolist())
    ]


def _write(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("ab") as out:
        out.write(b"".join(orjson.dumps(r) + b"\n" for r in records))


def test_bounded_reads_drain_a_log_in_steps_without_losing_a_line(tmp_path: Path) -> None:
    feed = JsonlFeed(tmp_path)
    _write(tmp_path / "1-7-1.jsonl", _records(0, 300))
    _write(tmp_path / "2-8-1.open.jsonl", _records(300, 200))
    seen: list[str] = []
    cursor: Any = None
    reads = 0
    while True:
        records, cursor = feed.read_new(cursor, max_bytes=4096)
        if not records:
            break
        reads += 1
        seen += [r["id"] for r in records]
    assert seen == [f"r{i}" for i in range(500)]  # every line once, none torn
    line = len(orjson.dumps(_records(0, 1)[0])) + 1
    assert reads >= 500 * line // 4096  # bounded: many small steps, not one big read
    assert cursor == {
        "1-7-1": (tmp_path / "1-7-1.jsonl").stat().st_size,
        "2-8-1": (tmp_path / "2-8-1.open.jsonl").stat().st_size,
    }


def test_a_line_longer_than_the_budget_is_read_whole(tmp_path: Path) -> None:
    feed = JsonlFeed(tmp_path)
    _write(tmp_path / "a.jsonl", [{"ts": 1, "blob": "x" * 10_000}, {"ts": 2}])
    records, cursor = feed.read_new(None, max_bytes=100)
    assert [r["ts"] for r in records] == [1]
    records, _ = feed.read_new(cursor, max_bytes=100)
    assert [r["ts"] for r in records] == [2]


def test_the_end_cursor_leaves_only_the_newest_lines(tmp_path: Path) -> None:
    feed = JsonlFeed(tmp_path)
    _write(tmp_path / "1-7-1.jsonl", _records(0, 100))
    _write(tmp_path / "2-7-2.jsonl", _records(100, 100))
    assert feed.read_new(feed.end())[0] == []
    newest, _ = feed.read_new(feed.end(5000))
    ids = [r["id"] for r in newest]
    size = sum(len(orjson.dumps(r)) + 1 for r in _records(100, 100)[-len(ids) :])
    assert ids == [f"r{i}" for i in range(200 - len(ids), 200)]  # the newest, whole lines
    assert 0 < size <= 5000 and len(ids) < 100
    everything, _ = feed.read_new(feed.end(10**9))
    assert len(everything) == 200


def test_the_prediction_log_reads_through_the_same_feed(tmp_path: Path) -> None:
    _write(tmp_path / "1-7-1.open.jsonl", _records(0, 50))
    log = PredictionLog(tmp_path)
    first, cursor = log.read_new(max_bytes=2000)
    rest, cursor = log.read_new(cursor)
    assert isinstance(cursor, Cursor)
    assert [r["id"] for r in first + rest] == [f"r{i}" for i in range(50)]
    assert 0 < len(first) < 50


def _agent(
    tmp_path: Path, store: Any, log: JsonlFeed, labels: JsonlFeed, **options: Any
) -> AgentRuntime:
    config = DriftRetrainConfig(
        service="svc", model="m", window_rows=100, reference_rows=200, interval=3600, **options
    )
    setup = AgentSetup.for_strategy("retrainer", DriftRetrain(config))
    toolkit = Toolkit(
        predictions={"svc": log}, labels={"svc": labels}, extras={"state_dir": tmp_path}
    )
    return AgentRuntime(setup, store, toolkit)


@pytest.mark.timeout(300)
def test_drift_agent_starts_at_the_newest_window_of_a_large_log(tmp_path: Path, store) -> None:
    log, labels = JsonlFeed(tmp_path / "log"), JsonlFeed(tmp_path / "labels")
    (tmp_path / "log").mkdir()
    for segment in range(6):  # 300,000 records left by earlier traffic, in sealed segments
        _write(tmp_path / "log" / f"{segment}-7-1.jsonl", _records(segment * 50_000, 50_000))
    budget = 256 * 1024
    runtime = _agent(tmp_path, store, log, labels, max_read_bytes=budget)

    async def scenario() -> list[dict[str, Any]]:
        readings = []
        await runtime.start()
        await runtime.tick()  # the first reading: the newest records only, within the budget
        readings.append(runtime.state.get("reading:traffic"))
        _write(tmp_path / "log" / "9-8-1.open.jsonl", _records(400_000, 3000, version="2"))
        labels.append([{"id": f"r{400_000 + i}", "label": 0, "ts": 0} for i in range(3000)])
        for _ in range(30):  # later records are all seen, a budget at a time
            await runtime.tick()
            readings.append(runtime.state.get("reading:traffic"))
            quality = (runtime.state.get("reading:traffic") or {}).get("quality", {})
            if quality.get("2", {}).get("total") == 3000:
                break
        await runtime.stop()
        return readings

    readings = run(scenario(), timeout=240)
    state = AgentState(store, "retrainer")
    assert state.events("sensor_timeout") == [] and state.events("sensor_busy") == []
    first = readings[0]
    assert 0 < first["requests"] <= budget // 60  # the newest window, not 300,000 records
    assert first["served_version"] == "1"
    assert readings[-1]["quality"]["2"] == {"correct": 3000, "total": 3000, "accuracy": 1.0}
    assert any(r.get("served_version") == "2" for r in readings[1:])
    cursor = state.get("watermark:traffic")["predictions_cursor"]
    assert cursor["9-8-1"] == (tmp_path / "log" / "9-8-1.open.jsonl").stat().st_size


def test_drift_agent_can_start_at_the_earliest_record(tmp_path: Path, store) -> None:
    log, labels = JsonlFeed(tmp_path / "log"), JsonlFeed(tmp_path / "labels")
    (tmp_path / "log").mkdir()
    _write(tmp_path / "log" / "1-7-1.jsonl", _records(0, 2000))
    runtime = _agent(tmp_path, store, log, labels, start="earliest", max_read_bytes=64 * 1024)

    async def scenario() -> list[int]:
        counts = []
        await runtime.start()
        for _ in range(20):
            await runtime.tick()
            reading = runtime.state.get("reading:traffic") or {}
            counts.append(reading.get("requests", 0))
            mark = runtime.state.get("watermark:traffic")
            if (
                mark["predictions_cursor"]["1-7-1"]
                == (tmp_path / "log" / "1-7-1.jsonl").stat().st_size
            ):
                break
        await runtime.stop()
        return counts

    counts = run(scenario())
    assert len(counts) > 2  # the whole log, over several ticks
    windows = [
        w
        for reading in AgentState(store, "retrainer").get("history:traffic")
        for w in reading.get("windows", [])
    ]
    assert len(windows) == (2000 - 200) // 100  # every row after the reference, windowed
