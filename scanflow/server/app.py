"""The FastAPI application of the control server: the API, the dashboard, static files."""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from scanflow.api.errors import ApiError
from scanflow.api.tokens import Tokens
from scanflow.api.workspace import Workspace
from scanflow.errors import ScanflowError
from scanflow.server.sampler import INTERVAL, ServiceSampler

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _allowed(request: Request) -> list[str]:
    """Every method of every route on the request's path (one path may have several
    routes, one per method; the router's own ``Allow`` names only the first)."""
    from starlette.routing import Match

    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def _sample_seconds() -> float:
    """How often services are sampled: ``$SCANFLOW_SAMPLE_SECONDS`` (default 5)."""
    raw = os.environ.get("SCANFLOW_SAMPLE_SECONDS", "")
    try:
        value = float(raw) if raw else INTERVAL
    except ValueError:
        raise ScanflowError(f"SCANFLOW_SAMPLE_SECONDS={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise ScanflowError(f"SCANFLOW_SAMPLE_SECONDS={raw!r} must be more than 0")
    return value


def create_app(workspace: Workspace, tokens: Tokens | None = None) -> FastAPI:
    """The server of ``workspace``; tokens are kept in the workspace's home store."""
    from sqlalchemy.exc import DBAPIError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from scanflow import __version__
    from scanflow.server import pages, routes

    app = FastAPI(
        title="Scanflow control server",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.workspace = workspace
    app.state.tokens = tokens or Tokens(workspace.home_store())
    import mlflow  # noqa: F401 - here, before the threads: two importing it at once may see it half-made

    app.state.sampler = ServiceSampler(workspace, _sample_seconds())
    app.state.sampler.start()
    app.state.tracking_ready = threading.Event()
    threading.Thread(
        target=_open_stores, args=(workspace, app.state.tracking_ready), daemon=True
    ).start()

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        if request.url.path.startswith("/api"):
            return _error(exc.status, str(exc))
        return pages.error_page(request, exc.status, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # the API's errors all read {"error": ...}, as its OpenAPI document says
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed(request))
        return JSONResponse(
            {"error": str(exc.detail)}, status_code=exc.status_code, headers=headers
        )

    @app.exception_handler(DBAPIError)
    async def store_down(request: Request, exc: DBAPIError) -> JSONResponse:
        log.warning("state store error on %s: %s", request.url.path, exc.orig)
        return _error(503, f"the state store does not answer: {exc.orig}")

    @app.exception_handler(ScanflowError)
    async def scanflow_error(request: Request, exc: ScanflowError) -> JSONResponse:
        return _error(400, str(exc))

    app.include_router(routes.open_router)
    app.include_router(routes.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one, read with getsockname)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # connections wait in the backlog until the server takes them
    return sock


def _open_stores(workspace: Workspace, done: threading.Event) -> None:
    """Open each application's embedded MLflow store ahead of the first request."""
    from scanflow.api.models import open_store, tracking_errors

    try:
        for handle in workspace.apps.values():
            try:
                with tracking_errors(handle):
                    open_store(handle)
            except ApiError as exc:
                log.warning("cannot open the MLflow store of %r yet: %s", handle.name, exc)
    finally:
        done.set()


def serve(workspace: Workspace, sock: socket.socket) -> None:
    """Serve ``workspace`` on ``sock`` until interrupted (Ctrl-C or SIGTERM)."""
    import uvicorn

    config = uvicorn.Config(create_app(workspace), log_level="warning", lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
