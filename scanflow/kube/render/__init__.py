"""Manifests of an application, rendered from its spec as typed ``kubernetes`` models:
the namespace, the application's token, the tracker stack, the control server (with a
managed tracker), each service, each agent and each time schedule (a CronWorkflow).

>>> objects = render(project, {"*": "registry.example/digits:1"})  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from scanflow.kube.render import agents, schedules, server, services, tracker
from scanflow.kube.render.context import Context
from scanflow.kube.render.secrets import TOKEN_SECRET, generated

if TYPE_CHECKING:
    from kubernetes.client import V1Namespace

    from scanflow.spec.loader import Project


def namespace(ctx: Context) -> V1Namespace:
    """The application's namespace, labelled as Scanflow's."""
    from kubernetes.client import V1Namespace, V1ObjectMeta

    return V1Namespace(
        api_version="v1",
        kind="Namespace",
        metadata=V1ObjectMeta(name=ctx.namespace, labels=ctx.labels()),
    )


def render(project: Project, overrides: Mapping[str, str] | None = None) -> list[object]:
    """Every object of ``project``'s application, the namespace first, in apply order."""
    ctx = Context(project, overrides or {})
    app = ctx.app
    objects: list[object] = [namespace(ctx)]
    control = server.render(ctx)
    if app.services or app.agents or control:
        objects.append(generated(ctx, TOKEN_SECRET, "scanflow", {"token": None}))
    objects += tracker.render(ctx)
    objects += control
    for spec in app.services:
        objects += services.render(ctx, spec)
    for agent in app.agents:
        objects += agents.render(ctx, agent)
    objects += schedules.render(ctx)
    return objects
