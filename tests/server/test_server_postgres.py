"""The control server on a team's PostgreSQL store: a real ``scanflow server`` process given
``SCANFLOW_STORE_URI`` answers the API with tokens kept there, runs a workflow into it, and a
store that cannot be opened stops it with a clear message."""

from __future__ import annotations

from pathlib import Path

import httpx
from conftest import write_files

from scanflow.server.process import ServerProcess
from scanflow.store import Store
from scanflow.store.config import ENV_STORE_URI

from .apps import STEPS, pipeline
from .conftest import make_apps, start_server, stop_server, wait_run


def test_the_server_answers_from_a_postgresql_store(tmp_path: Path, postgres_server, monkeypatch):
    url = postgres_server.database()
    monkeypatch.setenv(ENV_STORE_URI, url)  # the server process inherits it
    apps = make_apps(tmp_path)  # tokens made in the shared store, as `server token create` does
    admin, audio = apps.token("vision", "admin"), apps.token("audio", "read")
    server = start_server(apps)
    try:
        assert httpx.get(f"{server.url}/api/health", timeout=30).json()["status"] == "ok"
        with server.client() as anonymous:
            assert anonymous.get("/api/apps").status_code == 401
        with server.client(admin) as client:
            assert [a["name"] for a in client.get("/api/apps").json()] == ["radio", "vision"]
            started = client.post(
                "/api/apps/vision/workflows/pipe/runs", json={"parameters": {"note": "shared"}}
            )
            assert started.status_code == 200, started.text
            run_id = started.json()["run_id"]
            view = wait_run(client, "vision", run_id, {"succeeded", "failed"})
            assert view["status"] == "succeeded", view
            listed = client.get("/api/apps/vision/runs").json()
            assert [r["id"] for r in listed["items"]] == [run_id] and listed["total"] == 1
        with server.client(audio) as other_team:
            assert other_team.get(f"/api/apps/vision/runs/{run_id}").status_code == 404
    finally:
        stop_server(server)
        apps.tokens.store.close()

    # what the server's engine wrote is in PostgreSQL, where the CLI of any folder reads it
    store = Store.for_state_dir(apps.audio / ".scanflow")
    assert store._engine.dialect.name == "postgresql"
    run = store.get_run(run_id)
    assert (run.app, run.status, run.parameters["note"]) == ("vision", "succeeded", "shared")
    assert [s.status for s in store.steps(run_id)] == ["succeeded"] * 3
    assert not list(tmp_path.glob("*/.scanflow/scanflow.db"))


def test_a_server_whose_store_refuses_it_stops_with_a_clear_message(
    tmp_path: Path, postgres_server, monkeypatch
):
    database = postgres_server.database().rsplit("/", 1)[1]
    monkeypatch.setenv(ENV_STORE_URI, postgres_server.url(database, password="not-it"))
    write_files(tmp_path / "vision", {"scanflow.yaml": pipeline("vision", "vision")})
    write_files(tmp_path / "vision", {"steps.py": STEPS})
    server = ServerProcess(tmp_path / "vision", tmp_path / "server.log")
    try:
        code = server.proc.wait(timeout=120)
    finally:
        server.stop()
    log = " ".join((tmp_path / "server.log").read_text().split())
    assert code == 1 and "Traceback" not in log and "not-it" not in log
    assert (
        f"error: cannot open the state store postgresql+psycopg://team:***@127.0.0.1:"
        f"{postgres_server.port}/{database} (from SCANFLOW_STORE_URI):" in log
    )
    assert 'password authentication failed for user "team"; check SCANFLOW_STORE_URI' in log
