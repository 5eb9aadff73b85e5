"""The fork server: a Python process that imports a step's libraries once, then forks a
ready process for each start of the step, which skips Python's start-up and the imports.

Run as ``python -m scanflow.engines.local.forkserver MODULE...`` by
:class:`scanflow.engines.local.starters.ForkServerStarter`. It reads one JSON request per
line on standard input::

    {"id": 1, "argv": ["python", "-m", "pkg.mod"], "env": {...}, "cwd": "...", "log": "..."}

and writes one JSON line per event on standard output: ``{"id": 1, "pid": 4242}`` once
the child runs (or ``{"id": 1, "error": "..."}``), ``{"pid": 4242, "exit": 0}`` when it
ends (a negative code is the signal that killed it, as ``subprocess`` reports it). The
child runs ``argv[1:]`` as ``python`` would (a script with its arguments, or ``-m
module``) in its own session, with exactly ``env``, in ``cwd``, its output appended to
``log``. The server is single-threaded (forking is safe) and exits at the end of its
input, when the engine that started it is gone.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import json
import os
import runpy
import selectors
import signal
import sys
import threading
import traceback
from typing import Any


def preload(modules: list[str]) -> None:
    """Import ``modules`` (a name ending in ``?`` only if it is a module); one that fails
    is reported on stderr and left to the step."""
    for name in modules:
        optional = name.endswith("?")  # ``from a import b``: b may be a name, not a module
        name = name.rstrip("?")
        try:
            if optional and importlib.util.find_spec(name) is None:
                continue
            importlib.import_module(name)
        except BaseException as exc:  # noqa: BLE001 - the step imports it again and reports
            if not optional:
                print(f"fork server: could not preload {name}: {exc!r}", file=sys.stderr)


def _python_path(env: dict[str, str], argv: list[str]) -> list[str]:
    """``sys.path`` as ``python argv[1:]`` would start with under ``env``."""
    first = os.path.dirname(os.path.abspath(argv[1])) if argv[1] != "-m" else os.getcwd()
    extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    own = set(os.environ.get("PYTHONPATH", "").split(os.pathsep)) | {"", os.getcwd()}
    rest = [p for p in sys.path[1:] if p not in own]
    return [first, *extra, *rest]


def _run(argv: list[str]) -> int:
    """Run ``argv[1:]`` as the Python command line would; returns the exit code."""
    try:
        if argv[1] == "-m":
            sys.argv = [argv[2], *argv[3:]]
            runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
        else:
            sys.argv = argv[1:]
            runpy.run_path(argv[1], run_name="__main__")
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 - printed as Python would, then exit 1
        traceback.print_exc()
        code = 1
    for thread in threading.enumerate():  # Python waits for non-daemon threads at exit
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    return code


def _child(request: dict[str, Any], keep_out: list[int]) -> None:
    """In the forked child: become the step, run it, never return."""
    code = 1
    try:
        for fd in keep_out:
            os.close(fd)
        os.setsid()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[:] = _python_path(request["env"], request["argv"])
        if "numpy.random" in sys.modules:  # (``random`` reseeds itself after a fork)
            sys.modules["numpy.random"].seed()  # each start draws its own numbers
        code = _run(request["argv"])
    except BaseException:  # noqa: BLE001 - the set-up failed: say why in the step's log
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001, S110 - the log may be gone; exit anyway
                pass
        os._exit(code)


class Server:
    """Forks children on request and reports their ends; one thread, no locks."""

    def __init__(self, requests: int, replies: int) -> None:
        self.requests = os.fdopen(requests, "rb", buffering=0)
        self.replies = os.fdopen(replies, "wb", buffering=0)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.requests, selectors.EVENT_READ, None)
        self.pending = b""

    def _say(self, message: dict[str, Any]) -> None:
        self.replies.write(json.dumps(message).encode() + b"\n")

    def _start(self, request: dict[str, Any]) -> None:
        keep_out = [self.requests.fileno(), self.replies.fileno(), self.selector.fileno()]
        keep_out += [key.fd for key in self.selector.get_map().values() if key.data is not None]
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as exc:
            self._say({"id": request["id"], "error": f"fork failed: {exc}"})
            return
        if pid == 0:
            _child(request, keep_out)
        self.selector.register(os.pidfd_open(pid), selectors.EVENT_READ, pid)
        self._say({"id": request["id"], "pid": pid})

    def _reap(self, key: selectors.SelectorKey) -> None:
        self.selector.unregister(key.fd)
        os.close(key.fd)
        _, status = os.waitpid(key.data, 0)
        self._say({"pid": key.data, "exit": os.waitstatus_to_exitcode(status)})

    def serve(self) -> None:
        """Serve until standard input ends."""
        while True:
            for key, _ in self.selector.select():
                if key.data is not None:
                    self._reap(key)
                    continue
                chunk = self.requests.read(65536)
                if not chunk:
                    return
                self.pending += chunk
                *lines, self.pending = self.pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        self._start(json.loads(line))


def main() -> None:
    """Preload the modules named on the command line, say ``ready``, then serve."""
    requests, replies = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)  # nothing a preloaded module prints can reach the replies
    os.close(null)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the engine, which stops us
    preload(sys.argv[1:])
    server = Server(requests, replies)
    server._say({"ready": True})
    server.serve()


if __name__ == "__main__":
    main()
