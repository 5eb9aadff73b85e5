"""scanflow.kube against the real API server: connect, server-side apply (idempotent, as
field manager scanflow, conflicts reported), namespaces that are not ours refused."""

from __future__ import annotations

import uuid

import pytest

from scanflow.errors import KubeConflict, KubeError
from scanflow.kube.apply import apply, claim_namespace
from scanflow.kube.cluster import Cluster, connect
from scanflow.kube.names import labels_of
from scanflow.spec import Application

from .k8s_support import K8sCluster


@pytest.fixture(scope="module")
def cluster(k8s_cluster: K8sCluster) -> Cluster:
    return connect(kubeconfig=k8s_cluster.kubeconfig)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _config_map(namespace: str, name: str, value: str):
    from kubernetes.client import V1ConfigMap, V1ObjectMeta

    return V1ConfigMap(
        api_version="v1",
        kind="ConfigMap",
        metadata=V1ObjectMeta(name=name, namespace=namespace),
        data={"key": value},
    )


def test_apply_creates_then_changes_nothing_then_configures(cluster: Cluster) -> None:
    app = Application(_name("apply"))
    namespace = app.name
    assert claim_namespace(cluster, namespace, labels_of(app)).action == "created"
    assert claim_namespace(cluster, namespace, labels_of(app)).action == "unchanged"
    first = apply(cluster, _config_map(namespace, "settings", "1"))
    second = apply(cluster, _config_map(namespace, "settings", "1"))
    assert (first.action, second.action) == ("created", "unchanged")
    assert second.resource_version == first.resource_version
    third = apply(cluster, _config_map(namespace, "settings", "2"))
    assert third.action == "configured" and third.resource_version != first.resource_version
    dry = apply(cluster, _config_map(namespace, "settings", "3"), dry_run=True)
    assert dry.action == "configured"
    assert apply(cluster, _config_map(namespace, "settings", "2")).action == "unchanged"


def test_namespace_of_someone_else_is_refused(cluster: Cluster, k8s_cluster: K8sCluster) -> None:
    name = _name("theirs")
    k8s_cluster.kubectl("create", "namespace", name)
    with pytest.raises(KubeError, match=rf"namespace '{name}' exists and is not Scanflow's"):
        claim_namespace(cluster, name, labels_of(Application("mine")))
    labels = k8s_cluster.kubectl("get", "namespace", name, "-o", "jsonpath={.metadata.labels}")
    assert "scanflow" not in labels.stdout  # nothing was taken over


def test_field_owned_by_another_manager_is_a_conflict_unless_forced(
    cluster: Cluster, k8s_cluster: K8sCluster
) -> None:
    app = Application(_name("conflict"))
    claim_namespace(cluster, app.name, labels_of(app))
    manifest = (
        "apiVersion: v1\nkind: ConfigMap\n"
        f"metadata: {{name: shared, namespace: {app.name}}}\ndata: {{key: theirs}}\n"
    )
    k8s_cluster.kubectl(
        "apply", "--server-side", "--field-manager=someone", "-f", "-", input=manifest
    )
    with pytest.raises(KubeConflict, match=r"someone.*nothing was changed.*--force-conflicts"):
        apply(cluster, _config_map(app.name, "shared", "ours"))
    value = k8s_cluster.kubectl(
        "get", "configmap", "shared", "-n", app.name, "-o", "jsonpath={.data.key}"
    )
    assert value.stdout == "theirs"
    assert apply(cluster, _config_map(app.name, "shared", "ours"), force=True).action == (
        "configured"
    )


def test_invalid_object_carries_the_api_servers_message(cluster: Cluster) -> None:
    app = Application(_name("invalid"))
    claim_namespace(cluster, app.name, labels_of(app))
    bad = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "Not_A_Name", "namespace": app.name},
    }
    with pytest.raises(KubeError, match=r"ConfigMap 'Not_A_Name' .*is invalid: .*RFC 1123"):
        apply(cluster, bad)


def test_missing_kind_names_the_custom_resource(cluster: Cluster) -> None:
    with pytest.raises(KubeError, match=r"no Widget \(example.com/v1\).*not installed"):
        cluster.resource("example.com/v1", "Widget")
