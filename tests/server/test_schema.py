"""Schemathesis against the server's published OpenAPI document, every phase: no answer
is a 5xx and every answer matches the document (status, content type, headers, body)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import Apps, make_model, start_server, stop_server, wait_run

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "unsupported_method",
        "allow_header_conformance",
    ]
)


def test_every_answer_matches_the_published_document(apps: Apps, tmp_path: Path) -> None:
    """Over vision and audio (radio's tracker is down on purpose: its 503s are tested
    elsewhere)."""
    from scanflow.tracking.config import embedded_tracking_uri

    make_model(embedded_tracking_uri(apps.vision))  # ids that exist: a model, runs
    token = apps.token()
    server = start_server(apps, include=[apps.audio])
    try:
        with server.client(token) as client:
            answer = client.post("/api/apps/vision/workflows/pipe/runs", json={})
            wait_run(client, "vision", answer.json()["run_id"], {"succeeded"})
        done = run_schemathesis(server.url, token, tmp_path)
    finally:
        stop_server(server)
    assert done.returncode == 0, done.stdout[-12000:] + done.stderr[-4000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["operations"]["tested"] == report["operations"]["total"] >= 25
    assert {k: v["status"] for k, v in report["phases"].items() if k != "examples"} == {
        "coverage": "success",
        "fuzzing": "success",
        "stateful": "success",
    }  # the document holds no examples: that phase has nothing to run
    assert report["test_cases"]["generated"] > 500 and not report["failures"]


def run_schemathesis(url: str, token: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Every phase of ``st run`` against the server at ``url``, reports in ``tmp_path``."""
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{url}/api/openapi.json"]
    command += ["--header", f"Authorization: Bearer {token}", "--checks", CHECKS]
    command += ["--phases", "examples,coverage,fuzzing,stateful", "--max-examples", "15"]
    command += ["--seed", "7", "--workers", "1", "--request-timeout", "60", "--no-color"]
    command += ["--report", "json", "--report-json-path", str(report)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
