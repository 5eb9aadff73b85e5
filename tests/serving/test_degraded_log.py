"""A prediction log that cannot keep up or cannot write: samples are dropped and counted in
``/metrics``, and every request is still answered."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from conftest import start_service, wait_for

from scanflow.serving.predictions import PredictionLog, log_dir
from scanflow.serving.process import ServiceProcess
from scanflow.spec import PredictionLogging, Service

from .conftest import oip_body, scrape, small_disk

pytestmark = pytest.mark.slow

DROPPED = 'scanflow_predictions_dropped_total{reason="%s"}'


def _serve(registry, state: Path, logging: PredictionLogging) -> ServiceProcess:
    service = Service("digits", model=str(registry.model_dir), log_predictions=logging)
    return start_service(service, state, registry.tracking_uri)


def _post_all(proc: ServiceProcess, registry, n: int) -> list[httpx.Response]:
    with httpx.Client(base_url=proc.url, timeout=30) as http:
        return [
            http.post("/v2/models/digits/infer", json=oip_body(registry.X[i : i + 1]))
            for i in range(n)
        ]


@pytest.fixture
def full_disk(tmp_path: Path):
    """A state folder whose prediction log lives on a small filesystem that is full."""
    with small_disk(log_dir(tmp_path, "digits"), fill=True):
        yield tmp_path


def test_a_full_disk_drops_and_counts_samples_and_answers_every_request(registry, full_disk):
    proc = _serve(registry, full_disk, PredictionLogging(flush_interval_ms=50))
    try:
        proc.wait_ready(120)
        answers = _post_all(proc, registry, 30)
        assert [r.status_code for r in answers] == [200] * 30
        assert [r.json()["outputs"][0]["data"][0] for r in answers] == registry.y[:30].tolist()
        with httpx.Client(base_url=proc.url) as http:
            metrics = wait_for(
                lambda: (m := scrape(http)).get(DROPPED % "write_error") == 30 and m,
                30,
                "30 records dropped for write errors",
            )
        assert metrics.get("scanflow_predictions_logged_total", 0.0) == 0.0
        assert "dropped" in (full_disk / "server.log").read_text()  # and the log says why
    finally:
        proc.stop()
    assert PredictionLog.for_service(full_disk, "digits").count() == 0


def test_a_sink_that_cannot_keep_up_drops_past_its_queue(registry, tmp_path):
    # The writer flushes only every 10 minutes: after 5 queued records, the rest are dropped
    # at once instead of waiting for room.
    logging = PredictionLogging(flush_interval_ms=600_000, queue_size=5)
    proc = _serve(registry, tmp_path, logging)
    try:
        proc.wait_ready(120)
        answers = _post_all(proc, registry, 20)
        assert [r.status_code for r in answers] == [200] * 20
        with httpx.Client(base_url=proc.url) as http:
            metrics = scrape(http)
        assert metrics[DROPPED % "queue_full"] == 15
        assert metrics['scanflow_requests_total{code="200",endpoint="infer"}'] == 20
    finally:
        proc.stop()  # a graceful stop writes what was queued
    assert PredictionLog.for_service(tmp_path, "digits").count() == 5
