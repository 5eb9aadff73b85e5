"""Each agent's small HTTP API: ``POST /inbox``, ``GET /status``, ``GET /decisions``,
``GET /health``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from scanflow.agents.messages import Message

if TYPE_CHECKING:
    from scanflow.agents.runtime import AgentRuntime


def create_app(runtime: AgentRuntime) -> FastAPI:
    """The FastAPI app of ``runtime``."""
    from scanflow.agents.runtime import decision_view

    app = FastAPI(title=f"scanflow agent {runtime.name}", docs_url=None, redoc_url=None)

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
        return [decision_view(r) for r in rows]

    return app
