"""The dashboard's comparison, service and lineage views, over the API and in a real
browser (Debian's chromium driven by Playwright), against one shared server.

Screenshots go to $SCANFLOW_SCREENSHOTS when set (see test_browser.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .conftest import Apps, Server, make_apps, start_server, stop_server, wait_run
from .test_browser import IMAGES, browser, signed_in  # noqa: F401 - the browser fixture
from .test_server_http import start


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Iterator[tuple[Apps, Server]]:
    apps = make_apps(tmp_path_factory.mktemp("views"))
    server = start_server(apps, include=[apps.audio])
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
    page.screenshot(path=str(IMAGES / "dashboard-runs.png"))
    page.click("#compare")
    page.wait_for_url("**/compare?*")
    lr = page.locator('#param-diff tr[data-name="lr"] td').all_text_contents()
    assert lr == ["0.5", "0.1"]  # in the table's order: best accuracy first
    assert page.locator('#param-diff tr[data-name="note"]').count() == 0  # equal: hidden
    page.wait_for_selector('figure.chart[data-chart="loss"] canvas')
    legend = page.locator('figure.chart[data-chart="loss"] .u-legend').text_content()
    assert slow in legend and fast in legend
    page.screenshot(path=str(IMAGES / "dashboard-compare.png"), full_page=True)
