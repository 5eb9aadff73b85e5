"""Which image each component of an application runs: one function, :func:`image_for`.

Images come, first found, from ``--image NAME=REF`` (the ``overrides``, by plain name or
``KIND/NAME``), from what ``scanflow build`` recorded (:mod:`scanflow.build.records`,
pinned by digest when the registry gave one), and for third-party parts of the tracker
stack (``postgres``, ``s3``) from images named by the spec's defaults below.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from scanflow.errors import BuildError, KubeError

if TYPE_CHECKING:
    from scanflow.spec.loader import Project

THIRD_PARTY = {  # short names: the cluster's container runtime resolves (or mirrors) them
    "postgres": "postgres:16.4",
    "s3": "chrislusf/seaweedfs:3.80",
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


def image_for(
    project: Project,
    component: str,
    overrides: Mapping[str, str] | None = None,
    kind: str | None = None,
) -> str:
    """The image of ``component`` of ``kind`` (``service``, ``agent``; none for ``tracker``,
    ``postgres``, ``s3``); ``overrides`` may also give ``*`` for every built component."""
    from scanflow.build.records import image_for as built

    overrides = overrides or {}
    key = f"{kind}/{component}" if kind else component
    for name in (key, component):
        if overrides.get(name):
            return overrides[name]
    if kind:
        try:
            return built(project, key).pinned
        except BuildError:
            pass
    if component in THIRD_PARTY:
        return THIRD_PARTY[component]
    if overrides.get("*"):
        return overrides["*"]
    raise KubeError(
        f"no image for {key!r} of application {project.app.name!r}: run scanflow build "
        f"first or pass --image {component}=REF"
    )
