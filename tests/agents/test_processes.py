"""Agents as real processes: HTTP messages between them (carrying the application's token),
duplicates, dead letters, and an agent killed in the middle of a plan that resumes without
repeating a finished step."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest
from conftest import wait_for

from scanflow.agents.delivery import LocalBus, Postman, RetryPolicy
from scanflow.agents.messages import Message
from scanflow.agents.state import AgentState
from scanflow.auth import UNAUTHORIZED, app_token, bearer
from scanflow.store import Store

from .conftest import AgentProcess, run

STEPS = """
import time
from pathlib import Path

from scanflow.agents import decide, Outcome

HERE = Path(__file__).parent


def on_go(facts):
    message = facts.message()
    if message and message["intent"] == "go":
        return decide("asked to go", "first", "slow", evidence={"from": message["sender"]},
                      guarded=False)
    return None


def tell(facts):
    message = facts.message()
    if message and message["intent"] == "relay":
        return decide("relay to the planner", ("send", {"to": "planner", "intent": "go"}),
                      guarded=False)
    return None


def first(ctx):
    with open(HERE / "first.log", "a") as out:
        out.write("first\\n")
    return {"wrote": "first"}


def slow(ctx):
    with open(HERE / "slow.log", "a") as out:
        out.write(f"start resumed={ctx.resumed} checkpoint={ctx.checkpoint}\\n")
    ctx.save({"phase": "waiting"})
    deadline = time.time() + 120
    while not (HERE / "release").exists() and time.time() < deadline:
        time.sleep(0.05)
    with open(HERE / "slow.log", "a") as out:
        out.write("finished\\n")
    return Outcome(message="released")
"""

APP = """
name: agentsapp
agents:
- name: planner
  role: planner
  rules: [steps:on_go]
  actuators: [steps:first, steps:slow]
  triggers: [{on: message, intent: go}]
- name: monitor
  role: monitor
  rules: [steps:tell]
  triggers: [{on: message}]
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    root.mkdir()
    (root / "scanflow.yaml").write_text(APP)
    (root / "steps.py").write_text(STEPS)
    return root


def _decisions(app_dir: Path, agent: str) -> list:
    store = Store.for_state_dir(app_dir / ".scanflow")
    try:
        return AgentState(store, agent).decisions()
    finally:
        store.close()


@pytest.mark.slow
def test_http_messages_between_processes_and_a_crash_mid_plan(app_dir: Path, tmp_path: Path):
    planner = AgentProcess(app_dir, "planner", tmp_path / "planner.log", "--no-audit")
    monitor = AgentProcess(app_dir, "monitor", tmp_path / "monitor.log", "--no-audit")
    try:
        planner.wait_ready()
        monitor_url = monitor.wait_ready()
        token = app_token(app_dir / ".scanflow", create=False)
        assert token  # the agents made the application's token on their first start
        auth = bearer(token)
        # a message to the monitor, relayed over HTTP to the planner in another process
        relay = Message(sender="tester", receiver="monitor", intent="relay")
        body = relay.model_dump(mode="json")
        for headers in ({}, bearer("not-the-token")):  # refused, and not acted on
            refused = httpx.post(f"{monitor_url}/inbox", json=body, headers=headers)
            assert refused.status_code == 401 and refused.json() == {"error": UNAUTHORIZED}
            assert httpx.get(f"{monitor_url}/status", headers=headers).status_code == 401
        assert _decisions(app_dir, "monitor") == []
        answer = httpx.post(f"{monitor_url}/inbox", json=body, headers=auth)
        assert answer.status_code == 202 and answer.json() == {"id": relay.id, "duplicate": False}
        again = httpx.post(f"{monitor_url}/inbox", json=body, headers=auth)
        assert again.status_code == 200 and again.json()["duplicate"] is True
        wait_for(lambda: "start" in _read(app_dir / "slow.log"), what="the slow step to start")
        # the duplicate was acted on once: one relay decision, one plan in the planner
        assert len(_decisions(app_dir, "monitor")) == 1
        assert len(_decisions(app_dir, "planner")) == 1
        # crash the planner in the middle of its plan, then start it again
        planner.kill()
        (app_dir / "release").write_text("go")
        planner = AgentProcess(app_dir, "planner", tmp_path / "planner2.log", "--no-audit")
        planner.wait_ready()
        done = wait_for(
            lambda: [d for d in _decisions(app_dir, "planner") if d.status == "succeeded"],
            what="the plan to finish after the restart",
        )
        assert _read(app_dir / "first.log") == "first\n"  # the finished step was not repeated
        slow_log = _read(app_dir / "slow.log").splitlines()
        assert slow_log[0] == "start resumed=False checkpoint={}"
        assert slow_log[1] == "start resumed=True checkpoint={'phase': 'waiting'}"
        assert slow_log[-1] == "finished"
        assert [s["status"] for s in done[0].steps] == ["done", "done"]
        assert done[0].outcome == "released"
        # the HTTP API shows status and decisions
        url = wait_for(lambda: _url(app_dir, "planner", planner.pid), what="the new address")
        assert httpx.get(f"{url}/decisions").status_code == 401
        status = httpx.get(f"{url}/status", headers=auth).json()
        assert status["agent"] == "planner" and status["open_decisions"] == []
        decisions = httpx.get(f"{url}/decisions", headers=auth).json()
        assert decisions[0]["results"]["slow"] == {}
        assert decisions[0]["evidence"] == {"from": "monitor"}
    finally:
        planner.stop()
        monitor.stop()
    for log in ("planner.log", "planner2.log", "monitor.log"):  # the token is never logged
        assert token not in (tmp_path / log).read_text()


def test_a_message_to_an_agent_that_is_down_is_retried_then_dead_lettered(
    store, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from scanflow.cli.main import main

    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    hung = socket.socket()  # accepts connections (backlog) but never answers
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)
    AgentState(store, "planner").register(f"http://127.0.0.1:{dead_port}")
    AgentState(store, "stuck").register(f"http://127.0.0.1:{hung.getsockname()[1]}")
    state = AgentState(store, "monitor")
    state.register(None)
    policy = RetryPolicy(attempts=3, backoff=0.01, timeout=0.5)
    assert [policy.wait(n) for n in (1, 2, 3)] == [0.01, 0.02, 0.04]  # exponential backoff
    assert RetryPolicy(backoff=1, max_backoff=5).wait(10) == 5
    postman = Postman(state, LocalBus(), policy)
    message = Message(sender="monitor", receiver="planner", intent="drift")
    stuck = Message(sender="monitor", receiver="stuck", intent="drift")
    never = Message(sender="monitor", receiver="nobody", intent="drift")

    async def scenario() -> list[bool]:
        delivered = []
        for m in (message, stuck, never):
            await asyncio.to_thread(state.enqueue, m)
            delivered.append(await postman.deliver(m))
        await postman.close()
        return delivered

    try:
        assert run(scenario()) == [False, False, False]
    finally:
        hung.close()
    dead = {r.receiver: r for r in state.outbox("dead")}
    assert dead["planner"].attempts == 3
    assert "ConnectError" in dead["planner"].last_error
    assert dead["stuck"].attempts == 3  # each attempt cut by the timeout
    assert dead["stuck"].last_error == "no answer within 0.5s"
    assert "has no known address" in dead["nobody"].last_error
    events = [e.detail for e in state.events("dead_letter")]
    assert {e["receiver"] for e in events} == {"planner", "stuck", "nobody"}
    # and visible on the command line
    app_dir = Path(store.url.removeprefix("sqlite:///")).parent.parent
    (app_dir / "scanflow.yaml").write_text("name: shop\n")
    capsys.readouterr()
    assert main(["--app", str(app_dir), "agents", "status", "-o", "json"]) == 0
    listed = {r["agent"]: r for r in json.loads(capsys.readouterr().out)}
    letters = {d["receiver"]: d for d in listed["monitor"]["dead_letters"]}
    assert set(letters) == {"planner", "stuck", "nobody"}
    assert letters["planner"]["id"] == message.id and letters["planner"]["attempts"] == 3
    assert main(["--app", str(app_dir), "agents", "status"]) == 0
    assert "monitor" in capsys.readouterr().out


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _url(app_dir: Path, agent: str, pid: int) -> str | None:
    from scanflow.agents.state import endpoint

    store = Store.for_state_dir(app_dir / ".scanflow")
    try:
        ep = endpoint(store, agent)
        return ep.url if ep is not None and ep.pid == pid else None
    finally:
        store.close()
