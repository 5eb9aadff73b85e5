"""The control server as a real process: authentication, teams, runs, logs, events,
CSRF, the MLflow registry and unavailable parts."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest
from conftest import wait_for

from .conftest import Apps, Server, make_model, start_server, wait_run


def start(client: httpx.Client, app: str = "vision", **parameters) -> str:
    answer = client.post(f"/api/apps/{app}/workflows/pipe/runs", json={"parameters": parameters})
    assert answer.status_code == 200, answer.text
    return answer.json()["run_id"]


def test_only_health_is_open_and_bad_tokens_are_refused(apps: Apps, server: Server) -> None:
    assert httpx.get(f"{server.url}/api/health").json()["status"] == "ok"
    expired = apps.tokens.create("vision", "read", expires_in=3600)
    revoked = apps.tokens.create("vision", "read")
    apps.tokens.revoke(revoked.id)
    from scanflow.store.token_models import TokenRecord

    with apps.tokens.store.session() as s:
        s.get(TokenRecord, expired.id).expires_at = 1.0
    cases = {
        None: "no token",
        "wrong": "malformed token",
        apps.token()[:-3] + "abc": "wrong token",
        expired.token: "has expired",
        revoked.token: "was revoked",
    }
    for token, reason in cases.items():
        with server.client(token) as client:
            for path in ("/api/apps", "/api/apps/vision/runs", "/api/apps/vision/runs/x/logs"):
                answer = client.get(path)
                assert answer.status_code == 401, (token, path)
                assert reason in answer.json()["error"]
    with server.client() as client:
        assert client.get("/api/apps", headers={"authorization": "Basic eDp5"}).status_code == 401


def test_a_team_sees_only_its_applications(apps: Apps, server: Server) -> None:
    audio = apps.token("audio", "admin")
    with server.client(audio) as client:
        run_id = start(client, "audio")
        wait_run(client, "audio", run_id, {"succeeded"})
        assert [a["name"] for a in client.get("/api/apps").json()] == ["audio"]
    with server.client(apps.token("vision", "admin")) as client:
        assert [a["name"] for a in client.get("/api/apps").json()] == ["radio", "vision"]
        for path in (
            "/api/apps/audio",
            "/api/apps/audio/runs",
            f"/api/apps/audio/runs/{run_id}",
            f"/api/apps/audio/runs/{run_id}/logs",
            "/api/apps/nothing/runs",
        ):
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert answer.json() == {"error": f"no application '{path.split('/')[3]}'"}
        # a run id of another team under one's own application is not found either
        assert client.get(f"/api/apps/vision/runs/{run_id}").status_code == 404
        assert client.post(f"/api/apps/audio/runs/{run_id}/retry").status_code == 404


def test_read_tokens_cannot_act(apps: Apps, server: Server) -> None:
    with server.client(apps.token("vision", "read")) as client:
        answer = client.post("/api/apps/vision/workflows/pipe/runs", json={})
        assert answer.status_code == 403
        assert "read-only" in answer.json()["error"]
        assert client.get("/api/apps/vision/runs").json()["total"] == 0


def test_run_logs_artifacts_and_markup_kept_as_data(apps: Apps, server: Server) -> None:
    note = "<script>alert(1)</script>"
    with server.client(apps.token()) as client:
        run_id = start(client, note=note, lr=0.5)
        view = wait_run(client, "vision", run_id, {"succeeded", "failed"})
        assert view["status"] == "succeeded", view
        assert [s["status"] for s in view["steps"]] == ["succeeded"] * 3
        assert view["parameters"]["note"] == note
        logs = client.get(f"/api/apps/vision/runs/{run_id}/logs", params={"step": "prepare"})
        assert logs.headers["content-type"].startswith("text/plain")
        assert f"note: {note}" in logs.text
        base = f"/api/apps/vision/runs/{run_id}/steps/prepare/artifacts"
        assert client.get(base).json() == ["dataset"]
        assert client.get(f"{base}/dataset").text == note
        for bad in ("%2e%2e/%2e%2e/scanflow.yaml", "..%2Fsteps.py", "%2Fetc%2Fpasswd"):
            answer = client.get(f"{base}/{bad}")
            assert answer.status_code in (400, 404), bad
            if answer.status_code == 400:
                assert "no '..'" in answer.json()["error"]
        assert client.get(f"{base}/%2e%2e/%2e%2e/scanflow.yaml").status_code == 400
        found = client.get("/api/apps/vision/runs", params={"param": "lr>=0.4"}).json()
        assert [r["id"] for r in found["items"]] == [run_id]
        assert client.get("/api/apps/vision/runs", params={"param": "lr>0.6"}).json()["total"] == 0
        answer = client.get("/api/apps/vision/runs", params={"sort": "spec"})
        assert answer.status_code == 400 and "cannot sort by 'spec'" in answer.json()["error"]


def test_events_follow_a_run_and_retry_starts_from_the_failed_step(
    apps: Apps, server: Server
) -> None:
    gate, fail = apps.root / "gate", apps.root / "fail"
    fail.touch()
    with server.client(apps.token()) as client:
        run_id = start(client, gate=str(gate), fail=str(fail))
        seen: list[dict] = []
        with client.stream("GET", f"/api/apps/vision/runs/{run_id}/events") as stream:
            event = None
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event == "run":
                    seen.append(json.loads(line[5:]))
                    steps = {s["name"]: s["status"] for s in seen[-1]["steps"]}
                    if steps["train"] == "running":
                        gate.touch()  # let train go on once the stream showed it running
                elif line.startswith("data:") and event == "end":
                    break
        states = [tuple(s["status"] for s in v["steps"]) for v in seen]
        assert ("succeeded", "running", "pending") in states
        assert seen[-1]["status"] == "failed"
        assert states[-1] == ("succeeded", "failed", "skipped") or states[-1][1] == "failed"

        fail.unlink()
        answer = client.post(f"/api/apps/vision/runs/{run_id}/retry")
        assert answer.status_code == 200, answer.text
        # the answer comes once the run is recorded as started again, never its old end
        now = client.get(f"/api/apps/vision/runs/{run_id}").json()
        assert (
            now["status"] in ("pending", "running") or now["finished_at"] != seen[-1]["finished_at"]
        ), now
        view = wait_run(client, "vision", run_id, {"succeeded", "failed"})
        assert view["status"] == "succeeded"
        attempts = {s["name"]: len(s["attempts"]) for s in view["steps"]}
        assert attempts == {"prepare": 1, "train": 2, "report": 1}
        again = client.post(f"/api/apps/vision/runs/{run_id}/cancel")
        assert again.status_code == 409 and "already ended" in again.json()["error"]


def test_a_10_mb_log_is_streamed_whole(apps: Apps, server: Server) -> None:
    with server.client(apps.token()) as client:
        run_id = start(client, loud=10_000_000)
        wait_run(client, "vision", run_id, {"succeeded"})
        url = f"/api/apps/vision/runs/{run_id}/logs"
        with client.stream("GET", url, params={"step": "prepare"}) as answer:
            assert answer.headers.get("transfer-encoding") == "chunked"
            assert "content-length" not in answer.headers
            size, chunks, tail = 0, 0, b""
            for chunk in answer.iter_raw():
                size, chunks, tail = size + len(chunk), chunks + 1, (tail + chunk)[-200:]
    header = len("==> prepare attempt 1 <==\nnote: hello\n")
    assert size == header + 10_000_000, size
    assert chunks > 10
    assert tail.endswith(("000099999 <b>é</b> " + "x" * 79 + "\n").encode())


def test_browser_sessions_need_the_csrf_token(apps: Apps, server: Server) -> None:
    with server.client() as browser:
        signed = browser.post("/api/session", json={"token": apps.token()})
        assert signed.status_code == 200
        csrf = signed.json()["csrf_token"]
        assert browser.cookies["scanflow_csrf"] == csrf
        assert "samesite=strict" in signed.headers["set-cookie"].lower()
        assert browser.get("/api/apps").status_code == 200  # reading needs no CSRF token
        refused = browser.post("/api/apps/vision/workflows/pipe/runs", json={})
        assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
        wrong = browser.post(
            "/api/apps/vision/workflows/pipe/runs", json={}, headers={"x-csrf-token": "guess"}
        )
        assert wrong.status_code == 403
        done = browser.post(
            "/api/apps/vision/workflows/pipe/runs", json={}, headers={"x-csrf-token": csrf}
        )
        assert done.status_code == 200, done.text
        wait_run(browser, "vision", done.json()["run_id"], {"succeeded"})


def test_models_promote_and_roll_back(apps: Apps, server: Server) -> None:
    from scanflow.tracking.config import embedded_tracking_uri

    make_model(embedded_tracking_uri(apps.vision))
    with server.client(apps.token()) as client:
        [listed] = client.get("/api/apps/vision/models").json()
        assert listed["aliases"] == {"champion": "2"}
        model = client.get("/api/apps/vision/models/digits").json()
        assert [(v["version"], v["metrics"]["accuracy"]) for v in model["versions"]] == [
            ("3", 0.9),
            ("2", 0.86),
            ("1", 0.81),
        ]
        promote = client.post(
            "/api/apps/vision/models/digits/aliases/champion", json={"version": "3"}
        )
        assert promote.json()["message"] == "digits@champion -> version 3 (was 2)"
        back = client.post("/api/apps/vision/models/digits/aliases/champion", json={"version": "2"})
        assert back.status_code == 200
        assert client.get("/api/apps/vision/models/digits").json()["aliases"] == {"champion": "2"}
        missing = client.post(
            "/api/apps/vision/models/digits/aliases/champion", json={"version": "9"}
        )
        assert missing.status_code == 404
    with server.client(apps.token("vision", "read")) as client:
        refused = client.post(
            "/api/apps/vision/models/digits/aliases/champion", json={"version": "1"}
        )
        assert refused.status_code == 403
    with server.client(apps.token("audio", "admin")) as client:
        assert client.get("/api/apps/vision/models/digits").status_code == 404


def test_tracking_and_store_unavailable_answer_503_and_recover(apps: Apps) -> None:
    db = apps.audio / ".scanflow" / "scanflow.db"
    db.mkdir(parents=True)  # the store cannot be opened while a folder is in its place
    server = start_server(apps)
    try:
        with server.client(apps.token("vision")) as client:
            answer = client.get("/api/apps/radio/models")
            assert answer.status_code == 503
            assert "tracking server of 'radio'" in answer.json()["error"]
        with server.client(apps.token("audio")) as client:
            answer = client.get("/api/apps/audio/runs")
            assert answer.status_code == 503
            assert "cannot open the state store" in answer.json()["error"]
            shutil.rmtree(db)
            wait_for(
                lambda: client.get("/api/apps/audio/runs").status_code == 200,
                timeout=60,
                what="the store to be back",
            )
    finally:
        server.proc.terminate()
        server.proc.wait(timeout=30)


@pytest.mark.parametrize("path", ["/api/openapi.json"])
def test_the_openapi_document_describes_every_endpoint(server: Server, path: str) -> None:
    document = httpx.get(server.url + path).json()
    for route, methods in document["paths"].items():
        for method, operation in methods.items():
            ok = operation["responses"]["200"]
            assert ok.get("content"), (method, route)
            if route not in ("/api/health",) and not route.startswith("/api/session"):
                assert "401" in operation["responses"] and "404" in operation["responses"]
