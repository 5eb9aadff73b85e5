"""scanflow deploy / status / delete against the real API server, with kwok nodes: the digits
application deployed and idempotent, pods Running, scaling and failover through the
ServiceControl, agents' ServiceAccounts held to their Role, and the bad input of a cluster."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from conftest import wait_for
from kube.apps import copy_digits, write_shop

from scanflow.cli.main import main
from scanflow.errors import KubeError
from scanflow.kube.apply import to_dict
from scanflow.kube.cluster import Cluster, connect
from scanflow.kube.names import namespace_of, selector_of
from scanflow.kube.render import render
from scanflow.kube.services import KubernetesServices, KubeServiceControl
from scanflow.spec import load_project

from .k8s_support import K8sCluster

IMAGE = "*=registry.example/digits:1"
TIMES: dict[str, float] = {}  # seconds to deploy, reported by -s


@pytest.fixture(scope="module")
def cluster(k8s_cluster: K8sCluster) -> Cluster:
    return connect(kubeconfig=k8s_cluster.kubeconfig)


def cli(k8s_cluster: K8sCluster, project, *args: str) -> int:
    return main(
        ["--app", str(project.base_dir), *args, "--kubeconfig", str(k8s_cluster.kubeconfig)]
    )


def live(
    k8s_cluster: K8sCluster,
    project,
    kinds: str = "deploy,svc,hpa,pdb,sa,role,rolebinding,secret,sts,pvc",
) -> dict:
    out = k8s_cluster.kubectl(
        "get",
        kinds,
        "-n",
        namespace_of(project.app),
        "-l",
        selector_of(project.app),
        "-o",
        "json",
        "--show-managed-fields",
    ).stdout
    return {f"{i['kind']}/{i['metadata']['name']}": i for i in json.loads(out)["items"]}


def running_pods(k8s_cluster: K8sCluster, namespace: str, selector: str) -> list[str]:
    out = k8s_cluster.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout
    return [
        p["metadata"]["name"]
        for p in json.loads(out)["items"]
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    ]


@pytest.fixture(scope="module")
def digits(k8s_cluster: K8sCluster, tmp_path_factory: pytest.TempPathFactory):
    """The digits application deployed once for the module (with its timing)."""
    project = load_project(copy_digits(tmp_path_factory.mktemp("digits") / "digits"))
    started = time.monotonic()
    assert cli(k8s_cluster, project, "deploy", "--image", IMAGE) == 0
    TIMES["digits"] = time.monotonic() - started
    return project


def written_by_scanflow(objects: dict) -> dict:
    """Per object, its generation and what field manager scanflow last wrote, and when
    (controllers keep writing status and annotations: those change resourceVersion)."""
    return {
        key: (
            obj["metadata"].get("generation"),
            [
                (entry.get("time"), entry.get("fieldsV1"))
                for entry in obj["metadata"].get("managedFields", [])
                if entry["manager"] == "scanflow"
            ],
        )
        for key, obj in objects.items()
    }


def test_digits_deploys_and_a_second_deploy_changes_nothing(k8s_cluster, digits, capsys) -> None:
    before = live(k8s_cluster, digits)
    assert sorted(before) == sorted(
        [
            "Deployment/predictor",
            "Deployment/predictor-backup",
            "Deployment/agent-scaler",
            "Service/predictor",
            "Service/agent-scaler",
            "HorizontalPodAutoscaler/predictor",
            "PodDisruptionBudget/predictor",
            "ServiceAccount/agent-scaler",
            "Role/agent-scaler",
            "RoleBinding/agent-scaler",
            "Secret/scanflow-token",
        ]
    )
    capsys.readouterr()
    assert cli(k8s_cluster, digits, "deploy", "--image", IMAGE) == 0
    out = capsys.readouterr().out
    assert "12 objects (12 unchanged)" in out, out
    # reported in the manifests' order, though all but the namespace are applied at once
    reported = [line.split()[0] for line in out.splitlines() if line.endswith(" unchanged")]
    rendered = [to_dict(o) for o in render(digits, {"*": IMAGE.split("=", 1)[1]})]
    assert reported == [f"{o['kind']}/{o['metadata']['name']}" for o in rendered]
    after = live(k8s_cluster, digits)
    assert written_by_scanflow(after) == written_by_scanflow(before)
    print(f"digits: 12 objects deployed in {TIMES['digits']:.1f} s")


def test_every_manifest_passes_the_server_side_dry_run(
    k8s_cluster, digits, tmp_path, capsys
) -> None:
    capsys.readouterr()
    assert cli(k8s_cluster, digits, "deploy", "--dry-run", "--image", IMAGE) == 0
    assert "12 of 12 objects accepted" in capsys.readouterr().err
    shop = load_project(write_shop(tmp_path / "shop", name=f"dry-{uuid.uuid4().hex[:6]}"))
    assert cli(k8s_cluster, shop, "deploy", "--dry-run", "--image", IMAGE) == 0
    assert "1 of 36 objects accepted (the namespace does not exist yet)" in capsys.readouterr().err
    assert live(k8s_cluster, shop, "deploy") == {}


def test_pods_run_on_the_fake_nodes_and_status_shows_them(k8s_cluster, digits, capsys) -> None:
    namespace = namespace_of(digits.app)
    wait_for(
        lambda: len(running_pods(k8s_cluster, namespace, selector_of(digits.app))) == 4,
        what="4 pods Running (2 predictor, 1 backup, 1 agent)",
    )
    capsys.readouterr()
    assert cli(k8s_cluster, digits, "status", "-o", "json") == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    wait_for(lambda: cli(k8s_cluster, digits, "status", "-o", "json") == 0)
    assert rows["predictor"]["desired"] == 2 and rows["predictor"]["images"] == [
        "registry.example/digits:1"
    ]
    assert {r["kind"] for r in rows.values()} == {"service", "backup", "agent"}


def test_scale_through_the_service_control_and_pods_follow(k8s_cluster, cluster, digits) -> None:
    control = KubernetesServices(digits, cluster).control("predictor")
    selector = selector_of(digits.app, **{"scanflow.io/kind": "service"})
    namespace = namespace_of(digits.app)
    status = control.scale(3)
    assert (status["workers"], status["ready_workers"], status["ready"]) == (3, 3, True)
    wait_for(lambda: len(running_pods(k8s_cluster, namespace, selector)) == 3, what="3 pods")
    assert control.scale(1)["ready_workers"] == 1
    wait_for(lambda: len(running_pods(k8s_cluster, namespace, selector)) == 1, what="1 pod")


def test_controls_of_one_backend_share_one_listing_per_round(cluster, digits) -> None:
    from kubernetes.client import AppsV1Api

    from scanflow.kube.names import AGENT_MANAGER
    from scanflow.kube.services import StatusSnapshot

    now = [0.0]
    backend = KubernetesServices(digits, cluster)
    backend.snapshot = StatusSnapshot(backend.statuses, ttl=0.5, clock=lambda: now[0])
    first, second, third = (backend.control("predictor") for _ in range(3))
    workers = first.status()["workers"]
    # another process scales it: the other controls read the same listing once
    AppsV1Api(cluster.api).patch_namespaced_deployment_scale(
        "predictor",
        namespace_of(digits.app),
        {"spec": {"replicas": workers + 1}},
        field_manager=AGENT_MANAGER,
    )
    assert second.status()["workers"] == workers and backend.snapshot.reads == 1
    # a control that asks again (its next tick) gets a new listing
    assert second.status()["workers"] == workers + 1 and backend.snapshot.reads == 2
    # so does any control once the listing is older than its ttl
    now[0] += 0.6
    assert third.status()["workers"] == workers + 1 and backend.snapshot.reads == 3
    # and a scale through one control is seen by the others at once
    assert first.scale(workers)["ready_workers"] == workers
    assert second.status()["workers"] == workers and backend.snapshot.reads == 4


def test_failover_switches_the_service_to_the_backup_and_back(k8s_cluster, cluster, digits) -> None:
    control = KubernetesServices(digits, cluster).control("predictor")
    namespace = namespace_of(digits.app)

    def endpoints() -> set[str]:
        out = k8s_cluster.kubectl(
            "get",
            "endpointslices",
            "-n",
            namespace,
            "-l",
            "kubernetes.io/service-name=predictor",
            "-o",
            "json",
        ).stdout
        return {
            e["targetRef"]["name"]
            for s in json.loads(out)["items"]
            for e in s.get("endpoints") or []
            if e.get("targetRef")
        }

    assert control.routed_to() == "primary"
    assert control.route("backup") == "backup" and control.routed_to() == "backup"
    wait_for(
        lambda: endpoints() and all(n.startswith("predictor-backup-") for n in endpoints()),
        what="the Service's endpoints to be the backup pods",
    )
    # a deploy meanwhile declares the primary again (no conflict with the agent's switch)
    assert cli(k8s_cluster, digits, "deploy", "--image", IMAGE) == 0
    assert control.routed_to() == "primary"
    control.route("backup")
    control.route("primary")
    wait_for(
        lambda: endpoints() and not any(n.startswith("predictor-backup-") for n in endpoints()),
        what="the Service's endpoints to be the primary pods",
    )
    assert control.routed_to() == "primary"


def test_an_agent_account_is_held_to_its_namespace_and_verbs(k8s_cluster, digits, tmp_path) -> None:
    from kubernetes import client

    namespace = namespace_of(digits.app)
    admin = k8s_cluster.api_client()
    token = (
        client.CoreV1Api(admin)
        .create_namespaced_service_account_token(
            "agent-scaler", namespace, {"spec": {"expirationSeconds": 600}}
        )
        .status.token
    )
    scaler = Cluster(k8s_cluster.token_client(token), None, k8s_cluster.server)
    other = load_project(copy_digits(tmp_path / "other", name=f"other-{uuid.uuid4().hex[:6]}"))
    assert cli(k8s_cluster, other, "deploy", "--image", IMAGE) == 0
    spec = digits.app.services[0]
    mine = KubeServiceControl(scaler, namespace, spec)
    assert mine.scale(2, wait=False)["workers"] == 2
    with pytest.raises(
        KubeError,
        match=rf"forbidden: cannot patch deployments/scale 'predictor' in namespace "
        rf"'{namespace_of(other.app)}'",
    ):
        KubeServiceControl(scaler, namespace_of(other.app), spec).scale(3, wait=False)
    with pytest.raises(
        KubeError, match=rf"forbidden: cannot patch services 'predictor' in namespace '{namespace}'"
    ):
        mine.route("backup")
    assert (
        main(["--app", str(other.base_dir), "delete", "--kubeconfig", str(k8s_cluster.kubeconfig)])
        == 0
    )


def test_no_reachable_cluster_is_a_clear_error(tmp_path, digits, capsys) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\n"
        "clusters: [{name: gone, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "contexts: [{name: gone, context: {cluster: gone, user: u}}]\n"
        "users: [{name: u, user: {token: x}}]\n"
    )
    assert (
        main(
            ["--app", str(digits.base_dir), "deploy", "--image", IMAGE, "--kubeconfig", str(config)]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "the cluster at https://127.0.0.1:9" in err and "is not reachable" in err


def test_a_namespace_that_is_not_scanflows_is_refused(k8s_cluster, tmp_path, capsys) -> None:
    theirs = f"theirs-{uuid.uuid4().hex[:6]}"
    k8s_cluster.kubectl("create", "namespace", theirs)
    folder = copy_digits(tmp_path / "d")
    spec = folder / "scanflow.yaml"
    spec.write_text(spec.read_text() + f"kubernetes: {{namespace: {theirs}}}\n")
    assert (
        main(
            [
                "--app",
                str(folder),
                "deploy",
                "--image",
                IMAGE,
                "--kubeconfig",
                str(k8s_cluster.kubeconfig),
            ]
        )
        == 1
    )
    assert f"namespace '{theirs}' exists and is not Scanflow's" in capsys.readouterr().err
    out = k8s_cluster.kubectl("get", "deploy,sa,secret", "-n", theirs, "-o", "name").stdout
    assert "predictor" not in out and "scanflow" not in out


def test_a_field_of_another_manager_is_a_conflict_unless_forced(
    k8s_cluster, tmp_path, capsys
) -> None:
    project = load_project(copy_digits(tmp_path / "c", name=f"conflict-{uuid.uuid4().hex[:6]}"))
    assert cli(k8s_cluster, project, "deploy", "--image", IMAGE) == 0
    namespace = namespace_of(project.app)
    k8s_cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=someone",
        "-f",
        "-",
        input=(
            "apiVersion: v1\nkind: Service\n"
            f"metadata: {{name: predictor, namespace: {namespace}, "
            "labels: {scanflow.io/team: theirs}}\n"
        ),
    )
    capsys.readouterr()
    assert cli(k8s_cluster, project, "deploy", "--image", IMAGE) == 1
    err = capsys.readouterr().err
    assert "conflict on apply Service 'predictor'" in err and "someone" in err
    assert "--force-conflicts" in err and "objects were applied before it" in err

    def team() -> str:
        return k8s_cluster.kubectl(
            "get",
            "svc",
            "predictor",
            "-n",
            namespace,
            "-o",
            "jsonpath={.metadata.labels.scanflow\\.io/team}",
        ).stdout

    assert team() == "theirs"
    assert cli(k8s_cluster, project, "deploy", "--image", IMAGE, "--force-conflicts") == 0
    assert team() == "data-science"


def test_status_shows_an_image_that_cannot_be_pulled_and_a_quota_that_refuses_pods(
    k8s_cluster, cluster, tmp_path, capsys
) -> None:
    project = load_project(copy_digits(tmp_path / "q", name=f"quota-{uuid.uuid4().hex[:6]}"))
    assert cli(k8s_cluster, project, "deploy", "--image", IMAGE) == 0
    namespace = namespace_of(project.app)
    selector = selector_of(project.app, **{"scanflow.io/kind": "service"})
    pod = wait_for(
        lambda: (running_pods(k8s_cluster, namespace, selector) or [None])[0], what="a pod"
    )
    from kubernetes import client

    core = client.CoreV1Api(k8s_cluster.api_client())
    body = core.read_namespaced_pod_status(pod, namespace)
    body.status.container_statuses[0].state = client.V1ContainerState(
        waiting=client.V1ContainerStateWaiting(
            reason="ErrImagePull", message="manifest unknown: registry.example/digits:1"
        )
    )
    body.status.container_statuses[0].ready = False
    core.replace_namespaced_pod_status(pod, namespace, body)
    k8s_cluster.kubectl("create", "quota", "pods", "--hard=pods=4", "-n", namespace)
    KubeServiceControl(cluster, namespace, project.app.services[0]).scale(4, wait=False)

    def problems() -> list[str]:
        capsys.readouterr()
        cli(k8s_cluster, project, "status", "-o", "json")
        rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
        return rows["predictor"]["problems"]

    found = wait_for(
        lambda: (p := problems()) and any("exceeded quota" in x for x in p) and p,
        what="the quota refusal in status",
    )
    assert any(
        f"pod {pod}: ErrImagePull" in x and "registry.example/digits:1" in x for x in found
    ), found
    assert cli(k8s_cluster, project, "status") == 1
    assert "exceeded quota" in capsys.readouterr().out


def test_delete_removes_what_scanflow_created_and_nothing_else(
    k8s_cluster, tmp_path, capsys
) -> None:
    project = load_project(copy_digits(tmp_path / "del", name=f"del-{uuid.uuid4().hex[:6]}"))
    assert cli(k8s_cluster, project, "deploy", "--image", IMAGE) == 0
    namespace = namespace_of(project.app)
    k8s_cluster.kubectl("create", "configmap", "theirs", "-n", namespace, "--from-literal=a=1")
    capsys.readouterr()
    assert cli(k8s_cluster, project, "delete") == 0
    out = capsys.readouterr().out
    assert "Deployment/predictor deleted" in out and "ConfigMap/theirs" in out
    assert f"namespace '{namespace}' kept" in out
    assert live(k8s_cluster, project) == {}
    assert k8s_cluster.kubectl("get", "configmap", "theirs", "-n", namespace).returncode == 0
    k8s_cluster.kubectl("delete", "configmap", "theirs", "-n", namespace)
    assert cli(k8s_cluster, project, "delete") == 0
    assert f"namespace '{namespace}' deleted" in capsys.readouterr().out
    phase = k8s_cluster.kubectl(
        "get", "namespace", namespace, "-o", "jsonpath={.status.phase}", check=False
    )
    assert phase.returncode != 0 or phase.stdout == "Terminating"


def test_an_application_with_every_part_deploys_and_passes_the_dry_run(
    k8s_cluster, tmp_path, capsys
) -> None:
    """Tracker stack (StatefulSet, PVC, Secrets), three agents, serving-node placement."""
    shop = load_project(write_shop(tmp_path / "shop", name=f"shop-{uuid.uuid4().hex[:6]}"))
    assert cli(k8s_cluster, shop, "deploy", "--image", IMAGE) == 0
    assert "36 objects (36 created)" in capsys.readouterr().out
    secret = live(k8s_cluster, shop, "secret")["Secret/tracker-db"]["data"]["password"]
    assert cli(k8s_cluster, shop, "deploy", "--dry-run", "--image", IMAGE) == 0
    captured = capsys.readouterr()
    assert "36 of 36 objects accepted" in captured.err and secret not in captured.out
    assert cli(k8s_cluster, shop, "deploy", "--image", IMAGE) == 0
    assert "36 objects (36 unchanged)" in capsys.readouterr().out
    assert live(k8s_cluster, shop, "secret")["Secret/tracker-db"]["data"]["password"] == secret
    assert cli(k8s_cluster, shop, "delete") == 0
    assert live(k8s_cluster, shop) == {}
