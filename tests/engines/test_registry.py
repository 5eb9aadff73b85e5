"""Engines by name: built in, installed with an entry point, or registered in process."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from scanflow.engines import registry
from scanflow.engines.local import LocalEngine
from scanflow.errors import EngineError, SpecError

HELLO = """
name: hello
workflows:
- name: greet
  executors:
  - name: say
    function: steps:say
    outputs: []
"""

PLUGIN = '''
class EchoEngine:
    """An engine from another package: it only remembers how it was made."""

    name = "echo"

    def __init__(self, project, **options):
        self.project, self.options = project, options
'''


def test_local_is_built_in_and_the_default(make_project) -> None:
    project = make_project(HELLO, {"steps.py": "def say():\n    pass\n"})
    assert "local" in registry.engine_names()
    engine = registry.get_engine(project, tracking=False)
    assert isinstance(engine, LocalEngine) and engine.name == "local"


def test_an_unknown_engine_lists_the_known_ones(make_project) -> None:
    project = make_project(HELLO, {"steps.py": ""})
    with pytest.raises(
        EngineError, match=r"unknown engine 'nomad'; known engines: kubernetes, local\b"
    ):
        registry.get_engine(project, "nomad")
    with pytest.raises(EngineError, match="entry point in the group 'scanflow.engines'"):
        registry.check_name("nomad")


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A package on sys.path that declares the engine ``echo`` as an entry point."""
    site = tmp_path / "site"
    info = site / "echo_engine-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-engine\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[scanflow.engines]\necho = echo_engine:EchoEngine\n")
    (site / "echo_engine.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(site))
    yield "echo"
    sys.modules.pop("echo_engine", None)


def test_an_installed_plugin_is_found_by_name(installed_plugin, make_project) -> None:
    assert installed_plugin in registry.engine_names()
    project = make_project(HELLO.replace("name: hello", "name: hello\ntarget: echo"))
    assert project.app.target == "echo"  # the spec accepts an installed engine's name
    engine = registry.get_engine(project, on_event=print)
    assert type(engine).__name__ == "EchoEngine" and engine.options == {"on_event": print}
    assert engine.project is project


def test_register_in_process_then_unregister(make_project) -> None:
    project = make_project(HELLO, {"steps.py": ""})
    made = []
    registry.register("fake", lambda p, **o: made.append((p, o)) or "an engine")
    try:
        assert "fake" in registry.engine_names()
        assert registry.get_engine(project, "fake", x=1) == "an engine"
        assert made == [(project, {"x": 1})]
    finally:
        registry.unregister("fake")
    assert "fake" not in registry.engine_names()


def test_the_spec_target_names_a_known_engine(make_project) -> None:
    with pytest.raises(SpecError, match="target: unknown engine 'lokal'; did you mean 'local'"):
        make_project(HELLO.replace("name: hello", "name: hello\ntarget: lokal"))
    project = make_project(HELLO.replace("name: hello", "name: hello\ntarget: local"))
    assert project.app.target == "local" and "target" not in project.app.to_yaml()
