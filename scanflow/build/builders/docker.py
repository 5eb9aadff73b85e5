"""The ``docker`` builder: a Docker engine that answers ``docker info``."""

from __future__ import annotations

import re
import subprocess

from scanflow.build.builders.base import Builder, BuildRequest
from scanflow.build.tools import LineCallback, find_tool, run_tool
from scanflow.errors import BuildError

_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")


def engine_answers(timeout: float = 10.0) -> bool:
    """Whether ``docker info`` reaches a Docker engine."""
    docker = find_tool("docker")
    if docker is None:
        return False
    try:
        done = subprocess.run([docker, "info"], capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


class DockerBuilder(Builder):
    """``docker build`` and ``docker push`` (TLS is the engine's configuration)."""

    name = "docker"
    program = "docker"
    install_hint = "https://docs.docker.com/engine/install/"

    def check(self) -> None:
        super().check()
        if not engine_answers():
            raise BuildError(
                "the 'docker' builder needs a Docker engine, and 'docker info' gets no answer; "
                "start the engine or use '--builder buildah'"
            )

    def exists(self, reference: str) -> bool:
        command = [find_tool("docker") or "docker", "image", "inspect", reference]
        return subprocess.run(command, capture_output=True).returncode == 0

    def build(self, request: BuildRequest, on_line: LineCallback | None = None) -> None:
        command = [find_tool("docker") or "docker", "build", "--progress", "plain"]
        command += ["--tag", request.reference, str(request.context)]
        run_tool(command, f"build {request.reference}", request.log_path, on_line)

    def push(self, request: BuildRequest, on_line: LineCallback | None = None) -> str | None:
        command = [find_tool("docker") or "docker", "push", request.reference]
        output = run_tool(command, f"push {request.reference}", request.log_path, on_line)
        found = _DIGEST.search(output)
        return found.group(1) if found else None
