"""The demo's report: summary figures from client samples and decisions, and the plot."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from scanflow.agents.demo.drift import corruption
from scanflow.agents.demo.report import decision_moments, plot, series, summarise
from scanflow.agents.demo.traffic import Sample


def _samples() -> list[Sample]:
    out = []
    for i in range(100):  # 0-49 clean on v1, 50-74 drifted on v1, 75-99 drifted on v2
        drifted, version = i >= 50, "2" if i >= 75 else "1"
        correct = (i % 10 != 0) if not drifted else (i % 2 == 0 if version == "1" else i % 5)
        out.append(Sample(float(i), 0.01, 200 if i != 60 else 503, version, bool(correct), drifted))
    return out


def _decisions() -> list[SimpleNamespace]:
    retrain = SimpleNamespace(
        agent="retrainer",
        action="retrain",
        status="succeeded",
        outcome="v2 serves",
        reason="drift in 2 of 3 windows",
        created_at=58.0,
        evidence={"detected_at": 57.5, "score": 0.9},
        steps=[
            {"action": "retrain", "status": "done", "finished_at": 65.0, "message": "v2"},
            {
                "action": "promote",
                "status": "done",
                "finished_at": 74.0,
                "result": {"version": "2"},
            },
        ],
    )
    scale = SimpleNamespace(
        agent="scaler",
        action="scale",
        status="succeeded",
        outcome="done",
        reason="p95 high",
        created_at=80.0,
        evidence={"target": 2},
        steps=[],
    )
    held = SimpleNamespace(
        agent="scaler",
        action="scale",
        status="blocked",
        outcome="cooldown: 2s left",
        reason="p95 high",
        created_at=81.0,
        evidence={"target": 3},
        steps=[],
    )
    return [retrain, scale, held]


def test_summary_figures() -> None:
    summary = summarise(_samples(), 50.0, _decisions(), [(0.0, 1), (80.0, 2)])
    assert summary["failed_requests"] == 1 and summary["requests"] == 100
    assert summary["detection_delay_s"] == 7.5 and summary["detected_at"] == 57.5
    assert summary["time_to_new_model_live_s"] == 75.0 - 57.5
    assert summary["accuracy_before_drift"] == 0.9
    assert summary["accuracy_drifted_old_model"] == 12 / 24  # the 503 is not counted
    assert summary["accuracy_drifted_new_model"] == 20 / 25
    assert summary["max_workers"] == 2 and summary["scale_decisions"] == [2]


def test_timeline_series_and_plot(tmp_path: Path) -> None:
    moments = decision_moments(_decisions())
    assert [m.event for m in moments][:3] == [
        "decides retrain: drift in 2 of 3 windows",
        "retrain done",
        "promote done",
    ]
    assert moments[0].evidence == "score=0.900"
    assert moments[-1].event == "holds scale back: cooldown: 2s left"
    assert moments[-1].evidence == "p95 high; target=3"
    xs, ys = series(_samples(), 0.0, width=50.0)
    assert xs == [25.0, 75.0] and ys[0] == 0.9
    png = plot(
        tmp_path / "loop.png",
        _samples(),
        0.0,
        [(55.0, 0.9)],
        [(0.0, 1), (80.0, 2)],
        [(50.0, "drift injected")],
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_corruption_moves_the_digits() -> None:
    rng = np.random.default_rng(0)
    rows = np.random.default_rng(1).uniform(0, 1, size=(5, 64))
    out = corruption()(rows, rng)
    assert out.shape == rows.shape and out.min() >= 0 and out.max() <= 1
    assert np.abs(out - rows).mean() > 0.1


def test_the_demo_never_deletes_a_folder_that_is_not_a_demo(tmp_path: Path) -> None:
    import pytest

    from scanflow.agents.demo.run import create_app
    from scanflow.cli.project import examples_root
    from scanflow.errors import ScanflowError

    precious = tmp_path / "work"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(ScanflowError, match="is not a previous demo; choose another folder"):
        create_app(precious, examples_root())
    assert (precious / "notes.txt").read_text() == "keep me"
    app = create_app(tmp_path / "demo", examples_root())
    (app / "leftover").write_text("x")
    again = create_app(tmp_path / "demo", examples_root())  # a previous demo starts afresh
    assert not (again / "leftover").exists() and (again / "holdout.npz").is_file()
