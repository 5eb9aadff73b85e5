"""The one client of an agent's HTTP API (:mod:`scanflow.agents.http`): deliver a message to
its inbox, read its status and decisions. Asynchronous, as the agents that use it are::

    async with AgentClient(url, token=app_token(".scanflow")) as agent:
        fresh = await agent.deliver(message)    # False: it had that message already
        (await agent.status())["open_decisions"]

Errors are those of :mod:`scanflow.api.errors` (:class:`~scanflow.api.errors.Unreachable`
when the agent does not answer).
"""

from __future__ import annotations

from typing import Any, Self

import httpx

from scanflow.agents.messages import Message
from scanflow.api.http import body, unreachable
from scanflow.auth import TOKEN_ENV, TOKEN_FILE, bearer

UNAUTHENTICATED_HINT = (
    "sender and receiver must use the same application token "
    f"(<app>/.scanflow/{TOKEN_FILE} or ${TOKEN_ENV})"
)


class AgentClient:
    """Talks to the agent at ``base_url``; ``transport`` replaces the network (tests)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, headers=bearer(token), transport=transport
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON body of a successful ``method path``; an ``ApiError`` otherwise."""
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise unreachable(method, f"{self.base_url}{path}", exc) from exc
        return body(response, UNAUTHENTICATED_HINT)

    async def deliver(self, message: Message) -> bool:
        """Put ``message`` in the agent's inbox; False when it had received it before."""
        answer = await self.call(
            "POST",
            "/inbox",
            content=message.model_dump_json(),
            headers={"content-type": "application/json"},
        )
        return not answer.get("duplicate", False)

    async def status(self) -> dict[str, Any]:
        """What the agent is doing (``GET /status``)."""
        return await self.call("GET", "/status")

    async def decisions(self, limit: int = 50) -> list[dict[str, Any]]:
        """Its newest decisions (``GET /decisions``)."""
        return await self.call("GET", "/decisions", params={"limit": limit})
