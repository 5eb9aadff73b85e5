"""Least privilege per agent: a ServiceAccount and a Role/RoleBinding in the application's
namespace whose rules follow from what the agent may do (its strategy, its actuators).

Every agent may read Deployments (readiness and replicas) and pods (why they do not run,
their addresses for metrics). On top of that, by capability:

=========  =========================================================================
scale      get, patch ``deployments/scale`` (apps)
failover   get, patch ``services`` (the Service's selector moves to the backup) and
           ``httproutes`` (gateway.networking.k8s.io: the weights, where used)
retrain    create, get, list, watch ``workflows`` (argoproj.io) and ``jobs`` (batch);
           get, list, watch ``pods`` and get ``pods/log`` (to follow the run)
=========  =========================================================================

No wildcard and no ClusterRole, ever.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubernetes.client import V1PolicyRule

    from scanflow.kube.render.context import Context
    from scanflow.spec.model import Agent

READ: list[tuple[str, str, tuple[str, ...]]] = [
    ("apps", "deployments", ("get", "list", "watch")),
    ("", "pods", ("get", "list", "watch")),
]
CAPABILITIES: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {
    "scale": [("apps", "deployments/scale", ("get", "patch"))],
    "failover": [
        ("", "services", ("get", "patch")),
        ("gateway.networking.k8s.io", "httproutes", ("get", "patch")),
    ],
    "retrain": [
        ("argoproj.io", "workflows", ("create", "get", "list", "watch")),
        ("batch", "jobs", ("create", "get", "list", "watch")),
        ("", "pods", ("get", "list", "watch")),
        ("", "pods/log", ("get",)),
    ],
}
STRATEGIES = {
    "latency-autoscale": {"scale"},
    "failover": {"failover"},
    "drift-retrain": {"retrain"},
}
# a declared actuator whose name holds one of these words needs that capability
ACTUATOR_WORDS = {
    "scale": "scale",
    "failover": "failover",
    "route": "failover",
    "retrain": "retrain",
    "workflow": "retrain",
    "submit": "retrain",
}


def capabilities(agent: Agent) -> set[str]:
    """What ``agent`` may do beyond reading Deployments."""
    found = set(STRATEGIES.get(agent.strategy or "", set()))
    for actuator in agent.actuators:
        words = set(re.split(r"[^a-z]+", actuator.lower()))
        found |= {cap for word, cap in ACTUATOR_WORDS.items() if word in words}
    return found


def rules_for(agent: Agent) -> list[V1PolicyRule]:
    """The Role rules of ``agent``, merged per API group and resource, sorted."""
    return rules_of(capabilities(agent))


def rules_of(granted: Iterable[str]) -> list[V1PolicyRule]:
    """Reading Deployments and pods plus the ``granted`` capabilities, merged per API group
    and resource, sorted."""
    from kubernetes.client import V1PolicyRule

    merged: dict[tuple[str, str], set[str]] = {}
    for group, resource, verbs in READ:
        merged[(group, resource)] = set(verbs)
    for cap in sorted(granted):
        for group, resource, verbs in CAPABILITIES[cap]:
            merged.setdefault((group, resource), set()).update(verbs)
    return [
        V1PolicyRule(api_groups=[group], resources=[resource], verbs=sorted(verbs))
        for (group, resource), verbs in sorted(merged.items())
    ]


def render(ctx: Context, agent: Agent, name: str) -> list[object]:
    """ServiceAccount, Role and RoleBinding called ``name`` for ``agent``."""
    return account(ctx, name, agent.name, "agent", rules_for(agent))


def account(
    ctx: Context, name: str, component: str, kind: str, rules: list[V1PolicyRule]
) -> list[object]:
    """ServiceAccount, Role (``rules``) and RoleBinding called ``name``."""
    from kubernetes.client import (
        RbacV1Subject,
        V1Role,
        V1RoleBinding,
        V1RoleRef,
        V1ServiceAccount,
    )

    meta = lambda: ctx.meta(name, component, kind)  # noqa: E731 - fresh object each time
    return [
        V1ServiceAccount(api_version="v1", kind="ServiceAccount", metadata=meta()),
        V1Role(
            api_version="rbac.authorization.k8s.io/v1",
            kind="Role",
            metadata=meta(),
            rules=rules,
        ),
        V1RoleBinding(
            api_version="rbac.authorization.k8s.io/v1",
            kind="RoleBinding",
            metadata=meta(),
            role_ref=V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=name),
            subjects=[RbacV1Subject(kind="ServiceAccount", name=name, namespace=ctx.namespace)],
        ),
    ]
