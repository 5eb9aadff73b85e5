"""Live state of an application on a cluster: per Deployment or StatefulSet, ready and
desired replicas, image, and the problems that keep pods from running (image pulls that
fail, quotas that refuse pods, pods that cannot be scheduled or keep crashing)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scanflow.kube.cluster import call
from scanflow.kube.names import COMPONENT, KIND, namespace_of, selector_of

if TYPE_CHECKING:
    from scanflow.kube.cluster import Cluster
    from scanflow.spec.model import Application

WAITING_PROBLEMS = {
    "ErrImagePull": "the image cannot be pulled (does it exist? is it pushed?)",
    "ImagePullBackOff": "the image cannot be pulled (does it exist? is it pushed?)",
    "InvalidImageName": "the image reference is not valid",
    "CrashLoopBackOff": "the container keeps crashing (see its logs)",
    "CreateContainerConfigError": "the container's configuration is refused",
}


@dataclass
class Workload:
    """One Deployment or StatefulSet of the application, as it is now."""

    name: str
    component: str
    kind: str  # service, backup, agent, tracker
    ready: int
    desired: int
    images: list[str]
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return self.ready >= self.desired and not self.problems


def pod_problems(pod: Any) -> list[str]:
    """Why ``pod`` (a ``V1Pod``) is not running: waiting reasons of its containers and a
    scheduling refusal."""
    found: list[str] = []
    name = pod.metadata.name
    for status in (pod.status.container_statuses or []) if pod.status else []:
        waiting = status.state.waiting if status.state else None
        if waiting is not None and waiting.reason in WAITING_PROBLEMS:
            detail = f": {waiting.message}" if waiting.message else ""
            found.append(
                f"pod {name}: {waiting.reason}: {WAITING_PROBLEMS[waiting.reason]}"
                f" (image {status.image}){detail}"
            )
    for condition in (pod.status.conditions or []) if pod.status else []:
        if condition.type == "PodScheduled" and condition.status == "False":
            found.append(f"pod {name}: not scheduled: {condition.message or condition.reason}")
    return found


def _owner_problems(replica_sets: list[Any], events: list[Any]) -> list[str]:
    """Pods the ReplicaSets could not create (a ResourceQuota, a policy)."""
    found: list[str] = []
    names = {rs.metadata.name for rs in replica_sets}
    for rs in replica_sets:
        for condition in (rs.status.conditions or []) if rs.status else []:
            if condition.type == "ReplicaFailure" and condition.status == "True":
                found.append(f"replicaset {rs.metadata.name}: {condition.message}")
    if not found:
        for event in events:
            obj = event.involved_object
            if obj.name in names and event.reason == "FailedCreate":
                found.append(f"replicaset {obj.name}: {event.message}")
                break
    return found


def application_status(cluster: Cluster, app: Application) -> list[Workload]:
    """Every workload of ``app`` (services, backups, agents, tracker), by name."""
    from kubernetes.client import AppsV1Api, CoreV1Api

    apps, core = AppsV1Api(cluster.api), CoreV1Api(cluster.api)
    namespace, selector = namespace_of(app), selector_of(app)
    where = f"in namespace {namespace!r}"
    deployments = call(
        lambda: apps.list_namespaced_deployment(namespace, label_selector=selector).items,
        "list",
        f"deployments {where}",
    )
    stateful = call(
        lambda: apps.list_namespaced_stateful_set(namespace, label_selector=selector).items,
        "list",
        f"statefulsets {where}",
    )
    replica_sets = call(
        lambda: apps.list_namespaced_replica_set(namespace, label_selector=selector).items,
        "list",
        f"replicasets {where}",
    )
    pods = call(
        lambda: core.list_namespaced_pod(namespace, label_selector=selector).items,
        "list",
        f"pods {where}",
    )
    events = call(
        lambda: core.list_namespaced_event(namespace, field_selector="type=Warning").items,
        "list",
        f"events {where}",
    )
    found: list[Workload] = []
    for workload in [*deployments, *stateful]:
        wanted = workload.spec.selector.match_labels or {}

        def mine(obj: Any, wanted: dict[str, str] = wanted) -> bool:
            return all((obj.metadata.labels or {}).get(k) == v for k, v in wanted.items())

        labels = workload.metadata.labels or {}
        problems = [p for pod in pods if mine(pod) for p in pod_problems(pod)]
        problems += _owner_problems([rs for rs in replica_sets if mine(rs)], events)
        found.append(
            Workload(
                name=workload.metadata.name,
                component=labels.get(COMPONENT, ""),
                kind=labels.get(KIND, ""),
                ready=(workload.status.ready_replicas or 0) if workload.status else 0,
                desired=workload.spec.replicas if workload.spec.replicas is not None else 1,
                images=[c.image for c in workload.spec.template.spec.containers],
                problems=sorted(set(problems)),
            )
        )
    return sorted(found, key=lambda w: (w.kind, w.name))
