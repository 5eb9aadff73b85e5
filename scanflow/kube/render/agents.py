"""An agent on a cluster: its ServiceAccount and least-privilege Role (:mod:`.rbac`), and a
Deployment (one pod running ``scanflow agents up NAME``) with a Service for its HTTP API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scanflow.build.content import APP_DIR
from scanflow.kube.names import dns_label
from scanflow.kube.render import rbac
from scanflow.kube.render.context import AGENT_PORT
from scanflow.kube.render.secrets import TOKEN_SECRET
from scanflow.kube.render.store import store_env
from scanflow.kube.render.workloads import container, deployment, http_probe, secret_env, service

if TYPE_CHECKING:
    from scanflow.kube.render.context import Context
    from scanflow.spec.model import Agent

KIND = "agent"


def name_of(agent: Agent) -> str:
    """The name of the agent's objects (ServiceAccount, Role, Deployment, Service...)."""
    return dns_label("agent", agent.name)


def agent_command(ctx: Context, agent: Agent) -> list[str]:
    """The command of the agent's pod: the same ``scanflow agents up`` as on one machine,
    acting on the Kubernetes engine."""
    return [
        "scanflow",
        "--app",
        APP_DIR,
        "agents",
        "up",
        agent.name,
        "--port",
        str(AGENT_PORT),
        "--target",
        "kubernetes",
    ]


def render(ctx: Context, agent: Agent) -> list[object]:
    """Every object of ``agent``."""
    from kubernetes.client import V1EnvVar

    name = name_of(agent)
    env = [secret_env("SCANFLOW_TOKEN", TOKEN_SECRET, "token"), *store_env(ctx)]
    uri = ctx.tracking_uri()
    if uri:
        env.append(V1EnvVar(name="MLFLOW_TRACKING_URI", value=uri))
    main = container(
        "agent",
        ctx.image(agent.name, "agent"),
        agent_command(ctx, agent),
        port=AGENT_PORT,
        env=env,
        probes=(http_probe("/health", "http", 10), http_probe("/health", "http", 20)),
        mount=f"{APP_DIR}/.scanflow",  # its state, unless the store is shared (SCANFLOW_STORE_URI)
    )
    return [
        *rbac.render(ctx, agent, name),
        deployment(ctx, name, agent.name, KIND, main, replicas=1, service_account=name),
        service(ctx, name, agent.name, KIND, AGENT_PORT),
    ]
