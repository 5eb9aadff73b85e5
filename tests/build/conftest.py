"""Fixtures of the build tests: an application to build, and for the real tier a local
registry (Debian's docker-registry on 127.0.0.1) holding a Debian base image."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator

import pytest

from scanflow.build.tools import find_tool
from scanflow.spec import Project
from tests.conftest import free_port, wait_for

from .support import CACHE, SUITE, Registry, push_base

SPEC = """
name: shop
team: ml
workflows:
- name: train
  executors:
  - name: prepare
    script: steps/prepare.py
    requirements: [scikit-learn]
    outputs: [dataset]
  - name: fit
    function: steps.fit:main
    requirements: [scikit-learn]
    inputs: [prepare.dataset]
  - name: report
    script: report.py
services:
- name: predictor
  model: models:/shop@champion
  port: 9000
agents:
- name: watcher
  sensors: [drift]
"""

FILES = {
    "steps/__init__.py": "",
    "steps/prepare.py": "print('prepare v1')\n",
    "steps/fit.py": "def main(**kwargs):\n    print('fit', kwargs)\n",
    "report.py": "print('report')\n",
}


@pytest.fixture
def shop(make_project: Callable[..., Project]) -> Callable[..., Project]:
    """``shop(**build)`` the example application, with ``build:`` settings (YAML values)."""

    def make(spec: str = SPEC, files: dict[str, str] | None = None, **build: str) -> Project:
        settings = "".join(f"  {key}: {value}\n" for key, value in build.items())
        text = spec + (f"build:\n{settings}" if settings else "")
        return make_project(text, {**FILES, **(files or {})})

    return make


def _require_real_tools() -> None:
    """The real tier needs root, buildah, skopeo, crane and docker-registry: fail, not skip."""
    needed = ["buildah", "skopeo", "crane", "docker-registry"]
    if not (CACHE / f"rootfs-{SUITE}").exists():
        needed.append("debootstrap")  # the base image is made from Debian packages
    missing = [name for name in needed if not find_tool(name, "/usr/sbin")]
    if os.geteuid() != 0:
        pytest.fail("real image builds need root (buildah with vfs storage)", pytrace=False)
    if missing:
        pytest.fail(
            f"real image builds need {', '.join(missing)}: run 'bash scripts/install.sh' "
            "(make test does)",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def local_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A docker-registry on a free port for the session; stopped by PID at its end."""
    _require_real_tools()
    registry = Registry(tmp_path_factory.mktemp("registry"), free_port())
    try:
        wait_for(registry.ready, timeout=60, what="docker-registry to answer /v2/")
        yield registry
    finally:
        registry.stop()
        _forget_local_images(registry.address)


@pytest.fixture(scope="session")
def base_image(local_registry: Registry) -> str:
    """The Debian base (python3 + Scanflow's dependencies) pushed to the session registry."""
    return push_base(local_registry.address)


def _forget_local_images(address: str) -> None:
    """Remove from buildah's store the images this session built (they name its registry)."""
    buildah = find_tool("buildah") or "buildah"
    listed = subprocess.run(
        [buildah, "--storage-driver", "vfs", "images", "--format", "{{.Name}}:{{.Tag}}"],
        capture_output=True,
        text=True,
    )
    ours = [line for line in listed.stdout.split() if line.startswith(address)]
    if ours:
        subprocess.run([buildah, "--storage-driver", "vfs", "rmi", "--force", *ours], check=False)
