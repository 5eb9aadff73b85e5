"""Services on Kubernetes as the engine seam and the agents see them: the
:class:`~scanflow.engines.base.ServiceBackend` (:class:`KubernetesServices`) and each
service's :class:`~scanflow.agents.interfaces.ServiceControl` (:class:`KubeServiceControl`).

Replicas are pods: scaling patches the ``deployments/scale`` subresource, readiness and
replicas are read from the Deployment (with the problems of its pods when some are not
ready), and failover sends the traffic to the backup model's Deployment and back: through
the weights of a Gateway API ``HTTPRoute`` named after the service when the cluster has
that kind and the route lists both backends, else by switching the Service's selector.
Metrics and hot-swap go to the service's own HTTP API when it can be reached (inside the
cluster)."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from scanflow.errors import EngineError, KubeError
from scanflow.kube.cluster import call
from scanflow.kube.names import AGENT_MANAGER, COMPONENT, KIND, namespace_of, selector_of
from scanflow.kube.podmetrics import PodTotals, scrape
from scanflow.kube.render import services as rendered
from scanflow.kube.render.context import SERVE_PORT
from scanflow.kube.status import WAITING_PROBLEMS, pod_problems

if TYPE_CHECKING:
    from scanflow.agents.clients import HttpServiceControl
    from scanflow.kube.cluster import Cluster
    from scanflow.spec.loader import Project
    from scanflow.spec.model import Service

log = logging.getLogger(__name__)

SCALE_TIMEOUT = 120.0
SNAPSHOT_TTL = 0.5  # seconds a listing of the services' statuses serves their controls
Route = Literal["primary", "backup"]
HTTPROUTE = ("gateway.networking.k8s.io/v1", "HTTPRoute")
BLOCKING = tuple(WAITING_PROBLEMS)  # pod problems that more pods (or waiting) do not fix


def raw(request: Any) -> Any:
    """The JSON body of a client request, without building the client's typed models (much
    slower than the request itself for a list of many objects)."""
    return json.loads(request(_preload_content=False).data)


def deployment_status(deployment: dict[str, Any]) -> dict[str, Any]:
    """What agents read of a service's Deployment (its JSON body): ``ready`` (at least one
    pod ready: the Service answers), ``workers`` (desired pods), ``ready_workers``,
    ``image``."""
    spec = deployment["spec"]
    ready = (deployment.get("status") or {}).get("readyReplicas") or 0
    return {
        "ready": ready >= 1,
        "workers": spec.get("replicas", 1),
        "ready_workers": ready,
        "model_version": None,
        "image": spec["template"]["spec"]["containers"][0]["image"],
    }


def _pod_selector(deployment: dict[str, Any]) -> dict[str, str]:
    return deployment["spec"]["selector"].get("matchLabels") or {}


def _owned_by(pod: Any, deployment: dict[str, Any]) -> bool:
    labels = pod.metadata.labels or {}
    return all(labels.get(k) == v for k, v in _pod_selector(deployment).items())


class StatusSnapshot:
    """One listing of an application's service statuses (``read``), shared by the controls
    of its services for one round of reads: a control that asks again gets a new listing
    (its next tick sees changes), and so does every caller once the listing is older than
    ``ttl`` seconds or after a change made through a control. Callers that come while it is
    read wait for that one listing."""

    def __init__(
        self,
        read: Callable[[], dict[str, dict[str, Any]]],
        ttl: float = SNAPSHOT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read, self.ttl, self._clock = read, ttl, clock
        self._lock = threading.Lock()
        self._value: dict[str, dict[str, Any]] | None = None
        self._at = 0.0
        self._seen: set[int] = set()  # the readers of the current listing
        self.reads = 0  # listings made

    def get(self, reader: object) -> dict[str, dict[str, Any]]:
        """The statuses by service name for ``reader``, listed anew when stale."""
        with self._lock:
            key = id(reader)
            if self._value is None or key in self._seen or self._clock() - self._at > self.ttl:
                self._value = self._read()
                self._at = self._clock()
                self._seen.clear()
                self.reads += 1
            self._seen.add(key)
            return self._value

    def invalidate(self) -> None:
        """Make the next :meth:`get` list again (after a change this process made)."""
        with self._lock:
            self._value = None


class KubeServiceControl:
    """One service's Deployment(s) and Service in the application's namespace; with
    ``shared``, its status comes from the listing all controls of the application share."""

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        spec: Service,
        http: HttpServiceControl | None = None,
        poll: float = 0.2,
        *,
        per_pod: bool = False,
        token: str | None = None,
        shared: StatusSnapshot | None = None,
    ) -> None:
        from kubernetes.client import AppsV1Api, CoreV1Api

        self.cluster, self.namespace, self.spec, self.http = cluster, namespace, spec, http
        self.per_pod, self.token, self.shared = per_pod, token, shared
        self._totals = PodTotals()
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

    def can_route(self) -> bool:
        """Whether a backup Deployment exists to send the traffic to."""
        from kubernetes.client.exceptions import ApiException

        if not self.spec.backup_model:
            return False
        name = self.names["backup"]

        def exists() -> bool:
            try:
                self._apps.read_namespaced_deployment(name, self.namespace)
            except ApiException as exc:
                if exc.status == 404:
                    return False
                raise
            return True

        return call(exists, "get", self._where("deployments", name))

    def http_route(self) -> dict[str, Any] | None:
        """The Gateway API ``HTTPRoute`` named after the service whose rules send traffic to
        both the primary Service and a ``<service>-backup`` Service; None when the cluster
        has no such kind or no such route (then failover switches the Service's selector)."""
        from kubernetes.dynamic.exceptions import NotFoundError

        try:
            resource = self.cluster.resource(*HTTPROUTE)
        except KubeError:
            return None
        name = self.names["primary"]

        def read() -> Any:
            try:
                return resource.get(name=name, namespace=self.namespace).to_dict()
            except NotFoundError:
                return None

        try:
            route = call(read, "get", self._where("httproutes", name))
        except KubeError as exc:  # e.g. a Role from before routes were allowed
            log.warning("%s; failover switches the Service's selector", exc)
            return None
        if route is None:
            return None
        backends = {
            ref.get("name")
            for rule in route.get("spec", {}).get("rules") or []
            for ref in rule.get("backendRefs") or []
        }
        return route if {name, self.names["backup"]} <= backends else None

    def _route_weights(self, route: dict[str, Any], to: Route) -> None:
        name = self.names["primary"]
        weights = {name: 0 if to == "backup" else 100, self.names["backup"]: 0}
        weights[self.names["backup"]] = 100 - weights[name]
        rules = [
            {
                **rule,
                "backendRefs": [
                    {**ref, "weight": weights.get(ref.get("name"), ref.get("weight", 1))}
                    for ref in rule.get("backendRefs") or []
                ],
            }
            for rule in route["spec"]["rules"]
        ]
        body = {
            "apiVersion": HTTPROUTE[0],
            "kind": HTTPROUTE[1],
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"parentRefs": route["spec"].get("parentRefs") or [], "rules": rules},
        }
        resource = self.cluster.resource(*HTTPROUTE)
        call(
            lambda: resource.server_side_apply(
                body=body,
                name=name,
                namespace=self.namespace,
                field_manager=AGENT_MANAGER,
                force_conflicts=True,
            ),
            "patch",
            self._where("httproutes", name),
        )

    def routed_to(self) -> Route:
        """Which Deployment gets the traffic now (the HTTPRoute's weights when failover uses
        them, else the Service's selector)."""
        route = self.http_route()
        if route is not None:
            weights = {
                ref.get("name"): ref.get("weight", 1)
                for rule in route["spec"]["rules"]
                for ref in rule.get("backendRefs") or []
            }
            backup = weights.get(self.names["backup"], 0) > weights.get(self.names["primary"], 0)
            return "backup" if backup else "primary"
        name = self.names["primary"]
        svc = call(
            lambda: self._core.read_namespaced_service(name, self.namespace),
            "get",
            self._where("services", name),
        )
        kind = (svc.spec.selector or {}).get(KIND)
        return "backup" if kind == rendered.BACKUP else "primary"

    def _pod_problems(self, deployment: dict[str, Any]) -> list[str]:
        selector = ",".join(f"{k}={v}" for k, v in _pod_selector(deployment).items())
        try:
            pods = call(
                lambda: (
                    self._core.list_namespaced_pod(self.namespace, label_selector=selector).items
                ),
                "list",
                f"pods in namespace {self.namespace!r}",
            )
        except KubeError as exc:  # the status stands without them
            return [f"pods not read: {exc}"]
        return sorted({p for pod in pods for p in pod_problems(pod)})

    def status(self) -> dict[str, Any]:
        """``ready`` (at least one pod ready), ``workers`` (desired pods), ``ready_workers``,
        ``image``, ``problems`` (why pods do not run, read when some are not ready: an image
        that cannot be pulled, a crash loop, a pod that cannot be scheduled) and
        ``model_version`` (from the service when reachable). With ``shared``, read from the
        application's listing (at most :data:`SNAPSHOT_TTL` seconds old)."""
        listed = self.shared.get(self).get(self.spec.name) if self.shared is not None else None
        return self._with_model(dict(listed) if listed is not None else self._read_status())

    def _with_model(self, found: dict[str, Any]) -> dict[str, Any]:
        if self.http is not None:
            found["model_version"] = self.http.status().get("model_version")
        return found

    def _read_status(self) -> dict[str, Any]:
        """The status read from this service's Deployment now (pods when some are not ready)."""
        name = self.names["primary"]
        deployment = call(
            lambda: raw(partial(self._apps.read_namespaced_deployment, name, self.namespace)),
            "get",
            self._where("deployments", name),
        )
        found = deployment_status(deployment)
        found["problems"] = (
            self._pod_problems(deployment) if found["ready_workers"] < found["workers"] else []
        )
        return found

    def pod_urls(self) -> dict[str, str]:
        """The HTTP address of each ready pod of the primary Deployment, by pod name."""
        # the namespace holds one application: its component and kind name the pods
        selector = f"{COMPONENT}={_component(self.spec)},{KIND}={rendered.PRIMARY}"
        pods = call(
            lambda: self._core.list_namespaced_pod(self.namespace, label_selector=selector).items,
            "list",
            f"pods in namespace {self.namespace!r}",
        )
        return {
            pod.metadata.name: f"http://{pod.status.pod_ip}:{SERVE_PORT}"
            for pod in pods
            if pod.status
            and pod.status.pod_ip
            and not pod.metadata.deletion_timestamp
            and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
        }

    def metrics(self) -> dict[str, Any]:
        """The service's counters: summed over its ready pods, each scraped, when it runs
        with ``per_pod`` (inside the cluster; see :mod:`scanflow.kube.podmetrics`), else
        its HTTP API's, else nothing (outside the cluster)."""
        if self.per_pod:
            return self._totals.add(scrape(self.pod_urls(), self.token))
        return self.http.metrics() if self.http is not None else {}

    def refresh(self) -> dict[str, Any]:
        """Ask every pod (with ``per_pod``; else the one the Service picks) to look at the
        registry alias now."""
        if not self.per_pod:
            return self.http.refresh() if self.http is not None else {}
        from scanflow.api.errors import ApiError
        from scanflow.serving.client import ServingClient

        answers: dict[str, Any] = {}
        for pod, url in self.pod_urls().items():
            with ServingClient(url, token=self.token, timeout=10.0) as client:
                try:
                    answers[pod] = client.refresh()
                except ApiError as exc:
                    answers[pod] = {"error": str(exc)}
        return {"pods": answers}

    def _blocked(self, status: dict[str, Any], workers: int, doing: str) -> None:
        stuck = [p for p in status["problems"] if any(f": {r}:" in p for r in BLOCKING)]
        if stuck:
            raise KubeError(
                f"deployment {self.names['primary']!r} in namespace {self.namespace!r} "
                f"{doing} {workers} pods: {status['ready_workers']} of {status['workers']} "
                f"ready; {'; '.join(stuck)} (fix the image and deploy again; see: scanflow "
                "status --target kubernetes)"
            )

    def scale(self, workers: int, *, wait: bool = True, timeout: float = SCALE_TIMEOUT) -> dict:
        """Set the Deployment's replicas through ``deployments/scale``; with ``wait``, until
        that many pods are ready. A :class:`KubeError` when pods cannot start (an image that
        cannot be pulled, a crash loop: then nothing is changed, or the wait stops at once)
        or after ``timeout`` seconds."""
        name = self.names["primary"]
        try:
            before = self._read_status()
        except KubeError:  # not readable: the patch below reports what refuses it
            before = None
        if before is not None:
            self._blocked(before, workers, "not scaled to")
        call(
            lambda: self._apps.patch_namespaced_deployment_scale(
                name, self.namespace, {"spec": {"replicas": workers}}, field_manager=AGENT_MANAGER
            ),
            "patch",
            self._where("deployments/scale", name),
        )
        log.info("scaled %s/%s to %d", self.namespace, name, workers)
        if self.shared is not None:
            self.shared.invalidate()
        deadline = time.monotonic() + timeout
        while True:
            status = self._read_status()
            if not wait or (status["workers"] == workers and status["ready_workers"] == workers):
                return self._with_model(status)
            self._blocked(status, workers, "cannot reach")
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
        route = self.http_route()
        if route is not None:
            self._route_weights(route, to)
            log.info("httproute %s/%s routed to %s", self.namespace, self.names["primary"], to)
            return to
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
        self.snapshot = StatusSnapshot(self.statuses)  # shared by this backend's controls

    def spec(self, name: str) -> Service:
        """The declared service ``name``."""
        from scanflow.engines.base import declared_service

        return declared_service(self.project, name)

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
            token = os.environ.get("SCANFLOW_TOKEN")
            http = HttpServiceControl(url, token=token)
            return KubeServiceControl(
                self.cluster,
                self.namespace,
                spec,
                http,
                per_pod=True,
                token=token,
                shared=self.snapshot,
            )
        return KubeServiceControl(self.cluster, self.namespace, spec, http, shared=self.snapshot)

    def statuses(self) -> dict[str, dict[str, Any]]:
        """The status of every service (as :meth:`KubeServiceControl.status` without the
        model version) in one list of Deployments, and one list of pods when some are not
        ready: what an agent watching many services reads per tick."""
        from kubernetes.client import AppsV1Api, CoreV1Api

        selector = selector_of(self.project.app, **{KIND: rendered.PRIMARY})
        where = f"in namespace {self.namespace!r}"
        found = call(
            lambda: raw(
                partial(
                    AppsV1Api(self.cluster.api).list_namespaced_deployment,
                    self.namespace,
                    label_selector=selector,
                )
            )["items"],
            "list",
            f"deployments {where}",
        )
        by_name = {d["metadata"]["name"]: d for d in found}
        out: dict[str, dict[str, Any]] = {}
        for spec in self.project.app.services:
            deployment = by_name.get(rendered.names(spec)["primary"])
            if deployment is not None:
                out[spec.name] = {**deployment_status(deployment), "problems": []}
        unready = [n for n, st in out.items() if st["ready_workers"] < st["workers"]]
        if unready:
            pods = call(
                lambda: (
                    CoreV1Api(self.cluster.api)
                    .list_namespaced_pod(self.namespace, label_selector=selector)
                    .items
                ),
                "list",
                f"pods {where}",
            )
            for name in unready:
                deployment = by_name[rendered.names(self.spec(name))["primary"]]
                out[name]["problems"] = sorted(
                    {p for pod in pods if _owned_by(pod, deployment) for p in pod_problems(pod)}
                )
        return out

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
