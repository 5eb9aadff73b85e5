"""The supervisor <-> worker channel: JSON lines over a socket pair.

Supervisor to worker: ``stage`` (load a version under a generation), ``drop`` (forget a
generation), ``drain`` (stop accepting, finish, exit), ``reply`` (answer to an ``rpc``).
Worker to supervisor: ``ready`` (with its start-up durations), ``staging`` (the phase a
stage reached), ``staged`` (ok with durations, or the error), ``rpc`` (admin calls made on
the HTTP port: ``status``, ``scale``, ``refresh``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import socket
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


class SupervisorEnd:
    """The supervisor's (blocking, selector-driven) end of one worker's channel."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, message: dict[str, Any]) -> bool:
        """Send one message; False when the worker is gone."""
        try:
            self.sock.sendall(json.dumps(message, default=str).encode() + b"\n")
            return True
        except OSError:
            return False

    def receive(self) -> list[dict[str, Any]] | None:
        """Messages readable now; None at end of stream (the worker exited)."""
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError:
            return None
        if not data:
            return None
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    def close(self) -> None:
        self.sock.close()


class WorkerEnd:
    """The worker's asyncio end: dispatches supervisor messages and makes ``rpc`` calls."""

    def __init__(self, sock: socket.socket, handlers: dict[str, Callable[[dict], Any]]) -> None:
        self.sock = sock
        self.handlers = handlers
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        reader, self._writer = await asyncio.open_connection(sock=self.sock)
        self._task = asyncio.get_running_loop().create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            line = await reader.readline()
            if not line:
                logger.warning("supervisor channel closed")
                handler = self.handlers.get("drain")
                if handler:
                    handler({})
                return
            message = json.loads(line)
            op = message.get("op")
            if op == "reply":
                fut = self._waiting.pop(message.get("id"), None)
                if fut is not None and not fut.done():
                    fut.set_result(message.get("result"))
                continue
            handler = self.handlers.get(op)
            if handler is None:
                logger.warning("unknown control message %r", op)
                continue
            try:
                handler(message)
            except Exception:
                logger.exception("control handler %s failed", op)

    def notify(self, op: str, **fields: Any) -> None:
        """Send a message that expects no reply."""
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(json.dumps({"op": op, **fields}, default=str).encode() + b"\n")

    async def call(self, method: str, params: dict[str, Any], timeout: float = 60.0) -> Any:
        """Ask the supervisor and wait for its answer (longer when it was asked to wait)."""
        if params.get("wait"):
            timeout = max(timeout, float(params.get("timeout", 30)) + 10)
        ident = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._waiting[ident] = fut
        self.notify("rpc", id=ident, method=method, params=params)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            self._waiting.pop(ident, None)
            return {
                "error": f"the supervisor did not answer {method!r} within {timeout} s",
                "status": 504,
            }
