"""uvicorn's httptools protocol with two changes for a pool of workers on one socket.

- ``TCP_NODELAY`` on every accepted socket: without it small responses wait for the
  peer's delayed ACK (tens of milliseconds) when several processes share the listener.
- A graceful drain that never drops a request: when a worker retires, an idle keep-alive
  connection is not closed under the client (whose next request may already be on the
  wire); its next request is answered with ``Connection: close`` and the client reconnects
  to another worker. Connections idle past the keep-alive timeout close as usual.

uvicorn has no public hook for either, so :class:`ServingProtocol` overrides three methods
of its ``HttpToolsProtocol`` and reads its ``cycle`` (``keep_alive``,
``response_complete``). pyproject pins uvicorn to the versions this is tested with, and
:func:`base_mismatches` (checked at import) refuses a uvicorn whose class has changed.
"""

from __future__ import annotations

import asyncio
import inspect
import socket

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from scanflow.serving.errors import ServingError

# the methods overridden, with the parameters uvicorn calls them with
OVERRIDDEN = {
    "connection_made": ["self", "transport"],
    "on_headers_complete": ["self"],
    "shutdown": ["self"],
}


def base_mismatches(base: type = HttpToolsProtocol) -> list[str]:
    """What in uvicorn's protocol class differs from what :class:`ServingProtocol` expects."""
    problems = []
    for name, params in OVERRIDDEN.items():
        method = getattr(base, name, None)
        if not callable(method):
            problems.append(f"{base.__name__}.{name} is gone")
        elif list(inspect.signature(method).parameters) != params:
            got = list(inspect.signature(method).parameters)
            problems.append(f"{base.__name__}.{name} takes {got}, expected {params}")
    return problems


if _problems := base_mismatches():
    raise ServingError(
        f"uvicorn {uvicorn.__version__} changed the private protocol class scanflow's serving "
        f"workers extend ({'; '.join(_problems)}); install the uvicorn version range "
        "scanflow's pyproject.toml pins"
    )


class ServingProtocol(HttpToolsProtocol):
    """HTTP/1.1 protocol for serving workers (see module docstring)."""

    _close_after_next = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        super().connection_made(transport)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self._close_after_next and self.cycle is not None:
            self.cycle.keep_alive = False

    def shutdown(self) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self._close_after_next = True
        else:
            self.cycle.keep_alive = False
