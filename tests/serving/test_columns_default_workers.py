"""The default worker count (``workers: auto``): one per available core, within bounds."""

from __future__ import annotations

import pytest
from conftest import start_service, wait_for

from scanflow.errors import SpecError
from scanflow.serving.options import available_cores, start_workers
from scanflow.spec import Application, Service


def test_auto_is_the_default_and_follows_the_cores_within_the_bounds():
    service = Service("s", model="models:/m@champion")
    assert service.workers == "auto"
    assert start_workers(service, cores=2)[0] == 2
    assert start_workers(service, cores=64)[0] == service.max_workers == 4
    assert start_workers(Service("s", model="m", min_workers=3), cores=1)[0] == 3
    n, why = start_workers(service, cores=2)
    assert "workers: auto, 2 core(s) available" in why
    assert start_workers(Service("s", model="m", workers=3), cores=64) == (
        3,
        "set by the service's 'workers'",
    )


def test_explicit_counts_are_still_checked_against_the_bounds():
    Application("a", services=[Service("s", model="m")]).check()  # auto: within bounds
    app = Application("a", services=[Service("s", model="m", workers=9)])
    with pytest.raises(SpecError, match="workers=9 must lie between"):
        app.check()
    with pytest.raises(ValueError, match="auto"):
        Service("s", model="m", workers="lots")


def test_a_server_started_with_the_default_says_how_many_workers_and_why(registry, tmp_path):
    expected = max(1, min(available_cores(), 4))
    proc = start_service(
        Service("digits", model="models:/digits/1"), tmp_path, registry.tracking_uri
    )
    try:
        proc.wait_ready(180)
        wait_for(lambda: proc.client.status()["workers_ready"] == expected, 120, "the auto workers")
        log = proc.log_file.read_text()
        assert f"starts {expected} worker(s) (workers: auto, {available_cores()} core(s)" in log
        assert proc.client.scale(1, wait=True)["workers"] == 1  # scaling still moves it
    finally:
        proc.stop()
