"""Nodes, namespaces, Deployments, scaling, Jobs and watches on the real control plane."""

from __future__ import annotations

import ipaddress

import pytest
from conftest import wait_for

from .k8s_support import K8sCluster

NODES = {"kwok-node-0", "kwok-node-1", "kwok-node-2"}
POD_CIDR = ipaddress.ip_network("10.244.0.0/16")


@pytest.fixture(scope="module")
def api(k8s_cluster: K8sCluster):
    client = k8s_cluster.api_client()
    yield client
    client.close()


@pytest.fixture(scope="module")
def ns(api):
    from kubernetes import client

    core = client.CoreV1Api(api)
    created = core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(generate_name="workloads-"))
    )
    yield created.metadata.name
    core.delete_namespace(created.metadata.name)


def _deployment(name: str, replicas: int):
    from kubernetes import client

    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="web", image="registry.invalid/web:1")]
                ),
            ),
        ),
    )


def _job(name: str, *, completions: int = 1, backoff_limit: int = 6, fail: bool = False):
    from kubernetes import client

    annotations = {"k8s-sim.scanflow.io/outcome": "fail"} if fail else None
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1JobSpec(
            completions=completions,
            parallelism=completions,
            backoff_limit=backoff_limit,
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(annotations=annotations),
                spec=client.V1PodSpec(
                    restart_policy="Never",
                    containers=[client.V1Container(name="step", image="registry.invalid/step:1")],
                ),
            ),
        ),
    )


def _running_pods(api, ns: str, selector: str) -> list:
    from kubernetes import client

    pods = client.CoreV1Api(api).list_namespaced_pod(ns, label_selector=selector).items
    return [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]


def _pod_count(api, ns: str, selector: str) -> int:
    from kubernetes import client

    return len(client.CoreV1Api(api).list_namespaced_pod(ns, label_selector=selector).items)


def _condition(obj, kind: str):
    return next((c for c in obj.status.conditions or [] if c.type == kind), None)


def test_nodes_ready_and_version(api, k8s_cluster: K8sCluster) -> None:
    from kubernetes import client

    nodes = client.CoreV1Api(api).list_node(label_selector="type=kwok").items
    assert {n.metadata.name for n in nodes} == NODES
    for node in nodes:
        ready = _condition(node, "Ready")
        assert ready is not None and ready.status == "True", node.metadata.name
        assert node.status.allocatable["pods"] == "110"
    assert client.VersionApi(api).get_code().git_version == "v1.36.3"
    out = k8s_cluster.kubectl("version", "--client", "-o", "json").stdout
    assert '"gitVersion": "v1.36.3"' in out


def test_namespace_created_with_default_service_account(api, ns: str) -> None:
    from kubernetes import client

    core = client.CoreV1Api(api)
    assert core.read_namespace(ns).status.phase == "Active"
    # The service-account controller of the controller manager fills every new namespace.
    wait_for(
        lambda: any(
            sa.metadata.name == "default" for sa in core.list_namespaced_service_account(ns).items
        ),
        30,
        "the default ServiceAccount",
    )


def _deploy(api, ns: str, name: str, replicas: int) -> list:
    """Create Deployment ``name`` and wait until its ``replicas`` pods run; returns them."""
    from kubernetes import client

    client.AppsV1Api(api).create_namespaced_deployment(ns, _deployment(name, replicas))
    return wait_for(
        lambda: (p := _running_pods(api, ns, f"app={name}")) and len(p) == replicas and p,
        60,
        f"{replicas} running pods of {name}",
    )


def test_deployment_of_three_gets_three_running_pods_on_fake_nodes(api, ns: str) -> None:
    from kubernetes import client

    pods = _deploy(api, ns, "web", 3)
    for pod in pods:
        assert pod.spec.node_name in NODES
        assert ipaddress.ip_address(pod.status.pod_ip) in POD_CIDR
        assert all(cs.ready for cs in pod.status.container_statuses)
    wait_for(
        lambda: (
            client.AppsV1Api(api).read_namespaced_deployment("web", ns).status.ready_replicas == 3
        ),
        30,
        "readyReplicas 3",
    )


@pytest.mark.parametrize("replicas", [5, 1])
def test_scaling_is_reflected(api, ns: str, replicas: int) -> None:
    from kubernetes import client

    name = f"scaled-to-{replicas}"  # a Deployment of its own, made here
    _deploy(api, ns, name, 3)
    apps = client.AppsV1Api(api)
    apps.patch_namespaced_deployment_scale(name, ns, {"spec": {"replicas": replicas}})
    wait_for(
        lambda: (
            len(_running_pods(api, ns, f"app={name}")) == replicas
            and _pod_count(api, ns, f"app={name}") == replicas
        ),
        60,
        f"{replicas} pods",
    )
    wait_for(
        lambda: (
            (s := apps.read_namespaced_deployment(name, ns).status).ready_replicas == replicas
            and s.replicas == replicas
        ),
        30,
        f"deployment status {replicas}",
    )
    assert apps.read_namespaced_deployment_scale(name, ns).status.replicas == replicas


def test_job_completes(api, ns: str) -> None:
    from kubernetes import client

    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(ns, _job("train", completions=2))
    job = wait_for(
        lambda: (
            (j := batch.read_namespaced_job("train", ns))
            and (c := _condition(j, "Complete"))
            and c.status == "True"
            and j
        ),
        60,
        "Job Complete",
    )
    assert job.status.succeeded == 2
    assert not job.status.failed


def test_failing_job_is_retried_up_to_its_backoff_limit(api, ns: str) -> None:
    from kubernetes import client

    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(ns, _job("flaky", backoff_limit=2, fail=True))
    # The job controller waits 10 s, then 20 s between retries: about 30 s in all.
    job = wait_for(
        lambda: (
            (j := batch.read_namespaced_job("flaky", ns))
            and (c := _condition(j, "Failed"))
            and c.status == "True"
            and j
        ),
        120,
        "Job Failed",
    )
    assert _condition(job, "Failed").reason == "BackoffLimitExceeded"
    assert job.status.failed == 3  # the first try plus backoffLimit retries
    assert not job.status.succeeded
    pods = client.CoreV1Api(api).list_namespaced_pod(ns, label_selector="job-name=flaky").items
    assert [p.status.phase for p in pods] == ["Failed"] * 3
    assert {p.status.container_statuses[0].state.terminated.exit_code for p in pods} == {1}


def test_watch_sees_the_events(api, ns: str) -> None:
    from kubernetes import client, watch

    core = client.CoreV1Api(api)
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(
        ns,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="settings"), data={"threshold": "0.1"}
        ),
    )
    core.patch_namespaced_config_map("settings", ns, {"data": {"threshold": "0.2"}})
    core.delete_namespaced_config_map("settings", ns)
    seen = []
    stream = watch.Watch()
    for event in stream.stream(
        core.list_namespaced_config_map,
        ns,
        resource_version=rv,
        field_selector="metadata.name=settings",
        timeout_seconds=30,
    ):
        seen.append((event["type"], event["object"].data["threshold"]))
        if event["type"] == "DELETED":
            stream.stop()
    assert seen == [("ADDED", "0.1"), ("MODIFIED", "0.2"), ("DELETED", "0.2")]
