"""The dashboard in a real browser: Debian's chromium driven by Playwright.

Screenshots of the pages go to $SCANFLOW_SCREENSHOTS when set (``SCANFLOW_SCREENSHOTS=docs/images``
refreshes the ones docs/dashboard.md shows), else to a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from conftest import wait_for

from .conftest import Apps, Server, make_model, wait_run
from .test_server_http import start

IMAGES = Path(os.environ.get("SCANFLOW_SCREENSHOTS") or tempfile.mkdtemp(prefix="screens-"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.fail(
            "Debian's chromium is not installed: 'make test' installs it "
            "(scripts/install.sh runs 'apt-get install chromium')"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def step_is(page, step: str, status: str) -> None:
    """Wait until the DAG shows ``step`` in ``status``."""
    page.wait_for_selector(f'#dag g.node[data-step="{step}"][data-status="{status}"]')


def signed_in(browser, server: Server, token: str, theme: str = "light"):
    context = browser.new_context(
        base_url=server.url, viewport={"width": 1280, "height": 800}, color_scheme=theme
    )
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto("/")
    page.wait_for_url("**/login")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/")
    return page


def test_sign_in_and_watch_the_dag_change_live(browser, apps: Apps, server: Server) -> None:
    gate = apps.root / "gate"
    page = signed_in(browser, server, apps.token())
    assert "team vision · admin" in page.text_content("#who")
    with server.client(apps.token()) as client:
        run_id = start(client, gate=str(gate))
        page.goto(f"/apps/vision/runs/{run_id}")
        # the DAG is drawn at once; train waits at its gate while the page watches
        train = page.locator('#dag g.node[data-step="train"]')
        train.wait_for()
        assert page.locator("#dag g.node").count() == 3
        step_is(page, "train", "running")
        page.screenshot(path=str(IMAGES / "dashboard-run-live.png"))
        gate.touch()
        step_is(page, "report", "succeeded")
        assert page.text_content("#run-status") == "succeeded"
        wait_run(client, "vision", run_id, {"succeeded"})


def test_retry_a_failed_run_from_its_failed_step(browser, apps: Apps, server: Server) -> None:
    fail = apps.root / "fail"
    fail.touch()
    page = signed_in(browser, server, apps.token(), theme="dark")
    with server.client(apps.token()) as client:
        run_id = start(client, fail=str(fail))
        wait_run(client, "vision", run_id, {"failed"})
        page.goto(f"/apps/vision/runs/{run_id}")
        page.locator('#dag g.node[data-step="train"]').click()
        page.wait_for_function("document.getElementById('log').textContent.includes('failing')")
        page.screenshot(path=str(IMAGES / "dashboard-run-failed-dark.png"))
        fail.unlink()
        page.click("#retry")
        step_is(page, "report", "succeeded")
        view = wait_run(client, "vision", run_id, {"succeeded"})
        assert {s["name"]: len(s["attempts"]) for s in view["steps"]} == {
            "prepare": 1,
            "train": 2,
            "report": 1,
        }


def test_promote_then_roll_back_a_model(browser, apps: Apps, server: Server) -> None:
    from scanflow.tracking.config import embedded_tracking_uri

    make_model(embedded_tracking_uri(apps.vision))
    page = signed_in(browser, server, apps.token())
    page.goto("/apps/vision/models/digits")
    assert "champion → v2" in page.text_content("#aliases")
    page.click('tr[data-version="3"] button.move-alias')
    page.wait_for_function("document.getElementById('aliases').textContent.includes('v3')")
    page.screenshot(path=str(IMAGES / "dashboard-model.png"))
    page.click('tr[data-version="2"] button.move-alias')
    page.wait_for_function("document.getElementById('aliases').textContent.includes('v2')")
    with server.client(apps.token()) as client:
        aliases = client.get("/api/apps/vision/models/digits").json()["aliases"]
    assert aliases == {"champion": "2"}


def test_read_only_is_refused_and_other_teams_runs_are_not_found(
    browser, apps: Apps, server: Server
) -> None:
    with server.client(apps.token("audio")) as client:
        audio_run = start(client, "audio")
        wait_run(client, "audio", audio_run, {"succeeded"})
    fail = apps.root / "fail"
    fail.touch()
    with server.client(apps.token()) as client:
        run_id = start(client, fail=str(fail))
        wait_run(client, "vision", run_id, {"failed"})
    page = signed_in(browser, server, apps.token("vision", "read"))
    page.goto(f"/apps/vision/runs/{run_id}")
    page.click("#retry")
    page.wait_for_function("document.getElementById('flash').textContent.includes('read-only')")
    assert "error" in page.get_attribute("#flash", "class")
    answer = page.goto(f"/apps/audio/runs/{audio_run}")
    assert answer.status == 404
    assert page.text_content("#error-message") == "no application 'audio'"


def test_markup_in_parameters_and_logs_is_shown_as_text(
    browser, apps: Apps, server: Server
) -> None:
    note = '<img src=x onerror="window.pwned=1"><script>window.pwned=1</script>'
    with server.client(apps.token()) as client:
        run_id = start(client, note=note)
        wait_run(client, "vision", run_id, {"succeeded"})
    page = signed_in(browser, server, apps.token())
    page.goto("/apps/vision/runs?cols=note,lr")
    assert page.locator("#runs-table td.param").first.text_content() == note
    page.screenshot(path=str(IMAGES / "dashboard-runs.png"))
    page.goto(f"/apps/vision/runs/{run_id}")
    assert page.locator("#run-params td.param-value").first.text_content() == note
    page.locator('#dag g.node[data-step="report"]').click()
    wait_for(lambda: "<script>alert('log')</script>" in page.text_content("#log"), 60, "the log")
    page.locator('#dag g.node[data-step="prepare"]').click()
    page.wait_for_function("document.getElementById('log').textContent.includes('onerror')")
    assert page.evaluate("window.pwned") is None
    assert page.locator("#log img, #log script, #run-params img").count() == 0


def test_a_10_mb_log_is_capped_on_the_page(browser, apps: Apps, server: Server) -> None:
    with server.client(apps.token()) as client:
        run_id = start(client, loud=10_000_000)
        wait_run(client, "vision", run_id, {"succeeded"})
    page = signed_in(browser, server, apps.token())
    page.goto(f"/apps/vision/runs/{run_id}")
    page.locator('#dag g.node[data-step="prepare"]').click()
    page.wait_for_selector("#log a")  # the link to the whole log ends the shown part
    shown = page.evaluate("document.getElementById('log').textContent.length")
    assert 1_000_000 < shown < (1 << 20) + 100, shown
    assert page.get_attribute("#log a", "href").endswith("/logs?step=prepare")
    page.locator('#dag g.node[data-step="report"]').click()  # the page still answers
    wait_for(lambda: "<script>alert('log')</script>" in page.text_content("#log"), 60, "the log")
