"""The closed-loop demo end to end (shortened phases): real training runs, a real service
with hot-swap and live scaling, the agents in their own process, real traffic."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def cpu_hogs():
    """Two CPU-bound processes beside the test (a machine busy with other work), stopped by
    their PIDs at the end."""
    import subprocess
    import sys

    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        yield [h.pid for h in hogs]
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait(30)


def _closed_loop(tmp_path: Path, *, detection_s: float, live_s: float) -> None:
    pytest.importorskip("scanflow.serving")
    from scanflow.agents.demo.run import Phases, run_demo
    from scanflow.cli.project import examples_root

    lines: list[str] = []
    # calm ends as soon as the pool is back at its minimum: the bound only caps a slow machine
    phases = Phases(clean=10, after_swap=5, load=25, calm=240, max_wait_promotion=240)
    result = run_demo(tmp_path / "app", examples_root(), lines.append, phases)
    s = result.summary
    assert s["failed_requests"] == 0 and s["requests"] > 1000
    assert s["retrain_outcome"].startswith("succeeded")
    assert s["detection_delay_s"] is not None and s["detection_delay_s"] < detection_s
    assert s["time_to_new_model_live_s"] is not None and s["time_to_new_model_live_s"] < live_s
    assert s["accuracy_before_drift"] > 0.9
    assert s["accuracy_drifted_new_model"] > s["accuracy_drifted_old_model"] + 0.1
    # the load made the scaler grow the pool, and the calm after it shrink it again
    assert s["max_workers"] >= 2, s["scale_decisions"]
    assert s["scale_decisions"][0] == 2 and s["scale_decisions"][-1] < s["max_workers"]
    assert s["workers_at_end"] == s["min_workers"], s["scale_decisions"]
    assert result.plot.read_bytes()[:4] == b"\x89PNG"
    events = [m.event for m in result.timeline]
    assert "drift injected" in events and "new model live" in events
    assert any(e.startswith("decides retrain") for e in events)
    assert any(line.startswith("[6/6]") for line in lines)


def test_closed_loop(tmp_path: Path, cpu_hogs: list[int]) -> None:
    """The whole loop with two CPU-bound processes beside it (a machine busy with other
    work): drift detected, a better model trained, gated and served with no failed request,
    the pool grown under load and back at its minimum after it. The busy-machine goals
    (30 s / 120 s) are measured by bench/closed_loop; the bounds here leave room for a slow
    CI box."""
    _closed_loop(tmp_path, detection_s=60, live_s=240)
