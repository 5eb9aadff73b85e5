"""What a fork server imports before it forks a step: the libraries the step's code
imports, read from its source (and from the application's own modules it imports), never
the application's modules themselves, which may change between runs; MLflow's client and
store when the step logs."""

from __future__ import annotations

import ast
from pathlib import Path

from scanflow.engines.local.cache import source_file
from scanflow.spec.model import Executor

LOGGING_PACKAGES = frozenset({"mlflow", "scanflow"})  # importers of these log to MLflow
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
MAX_FILES = 50  # application modules read, at most


def module_imports(tree: ast.AST) -> set[str]:
    """Absolute module names ``tree`` imports anywhere; ``from a import b`` gives ``a``
    and ``a.b?`` (``?``: import it only if it is a module)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}?" for a in node.names if a.name != "*")
    return found


def _local_file(module: str, base_dir: Path) -> Path | None:
    """The application's file for ``module`` (None for a library)."""
    path = base_dir.joinpath(*module.rstrip("?").split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_local(module: str, base_dir: Path) -> bool:
    top = base_dir / module.rstrip("?").split(".")[0]
    return top.is_dir() or top.with_suffix(".py").is_file()


def preload_modules(
    executor: Executor, base_dir: Path, tracking_uri: str | None
) -> tuple[str, ...]:
    """The modules to import before forking ``executor``'s process, in a stable order."""
    start = source_file(executor, base_dir)
    if start is None or start.suffix != ".py":
        return ()
    libraries: set[str] = set()
    seen: set[Path] = set()
    queue = [start]
    while queue and len(seen) < MAX_FILES:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        except (OSError, SyntaxError, ValueError):
            continue  # the step reports it when it runs
        for module in module_imports(tree):
            if not _is_local(module, base_dir):
                libraries.add(module)
            elif (local := _local_file(module, base_dir)) is not None:
                queue.append(local)
    if {m.rstrip("?").split(".")[0] for m in libraries} & LOGGING_PACKAGES:
        libraries.add("mlflow.tracking")
        if tracking_uri and tracking_uri.split(":", 1)[0].split("+")[0] in DATABASE_SCHEMES:
            libraries.add("mlflow.store.tracking.sqlalchemy_store")
    return tuple(sorted(libraries))
