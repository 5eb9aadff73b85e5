"""What a workflow run needs to run again: its spec and the files the spec names, as one folder.

A bundle holds ``scanflow.yaml`` (the spec the run ran), every script, requirements file
and ``module:function`` module the spec names, the other ``.py`` files of the app folder
(steps import their neighbours), and the files or folders that parameters name inside the
app folder (small data); beyond what the spec names, only up to :data:`MAX_BYTES` in all.
``.scanflow/``, virtualenvs, ``.git`` and caches are never taken. Its digest (names and
contents) lets a receiver verify what it fetched.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanflow.errors import TrackingError
from scanflow.spec.model import Application

log = logging.getLogger(__name__)

ARTIFACT_DIR = "app"
DIGEST_TAG = "scanflow.app.digest"
SPEC_FILE = "scanflow.yaml"
ENV_MAX_MB = "SCANFLOW_APP_BUNDLE_MAX_MB"
MAX_BYTES = 64 * 2**20
SKIP_DIRS = frozenset(
    {
        ".scanflow",
        ".git",
        ".hg",
        "__pycache__",
        "node_modules",
        ".venv",
        "venv",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
    }
)


@dataclass
class Bundle:
    """A bundle folder, its digest and the relative paths it holds (or had to leave out)."""

    path: Path
    digest: str
    files: list[str]
    skipped: list[str] = field(default_factory=list)


def max_bytes() -> int:
    """The size bound of a bundle (``$SCANFLOW_APP_BUNDLE_MAX_MB``, else 64 MiB)."""
    value = os.environ.get(ENV_MAX_MB)
    return int(float(value) * 2**20) if value else MAX_BYTES


def digest(folder: Path) -> str:
    """SHA-256 of the bundle's relative file names and contents."""
    from scanflow.engines.local.cache import tree_digest

    return tree_digest(folder)


def snapshot(app: Application, spec_text: str, base_dir: Path, target: Path) -> Bundle:
    """Copy what ``app`` needs from ``base_dir`` into ``target`` (kept when it exists).

    What the spec names (scripts, modules, requirements files) is always taken; the other
    ``.py`` files, then data named by parameters, while the bundle stays under
    :func:`max_bytes` (what is left out is listed in :attr:`Bundle.skipped`).
    """
    base_dir = base_dir.resolve()
    if (target / SPEC_FILE).is_file():  # a resumed run keeps the files it started with
        return _describe(target, [])
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    budget, skipped = max_bytes(), []
    used = 0
    named = sorted(set(_code_files(app, base_dir)))
    for rel in named:  # always: the run cannot start without them
        used += _copy(base_dir / rel, staging / rel)
    for rel in _neighbour_modules(base_dir, set(named)):
        size = (base_dir / rel).stat().st_size
        if used + size > budget:
            skipped.append(str(rel))
            continue
        used += _copy(base_dir / rel, staging / rel)
    for rel in _data_paths(app, base_dir):
        files = (
            [rel]
            if (base_dir / rel).is_file()
            else [f.relative_to(base_dir) for f in _walk(base_dir / rel)]
        )
        size = sum((base_dir / f).stat().st_size for f in files)
        if used + size > budget:
            skipped.append(str(rel))
            log.warning(
                "app bundle: %s (%d bytes) left out, the bundle would exceed %d bytes (raise %s)",
                rel,
                size,
                budget,
                ENV_MAX_MB,
            )
            continue
        for f in files:
            used += _copy(base_dir / f, staging / f)
    (staging / SPEC_FILE).write_text(spec_text, encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    return _describe(target, skipped)


def restore(bundle_dir: Path, expected: str, dest: Path, *, force: bool = False) -> list[str]:
    """Copy a fetched bundle into ``dest`` once its digest is ``expected``; returns the files.

    A mismatch writes nothing; a non-empty ``dest`` is refused unless ``force``.
    """
    from scanflow.tracking.publish import DigestMismatchError

    found = digest(bundle_dir)
    if found != expected:
        raise DigestMismatchError(
            f"the fetched application files have digest {found[:16]}…, but the run records "
            f"{expected[:16]}… ({DIGEST_TAG}); they were changed after the run stored them. "
            "Nothing was written"
        )
    check_destination(dest, force=force)
    files = [str(f.relative_to(bundle_dir)) for f in _walk(bundle_dir, skip=frozenset())]
    for rel in files:
        _copy(bundle_dir / rel, dest / rel)
    return files


def check_destination(dest: Path, *, force: bool = False) -> None:
    """Refuse a destination that is a file, or a folder with files in it (unless ``force``)."""
    if dest.exists() and not dest.is_dir():
        raise TrackingError(f"{dest} exists and is not a folder; pass another --dest")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise TrackingError(
            f"{dest} is not empty; pass an empty or new folder with --dest, or --force to "
            "write the application's files over what is there"
        )


# -- what the spec names ----------------------------------------------------------------
def _code_files(app: Application, base_dir: Path) -> Iterator[Path]:
    for workflow in app.workflows:
        for executor in workflow.executors:
            if executor.script:
                yield from _inside(base_dir, executor.script, required=True)
            if isinstance(executor.requirements, str):
                yield from _inside(base_dir, executor.requirements, required=True)
            if executor.function:
                yield from _module_files(base_dir, executor.function.split(":", 1)[0])


def _neighbour_modules(base_dir: Path, named: set[Path]) -> Iterator[Path]:
    """The app folder's other ``.py`` files (steps import their neighbours)."""
    for path in _walk(base_dir):
        rel = path.relative_to(base_dir)
        if path.suffix == ".py" and rel not in named:
            yield rel


def _module_files(base_dir: Path, module: str) -> Iterator[Path]:
    parts = module.split(".")
    for i in range(1, len(parts) + 1):  # packages on the way, then the module itself
        package = base_dir.joinpath(*parts[:i])
        if package.is_dir():
            yield from (f.relative_to(base_dir) for f in _walk(package) if f.suffix == ".py")
    file = base_dir.joinpath(*parts[:-1], parts[-1] + ".py")
    if file.is_file():
        yield file.relative_to(base_dir)


def _data_paths(app: Application, base_dir: Path) -> list[Path]:
    values: list[Any] = []
    for workflow in app.workflows:
        values += list(workflow.parameters.values())
        for executor in workflow.executors:
            values += list(executor.parameters.values())
    found: list[Path] = []
    for value in _strings(values):
        if "://" in value or not value.strip() or "\n" in value:
            continue
        for rel in _inside(base_dir, value, required=False):
            if rel not in found:
                found.append(rel)
    return found


def _strings(values: Iterable[Any]) -> Iterator[str]:
    for value in values:
        if isinstance(value, str):
            yield value
        elif isinstance(value, list | tuple):
            yield from _strings(value)
        elif isinstance(value, dict):
            yield from _strings(value.values())


def _inside(base_dir: Path, name: str, *, required: bool) -> Iterator[Path]:
    """``name`` relative to ``base_dir`` when it exists there (and not in a skipped folder)."""
    try:
        path = (base_dir / name).resolve()
        rel = path.relative_to(base_dir)
    except (ValueError, OSError):
        return
    if rel == Path(".") or any(part in SKIP_DIRS for part in rel.parts) or not path.exists():
        if required:
            log.warning("app bundle: %s is not in %s; left out", name, base_dir)
        return
    yield rel


def _walk(folder: Path, skip: frozenset[str] = SKIP_DIRS) -> Iterator[Path]:
    """Files under ``folder``, sorted, without skipped folders, virtualenvs or symlinked dirs."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in skip
            and not (Path(root, d) / "pyvenv.cfg").exists()
            and not Path(root, d).is_symlink()
        )
        for name in sorted(files):
            yield Path(root, name)


def _copy(source: Path, target: Path) -> int:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target.stat().st_size


def _describe(folder: Path, skipped: list[str]) -> Bundle:
    files = [str(f.relative_to(folder)) for f in _walk(folder, skip=frozenset())]
    return Bundle(folder, digest(folder), files, skipped)
