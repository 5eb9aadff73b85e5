"""The service view against a live service: ``scanflow up`` starts a real model server and
the control server; real requests go to the service, and the server's service API and page
show its request rate, p95 latency, workers and which model version served when."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import free_port, wait_for

from .conftest import Apps, make_apps
from .test_api_cli_remote import scanflow
from .test_browser import IMAGES, browser, signed_in  # noqa: F401 - the browser fixture

SERVICE = """
services:
- name: digits
  model: models:/digits@champion
  port: {port}
  workers: 1
  min_workers: 1
  max_workers: 2
  poll_interval: 0.5
"""


def register_digits(base_dir: Path) -> np.ndarray:
    """Model ``digits`` v1 and v2 (the same fitted model twice) in the application's
    embedded MLflow store, champion -> v1; returns rows to score."""
    import mlflow.sklearn
    from mlflow import MlflowClient
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from scanflow.tracking.config import embedded_artifact_root, embedded_tracking_uri

    X, y = load_digits(return_X_y=True)
    with threadpool_limits(1):
        model = LogisticRegression(max_iter=300, random_state=0).fit(X[:600], y[:600])
    saved = base_dir / "saved-model"
    mlflow.sklearn.save_model(model, str(saved))
    uri = embedded_tracking_uri(base_dir)
    client = MlflowClient(uri, registry_uri=uri)
    artifacts = embedded_artifact_root(base_dir)
    experiment = client.create_experiment("serve", artifact_location=artifacts)
    run = client.create_run(experiment).info.run_id
    client.log_artifacts(run, str(saved), "model")
    client.set_terminated(run)
    client.create_registered_model("digits")
    for _ in range(2):
        client.create_model_version("digits", f"runs:/{run}/model", run)
    client.set_registered_model_alias("digits", "champion", "1")
    return X[600:640]


def infer(http: httpx.Client, rows: np.ndarray) -> None:
    body = {
        "inputs": [
            {"name": "x", "shape": list(rows.shape), "datatype": "FP64",
             "data": rows.ravel().tolist()}
        ]
    }  # fmt: skip
    answer = http.post("/v2/models/digits/infer", json=body)
    assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Apps, str, str, np.ndarray]]:
    """``scanflow up`` of ``vision`` with service ``digits``: (apps, control server URL,
    service URL, rows), the control server sampling every 0.5 s."""
    apps = make_apps(tmp_path_factory.mktemp("live"))
    rows = register_digits(apps.vision)
    port = free_port()
    spec = apps.vision / "scanflow.yaml"
    spec.write_text(spec.read_text() + SERVICE.format(port=port))
    out = apps.root / "up.out"
    env = {**os.environ, "SCANFLOW_SAMPLE_SECONDS": "0.5"}
    for key in ("MLFLOW_TRACKING_URI", "SCANFLOW_TRACKING_URI", "SCANFLOW_SERVER"):
        env.pop(key, None)
    with out.open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "scanflow.cli.main", "--app", str(apps.vision), "up"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:

        def started() -> tuple[str, str] | None:
            if up.poll() is not None:
                raise AssertionError(f"scanflow up exited: {out.read_text()}")
            text = out.read_text()
            server = re.search(r"control server (http://\S+)", text)
            service = re.search(r"digits (http://\S+)\s+model", text)
            return (server[1], service[1]) if server and service else None

        server_url, service_url = wait_for(started, timeout=240, what="scanflow up")
        yield apps, server_url, service_url, rows
    finally:
        up.send_signal(signal.SIGINT)  # stops the service and the control server
        try:
            up.wait(90)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
        apps.tokens.store.close()
    assert up.returncode == 0, out.read_text()


def test_the_service_view_shows_a_live_service(live, browser, capsys) -> None:  # noqa: F811
    apps, server_url, service_url, rows = live
    read = httpx.Client(
        base_url=server_url, headers={"authorization": f"Bearer {apps.token('vision', 'read')}"},
        timeout=60,
    )  # fmt: skip
    admin = {"authorization": f"Bearer {apps.token('vision', 'admin')}"}
    history_url = "/api/apps/vision/services/digits/history"

    def busy_points(version: str, workers: int) -> list[dict] | None:
        """Send requests until samples show traffic served by ``version`` on ``workers``."""
        for _ in range(5):
            infer(service, rows[:4])
        points = read.get(history_url).json()["points"]
        found = [
            p for p in points
            if (p["requests_per_s"] or 0) > 0 and p["model_version"] == version
            and p["workers"] == workers
        ]  # fmt: skip
        return found or None

    with httpx.Client(base_url=service_url, timeout=60) as service:
        view = read.get("/api/apps/vision/services/digits").json()
        assert (view["ready"], view["workers"], view["model_version"]) == (True, 1, "1")
        first = wait_for(lambda: busy_points("1", 1), timeout=120, what="traffic on v1")
        # promote v2, then grow to two workers, through the server
        moved = httpx.post(
            f"{server_url}/api/apps/vision/models/digits/aliases/champion",
            json={"version": "2"}, headers=admin, timeout=60,
        )  # fmt: skip
        assert moved.status_code == 200, moved.text
        wait_for(
            lambda: read.get("/api/apps/vision/services/digits").json()["model_version"] == "2",
            timeout=120,
            what="the service to hot-swap to v2",
        )
        scale = ["--app", str(apps.vision), "scale", "digits", "2", "--server", server_url]
        code, _, err = scanflow(capsys, *scale, "--token", apps.token("vision", "read"))
        assert code == 1 and "is read-only; actions need an admin token" in err, err
        code, out, err = scanflow(capsys, *scale, "--token", apps.token("vision", "admin"))
        assert code == 0 and "service digits now has 2 workers" in out, err
        second = wait_for(lambda: busy_points("2", 2), timeout=120, what="traffic on v2")
    for point in (first[-1], second[-1]):
        assert point["ready"] and point["errors_per_s"] == 0
        assert point["p95_ms"] is not None and point["p95_ms"] > 0

    def logged_both() -> dict | None:
        """The history once the prediction log (flushed every 200 ms) holds v2's answers."""
        found = read.get(history_url).json()
        return found if len(found["versions"]) == 2 else None

    history = wait_for(logged_both, timeout=60, what="v2's predictions in the log")
    assert history["interval"] == 0.5
    spans = [(v["version"], v["predictions"]) for v in history["versions"]]
    assert [v for v, _ in spans] == ["1", "2"] and all(n > 0 for _, n in spans), spans
    assert history["versions"][0]["last_at"] <= history["versions"][1]["first_at"]

    page = signed_in(browser, server=_At(server_url), token=apps.token("vision", "read"))
    page.goto("/apps/vision/services/digits")
    assert page.text_content("#service-state") == "ready"
    assert "serving v2" in page.text_content("main") and "2 workers" in page.text_content("main")
    assert page.locator("#versions-served tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.version)"
    ) == ["2", "1"]
    page.locator("#service-charts canvas").first.wait_for()
    shown = page.evaluate("JSON.parse(document.getElementById('history-data').textContent)")
    assert any((p["requests_per_s"] or 0) > 0 and p["p95_ms"] for p in shown["points"])
    page.screenshot(path=str(IMAGES / "dashboard-service.png"), full_page=True)
    read.close()


class _At:
    """What :func:`signed_in` needs of a server: its URL."""

    def __init__(self, url: str) -> None:
        self.url = url
