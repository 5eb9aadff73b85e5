"""The control server's manifests: rendered with a managed tracker, its store the tracker's
PostgreSQL by Secret references only, probed on its health endpoint, least privilege."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest

from kube.apps import write_shop
from scanflow.errors import KubeError
from scanflow.kube.apply import to_dict
from scanflow.kube.render import render
from scanflow.spec import load_project

K8S_VERSION = "1.36.0"
IMAGES = {"*": "registry.example/shop:1"}
SERVER = "scanflow-server"


@pytest.fixture
def shop(tmp_path: Path):
    return load_project(write_shop(tmp_path / "shop"))


def _objects(project, images=IMAGES) -> dict[str, dict]:
    bodies = [to_dict(o) for o in render(project, images)]
    return {f"{b['kind']}/{b['metadata']['name']}": b for b in bodies}


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container["env"]}


def test_the_server_runs_scanflow_server_on_the_trackers_postgresql(shop) -> None:
    found = _objects(shop)
    for kind in ("ServiceAccount", "Role", "RoleBinding", "Deployment", "Service"):
        kubernetes_validate.validate(found[f"{kind}/{SERVER}"], K8S_VERSION, strict=True)
    pod = found[f"Deployment/{SERVER}"]["spec"]["template"]["spec"]
    [main] = pod["containers"]
    assert main["image"] == "registry.example/shop:1"
    assert main["command"] == [
        "scanflow", "--app", "/app", "server", "--host", "0.0.0.0", "--port", "8070"
    ]  # fmt: skip
    for probe in (main["readinessProbe"], main["livenessProbe"]):
        assert probe["httpGet"] == {"path": "/api/health", "port": "http"}
    assert main["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"},
                                 "limits": {"memory": "1Gi"}}  # fmt: skip
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["serviceAccountName"] == SERVER

    env = _env(main)
    references = {n: e["valueFrom"]["secretKeyRef"] for n, e in env.items() if "valueFrom" in e}
    assert references == {
        "SCANFLOW_DB_USER": {"name": "tracker-db", "key": "username"},
        "SCANFLOW_DB_PASSWORD": {"name": "tracker-db", "key": "password"},
        "SCANFLOW_DB_NAME": {"name": "tracker-db", "key": "database"},
        "SCANFLOW_TOKEN": {"name": "scanflow-token", "key": "token"},
    }
    # Kubernetes expands $(VAR) of variables declared before it: no credential in the manifest
    assert env["SCANFLOW_STORE_URI"]["value"] == (
        "postgresql://$(SCANFLOW_DB_USER):$(SCANFLOW_DB_PASSWORD)@tracker-db:5432/$(SCANFLOW_DB_NAME)"
    )
    names = list(env)
    assert names.index("SCANFLOW_DB_PASSWORD") < names.index("SCANFLOW_STORE_URI")
    assert env["MLFLOW_TRACKING_URI"]["value"] == "http://mlflow.data-science-shop.svc:5000"
    password = found["Secret/tracker-db"]["stringData"]["password"]
    assert password not in str(found[f"Deployment/{SERVER}"])

    service = found[f"Service/{SERVER}"]["spec"]
    assert service["ports"] == [{"name": "http", "port": 8070, "targetPort": "http"}]
    assert service["selector"] == found[f"Deployment/{SERVER}"]["spec"]["selector"]["matchLabels"]


def test_the_servers_role_reads_scales_and_submits_in_its_namespace_only(shop) -> None:
    found = _objects(shop)
    assert not [k for k in found if k.startswith("Cluster")]
    rules = {
        (r["apiGroups"][0], r["resources"][0]): r["verbs"] for r in found[f"Role/{SERVER}"]["rules"]
    }
    assert rules == {
        ("", "pods"): ["get", "list", "watch"],
        ("", "pods/log"): ["get"],
        ("apps", "deployments"): ["get", "list", "watch"],
        ("apps", "deployments/scale"): ["get", "patch"],
        ("argoproj.io", "workflows"): ["create", "get", "list", "watch"],
        ("batch", "jobs"): ["create", "get", "list", "watch"],
    }
    assert ("", "secrets") not in rules  # it reads its credentials from its environment
    binding = found[f"RoleBinding/{SERVER}"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": SERVER, "namespace": "data-science-shop"}
    ]


def test_agents_share_the_servers_store(shop) -> None:
    found = _objects(shop)
    for agent in ("agent-scaler", "agent-guard", "agent-retrainer"):
        [main] = found[f"Deployment/{agent}"]["spec"]["template"]["spec"]["containers"]
        env = _env(main)
        assert (
            env["SCANFLOW_STORE_URI"]
            == _env(found[f"Deployment/{SERVER}"]["spec"]["template"]["spec"]["containers"][0])[
                "SCANFLOW_STORE_URI"
            ]
        )
        assert env["SCANFLOW_DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "tracker-db"


def test_without_a_managed_tracker_there_is_no_server(tmp_path: Path) -> None:
    text = (write_shop(tmp_path / "shop") / "scanflow.yaml").read_text()
    (tmp_path / "shop" / "scanflow.yaml").write_text(text.replace("tracker: {managed: true}\n", ""))
    found = _objects(load_project(tmp_path / "shop"))
    assert not [k for k in found if SERVER in k or k == "Secret/tracker-db"]
    [agent] = found["Deployment/agent-scaler"]["spec"]["template"]["spec"]["containers"]
    assert "SCANFLOW_STORE_URI" not in _env(agent)


def test_the_servers_image_is_its_own_or_an_agents_else_a_clear_error(shop) -> None:
    images = {"server/scanflow-server": "reg/server:2", "agent/scaler": "reg/scaler:1"}
    assert _image(shop, images) == "reg/server:2"
    assert _image(shop, {"agent/scaler": "reg/scaler:1"}) == "reg/scaler:1"
    shop.app.agents.clear()
    with pytest.raises(KubeError, match=r"no image for the control server .* run scanflow "
                       r"build first or pass --image scanflow-server=REF"):  # fmt: skip
        _image(shop, {"service/digits": "reg/digits:1"})


def _image(project, images: dict[str, str]) -> str:
    from scanflow.kube.render import server
    from scanflow.kube.render.context import Context

    return server.image(Context(project, images))
