"""Live run events as server-sent events: the run's view each time it changes.

The store is the one source of truth for every engine, so the stream reads it (in a
worker thread) twice a second and sends a ``run`` event when a state, an attempt or the
end changed; the stream ends after the run's last state.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from anyio import to_thread
from sse_starlette.sse import EventSourceResponse

from scanflow.api import runs as runs_api
from scanflow.api.errors import ApiError
from scanflow.api.views import RunView
from scanflow.api.workspace import AppHandle

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5


def _shape(view: RunView) -> tuple[Any, ...]:
    """What a change is: states, attempts and ends (durations tick by themselves)."""
    return (
        view.status,
        view.finished_at,
        tuple((s.name, s.status, len(s.attempts), s.finished_at) for s in view.steps),
    )


async def _stream(app: AppHandle, run_id: str) -> AsyncIterator[dict[str, str]]:
    last: tuple[Any, ...] | None = None
    while True:
        try:
            view = await to_thread.run_sync(runs_api.get_run, app, run_id)
        except ApiError as exc:
            yield {"event": "error", "data": json.dumps({"error": str(exc)})}
            return
        shape = _shape(view)
        if shape != last:
            last = shape
            yield {"event": "run", "data": view.model_dump_json()}
        if view.status in runs_api.ENDED:
            yield {"event": "end", "data": json.dumps({"status": view.status})}
            return
        await asyncio.sleep(POLL_SECONDS)


def run_events(app: AppHandle, run_id: str) -> EventSourceResponse:
    """The SSE response following ``run_id`` of ``app``."""
    return EventSourceResponse(_stream(app, run_id), ping=15)
