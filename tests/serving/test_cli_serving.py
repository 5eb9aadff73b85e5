"""The serving commands as people use them: ``scanflow up`` on an application folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest
from conftest import free_port, wait_for

from .conftest import oip_body

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
        proc = subprocess.Popen([sys.executable, "-m", "scanflow.cli.main", "--app",
                                 str(tmp_path), "up"], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "MLFLOW_TRACKING_URI": registry.tracking_uri})
    try:
        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 120, "the declared service")
        r = httpx.post(f"http://127.0.0.1:{port}/v2/models/digits/infer",
                       json=oip_body(registry.X[:3]))
        assert r.json()["outputs"][0]["data"] == registry.y[:3].tolist()
        assert (tmp_path / ".scanflow" / "serving" / "digits" / "server.log").is_file()
        assert not (tmp_path / ".scanflow" / "predictions" / "digits").exists()
        wait_for(lambda: b"digits http://127.0.0.1:" in out_file.read_bytes(), 60,
                 "up to report the service")
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
