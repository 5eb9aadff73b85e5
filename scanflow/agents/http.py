"""Each agent's small HTTP API: ``POST /inbox``, ``GET /status``, ``GET /decisions``,
``GET /health``.

Everything but ``/health`` requires the application's token
(``Authorization: Bearer <token>``) when the runtime has one; a request without it, or with
another, gets 401 and is not acted on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from scanflow.agents.messages import Message
from scanflow.auth import UNAUTHORIZED, authorized

if TYPE_CHECKING:
    from scanflow.agents.runtime import AgentRuntime

OPEN_PATHS = frozenset({"/health"})


def create_app(runtime: AgentRuntime) -> FastAPI:
    """The FastAPI app of ``runtime``, guarded by ``runtime.token``."""
    from scanflow.api.agents import decision_view

    app = FastAPI(title=f"scanflow agent {runtime.name}", docs_url=None, redoc_url=None)

    @app.middleware("http")
    async def require_token(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path in OPEN_PATHS or authorized(
            request.headers.get("authorization"), runtime.token
        ):
            return await call_next(request)
        return JSONResponse({"error": UNAUTHORIZED}, 401, headers={"www-authenticate": "Bearer"})

    @app.post("/inbox", status_code=202)
    async def inbox(message: Message) -> JSONResponse:
        if message.receiver != runtime.name:
            return JSONResponse(
                {"error": f"this is agent {runtime.name!r}, not {message.receiver!r}"}, 404
            )
        fresh = await runtime.receive(message)
        return JSONResponse({"id": message.id, "duplicate": not fresh}, 202 if fresh else 200)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "agent": runtime.name}

    @app.get("/status")
    async def status() -> dict[str, Any]:
        return await asyncio.to_thread(runtime.status)

    @app.get("/decisions")
    async def decisions(limit: int = 50) -> list[dict[str, Any]]:
        rows = await asyncio.to_thread(runtime.state.decisions, limit)
        return [decision_view(r).model_dump() for r in rows]

    return app
