"""``--server`` and ``--token``: the CLI reads runs, decisions and agents through a real
``scanflow server`` with a team token, and shows exactly what it shows from the store."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port

from scanflow.agents.messages import Message
from scanflow.agents.state import AgentState
from scanflow.api.client import ScanflowClient
from scanflow.api.errors import Conflict, Forbidden, NotFound
from scanflow.cli.main import main
from scanflow.store.agent_models import DecisionRecord

from .conftest import Apps, Server, make_apps, start_server, stop_server

READS = [["runs"], ["show", "RUN"], ["decisions"], ["agents", "status"]]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Apps, Server]]:
    """One server of vision and radio (team vision) for this module's tests; audio's
    team has no application on it. Nothing here uses MLflow: the server opens its stores
    meanwhile."""
    apps = make_apps(tmp_path_factory.mktemp("remote"))
    server = start_server(apps, include=[apps.radio], wait_tracking=False)
    yield apps, server
    stop_server(server)
    apps.tokens.store.close()


@pytest.fixture
def apps(shared: tuple[Apps, Server]) -> Apps:
    return shared[0]


@pytest.fixture
def server(shared: tuple[Apps, Server]) -> Server:
    return shared[1]


@pytest.fixture(autouse=True)
def _no_ambient_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCANFLOW_SERVER", raising=False)
    monkeypatch.delenv("SCANFLOW_TOKEN", raising=False)


def scanflow(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())


def record_agent_work(state: AgentState) -> None:
    """What a running monitor leaves in the store: its address, a decision, a dead letter
    and a sensor error."""
    state.register("http://127.0.0.1:9")
    now = time.time()
    steps = [{"action": "notify", "status": "done", "result": {"sent": 1}}]
    decision = DecisionRecord(
        id="d-1", app="vision", agent=state.agent, rule="drift", action="notify", key="notify",
        reason="p=0.003 < 0.01", status="succeeded", evidence={"p_value": 0.003}, steps=steps,
        outcome="sent", created_at=now, finished_at=now + 1,
    )  # fmt: skip
    state.commit({}, [decision])
    letter = Message(sender=state.agent, receiver="planner", intent="drift")
    state.enqueue(letter)
    state.delivery(letter.id, "dead", 5, "no answer within 5s")
    state.event("sensor_error", error="feed unreadable")


def test_the_cli_shows_through_the_server_what_it_shows_from_the_store(
    apps: Apps, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "scanflow.cli.main", "--app", str(apps.vision)]
        + ["run", "pipe", "-p", "note=remote", "--no-tracking"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    with ScanflowClient(server.url, apps.token("vision", "admin")) as admin:
        [run] = admin.runs("vision").items
        assert run.status == "succeeded" and run.parameters["note"] == "remote"
        with pytest.raises(Conflict, match=f"run {run.id} already ended .succeeded."):
            admin.cancel("vision", run.id)  # an admin may act: the run refuses
    run_id = run.id
    record_agent_work(AgentState(apps.tokens.store, "watcher"))
    read = ["--server", server.url, "--token", apps.token("vision", "read")]
    for command in READS:
        args = [run_id if a == "RUN" else a for a in command]
        code, local, _ = scanflow(capsys, "--app", str(apps.vision), *args, "-o", "json")
        assert code == 0
        code, remote, err = scanflow(capsys, "--app", str(apps.vision), *args, *read, "-o", "json")
        assert code == 0, err
        assert json.loads(remote) == json.loads(local), command
        code, table, err = scanflow(capsys, "--app", str(apps.vision), *args, *read)
        assert code == 0 and err == "", err
        assert table == scanflow(capsys, "--app", str(apps.vision), *args)[1]
    vision = ["--app", str(apps.vision)]
    [shown] = json.loads(scanflow(capsys, *vision, "runs", *read, "-o", "json")[1])
    assert shown["id"] == run_id and shown["status"] == "succeeded"
    [agent] = json.loads(scanflow(capsys, *vision, "agents", "status", *read, "-o", "json")[1])
    assert agent["dead_letters"][0]["error"] == "no answer within 5s"
    assert agent["errors"][0]["error"] == "feed unreadable"
    [decided] = json.loads(scanflow(capsys, *vision, "decisions", *read, "-o", "json")[1])
    assert decided["evidence"] == {"p_value": 0.003}
    assert decided["results"] == {"notify": {"sent": 1}}


def test_tokens_are_checked_and_refusals_are_clear(
    apps: Apps, server: Server, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    vision = ["--app", str(apps.vision), "runs", "--server", server.url]
    code, _, err = scanflow(capsys, *vision)
    assert code == 1 and "--server needs a team token: pass --token or set $SCANFLOW_TOKEN" in err
    for token, reason in [("nope", "malformed token"), (apps.token()[:-3] + "abc", "wrong token")]:
        code, _, err = scanflow(capsys, *vision, "--token", token)
        assert code == 1 and "answered 401" in err and reason in err, err
        assert "valid team token with --token or $SCANFLOW_TOKEN" in err
        assert "Traceback" not in err and token not in err
    # a read-only token reads but may not act
    read = apps.token("vision", "read")
    with ScanflowClient(server.url, read) as client:
        assert [a.name for a in client.apps()] == ["radio", "vision"]
        with pytest.raises(Forbidden, match="is read-only; actions need an admin token") as no:
            client.start_run("vision", "pipe")
        assert no.value.status == 403
        with pytest.raises(NotFound, match="no application 'audio'"):
            client.runs("audio")
    # the application: this folder's, else the team's only one, else the CLI asks
    elsewhere = ["--app", str(tmp_path), "runs", "--server", server.url]
    code, _, err = scanflow(capsys, *elsewhere, "--token", read)
    assert code == 1 and "holds 2 applications of your team (radio, vision)" in err, err
    code, _, err = scanflow(capsys, *elsewhere, "--token", apps.token("audio", "read"))
    assert code == 1 and f"the token's team has no application on {server.url}" in err, err
    code, _, err = scanflow(capsys, "--app", str(apps.audio), "decisions", "--token", read,
                            "--server", server.url)  # fmt: skip
    assert code == 1 and "no application 'audio'" in err
    down = f"http://127.0.0.1:{free_port()}"
    code, _, err = scanflow(capsys, "--app", str(apps.vision), "runs", "--server", down,
                            "--token", read)  # fmt: skip
    assert code == 1 and f"GET {down}/api/apps/vision/runs" in err and "got no answer" in err


def awaiting(state: AgentState, *ids: str) -> None:
    """Plans of ``state``'s agent that wait for a person."""
    steps = [{"action": "promote", "params": {}, "status": "pending"}]
    state.commit(
        {},
        [
            DecisionRecord(
                id=i, app="vision", agent=state.agent, rule="better", action="promote",
                key=f"promote-{i}", reason="v3 beats v2", status="awaiting", evidence={},
                steps=steps, created_at=time.time(),
            )
            for i in ids
        ],
    )  # fmt: skip


def test_the_cli_acts_through_the_server_with_an_admin_token_only(
    apps: Apps, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import wait_for

    from .conftest import make_model

    vision = ["--app", str(apps.vision)]
    admin = ["--server", server.url, "--token", apps.token("vision", "admin")]
    read = ["--server", server.url, "--token", apps.token("vision", "read")]
    refused = "is read-only; actions need an admin token. Pass a token of scope admin"
    client = ScanflowClient(server.url, apps.token("vision", "read"))

    def ended(run_id: str) -> str | None:
        status = client.run("vision", run_id).status
        return status if status in ("succeeded", "failed", "cancelled") else None

    # run a workflow whose train step fails, then retry it from there
    marker = apps.root / "fail-remote"
    marker.touch()
    code, out, err = scanflow(capsys, *vision, "run", "pipe", "-p", f"fail={marker}", *admin)
    assert code == 0, err
    run_id = out.split()[1]
    assert f"run {run_id} started" in out and f"scanflow show {run_id} --server" in out
    assert wait_for(lambda: ended(run_id), what="the run to fail") == "failed"
    code, _, err = scanflow(capsys, *vision, "run", "--resume", run_id, *read)
    assert code == 1 and refused in err and "Traceback" not in err, err
    marker.unlink()
    code, out, err = scanflow(capsys, *vision, "run", "--resume", run_id, *admin)
    assert code == 0 and f"run {run_id} retried from its failed step" in out, err
    assert wait_for(lambda: ended(run_id), what="the retried run") == "succeeded"
    steps = {s.name: len(s.attempts) for s in client.run("vision", run_id).steps}
    assert steps == {"prepare": 1, "train": 2, "report": 1}  # prepare was not run again
    code, _, err = scanflow(capsys, *vision, "cancel", run_id, *admin)
    assert code == 1 and f"run {run_id} already ended (succeeded)" in err, err
    code, _, local = scanflow(capsys, *vision, "cancel", run_id)  # the same, on this folder
    assert code == 1 and local == f"error: run {run_id} already ended (succeeded)", local
    code, _, err = scanflow(capsys, *vision, "run", "pipe", "--no-cache", *admin)
    assert code == 1 and "--no-cache do(es) not go with --server" in err, err

    # approve and reject plans that wait for a person (by id prefix, as the table shows)
    awaiting(AgentState(apps.tokens.store, "watcher"), "e" * 32, "f" * 32, "0" * 32)
    code, _, err = scanflow(capsys, *vision, "decisions", "reject", "f" * 8, *read)
    assert code == 1 and refused in err, err
    code, out, err = scanflow(capsys, *vision, "decisions", "approve", "e" * 8, *admin)
    assert code == 0 and f"decision {'e' * 8} approved" in out, err
    code, out, err = scanflow(
        capsys, *vision, "decisions", "reject", "f" * 8, "--reason", "not on a Friday", *admin
    )
    assert code == 0 and f"decision {'f' * 8} rejected" in out, err
    code, _, err = scanflow(capsys, *vision, "decisions", "reject", "e" * 8, *admin)
    assert code == 1 and "is approved; only an awaiting plan can be rejected" in err, err
    code, out, err = scanflow(capsys, *vision, "decisions", "reject", "0" * 8)  # this folder
    assert code == 0 and "rejected" in out, err
    shown = {d.id: d for d in client.decisions("vision")}
    assert shown["e" * 32].status == "approved" and shown["f" * 32].status == "rejected"
    assert shown["f" * 32].outcome.startswith("rejected by vision/")
    assert shown["f" * 32].outcome.endswith(": not on a Friday")
    assert shown["0" * 32].outcome.startswith("rejected by local/")
    code, out, _ = scanflow(capsys, *vision, "decisions", *read)
    assert "ffffffff" in out and "rejected" in out

    # promote a model version, then roll back (once the server has made its MLflow store)
    wait_for(lambda: client.call("GET", "/api/health")["tracking_ready"], what="MLflow")
    make_model(server_tracking_uri(apps))  # digits v1..v3, champion -> v2
    code, _, err = scanflow(capsys, *vision, "models", "alias", "digits", "champion", "3", *read)
    assert code == 1 and refused in err, err
    code, out, err = scanflow(capsys, *vision, "models", "alias", "digits", "champion", "3", *admin)
    assert code == 0 and "digits@champion -> version 3 (was 2)" in out, err
    code, out, err = scanflow(capsys, *vision, "models", "alias", "digits", "champion", "9", *admin)
    assert code == 1 and "model 'digits' has no version '9'" in err, err
    code, out, err = scanflow(capsys, *vision, "models", "alias", "digits", "champion", "2", *admin)
    assert code == 0 and "digits@champion -> version 2 (was 3)" in out, err
    code, out, err = scanflow(capsys, *vision, "models", "alias", "digits", "champion", "1")
    assert code == 0 and "digits@champion -> version 1 (was 2)" in out, err  # this folder
    client.close()


def server_tracking_uri(apps: Apps) -> str:
    from scanflow.tracking.config import embedded_tracking_uri

    return embedded_tracking_uri(apps.vision)


def test_an_agent_is_paused_and_resumed_through_the_server_or_here(
    apps: Apps, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    vision = ["--app", str(apps.vision)]
    admin = ["--server", server.url, "--token", apps.token("vision", "admin")]
    read = ["--server", server.url, "--token", apps.token("vision", "read")]
    state = AgentState(apps.tokens.store, "watcher")
    code, _, err = scanflow(capsys, *vision, "agents", "pause", "watcher", *read)
    assert code == 1 and "is read-only; actions need an admin token" in err, err
    assert state.paused() is None
    code, out, err = scanflow(
        capsys, *vision, "agents", "pause", "watcher", "--reason", "data outage", *admin
    )
    assert code == 0 and "agent watcher paused" in out, err
    assert state.paused() is not None and state.paused()["reason"] == "data outage"
    assert state.paused()["by"].startswith("vision/")
    code, out, _ = scanflow(capsys, *vision, "agents", "pause", "watcher", *admin)
    assert code == 0 and "agent watcher is already paused" in out
    shown = ScanflowClient(server.url, apps.token("vision", "read")).agents("vision")
    assert [a.paused["reason"] for a in shown if a.name == "watcher"] == ["data outage"]
    code, _, err = scanflow(capsys, *vision, "agents", "pause", "nobody", *admin)
    assert code == 1 and "no agent 'nobody' in application 'vision' (agents: watcher)" in err
    code, out, err = scanflow(capsys, *vision, "agents", "resume", "watcher")  # this folder
    assert code == 0 and "agent watcher resumed" in out, err
    assert state.paused() is None
    code, out, _ = scanflow(capsys, *vision, "agents", "resume", "watcher", *admin)
    assert code == 0 and "agent watcher is not paused" in out
    by = [
        (e.kind, e.detail["by"].split("/")[0]) for e in state.events(limit=50) if "by" in e.detail
    ]
    assert ("paused", "vision") in by and ("resumed", "local") in by
