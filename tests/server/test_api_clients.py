"""The clients of Scanflow's remote APIs on their error paths, with an injected transport:
every failure becomes an error of the one hierarchy, naming the call and what was said."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from scanflow.agents.messages import Message
from scanflow.api.agent_client import AgentClient
from scanflow.api.client import ScanflowClient
from scanflow.api.errors import (
    ApiError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    Unauthenticated,
    Unavailable,
    Unreachable,
)
from scanflow.serving.client import ServingClient
from scanflow.serving.errors import Unauthorized

TOKEN = "sft_0123456789ab_" + "s" * 43


def answering(status: int, body: object = None, text: str | None = None) -> httpx.MockTransport:
    """A transport that answers every request with ``status`` (JSON ``body`` or ``text``),
    after checking the token went along."""

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        if text is not None:
            return httpx.Response(status, text=text)
        return httpx.Response(status, json=body)

    return httpx.MockTransport(handle)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, Invalid),
        (401, Unauthenticated),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (503, Unavailable),
    ],
)
def test_each_refusal_of_the_server_is_its_own_error(status: int, error: type) -> None:
    said = f"refused with {status}"
    with ScanflowClient("http://server", TOKEN, transport=answering(status, {"error": said})) as c:
        with pytest.raises(error) as raised:
            c.runs("vision", workflow="pipe")
    assert raised.value.status == status
    assert str(raised.value) == (
        f"GET http://server/api/apps/vision/runs?limit=50&offset=0&sort=-created_at"
        f"&workflow=pipe answered {status}: {said}"
    )


def test_an_unexpected_answer_is_still_an_api_error() -> None:
    with ScanflowClient("http://server", TOKEN, transport=answering(500, text="boom")) as c:
        with pytest.raises(ApiError, match="answered 500: boom") as raised:
            c.run("vision", "pipe-1")
    assert raised.value.status == 500 and type(raised.value) is ApiError
    with ScanflowClient("http://server", TOKEN, transport=answering(200, text="<html>")) as c:
        with pytest.raises(ApiError, match="answered 200 with no JSON"):
            c.apps()


def test_no_answer_is_unreachable_for_every_client() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with ScanflowClient("http://server", TOKEN, transport=httpx.MockTransport(refuse)) as c:
        with pytest.raises(Unreachable, match="GET http://server/api/apps got no answer"):
            c.apps()
    with ServingClient("http://svc:8080", TOKEN, transport=httpx.MockTransport(refuse)) as s:
        with pytest.raises(Unavailable, match="POST http://svc:8080/admin/workers got no"):
            s.scale(2)


def test_the_serving_client_says_which_token_a_service_wants() -> None:
    calls: list[dict] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append({"path": request.url.path, "body": request.read()})
        if request.url.path == "/admin/refresh":
            return httpx.Response(401, json={"error": "missing or wrong token"})
        return httpx.Response(200, json={"workers": 3, "service": "digits"})

    with ServingClient("http://svc", TOKEN, transport=httpx.MockTransport(handle)) as svc:
        assert svc.scale(3, wait=True)["workers"] == 3
        with pytest.raises(Unauthorized, match=r"answered 401 \(missing or wrong token\)") as err:
            svc.refresh()
    assert "<app>/.scanflow/token" in str(err.value) and TOKEN not in str(err.value)
    assert isinstance(err.value, Unauthenticated)
    assert calls[0] == {
        "path": "/admin/workers",
        "body": b'{"workers":3,"wait":true,"timeout":30.0}',
    }


def test_the_agent_client_delivers_once_and_names_a_refusal() -> None:
    seen: set[str] = set()

    def inbox(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401, json={"error": "missing or wrong token"})
        message = Message.model_validate_json(request.read())
        fresh = message.id not in seen
        seen.add(message.id)
        return httpx.Response(
            202 if fresh else 200, json={"id": message.id, "duplicate": not fresh}
        )

    message = Message(sender="monitor", receiver="planner", intent="drift", payload={"p": 0.01})
    transport = httpx.MockTransport(inbox)

    async def exchange() -> list[bool]:
        async with AgentClient("http://agent", TOKEN, transport=transport) as agent:
            answers = [await agent.deliver(message), await agent.deliver(message)]
        async with AgentClient("http://agent", "other", transport=transport) as stranger:
            with pytest.raises(Unauthenticated, match="same application token"):
                await stranger.deliver(message)
        return answers

    assert asyncio.run(exchange()) == [True, False]
