"""Services on Kubernetes as the engine seam and the agents see them: the
:class:`~scanflow.engines.base.ServiceBackend` (:class:`KubernetesServices`) and each
service's :class:`~scanflow.agents.interfaces.ServiceControl` (:class:`KubeServiceControl`).

Replicas are pods: scaling patches the ``deployments/scale`` subresource, readiness and
replicas are read from the Deployment, and failover switches the Service's selector to the
backup model's Deployment (and back). Metrics and hot-swap go to the service's own HTTP API
when it can be reached (inside the cluster)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from scanflow.errors import EngineError, KubeError
from scanflow.kube.cluster import call
from scanflow.kube.names import AGENT_MANAGER, KIND, namespace_of
from scanflow.kube.render import services as rendered

if TYPE_CHECKING:
    from scanflow.agents.clients import HttpServiceControl
    from scanflow.kube.cluster import Cluster
    from scanflow.spec.loader import Project
    from scanflow.spec.model import Service

log = logging.getLogger(__name__)

SCALE_TIMEOUT = 120.0
Route = Literal["primary", "backup"]


class KubeServiceControl:
    """One service's Deployment(s) and Service in the application's namespace."""

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        spec: Service,
        http: HttpServiceControl | None = None,
        poll: float = 0.2,
    ) -> None:
        from kubernetes.client import AppsV1Api, CoreV1Api

        self.cluster, self.namespace, self.spec, self.http = cluster, namespace, spec, http
        self.names = rendered.names(spec)
        self._apps, self._core = AppsV1Api(cluster.api), CoreV1Api(cluster.api)
        self._poll = poll

    def _where(self, resource: str, name: str) -> str:
        return f"{resource} {name!r} in namespace {self.namespace!r}"

    def _deployment(self, name: str) -> Any:
        return call(
            lambda: self._apps.read_namespaced_deployment(name, self.namespace),
            "get",
            self._where("deployments", name),
        )

    def routed_to(self) -> Route:
        """Which Deployment the Service sends traffic to now."""
        name = self.names["primary"]
        svc = call(
            lambda: self._core.read_namespaced_service(name, self.namespace),
            "get",
            self._where("services", name),
        )
        kind = (svc.spec.selector or {}).get(KIND)
        return "backup" if kind == rendered.BACKUP else "primary"

    def status(self) -> dict[str, Any]:
        """``ready`` (every desired pod ready, at least one), ``workers`` (desired pods),
        ``ready_workers``, ``model_version`` (from the service when reachable)."""
        deployment = self._deployment(self.names["primary"])
        desired = deployment.spec.replicas or 0
        ready = (deployment.status.ready_replicas or 0) if deployment.status else 0
        found: dict[str, Any] = {
            "ready": ready >= max(desired, 1),
            "workers": desired,
            "ready_workers": ready,
            "model_version": None,
            "image": deployment.spec.template.spec.containers[0].image,
        }
        if self.http is not None:
            answer = self.http.status()
            found["model_version"] = answer.get("model_version")
        return found

    def metrics(self) -> dict[str, float]:
        """The service's counters (its /metrics), or nothing when it cannot be reached."""
        return self.http.metrics() if self.http is not None else {}

    def refresh(self) -> dict[str, Any]:
        """Ask the service's pods to look at the registry alias now."""
        return self.http.refresh() if self.http is not None else {}

    def scale(self, workers: int, *, wait: bool = True, timeout: float = SCALE_TIMEOUT) -> dict:
        """Set the Deployment's replicas through ``deployments/scale``; with ``wait``, until
        that many pods are ready (a :class:`KubeError` after ``timeout`` seconds)."""
        name = self.names["primary"]
        call(
            lambda: self._apps.patch_namespaced_deployment_scale(
                name, self.namespace, {"spec": {"replicas": workers}}, field_manager=AGENT_MANAGER
            ),
            "patch",
            self._where("deployments/scale", name),
        )
        log.info("scaled %s/%s to %d", self.namespace, name, workers)
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if not wait or (status["workers"] == workers and status["ready_workers"] == workers):
                return status
            if time.monotonic() > deadline:
                raise KubeError(
                    f"deployment {name!r} in namespace {self.namespace!r}: "
                    f"{status['ready_workers']} of {workers} pods ready after {timeout:.0f} s "
                    "(see: scanflow status --target kubernetes)"
                )
            time.sleep(self._poll)

    def route(self, to: Route) -> Route:
        """Send the Service's traffic to the ``primary`` or the ``backup`` Deployment."""
        if to == "backup" and not self.spec.backup_model:
            raise EngineError(
                f"service {self.spec.name!r} has no 'backup_model' in scanflow.yaml: there is "
                "no backup Deployment to fail over to"
            )
        if to == "backup":
            self._deployment(self.names["backup"])  # it must exist before traffic goes there
        kind = rendered.BACKUP if to == "backup" else rendered.PRIMARY
        name = self.names["primary"]
        call(
            lambda: self._core.patch_namespaced_service(
                name,
                self.namespace,
                {"spec": {"selector": {KIND: kind}}},
                field_manager=AGENT_MANAGER,
            ),
            "patch",
            self._where("services", name),
        )
        log.info("service %s/%s routed to %s", self.namespace, name, to)
        return to


class KubernetesServices:
    """The :class:`~scanflow.engines.base.ServiceBackend` of one application on a cluster."""

    def __init__(
        self,
        project: Project,
        cluster: Cluster,
        *,
        images: Mapping[str, str] | None = None,
        force: bool = False,
    ) -> None:
        self.project, self.cluster = project, cluster
        self.images = dict(images or {})
        self.force = force
        self.namespace = namespace_of(project.app)

    def spec(self, name: str) -> Service:
        """The declared service ``name``."""
        for service in self.project.app.services:
            if service.name == name:
                return service
        known = ", ".join(s.name for s in self.project.app.services) or "none"
        raise EngineError(
            f"no service {name!r} in application {self.project.app.name!r} (known: {known})"
        )

    def deploy(self, service: Service) -> KubeServiceControl:
        """Apply ``service``'s objects (and the namespace and token they need)."""
        from scanflow.kube.deploy import deploy
        from scanflow.kube.render import render

        rendered: list[Any] = list(render(self.project, self.images))
        objects = [
            o
            for o in rendered
            if o.kind in ("Namespace",)
            or (o.kind == "Secret" and o.metadata.name == "scanflow-token")
            or (o.metadata.labels or {}).get("scanflow.io/component") == _component(service)
        ]
        deploy(self.cluster, objects, force=self.force)
        return self.control(service.name)

    def control(self, name: str) -> KubeServiceControl:
        """The control of service ``name``; its HTTP API is used from inside the cluster."""
        spec = self.spec(name)
        http = None
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            from scanflow.agents.clients import HttpServiceControl

            port = spec.port or 8080
            url = f"http://{rendered.names(spec)['primary']}.{self.namespace}.svc:{port}"
            http = HttpServiceControl(url, token=os.environ.get("SCANFLOW_TOKEN"))
        return KubeServiceControl(self.cluster, self.namespace, spec, http)

    def scale(self, name: str, replicas: int) -> dict[str, Any]:
        """Set the pods of ``name`` and wait until they are ready."""
        return self.control(name).scale(replicas)

    def status(self, name: str) -> dict[str, Any]:
        """The status of ``name`` read from its Deployment."""
        return self.control(name).status()

    def delete(self, name: str) -> None:
        """Remove ``name``'s Deployments, Service, HPA and PodDisruptionBudget."""
        spec = self.spec(name)
        names = rendered.names(spec)
        kinds = [
            ("autoscaling/v2", "HorizontalPodAutoscaler", names["primary"]),
            ("policy/v1", "PodDisruptionBudget", names["primary"]),
            ("v1", "Service", names["primary"]),
            ("apps/v1", "Deployment", names["primary"]),
            ("apps/v1", "Deployment", names["backup"]),
        ]
        from kubernetes.dynamic.exceptions import NotFoundError

        for api_version, kind, obj in kinds:
            resource = self.cluster.resource(api_version, kind)

            def remove(r: Any = resource, n: str = obj) -> None:
                try:
                    self.cluster.dynamic.delete(r, name=n, namespace=self.namespace)
                except NotFoundError:
                    pass

            call(remove, "delete", f"{kind} {obj!r} in namespace {self.namespace!r}")


def _component(service: Service) -> str:
    from scanflow.kube.names import dns_label

    return dns_label(service.name)
