"""Services that cannot serve yet, models that raise, and a server killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import time

import httpx
import orjson
import pytest
from conftest import start_service, wait_for

from scanflow.serving.errors import Unreachable
from scanflow.serving.predictions import OPEN_SUFFIX, PredictionLog
from scanflow.serving.process import ServiceProcess
from scanflow.spec import PredictionLogging, Service

from .conftest import oip_body

pytestmark = pytest.mark.slow


def _start(service: Service, registry, tmp_path, **kw) -> ServiceProcess:
    return start_service(service, tmp_path, registry.tracking_uri, **kw)


def test_a_model_uri_that_does_not_exist_leaves_the_service_up_but_not_ready(registry, tmp_path):
    proc = _start(
        Service("ghost", model="models:/no-such-model@champion"), registry, tmp_path, auth=False
    )
    try:
        proc.wait_ready(120, model=False)
        with httpx.Client(base_url=proc.url) as http:
            assert http.get("/v2/health/live").status_code == 200
            ready = http.get("/v2/health/ready")
            assert ready.status_code == 503 and "no-such-model" in ready.json()["reason"]
            r = http.post("/v2/models/ghost/infer", json=oip_body(registry.X[:1]))
            assert r.status_code == 503 and "model not ready" in r.json()["error"]
            # served with auth off: acting admin calls are open and no token is made
            refreshed = http.post("/admin/refresh", json={})
            assert refreshed.status_code == 200 and refreshed.json()["ready"] is False
        assert proc.proc.poll() is None and proc.token is None
        assert not (tmp_path / "token").exists()
        log = (tmp_path / "server.log").read_text()
        assert "service ghost is NOT READY" in log and "no-such-model" in log
        assert "admin calls are OPEN (auth off)" in log
    finally:
        proc.stop()


def test_a_model_that_raises_answers_500_and_the_server_stays_up(registry, tmp_path):
    proc = _start(Service("flaky", model=registry.flaky_uri), registry, tmp_path)
    try:
        proc.wait_ready(120)
        with httpx.Client(base_url=proc.url) as http:
            bad = http.post("/v2/models/flaky/infer", json=oip_body(-registry.X[:1] - 1))
            assert bad.status_code == 500
            assert "negative pixel values are not allowed" in bad.json()["error"]
            version = proc.client.status()["model_version"]
            assert version and bad.headers["x-model-version"] == version
            assert bad.json()["model_version"] == version  # the version that raised
            inv = http.post("/invocations", json={"inputs": (-registry.X[:1] - 1).tolist()})
            assert inv.status_code == 500 and inv.json()["error_code"] == "INTERNAL_ERROR"
            assert inv.headers["x-model-version"] == version
            good = http.post("/v2/models/flaky/infer", json=oip_body(registry.X[:2]))
            assert good.status_code == 200 and good.headers["x-model-version"] == version
            assert good.json()["outputs"][0]["data"] == registry.X[:2].sum(axis=1).tolist()
    finally:
        proc.stop()


def test_sigkill_loses_at_most_the_flush_window_and_no_sealed_segment(registry, tmp_path):
    window = 0.1
    service = Service(
        "digits",
        model=str(registry.model_dir),
        workers=2,
        log_predictions=PredictionLogging(flush_interval_ms=window * 1000, segment_mb=0.02),
    )
    proc = _start(service, registry, tmp_path)
    answered: list[tuple[str, float]] = []
    try:
        proc.wait_ready(120)
        wait_for(lambda: proc.client.status()["workers_ready"] == 2, 60, "two workers")
        pids = proc.client.status()["worker_pids"]
        with httpx.Client(base_url=proc.url) as http:
            started, i = time.monotonic(), 0
            while i < 600 or time.monotonic() - started < 2.5:  # traffic right up to the kill
                i += 1
                rid = f"k-{i}"
                r = http.post(
                    "/v2/models/digits/infer",
                    json=oip_body(registry.X[i % 100 :][:1]),
                    headers={"x-request-id": rid},
                )
                assert r.status_code == 200
                answered.append((rid, time.monotonic()))
        killed_at = time.monotonic()
        for pid in [proc.pid, *pids]:
            os.kill(pid, signal.SIGKILL)
        proc.proc.wait(10)
        for pid in pids:
            wait_for(lambda p=pid: not os.path.exists(f"/proc/{p}"), 10, f"worker {pid} gone")
    finally:
        proc.stop()
    log = PredictionLog.for_service(tmp_path, "digits")
    segments = log.segments()
    sealed = [p for p in segments if not p.name.endswith(OPEN_SUFFIX)]
    assert len(sealed) >= 2  # 600 records rotate 20 KB segments several times
    for path in sealed:  # sealed segments are whole: every line is a complete record
        for line in path.read_bytes().splitlines():
            orjson.loads(line)
    logged = {r["id"] for r in log.read()}
    # everything answered more than the window (plus 1 s of scheduling slack) before the
    # kill is on disk
    old = [rid for rid, t in answered if t < killed_at - window - 1.0]
    assert old and [rid for rid in old if rid not in logged] == []
    assert len(logged) <= len(answered)


def test_the_backup_model_serves_while_the_model_cannot_be_loaded(registry, tmp_path):
    service = Service(
        "digits", model="models:/no-such-model@champion", backup_model=str(registry.model_dir)
    )
    proc = _start(service, registry, tmp_path)
    try:
        proc.wait_ready(120)
        status = proc.client.status()
        assert status["serving_backup"] and status["model_version"].startswith("backup-")
        assert "no-such-model" in status["last_error"]
        r = httpx.post(f"{proc.url}/v2/models/digits/infer", json=oip_body(registry.X[:2]))
        assert r.status_code == 200 and r.headers["x-model-version"].startswith("backup-")
        assert r.json()["outputs"][0]["data"] == registry.y[:2].tolist()
    finally:
        proc.stop()


def test_status_answers_while_the_backup_model_resolves_slowly(registry, tmp_path):
    """A registry that never answers: the backup's resolution hangs, the service does not."""
    import socket

    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never answers
    try:
        service = Service(
            "digits", model=str(tmp_path / "no-such-model"), backup_model="models:/digits/1"
        )
        tracking = f"http://127.0.0.1:{silent.getsockname()[1]}"
        proc = start_service(service, tmp_path, tracking, auth=False)
        try:
            proc.wait_ready(120, model=False)
            for _ in range(3):  # the loop keeps answering while the resolver waits
                status = proc.client.status()
                assert status["ready"] is False and "no-such-model" in status["last_error"]
                staging = status["staging"]
                assert staging["backup"] and staging["phase"] == "downloading"
                assert staging["version"] is None
            assert proc.client.scale(2, wait=True)["workers_ready"] == 2
        finally:
            proc.stop()
    finally:
        silent.close()


def test_a_worker_killed_under_load_is_replaced_and_only_its_connections_fail(registry, tmp_path):
    from .conftest import Load

    service = Service("digits", model=str(registry.model_dir), workers=2)
    proc = _start(service, registry, tmp_path)
    try:
        proc.wait_ready(120)
        wait_for(lambda: proc.client.status()["workers_ready"] == 2, 120, "two workers")
        victim, survivor = proc.client.status()["worker_pids"]
        clients = 6
        url = f"{proc.url}/v2/models/digits/infer"
        with Load(url, oip_body(registry.X[:1]), clients=clients, max_seconds=300) as load:
            wait_for(lambda: load.count() > 200, 60, "load on two workers")
            os.kill(victim, signal.SIGKILL)
            killed_at = time.monotonic()

            def replaced_pool() -> dict | None:
                try:  # this client's own connection may have been the victim's: reset once
                    status = proc.client.status()
                except Unreachable:
                    return None
                ready = status["workers_ready"] == 2 and victim not in status["worker_pids"]
                return status if ready else None

            replaced = wait_for(replaced_pool, 180, "a replacement worker")
            ready_at = time.monotonic()
            after = load.count()
            wait_for(lambda: load.count() > after + 200, 60, "load on the new pool")
        assert survivor in replaced["worker_pids"]
        records = load.result.records
        # the survivor kept answering while the replacement started
        assert [r for r in records if killed_at < r[0] and r[1] < ready_at and r[2] == 200]
        # only connections the killed worker held failed, each once, as a reset (no HTTP error)
        failures = load.result.failures
        assert len(failures) <= clients and {r[2] for r in failures} <= {-1}
        log = (tmp_path / "server.log").read_text()
        assert f"worker {victim} exited unexpectedly" in log
    finally:
        proc.stop()
