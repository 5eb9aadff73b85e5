"""Unit tier: which images an application needs, their Dockerfiles and their tags."""

from __future__ import annotations

import json

import pytest

import scanflow
from scanflow.build.images import plan_builds
from scanflow.build.plan import plan_images, select
from scanflow.errors import BuildError


def by_name(builds):
    return {b.plan.name: b for b in builds}


def test_executors_sharing_requirements_share_an_image(shop):
    images = {i.name: i for i in plan_images(shop())}
    steps = [n for n in images if n.startswith("shop-steps-")]
    assert len(steps) == 1 and steps[0] != "shop-steps"
    assert [c.key for c in images[steps[0]].components] == [
        "executor/train/prepare",
        "executor/train/fit",
    ]
    assert images[steps[0]].requirements == ("scikit-learn",)
    assert [c.key for c in images["shop-steps"].components] == ["executor/train/report"]
    assert set(images) == {steps[0], "shop-steps", "shop-service-predictor", "shop-agent-watcher"}


def test_each_component_has_an_explicit_command(shop):
    components = {c.key: c for i in plan_images(shop()) for c in i.components}
    assert components["executor/train/prepare"].command == ["python"]
    assert components["executor/train/prepare"].args == ["/app/steps/prepare.py"]
    assert components["executor/train/fit"].args == ["-m", "scanflow.engines.local.step_main"]
    service = components["service/predictor"]
    assert service.command == ["scanflow", "--app", "/app", "serve"]
    assert service.args[0] == "models:/shop@champion"
    assert service.args[service.args.index("--port") + 1] == "9000"
    spec = json.loads(service.args[service.args.index("--spec-json") + 1])
    assert spec == {"name": "predictor", "model": "models:/shop@champion", "port": 9000}
    agent = components["agent/watcher"]
    assert agent.command == ["scanflow", "--app", "/app", "agents", "up"]
    assert agent.args == ["watcher", "--port", "8080"]


def test_dockerfile_installs_the_wheel_as_a_non_root_user(shop):
    builds = by_name(plan_builds(shop(base_image="debian:bookworm")))
    steps = next(b for name, b in builds.items() if name.startswith("shop-steps-"))
    text = steps.dockerfile
    lines = text.splitlines()
    assert lines[1] == "FROM debian:bookworm"
    wheel = f"scanflow-{scanflow.__version__}-py3-none-any.whl"
    assert (
        f"pip install --no-cache-dir --disable-pip-version-check /tmp/scanflow/wheels/{wheel}"
        in text
    )
    assert "-r /tmp/scanflow/requirements.txt" in text
    assert "useradd --uid 10001" in text
    assert lines[-4] == "USER 10001:10001"
    assert lines[-2] == 'ENTRYPOINT ["python"]'
    assert lines[-1] == "CMD []"
    assert "COPY code/ /app/" in text
    # the code comes after the packages, so a code change leaves the install steps alone
    assert text.index("COPY code/") > text.index("RUN ")
    # no host path is mounted, nothing is copied into site-packages
    assert "site-packages" not in text and "VOLUME" not in text and "/work" not in text
    # an image without requirements does not install any
    assert "-r /tmp/scanflow/requirements.txt" not in builds["shop-steps"].dockerfile
    service = builds["shop-service-predictor"].dockerfile.splitlines()
    assert service[-2] == 'ENTRYPOINT ["scanflow", "--app", "/app", "serve"]'
    assert json.loads(service[-1].removeprefix("CMD "))[0] == "models:/shop@champion"


def test_context_lists_dockerfile_requirements_wheel_and_code(shop):
    build = by_name(plan_builds(shop()))["shop-steps"]
    assert build.files[:3] == [
        "Dockerfile",
        "requirements.txt",
        f"wheels/scanflow-{scanflow.__version__}-py3-none-any.whl",
    ]
    code = build.files[3:]
    assert code == sorted(code)
    assert set(code) == {
        "code/report.py",
        "code/scanflow.yaml",
        "code/steps/__init__.py",
        "code/steps/fit.py",
        "code/steps/prepare.py",
    }


def test_hidden_folders_and_caches_are_not_code(shop):
    project = shop()
    (project.base_dir / ".scanflow").mkdir()
    (project.base_dir / ".scanflow" / "store.db").write_text("x")
    (project.base_dir / "steps" / "__pycache__").mkdir()
    (project.base_dir / "steps" / "__pycache__" / "fit.cpython-311.pyc").write_text("x")
    (project.base_dir / "mlruns").mkdir()
    (project.base_dir / "mlruns" / "meta.yaml").write_text("x")
    files = by_name(plan_builds(project))["shop-steps"].files
    assert not [f for f in files if ".scanflow" in f or "pycache" in f or "mlruns" in f]


def test_tags_are_stable_for_unchanged_input(shop):
    first = {b.plan.name: b.reference for b in plan_builds(shop())}
    again = {b.plan.name: b.reference for b in plan_builds(shop())}
    assert first == again
    for reference in first.values():
        deps, code = reference.rsplit(":", 1)[1].split("-")
        assert len(deps) == len(code) == 12


def tags(project):
    return {b.plan.name: b.tag.split("-") for b in plan_builds(project)}


def test_a_code_change_changes_only_the_code_part(shop):
    project = shop()
    before = tags(project)
    (project.base_dir / "steps" / "prepare.py").write_text("print('prepare v2')\n")
    after = tags(project)
    for name in before:
        assert after[name][0] == before[name][0], name
        assert after[name][1] != before[name][1], name


def test_a_requirements_change_changes_only_that_images_deps(shop):
    from tests.build.conftest import SPEC

    before = tags(shop())
    after = tags(shop(SPEC.replace("requirements: [scikit-learn]", "requirements: [scipy]")))
    old = next(n for n in before if n.startswith("shop-steps-"))
    new = next(n for n in after if n.startswith("shop-steps-"))
    assert old != new  # another requirement set: another image
    for name in ("shop-steps", "shop-service-predictor", "shop-agent-watcher"):
        # scanflow.yaml is part of the code (the image's /app); the rest stays
        assert after[name][0] == before[name][0]


def test_a_base_image_change_changes_every_deps_part(shop):
    before = tags(shop(base_image="python:3.11-slim"))
    after = tags(shop(base_image="python:3.12-slim"))
    for name in before:
        assert after[name][0] != before[name][0]


def test_a_scanflow_version_change_changes_every_deps_part(shop, monkeypatch):
    project = shop()
    before = tags(project)
    monkeypatch.setattr(scanflow, "__version__", "9.9.9")
    after = tags(project)
    for name in before:
        assert after[name][0] != before[name][0] and after[name][1] == before[name][1]


def test_references_use_the_configured_registry(shop):
    builds = plan_builds(shop(registry="registry.example:5000/team/"))
    assert all(b.reference.startswith("registry.example:5000/team/shop-") for b in builds)
    assert all(b.reference.startswith("shop-") for b in plan_builds(shop()))


def test_components_select_their_images(shop):
    images = plan_images(shop())
    assert [i.name for i in select(images, ["predictor"])] == ["shop-service-predictor"]
    assert [i.name for i in select(images, ["agent/watcher"])] == ["shop-agent-watcher"]
    assert len(select(images, ["train"])) == 2  # a workflow: all its executors
    assert [i.name for i in select(images, ["report"])] == ["shop-steps"]
    with pytest.raises(BuildError, match=r"no component or image 'nope'.*service/predictor"):
        select(images, ["nope"])


def test_the_fast_path_needs_the_same_deps_and_stops_after_max_appends(shop):
    from scanflow.build.images import MAX_APPENDS, _append

    project = shop()
    build = next(b for b in plan_builds(project) if b.plan.name == "shop-steps")
    said: list[str] = []
    assert not _append(project, build, {}, True, said.append)  # nothing built before
    other = {"shop-steps": {"deps": "0" * 64, "reference": "shop-steps:old-old"}}
    assert not _append(project, build, other, True, said.append)  # requirements or base changed
    stacked = {
        "shop-steps": {
            "deps": build.deps_digest,
            "reference": "shop-steps:old-old",
            "appends": MAX_APPENDS,
        }
    }
    assert not _append(project, build, stacked, True, said.append)
    assert said == [f"shop-steps: {MAX_APPENDS} code layers appended already: full build"]
