"""Manifests rendered from the spec (no cluster needed): valid for Kubernetes (strict
schema), least-privilege roles, names shortened, secrets never shown, bad input explained."""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from kube.apps import write_shop
from scanflow.cli.main import main
from scanflow.errors import KubeError, SpecError
from scanflow.kube.apply import to_dict
from scanflow.kube.images import image_for, parse_overrides
from scanflow.kube.names import DNS1123, MANAGED_BY, MANAGER
from scanflow.kube.render import render
from scanflow.kube.render.placement import batch_affinity
from scanflow.kube.render.rbac import rules_for
from scanflow.spec import load_project
from scanflow.spec.model import Agent

K8S_VERSION = "1.36.0"
IMAGES = {"*": "registry.example/shop:1"}


@pytest.fixture
def shop(tmp_path: Path):
    return load_project(write_shop(tmp_path / "shop"))


def bodies(project, images=IMAGES) -> list[dict]:
    return [to_dict(o) for o in render(project, images)]


def by(found: list[dict], kind: str, name: str) -> dict:
    return next(b for b in found if b["kind"] == kind and b["metadata"]["name"] == name)


def test_every_manifest_validates_strictly_and_carries_the_labels(shop) -> None:
    found = bodies(shop)
    kinds = sorted({b["kind"] for b in found})
    assert kinds == sorted(
        [
            "Namespace",
            "Secret",
            "PersistentVolumeClaim",
            "StatefulSet",
            "Service",
            "Deployment",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "ServiceAccount",
            "Role",
            "RoleBinding",
        ]
    )
    assert len(found) == 36  # with the control server: a managed tracker shares its store
    for body in found:
        kubernetes_validate.validate(body, K8S_VERSION, strict=True)
        meta = body["metadata"]
        assert meta["labels"][MANAGED_BY] == MANAGER and DNS1123.match(meta["name"])
        assert meta.get("namespace", "data-science-shop") == "data-science-shop"


def test_a_service_runs_scanflow_serve_with_oip_probes_resources_and_a_backup(shop) -> None:
    found = bodies(shop)
    primary, backup = by(found, "Deployment", "digits"), by(found, "Deployment", "digits-backup")
    pod = primary["spec"]["template"]["spec"]
    main_container = pod["containers"][0]
    assert main_container["command"][:5] == [
        "scanflow",
        "--app",
        "/app",
        "serve",
        "models:/digits@champion",
    ]
    assert "http://mlflow.data-science-shop.svc:5000" in main_container["command"]
    assert main_container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert main_container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert main_container["resources"] == {
        "requests": {"cpu": "100m", "memory": "64Mi"},
        "limits": {"memory": "64Mi"},
    }
    assert primary["spec"]["replicas"] == 2 and backup["spec"]["replicas"] == 1
    assert (
        backup["spec"]["template"]["spec"]["containers"][0]["command"][4] == "models:/digits@backup"
    )
    term = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": "role", "operator": "In", "values": ["serving"]}
    ]
    assert pod["securityContext"]["runAsNonRoot"] is True
    service = by(found, "Service", "digits")
    assert service["spec"]["selector"]["scanflow.io/kind"] == "service"
    assert service["spec"]["ports"][0]["port"] == 8180
    hpa = by(found, "HorizontalPodAutoscaler", "digits")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 4)
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"


def test_batch_pods_keep_off_the_serving_nodes(shop) -> None:
    affinity = to_dict(batch_affinity(shop.app))
    expr = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ][0]["matchExpressions"][0]
    assert expr == {"key": "role", "operator": "NotIn", "values": ["serving"]}
    shop.app.kubernetes.serving_node_label = None
    assert batch_affinity(shop.app) is None
    shop.app.kubernetes.serving_node_label = "no-equals-sign"
    with pytest.raises(SpecError, match="serving_node_label.*not 'key=value'"):
        batch_affinity(shop.app)


EXPECTED_RULES = {
    "agent-scaler": {
        ("apps", "deployments"): ["get", "list", "watch"],
        ("", "pods"): ["get", "list", "watch"],
        ("apps", "deployments/scale"): ["get", "patch"],
    },
    "agent-guard": {
        ("apps", "deployments"): ["get", "list", "watch"],
        ("", "pods"): ["get", "list", "watch"],
        ("", "services"): ["get", "patch"],
        ("gateway.networking.k8s.io", "httproutes"): ["get", "patch"],
    },
    "agent-retrainer": {
        ("apps", "deployments"): ["get", "list", "watch"],
        ("argoproj.io", "workflows"): ["create", "get", "list", "watch"],
        ("batch", "jobs"): ["create", "get", "list", "watch"],
        ("", "pods"): ["get", "list", "watch"],
        ("", "pods/log"): ["get"],
    },
}


def test_each_agent_gets_a_least_privilege_role_of_its_strategy(shop) -> None:
    found = bodies(shop)
    assert not [b for b in found if b["kind"].startswith("Cluster")]
    for name, expected in EXPECTED_RULES.items():
        rules = by(found, "Role", name)["rules"]
        got = {(r["apiGroups"][0], r["resources"][0]): r["verbs"] for r in rules}
        assert got == expected
        for rule in rules:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        binding = by(found, "RoleBinding", name)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": name,
        }
        deployment = by(found, "Deployment", name)["spec"]["template"]["spec"]
        assert deployment["serviceAccountName"] == name
        assert deployment["containers"][0]["command"][3:6] == [
            "agents",
            "up",
            name.removeprefix("agent-"),
        ]


def test_declared_actuators_give_their_capabilities_and_nothing_else() -> None:
    reader = {(r.api_groups[0], r.resources[0]) for r in rules_for(Agent("watcher"))}
    assert reader == {("apps", "deployments"), ("", "pods")}
    custom = rules_for(Agent("custom", actuators=["mine.acts:scale_up", "mine.acts:route_traffic"]))
    assert {(r.api_groups[0], r.resources[0]) for r in custom} == {
        ("apps", "deployments"),
        ("", "pods"),
        ("apps", "deployments/scale"),
        ("", "services"),
        ("gateway.networking.k8s.io", "httproutes"),
    }


def test_long_names_are_shortened_deterministically(tmp_path: Path) -> None:
    long = "s" * 60
    folder = write_shop(tmp_path / "long", name="a" * 55)
    spec = folder / "scanflow.yaml"
    spec.write_text(
        spec.read_text()
        .replace("name: digits\n", f"name: {long}\n")
        .replace("service: digits", f"service: {long}")
    )
    first, second = bodies(load_project(folder)), bodies(load_project(folder))
    names = [b["metadata"]["name"] for b in first]
    assert names == [b["metadata"]["name"] for b in second]
    backup = [n for n in names if n.startswith("s" * 50) and n != long]
    assert len(backup) == 1 and len(backup[0]) == 63 and DNS1123.match(backup[0])
    namespace = first[0]["metadata"]["name"]
    assert len(namespace) == 63 and namespace.startswith("data-science-aaaa")
    assert {b["metadata"].get("namespace", namespace) for b in first} == {namespace}
    for body in first:
        kubernetes_validate.validate(body, K8S_VERSION, strict=True)


def test_generated_secrets_are_random_and_never_shown_by_dry_run(shop, capsys) -> None:
    secrets = [b for b in bodies(shop) if b["kind"] == "Secret"]
    assert {s["metadata"]["name"] for s in secrets} == {
        "scanflow-token",
        "tracker-db",
        "tracker-s3",
    }
    assert (
        by(bodies(shop), "Secret", "tracker-db")["stringData"]["password"]
        != by(bodies(shop), "Secret", "tracker-db")["stringData"]["password"]
    )
    missing = shop.base_dir / "no-kubeconfig"
    code = main(
        [
            "--app",
            str(shop.base_dir),
            "deploy",
            "--dry-run",
            "--image",
            "*=reg/x:1",
            "--kubeconfig",
            str(missing),
        ]
    )
    out = capsys.readouterr()
    assert code == 0 and "not checked by an API server" in out.err
    printed = list(yaml.safe_load_all(out.out))
    assert len(printed) == 36
    for secret in (b for b in printed if b["kind"] == "Secret"):
        assert set(secret["stringData"].values()) == {"<redacted>"}
    code = main(
        [
            "--app",
            str(shop.base_dir),
            "deploy",
            "--dry-run",
            "-o",
            "json",
            "--image",
            "*=reg/x:1",
            "--kubeconfig",
            str(missing),
        ]
    )
    listed = json.loads(capsys.readouterr().out)
    assert code == 0 and listed["kind"] == "List" and len(listed["items"]) == 36


def test_images_come_from_overrides_then_the_build_record(shop) -> None:
    from scanflow.build.records import save_records

    with pytest.raises(
        KubeError,
        match=r"no image for 'service/digits'.*run scanflow build first or pass --image digits=",
    ):
        image_for(shop, "digits", kind="service")
    save_records(
        shop,
        {"shop-service-digits": {"reference": "reg/digits:abc", "digest": "sha256:" + "1" * 64}},
        {"service/digits": {"image": "shop-service-digits"}},
    )
    assert image_for(shop, "digits", kind="service") == "reg/digits@sha256:" + "1" * 64
    overrides = {"digits": "reg/digits:override"}
    assert image_for(shop, "digits", overrides, kind="service") == "reg/digits:override"
    overrides = {"service/digits": "reg/digits:kind"}
    assert image_for(shop, "digits", overrides, kind="service") == "reg/digits:kind"
    with pytest.raises(KubeError, match=r"no image for 'agent/digits'"):
        image_for(shop, "digits", kind="agent")  # a service's image is not an agent's
    assert image_for(shop, "postgres") == "postgres:16.4"
    assert parse_overrides(["a=r/a:1", " b = r/b:2 "]) == {"a": "r/a:1", "b": "r/b:2"}
    with pytest.raises(KubeError, match=r"--image 'nope' is not NAME=REF"):
        parse_overrides(["nope"])


def test_bad_input_on_the_command_line_is_explained(shop, capsys) -> None:
    app = str(shop.base_dir)
    assert main(["--app", app, "deploy", "--dry-run", "--image", "digits"]) == 1
    assert "--image 'digits' is not NAME=REF" in capsys.readouterr().err
    assert main(["--app", app, "deploy", "--dry-run"]) == 1
    assert "run scanflow build first or pass --image" in capsys.readouterr().err
    assert main(["--app", app, "deploy", "--target", "local"]) == 1
    assert "use --target kubernetes" in capsys.readouterr().err
    broken = shop.base_dir / "broken.yaml"
    broken.write_text("clusters: [oops\n")
    assert main(["--app", app, "status", "--kubeconfig", str(broken)]) == 1
    assert f"kubeconfig {broken} is not a valid kubeconfig" in capsys.readouterr().err
