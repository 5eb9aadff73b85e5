"""The application's token on the agents' side: their HTTP APIs require it, their messages
and their calls to services' admin endpoints carry it, and a refused token dead-letters a
message at once."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from scanflow.agents import Registry, decide
from scanflow.agents.clients import HttpServiceControl
from scanflow.agents.delivery import LocalBus, Postman, RetryPolicy
from scanflow.agents.messages import Message
from scanflow.agents.runtime import AgentRuntime, AgentSetup
from scanflow.agents.state import AgentState
from scanflow.agents.triggers import OnMessage
from scanflow.auth import TOKEN_ENV, UNAUTHORIZED, app_token, bearer
from scanflow.errors import ScanflowError

from .conftest import run, until

TOKEN = "s3cret-app-token"


def _planner(handled: list[Any]) -> AgentSetup:
    reg = Registry()

    @reg.rule
    def on_go(facts: Any) -> Any:
        message = facts.message()
        if message and message["intent"] == "go":
            return decide("asked to go", ("handle", {"n": message["payload"]["n"]}), guarded=False)
        return None

    @reg.actuator
    def handle(ctx: Any, n: int) -> None:
        handled.append(n)

    return AgentSetup("planner", reg, triggers=[OnMessage(intent="go")])


def test_agent_api_requires_the_token_and_a_refused_sender_dead_letters_at_once(
    store, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    handled: list[int] = []
    planner_state = AgentState(store, "planner")
    sender = AgentState(store, "monitor")
    sender.register(None)
    policy = RetryPolicy(attempts=5, backoff=0.01, timeout=5)

    def go(n: int) -> Message:
        return Message(sender="monitor", receiver="planner", intent="go", payload={"n": n})

    refused, accepted = go(1), go(2)

    async def scenario() -> dict[str, Any]:
        rt = AgentRuntime(_planner(handled), store, port=0, token=TOKEN)
        await rt.start()
        seen: dict[str, Any] = {}
        try:
            async with httpx.AsyncClient(base_url=rt.url, timeout=10) as http:
                seen["health"] = (await http.get("/health")).status_code
                body = go(0).model_dump(mode="json")
                for name, headers in (("none", {}), ("wrong", bearer("not-the-token"))):
                    seen[f"inbox_{name}"] = await http.post("/inbox", json=body, headers=headers)
                    seen[f"status_{name}"] = (
                        await http.get("/status", headers=headers)
                    ).status_code
                    answer = await http.get("/decisions", headers=headers)
                    seen[f"decisions_{name}"] = answer.status_code
                seen["received_before"] = planner_state.received()
                # an agent whose token is wrong: refused once, dead-lettered at once
                for message in (refused, accepted):
                    await asyncio.to_thread(sender.enqueue, message)
                wrong = Postman(sender, LocalBus(), policy, token="not-the-token")
                seen["wrong_delivered"] = await wrong.deliver(refused)
                await wrong.close()
                right = Postman(sender, LocalBus(), policy, token=TOKEN)
                seen["right_delivered"] = await right.deliver(accepted)
                await right.close()
                await until(lambda: handled, what="the planner to act on the message")
                await rt.idle()
                auth = bearer(TOKEN)
                seen["status"] = (await http.get("/status", headers=auth)).json()
                seen["decisions"] = (await http.get("/decisions", headers=auth)).json()
        finally:
            await rt.stop()
        return seen

    seen = run(scenario())
    assert seen["health"] == 200  # open, for probes
    for name in ("none", "wrong"):
        answer = seen[f"inbox_{name}"]
        assert answer.status_code == 401 and answer.json() == {"error": UNAUTHORIZED}
        assert answer.headers["www-authenticate"] == "Bearer"
        assert seen[f"status_{name}"] == 401 and seen[f"decisions_{name}"] == 401
    assert seen["received_before"] == []  # refused messages were not even stored
    assert seen["wrong_delivered"] is False and seen["right_delivered"] is True
    assert handled == [2]  # only the message that carried the token was acted on
    assert seen["status"]["agent"] == "planner" and seen["status"]["open_decisions"] == []
    assert [d["action"] for d in seen["decisions"]] == ["handle"]
    assert [r.id for r in planner_state.received()] == [accepted.id]
    dead = sender.outbox("dead")
    assert [r.id for r in dead] == [refused.id]
    assert dead[0].attempts == 1  # not retried: a retry would be refused too
    assert "answered 401 (missing or wrong token)" in dead[0].last_error
    assert [r.id for r in sender.outbox("delivered")] == [accepted.id]
    # the reason is visible on the command line, and the token never shows anywhere
    from scanflow.cli.main import main

    (tmp_path / "scanflow.yaml").write_text("name: shop\n")
    capsys.readouterr()
    assert main(["--app", str(tmp_path), "agents", "status", "-o", "json"]) == 0
    out = capsys.readouterr().out
    listed = {r["agent"]: r for r in json.loads(out)}
    letter = listed["monitor"]["dead_letters"][0]
    assert letter["id"] == refused.id and letter["attempts"] == 1
    assert "401 (missing or wrong token)" in letter["error"]
    assert TOKEN not in out
    assert caplog.records and not [r for r in caplog.records if TOKEN in r.getMessage()]


def test_an_agent_serving_http_needs_a_token_or_an_explicit_none(store) -> None:
    with pytest.raises(ScanflowError, match="serves HTTP on port 0 but was given no token"):
        AgentRuntime(_planner([]), store, port=0)
    AgentRuntime(_planner([]), store)  # in-process only: nothing to guard

    async def scenario() -> int:
        rt = AgentRuntime(_planner([]), store, port=0, token=None)  # open on purpose
        await rt.start()
        try:
            async with httpx.AsyncClient(base_url=rt.url, timeout=10) as http:
                return (await http.get("/status")).status_code
        finally:
            await rt.stop()

    assert run(scenario()) == 200


class _AdminRecorder(BaseHTTPRequestHandler):
    """Stands in for a service's admin API: records the Authorization header of each call
    and refuses calls without the expected token, as the service does."""

    expected: str = ""
    calls: list[tuple[str, str, str | None]] = []

    def _answer(self, method: str) -> None:
        header = self.headers.get("Authorization")
        type(self).calls.append((method, self.path, header))
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        ok = method == "GET" or header == f"Bearer {self.expected}"
        body = json.dumps({"ready": True, "workers": 2} if ok else {"error": "unauthorized"})
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._answer("GET")

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self._answer("POST")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def admin_recorder():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AdminRecorder)
    _AdminRecorder.calls = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_service_control_sends_the_app_token_on_admin_calls(
    admin_recorder: ThreadingHTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scanflow.agents.service import toolkit_for
    from scanflow.spec import load_project

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    port = admin_recorder.server_address[1]
    (tmp_path / "scanflow.yaml").write_text(
        "name: shop\nservices:\n"
        f"- {{name: digits, model: 'models:/digits@champion', port: {port}}}\n"
    )
    project = load_project(tmp_path, check_files=False)
    token = app_token(project.state_dir)
    _AdminRecorder.expected = token
    control = toolkit_for(project).service("digits")
    try:
        assert control.scale(2)["workers"] == 2
        assert control.refresh()["ready"] is True
        assert control.status()["ready"] is True
    finally:
        control.close()
    assert [(m, p) for m, p, _ in _AdminRecorder.calls] == [
        ("POST", "/admin/workers"),
        ("POST", "/admin/refresh"),
        ("GET", "/admin/status"),
    ]
    assert {h for _, _, h in _AdminRecorder.calls} == {f"Bearer {token}"}
    # a service holding another token refuses: a clear error, the token not in it
    wrong = HttpServiceControl(f"http://127.0.0.1:{port}", token="not-the-token")
    try:
        with pytest.raises(ScanflowError, match="answered 401 .missing or wrong token.") as err:
            wrong.scale(3)
    finally:
        wrong.close()
    assert "/admin/workers" in str(err.value) and "not-the-token" not in str(err.value)
