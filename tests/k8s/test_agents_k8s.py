"""The built-in strategies, unchanged, on the Kubernetes toolkit against the real API server
with kwok nodes: the agents' toolkit gets its service controls from the engine seam
(``get_engine(project, "kubernetes").services()``); autoscale fed latency facts scales the
Deployment and pods follow, failover switches the Service to the backup Deployment and back
(or an HTTPRoute's weights where that kind exists), a missing image is reported once and not
retried every tick, and services land on the serving nodes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import wait_for
from kube.apps import copy_digits

from scanflow.agents.runtime import AgentRuntime, AgentSetup
from scanflow.agents.service import toolkit_for
from scanflow.agents.state import AgentState
from scanflow.agents.strategies.autoscale import AutoscaleConfig, LatencyAutoscale
from scanflow.agents.strategies.failover import Failover, FailoverConfig
from scanflow.cli.main import main
from scanflow.engines import registry
from scanflow.kube.cluster import Cluster, connect
from scanflow.kube.names import namespace_of, selector_of
from scanflow.kube.render.placement import batch_affinity
from scanflow.kube.services import KubernetesServices, KubeServiceControl
from scanflow.spec import load_project
from scanflow.spec.loader import Project
from scanflow.store import Store

from .k8s_support import K8sCluster

GOOD = "*=registry.example/digits:1"
MISSING = "*=registry.example/digits-does-not-exist:1"


class ClusterEngine:
    """The ``kubernetes`` engine as far as agents need it: its service backend."""

    name = "kubernetes"

    def __init__(self, project: Project, cluster: Cluster) -> None:
        self.project, self.cluster = project, cluster

    def services(self) -> KubernetesServices:
        return KubernetesServices(self.project, self.cluster)


@pytest.fixture(scope="module")
def cluster(k8s_cluster: K8sCluster) -> Iterator[Cluster]:
    """The admin connection, registered as engine ``kubernetes`` for the module."""
    found = connect(kubeconfig=k8s_cluster.kubeconfig)
    registry.register("kubernetes", lambda project, **_: ClusterEngine(project, found))
    yield found
    registry.unregister("kubernetes")


def deployed(k8s_cluster: K8sCluster, folder, image: str = GOOD, extra: str = "") -> Project:
    """A copy of the digits application (service ``predictor``: 2 pods, a backup) deployed."""
    app = copy_digits(folder, name=f"ag-{uuid.uuid4().hex[:6]}")
    if extra:
        (app / "scanflow.yaml").write_text((app / "scanflow.yaml").read_text() + extra)
    project = load_project(app)
    assert deploy(k8s_cluster, project, image) == 0
    return project


def deploy(k8s_cluster: K8sCluster, project: Project, image: str) -> int:
    args = ["--app", str(project.base_dir), "deploy", "--image", image]
    return main([*args, "--kubeconfig", str(k8s_cluster.kubeconfig)])


def pods(k8s_cluster: K8sCluster, project: Project, kind: str = "service") -> list[dict]:
    """The Running pods of ``kind`` (not being deleted)."""
    out = k8s_cluster.kubectl(
        "get",
        "pods",
        "-n",
        namespace_of(project.app),
        "-l",
        selector_of(project.app, **{"scanflow.io/kind": kind}),
        "-o",
        "json",
    ).stdout
    return [
        p
        for p in json.loads(out)["items"]
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    ]


def replicas(k8s_cluster: K8sCluster, project: Project, name: str = "predictor") -> tuple:
    out = k8s_cluster.kubectl(
        "get", "deploy", name, "-n", namespace_of(project.app), "-o", "json"
    ).stdout
    deployment = json.loads(out)
    return deployment["spec"]["replicas"], deployment["status"].get("readyReplicas", 0)


class ScriptedMetrics:
    """What the pods' /metrics would say (kwok runs no container): each scrape adds one
    window of traffic, ``(requests, latency seconds of each)``."""

    def __init__(self, windows: list[tuple[int, float]]) -> None:
        self.windows = list(windows)
        self.requests = 0.0
        self.buckets = {b: 0.0 for b in (0.05, 0.1, 0.2, 0.5, 1.0, float("inf"))}

    def metrics(self) -> dict[str, Any]:
        if self.windows:
            n, latency = self.windows.pop(0)
            self.requests += n
            for bound in self.buckets:
                if latency <= bound:
                    self.buckets[bound] += n
        return {
            "requests": self.requests,
            "errors": 0.0,
            "queue_depth": 0.0,
            "latency_buckets": {str(b): c for b, c in self.buckets.items()},
        }

    def status(self) -> dict[str, Any]:
        return {"model_version": "1"}


def quiet_cpu(pids: list[int], at: float) -> dict[str, Any]:
    """The machine's CPU as the scaler samples it: 20 % of 2 cores busy."""
    return {"at": at, "busy": 0.4 * at, "total": 2 * at, "workers": {}}


class Agent:
    """One agent of a built-in strategy on the Kubernetes toolkit, ticked by the test on a
    scripted clock (2 s a tick); its plans run to their end within the tick."""

    def __init__(self, project: Project, strategy: Any, tmp_path) -> None:
        self.toolkit = toolkit_for(project, "kubernetes")
        self.toolkit.extras["cpu_sampler"] = quiet_cpu
        self.store = Store.for_state_dir(tmp_path / "agent-state")
        self.setup = AgentSetup(
            strategy.name,
            strategy.declare(),
            guardrails=strategy.guardrails(),
            config=strategy.config.model_dump(),
        )
        self.now = 0.0

    def control(self, service: str = "predictor") -> KubeServiceControl:
        control = self.toolkit.service(service)
        assert isinstance(control, KubeServiceControl)  # from the engine's service backend
        return control

    def ticks(self, n: int, until: Any = None) -> list[Any]:
        """Tick ``n`` times (or until ``until(decisions)``); the decisions, oldest first."""
        import asyncio

        async def scenario() -> None:
            runtime = AgentRuntime(self.setup, self.store, self.toolkit, clock=lambda: self.now)
            await runtime.start()
            try:
                for _ in range(n):
                    self.now += 2.0
                    for decision_id in await runtime.tick():
                        await runtime.execute(decision_id)
                    if until is not None and until(self.decisions()):
                        break
            finally:
                await runtime.stop()

        asyncio.run(asyncio.wait_for(scenario(), 600))
        return self.decisions()

    def decisions(self) -> list[Any]:
        return AgentState(self.store, self.setup.name).decisions()[::-1]

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def agents(cluster) -> Iterator[list[Agent]]:
    made: list[Agent] = []
    yield made
    for agent in made:
        agent.close()


def test_autoscale_fed_latency_facts_scales_the_deployment_and_pods_follow(
    k8s_cluster, cluster, agents, tmp_path
) -> None:
    project = deployed(k8s_cluster, tmp_path / "app")
    wait_for(lambda: len(pods(k8s_cluster, project)) == 2, what="2 predictor pods Running")
    config = AutoscaleConfig(
        service="predictor",
        min_workers=1,
        max_workers=3,
        p95_high_ms=200,
        p95_low_ms=50,
        down_after=2,
        cooldown=0,
        settle=1000,
    )
    agent = Agent(project, LatencyAutoscale(config), tmp_path)
    agents.append(agent)
    agent.control().http = ScriptedMetrics([(200, 0.5)] * 2 + [(10, 0.01)] * 4)
    # the first scrape only sets the watermark; a slow loaded window: 2 -> 3 pods
    rows = agent.ticks(2)
    assert [(r.status, r.steps[0]["params"]) for r in rows] == [("succeeded", {"workers": 3})]
    assert rows[0].evidence["p95_ms"] > 200 and rows[0].evidence["workers"] == 2
    assert replicas(k8s_cluster, project) == (3, 3)
    running = wait_for(lambda: (p := pods(k8s_cluster, project)) and len(p) == 3 and p)
    assert all(p["spec"]["nodeName"].startswith("kwok-node-") for p in running)
    # slow at the maximum: nothing; then calm windows, two in a row per step: 3 -> 2 -> 1
    rows = agent.ticks(5)
    assert [r.steps[0]["params"]["workers"] for r in rows] == [3, 2, 1]
    assert all(r.status == "succeeded" for r in rows), [r.outcome for r in rows]
    assert rows[1].reason.startswith("calm for 2 windows")
    assert replicas(k8s_cluster, project) == (1, 1)
    left = wait_for(
        lambda: (p := pods(k8s_cluster, project)) and len(p) == 1 and p, what="1 pod left"
    )
    # inside the cluster, metrics are scraped from each ready pod at its own address
    assert agent.control().pod_urls() == {
        p["metadata"]["name"]: f"http://{p['status']['podIP']}:8080" for p in left
    }
    scale_managers = k8s_cluster.kubectl(
        "get",
        "deploy",
        "predictor",
        "-n",
        namespace_of(project.app),
        "--show-managed-fields",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
    ).stdout.split()
    assert "scanflow-agent" in scale_managers


def endpoints(k8s_cluster: K8sCluster, project: Project) -> set[str]:
    """The pods behind the Service ``predictor``."""
    out = k8s_cluster.kubectl(
        "get",
        "endpointslices",
        "-n",
        namespace_of(project.app),
        "-l",
        "kubernetes.io/service-name=predictor",
        "-o",
        "json",
    ).stdout
    return {
        e["targetRef"]["name"]
        for s in json.loads(out)["items"]
        for e in s.get("endpoints") or []
        if e.get("targetRef") and (e.get("conditions") or {}).get("ready", True)
    }


GUARD = (
    "- name: guard\n  role: executor\n  strategy: failover\n"
    "  config: {service: predictor, model: digits}\n"
)


@pytest.fixture
def as_account(k8s_cluster, cluster) -> Iterator[Any]:
    """Makes engine ``kubernetes`` act as an agent's ServiceAccount (its Role only)."""

    def use(namespace: str, account: str) -> None:
        from kubernetes import client

        token = (
            client.CoreV1Api(k8s_cluster.api_client())
            .create_namespaced_service_account_token(
                account, namespace, {"spec": {"expirationSeconds": 600}}
            )
            .status.token
        )
        own = Cluster(k8s_cluster.token_client(token), None, k8s_cluster.server)
        registry.register("kubernetes", lambda project, **_: ClusterEngine(project, own))

    yield use
    registry.register("kubernetes", lambda project, **_: ClusterEngine(project, cluster))


def test_failover_switches_the_service_to_the_backup_and_back(
    k8s_cluster, cluster, agents, as_account, tmp_path
) -> None:
    project = deployed(k8s_cluster, tmp_path / "app", extra=GUARD)
    namespace = namespace_of(project.app)
    wait_for(lambda: replicas(k8s_cluster, project)[1] == 2, what="2 ready predictor pods")
    as_account(namespace, "agent-guard")  # the agent acts with its own Role
    config = FailoverConfig(
        service="predictor", model="digits", unhealthy_after=2, healthy_after=2, cooldown=0
    )
    agent = Agent(project, Failover(config), tmp_path)
    agents.append(agent)
    assert agent.ticks(3) == []  # healthy: nothing to do
    k8s_cluster.kubectl("scale", "deploy", "predictor", "-n", namespace, "--replicas=0")
    wait_for(lambda: replicas(k8s_cluster, project) == (0, 0), what="the primary scaled to 0")
    rows = agent.ticks(10, until=lambda rows: rows)
    assert [(r.action, r.status) for r in rows] == [("failover", "succeeded")], rows
    assert rows[0].reason.startswith("service predictor unhealthy for 2 checks (ready=False")
    assert agent.control().routed_to() == "backup"
    wait_for(
        lambda: (
            (e := endpoints(k8s_cluster, project))
            and all(n.startswith("predictor-backup-") for n in e)
        ),
        what="the Service's endpoints to be the backup pod",
    )
    # still down: no restore; the primary recovers: back to it
    assert len(agent.ticks(3)) == 1
    k8s_cluster.kubectl("scale", "deploy", "predictor", "-n", namespace, "--replicas=2")
    wait_for(lambda: replicas(k8s_cluster, project) == (2, 2), what="the primary ready again")
    rows = agent.ticks(10, until=lambda rows: len(rows) == 2)
    assert [(r.action, r.status) for r in rows] == [
        ("failover", "succeeded"),
        ("restore", "succeeded"),
    ], [r.outcome for r in rows]
    assert "traffic -> the primary deployment (2 pod(s) ready)" in rows[1].outcome
    assert agent.control().routed_to() == "primary"
    wait_for(
        lambda: (
            (e := endpoints(k8s_cluster, project))
            and len(e) == 2
            and not any(n.startswith("predictor-backup-") for n in e)
        ),
        what="the Service's endpoints to be the primary pods",
    )


def break_pods(k8s_cluster: K8sCluster, project: Project) -> list[str]:
    """Make the predictor's pods look as a kubelet shows an image it cannot pull (kwok
    pulls nothing): waiting in ErrImagePull, not ready (through the status subresource)."""
    from kubernetes import client

    core = client.CoreV1Api(k8s_cluster.api_client())
    namespace = namespace_of(project.app)
    names = [p["metadata"]["name"] for p in pods(k8s_cluster, project)]
    for name in names:
        body = core.read_namespaced_pod_status(name, namespace)
        status = body.status.container_statuses[0]
        status.state = client.V1ContainerState(
            waiting=client.V1ContainerStateWaiting(
                reason="ErrImagePull",
                message="manifest unknown: registry.example/digits-does-not-exist:1",
            )
        )
        status.ready, status.started = False, False
        for condition in body.status.conditions:
            if condition.type in ("Ready", "ContainersReady"):
                condition.status = "False"
        core.replace_namespaced_pod_status(name, namespace, body)
    return names


def test_a_missing_image_is_shown_and_a_failed_scale_is_not_retried_every_tick(
    k8s_cluster, cluster, agents, as_account, tmp_path, capsys
) -> None:
    project = deployed(k8s_cluster, tmp_path / "app", image=MISSING)
    wait_for(lambda: len(pods(k8s_cluster, project)) == 2, what="2 predictor pods")
    broken = break_pods(k8s_cluster, project)
    wait_for(lambda: replicas(k8s_cluster, project) == (2, 0), what="no ready predictor pod")
    capsys.readouterr()
    args = ["--app", str(project.base_dir), "status", "--kubeconfig", str(k8s_cluster.kubeconfig)]
    assert main(args) == 1  # the table, with its problems: exit code 1
    capsys.readouterr()
    main([*args, "-o", "json"])
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert any(
        f"pod {broken[0]}: ErrImagePull: the image cannot be pulled" in p
        for p in rows["predictor"]["problems"]
    ), rows["predictor"]
    config = AutoscaleConfig(
        service="predictor", min_workers=1, max_workers=4, cooldown=0, settle=1000
    )
    as_account(namespace_of(project.app), "agent-scaler")  # its Role reads the pods too
    agent = Agent(project, LatencyAutoscale(config), tmp_path)
    agents.append(agent)
    status = agent.control().status()
    assert status["ready"] is False and any("ErrImagePull" in p for p in status["problems"])
    agent.control().http = ScriptedMetrics([(200, 0.5)] * 12)  # slow and loaded throughout
    rows = agent.ticks(8)
    # one scale tried and failed, naming the image; then held while the pods cannot start
    assert [(r.action, r.status) for r in rows] == [("scale", "failed")]
    assert "not scaled to 3 pods: 0 of 2 ready" in rows[0].outcome
    assert "ErrImagePull" in rows[0].outcome and "digits-does-not-exist" in rows[0].outcome
    assert replicas(k8s_cluster, project)[0] == 2  # nothing was changed
    # the image fixed by a deploy: the pods start and the agent scales again
    assert deploy(k8s_cluster, project, GOOD) == 0
    wait_for(lambda: replicas(k8s_cluster, project) == (2, 2), what="the fixed pods ready")
    wait_for(lambda: not agent.control().status()["problems"], what="no problem left")
    rows = agent.ticks(4, until=lambda rows: len(rows) == 2)
    assert [(r.action, r.status) for r in rows] == [("scale", "failed"), ("scale", "succeeded")]
    assert replicas(k8s_cluster, project) == (3, 3)


def test_services_land_on_the_serving_nodes_and_batch_pods_stay_off_them(
    k8s_cluster, cluster, tmp_path
) -> None:
    from kubernetes import client

    key = f"serving-{uuid.uuid4().hex[:6]}"
    node = "kwok-node-1"
    k8s_cluster.kubectl("label", "node", node, f"{key}=yes")
    try:
        project = deployed(
            k8s_cluster,
            tmp_path / "app",
            extra=f'kubernetes: {{serving_node_label: "{key}=yes"}}\n',
        )
        served = wait_for(
            lambda: (
                (p := pods(k8s_cluster, project) + pods(k8s_cluster, project, "backup"))
                and len(p) == 3
                and p
            ),
            what="2 predictor pods and a backup pod Running",
        )
        assert {p["spec"]["nodeName"] for p in served} == {node}
        KubernetesServices(project, cluster).scale("predictor", 4)
        assert {p["spec"]["nodeName"] for p in pods(k8s_cluster, project)} == {node}
        core = client.CoreV1Api(k8s_cluster.api_client())
        namespace = namespace_of(project.app)
        for i in range(4):
            core.create_namespaced_pod(
                namespace,
                client.V1Pod(
                    metadata=client.V1ObjectMeta(name=f"step-{i}", labels={"batch": "yes"}),
                    spec=client.V1PodSpec(
                        containers=[client.V1Container(name="s", image="x", command=["true"])],
                        affinity=batch_affinity(project.app),
                    ),
                ),
            )

        def batch_nodes() -> set[str] | None:
            found = core.list_namespaced_pod(namespace, label_selector="batch=yes").items
            nodes = {p.spec.node_name for p in found}
            return nodes if len(found) == 4 and None not in nodes else None

        nodes = wait_for(batch_nodes, what="4 batch pods scheduled")
        assert node not in nodes and nodes <= {"kwok-node-0", "kwok-node-2"}
    finally:
        k8s_cluster.kubectl("label", "node", node, f"{key}-")


HTTPROUTE_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: httproutes.gateway.networking.k8s.io
  annotations: {api-approved.kubernetes.io: "https://github.com/kubernetes-sigs/gateway-api/pull/2466"}
spec:
  group: gateway.networking.k8s.io
  names: {kind: HTTPRoute, listKind: HTTPRouteList, plural: httproutes, singular: httproute}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""


def test_failover_uses_httproute_weights_where_that_kind_exists(
    k8s_cluster, cluster, tmp_path
) -> None:
    project = deployed(k8s_cluster, tmp_path / "app")
    namespace = namespace_of(project.app)
    before = KubernetesServices(project, cluster).control("predictor")
    assert before.http_route() is None  # no such kind: the Service's selector is switched
    k8s_cluster.kubectl("apply", "-f", "-", input=HTTPROUTE_CRD)
    try:
        k8s_cluster.kubectl(
            "wait", "--for=condition=Established", "crd/httproutes.gateway.networking.k8s.io"
        )
        k8s_cluster.kubectl(
            "create", "service", "clusterip", "predictor-backup", "--tcp=8080:8080", "-n", namespace
        )
        route = {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "predictor", "namespace": namespace},
            "spec": {
                "parentRefs": [{"name": "gateway"}],
                "rules": [
                    {
                        "backendRefs": [
                            {"name": "predictor", "port": 8080, "weight": 100},
                            {"name": "predictor-backup", "port": 8080, "weight": 0},
                        ]
                    }
                ],
            },
        }
        k8s_cluster.kubectl("apply", "-f", "-", input=json.dumps(route))
        control = KubernetesServices(project, connect(kubeconfig=k8s_cluster.kubeconfig)).control(
            "predictor"
        )
        assert control.can_route() and control.routed_to() == "primary"

        def weights() -> dict[str, int]:
            out = k8s_cluster.kubectl(
                "get", "httproute", "predictor", "-n", namespace, "-o", "json"
            )
            rules = json.loads(out.stdout)["spec"]["rules"]
            return {r["name"]: r["weight"] for r in rules[0]["backendRefs"]}

        assert control.route("backup") == "backup"
        assert weights() == {"predictor": 0, "predictor-backup": 100}
        assert control.routed_to() == "backup"
        selector = k8s_cluster.kubectl(
            "get", "svc", "predictor", "-n", namespace, "-o", "jsonpath={.spec.selector}"
        ).stdout
        assert json.loads(selector)["scanflow.io/kind"] == "service"  # the Service untouched
        control.route("primary")
        assert weights() == {"predictor": 100, "predictor-backup": 0}
        assert control.routed_to() == "primary"
    finally:
        k8s_cluster.kubectl("delete", "crd", "httproutes.gateway.networking.k8s.io", check=False)
