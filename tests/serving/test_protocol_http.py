"""The serving workers' HTTP protocol extends uvicorn's private ``HttpToolsProtocol``: these
tests fail, saying so, when an uvicorn release changes what it relies on."""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from conftest import free_port, wait_for
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from scanflow.serving.http import ServingProtocol, base_mismatches

CHANGED = (
    f"uvicorn {uvicorn.__version__} changed HttpToolsProtocol, which "
    "scanflow.serving.http.ServingProtocol extends: update ServingProtocol and the uvicorn "
    "range in pyproject.toml together"
)


def test_the_private_base_has_the_methods_we_override():
    assert base_mismatches() == [], CHANGED


def test_a_changed_base_is_named():
    class Changed:
        def connection_made(self, transport, extra):  # a parameter more
            pass

        def on_headers_complete(self):
            pass

    assert base_mismatches(Changed) == [
        "Changed.connection_made takes ['self', 'transport', 'extra'], "
        "expected ['self', 'transport']",
        "Changed.shutdown is gone",
    ]


class App:
    """A plain ASGI app; ``/slow`` answers once ``release`` is set."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.inside = threading.Event()
        self.release: asyncio.Event | None = None

    async def __call__(self, scope, receive, send) -> None:
        self.loop = asyncio.get_running_loop()
        await receive()
        if scope["path"] == "/slow":
            self.inside.set()
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@contextmanager
def serve(protocol: type) -> Iterator[tuple[uvicorn.Server, App, int]]:
    app = App()
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=protocol,
        loop="uvloop",
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 30, "uvicorn to start")
        yield server, app, port
    finally:
        server.should_exit = True
        thread.join(30)


def on_loop(app: App, fn):
    """Run ``fn`` on the server's event loop and return its result."""

    async def call():
        return fn()

    return asyncio.run_coroutine_threadsafe(call(), app.loop).result(10)


def get(conn: http.client.HTTPConnection, path: str = "/") -> http.client.HTTPResponse:
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    return response


def test_accepted_sockets_have_tcp_nodelay():
    with serve(ServingProtocol) as (server, app, port):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        assert get(conn).status == 200
        flags = on_loop(
            app,
            lambda: [
                c.transport.get_extra_info("socket").getsockopt(
                    socket.IPPROTO_TCP, socket.TCP_NODELAY
                )
                for c in server.server_state.connections
            ],
        )
        conn.close()
    assert flags and all(flags), CHANGED


def test_drain_answers_the_next_request_of_an_idle_connection():
    # uvicorn before 0.53 closed such a connection after the answer without saying
    # Connection: close, so a client could send its next request onto a closing socket
    with serve(ServingProtocol) as (server, app, port):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        assert get(conn).status == 200
        on_loop(app, lambda: [c.shutdown() for c in server.server_state.connections])
        # the idle keep-alive connection is still open: its next request is answered,
        # with Connection: close, and only then closed
        last = get(conn)
        assert last.status == 200, CHANGED
        assert last.getheader("connection") == "close", CHANGED
        conn.close()


def test_plain_uvicorn_closes_idle_connections_under_the_client():
    """The behaviour ServingProtocol changes: if this starts failing, uvicorn changed how it
    drains and ServingProtocol.shutdown may no longer be needed (or may be wrong)."""
    with serve(HttpToolsProtocol) as (server, app, port):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        assert get(conn).status == 200
        on_loop(app, lambda: [c.shutdown() for c in server.server_state.connections])
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            get(conn)
        conn.close()


def test_drain_closes_a_connection_after_the_request_in_flight():
    with serve(ServingProtocol) as (server, app, port):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        assert get(conn).status == 200
        on_loop(app, lambda: setattr(app, "release", asyncio.Event()))
        conn.request("GET", "/slow")
        assert app.inside.wait(10)
        on_loop(app, lambda: [c.shutdown() for c in server.server_state.connections])
        on_loop(app, lambda: app.release.set())
        response = conn.getresponse()
        assert response.read() == b"ok" and response.status == 200
        assert response.getheader("connection") == "close", CHANGED
        conn.close()
