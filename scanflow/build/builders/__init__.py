"""Image builders by name, as engines are (see :mod:`scanflow.engines.registry`).

Built in: ``buildah``, ``docker`` and ``kaniko``; ``auto`` is ``docker`` when a Docker
engine answers ``docker info``, else ``buildah``. A package adds a builder with an entry
point in the group ``scanflow.builders`` whose value is a factory called as
``factory(project)`` that returns a :class:`~scanflow.build.builders.base.Builder`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from scanflow.errors import BuildError

if TYPE_CHECKING:
    from scanflow.build.builders.base import Builder
    from scanflow.spec.loader import Project

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "scanflow.builders"
AUTO = "auto"
BUILTIN: dict[str, str] = {
    "buildah": "scanflow.build.builders.buildah:BuildahBuilder",
    "docker": "scanflow.build.builders.docker:DockerBuilder",
    "kaniko": "scanflow.build.builders:_kaniko",
}

BuilderFactory = Callable[..., "Builder"]
_registered: dict[str, BuilderFactory | str] = {}


def register(name: str, factory: BuilderFactory | str) -> None:
    """Make ``factory`` (or ``"module:attribute"``) the builder called ``name``."""
    _registered[name] = factory


def unregister(name: str) -> None:
    """Forget a builder added with :func:`register`."""
    _registered.pop(name, None)


def _plugins() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def builder_names() -> list[str]:
    """Every known builder name (``auto`` included)."""
    return sorted({AUTO, *BUILTIN, *_plugins(), *_registered})


def resolve_name(name: str) -> str:
    """``name``, with ``auto`` replaced by ``docker`` or ``buildah``."""
    if name != AUTO:
        return name
    from scanflow.build.builders.docker import engine_answers

    return "docker" if engine_answers() else "buildah"


def get_builder(project: Project, name: str | None = None) -> Builder:
    """The builder ``name`` (default: the application's ``build.builder``), checked to work
    here: an unknown name or a missing program is a :class:`BuildError`."""
    wanted = resolve_name(name or project.app.build.builder)
    builder = _factory(wanted)(project)
    builder.check()
    log.debug("builder %s for application %s", wanted, project.app.name)
    return builder


def _factory(name: str) -> BuilderFactory:
    source: Any = _registered.get(name) or BUILTIN.get(name)
    if source is None:
        plugin = _plugins().get(name)
        if plugin is None:
            raise BuildError(
                f"unknown builder {name!r}; known builders: {', '.join(builder_names())} "
                f"(set 'build.builder' in scanflow.yaml or pass --builder; a package adds "
                f"one with an entry point in the group {ENTRY_POINT_GROUP!r})"
            )
        try:
            return plugin.load()
        except Exception as exc:  # noqa: BLE001 - a broken plug-in is reported, not raised raw
            raise BuildError(f"builder {name!r} ({plugin.value}) failed to load: {exc}") from exc
    if isinstance(source, str):
        module, _, attribute = source.partition(":")
        factory = getattr(importlib.import_module(module), attribute)
        if isinstance(factory, type):
            return lambda project: factory()
        return factory
    return source


def _kaniko(project: Project) -> Builder:
    from scanflow.build.builders.kaniko import KanikoBuilder
    from scanflow.kube.names import namespace_of

    kube = project.app.kubernetes
    secret = kube.image_pull_secrets[0] if kube.image_pull_secrets else None
    return KanikoBuilder(
        namespace=namespace_of(project.app),
        pull_secret=secret,
        image=project.app.build.kaniko_image,
    )
