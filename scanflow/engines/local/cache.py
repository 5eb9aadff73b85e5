"""Step cache keys: a digest of code, parameters, input artifacts and environment."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

from scanflow.spec.model import Executor


def tree_digest(path: Path) -> str:
    """Digest of a file or folder: relative names and contents, in sorted order."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(str(file.relative_to(path) if file != path else file.name).encode())
        digest.update(b"\0")
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def source_file(executor: Executor, base_dir: Path) -> Path | None:
    """The file of the executor's code: its script or notebook, or the source file of its
    function's module (None when it cannot be found)."""
    path = executor.script or executor.notebook
    if path is not None:
        return base_dir / path
    module = executor.function.split(":", 1)[0]  # type: ignore[union-attr]
    sys.path.insert(0, str(base_dir))
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    finally:
        sys.path.remove(str(base_dir))
    origin = spec.origin if spec is not None else None
    return Path(origin) if origin and os.path.isfile(origin) else None


def code_digest(executor: Executor, base_dir: Path) -> str:
    """Digest of the executor's code: its script or notebook, or the source file of its
    function's module."""
    path = source_file(executor, base_dir)
    if path is not None:
        return tree_digest(path)
    return hashlib.sha256(executor.function.encode()).hexdigest()  # type: ignore[union-attr]


def cache_key(
    executor: Executor,
    base_dir: Path,
    parameters: dict[str, Any],
    input_digests: dict[str, str],
    python: str,
    requirements: list[str],
) -> str:
    """The key under which a step's outputs are cached."""
    material = {
        "code": code_digest(executor, base_dir),
        "entry": executor.script or executor.function or executor.notebook,
        "parameters": parameters,
        "inputs": input_digests,
        "outputs": sorted(executor.outputs),
        "env": executor.env,
        "requirements": sorted(requirements),
        "python": python if python != sys.executable else sys.version,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()
