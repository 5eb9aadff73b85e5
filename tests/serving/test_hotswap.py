"""Following a registry alias under load: the switch drops nothing and never goes back."""

from __future__ import annotations

import pytest
from conftest import start_service, wait_for

from scanflow.serving.process import ServiceProcess
from scanflow.spec import Service

from .conftest import Load, oip_body

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def champion(registry, tmp_path_factory):
    registry.set_alias("champion", "1")
    state = tmp_path_factory.mktemp("state")
    service = Service("digits", model="models:/digits@champion", workers=2, poll_interval=0.2)
    proc = start_service(service, state, registry.tracking_uri)
    try:
        proc.wait_ready(120)
        wait_for(lambda: proc.client.status()["workers_ready"] == 2, 60, "two workers")
        yield proc, state
    finally:
        proc.stop()
        registry.set_alias("champion", "1")


def _metric(proc: ServiceProcess, name: str) -> float:
    text = proc.client._http.get("/metrics").text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split(" ")[1])
    return 0.0


def test_alias_move_swaps_under_load_without_failures_or_going_back(champion, registry):
    proc, _ = champion
    assert proc.client.status()["model_version"] == "1"
    body = oip_body(registry.X[:1])
    with Load(f"{proc.url}/v2/models/digits/infer", body, clients=6, max_seconds=300) as load:
        wait_for(lambda: load.count() > 100, 30, "load on version 1")
        registry.set_alias("champion", "2")
        wait_for(lambda: proc.client.status()["model_version"] == "2", 60, "version 2 serving")
        after = load.count()
        wait_for(lambda: load.count() > after + 100, 30, "load on version 2")
    records = load.result.records
    assert load.result.failures == []
    versions = {r[3] for r in records}
    assert versions == {"1", "2"}
    first_new = min(r[1] for r in records if r[3] == "2")  # first answer from version 2
    # a request sent after any client saw version 2 never comes back from version 1
    assert [r for r in records if r[0] > first_new and r[3] == "1"] == []
    status = proc.client.status()
    assert status["history"][-1]["event"] == "serving"
    assert status["history"][-1]["previous"] == "1"
    assert _metric(proc, "scanflow_model_swaps_total") == 1.0


def test_a_version_that_fails_to_load_keeps_the_old_one_and_says_why(champion, registry):
    proc, _ = champion
    registry.set_alias("champion", registry.broken_version)
    status = wait_for(
        lambda: (s := proc.client.status())["last_error"] and s,
        60,
        "the failed load to be reported",
    )
    assert "cannot predict" in status["last_error"]
    assert status["model_version"] == "2" and status["ready"]
    r = proc.client._http.post("/v2/models/digits/infer", json=oip_body(registry.X[:1]))
    assert r.status_code == 200 and r.headers["x-model-version"] == "2"
    assert _metric(proc, "scanflow_model_load_failures_total") >= 1.0
    registry.set_alias("champion", "1")  # and a good version is taken again
    wait_for(lambda: proc.client.status()["model_version"] == "1", 60, "back to version 1")
