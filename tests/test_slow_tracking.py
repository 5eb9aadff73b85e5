"""Steps never wait for tracking: workflows against a tracking server that holds its answers.

A real MLflow server sits behind a small HTTP proxy that holds every MLflow API request
until the test releases it (``/health`` passes, so the server counts as up). While it
holds, steps still start, run and finish, and a cached run ends; once released, MLflow
gets everything.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import free_port, wait_for, write_files

from scanflow.engines.local import LocalEngine
from scanflow.engines.local.ref import LocalProcessRef
from scanflow.spec import load_project

pytestmark = pytest.mark.slow  # starts an MLflow server

SPEC = """
name: slowtrack
workflows:
- name: flow
  executors:
  - name: quiet
    function: steps:quiet
    outputs: [out]
  - name: after
    function: steps:quiet
    inputs: {seen: quiet.out}
    outputs: [out]
  - name: logger
    function: steps:logger
    outputs: [out]
"""
STEPS = """
from pathlib import Path

def quiet(out, seen=""):
    Path(out).write_text("done")

def logger(out):
    from scanflow import tracking

    Path(out).write_text("logged")
    tracking.log_metric("score", 0.5)
"""


class GatedProxy:
    """Forwards HTTP to ``backend``; MLflow API requests wait until :meth:`release`."""

    def __init__(self, backend: str) -> None:
        self.backend = backend.removeprefix("http://")
        self.gate = threading.Event()
        self.held = 0  # requests waiting at the gate right now
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith(("/api/", "/ajax-api/")):
                    proxy._wait_at_gate()
                conn = http.client.HTTPConnection(proxy.backend, timeout=300)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request(self.command, self.path, body or None, headers)
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.uri = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _wait_at_gate(self) -> None:
        with self._lock:
            self.held += 1
        try:
            self.gate.wait(600)
        finally:
            with self._lock:
                self.held -= 1

    def hold(self) -> None:
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory) -> str:
    """A real MLflow server (SQLite, local artifacts) on a free port; stopped by PID."""
    import urllib.request

    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    with open(root / "server.log", "wb") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scanflow.tracking.stack.mlflow_main",
                "--backend-store-uri",
                f"sqlite:///{root / 'mlflow.db'}",
                "--artifacts-destination",
                (root / "artifacts").as_uri(),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    def healthy() -> bool:
        if server.poll() is not None:
            raise AssertionError((root / "server.log").read_text()[-3000:])
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return True
        except OSError:
            return False

    try:
        wait_for(healthy, timeout=300, what="the MLflow server", interval=0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(60)


@pytest.fixture
def proxy(mlflow_server):
    gated = GatedProxy(mlflow_server)
    yield gated
    gated.close()


@pytest.fixture
def project(tmp_path):
    write_files(tmp_path / "app", {"scanflow.yaml": SPEC, "steps.py": STEPS})
    return load_project(tmp_path / "app")


def start_run(engine: LocalEngine) -> tuple[threading.Thread, dict]:
    """``engine.run('flow')`` in a thread; the record lands in the returned dict."""
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(run=engine.run("flow")), daemon=True)
    thread.start()
    return thread, result


def _pid(step) -> int | None:
    return LocalProcessRef.from_ref(step.engine_ref).pid


def steps_by_name(engine: LocalEngine) -> dict:
    runs = engine.store.list_runs()
    return {s.name: s for s in engine.store.steps(runs[0].id)} if runs else {}


def test_steps_run_and_finish_while_tracking_is_held(proxy, project, mlflow_server) -> None:
    from mlflow.tracking import MlflowClient

    engine = LocalEngine(project, tracking_uri=proxy.uri)
    thread, result = start_run(engine)

    def quiet_steps_done_and_logger_running():
        steps = steps_by_name(engine)
        done = (
            [steps[n].status for n in ("quiet", "after")] == ["succeeded"] * 2 if steps else False
        )
        return done and steps["logger"].status == "running" and _pid(steps["logger"])

    wait_for(quiet_steps_done_and_logger_running, what="the steps, with MLflow held")
    assert proxy.held >= 1 and not proxy.gate.is_set()  # MLflow has answered nothing yet
    import psutil

    assert psutil.pid_exists(_pid(steps_by_name(engine)["logger"]))  # it waits to log, alive
    proxy.release()
    thread.join(600)
    run = result["run"]
    assert run.status == "succeeded" and run.error is None, run.error

    client = MlflowClient(mlflow_server)
    parent = client.get_run(run.mlflow_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["scanflow.run_id"] == run.id
    assert "scanflow.yaml" in [a.path for a in client.list_artifacts(run.mlflow_run_id)]
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{run.mlflow_run_id}'"
    )
    by_step = {c.data.tags["scanflow.step"]: c for c in children}
    assert {n: c.info.status for n, c in by_step.items()} == dict.fromkeys(
        ("quiet", "after", "logger"), "FINISHED"
    )
    assert by_step["logger"].data.metrics == {"score": 0.5}
    recorded = {s.name: s.mlflow_run_id for s in engine.store.steps(run.id)}
    assert recorded == {n: c.info.run_id for n, c in by_step.items()}


def test_a_cached_run_ends_while_tracking_is_held(proxy, project, mlflow_server) -> None:
    from mlflow.tracking import MlflowClient

    proxy.release()
    engine = LocalEngine(project, tracking_uri=proxy.uri)
    first = engine.run("flow")
    assert first.status == "succeeded"
    proxy.hold()
    thread, result = start_run(engine)
    ended = wait_for(
        lambda: (r := engine.store.list_runs()[0]).id != first.id and r.status == "succeeded" and r,
        what="the cached run to end, with MLflow held",
    )
    assert {s.status for s in engine.store.steps(ended.id)} == {"cached"}
    assert thread.is_alive() and proxy.held >= 1  # only the MLflow records are left to send
    proxy.release()
    thread.join(600)
    run = result["run"]
    assert run.id == ended.id and run.error is None, run.error
    parent = MlflowClient(mlflow_server).get_run(run.mlflow_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["scanflow.run_id"] == run.id


def test_the_wait_for_tracking_at_the_end_is_bounded(proxy, project) -> None:
    engine = LocalEngine(project, tracking_uri=proxy.uri, tracking_flush_timeout=1)
    spec = project.base_dir / "scanflow.yaml"
    spec.write_text(
        spec.read_text().replace(
            "  - name: logger\n    function: steps:logger\n    outputs: [out]\n", ""
        )
    )
    engine = LocalEngine(
        load_project(project.base_dir), tracking_uri=proxy.uri, tracking_flush_timeout=1
    )
    run = engine.run("flow")  # MLflow stays held throughout
    assert run.status == "succeeded"
    assert "tracking incomplete" in run.error and "within 1s" in run.error
    assert proxy.held >= 1
