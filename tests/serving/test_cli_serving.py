"""The serving commands as people use them: ``scanflow up`` on an application folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest
from conftest import free_port, wait_for

from .conftest import oip_body, scrape

pytestmark = pytest.mark.slow


def test_up_serves_the_declared_services_until_interrupted(registry, tmp_path):
    port = free_port()
    (tmp_path / "scanflow.yaml").write_text(
        "name: digits-app\n"
        "services:\n"
        "  - name: digits\n"
        f"    model: {registry.model_dir}\n"
        f"    port: {port}\n"
        "    log_predictions: {enabled: false}\n"
    )
    out_file = tmp_path / "up.out"
    with out_file.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scanflow.cli.main", "--app", str(tmp_path), "up"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MLFLOW_TRACKING_URI": registry.tracking_uri},
        )
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 120, "the declared service")
        r = httpx.post(
            f"http://127.0.0.1:{port}/v2/models/digits/infer", json=oip_body(registry.X[:3])
        )
        assert r.json()["outputs"][0]["data"] == registry.y[:3].tolist()
        assert (tmp_path / ".scanflow" / "serving" / "digits" / "server.log").is_file()
        assert not (tmp_path / ".scanflow" / "predictions" / "digits").exists()
        wait_for(
            lambda: b"digits http://127.0.0.1:" in out_file.read_bytes(),
            60,
            "up to report the service",
        )
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    assert b"stopping services" in out_file.read_bytes()
    assert proc.returncode == 0


def test_serve_refuses_a_malformed_uri_and_a_busy_port(registry, capsys):
    import socket

    from scanflow.cli.main import main

    assert main(["serve", "ftp://models/x"]) == 1
    assert "unsupported scheme; use models:/, runs:/ or a local folder" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", str(registry.model_dir), "--port", str(port)]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_serve_a_run_model_then_scale_and_sample_its_log(registry, tmp_path, capsys, monkeypatch):
    from scanflow.cli.main import main
    from scanflow.serving.predictions import PredictionLog

    run_id = registry.client().get_model_version("digits", "1").run_id
    app = tmp_path / "app"
    port, state = free_port(), app / ".scanflow"
    out_file = tmp_path / "serve.out"
    with out_file.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scanflow.cli.main",
                "serve",
                f"runs:/{run_id}/model",
                "--name",
                "digits",
                "--port",
                str(port),
                "--workers",
                "1",
                "--max-workers",
                "2",
                "--sample-rate",
                "0.5",
                "--tracking-uri",
                registry.tracking_uri,
                "--state-dir",
                str(state),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"{url}/v2/health/ready").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 120, "scanflow serve to be ready")
        with httpx.Client(base_url=url, timeout=30) as http:
            r = http.post("/v2/models/digits/infer", json=oip_body(registry.X[:3]))
            assert r.json()["outputs"][0]["data"] == registry.y[:3].tolist()
            assert r.headers["x-model-version"] == f"run-{run_id[:12]}"
            token = (state / "token").read_text().strip()  # made by scanflow serve
            assert (state / "token").stat().st_mode & 0o777 == 0o600
            _scale_needs_the_token(main, capsys, monkeypatch, url, app, tmp_path, token)
            assert main(["--app", str(app), "scale", url, "2"]) == 0
            out, err = capsys.readouterr()
            assert "digits: 2 worker(s), 2 ready" in out and token not in out + err
            for i in range(400):
                assert (
                    http.post(
                        "/invocations", json={"inputs": registry.X[i : i + 1].tolist()}
                    ).status_code
                    == 200
                )
            log = PredictionLog.for_service(state, "digits")
            logged = wait_for(
                lambda: (
                    (n := scrape(http).get("scanflow_predictions_logged_total", 0))
                    and n == log.count()
                    and n
                ),
                30,
                "the logged counter to match the log",
            )
    finally:
        proc.send_signal(signal.SIGTERM)  # drains: what was queued is written
        proc.wait(60)
    assert proc.returncode == 0, out_file.read_text()
    assert token not in out_file.read_text()
    # about half of the 401 requests are logged (binomial: 140..260 is +-6 sd)
    assert logged <= log.count() and 140 <= log.count() <= 260


def _scale_needs_the_token(main, capsys, monkeypatch, url, app, elsewhere, token) -> None:
    """scanflow scale refused with a wrong or missing token: a clear error, nothing changed."""
    import httpx

    from scanflow.auth import TOKEN_ENV

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    cases = [
        (
            ["--app", str(app), "scale", url, "2", "--token", "wrong"],
            "the token given with --token is wrong",
        ),
        (
            ["--app", str(elsewhere), "scale", url, "2"],
            f"no token was sent (no --token, ${TOKEN_ENV} unset, no file "
            f"{elsewhere / '.scanflow' / 'token'})",
        ),
    ]
    for args, reason in cases:
        assert main(args) == 1
        out, err = capsys.readouterr()
        assert f"the service at {url} refused to scale: {reason}" in err
        assert "pass the application's token with --token, set $SCANFLOW_TOKEN" in err
        assert "Traceback" not in err and token not in out + err
    monkeypatch.setenv(TOKEN_ENV, "also-wrong")  # the variable wins over --app's file
    assert main(["--app", str(app), "scale", url, "2"]) == 1
    assert f"the token in ${TOKEN_ENV} is wrong" in capsys.readouterr().err
    capsys.readouterr()
    assert httpx.get(f"{url}/admin/status").json()["workers_target"] == 1  # nothing changed
    monkeypatch.setenv(TOKEN_ENV, token)
    assert main(["--app", str(elsewhere), "scale", url, "2"]) == 0  # right token, any folder
    monkeypatch.delenv(TOKEN_ENV)
    assert httpx.get(f"{url}/admin/status").json()["workers_target"] == 2


def test_cli_errors_without_tracebacks(tmp_path, capsys):
    from scanflow.cli.main import main

    url = f"http://127.0.0.1:{free_port()}"
    assert main(["scale", url, "2"]) == 1
    err = capsys.readouterr().err
    assert f"cannot reach the service at {url}" in err and "Traceback" not in err
    missing = tmp_path / "nowhere"
    assert main(["predictions", "tail", "--dir", str(missing)]) == 1
    assert f"no prediction log folder at {missing}" in capsys.readouterr().err
    assert main(["--app", str(tmp_path), "predictions", "tail", "nosuch"]) == 1
    err = capsys.readouterr().err  # looked for under --app, not the current folder
    assert f"no prediction log for service 'nosuch' at {tmp_path / '.scanflow'}" in err
    (tmp_path / "log").mkdir()
    assert main(["predictions", "export", "--dir", str(tmp_path / "log"), "--format", "xml"]) == 1
    assert "--format 'xml' is not one of jsonl, csv, parquet" in capsys.readouterr().err
    assert main(["predictions", "export", "--dir", str(tmp_path / "log"), "--since", "May"]) == 1
    assert "'May' is neither epoch seconds nor an ISO time" in capsys.readouterr().err
