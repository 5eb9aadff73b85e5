"""What goes into an image: the application's code, Scanflow's wheel, and their digests.

Digests are of content only (relative paths, modes and bytes; never timestamps), so the same
folder gives the same digest on any machine and any edit changes it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterable
from pathlib import Path

import scanflow
from scanflow.errors import BuildError

log = logging.getLogger(__name__)

APP_DIR = "/app"  # where the application's code lives in every image
SKIPPED_NAMES = {"__pycache__", "mlruns", "mlartifacts", "node_modules"}
SKIPPED_SUFFIXES = (".pyc", ".pyo")
_WHEEL_CACHE = "SCANFLOW_WHEEL_CACHE"


def code_files(base_dir: Path) -> list[Path]:
    """The application's files, relative and sorted: everything under ``base_dir`` except
    hidden entries (``.scanflow``, ``.git``, ``.venv``...), caches and MLflow's local stores."""
    found: list[Path] = []
    for root, dirs, files in os.walk(base_dir):
        dirs[:] = sorted(d for d in dirs if not _skipped(d))
        for name in sorted(files):
            if not _skipped(name) and not name.endswith(SKIPPED_SUFFIXES):
                found.append((Path(root) / name).relative_to(base_dir))
    return found


def _skipped(name: str) -> bool:
    return name.startswith(".") or name in SKIPPED_NAMES


def files_digest(base_dir: Path, files: Iterable[Path]) -> str:
    """sha256 of the files' relative paths, executable bits and bytes."""
    digest = hashlib.sha256()
    for rel in files:
        path = base_dir / rel
        executable = os.access(path, os.X_OK)
        digest.update(f"{rel.as_posix()}\0{int(executable)}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def code_digest(base_dir: Path) -> str:
    """Digest of the application's code (see :func:`code_files`)."""
    return files_digest(base_dir, code_files(base_dir))


def scanflow_digest() -> str:
    """Digest of the running Scanflow: its version and every file of the package."""
    package = Path(scanflow.__file__).parent
    files = [p.relative_to(package) for p in sorted(package.rglob("*")) if _package_file(p)]
    return hashlib.sha256(
        f"{scanflow.__version__}\0{files_digest(package, files)}".encode()
    ).hexdigest()


def _package_file(path: Path) -> bool:
    return path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".pyc"}


def source_checkout() -> Path:
    """The folder holding Scanflow's ``pyproject.toml`` (the checkout it runs from)."""
    root = Path(scanflow.__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file() or 'name = "scanflow"' not in pyproject.read_text("utf-8"):
        raise BuildError(
            f"Scanflow runs from {root}, which is not a source checkout (no pyproject.toml "
            "naming 'scanflow'); install it with 'pip install -e CHECKOUT' to build images"
        )
    return root


def wheel_cache_root() -> Path:
    """Where built wheels are kept: ``$SCANFLOW_WHEEL_CACHE`` or ``~/.cache/scanflow/wheels``."""
    default = Path.home() / ".cache" / "scanflow" / "wheels"
    return Path(os.environ.get(_WHEEL_CACHE) or default)


def scanflow_wheel() -> Path:
    """A wheel of this Scanflow checkout, built once per :func:`scanflow_digest`."""
    from filelock import FileLock

    folder = wheel_cache_root() / scanflow_digest()[:16]
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{folder}.lock"):
        wheels = sorted(folder.glob("scanflow-*.whl"))
        if wheels:
            return wheels[0]
        shutil.rmtree(folder, ignore_errors=True)
        _build_wheel(source_checkout(), folder)
        wheels = sorted(folder.glob("scanflow-*.whl"))
        if not wheels:
            raise BuildError(f"building Scanflow's wheel left no scanflow-*.whl in {folder}")
        return wheels[0]


def _build_wheel(checkout: Path, out_dir: Path) -> None:
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv:
        command = [uv, "build", "--wheel", "--quiet", "--out-dir", str(out_dir), str(checkout)]
    else:
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out_dir)]
        command.append(str(checkout))
    log.info("building Scanflow's wheel: %s", " ".join(command))
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise BuildError(f"could not build Scanflow's wheel from {checkout}:\n{tail}")


def copy_code(base_dir: Path, target: Path) -> None:
    """Copy the application's code (see :func:`code_files`) into ``target``."""
    for rel in code_files(base_dir):
        destination = target / rel
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(base_dir / rel, destination)


def code_layer(base_dir: Path, path: Path, state_owner: int) -> Path:
    """Write an OCI layer (``tar.gz``) that replaces the image's ``/app`` with the code.

    The layer marks ``/app`` opaque (``.wh..wh..opq``), so files deleted from the
    application are gone from the image too, and keeps ``/app/.scanflow`` (Scanflow's
    state folder) owned by ``state_owner``. Entries are owned by root, world-readable,
    with a fixed time: the same code gives the same layer.
    """
    prefix = APP_DIR.strip("/")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_entry(prefix, tarfile.DIRTYPE, 0o755))
        tar.addfile(_entry(f"{prefix}/.wh..wh..opq", tarfile.REGTYPE, 0o644))
        state = _entry(f"{prefix}/.scanflow", tarfile.DIRTYPE, 0o755)
        state.uid = state.gid = state_owner
        state.uname = state.gname = ""
        tar.addfile(state)
        seen_dirs: set[str] = set()
        for rel in code_files(base_dir):
            for parent in reversed(rel.parents[:-1]):
                name = f"{prefix}/{parent.as_posix()}"
                if name not in seen_dirs:
                    seen_dirs.add(name)
                    tar.addfile(_entry(name, tarfile.DIRTYPE, 0o755))
            data = (base_dir / rel).read_bytes()
            mode = 0o755 if os.access(base_dir / rel, os.X_OK) else 0o644
            info = _entry(f"{prefix}/{rel.as_posix()}", tarfile.REGTYPE, mode)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buffer.getvalue(), mtime=0))
    return path


def _entry(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info
