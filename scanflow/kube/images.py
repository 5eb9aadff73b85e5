"""Which image each component of an application runs: one function, :func:`image_for`.

Images come, first found, from ``--image NAME=REF`` (the ``overrides``), from
``.scanflow/images.json`` written by ``scanflow build`` (``{"component": "ref"}``), and for
third-party parts of the tracker stack (``postgres``, ``s3``) from pinned public images.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from scanflow.errors import KubeError

if TYPE_CHECKING:
    from scanflow.spec.loader import Project

IMAGES_FILE = "images.json"  # in the project's state directory
APP_DIR = "/app"  # where an image built by ``scanflow build`` holds the application folder
THIRD_PARTY = {
    "postgres": "docker.io/library/postgres:16.4",
    "s3": "docker.io/chrislusf/seaweedfs:3.80",
}


def parse_overrides(pairs: Iterable[str]) -> dict[str, str]:
    """``["web=reg/web:1", ...]`` as a dict; a pair without ``=`` is a :class:`KubeError`."""
    found: dict[str, str] = {}
    for pair in pairs:
        name, sep, ref = pair.partition("=")
        if not sep or not name.strip() or not ref.strip():
            raise KubeError(f"--image {pair!r} is not NAME=REF (e.g. --image digits=reg/digits:1)")
        found[name.strip()] = ref.strip()
    return found


def built_images(project: Project) -> dict[str, str]:
    """What ``scanflow build`` recorded, or nothing."""
    path = project.state_dir / IMAGES_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise KubeError(f"{path} is not valid JSON ({exc}); run scanflow build again") from None
    if not isinstance(data, dict):
        raise KubeError(f"{path} must map component names to image references")
    images = data.get("images", data)
    return {str(k): v if isinstance(v, str) else str(v.get("ref", "")) for k, v in images.items()}


def image_for(project: Project, component: str, overrides: Mapping[str, str] | None = None) -> str:
    """The image of ``component`` (a service, agent, ``tracker``, ``postgres``, ``s3``);
    ``overrides`` may also give ``*`` for every component of the application."""
    overrides = overrides or {}
    for source in (overrides, built_images(project)):
        if source.get(component):
            return source[component]
    if component in THIRD_PARTY:
        return THIRD_PARTY[component]
    if overrides.get("*"):
        return overrides["*"]
    raise KubeError(
        f"no image for {component!r} of application {project.app.name!r}: run scanflow build "
        f"first or pass --image {component}=REF"
    )
