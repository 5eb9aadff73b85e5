"""Names and labels of everything Scanflow creates on a cluster.

Kubernetes names are DNS-1123 labels of at most 63 characters; longer names are shortened
deterministically: a prefix and 8 hex digits of the full name's SHA-256, so the same input
always gives the same name and two long names that share a prefix stay distinct.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scanflow.spec.model import Application

MANAGER = "scanflow"  # the field manager of every apply, and the managed-by label's value
AGENT_MANAGER = "scanflow-agent"  # the field manager of agents' live changes (scale, route)
MANAGED_BY = "app.kubernetes.io/managed-by"
APPLICATION = "scanflow.io/application"
TEAM = "scanflow.io/team"
COMPONENT = "scanflow.io/component"
KIND = "scanflow.io/kind"  # service, backup, agent, tracker, step, ...

_NOT_ALLOWED = re.compile(r"[^a-z0-9-]+")
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def dns_label(*parts: str, limit: int = 63) -> str:
    """``parts`` joined with '-', as a DNS-1123 label of at most ``limit`` characters."""
    full = "-".join(p for p in parts if p)
    name = _NOT_ALLOWED.sub("-", full.lower()).strip("-") or "x"
    if len(name) <= limit and name == full:
        return name
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-')}-{digest}"


def namespace_of(app: Application) -> str:
    """The application's namespace: ``kubernetes.namespace``, else ``<team>-<application>``."""
    return app.kubernetes.namespace or dns_label(app.team, app.name)


def labels_of(app: Application, component: str | None = None, kind: str | None = None) -> dict:
    """The labels Scanflow sets on the objects of ``app`` (``component``: service, agent...)."""
    labels = {MANAGED_BY: MANAGER, APPLICATION: app.name, TEAM: app.team}
    if component:
        labels[COMPONENT] = dns_label(component)
    if kind:
        labels[KIND] = kind
    return labels


def selector_of(app: Application, **extra: str) -> str:
    """A label selector matching what Scanflow created for ``app`` (and ``extra`` labels)."""
    pairs = {MANAGED_BY: MANAGER, APPLICATION: app.name, **extra}
    return ",".join(f"{k}={v}" for k, v in pairs.items())
