"""Removing what Scanflow created for an application, and nothing else: an object is
removed only when it carries the application's labels AND field manager ``scanflow`` has
written it (``metadata.managedFields``). The namespace goes too when Scanflow created it and
nothing foreign is left in it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scanflow.errors import KubeError
from scanflow.kube.apply import owned_by
from scanflow.kube.cluster import call
from scanflow.kube.names import MANAGER, namespace_of, selector_of

if TYPE_CHECKING:
    from scanflow.kube.cluster import Cluster
    from scanflow.spec.model import Application

log = logging.getLogger(__name__)

# every kind Scanflow creates in an application's namespace, dependents first
KINDS = [
    ("argoproj.io/v1alpha1", "CronWorkflow"),
    ("argoproj.io/v1alpha1", "Workflow"),
    ("argoproj.io/v1alpha1", "WorkflowTemplate"),
    ("batch/v1", "Job"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("v1", "Service"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("v1", "ServiceAccount"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
]
# what a namespace holds without anyone asking
DEFAULTS = {("ServiceAccount", "default"), ("ConfigMap", "kube-root-ca.crt")}


@dataclass
class Removal:
    """What :func:`delete_application` did."""

    namespace: str
    deleted: list[str] = field(default_factory=list)  # "Kind/name"
    foreign: list[str] = field(default_factory=list)  # objects left alone
    namespace_deleted: bool = False
    namespace_note: str = ""


def written_by_scanflow(obj: dict[str, Any]) -> bool:
    """Whether field manager ``scanflow`` wrote ``obj`` (a live object as a dict)."""
    entries = obj.get("metadata", {}).get("managedFields") or []
    return any(entry.get("manager") == MANAGER for entry in entries)


def _list(cluster: Cluster, api_version: str, kind: str, namespace: str, selector: str | None):
    try:
        resource = cluster.resource(api_version, kind)
    except KubeError:  # a CRD that is not installed holds nothing
        return []
    where = f"{kind} objects in namespace {namespace!r}"
    found = call(
        lambda: cluster.dynamic.get(resource, namespace=namespace, label_selector=selector),
        "list",
        where,
    )
    return [item.to_dict() for item in found.items]


def _ours(obj: dict[str, Any], app: Application) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    from scanflow.kube.names import APPLICATION, MANAGED_BY

    return labels.get(MANAGED_BY) == MANAGER and labels.get(APPLICATION) == app.name


def foreign_objects(cluster: Cluster, app: Application, namespace: str) -> list[str]:
    """Objects in ``namespace`` that are not ``app``'s (defaults of a namespace aside)."""
    found: list[str] = []
    for api_version, kind in [*KINDS, ("v1", "Pod")]:
        for obj in _list(cluster, api_version, kind, namespace, None):
            meta = obj["metadata"]
            if (kind, meta["name"]) in DEFAULTS or _ours(obj, app):
                continue
            if kind == "Pod" and (meta.get("deletionTimestamp") or meta.get("ownerReferences")):
                continue  # pods going away with their owners, or owned by something listed
            found.append(f"{kind}/{meta['name']}")
    return found


def delete_application(cluster: Cluster, app: Application) -> Removal:
    """Delete what Scanflow created for ``app``; the namespace when it is Scanflow's and
    holds nothing foreign."""
    from kubernetes.dynamic.exceptions import NotFoundError

    namespace = namespace_of(app)
    removal = Removal(namespace)
    ns_resource = cluster.resource("v1", "Namespace")

    def get_namespace() -> Any:
        try:
            return cluster.dynamic.get(ns_resource, name=namespace)
        except NotFoundError:
            return None

    live_namespace = call(get_namespace, "get", f"namespace {namespace!r}")
    if live_namespace is None:
        removal.namespace_note = f"namespace {namespace!r} does not exist: nothing to delete"
        return removal
    selector = selector_of(app)
    for api_version, kind in KINDS:
        for obj in _list(cluster, api_version, kind, namespace, selector):
            name = obj["metadata"]["name"]
            if not written_by_scanflow(obj):
                removal.foreign.append(f"{kind}/{name}")
                continue
            resource = cluster.resource(api_version, kind)
            call(
                lambda r=resource, n=name: cluster.dynamic.delete(
                    r, name=n, namespace=namespace, propagation_policy="Background"
                ),
                "delete",
                f"{kind} {name!r} in namespace {namespace!r}",
            )
            removal.deleted.append(f"{kind}/{name}")
            log.info("deleted %s/%s in %s", kind, name, namespace)
    removal.foreign += [
        f for f in foreign_objects(cluster, app, namespace) if f not in removal.foreign
    ]
    if not owned_by(live_namespace, app.name):
        removal.namespace_note = f"namespace {namespace!r} is not Scanflow's: kept"
    elif removal.foreign:
        removal.namespace_note = (
            f"namespace {namespace!r} kept: it holds objects Scanflow did not create "
            f"({', '.join(removal.foreign)})"
        )
    else:
        call(
            lambda: cluster.dynamic.delete(ns_resource, name=namespace),
            "delete",
            f"namespace {namespace!r}",
        )
        removal.namespace_deleted = True
        removal.namespace_note = f"namespace {namespace!r} deleted"
    return removal
