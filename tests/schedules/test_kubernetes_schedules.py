"""Time schedules as Argo CronWorkflows, rendered offline and checked against Argo's schema:
time zone, concurrency from max_concurrent, starting deadline from catch_up, suspend from
paused; event schedules are left to the local scheduler."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanflow.kube.render import render
from scanflow.kube.render.context import Context
from scanflow.kube.render.schedules import render as render_schedules
from scanflow.spec import Application, Project

REPO = Path(__file__).resolve().parents[2]
ARGO_SCHEMA = REPO.parent / "shared" / "k8s" / "argo-v4.1.2" / "schema.json"
SCHEDULES = """
schedules:
- name: nightly
  workflow: train
  cron: "0 3 * * *"
  timezone: Europe/Madrid
  parameters: {seed: 7}
  catch_up: none
- name: every-six-hours
  workflow: train
  interval: 6h
  max_concurrent: 3
  paused: true
- name: on-promote
  workflow: train
  alias: digits@champion
"""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    text = (REPO / "examples" / "digits" / "scanflow.yaml").read_text() + SCHEDULES
    return Project(Application.from_yaml(text, check_files=False), tmp_path)


def _validate(body: dict) -> None:
    import jsonschema

    if not ARGO_SCHEMA.is_file():
        pytest.skip(f"Argo's schema is not at {ARGO_SCHEMA}")
    schema = json.loads(ARGO_SCHEMA.read_text())
    ref = {"$ref": "#/definitions/io.argoproj.workflow.v1alpha1.CronWorkflow"}
    jsonschema.validate(body, {**ref, "definitions": schema["definitions"]})


def test_each_time_schedule_is_a_cron_workflow_with_its_policies(project, caplog) -> None:
    nightly, six_hourly = render_schedules(Context(project, {"*": "registry.example/d:1"}))
    for body in (nightly, six_hourly):
        _validate(body)
        assert (
            body["kind"] == "CronWorkflow"
            and body["metadata"]["namespace"] == "data-science-digits"
        )
        templates = body["spec"]["workflowSpec"]["templates"]
        images = {t["container"]["image"] for t in templates if "container" in t}
        assert images == {"registry.example/d:1"}

    spec = nightly["spec"]
    assert nightly["metadata"]["name"] == "digits-nightly"
    assert spec["schedules"] == ["0 3 * * *"] and spec["timezone"] == "Europe/Madrid"
    assert spec["concurrencyPolicy"] == "Forbid"  # max_concurrent 1
    assert spec["startingDeadlineSeconds"] == 0  # catch_up none: a missed run never starts late
    assert "suspend" not in spec
    arguments = spec["workflowSpec"]["arguments"]["parameters"]
    assert {"name": "seed", "value": "7"} in arguments

    spec = six_hourly["spec"]
    assert spec["schedules"] == ["@every 21600s"] and spec["timezone"] == "UTC"
    assert spec["concurrencyPolicy"] == "Allow"  # max_concurrent 3: Argo cannot cap at 3
    assert spec["startingDeadlineSeconds"] == 21600  # catch_up latest: until the next one
    assert spec["suspend"] is True
    assert {"name": "seed", "value": "42"} in spec["workflowSpec"]["arguments"]["parameters"]
    assert "on-promote" in caplog.text and "local scheduler" in caplog.text


def test_deploy_renders_the_cron_workflows_after_the_rest(project) -> None:
    objects = render(project, {"*": "registry.example/d:1"})
    kinds = [o["kind"] if isinstance(o, dict) else o.kind for o in objects]
    assert kinds[0] == "Namespace" and kinds[-2:] == ["CronWorkflow", "CronWorkflow"]
