"""A service over time: rates and latency from cumulative counters, versions from the log."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanflow.api.service_history import Sample, percentile_bound, points, served_versions
from scanflow.serving.predictions import PredictionLogWriter, log_dir


def counters(requests: float, errors: float, buckets: dict[str, float]) -> dict:
    return {"requests": requests, "errors": errors, "latency_buckets": buckets}


def test_rates_and_p95_come_from_the_counters_between_samples() -> None:
    status = {"ready": True, "workers": 2, "workers_target": 3, "model_version": 4}
    first = counters(100, 1, {"0.01": 90, "0.05": 100, "0.1": 100, "inf": 100})
    # 50 more requests in 5 s: 10 under 10 ms, 38 more under 50 ms, 2 more under 100 ms
    second = counters(150, 6, {"0.01": 100, "0.05": 148, "0.1": 150, "inf": 150})
    restarted = counters(7, 0, {"0.01": 7, "inf": 7})  # the counters went back
    shown = points(
        [Sample(10, status, first), Sample(15, status, second), Sample(20, {}, restarted)]
    )
    assert shown[0].requests_per_s is None and shown[0].workers == 2
    assert (shown[1].requests_per_s, shown[1].errors_per_s, shown[1].p95_ms) == (10, 1, 50)
    assert shown[1].model_version == "4" and shown[1].workers_target == 3
    assert shown[2].requests_per_s is None and shown[2].ready is False


def test_the_p95_bound_is_none_without_requests() -> None:
    same = {"0.01": 5, "inf": 5}
    assert percentile_bound(same, same, 0.95) is None
    assert percentile_bound({}, {"0.01": 1, "inf": 3}, 0.95) is None  # beyond the last bound


def test_which_version_served_when_comes_from_the_prediction_log(tmp_path: Path) -> None:
    writer = PredictionLogWriter(log_dir(tmp_path, "digits"))
    for ts, version in [(1.0, "1"), (2.0, "1"), (3.0, "2"), (4.0, "2"), (5.0, "2"), (6.0, "1")]:
        writer.append({"ts": ts, "model_version": version, "latency_ms": 1.0})
    writer.close()
    spans = served_versions(tmp_path, "digits")
    assert [(s.version, s.first_at, s.last_at, s.predictions) for s in spans] == [
        ("1", 1.0, 2.0, 2),
        ("2", 3.0, 5.0, 3),
        ("1", 6.0, 6.0, 1),
    ]
    assert served_versions(tmp_path, "other") == []


def test_the_sampler_records_a_service_that_does_not_answer_as_down(tmp_path: Path) -> None:
    from conftest import free_port, write_files

    from scanflow.api.errors import NotFound
    from scanflow.api.workspace import Workspace
    from scanflow.server.sampler import ServiceSampler

    spec = f"""
name: shop
team: vision
services:
- name: digits
  model: models:/digits@champion
  port: {free_port()}
"""
    write_files(tmp_path / "shop", {"scanflow.yaml": spec})
    workspace = Workspace([tmp_path / "shop"])
    writer = PredictionLogWriter(log_dir(tmp_path / "shop" / ".scanflow", "digits"))
    writer.append({"ts": 5.0, "model_version": "7"})
    writer.close()
    sampler = ServiceSampler(workspace, interval=60.0, keep=2)
    for _ in range(3):
        sampler.sample_once()
    handle = workspace.apps["shop"]
    history = sampler.history(handle, "digits")
    assert len(history.points) == 2  # only the newest `keep` samples are kept
    assert all(p.ready is False and p.requests_per_s is None for p in history.points)
    assert [(v.version, v.predictions) for v in history.versions] == [("7", 1)]
    with pytest.raises(NotFound, match="no service 'nope'"):
        sampler.history(handle, "nope")
    workspace.close()
