"""What the Kubernetes engine sends to a cluster, checked offline: Argo objects against
Argo's schema, Jobs with kubernetes-validate (strict), the step pod's command and DAG."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from scanflow.engines.kubernetes import argo, jobs
from scanflow.engines.kubernetes.argo_state import run_phase, step_states
from scanflow.engines.kubernetes.steps import ENTRY, parse_step_uri, plan_run, step_uri
from scanflow.errors import EngineError
from scanflow.spec.model import Application

REPO = Path(__file__).resolve().parents[2]
ARGO_SCHEMA = REPO.parent / "shared" / "k8s" / "argo-v4.1.2" / "schema.json"
KINDS = ("Workflow", "WorkflowTemplate", "CronWorkflow")


@pytest.fixture
def app() -> Application:
    app = Application.from_yaml(
        (REPO / "examples" / "digits" / "scanflow.yaml").read_text(), check_files=False
    )
    app.kubernetes.serving_node_label = "scanflow.io/serving=true"
    app.kubernetes.image_pull_secrets = ["registry-login"]
    forest = app.workflow("train").executor("train-forest")
    forest.retries, forest.retry_backoff, forest.timeout = 3, 2.0, 90.5
    return app


def _validate_argo(body: dict, kind: str) -> None:
    import jsonschema

    if not ARGO_SCHEMA.is_file():
        pytest.skip(f"Argo's schema is not at {ARGO_SCHEMA}")
    schema = json.loads(ARGO_SCHEMA.read_text())
    ref = {"$ref": f"#/definitions/io.argoproj.workflow.v1alpha1.{kind}"}
    jsonschema.validate(body, {**ref, "definitions": schema["definitions"]})


def _rendered(app: Application) -> dict[str, dict]:
    plans = plan_run(app, "train", "train-1", {"seed": 42}, by_reference=True)
    template = plan_run(app, "train", argo.TEMPLATE_RUN_ID, {"seed": 42}, by_reference=True)
    return {
        "Workflow": argo.render_workflow(app, "train", plans, {"seed": 7}, "ns", {"k": "v"}),
        "WorkflowTemplate": argo.render_workflow_template(app, "train", template, "ns"),
        "CronWorkflow": argo.render_cron_workflow(app, "train", template, "ns", "0 3 * * *"),
    }


def _spec(body: dict) -> dict:
    return body["spec"].get("workflowSpec", body["spec"])


@pytest.mark.parametrize("kind", KINDS)
def test_argo_objects_match_argos_schema_with_a_command_in_every_template(app, kind) -> None:
    body = _rendered(app)[kind]
    _validate_argo(body, kind)
    assert body["kind"] == kind and body["apiVersion"] == "argoproj.io/v1alpha1"
    spec = _spec(body)
    containers = [t for t in spec["templates"] if "container" in t]
    assert len(containers) == 4
    for template in containers:
        assert template["container"]["command"] == ENTRY
        assert "outputs" not in template  # outputs travel by URI: nothing waits on Argo's
        labels = template["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "scanflow"
        assert labels["scanflow.io/step"] == template["name"]
        terms = template["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"]
        assert terms == [
            {
                "matchExpressions": [
                    {"key": "scanflow.io/serving", "operator": "NotIn", "values": ["true"]}
                ]
            }
        ]
    assert spec["imagePullSecrets"] == [{"name": "registry-login"}]
    assert spec["arguments"]["parameters"][0]["name"] == "seed"


def test_the_workflow_is_a_dag_with_retries_deadline_and_generate_name(app) -> None:
    body = _rendered(app)["Workflow"]
    assert body["metadata"]["generateName"] == "digits-train-" and "name" not in body["metadata"]
    assert body["spec"]["arguments"]["parameters"] == [{"name": "seed", "value": "7"}]
    [dag] = [t for t in body["spec"]["templates"] if "dag" in t]
    assert body["spec"]["entrypoint"] == dag["name"]
    deps = {t["name"]: sorted(t.get("dependencies", [])) for t in dag["dag"]["tasks"]}
    assert deps == {
        "load-data": [],
        "train-logreg": ["load-data"],
        "train-forest": ["load-data"],
        "evaluate": ["load-data", "train-forest", "train-logreg"],
    }
    templates = {t["name"]: t for t in body["spec"]["templates"]}
    forest = templates["train-forest"]
    assert forest["retryStrategy"] == {
        "limit": "3",
        "retryPolicy": "Always",
        "backoff": {"duration": "2s", "factor": "2"},
    }
    assert forest["activeDeadlineSeconds"] == "91"  # IntOrString: Argo's schema says string
    assert "retryStrategy" not in templates["load-data"]
    args = templates["evaluate"]["container"]["args"]
    assert "forest=scanflow://train-1/train-forest/model" in args
    assert "seed={{workflow.parameters.seed}}" in args  # the workflow parameter, by reference
    assert forest["container"]["resources"] == {"requests": {"cpu": "1"}}


def test_a_template_refers_to_the_run_by_the_workflows_name(app) -> None:
    body = _rendered(app)["CronWorkflow"]
    assert body["spec"]["schedules"] == ["0 3 * * *"]
    assert body["spec"]["concurrencyPolicy"] == "Forbid"
    templates = {t["name"]: t for t in body["spec"]["workflowSpec"]["templates"]}
    args = templates["train-logreg"]["container"]["args"]
    assert "dataset=scanflow://{{workflow.name}}/load-data/dataset" in args
    assert "scanflow.io/run" not in templates["train-logreg"]["metadata"]["labels"]


def test_jobs_are_valid_kubernetes_objects_in_strict_mode(app) -> None:
    import kubernetes_validate

    plans = plan_run(app, "train", "train-1", {"seed": 42})
    plan = jobs.parent_plan(app, "train-1", "ns", plans, 0)
    parent = jobs.render_parent(app, "train-1", "ns", plan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for body in [parent] + [entry["job"] for entry in plan]:
            kubernetes_validate.validate(body, "1.33", strict=True)
    forest = next(e for e in plan if e["name"] == "train-forest")
    spec = forest["job"]["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"]) == (3, 91)
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["containers"][0]["command"] == ENTRY
    assert "seed=42" in pod["containers"][0]["args"]  # the value itself: no Argo to fill it
    assert pod["affinity"]["nodeAffinity"]
    assert forest["depends_on"] == ["load-data"]
    assert json.loads(parent["data"][jobs.PLAN_KEY])[0]["name"] == "load-data"


def test_step_uris_round_trip_and_bad_ones_are_named() -> None:
    assert parse_step_uri(step_uri("r-1", "load-data", "dataset")) == (
        "r-1",
        "load-data",
        "dataset",
    )
    with pytest.raises(EngineError, match="'s3://b/k' is not a step output URI"):
        parse_step_uri("s3://b/k")


def test_argo_status_read_as_step_states() -> None:
    workflow = {
        "status": {
            "phase": "Failed",
            "message": "child failed",
            "nodes": {
                "a": {"displayName": "load-data", "type": "Pod", "phase": "Succeeded"},
                "b": {
                    "displayName": "train-forest",
                    "type": "Retry",
                    "phase": "Failed",
                    "children": ["c", "d"],
                    "message": "No more retries left",
                },
                "c": {"displayName": "train-forest(0)", "type": "Pod", "phase": "Failed"},
                "e": {"displayName": "evaluate", "type": "Omitted", "phase": "Omitted"},
            },
        }
    }
    keys = {"load-data": "load-data", "train-forest": "train-forest", "evaluate": "evaluate"}
    states = step_states(workflow, keys)
    assert {n: (s.status, s.attempts) for n, s in states.items()} == {
        "load-data": ("succeeded", 1),
        "train-forest": ("failed", 2),
        "evaluate": ("skipped", 1),
    }
    assert states["train-forest"].message == "No more retries left"
    assert run_phase(workflow) == ("failed", "child failed")


def test_job_status_read_as_a_step_state() -> None:
    failed = {
        "status": {
            "failed": 2,
            "startTime": "2026-12-06T10:00:00Z",
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                    "lastTransitionTime": "2026-12-06T10:00:05Z",
                }
            ],
        }
    }
    state = jobs.job_state(failed)
    assert (state.status, state.attempts) == ("failed", 2)
    assert state.message.startswith("BackoffLimitExceeded: Job has reached")
    assert state.finished - state.started == 5
    assert jobs.job_state({"status": {"active": 1}}).status == "running"
