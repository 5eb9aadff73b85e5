"""Per-executor Python environments: one virtualenv per requirements digest, made once, reused.

An environment sees its own packages first, then those of the interpreter running
Scanflow (so ``scanflow.tracking`` and MLflow stay importable in steps).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

from filelock import FileLock

from scanflow.errors import BuildError

log = logging.getLogger(__name__)

ENV_CACHE = "SCANFLOW_ENV_CACHE"
_COMPLETE = ".scanflow-complete"


def read_requirements(requirements: list[str] | str, base_dir: Path) -> list[str]:
    """Requirement lines from a list, or from a requirements file relative to ``base_dir``."""
    if isinstance(requirements, list):
        return [r.strip() for r in requirements if r.strip()]
    path = base_dir / requirements
    if not path.is_file():
        raise BuildError(f"requirements file {path} not found; fix 'requirements' of the executor")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def requirements_digest(lines: list[str]) -> str:
    """Digest of the requirement set and the Python version (order and case do not matter)."""
    text = "\n".join(sorted(line.lower() for line in lines))
    return hashlib.sha256(f"{sys.version}\n{text}".encode()).hexdigest()[:16]


def env_cache_root() -> Path:
    """Where environments live: ``$SCANFLOW_ENV_CACHE`` or ``~/.cache/scanflow/envs``."""
    return Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "scanflow" / "envs")


def ensure_environment(lines: list[str], root: Path | None = None) -> str:
    """The Python interpreter of an environment holding ``lines``; created on first use.

    Returns ``sys.executable`` when there are no requirements. Concurrent callers wait on
    a file lock; a half-built environment (interrupted creation) is rebuilt.
    """
    if not lines:
        return sys.executable
    root = root or env_cache_root()
    root.mkdir(parents=True, exist_ok=True)
    path = root / requirements_digest(lines)
    python = path / "bin" / "python"
    if (path / _COMPLETE).exists():
        return str(python)
    with FileLock(root / f"{path.name}.lock"):
        if (path / _COMPLETE).exists():
            return str(python)
        shutil.rmtree(path, ignore_errors=True)
        log.info("creating environment %s for %s", path, ", ".join(lines))
        _create(path, lines)
        (path / _COMPLETE).write_text("\n".join(lines) + "\n")
    return str(python)


def _create(path: Path, lines: list[str]) -> None:
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    python = path / "bin" / "python"
    if uv:
        steps = [
            [uv, "venv", "-q", "--python", sys.executable, str(path)],
            [uv, "pip", "install", "-q", "--python", str(python), *lines],
        ]
    else:
        steps = [
            [sys.executable, "-m", "venv", str(path)],
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *lines],
        ]
    for i, command in enumerate(steps):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            shutil.rmtree(path, ignore_errors=True)
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
            what = "create the virtualenv" if i == 0 else f"install {', '.join(lines)}"
            raise BuildError(f"could not {what} in {path}:\n{tail}")
        if i == 0:
            _link_parent_packages(path)


def _link_parent_packages(path: Path) -> None:
    """Let the new environment import what the running interpreter has, after its own."""
    site_dirs = sorted((path / "lib").glob("python*/site-packages"))
    parents = [d for d in site.getsitepackages() if Path(d).is_dir()]
    lines = [f"import site; site.addsitedir({d!r})" for d in parents]
    (site_dirs[0] / "_scanflow_parent.pth").write_text("\n".join(lines) + "\n")
