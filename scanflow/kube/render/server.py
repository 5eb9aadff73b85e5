"""The control server on a cluster: ``scanflow server`` (the API and the dashboard) in one
Deployment with a Service, its state store the managed tracker's PostgreSQL (shared with the
agents and with any ``scanflow`` command given the same ``SCANFLOW_STORE_URI``).

It is rendered with a managed tracker only (without one there is no shared store to show).
Its ServiceAccount may read Deployments and pods, scale services and submit workflows
(the actions of the API), in its namespace only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scanflow.build.content import APP_DIR
from scanflow.errors import KubeError
from scanflow.kube.render import rbac
from scanflow.kube.render.secrets import TOKEN_SECRET
from scanflow.kube.render.store import shared, store_env
from scanflow.kube.render.workloads import container, deployment, http_probe, secret_env, service

if TYPE_CHECKING:
    from kubernetes.client import V1ResourceRequirements

    from scanflow.kube.render.context import Context

NAME = "scanflow-server"  # Deployment, Service, ServiceAccount, Role, RoleBinding
KIND = "server"
PORT = 8070
HEALTH = "/api/health"
CAPABILITIES = ("scale", "retrain")
RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}


def command() -> list[str]:
    """The same ``scanflow server`` as on one machine, listening on every address."""
    return ["scanflow", "--app", APP_DIR, "server", "--host", "0.0.0.0", "--port", str(PORT)]


def image(ctx: Context) -> str:
    """``--image server=REF`` (or ``*``), else the image of an agent of the application
    (it holds the application and the ``scanflow`` command)."""
    candidates = [(NAME, KIND)] + [(a.name, "agent") for a in ctx.app.agents]
    for component, kind in candidates:
        try:
            return ctx.image(component, kind)
        except KubeError:
            continue
    raise KubeError(
        f"no image for the control server of application {ctx.app.name!r}: run scanflow "
        f"build first or pass --image {NAME}=REF (it runs an agent's image)"
    )


def _resources() -> V1ResourceRequirements:
    from kubernetes.client import V1ResourceRequirements

    return V1ResourceRequirements(requests=RESOURCES["requests"], limits=RESOURCES["limits"])


def render(ctx: Context) -> list[object]:
    """The server's objects; none without a shared store."""
    from kubernetes.client import V1EnvVar

    if not shared(ctx):
        return []
    env = [*store_env(ctx), secret_env("SCANFLOW_TOKEN", TOKEN_SECRET, "token")]
    uri = ctx.tracking_uri()
    if uri:
        env.append(V1EnvVar(name="MLFLOW_TRACKING_URI", value=uri))
    main = container(
        "server",
        image(ctx),
        command(),
        port=PORT,
        env=env,
        probes=(http_probe(HEALTH, "http", 10), http_probe(HEALTH, "http", 20)),
        spec_resources=_resources(),
        mount=f"{APP_DIR}/.scanflow",  # caches only: the state is in the shared store
    )
    return [
        *rbac.account(ctx, NAME, NAME, KIND, rbac.rules_of(CAPABILITIES)),
        deployment(ctx, NAME, NAME, KIND, main, replicas=1, service_account=NAME),
        service(ctx, NAME, NAME, KIND, PORT),
    ]
