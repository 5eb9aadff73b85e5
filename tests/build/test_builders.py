"""Unit tier: builders by name, their errors, and the kaniko Job checked offline."""

from __future__ import annotations

import base64
import gzip
import io
import tarfile

import kubernetes_validate
import pytest

from scanflow.build import builders
from scanflow.build.builders.base import Builder, BuildRequest
from scanflow.build.builders.kaniko import CONTEXT_ARCHIVE, KanikoBuilder, job_name
from scanflow.build.content import code_layer
from scanflow.build.images import plan_builds, wheel_name, write_context
from scanflow.build.tools import run_tool
from scanflow.errors import BuildError


@pytest.fixture
def no_programs(monkeypatch, tmp_path):
    """A PATH (and tools folder) where no build program is installed."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("SCANFLOW_TOOLS_DIR", str(empty))


def test_builders_are_known_by_name():
    assert {"auto", "buildah", "docker", "kaniko"} <= set(builders.builder_names())


def test_an_unknown_builder_names_the_known_ones(shop):
    with pytest.raises(BuildError, match=r"unknown builder 'podmanx'; known builders: auto, "):
        builders.get_builder(shop(), "podmanx")


@pytest.mark.parametrize("name", ["buildah", "docker"])
def test_a_missing_program_is_a_clear_error(shop, no_programs, name):
    with pytest.raises(BuildError, match=rf"{name} is not installed.*'{name}' builder needs it"):
        builders.get_builder(shop(), name)


def test_auto_is_buildah_when_no_docker_engine_answers(no_programs):
    assert builders.resolve_name("auto") == "buildah"
    assert builders.resolve_name("kaniko") == "kaniko"


def test_a_registered_builder_is_found(shop):
    class Fake(Builder):
        name = "fake"

        def exists(self, reference):
            return False

        def build(self, request, on_line=None):
            return None

        def push(self, request, on_line=None):
            return None

    builders.register("fake", lambda project: Fake())
    try:
        assert "fake" in builders.builder_names()
        assert builders.get_builder(shop(), "fake").name == "fake"
    finally:
        builders.unregister("fake")
    assert "fake" not in builders.builder_names()


def test_a_failing_program_reports_its_output_tail(tmp_path):
    log = tmp_path / "build.log"
    script = "for i in $(seq 1 30); do echo line $i; done; echo 'no space left' >&2; exit 3"
    with pytest.raises(BuildError) as failure:
        run_tool(["sh", "-c", script], "build shop-steps:abc", log)
    message = str(failure.value)
    assert message.startswith("could not build shop-steps:abc: sh exited with 3")
    assert str(log) in message
    assert "no space left" in message and "line 30" in message and "line 5\n" not in message
    assert log.read_text().count("\n") == 31  # the whole output is in the log


def test_kaniko_job_is_valid_kubernetes(shop):
    project = shop(registry="registry.example:5000/team", tls_verify="false")
    build = next(b for b in plan_builds(project) if b.plan.name == "shop-steps")
    wheel = project.base_dir / wheel_name()
    wheel.write_bytes(b"not really a wheel")  # the context only carries it
    write_context(project, build, wheel)
    builder = builders.get_builder(project, "kaniko")
    builder.build(BuildRequest(build.context, build.reference, tls_verify=False))
    import yaml

    config_map, job = yaml.safe_load_all((build.context / "kaniko.yaml").read_text())
    for manifest in (config_map, job):
        kubernetes_validate.validate(manifest, "1.33", strict=True)
    name = job_name(build.reference)
    assert job["metadata"]["name"] == config_map["metadata"]["name"] == name
    assert job["metadata"]["namespace"] == "ml-shop"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert f"--destination={build.reference}" in container["args"]
    assert "--insecure" in container["args"]
    archive = base64.b64decode(config_map["binaryData"][CONTEXT_ARCHIVE])
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = set(tar.getnames())
    assert {"Dockerfile", f"wheels/{wheel_name()}", "code/steps/prepare.py"} <= names
    assert "kaniko.yaml" not in names


def test_kaniko_refuses_a_context_too_big_for_a_config_map(shop, tmp_path):
    project = shop(registry="registry.example:5000/team")
    build = next(b for b in plan_builds(project) if b.plan.name == "shop-steps")
    (project.base_dir / "data.bin").write_bytes(__import__("os").urandom(1_200_000))
    wheel = tmp_path / wheel_name()
    wheel.write_bytes(b"w")
    write_context(project, build, wheel)
    with pytest.raises(BuildError, match="at most 1000000.*keep data out of the application"):
        KanikoBuilder().build(BuildRequest(build.context, build.reference))


def test_job_names_are_dns_labels_and_differ_per_reference():
    first = job_name("r:5000/" + "a" * 80 + ":tag1")
    second = job_name("r:5000/" + "a" * 80 + ":tag2")
    assert first != second and len(first) <= 63 and first.replace("-", "").isalnum()


def test_code_layer_replaces_app_and_keeps_the_state_folder(shop, tmp_path):
    project = shop()
    layer = code_layer(project.base_dir, tmp_path / "code.tar.gz", 10001)
    again = code_layer(project.base_dir, tmp_path / "again.tar.gz", 10001)
    assert layer.read_bytes() == again.read_bytes()  # same code, same layer
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer.read_bytes()))) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert tar.extractfile("app/steps/prepare.py").read() == b"print('prepare v1')\n"
    assert "app/.wh..wh..opq" in members
    assert members["app/.scanflow"].isdir() and members["app/.scanflow"].uid == 10001
    assert members["app/steps"].isdir()
    assert all(m.uid == 0 for n, m in members.items() if n != "app/.scanflow")


def test_docker_without_an_engine_says_so(shop, tmp_path, monkeypatch):
    # a docker program that cannot reach an engine, as on a machine without the daemon
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text(
        "#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock' >&2\n"
        "exit 1\n"
    )
    (fake / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    monkeypatch.setenv("SCANFLOW_TOOLS_DIR", str(fake))
    with pytest.raises(BuildError, match=r"'docker info' gets no answer.*--builder buildah"):
        builders.get_builder(shop(), "docker")
    assert builders.resolve_name("auto") == "buildah"
