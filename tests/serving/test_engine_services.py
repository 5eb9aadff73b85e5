"""The local engine's service backend on a real service process: deploy, status, scale,
delete, as the agents' ServiceControl sees it."""

from __future__ import annotations

import pytest
from conftest import free_port

from scanflow.engines.registry import get_engine
from scanflow.errors import EngineError
from scanflow.spec.loader import load_project


def test_deploy_scale_status_delete_a_service(registry, tmp_path) -> None:
    from scanflow.agents.interfaces import ServiceControl

    port = free_port()
    (tmp_path / "scanflow.yaml").write_text(
        "name: digits-app\n"
        "services:\n"
        "  - name: digits\n"
        f"    model: {registry.model_dir}\n"
        f"    port: {port}\n"
        "    workers: 1\n"
        "    log_predictions: {enabled: false}\n"
    )
    project = load_project(tmp_path)
    backend = get_engine(project, tracking_uri=registry.tracking_uri).services()
    control = backend.deploy(project.app.services[0])
    try:
        assert isinstance(control, ServiceControl)
        assert backend.deploy(project.app.services[0]).url == control.url  # already running
        status = backend.status("digits")
        assert status["ready"] and status["workers"] == 1
        assert backend.scale("digits", 2)["workers"] == 2
        assert backend.control("digits").status()["workers"] == 2
    finally:
        backend.delete("digits")
    gone = backend.status("digits")  # reached at its declared port: nobody answers now
    assert gone["ready"] is False and gone["reachable"] is False
    with pytest.raises(EngineError, match="was not started by this process"):
        backend.delete("digits")
    with pytest.raises(EngineError, match="no service 'nope'.*known: digits"):
        backend.status("nope")
