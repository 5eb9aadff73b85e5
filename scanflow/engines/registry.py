"""Engines by name, as MLflow picks stores by URI scheme.

Built-in engines are listed here; any installed package adds one with an entry point in
the group ``scanflow.engines`` whose value is a factory called as
``factory(project, **options)`` that returns an :class:`~scanflow.engines.base.Engine`::

    [project.entry-points."scanflow.engines"]
    kubernetes = "my_package.engine:KubernetesEngine"

Importing this module is cheap: engines are imported when first created.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from scanflow.errors import EngineError

if TYPE_CHECKING:
    from scanflow.engines.base import Engine
    from scanflow.spec.loader import Project

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "scanflow.engines"
DEFAULT_TARGET = "local"
BUILTIN: dict[str, str] = {
    "local": "scanflow.engines.local.engine:LocalEngine",
    "kubernetes": "scanflow.engines.kubernetes.engine:KubernetesEngine",
}

EngineFactory = Callable[..., "Engine"]
_registered: dict[str, EngineFactory | str] = {}


def register(name: str, factory: EngineFactory | str) -> None:
    """Make ``factory`` (or ``"module:attribute"``) the engine called ``name`` in this process."""
    _registered[name] = factory


def unregister(name: str) -> None:
    """Forget an engine added with :func:`register`."""
    _registered.pop(name, None)


def _plugins() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def engine_names() -> list[str]:
    """The names of every known engine: built in, installed plug-ins, registered here."""
    return sorted({*BUILTIN, *_plugins(), *_registered})


def unknown_engine(name: str) -> str:
    """The message for an engine name nobody registered."""
    return (
        f"unknown engine {name!r}; known engines: {', '.join(engine_names())} "
        f"(a package adds one with an entry point in the group {ENTRY_POINT_GROUP!r})"
    )


def check_name(name: str) -> str:
    """``name`` if an engine has it, else :class:`~scanflow.errors.EngineError`."""
    if name not in engine_names():
        raise EngineError(unknown_engine(name))
    return name


def _factory(name: str) -> EngineFactory:
    source: Any = _registered.get(name) or BUILTIN.get(name)
    if source is None:
        plugin = _plugins().get(name)
        if plugin is None:
            raise EngineError(unknown_engine(name))
        try:
            return plugin.load()
        except Exception as exc:  # noqa: BLE001 - a broken plug-in is reported, not raised raw
            raise EngineError(f"engine {name!r} ({plugin.value}) failed to load: {exc}") from exc
    if isinstance(source, str):
        module, _, attribute = source.partition(":")
        return getattr(importlib.import_module(module), attribute)
    return source


def target_of(project: Project, target: str | None = None) -> str:
    """The engine name to use: ``target`` when given, else the application's ``target``."""
    return target or getattr(project.app, "target", None) or DEFAULT_TARGET


def get_engine(project: Project, target: str | None = None, **options: Any) -> Engine:
    """The engine ``target`` (default: the application's ``target:``) for ``project``."""
    name = target_of(project, target)
    engine = _factory(name)(project, **options)
    log.debug("engine %s for application %s", name, project.app.name)
    return engine
