"""The ``buildah`` builder: no daemon; vfs storage and chroot isolation, so it works as root
inside a container or VM without overlay mounts or user namespaces."""

from __future__ import annotations

import logging
import subprocess
import tempfile
from pathlib import Path

from scanflow.build.builders.base import Builder, BuildRequest
from scanflow.build.tools import LineCallback, find_tool, run_tool

log = logging.getLogger(__name__)


class BuildahBuilder(Builder):
    """``buildah --storage-driver vfs bud --isolation chroot``, then ``buildah push`` (after
    which the local copy is removed: vfs stores every image whole)."""

    name = "buildah"
    program = "buildah"
    install_hint = "apt-get install buildah"

    def _base(self) -> list[str]:
        return [find_tool("buildah") or "buildah", "--storage-driver", "vfs"]

    def exists(self, reference: str) -> bool:
        command = [*self._base(), "inspect", "--type", "image", reference]
        return subprocess.run(command, capture_output=True).returncode == 0

    def build(self, request: BuildRequest, on_line: LineCallback | None = None) -> None:
        command = [
            *self._base(),
            "bud",
            "--isolation",
            "chroot",
            f"--tls-verify={str(request.tls_verify).lower()}",
            "--file",
            str(request.context / "Dockerfile"),
            "--tag",
            request.reference,
            str(request.context),
        ]
        run_tool(command, f"build {request.reference}", request.log_path, on_line)

    def push(self, request: BuildRequest, on_line: LineCallback | None = None) -> str | None:
        with tempfile.TemporaryDirectory() as folder:
            digest_file = Path(folder) / "digest"
            command = [
                *self._base(),
                "push",
                f"--tls-verify={str(request.tls_verify).lower()}",
                "--digestfile",
                str(digest_file),
                request.reference,
                f"docker://{request.reference}",
            ]
            run_tool(command, f"push {request.reference}", request.log_path, on_line)
            digest = digest_file.read_text().strip() or None
        # vfs keeps a full copy of every image: once pushed, the local one is not needed
        # (the base image stays, for the next build)
        forget = [*self._base(), "rmi", request.reference]
        if subprocess.run(forget, capture_output=True).returncode != 0:
            log.warning("could not remove %s from buildah's store", request.reference)
        return digest
