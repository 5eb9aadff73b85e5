"""Running the external programs of a build (buildah, docker, skopeo, crane) with clear errors.

Every program's output goes to a log file; lines that show progress are handed to a
callback; a failure raises :class:`~scanflow.errors.BuildError` with the output's tail.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from scanflow.errors import BuildError

log = logging.getLogger(__name__)

TOOLS_DIR = "SCANFLOW_TOOLS_DIR"  # where scripts/install.sh puts crane
TAIL_LINES = 20
LineCallback = Callable[[str], None]


def tools_dir() -> Path:
    """Extra folder searched for build programs: ``$SCANFLOW_TOOLS_DIR`` or
    ``~/.cache/scanflow/bin``."""
    return Path(os.environ.get(TOOLS_DIR) or Path.home() / ".cache" / "scanflow" / "bin")


def find_tool(name: str, *folders: str) -> str | None:
    """The path of program ``name`` on ``PATH``, in :func:`tools_dir` or in ``folders``."""
    path = os.pathsep.join([str(tools_dir()), *folders])
    return shutil.which(name) or shutil.which(name, path=path)


def require_tool(name: str, why: str, install: str) -> str:
    """The path of ``name``; :class:`BuildError` saying how to install it when missing."""
    path = find_tool(name)
    if path is None:
        raise BuildError(
            f"{name} is not installed, and {why}; install it ({install}) or run "
            "'bash scripts/install.sh' in Scanflow's checkout"
        )
    return path


def run_tool(
    command: list[str],
    what: str,
    log_path: Path | None = None,
    on_line: LineCallback | None = None,
) -> str:
    """Run ``command``; its output (stdout and stderr) is returned, logged to ``log_path``
    and passed line by line to ``on_line``. Failure: :class:`BuildError` naming ``what``."""
    log.debug("running %s", " ".join(command))
    try:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise BuildError(f"could not {what}: cannot start {command[0]}: {exc}") from None
    lines: list[str] = []
    sink = open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if sink:
                sink.write(line)
            if on_line:
                on_line(line.rstrip("\n"))
        code = proc.wait()
    finally:
        if sink:
            sink.close()
    if code != 0:
        tail = "".join(lines[-TAIL_LINES:]).rstrip() or "(no output)"
        where = f" (full output in {log_path})" if log_path else ""
        raise BuildError(
            f"could not {what}: {Path(command[0]).name} exited with {code}{where}:\n{tail}"
        )
    return "".join(lines)
