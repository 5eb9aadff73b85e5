"""The dashboard's comparison, service and lineage views, over the API and in a real
browser (Debian's chromium driven by Playwright), against one shared server.

Screenshots go to $SCANFLOW_SCREENSHOTS when set (see test_browser.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from .conftest import Apps, Server, make_apps, make_model, start_server, stop_server, wait_run
from .test_browser import IMAGES, browser, signed_in  # noqa: F401 - the browser fixture
from .test_server_http import start


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Iterator[tuple[Apps, Server]]:
    apps = make_apps(tmp_path_factory.mktemp("views"))
    server = start_server(apps, include=[])  # vision alone: one MLflow store to open
    yield apps, server
    stop_server(server)
    apps.tokens.store.close()


@pytest.fixture(scope="module")
def two_runs(shared) -> tuple[str, str]:
    """Two runs of ``pipe`` with lr 0.1 and 0.5 (accuracy 0.55 and 0.75)."""
    apps, server = shared
    with server.client(apps.token()) as client:
        slow, fast = start(client, lr=0.1), start(client, lr=0.5)
        for run_id in (slow, fast):
            wait_run(client, "vision", run_id, {"succeeded"})
    return slow, fast


def test_runs_filter_and_sort_on_their_metrics(shared, two_runs) -> None:
    apps, server = shared
    slow, fast = two_runs
    with server.client(apps.token("vision", "read")) as client:
        page = client.get("/api/apps/vision/runs", params={"metric": "accuracy>=0.7"}).json()
        assert [r["id"] for r in page["items"]] == [fast]
        assert page["items"][0]["metrics"] == {"accuracy": 0.75, "loss": 0.3333}
        page = client.get(
            "/api/apps/vision/runs", params={"sort": "metric.accuracy", "metrics": "true"}
        ).json()
        assert [r["id"] for r in page["items"]][:2] == [slow, fast]
        assert page["items"][0]["metrics"]["accuracy"] == 0.55
        bad = client.get("/api/apps/vision/runs", params={"metric": "accuracy>high"})
        assert bad.status_code == 400
        assert "must compare with a number" in bad.json()["error"]


def test_compare_two_runs_over_the_api(shared, two_runs) -> None:
    apps, server = shared
    slow, fast = two_runs
    with server.client(apps.token("vision", "read")) as client:
        view = client.get("/api/apps/vision/compare", params={"run": [slow, fast]}).json()
        one = client.get("/api/apps/vision/compare", params={"run": [slow]})
    assert [r["id"] for r in view["runs"]] == [slow, fast]
    rows = {r["name"]: r for r in view["parameters"]}
    assert rows["lr"] == {"name": "lr", "values": {slow: 0.1, fast: 0.5}, "differs": True}
    assert rows["note"]["differs"] is False
    metrics = {r["name"]: r["values"] for r in view["metrics"]}
    assert metrics["accuracy"] == {slow: 0.55, fast: 0.75}
    loss = {c["run_id"]: c for c in view["curves"] if c["metric"] == "loss"}
    assert loss[fast]["steps"] == [0, 1, 2, 3] and loss[fast]["step"] == "train"
    assert loss[fast]["values"] == [0.6667, 0.5, 0.4, 0.3333]
    assert loss[slow]["values"] == [0.9091, 0.8333, 0.7692, 0.7143]
    assert one.status_code == 400 and "compare 2 to 10 different runs" in one.json()["error"]


def test_compare_two_runs_in_the_browser(browser, shared, two_runs) -> None:  # noqa: F811
    apps, server = shared
    slow, fast = two_runs
    page = signed_in(browser, server, apps.token())
    page.goto("/apps/vision/runs?mcols=accuracy,loss")
    assert page.locator("#runs-table th.metric-col").all_text_contents() == ["accuracy", "loss"]
    row = page.locator(f'#runs-table tr[data-run="{fast}"]')
    assert row.locator("td.metric").all_text_contents() == ["0.75", "0.3333"]
    page.select_option("#sort", "-metric.accuracy")
    page.wait_for_function(
        f"document.querySelector('#runs-table tbody tr').dataset.run === {fast!r}"
    )
    page.check(f'input[name="run"][value="{slow}"]')
    page.check(f'input[name="run"][value="{fast}"]')
    page.screenshot(path=str(IMAGES / "dashboard-runs-metrics.png"))
    page.click("#compare")
    page.wait_for_url("**/compare?*")
    lr = page.locator('#param-diff tr[data-name="lr"] td').all_text_contents()
    assert lr == ["0.5", "0.1"]  # in the table's order: best accuracy first
    assert page.locator('#param-diff tr[data-name="note"]').count() == 0  # equal: hidden
    page.wait_for_selector('figure.chart[data-chart="loss"] canvas')
    legend = page.locator('figure.chart[data-chart="loss"] .u-legend').text_content()
    assert slow in legend and fast in legend
    page.screenshot(path=str(IMAGES / "dashboard-compare.png"), full_page=True)
    page.click("text=show all")
    page.wait_for_selector('#param-diff tr.same[data-name="note"]')


@pytest.fixture(scope="module")
def decisions(shared, two_runs) -> dict[str, str]:
    """What DriftRetrain records, on real data: windows tested by the KS detector, the
    confirmed drift, a retrain run, a passed gate and digits@champion moved from v2 to v3;
    the service's prediction log shows v2 then v3. A second decision waits for a person."""
    import numpy as np

    from scanflow.agents.state import AgentState
    from scanflow.agents.strategies.detect import ks_detector
    from scanflow.agents.strategies.drift_retrain import confirm
    from scanflow.serving.predictions import PredictionLogWriter, log_dir
    from scanflow.store import Store
    from scanflow.store.agent_models import DecisionRecord
    from scanflow.tracking.config import embedded_tracking_uri

    apps, server = shared
    make_model(embedded_tracking_uri(apps.vision))  # digits v1..v3, champion -> v2
    from mlflow import MlflowClient

    uri = embedded_tracking_uri(apps.vision)
    registry = MlflowClient(uri, registry_uri=uri)
    registry.set_registered_model_alias("digits", "champion", "3")
    with server.client(apps.token()) as client:  # v4: made by the train step of a run
        steps = client.get(f"/api/apps/vision/runs/{two_runs[1]}").json()["steps"]
    train = next(s["mlflow_run_id"] for s in steps if s["name"] == "train")
    registry.create_model_version("digits", f"runs:/{train}/model", train)
    t0 = round(time.time()) - 3000  # times of the story, an hour ago
    rng = np.random.default_rng(3)
    reference = rng.normal(size=(300, 6))
    windows = [
        {
            **verdict,
            "rows": 100,
            "start": t0 + 100.0 * i,
            "end": t0 + 99.0 + 100 * i,
            "reference": "ref1",
            "version": "2",
        }
        for i, shift in enumerate([0.0, 1.5, 2.0])
        if (
            verdict := ks_detector(reference, rng.normal(loc=[shift, 0, 0, 0, 0, 0], size=(100, 6)))
        )
    ]
    evidence = confirm(windows, 2, 3)
    assert evidence is not None and evidence["per_feature"][0]["feature"] == "0"
    writer = PredictionLogWriter(log_dir(apps.vision / ".scanflow", "digits"))
    for ts, version in [(t0 + 100.0, "2"), (t0 + 200.0, "2"), (t0 + 300.0, "3"), (t0 + 301.0, "3")]:
        writer.append({"ts": ts, "model_version": version, "latency_ms": 2.0})
    writer.close()
    step = {"status": "done", "params": {}}
    retrained = DecisionRecord(
        id="d" * 32,
        app="vision",
        agent="watcher",
        rule="confirmed_drift",
        action="retrain",
        key="retrain",
        reason="drift in 2 of the last 3 windows (k=2, n=3)",
        status="succeeded",
        evidence={**evidence, "detected_at": t0 + 250.0},
        steps=[
            {
                **step,
                "action": "retrain",
                "started_at": t0 + 251.0,
                "message": f"run {two_runs[1]} trained v3",
                "result": {
                    "run_id": two_runs[1],
                    "run_status": "succeeded",
                    "candidate": "3",
                    "train_rows": 210,
                },
            },
            {
                **step,
                "action": "gate",
                "started_at": t0 + 280.0,
                "message": "candidate v3 passed the gate",
                "result": {
                    "candidate": "3",
                    "champion": "2",
                    "candidate_recent": 0.93,
                    "champion_recent": 0.71,
                    "passed": True,
                },
            },
            {
                **step,
                "action": "promote",
                "started_at": t0 + 290.0,
                "message": "v3 serves as digits@champion",
                "result": {"version": "3", "previous": "2", "live_at": t0 + 300.0},
            },
        ],
        outcome="v3 serves as digits@champion",
        created_at=t0 + 250.0,
        started_at=t0 + 251.0,
        finished_at=t0 + 300.0,
    )
    waiting = DecisionRecord(
        id="a" * 32,
        app="vision",
        agent="watcher",
        rule="confirmed_drift",
        action="retrain",
        key="retrain",
        reason="drift in 3 of the last 3 windows (k=2, n=3)",
        status="awaiting",
        evidence={**evidence, "detected_at": t0 + 400.0},
        steps=[
            {"action": a, "params": {}, "status": "pending"} for a in ("retrain", "gate", "promote")
        ],
        created_at=t0 + 400.0,
    )
    doubtful = DecisionRecord(
        **{c.name: getattr(waiting, c.name) for c in DecisionRecord.__table__.columns}
    )
    doubtful.id, doubtful.created_at = "b" * 32, t0 + 500.0
    store = Store.for_state_dir(apps.vision / ".scanflow")
    AgentState(store, "watcher").commit({}, [retrained, waiting, doubtful])
    store.close()
    return {"promoted": retrained.id, "waiting": waiting.id, "doubtful": doubtful.id}


def test_a_decisions_lineage_over_the_api(shared, decisions) -> None:
    apps, server = shared
    with server.client(apps.token("vision", "read")) as client:
        view = client.get(f"/api/apps/vision/decisions/{decisions['promoted']}/lineage").json()
        refused = client.post(f"/api/apps/vision/decisions/{decisions['promoted']}/revert")
    kinds = [(s["kind"], s["state"]) for s in view["steps"]]
    assert kinds == [
        ("data", "ok"),
        ("drift", "bad"),
        ("decision", "ok"),
        ("retrain", "ok"),
        ("gate", "ok"),
        ("alias", "ok"),
        ("served", "ok"),
        ("outcome", "ok"),
    ]
    steps = {s["kind"]: s for s in view["steps"]}
    assert (
        steps["served"]["evidence"]["first_at"] == steps["alias"]["evidence"]["result"]["live_at"]
    )
    assert steps["served"]["summary"] == "2 predictions logged by digits from v3"
    assert steps["drift"]["evidence"]["per_feature"][0]["drift"] is True
    assert steps["retrain"]["link"].endswith(
        f"/runs/{steps['retrain']['evidence']['result']['run_id']}"
    )
    assert view["can_revert"] and view["revert"] == {
        "model": "digits",
        "alias": "champion",
        "from": "3",
        "to": "2",
    }
    assert refused.status_code == 403
    model = client_get(server, apps, "/api/apps/vision/models/digits")
    versions = {v["version"]: v for v in model["versions"]}
    assert model["team"] == "vision" and versions["3"]["promoted_by"] == decisions["promoted"]
    made = versions["4"]
    assert (made["workflow_run"], made["workflow"], made["step"]) == (
        steps["retrain"]["evidence"]["result"]["run_id"],
        "pipe",
        "train",
    )
    assert made["parameters"]["lr"] == 0.5 and made["metrics"]["accuracy"] == 0.75


def client_get(server: Server, apps: Apps, path: str) -> dict:
    with server.client(apps.token("vision", "read")) as client:
        answer = client.get(path)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_open_a_decisions_evidence_then_revert_it(browser, shared, two_runs, decisions) -> None:  # noqa: F811
    apps, server = shared
    page = signed_in(browser, server, apps.token(), theme="dark")
    page.goto("/apps/vision/agents")
    page.click(f"#decision-{decisions['promoted']} summary")
    page.click(f"#decision-{decisions['promoted']} a.lineage-link")
    page.wait_for_url(f"**/decisions/{decisions['promoted']}")
    kinds = page.locator("#lineage > li").evaluate_all("els => els.map(e => e.dataset.kind)")
    assert kinds == ["data", "drift", "decision", "retrain", "gate", "alias", "served", "outcome"]
    drift = page.locator('#lineage li[data-kind="drift"] > details')
    drift.locator("> summary").click()
    assert (
        drift.locator("table.features tbody tr").first.locator("td").nth(5).text_content() == "yes"
    )
    drift.locator("figure.chart canvas").wait_for()
    page.locator('#lineage li[data-kind="data"] > details > summary').click()
    page.locator('#lineage li[data-kind="data"] figure.chart canvas').wait_for()
    page.screenshot(path=str(IMAGES / "dashboard-lineage-dark.png"), full_page=True)
    page.click("#revert")
    page.wait_for_function("document.getElementById('flash').textContent.includes('moved back')")
    page.wait_for_selector("#followups")  # the page reloads with the person's rollback
    assert page.locator("#revert").count() == 0
    outcome = page.locator('#lineage li[data-kind="outcome"]')
    assert outcome.get_attribute("data-state") == "bad"
    assert "rollback by person" in outcome.locator(".summary").text_content()
    with server.client(apps.token()) as client:
        assert client.get("/api/apps/vision/models/digits").json()["aliases"] == {"champion": "2"}
        again = client.post(f"/api/apps/vision/decisions/{decisions['promoted']}/revert")
    assert again.status_code == 409 and "already reverted" in again.json()["error"]
    page.goto("/apps/vision/models/digits")  # where each version comes from
    assert page.text_content('tr[data-version="4"] td.made-by a') == two_runs[1]
    assert "lr=0.5" in page.text_content('tr[data-version="4"] td.data')
    page.click('tr[data-version="3"] a.promoted-by')
    page.wait_for_url(f"**/decisions/{decisions['promoted']}")
    page.go_back()
    page.screenshot(path=str(IMAGES / "dashboard-model-lineage-dark.png"), full_page=True)


def test_approve_a_plan_that_waits_for_a_person(browser, shared, decisions) -> None:  # noqa: F811
    apps, server = shared
    page = signed_in(browser, server, apps.token())
    page.goto(f"/apps/vision/decisions/{decisions['waiting']}")
    assert page.text_content("#decision-status") == "awaiting"
    decision = page.locator('#lineage li[data-kind="decision"]')
    assert decision.get_attribute("data-state") == "wait"
    assert "waits for a person" in decision.locator(".summary").text_content()
    page.screenshot(path=str(IMAGES / "dashboard-approval.png"), full_page=True)
    page.click("#approve")
    page.wait_for_function("document.getElementById('decision-status').textContent === 'approved'")
    assert page.locator("#approve").count() == 0
    assert "approve" in page.text_content("#followups")
    with server.client(apps.token()) as client:
        view = client.get(f"/api/apps/vision/decisions/{decisions['waiting']}").json()
        again = client.post(f"/api/apps/vision/decisions/{decisions['waiting']}/approve")
    assert view["status"] == "approved"
    assert again.status_code == 409 and "only an awaiting plan" in again.json()["error"]


def test_reject_a_plan_that_waits_for_a_person(browser, shared, decisions) -> None:  # noqa: F811
    apps, server = shared
    url = f"/api/apps/vision/decisions/{decisions['doubtful']}"
    with server.client(apps.token("vision", "read")) as client:
        refused = client.post(f"{url}/reject", json={"reason": "no"})
    assert refused.status_code == 403 and "read-only" in refused.json()["error"]
    reader = signed_in(browser, server, apps.token("vision", "read"))
    reader.goto(f"/apps/vision/decisions/{decisions['doubtful']}")
    reader.click("#reject")
    reader.wait_for_function(
        "document.getElementById('flash').textContent.includes('read-only')"
    )  # fmt: skip
    assert reader.text_content("#decision-status") == "awaiting"
    reader.context.close()
    page = signed_in(browser, server, apps.token())
    page.goto(f"/apps/vision/decisions/{decisions['doubtful']}")
    assert page.text_content("#decision-status") == "awaiting"
    forged = page.request.post(f"{url}/reject", data={})  # the session cookie, no CSRF token
    assert forged.status == 403 and "CSRF" in forged.json()["error"]
    page.fill("#reject-reason", "the drift is a <b>holiday</b>")
    page.click("#reject")
    page.wait_for_function("document.getElementById('decision-status').textContent === 'rejected'")
    assert page.locator("#approve").count() == 0 and page.locator("#reject").count() == 0
    assert "rejected by vision/" in page.text_content("#followups")
    assert "the drift is a <b>holiday</b>" in page.text_content("#followups")  # text, not HTML
    decision = page.locator('#lineage li[data-kind="decision"]')
    assert decision.get_attribute("data-state") == "bad"
    with server.client(apps.token()) as client:
        view = client.get(url).json()
        [person] = [
            d for d in client.get("/api/apps/vision/decisions").json()
            if d["correlation_id"] == view["id"]
        ]  # fmt: skip
        again = client.post(f"{url}/reject")
        approve = client.post(f"{url}/approve")
        done = client.post(f"/api/apps/vision/decisions/{decisions['promoted']}/reject")
        missing = client.post("/api/apps/vision/decisions/nosuchdecision/reject")
        long = client.post(f"{url}/reject", json={"reason": "x" * 501})
    assert view["status"] == "rejected" and view["finished_at"] is not None
    assert [s["status"] for s in view["steps"]] == ["skipped"] * 3
    assert view["outcome"].endswith(": the drift is a <b>holiday</b>")
    assert person["action"] == "reject" and person["evidence"]["reason"].endswith("</b>")
    assert again.status_code == 409
    assert again.json()["error"].endswith("is rejected; only an awaiting plan can be rejected")
    assert approve.status_code == 409 and "only an awaiting plan can be approved" in approve.text
    assert done.status_code == 409 and "is succeeded; only an awaiting plan" in done.text
    assert missing.status_code == 404
    assert long.status_code == 422 and "reason" in long.text  # the field at fault is named


def test_pause_then_resume_an_agent_in_the_browser(browser, shared) -> None:  # noqa: F811
    apps, server = shared
    page = signed_in(browser, server, apps.token())
    page.goto("/apps/vision/agents")
    row = page.locator("#agent-watcher")
    assert row.locator(".paused").count() == 0
    row.locator("button.agent-action").click()  # Pause
    page.wait_for_selector("#agent-watcher .paused")
    assert "by vision/" in row.locator(".paused").get_attribute("title")
    assert row.locator("button.agent-action").text_content() == "Resume"
    with server.client(apps.token()) as client:
        agents = client.get("/api/apps/vision/agents").json()
        forged = page.request.post("/api/apps/vision/agents/watcher/resume", data={})
        missing = client.post("/api/apps/vision/agents/nobody/pause")
    assert [a["paused"]["by"][:7] for a in agents if a["name"] == "watcher"] == ["vision/"]
    assert forged.status == 403 and "CSRF" in forged.json()["error"]
    assert missing.status_code == 404 and "no agent 'nobody'" in missing.json()["error"]
    row.locator("button.agent-action").click()  # Resume
    page.wait_for_function(
        "document.querySelector('#agent-watcher button.agent-action').textContent === 'Pause'"
    )
    assert row.locator(".paused").count() == 0
