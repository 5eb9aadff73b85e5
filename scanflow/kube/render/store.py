"""The shared state store of pods: the managed tracker's PostgreSQL (its database, in the
store's own schema), named by ``SCANFLOW_STORE_URI``.

The URL is assembled by Kubernetes from variables read from the tracker's database Secret
(``$(VAR)`` references), so no credential is ever written in a manifest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scanflow.kube.render.tracker import DB, DB_PORT
from scanflow.kube.render.workloads import secret_env
from scanflow.store.config import ENV_STORE_URI

if TYPE_CHECKING:
    from kubernetes.client import V1EnvVar

    from scanflow.kube.render.context import Context

USER, PASSWORD, DATABASE = "SCANFLOW_DB_USER", "SCANFLOW_DB_PASSWORD", "SCANFLOW_DB_NAME"


def shared(ctx: Context) -> bool:
    """Whether the application's pods share a store: only with a managed tracker."""
    tracker = ctx.app.tracker
    return tracker is not None and tracker.managed


def store_env(ctx: Context) -> list[V1EnvVar]:
    """The variables that point a pod at the shared store (none without one)."""
    from kubernetes.client import V1EnvVar

    if not shared(ctx):
        return []
    url = f"postgresql://$({USER}):$({PASSWORD})@{DB}:{DB_PORT}/$({DATABASE})"
    return [
        secret_env(USER, DB, "username"),
        secret_env(PASSWORD, DB, "password"),
        secret_env(DATABASE, DB, "database"),
        V1EnvVar(name=ENV_STORE_URI, value=url),
    ]
